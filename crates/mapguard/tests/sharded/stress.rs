//! Multi-thread stress with invariants: writers store values that readers and iterators can
//! check against their key, iterations never see a key twice and see every stable key exactly
//! once, and counts add up exactly after the threads join. Each test is bounded in operations
//! and runs well under a few seconds on two cores.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use mapguard::{Action, Computed, ShardedMap};

use crate::common::{Config, TestState, with_each_config};

type Map = ShardedMap<u64, u64, TestState>;

/// Keys that writers churn (insert, overwrite, remove).
const CHURN_KEYS: u64 = 512;
/// Keys present from before the threads start until after they stop.
const STABLE_FIRST: u64 = 10_000;
const STABLE_KEYS: u64 = 256;

/// The value a writer stores for `key` at `generation`: the key is recoverable from it.
fn encode(key: u64, generation: u64) -> u64 {
    (generation << 32) | (key.wrapping_mul(0x9e37_79b9) & 0xffff_ffff)
}

fn check(key: u64, value: u64) {
    assert_eq!(
        value & 0xffff_ffff,
        key.wrapping_mul(0x9e37_79b9) & 0xffff_ffff,
        "key {key} holds a value written for another key: {value:#x}"
    );
}

/// A small deterministic generator per thread (xorshift), so runs are repeatable in shape.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The configurations for stress runs: few shards (heavy contention) and many.
fn stress_configs(mut test: impl FnMut(&Config)) {
    with_each_config(|config| {
        // The degraded hashers make every lookup a long probe chain; keep them for the
        // smaller tests only.
        if !config.collide && !config.four_bits {
            test(config);
        }
    });
}

#[test]
fn readers_and_iterators_see_consistent_values_under_writes() {
    stress_configs(|config| {
        let map: Arc<Map> = Arc::new(config.map());
        for key in STABLE_FIRST..STABLE_FIRST + STABLE_KEYS {
            map.insert(key, encode(key, 0));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writers_left = Arc::new(AtomicUsize::new(3));
        let mut threads = Vec::new();
        for id in 0..3u64 {
            let map = Arc::clone(&map);
            let stop = Arc::clone(&stop);
            let writers_left = Arc::clone(&writers_left);
            threads.push(std::thread::spawn(move || {
                let mut rng = Rng(0x1234_5678 + id);
                for generation in 1..=12_000u64 {
                    let key = rng.next() % CHURN_KEYS;
                    let stable = STABLE_FIRST + rng.next() % STABLE_KEYS;
                    match rng.next() % 8 {
                        0 | 1 => {
                            if let Some(old) = map.insert(key, encode(key, generation)) {
                                check(key, old);
                            }
                        }
                        2 => {
                            if let Some(old) = map.remove(&key) {
                                check(key, old);
                            }
                        }
                        3 => {
                            map.compute(key, |k, old| match old {
                                Some(&v) if (v >> 32) % 2 == 0 => Action::Remove,
                                _ => Action::Set(encode(*k, generation)),
                            });
                        }
                        4 => {
                            *map.entry(key).or_insert(encode(key, generation)) =
                                encode(key, generation + 1);
                        }
                        5 => {
                            // Stable keys are overwritten but never removed.
                            if let Some(mut v) = map.get_mut(&stable) {
                                check(stable, *v);
                                *v = encode(stable, generation);
                            }
                        }
                        6 => {
                            map.update(&stable, |v| *v = encode(stable, generation));
                        }
                        _ => {
                            map.remove_if(&key, |k, v| {
                                check(*k, *v);
                                generation % 2 == 0
                            });
                        }
                    }
                }
                if writers_left.fetch_sub(1, Ordering::SeqCst) == 1 {
                    stop.store(true, Ordering::SeqCst);
                }
            }));
        }
        // Readers: point reads.
        for id in 0..2u64 {
            let map = Arc::clone(&map);
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                let mut rng = Rng(0x9999 + id);
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) || reads < 1000 {
                    reads += 1;
                    let key = rng.next() % CHURN_KEYS;
                    if let Some(entry) = map.get(&key) {
                        assert_eq!(*entry.key(), key);
                        check(key, *entry);
                    }
                    if let Some(v) = map.get_cloned(&key) {
                        check(key, v);
                    }
                    let stable = STABLE_FIRST + rng.next() % STABLE_KEYS;
                    let v = map
                        .get_cloned(&stable)
                        .unwrap_or_else(|| panic!("stable key {stable} missing"));
                    check(stable, v);
                    assert!(map.contains_key(&stable));
                }
            }));
        }
        // Iterators: each pass sees no key twice, every stable key exactly once.
        {
            let map = Arc::clone(&map);
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                let mut passes = 0;
                while !stop.load(Ordering::Relaxed) || passes < 3 {
                    passes += 1;
                    let mut seen = HashSet::new();
                    for entry in map.iter() {
                        let key = *entry.key();
                        check(key, *entry.value());
                        assert!(seen.insert(key), "key {key} seen twice in one iteration");
                        assert!(
                            key < CHURN_KEYS
                                || (STABLE_FIRST..STABLE_FIRST + STABLE_KEYS).contains(&key),
                            "key {key} was never inserted"
                        );
                    }
                    for key in STABLE_FIRST..STABLE_FIRST + STABLE_KEYS {
                        assert!(seen.contains(&key), "stable key {key} missed by iteration");
                    }
                    let keys: Vec<u64> = map.keys().map(|k| *k).collect();
                    let unique: HashSet<u64> = keys.iter().copied().collect();
                    assert_eq!(unique.len(), keys.len(), "keys() yielded a key twice");
                    let len = map.len();
                    assert!(
                        (STABLE_KEYS as usize..=(STABLE_KEYS + CHURN_KEYS) as usize).contains(&len),
                        "len {len} out of range"
                    );
                }
            }));
        }
        for thread in threads {
            thread.join().unwrap();
        }
        let mut seen = HashSet::new();
        for entry in map.iter() {
            check(*entry.key(), *entry.value());
            assert!(seen.insert(*entry.key()));
        }
        assert_eq!(seen.len(), map.len());
    });
}

