//! Instruction counts of a fixed single-thread operation sequence on each map built with
//! the plain API only (no statistics, no observer), for comparing this build against a build
//! of mapguard without the statistics code under callgrind. The file uses nothing added with
//! statistics, so it builds unchanged against such a mapguard:
//!
//! ```text
//! cargo build --release -p mapguard --example stats_off_ir
//! valgrind --tool=callgrind --toggle-collect='*run_plan*' \
//!     target/release/examples/stats_off_ir sharded seed95 200000
//! ```
//!
//! Instructions per operation: the collected Ir divided by the operation count.
//!
//! With a fourth argument `REPEATS` it also times the plan that many times on the same map
//! and prints the median nanoseconds per operation, for a wall-clock comparison of the two
//! builds: build the example once with and once without `--features stats`, copy each
//! binary aside, and run them alternately many times (the noise between two runs of one
//! binary is the yardstick a difference has to clear):
//!
//! ```text
//! cargo build --release -p mapguard --example stats_off_ir
//! cp target/release/examples/stats_off_ir /tmp/off-nofeature
//! cargo build --release -p mapguard --features stats --example stats_off_ir
//! cp target/release/examples/stats_off_ir /tmp/off-feature
//! for i in $(seq 10); do for b in nofeature feature; do
//!     /tmp/off-$b sharded seed95 1000000 5; done; done
//! ```

use mapguard::{LockedMap, ReadMostlyMap, ShardedMap};

type Hasher = foldhash::fast::FixedState;

#[derive(Clone, Copy)]
enum Op {
    Get(u64),
    Insert(u64),
    Remove(u64),
}

fn key_of(index: u64) -> u64 {
    let mut z = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `(mix [get, insert, remove, update] %, key space, prefill %)` of the workloads measured.
fn workload(name: &str) -> ([u64; 4], u64, u64) {
    match name {
        "seed95" => ([95, 0, 0, 5], 10_000, 100),
        "read-heavy" => ([98, 1, 1, 0], 1 << 20, 75),
        "exchange" => ([10, 40, 40, 10], 1 << 20, 75),
        other => panic!("unknown workload {other:?}: seed95, read-heavy or exchange"),
    }
}

fn plan(mix: [u64; 4], space: u64, len: usize) -> Vec<Op> {
    let mut state = 0x5EED_u64;
    let mut below = |bound: u64| {
        state = key_of(state);
        ((u128::from(state) * u128::from(bound)) >> 64) as u64
    };
    (0..len)
        .map(|_| {
            let roll = below(100);
            let key = key_of(below(space));
            if roll < mix[0] {
                Op::Get(key)
            } else if roll < mix[0] + mix[1] || roll >= mix[0] + mix[1] + mix[2] {
                Op::Insert(key)
            } else {
                Op::Remove(key)
            }
        })
        .collect()
}

macro_rules! run_plan_for {
    ($name:ident, $map:ty) => {
        #[inline(never)]
        fn $name(map: &$map, plan: &[Op]) -> u64 {
            let mut found = 0;
            for op in plan {
                match *op {
                    Op::Get(key) => found += u64::from(map.get(&key).is_some()),
                    Op::Insert(key) => {
                        map.insert(key, key);
                    }
                    Op::Remove(key) => {
                        map.remove(&key);
                    }
                }
            }
            found
        }
    };
}

run_plan_for!(run_plan_sharded, ShardedMap<u64, u64, Hasher>);
run_plan_for!(run_plan_read_mostly, ReadMostlyMap<u64, u64, Hasher>);
run_plan_for!(run_plan_locked, LockedMap<u64, u64, Hasher>);

/// Runs `run` `repeats` times: its last result and the median time of one run, in seconds.
fn timed(repeats: usize, mut run: impl FnMut() -> u64) -> (u64, f64) {
    let mut times = Vec::with_capacity(repeats);
    let mut found = 0;
    for _ in 0..repeats {
        let start = std::time::Instant::now();
        found = std::hint::black_box(run());
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (found, times[times.len() / 2])
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (map, name, ops, repeats) = match &args[..] {
        [map, name, ops] => (map, name, ops, None),
        [map, name, ops, repeats] => (map, name, ops, Some(repeats)),
        _ => panic!(
            "usage: stats_off_ir MAP WORKLOAD OPS [REPEATS] (MAP: sharded, read-mostly, locked)"
        ),
    };
    let repeats: usize = repeats.map_or(1, |r| r.parse().expect("REPEATS is a number"));
    assert!(repeats > 0, "REPEATS must be at least 1");
    let (mix, space, prefill) = workload(name);
    let ops: usize = ops.parse().expect("OPS is a number");
    let plan = plan(mix, space, ops);
    let capacity = space as usize;
    let keys = || (0..space * prefill / 100).map(key_of);
    let hasher = || Hasher::with_seed(1);
    let found = match map.as_str() {
        "sharded" => {
            let m = ShardedMap::builder()
                .capacity(capacity)
                .hasher(hasher())
                .build()
                .unwrap();
            keys().for_each(|k| {
                let _ = m.insert(k, k);
            });
            timed(repeats, || run_plan_sharded(&m, &plan))
        }
        "read-mostly" => {
            let m = ReadMostlyMap::builder()
                .capacity(capacity)
                .hasher(hasher())
                .build()
                .unwrap();
            keys().for_each(|k| {
                let _ = m.insert(k, k);
            });
            timed(repeats, || run_plan_read_mostly(&m, &plan))
        }
        "locked" => {
            let m = LockedMap::builder()
                .capacity(capacity)
                .hasher(hasher())
                .build()
                .unwrap();
            keys().for_each(|k| {
                let _ = m.insert(k, k);
            });
            timed(repeats, || run_plan_locked(&m, &plan))
        }
        other => panic!("unknown map {other:?}: sharded, read-mostly or locked"),
    };
    let (found, seconds) = found;
    let timing = if args.len() == 4 {
        let ns = seconds * 1e9 / ops as f64;
        format!(", median {ns:.2} ns/op over {repeats} runs")
    } else {
        String::new()
    };
    println!("{map} {name}: {ops} operations in run_plan_*, {found} found{timing}");
}
