//! Loom models of `ShardedMap`'s shard lock: the reader/writer handshake through per-thread
//! records (in a thread's first slot and in another), a writer skipping the walk of a
//! fenced shard no reader got into, recursive reads with a writer waiting,
//! downgrade, two writers, reads and iteration while a writer grows, shrinks and rebuilds
//! the shard's table, and the two paths on which a writer gives its word back without having
//! waited for the readers (it found its own thread's read; it gave up its wait to end a
//! deadlock), each followed by another writer; and a reader that turns a write-heavy shard
//! back to fenced readers (the writer word taken for an instant) against a writer.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p mapguard --test loom_sharded --release`.
//! Under loom every guard holds a tracked access to the shard's data, so a read that could
//! overlap a write fails the model as a data race. Without `--cfg loom` this file is empty.
#![cfg(loom)]

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use std::panic::{AssertUnwindSafe, catch_unwind};

use loom::sync::Arc;
use loom::thread;
use mapguard::ShardedMap;
#[path = "support/loom_model.rs"]
mod loom_model;
use loom_model::model;

fn one_shard() -> Arc<ShardedMap<u64, u64>> {
    Arc::new(ShardedMap::builder().shards(1).build().unwrap())
}

#[test]
fn reader_never_overlaps_writer() {
    model(|| {
        let map = one_shard();
        map.insert(1, 10);
        let writer = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                map.insert(1, 20);
                map.insert(2, 30);
            })
        };
        let seen = map.get(&1).map(|v| *v);
        assert!(matches!(seen, Some(10) | Some(20)), "read {seen:?}");
        let other = map.get_cloned(&2);
        assert!(matches!(other, None | Some(30)), "read {other:?}");
        writer.join().unwrap();
        assert_eq!(map.get_cloned(&1), Some(20));
        assert_eq!(map.get_cloned(&2), Some(30));
    });
}

#[test]
fn recursive_read_with_a_writer_waiting_does_not_hang() {
    model(|| {
        let map = one_shard();
        map.insert(1, 1);
        let writer = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                map.insert(1, 2);
            })
        };
        let first = map.get(&1).map(|v| *v);
        {
            let outer = map.get(&1).unwrap();
            // The writer may be waiting for `outer` now; a second read must not wait for it.
            let inner = map.get(&1).unwrap();
            assert_eq!(*outer, *inner);
        }
        assert!(matches!(first, Some(1) | Some(2)));
        writer.join().unwrap();
        assert_eq!(map.get_cloned(&1), Some(2));
    });
}

#[test]
fn two_writers_and_a_downgrade() {
    model(|| {
        let map = one_shard();
        let other = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                map.insert(2, 2);
            })
        };
        // `get_or_insert_with` writes, then downgrades to a read guard without letting the
        // other writer in between.
        let value = *map.get_or_insert_with(1, || 1);
        assert_eq!(value, 1);
        other.join().unwrap();
        assert_eq!(map.len(), 2);
    });
}

/// A writer of a fenced shard walks the reader records only if a fenced reader got in since
/// the last writer let go (the `SEEN` bit): a reader that publishes and finds the shard
/// fenced sets the bit, or finds the writer. The prefill leaves the shard fenced with the bit
/// clear (under loom every second write switches between fenced and write-heavy, so four
/// writes end fenced), so the writer's insert may skip the walk if no read got in first.
/// Built with `--cfg mapguard_broken_seen` (a reader that does not set the bit) this model
/// fails with a data race.
#[test]
fn unread_fenced_shard_skips_walk() {
    model(|| {
        let map = one_shard();
        for key in 1..=4 {
            map.insert(key, key * 10);
        }
        let writer = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                map.insert(1, 11);
            })
        };
        let seen = map.get(&1).map(|v| *v);
        assert!(matches!(seen, Some(10) | Some(11)), "read {seen:?}");
        writer.join().unwrap();
        assert_eq!(map.get_cloned(&1), Some(11));
    });
}

/// A read published in a slot other than the first (the thread already reads another shard)
/// while a writer writes that shard: the writer looks past slot 0 only when the reader's
/// record says another slot may be in use, so it must see that word or the reader must see
/// the writer.
#[test]
fn second_slot_reader_never_overlaps_writer() {
    model(|| {
        // A fixed hasher: the model must place the keys alike in every execution.
        let hasher = BuildHasherDefault::<DefaultHasher>::default();
        let map = Arc::new(
            ShardedMap::builder()
                .shards(2)
                .hasher(hasher)
                .build()
                .unwrap(),
        );
        for key in 0..8 {
            map.insert(key, key);
        }
        let shard = |key: u64| map.get(&key).unwrap().shard();
        let other = (1..8).find(|&key| shard(key) != shard(0)).unwrap();
        let writer = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                map.insert(other, 100);
            })
        };
        let first = map.get(&0).unwrap();
        let seen = map.get(&other).map(|v| *v);
        assert!(
            seen == Some(other) || seen == Some(100),
            "read {seen:?} for key {other}"
        );
        assert_eq!(*first, 0);
        drop(first);
        writer.join().unwrap();
        assert_eq!(map.get_cloned(&other), Some(100));
    });
}

