//! Soak: every map at once under a mixed workload on all cores, with invariants checked on every
//! read, for `MAPGUARD_SOAK_SECS` seconds (default 60). Ignored by default; CI runs it briefly:
//! `MAPGUARD_SOAK_SECS=20 cargo test -p mapguard --test reliability -- --ignored soak`.
//!
//! Invariants: a value always encodes its key (`value >> 20 == key`); a thread's own key is
//! present from its insertion to its removal; counters updated by atomic adds sum to the adds
//! made; iteration never yields a key twice nor a value that does not encode its key; `len`
//! never exceeds the number of keys that can exist.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::hashers::Rng;
use crate::maps::{Named, TestMap, every_map};

const SHARED_KEYS: u64 = 1 << 12;
const COUNTERS: u64 = 8;
const COUNTER_BASE: u64 = 1 << 30;
const OWN_BASE: u64 = 1 << 31;

fn encode(key: u64, generation: u64) -> u64 {
    (key << 20) | (generation & 0xF_FFFF)
}

fn check_value(name: &str, key: u64, value: u64) {
    if !(SHARED_KEYS..OWN_BASE).contains(&key) {
        assert_eq!(
            value >> 20,
            key,
            "{name}: key {key} holds {value:#x}, not its own value"
        );
    }
}

/// One worker's loop; returns (operations, sum of its counter adds).
fn work(name: &str, map: &dyn TestMap, thread: u64, stop: &AtomicBool) -> (u64, u64) {
    let mut rng = Rng(thread.wrapping_mul(0x9e37_79b9) ^ 0x50a4);
    let own = OWN_BASE + thread;
    let mut own_present = false;
    let (mut ops, mut added) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..256 {
            let key = rng.below(SHARED_KEYS);
            match rng.below(100) {
                0..=54 => {
                    if let Some(value) = map.get(key) {
                        check_value(name, key, value);
                    }
                }
                55..=69 => map.insert(key, encode(key, ops)),
                70..=79 => {
                    if let Some(value) = map.remove(key) {
                        check_value(name, key, value);
                    }
                }
                80..=86 => check_value(name, key, map.get_or_insert(key, encode(key, ops))),
                87..=91 => {
                    let delta = rng.below(10) + 1;
                    map.add(COUNTER_BASE + rng.below(COUNTERS), delta);
                    added += delta;
                }
                92..=95 => {
                    if own_present {
                        assert_eq!(map.get(own), Some(encode(own, 0)), "{name}: own key lost");
                        if rng.below(4) == 0 {
                            assert_eq!(map.remove(own), Some(encode(own, 0)), "{name}: own key");
                            own_present = false;
                        }
                    } else {
                        assert!(!map.contains(own), "{name}: own key came back");
                        map.insert(own, encode(own, 0));
                        own_present = true;
                    }
                }
                _ => {
                    let _ = map.contains(key);
                }
            }
            ops += 1;
        }
    }
    if own_present {
        assert_eq!(
            map.remove(own),
            Some(encode(own, 0)),
            "{name}: own key lost"
        );
    }
    (ops, added)
}

/// Iterates and checks the whole map until stopped; returns the number of passes.
fn inspect(name: &str, map: &dyn TestMap, threads: u64, stop: &AtomicBool) -> u64 {
    let mut passes = 0;
    while !stop.load(Ordering::Relaxed) {
        let entries = map.entries();
        let mut keys = HashSet::with_capacity(entries.len());
        for (key, value) in entries {
            // Workers remove and insert shared keys and their own keys all the time; only a map
            // that documents it may show such a key twice, and never a key no worker removes
            // (a counter).
            let reinserted = !(COUNTER_BASE..OWN_BASE).contains(&key);
            let repeat_allowed = map.may_repeat_reinserted_keys() && reinserted;
            assert!(
                keys.insert(key) || repeat_allowed,
                "{name}: key {key} iterated twice"
            );
            check_value(name, key, value);
        }
        let most = (SHARED_KEYS + COUNTERS + threads) as usize;
        assert!(keys.len() <= most, "{name}: {} keys iterated", keys.len());
        assert!(map.len() <= most, "{name}: len {}", map.len());
        passes += 1;
        if passes % 16 == 0 {
            map.shrink();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    passes
}

#[test]
#[ignore = "long; run with --ignored (CI runs it for a short time)"]
fn soak() {
    let secs: u64 = std::env::var("MAPGUARD_SOAK_SECS")
        .ok()
        .map(|s| {
            s.parse()
                .expect("MAPGUARD_SOAK_SECS is a number of seconds")
        })
        .unwrap_or(60);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let maps = every_map();
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let totals: Vec<(u64, u64, u64)> = std::thread::scope(|scope| {
        let runs: Vec<_> = maps
            .iter()
            .map(|Named { name, map }| {
                let map = map.as_ref();
                let stop = &stop;
                let workers: Vec<_> = (0..threads)
                    .map(|thread| scope.spawn(move || work(name, map, thread, stop)))
                    .collect();
                let inspector = scope.spawn(move || inspect(name, map, threads, stop));
                (workers, inspector)
            })
            .collect();
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        runs.into_iter()
            .map(|(workers, inspector)| {
                let (mut ops, mut added) = (0, 0);
                for worker in workers {
                    let (o, a) = worker.join().expect("a worker failed");
                    ops += o;
                    added += a;
                }
                (ops, added, inspector.join().expect("the inspector failed"))
            })
            .collect()
    });
    let ops_total = AtomicU64::new(0);
    for (Named { name, map }, (ops, added, passes)) in maps.iter().zip(totals) {
        let counted: u64 = (0..COUNTERS)
            .map(|c| map.get(COUNTER_BASE + c).unwrap_or(0))
            .sum();
        assert_eq!(counted, added, "{name}: counter adds lost or doubled");
        for thread in 0..threads {
            assert!(
                !map.contains(OWN_BASE + thread),
                "{name}: a removed own key is present"
            );
        }
        println!(
            "soak {name:<24} {ops:>11} ops, {passes:>6} full checks, counters {counted} = adds {added}"
        );
        ops_total.fetch_add(ops, Ordering::Relaxed);
        map.clear();
        assert_eq!(map.len(), 0);
        assert!(map.entries().is_empty());
    }
    println!(
        "soak TOTAL {} ops in {:.1} s on {threads} threads per map",
        ops_total.into_inner(),
        started.elapsed().as_secs_f64()
    );
}