#[test]
fn disjoint_inserts_then_half_removed_add_up() {
    stress_configs(|config| {
        const THREADS: u64 = 6;
        const PER_THREAD: u64 = 3_000;
        let map: Arc<Map> = Arc::new(config.map());
        let barrier = Arc::new(Barrier::new(THREADS as usize));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let map = Arc::clone(&map);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    let first = t * 1_000_000;
                    for key in first..first + PER_THREAD {
                        assert_eq!(map.insert(key, key * 3), None, "key {key} already present");
                    }
                    for key in (first..first + PER_THREAD).step_by(2) {
                        assert_eq!(map.remove(&key), Some(key * 3), "key {key} lost");
                    }
                    for key in first..first + PER_THREAD {
                        assert_eq!(map.contains_key(&key), key % 2 == 1);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(map.len(), (THREADS * PER_THREAD / 2) as usize);
        let mut expected: Vec<(u64, u64)> = (0..THREADS)
            .flat_map(|t| (t * 1_000_000..t * 1_000_000 + PER_THREAD).filter(|k| k % 2 == 1))
            .map(|k| (k, k * 3))
            .collect();
        expected.sort_unstable();
        let map = Arc::into_inner(map).unwrap();
        let mut actual: Vec<(u64, u64)> = map.into_iter().collect();
        actual.sort_unstable();
        assert_eq!(actual, expected);
    });
}

#[test]
fn compute_update_entry_and_get_mut_counters_add_up() {
    with_each_config(|config| {
        const THREADS: usize = 4;
        const ROUNDS: u64 = 2_000;
        const COUNTERS: u64 = 8;
        let map: Arc<Map> = Arc::new(config.map());
        // `update` and `get_mut` only change present keys.
        for key in 100..100 + COUNTERS {
            map.insert(key, 0);
        }
        for key in 200..200 + COUNTERS {
            map.insert(key, 0);
        }
        let inserted = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let map = Arc::clone(&map);
                let barrier = Arc::clone(&barrier);
                let inserted = Arc::clone(&inserted);
                std::thread::spawn(move || {
                    barrier.wait();
                    for round in 0..ROUNDS {
                        let i = round % COUNTERS;
                        match map.compute(i, |_, n| Action::Set(n.copied().unwrap_or(0) + 1)) {
                            Computed::Inserted => {
                                inserted.fetch_add(1, Ordering::SeqCst);
                            }
                            Computed::Replaced(_) => {}
                            other => panic!("compute did {other:?}"),
                        }
                        *map.entry(50 + i).or_insert(0) += 1;
                        assert!(map.update(&(100 + i), |n| *n += 1).is_some());
                        *map.get_mut(&(200 + i)).unwrap() += 1;
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let per_counter = THREADS as u64 * ROUNDS / COUNTERS;
        for base in [0, 50, 100, 200] {
            for i in 0..COUNTERS {
                assert_eq!(
                    map.get_cloned(&(base + i)),
                    Some(per_counter),
                    "counter {} lost increments",
                    base + i
                );
            }
        }
        assert_eq!(inserted.load(Ordering::SeqCst), COUNTERS as usize);
        assert_eq!(map.len(), 4 * COUNTERS as usize);
    });
}

#[test]
fn racing_get_or_insert_with_inserts_once() {
    with_each_config(|config| {
        const THREADS: usize = 6;
        const KEYS: u64 = 200;
        let map: Arc<Map> = Arc::new(config.map());
        let made = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS as u64)
            .map(|t| {
                let map = Arc::clone(&map);
                let made = Arc::clone(&made);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for key in 0..KEYS {
                        barrier.wait();
                        let value = *map.get_or_insert_with(key, || {
                            made.fetch_add(1, Ordering::SeqCst);
                            t
                        });
                        got.push(value);
                    }
                    got
                })
            })
            .collect();
        let results: Vec<Vec<u64>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(
            made.load(Ordering::SeqCst),
            KEYS as usize,
            "get_or_insert_with made a value more than once for some key"
        );
        for key in 0..KEYS {
            let winner = map.get_cloned(&key).unwrap();
            for got in &results {
                assert_eq!(got[key as usize], winner, "threads saw different values");
            }
        }
    });
}

#[test]
fn racing_try_insert_has_one_winner() {
    stress_configs(|config| {
        const THREADS: usize = 4;
        const KEYS: u64 = 200;
        let map: Arc<Map> = Arc::new(config.map());
        let barrier = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS as u64)
            .map(|t| {
                let map = Arc::clone(&map);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let mut wins = Vec::new();
                    for key in 0..KEYS {
                        barrier.wait();
                        match map.try_insert(key, t) {
                            Ok(entry) => {
                                assert_eq!(*entry, t);
                                wins.push(key);
                            }
                            Err(err) => {
                                assert_eq!(err.value, t);
                                assert_ne!(*err.current, t);
                            }
                        }
                    }
                    wins
                })
            })
            .collect();
        let mut wins: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        wins.sort_unstable();
        assert_eq!(
            wins,
            (0..KEYS).collect::<Vec<_>>(),
            "each key has exactly one winner"
        );
    });
}