/// A read of a key present all along, while the writer's insert grows the shard's full table
/// (every entry moves to a new allocation).
#[test]
fn read_path_vs_table_growth() {
    model(|| {
        let map = one_shard();
        for key in 1..4 {
            map.insert(key, key * 10);
        }
        let before = map.capacity();
        let writer = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                map.insert(4, 40);
            })
        };
        assert_eq!(map.get(&1).map(|v| *v), Some(10));
        let grown = map.get_cloned(&4);
        assert!(matches!(grown, None | Some(40)), "read {grown:?}");
        writer.join().unwrap();
        assert!(map.capacity() > before, "the insert did not grow the table");
        assert_eq!(map.get_cloned(&3), Some(30));
    });
}

/// Iteration and a read while the writer empties the shard and shrinks its table.
#[test]
fn iteration_vs_removal_and_shrink() {
    model(|| {
        let map = one_shard();
        for key in 0..6 {
            map.insert(key, key);
        }
        for key in 2..6 {
            map.remove(&key);
        }
        let before = map.capacity();
        let writer = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                map.remove(&1);
                map.shrink_to_fit();
            })
        };
        let mut seen: Vec<u64> = map.iter().map(|r| *r.key()).collect();
        seen.sort_unstable();
        assert!(
            seen.contains(&0),
            "iteration missed a key present all along: {seen:?}"
        );
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "a key iterated twice: {seen:?}"
        );
        assert_eq!(map.get_cloned(&0), Some(0));
        writer.join().unwrap();
        assert_eq!(map.len(), 1);
        assert!(
            map.capacity() < before,
            "shrink_to_fit did not rebuild the table"
        );
    });
}

/// The writes a model's shard has had before its read, for the shard's mode: under loom every
/// second write switches between fenced and write-heavy, so one to four writes cover both
/// modes and both switches.
const PREFILLS: std::ops::RangeInclusive<u64> = 1..=4;

/// Keeps the expected panics of the `writer_that_*` models (one per execution) off the output;
/// every other panic is printed as usual.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !(message.starts_with("mapguard: deadlock avoided")
                || message.starts_with("mapguard: deadlock detected (forced by the loom model)"))
            {
                default(info);
            }
        }));
    });
}

/// A thread holding a read guard writes the same shard: the writer finds its own read, gives
/// the writer word back without waiting, and panics ("deadlock avoided"). Then another
/// thread writes the shard: it must wait for the guard, which is still inside (a data race
/// under loom otherwise). The word given back must not look like that of a shard nobody read.
/// Built with `--cfg mapguard_broken_abandon` (the word given back as a writer that waited
/// gives it) this model and the next fail with a data race.
#[test]
fn writer_that_finds_its_own_read_then_another_writer() {
    quiet_expected_panics();
    for prefill in PREFILLS {
        model(move || {
            let map = one_shard();
            for _ in 0..prefill {
                map.insert(1, 10);
            }
            let guard = map.get(&1).unwrap();
            let own = catch_unwind(AssertUnwindSafe(|| map.insert(1, 11)));
            assert!(
                own.is_err(),
                "a write under this thread's own read must panic"
            );
            let writer = {
                let map = Arc::clone(&map);
                thread::spawn(move || {
                    map.insert(1, 20);
                })
            };
            assert_eq!(*guard, 10);
            drop(guard);
            writer.join().unwrap();
            assert_eq!(map.get_cloned(&1), Some(20));
        });
    }
}

/// A writer waiting for a reader gives up its wait as the resolution of a deadlock makes it
/// do (loom has no clock for the detector, so the model asks for it), gives the writer word
/// back while the reader is still inside, and panics; then it writes again. The second write
/// must wait for the reader.
#[test]
fn writer_that_gives_up_its_wait_then_writes_again() {
    quiet_expected_panics();
    for prefill in PREFILLS {
        model(move || {
            let map = one_shard();
            for _ in 0..prefill {
                map.insert(1, 10);
            }
            let guard = map.get(&1).unwrap();
            let writer = {
                let map = Arc::clone(&map);
                thread::spawn(move || {
                    mapguard::loom_give_up::give_up_next_wait_for_readers();
                    // It waits (and gives up) only if the reader is still inside.
                    let _ = catch_unwind(AssertUnwindSafe(|| map.insert(1, 11)));
                    map.insert(1, 20);
                })
            };
            assert_eq!(*guard, 10);
            drop(guard);
            writer.join().unwrap();
            assert_eq!(map.get_cloned(&1), Some(20));
        });
    }
}

/// A reader of a write-heavy shard that finds it quiet turns counting off: it takes the writer
/// word for an instant and gives it back with the shard fenced, while it (and maybe other
/// readers) are inside. A writer running meanwhile must still wait for every reader. Under
/// loom every second fenced read looks at the mode and every write run counts as slow, so the
/// second read below turns counting off.
#[test]
fn reader_that_turns_counting_off_vs_writer() {
    model(|| {
        let map = one_shard();
        // Two writes: the second ends a run and makes the shard write-heavy.
        map.insert(1, 10);
        map.insert(2, 10);
        let writer = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                map.insert(1, 20);
            })
        };
        let first = map.get(&1).map(|v| *v);
        let guard = map.get(&1).unwrap();
        let held = *guard;
        assert_eq!(*guard, held);
        drop(guard);
        // A read after the switch: the writer, if it holds the word, still keeps it out.
        let after = map.get(&1).map(|v| *v);
        for seen in [first, Some(held), after] {
            assert!(matches!(seen, Some(10) | Some(20)), "read {seen:?}");
        }
        writer.join().unwrap();
        assert_eq!(map.get_cloned(&1), Some(20));
    });
}
