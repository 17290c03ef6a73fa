//! Concurrent stress tests of `ReadMostlyMap`: values always match their keys, iteration never
//! sees a key twice and always sees the keys that stay, and no entry is lost while shards grow
//! and shrink. Each test is bounded by time (about a second on two cores).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mapguard::ReadMostlyMap;

const RUN_FOR: Duration = Duration::from_millis(800);

/// The only value ever stored under `key`; boxed so that a read of freed memory shows up as a
/// wrong value rather than a lucky one.
fn f(key: u64) -> Box<[u64; 2]> {
    Box::new([key, key.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1])
}

fn run_until(stop: &AtomicBool, mut step: impl FnMut(u64)) -> u64 {
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        step(round);
        round += 1;
    }
    round
}

fn stop_after(stop: &AtomicBool, duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
}

fn check_all_shapes(test: impl Fn(Arc<ReadMostlyMap<u64, Box<[u64; 2]>>>)) {
    test(Arc::new(
        ReadMostlyMap::builder().shards(1).build().unwrap(),
    ));
    test(Arc::new(ReadMostlyMap::new()));
}

#[test]
fn readers_and_iterators_see_only_whole_values() {
    check_all_shapes(|map| {
        let stop = AtomicBool::new(false);
        const KEYS: u64 = 2_000;
        thread::scope(|s| {
            // Writers: overwrite, remove and re-insert, get_or_insert, compare_exchange.
            for writer in 0..2u64 {
                let map = &map;
                let stop = &stop;
                s.spawn(move || {
                    run_until(stop, |round| {
                        let key = (round * 7 + writer * 1_000) % KEYS;
                        match round % 5 {
                            0 | 1 => {
                                map.insert(key, f(key));
                            }
                            2 => {
                                if let Some(old) = map.remove(&key) {
                                    assert_eq!(**old, *f(key));
                                }
                            }
                            3 => assert_eq!(**map.get_or_insert_with(key, || f(key)), *f(key)),
                            _ => {
                                let _ = map.compare_exchange(key, &f(key), f(key));
                            }
                        }
                    });
                });
            }
            // A reader.
            s.spawn(|| {
                let reads = run_until(&stop, |round| {
                    let key = round.wrapping_mul(31) % KEYS;
                    if let Some(value) = map.get(&key) {
                        assert_eq!(**value, *f(key));
                    }
                    if let Some(value) = map.get_cloned(&key) {
                        assert_eq!(*value, *f(key));
                    }
                });
                assert!(reads > 0);
            });
            // An iterator.
            s.spawn(|| {
                run_until(&stop, |_| {
                    let mut seen = HashSet::new();
                    for entry in map.iter() {
                        assert_eq!(**entry, *f(*entry.key()));
                        assert!(seen.insert(*entry.key()), "key {} seen twice", entry.key());
                    }
                });
            });
            stop_after(&stop, RUN_FOR);
        });
        map.reclaim();
    });
}

#[test]
fn keys_present_throughout_are_seen_exactly_once() {
    check_all_shapes(|map| {
        const STABLE: u64 = 500;
        for key in 0..STABLE {
            map.insert(key, f(key));
        }
        let stop = AtomicBool::new(false);
        thread::scope(|s| {
            // Churn on other keys makes shards grow, shrink and rebuild under the iterator.
            s.spawn(|| {
                run_until(&stop, |round| {
                    let base = STABLE + (round % 4) * 3_000;
                    for key in base..base + 3_000 {
                        map.insert(key, f(key));
                    }
                    for key in base..base + 3_000 {
                        map.remove(&key);
                    }
                    // Overwrites of stable keys while iterating.
                    map.insert(round % STABLE, f(round % STABLE));
                });
            });
            s.spawn(|| {
                let rounds = run_until(&stop, |_| {
                    let mut seen = HashSet::new();
                    for entry in map.iter() {
                        assert_eq!(**entry, *f(*entry.key()));
                        assert!(seen.insert(*entry.key()), "key {} seen twice", entry.key());
                    }
                    for key in 0..STABLE {
                        assert!(seen.contains(&key), "stable key {key} missed");
                    }
                });
                assert!(rounds > 0);
            });
            stop_after(&stop, RUN_FOR);
        });
    });
}

#[test]
fn no_entry_is_lost_while_shards_grow_and_shrink() {
    check_all_shapes(|map| {
        let stop = AtomicBool::new(false);
        thread::scope(|s| {
            // Fills and empties 128 keys again and again: the shards grow and shrink.
            s.spawn(|| {
                run_until(&stop, |_| {
                    for key in 0..128 {
                        map.insert(key, f(key));
                    }
                    for key in 0..128 {
                        assert!(map.remove(&key).is_some(), "key {key} vanished");
                    }
                });
            });
            s.spawn(|| {
                let checks = run_until(&stop, |round| {
                    let key = 1_000_000 + round % 64;
                    map.insert(key, f(key));
                    thread::sleep(Duration::from_micros(round % 10));
                    assert!(map.contains_key(&key), "key {key} lost after insert");
                    assert_eq!(map.get_cloned(&key).as_deref(), Some(&*f(key)));
                    assert!(
                        map.remove_if_eq(&key, &f(key)),
                        "key {key} lost before remove"
                    );
                });
                assert!(checks > 10);
            });
            stop_after(&stop, RUN_FOR);
        });
        assert!(map.is_empty(), "{} entries left", map.len());
    });
}