#[test]
fn clear_and_retain_under_readers() {
    stress_configs(|config| {
        let map: Arc<Map> = Arc::new(config.map());
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let map = Arc::clone(&map);
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        for entry in map.iter() {
                            check(*entry.key(), *entry);
                        }
                    }
                })
            })
            .collect();
        for round in 0..200u64 {
            for key in 0..64 {
                map.insert(key, encode(key, round));
            }
            map.retain(|k, v| {
                check(*k, *v);
                k % 2 == 0
            });
            assert_eq!(map.len(), 32);
            map.clear();
            assert!(map.is_empty());
        }
        stop.store(true, Ordering::SeqCst);
        for reader in readers {
            reader.join().unwrap();
        }
    });
}

/// Reader threads that come and go (their reader records are handed to later threads) leave
/// no read behind: a writer afterwards does not wait.
#[test]
fn short_lived_reader_threads_leave_no_reads_behind() {
    let map: Arc<Map> = Arc::new(crate::common::map_with_shards(16));
    for key in 0..64 {
        map.insert(key, encode(key, 0));
    }
    for round in 0..20u64 {
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let map = Arc::clone(&map);
                std::thread::spawn(move || {
                    // More distinct shards than reader slots, so overflow holds are used too.
                    let guards: Vec<_> = (0..64).map(|k| map.get(&k).unwrap()).collect();
                    for (key, guard) in guards.iter().enumerate() {
                        check(key as u64, **guard);
                    }
                })
            })
            .collect();
        for reader in readers {
            reader.join().unwrap();
        }
        let writer = Arc::clone(&map);
        crate::common::within_timeout("a write after reader threads exited", move || {
            for key in 0..64 {
                writer.insert(key, encode(key, round + 1));
            }
        });
    }
    assert!(map.iter().all(|e| *e.value() >> 32 == 20));
}

/// How long [`nested_iteration_with_writers_never_changes_a_guarded_string`] runs, in seconds
/// (`MAPGUARD_NESTED_SECS`, 3 by default).
fn nested_stress_duration() -> std::time::Duration {
    let secs = std::env::var("MAPGUARD_NESTED_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .unwrap_or(3);
    std::time::Duration::from_secs(secs)
}

/// A heap value that says which key and generation it was written for and carries a checksum
/// of both, so that a reader can tell a value freed and reused (or half written) from a real one.
fn checked_string(key: u64, generation: u64) -> String {
    let sum = key.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ generation.wrapping_mul(0xc2b2_ae35);
    format!("{key:>6}:{generation:>10}:{sum:016x}:{}", "-".repeat(24))
}

#[track_caller]
fn check_string(key: u64, value: &str) {
    let generation = value
        .split(':')
        .nth(1)
        .and_then(|generation| generation.trim().parse().ok())
        .unwrap_or_else(|| panic!("key {key}: not a value of this test: {value:?}"));
    assert_eq!(
        value,
        checked_string(key, generation),
        "key {key}: corrupt value"
    );
}

/// Runs `body`, letting through only the map's own deadlock reports (the map resolves the real
/// deadlocks that nested iteration and writers make by failing one waiter); any other panic
/// fails the test. Whether `body` ran to its end.
fn unless_deadlock_resolved(body: impl FnOnce()) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(()) => true,
        Err(payload) => {
            let message = crate::common::panic_message(&*payload);
            assert!(
                message.starts_with("mapguard: deadlock detected"),
                "not a deadlock report: {message}"
            );
            false
        }
    }
}

