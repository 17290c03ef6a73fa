//! No entry is lost while tables grow, shrink and rebuild: a thread filling and emptying 128
//! keys in a loop while others check that their own key stays present, and a MapLoops-style
//! random walk of insert-if-absent / remove-if-present where every value equals its key.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::hashers::Rng;
use crate::maps::{Named, TestMap, every_degraded_map, every_map};

const CHECKERS: u64 = 3;

/// Presence checks to make at least, however fast the filler is.
const MIN_CHECKS: u64 = 3_000;

/// Returns (presence checks made, checks that missed the key).
fn fill_and_empty_while_others_check(map: &dyn TestMap, min_cycles: usize) -> (u64, u64) {
    let done = AtomicBool::new(false);
    let checks = AtomicU64::new(0);
    let lost = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for checker in 0..CHECKERS {
            let (done, checks, lost) = (&done, &checks, &lost);
            scope.spawn(move || {
                let key = 1_000_000 + checker;
                map.insert(key, key);
                let mut rng = Rng(key);
                let mut last = false;
                while !last {
                    last = done.load(Ordering::Acquire);
                    std::thread::sleep(Duration::from_micros(rng.below(10)));
                    checks.fetch_add(1, Ordering::Relaxed);
                    if map.get(key) != Some(key) || !map.contains(key) {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                }
                assert_eq!(map.remove(key), Some(key));
            });
        }
        scope.spawn(|| {
            let mut cycle = 0;
            while cycle < min_cycles || checks.load(Ordering::Relaxed) < MIN_CHECKS {
                cycle += 1;
                for key in 0..128 {
                    map.insert(key, key);
                }
                for key in 0..128 {
                    assert_eq!(map.remove(key), Some(key));
                }
                if cycle % 8 == 7 {
                    map.shrink();
                }
            }
            done.store(true, Ordering::Release);
        });
    });
    assert!(map.entries().is_empty());
    (checks.into_inner(), lost.into_inner())
}

#[test]
fn own_keys_survive_another_thread_filling_and_emptying() {
    let mut maps: Vec<Named> = every_map();
    maps.extend(every_degraded_map());
    let (mut checks, mut lost) = (0, 0);
    for Named { name, map } in &maps {
        let (c, l) = fill_and_empty_while_others_check(map.as_ref(), 400);
        println!("lost-entries {name:<28} checks {c:>7} lost {l}");
        assert_eq!(
            l, 0,
            "{name}: a key present all along was missed {l} times in {c} checks"
        );
        checks += c;
        lost += l;
    }
    println!("lost-entries TOTAL checks {checks} lost {lost}");
}

/// MapLoops: threads walk random keys of `0..keys`; each step inserts the key if absent, removes
/// it if present, or reads it; every value must equal its key. Returns the operations run.
fn map_loops(map: &dyn TestMap, threads: u64, steps: u64, keys: u64) -> u64 {
    std::thread::scope(|scope| {
        for thread in 0..threads {
            scope.spawn(move || {
                let mut rng = Rng(0xa5a5 + thread);
                let mut key = rng.below(keys);
                for _ in 0..steps {
                    // A random walk: mostly near the last key, sometimes anywhere.
                    key = if rng.below(8) == 0 {
                        rng.below(keys)
                    } else {
                        (key + rng.below(5) + keys - 2) % keys
                    };
                    match rng.below(10) {
                        0..=1 => assert_eq!(map.get_or_insert(key, key), key),
                        2..=3 => {
                            if let Some(value) = map.remove(key) {
                                assert_eq!(value, key);
                            }
                        }
                        4 => map.insert(key, key),
                        _ => {
                            if let Some(value) = map.get(key) {
                                assert_eq!(value, key, "get({key})");
                            }
                        }
                    }
                }
            });
        }
    });
    let entries = map.entries();
    assert_eq!(entries.len(), map.len());
    let unique: HashSet<u64> = entries.iter().map(|(k, _)| *k).collect();
    assert_eq!(unique.len(), entries.len(), "a key iterated twice");
    for (key, value) in entries {
        assert_eq!(key, value);
        assert!(key < keys);
    }
    threads * steps
}

#[test]
fn map_loops_random_walk_keeps_every_value_equal_to_its_key() {
    let mut total = 0;
    for Named { name, map } in every_map() {
        let ops = map_loops(map.as_ref(), 4, 150_000, 1 << 12);
        println!("map-loops {name:<28} ops {ops}");
        total += ops;
    }
    for Named { name, map } in every_degraded_map() {
        let ops = map_loops(map.as_ref(), 4, 20_000, 256);
        println!("map-loops {name:<28} ops {ops}");
        total += ops;
    }
    println!("map-loops TOTAL ops {total}");
}
