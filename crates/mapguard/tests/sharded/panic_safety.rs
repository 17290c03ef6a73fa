//! Panic safety: a user closure (or a value's `Clone`) that panics inside a map call leaves the
//! map with the documented contents, unlocked (another thread can write at once), and with no
//! value leaked or dropped twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mapguard::{Action, ShardedMap};

use crate::common::{
    Config, Counts, TestState, Tracked, expect_panic, with_each_config, within_timeout,
};

type Map = ShardedMap<u64, Tracked, TestState>;

const KEYS: u64 = 64;

/// A map of `config` holding `key -> Tracked(key * 10)` for every key below [`KEYS`].
fn filled(config: &Config, counts: &Arc<Counts>) -> Arc<Map> {
    let map: Map = config.map();
    for key in 0..KEYS {
        map.insert(key, Tracked::new(key * 10, counts));
    }
    Arc::new(map)
}

/// The map's contents as plain numbers.
fn contents(map: &Map) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for entry in map.iter() {
        assert!(
            out.insert(*entry.key(), entry.value().value).is_none(),
            "key {} seen twice",
            entry.key()
        );
    }
    out
}

fn initial() -> BTreeMap<u64, u64> {
    (0..KEYS).map(|key| (key, key * 10)).collect()
}

/// Every shard can be written at once from another thread and from this one, and the
/// contents are still `expected`.
fn assert_unlocked(map: &Arc<Map>, counts: &Arc<Counts>, expected: &BTreeMap<u64, u64>) {
    let other = Arc::clone(map);
    let other_counts = Arc::clone(counts);
    within_timeout("a write from another thread after the panic", move || {
        for key in 0..KEYS {
            other.insert(1000 + key, Tracked::new(0, &other_counts));
        }
        for key in 0..KEYS {
            assert_eq!(other.remove(&(1000 + key)).map(|v| v.value), Some(0));
        }
    });
    for key in 0..KEYS {
        map.insert(2000 + key, Tracked::new(0, counts));
        assert!(map.remove(&(2000 + key)).is_some());
    }
    assert_eq!(&contents(map), expected);
    assert_eq!(map.len(), expected.len());
}

/// Drops the map and checks that every value made was dropped exactly once.
fn assert_no_leak(map: Arc<Map>, counts: &Arc<Counts>) {
    let map = Arc::into_inner(map).expect("no other handle to the map is left");
    assert_eq!(counts.alive(), map.len(), "values alive besides the map's");
    drop(map);
    assert_eq!(counts.made(), counts.dropped(), "a value leaked");
}

#[test]
fn compute_panicking_on_present_key() {
    with_each_config(|config| {
        let counts = Arc::new(Counts::default());
        let map = filled(config, &counts);
        let message = expect_panic(|| {
            map.compute(5, |_, old| {
                assert_eq!(old.map(|v| v.value), Some(50));
                let _made_then_dropped = Tracked::new(1, &counts);
                panic!("decide failed");
            })
        });
        assert!(message.contains("decide failed"), "{message}");
        assert_unlocked(&map, &counts, &initial());
        assert_no_leak(map, &counts);
    });
}

#[test]
fn compute_panicking_on_absent_key() {
    with_each_config(|config| {
        let counts = Arc::new(Counts::default());
        let map = filled(config, &counts);
        expect_panic(|| {
            map.compute(KEYS + 1, |_, old| -> Action<Tracked> {
                assert!(old.is_none());
                panic!("decide failed");
            })
        });
        assert!(!map.contains_key(&(KEYS + 1)));
        assert_unlocked(&map, &counts, &initial());
        assert_no_leak(map, &counts);
    });
}

#[test]
fn get_or_insert_with_panicking() {
    with_each_config(|config| {
        let counts = Arc::new(Counts::default());
        let map = filled(config, &counts);
        expect_panic(|| {
            map.get_or_insert_with(KEYS + 3, || {
                let _made_then_dropped = Tracked::new(1, &counts);
                panic!("make failed")
            })
            .value
        });
        assert!(!map.contains_key(&(KEYS + 3)));
        // A present key never calls `make`.
        let value = map
            .get_or_insert_with(3, || panic!("make called for a present key"))
            .value;
        assert_eq!(value, 30);
        assert_unlocked(&map, &counts, &initial());
        assert_no_leak(map, &counts);
    });
}

#[test]
fn entry_or_insert_with_panicking() {
    with_each_config(|config| {
        let counts = Arc::new(Counts::default());
        let map = filled(config, &counts);
        expect_panic(|| {
            map.entry(KEYS + 4)
                .or_insert_with(|| {
                    let _made_then_dropped = Tracked::new(1, &counts);
                    panic!("make failed")
                })
                .value
        });
        assert!(!map.contains_key(&(KEYS + 4)));
        assert_unlocked(&map, &counts, &initial());
        assert_no_leak(map, &counts);
    });
}

#[test]
fn entry_and_modify_panicking_keeps_what_it_did() {
    with_each_config(|config| {
        let counts = Arc::new(Counts::default());
        let map = filled(config, &counts);
        expect_panic(|| {
            map.entry(7).and_modify(|v| {
                v.value = 777;
                panic!("change failed")
            });
        });
        let mut expected = initial();
        expected.insert(7, 777);
        assert_unlocked(&map, &counts, &expected);
        assert_no_leak(map, &counts);
    });
}