/// Two threads iterate the map nested (an `iter()` inside an `iter()` loop) while two threads
/// overwrite, remove and re-insert `String` values. Nested iteration with writers makes real
/// cross-thread deadlocks (a reader holding shard i waits behind a writer queued on shard j,
/// whose readers wait behind a writer queued on i), which the map resolves by failing one
/// waiter. Every value a guard shows must stay as it was for the guard's whole life and carry
/// a valid checksum: a writer let in while a reader is inside would change or free it.
#[test]
fn nested_iteration_with_writers_never_changes_a_guarded_string() {
    const KEYS: u64 = 32;
    let map: Arc<ShardedMap<u64, String>> = Arc::new(
        ShardedMap::builder()
            .shards(4)
            .deadlock_check_after(std::time::Duration::from_millis(1))
            .build()
            .unwrap(),
    );
    for key in 0..KEYS {
        map.insert(key, checked_string(key, 0));
    }
    let deadline = std::time::Instant::now() + nested_stress_duration();
    let mut threads = Vec::new();
    for id in 0..2u64 {
        let map = Arc::clone(&map);
        threads.push(std::thread::spawn(move || {
            #[cfg(feature = "lockdep")]
            let _recorder = crate::lockdep::Recorder::install();
            let (mut passes, mut resolved) = (0u64, 0u64);
            while std::time::Instant::now() < deadline {
                let finished = unless_deadlock_resolved(|| {
                    // The outer iterator read-locks each shard for as long as it walks it:
                    // the shard's contents, as the first inner pass finds them, must stay as
                    // they are until it moves on.
                    let mut shard = usize::MAX;
                    let mut held: Vec<(u64, String)> = Vec::new();
                    for outer in map.iter() {
                        check_string(*outer.key(), outer.value());
                        let mut now = Vec::new();
                        for inner in map.iter() {
                            check_string(*inner.key(), inner.value());
                            if inner.shard() == outer.shard() {
                                now.push((*inner.key(), inner.value().clone()));
                            }
                        }
                        if outer.shard() != shard {
                            shard = outer.shard();
                            held = now;
                        } else {
                            assert_eq!(
                                now, held,
                                "iterator {id}: shard {shard} changed while the iterator \
                                 read-locked it"
                            );
                        }
                    }
                });
                passes += u64::from(finished);
                resolved += u64::from(!finished);
            }
            (passes, resolved)
        }));
    }
    for id in 0..2u64 {
        let map = Arc::clone(&map);
        threads.push(std::thread::spawn(move || {
            #[cfg(feature = "lockdep")]
            let _recorder = crate::lockdep::Recorder::install();
            let mut rng = Rng(0x5eed_0000 + id);
            let (mut writes, mut resolved) = (0u64, 0u64);
            let mut generation = id << 40;
            while std::time::Instant::now() < deadline {
                generation += 1;
                let key = rng.next() % KEYS;
                let finished = unless_deadlock_resolved(|| {
                    if generation % 4 == 0 {
                        if let Some(old) = map.remove(&key) {
                            check_string(key, &old);
                        }
                        map.insert(key, checked_string(key, generation));
                    } else if let Some(old) = map.insert(key, checked_string(key, generation)) {
                        check_string(key, &old);
                    }
                });
                writes += u64::from(finished);
                resolved += u64::from(!finished);
            }
            (writes, resolved)
        }));
    }
    let mut totals = Vec::new();
    for thread in threads {
        totals.push(thread.join().expect("no corrupt value, no other panic"));
    }
    eprintln!("nested iteration with writers: (done, deadlocks resolved) per thread {totals:?}");
    assert!(
        totals.iter().all(|&(done, _)| done > 0),
        "every thread got work done: {totals:?}"
    );
    for key in 0..KEYS {
        if let Some(value) = map.get_cloned(&key) {
            check_string(key, &value);
        }
    }
}
