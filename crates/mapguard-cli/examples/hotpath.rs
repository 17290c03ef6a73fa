//! Single-thread hot-path probe: a fixed number of `get` (hit and miss), overwrite,
//! insert-new-then-remove and grow-from-empty operations on one map, each phase in its own
//! non-inlined function so that `valgrind --tool=callgrind` attributes instructions per phase,
//! plus wall-clock ns/op.
//!
//! ```text
//! cargo build --release -p mapguard-cli --example hotpath
//! valgrind --tool=callgrind target/release/examples/hotpath sharded 100000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | grep phase_
//! ```
//! Maps: sharded, read-mostly, locked, dashmap, papaya, scc, hashbrown, rwlock-std.

use std::hint::black_box;
use std::time::Instant;

use mapguard_cli::bench::adapter::{
    BenchMap, Dashmap, Hashbrown, Locked, MapHandle, Papaya, ReadMostly, RwLockStd, Scc, Sharded,
    bench_hasher,
};

/// Entries present during the measured phases (`HOTPATH_KEYS` overrides it, e.g. 786432 for
/// a table far larger than the caches, as in the `read-heavy` workload).
fn prefill() -> u64 {
    std::env::var("HOTPATH_KEYS")
        .ok()
        .and_then(|keys| keys.parse().ok())
        .unwrap_or(1 << 14)
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[inline(never)]
fn phase_baseline(keys: &[u64]) -> u64 {
    let mut sum = 0u64;
    for key in keys {
        sum = sum.wrapping_add(black_box(*key));
    }
    sum
}

#[inline(never)]
fn phase_get_hit<H: MapHandle>(h: &mut H, keys: &[u64]) -> usize {
    keys.iter().filter(|key| h.get(key)).count()
}

#[inline(never)]
fn phase_get_miss<H: MapHandle>(h: &mut H, keys: &[u64]) -> usize {
    keys.iter().filter(|key| h.get(key)).count()
}

#[inline(never)]
fn phase_overwrite<H: MapHandle>(h: &mut H, keys: &[u64]) {
    for (i, key) in keys.iter().enumerate() {
        h.insert(*key, i as u64);
    }
}

#[inline(never)]
fn phase_insert_remove<H: MapHandle>(h: &mut H, keys: &[u64]) -> usize {
    let mut removed = 0;
    for key in keys {
        h.insert(*key, 1);
        removed += usize::from(h.remove(key));
    }
    removed
}

/// Inserts of new keys into a map built empty (no capacity given), as in `rapid-grow`: every
/// table growth (the rehash and the allocation) is part of the phase.
#[inline(never)]
fn phase_grow<M: BenchMap>(keys: &[u64]) -> usize {
    let map = M::with_capacity(0, bench_hasher(0x5eed));
    let mut h = map.handle();
    for key in keys {
        h.insert(*key, 1);
    }
    drop(h);
    map.len()
}

/// The `read-heavy` mix: 98 reads (hits and misses), then one insert of a new key and one
/// remove of it, per 100 operations.
#[inline(never)]
fn phase_mixed<H: MapHandle>(h: &mut H, hits: &[u64], fresh: &[u64]) -> usize {
    let mut found = 0;
    for (i, key) in hits.iter().enumerate() {
        if i % 100 == 98 {
            h.insert(fresh[i], 1);
        } else if i % 100 == 99 {
            h.remove(&fresh[i - 1]);
        } else {
            found += usize::from(h.get(key));
        }
    }
    found
}

/// The `seed95` mix: 19 reads of present keys, then one overwrite of a present key, per 20
/// operations.
#[inline(never)]
fn phase_seed95<H: MapHandle>(h: &mut H, hits: &[u64], overwrites: &[u64]) -> usize {
    let mut found = 0;
    for (i, key) in hits.iter().enumerate() {
        if i % 20 == 19 {
            h.update(overwrites[i], i as u64);
        } else {
            found += usize::from(h.get(key));
        }
    }
    found
}

fn run<M: BenchMap>(ops: usize) {
    let keys = prefill();
    let mut rng = 7u64;
    let present: Vec<u64> = (0..keys).map(|_| splitmix(&mut rng)).collect();
    let absent: Vec<u64> = (0..keys).map(|_| splitmix(&mut rng)).collect();
    let pick = |from: &[u64], rng: &mut u64| -> Vec<u64> {
        (0..ops)
            .map(|_| from[(splitmix(rng) % from.len() as u64) as usize])
            .collect()
    };
    let hits = pick(&present, &mut rng);
    let misses = pick(&absent, &mut rng);
    let overwrites = pick(&present, &mut rng);
    let fresh = pick(&absent, &mut rng);

    let map = M::with_capacity(2 * keys as usize, bench_hasher(0x5eed));
    let mut h = map.handle();
    for key in &present {
        h.insert(*key, *key);
    }
    let timed = |name: &str, f: &mut dyn FnMut() -> usize| {
        let start = Instant::now();
        let n = f();
        let ns = start.elapsed().as_nanos() as f64 / ops as f64;
        println!("{name:14} {ns:7.2} ns/op  ({n})");
    };
    timed("baseline", &mut || phase_baseline(&hits) as usize);
    timed("get-hit", &mut || phase_get_hit(&mut h, &hits));
    timed("get-miss", &mut || phase_get_miss(&mut h, &misses));
    timed("overwrite", &mut || {
        phase_overwrite(&mut h, &overwrites);
        0
    });
    timed("insert+remove", &mut || phase_insert_remove(&mut h, &fresh));
    timed("mixed", &mut || phase_mixed(&mut h, &hits, &fresh));
    timed("seed95", &mut || phase_seed95(&mut h, &hits, &overwrites));
    drop(h);
    assert_eq!(map.len(), keys as usize);
    let distinct: Vec<u64> = (0..ops).map(|_| splitmix(&mut rng)).collect();
    timed("grow", &mut || phase_grow::<M>(&distinct));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "sharded".to_owned());
    let ops: usize = args
        .next()
        .map_or(100_000, |n| n.parse().expect("ops is a number"));
    match name.as_str() {
        "sharded" => run::<Sharded>(ops),
        "read-mostly" => run::<ReadMostly>(ops),
        "locked" => run::<Locked>(ops),
        "dashmap" => run::<Dashmap>(ops),
        "papaya" => run::<Papaya>(ops),
        "scc" => run::<Scc>(ops),
        "hashbrown" => run::<Hashbrown>(ops),
        "rwlock-std" => run::<RwLockStd>(ops),
        other => {
            eprintln!("unknown map {other}");
            std::process::exit(2);
        }
    }
}