#[test]
fn references_outlive_overwrites_and_clears() {
    let map: Arc<ReadMostlyMap<u64, Box<[u64; 2]>>> = Arc::new(ReadMostlyMap::new());
    for key in 0..64 {
        map.insert(key, f(key));
    }
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            run_until(&stop, |round| {
                let key = round % 64;
                map.insert(key, f(key));
                if round % 1_000 == 0 {
                    map.clear();
                }
            });
        });
        s.spawn(|| {
            run_until(&stop, |round| {
                let held: Vec<_> = (0..8)
                    .filter_map(|k| map.get(&((round + k) % 64)))
                    .collect();
                thread::yield_now();
                for entry in &held {
                    assert_eq!(***entry, *f(*entry.key()));
                }
            });
        });
        stop_after(&stop, RUN_FOR);
    });
}

/// A value whose comparison stalls while `STALL` is set, to keep a writer inside its shard's
/// lock (`compare_exchange` compares under the lock).
#[derive(Debug)]
struct SlowEq(u64);

static STALL: AtomicBool = AtomicBool::new(false);
static IN_EQ: AtomicBool = AtomicBool::new(false);

impl PartialEq for SlowEq {
    fn eq(&self, other: &Self) -> bool {
        if STALL.load(Ordering::Relaxed) {
            IN_EQ.store(true, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(300));
            IN_EQ.store(false, Ordering::SeqCst);
        }
        self.0 == other.0
    }
}

#[test]
fn reads_do_not_wait_for_a_writer_holding_the_shard() {
    let map: ReadMostlyMap<u64, SlowEq> = ReadMostlyMap::builder().shards(1).build().unwrap();
    map.insert(1, SlowEq(10));
    map.insert(2, SlowEq(20));
    STALL.store(true, Ordering::SeqCst);
    thread::scope(|s| {
        let writer = s.spawn(|| map.compare_exchange(1, &SlowEq(10), SlowEq(11)).is_ok());
        while !IN_EQ.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        // The only shard is locked by the writer for the next ~300 ms.
        for _ in 0..10_000 {
            assert_eq!(map.get(&1).map(|v| v.0), Some(10));
            assert_eq!(map.get(&2).map(|v| v.0), Some(20));
            assert!(map.contains_key(&2));
        }
        assert_eq!(map.iter().count(), 2);
        assert!(
            IN_EQ.load(Ordering::SeqCst),
            "reads waited for the writer's lock"
        );
        STALL.store(false, Ordering::SeqCst);
        assert!(writer.join().unwrap());
    });
    assert_eq!(map.get(&1).map(|v| v.0), Some(11));
}

#[test]
fn racing_stores_of_new_keys_agree_on_one_value() {
    let map: ReadMostlyMap<u64, u64> = ReadMostlyMap::builder().shards(2).build().unwrap();
    const KEYS: u64 = 5_000;
    let winners: Vec<Vec<u64>> = thread::scope(|s| {
        let racers: Vec<_> = (0..2u64)
            .map(|racer| {
                let map = &map;
                s.spawn(move || {
                    (0..KEYS)
                        .map(|key| match key % 3 {
                            0 => *map.get_or_insert(key, racer),
                            1 => *map.get_or_insert_with(key, || racer),
                            _ => {
                                // Only a swap from "absent" may report no previous value.
                                match map.compare_exchange(key, &u64::MAX, racer) {
                                    Ok(_) => unreachable!("no value is ever u64::MAX"),
                                    Err(_) => *map.get_or_insert(key, racer),
                                }
                            }
                        })
                        .collect()
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(map.len(), KEYS as usize);
    for key in 0..KEYS {
        let stored = map.get_cloned(&key).unwrap();
        assert_eq!(winners[0][key as usize], stored, "key {key}");
        assert_eq!(winners[1][key as usize], stored, "key {key}");
    }
}

#[test]
fn retain_reserve_shrink_and_update_lose_no_kept_key_and_show_readers_whole_values() {
    check_all_shapes(|map| {
        const KEPT: u64 = 512;
        for key in 0..KEPT {
            map.insert(key, f(key));
        }
        let stop = AtomicBool::new(false);
        thread::scope(|s| {
            // Keys 0..KEPT stay throughout (rewritten by `update` with the same value); keys
            // above come and go through inserts and `retain`, while tables are reserved and
            // shrunk.
            s.spawn(|| {
                run_until(&stop, |round| {
                    for key in KEPT..KEPT + 256 {
                        map.insert(key + round % 4 * 1000, f(key + round % 4 * 1000));
                    }
                    match round % 3 {
                        0 => map.reserve(4096),
                        1 => map.shrink_to_fit(),
                        _ => {}
                    }
                    map.retain(|key, value| {
                        assert_eq!(**value, *f(*key));
                        *key < KEPT
                    });
                });
            });
            s.spawn(|| {
                run_until(&stop, |round| {
                    let key = round % KEPT;
                    let updated = map.update(&key, |value| {
                        assert_eq!(**value, *f(key));
                        f(key)
                    });
                    assert!(updated.is_some(), "kept key {key} vanished during update");
                });
            });
            s.spawn(|| {
                let reads = run_until(&stop, |round| {
                    let key = round % (KEPT + 4256);
                    match map.get(&key) {
                        Some(value) => assert_eq!(**value, *f(key), "a torn value"),
                        None => assert!(key >= KEPT, "kept key {key} not found"),
                    }
                });
                assert!(reads > 100);
            });
            stop_after(&stop, RUN_FOR);
        });
        map.retain(|key, _| *key < KEPT);
        assert_eq!(map.len(), KEPT as usize);
        for key in 0..KEPT {
            assert_eq!(map.get_cloned(&key).as_deref(), Some(&*f(key)));
        }
    });
}
