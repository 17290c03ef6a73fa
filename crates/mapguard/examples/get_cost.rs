//! Runs `n` lookups of present keys on a `ShardedMap` (n from the first argument, default
//! 100000), for instruction counting: run it under `valgrind --tool=callgrind` with two
//! values of n; the difference in instructions divided by the difference in n is the cost of
//! one `get` (setup and teardown cancel out).
//!
//! ```text
//! cargo build --release -p mapguard --example get_cost
//! valgrind --tool=callgrind target/release/examples/get_cost 100000
//! valgrind --tool=callgrind target/release/examples/get_cost 200000
//! ```

use std::hint::black_box;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|arg| arg.parse().expect("the argument is a number of lookups"))
        .unwrap_or(100_000);
    let map = mapguard::ShardedMap::builder()
        .shards(64)
        .hasher(foldhash::fast::FixedState::with_seed(1))
        .build()
        .expect("valid settings");
    for key in 0..1024u64 {
        map.insert(key, key);
    }
    let mut sum = 0u64;
    for i in 0..n {
        if let Some(value) = map.get(black_box(&(i & 1023))) {
            sum = sum.wrapping_add(*value);
        }
    }
    println!("{n} lookups, checksum {sum}");
}