#[test]
fn update_panicking_keeps_what_it_did() {
    with_each_config(|config| {
        let counts = Arc::new(Counts::default());
        let map = filled(config, &counts);
        expect_panic(|| {
            map.update(&9, |v| {
                // Replacing the value drops the old one once; the new one stays.
                *v = Tracked::new(999, &counts);
                panic!("change failed")
            })
        });
        let mut expected = initial();
        expected.insert(9, 999);
        assert_unlocked(&map, &counts, &expected);
        assert_no_leak(map, &counts);
    });
}

#[test]
fn remove_if_panicking_keeps_the_entry() {
    with_each_config(|config| {
        let counts = Arc::new(Counts::default());
        let map = filled(config, &counts);
        expect_panic(|| map.remove_if(&11, |_, _| panic!("condition failed")));
        assert_unlocked(&map, &counts, &initial());
        assert_no_leak(map, &counts);
    });
}

#[test]
fn retain_panicking_removes_only_what_it_rejected() {
    with_each_config(|config| {
        let counts = Arc::new(Counts::default());
        let map = filled(config, &counts);
        let mut calls = 0;
        let mut rejected = Vec::new();
        let mut seen = Vec::new();
        expect_panic(|| {
            map.retain(|key, value| {
                assert_eq!(value.value, key * 10);
                seen.push(*key);
                calls += 1;
                if calls == 40 {
                    panic!("keep failed");
                }
                if key % 3 == 0 {
                    rejected.push(*key);
                    return false;
                }
                true
            })
        });
        assert_eq!(calls, 40);
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "retain visited a key twice");
        let mut expected = initial();
        for key in &rejected {
            expected.remove(key);
        }
        assert!(!rejected.is_empty());
        assert_unlocked(&map, &counts, &expected);
        // A retain that completes afterwards sees exactly the entries that are left.
        let mut visited = 0;
        map.retain(|_, _| {
            visited += 1;
            true
        });
        assert_eq!(visited, expected.len());
        assert_no_leak(map, &counts);
    });
}

/// A value whose `clone` panics on one chosen value.
#[derive(Debug)]
struct FragileClone {
    inner: Tracked,
    explode: Arc<AtomicBool>,
}

impl Clone for FragileClone {
    fn clone(&self) -> Self {
        if self.inner.value == 130 && self.explode.load(Ordering::SeqCst) {
            panic!("clone failed");
        }
        Self {
            inner: self.inner.clone(),
            explode: Arc::clone(&self.explode),
        }
    }
}

#[test]
fn panicking_clone_in_get_cloned_and_clone_releases_the_read_locks() {
    with_each_config(|config| {
        let counts = Arc::new(Counts::default());
        let explode = Arc::new(AtomicBool::new(true));
        let map: Arc<ShardedMap<u64, FragileClone, TestState>> = Arc::new(config.map());
        for key in 0..KEYS {
            map.insert(
                key,
                FragileClone {
                    inner: Tracked::new(key * 10, &counts),
                    explode: Arc::clone(&explode),
                },
            );
        }
        expect_panic(|| map.get_cloned(&13));
        expect_panic(|| ShardedMap::clone(&map));
        // Everything cloned before the panic was dropped again.
        assert_eq!(counts.alive(), KEYS as usize);
        let other = Arc::clone(&map);
        within_timeout("a write from another thread after the panics", move || {
            for key in 0..KEYS {
                other.update(&key, |v| v.inner.value += 1);
            }
        });
        explode.store(false, Ordering::SeqCst);
        let copy = ShardedMap::clone(&map);
        assert_eq!(copy.len(), KEYS as usize);
        assert!(copy.iter().all(|e| e.inner.value == e.key() * 10 + 1));
        drop(copy);
        let map = Arc::into_inner(map).unwrap();
        drop(map);
        assert_eq!(counts.made(), counts.dropped(), "a value leaked");
    });
}

/// A thread that panics while it holds guards releases them as it unwinds.
#[test]
fn thread_panicking_with_guards_held_leaves_the_map_unlocked() {
    with_each_config(|config| {
        let counts = Arc::new(Counts::default());
        let map = filled(config, &counts);
        let holder = Arc::clone(&map);
        let outcome = std::thread::spawn(move || {
            let _read = holder.get(&1).unwrap();
            let _more: Vec<_> = (10..30).map(|k| holder.get(&k).unwrap()).collect();
            let _iter = holder.iter().take(3).collect::<Vec<_>>();
            panic!("worker failed");
        })
        .join();
        assert!(outcome.is_err());
        let writer = Arc::clone(&map);
        let writer_counts = Arc::clone(&counts);
        within_timeout("writes after a reader thread panicked", move || {
            for key in 0..KEYS {
                writer.insert(key, Tracked::new(key * 10, &writer_counts));
            }
        });
        let holder = Arc::clone(&map);
        let outcome = std::thread::spawn(move || {
            let mut write = holder.get_mut(&2).unwrap();
            write.value = 222;
            panic!("worker failed");
        })
        .join();
        assert!(outcome.is_err());
        let mut expected = initial();
        expected.insert(2, 222);
        assert_unlocked(&map, &counts, &expected);
        assert_no_leak(map, &counts);
    });
}
