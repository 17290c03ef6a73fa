//! Loom models of the publish/retire protocol behind `ReadMostlyMap`: a writer swaps a shared
//! pointer, retires the old object with the epoch it reads, advances the epoch and frees the
//! object once expired, while readers pin, load the pointer and read the object. Loom reports
//! a read that overlaps the free as a data race.
//!
//! The first two models run the bare `Domain` with stand-in objects. The others drive the real
//! `ReadMostlyMap` (its slot tables, shard mutex, epoch pins and garbage lists all run on
//! loom's atomics, mutex, fences, thread-locals and tracked cells through the crate's
//! `primitive` shim, and the process-wide epoch domain is one per model execution) with one
//! shard and a handful of keys:
//!
//! - a read, and an iteration, racing an insert that grows the shard's table (rebuild, retire,
//!   reclaim);
//! - reads racing an overwrite and a remove, reads in turn (separate pins) across two
//!   overwrites, and a remove that frees the whole table;
//! - a value held across two overwrites and a reclaim, stamped by the garbage list only at
//!   the second retirement (under loom a stamp batch is two retirements);
//! - two writers on the same shard (insert against remove, compare-exchange against remove)
//!   with a reader, checked against the linearizations, each writer reclaiming;
//! - a read of one map while another map's writes advance the shared epoch;
//! - a value held by a reader across overwrites whose boxes are refilled from the shard's
//!   spare boxes (and, once the reader is gone, a check that the refill path runs);
//! - reclamation: a `Ref` held across the writer's `reclaim`, then, in every model, every
//!   replaced value dropped exactly once after the threads join, and the map's drop freeing
//!   the rest.
//!
//! Mutations of the protocol that these models catch: freeing without waiting for the epoch,
//! a reader that does not publish its pin, a pin without its fence or with a relaxed store,
//! an unpin without release, an advance that ignores pinned readers or lacks its acquire
//! fence, a retire that reads the epoch without its fence, a stamp older than the epoch read
//! after the unlink (`epoch - 1`), a new key's control byte or a rebuilt table
//! published without release, an overwrite or a rebuild that frees the old value or table
//! at once, and a value box made a spare (and refilled) before its value expired.
//!
//! Values carry a loom-tracked cell that their `Drop` overwrites: a value freed while a reader
//! can still reach it is a read racing that write, which loom reports (and the reader's check
//! of the cell catches a value dropped before it looked). Keys live in tracked cells inside
//! the map too, so a table freed under a reader is reported the same way. A drop counter
//! checks that every value is dropped exactly once.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p mapguard --test loom_read_mostly --release`.
//! Without `--cfg loom` this file compiles to nothing.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicPtr, Ordering};
use loom::thread;
use mapguard::LoomDomain as Domain;
#[path = "support/loom_model.rs"]
mod loom_model;
use loom_model::{model, model_bounded};

/// A published object; its value is written once before publication and once more (a poison
/// value) right before it is freed, so that loom sees the free as a write.
struct Object {
    value: UnsafeCell<u64>,
}

fn object(value: u64) -> *mut Object {
    Box::into_raw(Box::new(Object {
        value: UnsafeCell::new(value),
    }))
}

/// Frees an object as the garbage list does, with a tracked write first.
///
/// # Safety
/// `ptr` came from `object` and no thread reads it any more.
unsafe fn free(ptr: *mut Object) {
    // SAFETY: the caller's contract.
    let boxed = unsafe { Box::from_raw(ptr) };
    boxed.value.with_mut(|value| {
        // SAFETY: the tracked access is exclusive, which loom checks.
        unsafe { *value = u64::MAX };
    });
}

/// Pins, reads the current object, checks it is one that was published, unpins.
fn read_once(domain: &Domain, slot: &AtomicPtr<Object>, record: &mapguard::LoomRecord) {
    domain.pin(record);
    let current = slot.load(Ordering::Acquire);
    // SAFETY: the object was reachable while pinned: the protocol keeps it allocated until the
    // pin ends. A violation is the data race loom reports on the `with_mut` in `free`.
    let value = unsafe { (*current).value.with(|value| *value) };
    assert!(value == 1 || value == 2, "read a freed object ({value})");
    domain.unpin(record);
}

/// The writer's side: publish a new object, retire the old, advance, free once expired.
/// Returns the old object if it could not be freed yet.
fn replace_and_reclaim(domain: &Domain, slot: &AtomicPtr<Object>) -> Option<*mut Object> {
    let old = slot.swap(object(2), Ordering::AcqRel);
    let retired_at = domain.retire_epoch();
    for _ in 0..2 {
        domain.try_advance();
    }
    if domain.is_expired(retired_at) {
        // SAFETY: expired: every reader that could hold it has unpinned.
        unsafe { free(old) };
        None
    } else {
        Some(old)
    }
}

#[test]
fn a_pinned_reader_never_reads_a_freed_object() {
    model(|| {
        let domain = Arc::new(Domain::new());
        let slot = Arc::new(AtomicPtr::new(object(1)));

        let reader = {
            let (domain, slot) = (Arc::clone(&domain), Arc::clone(&slot));
            thread::spawn(move || {
                let record = domain.register();
                read_once(&domain, &slot, record);
                domain.release(record);
            })
        };
        let pending = replace_and_reclaim(&domain, &slot);
        reader.join().unwrap();

        if let Some(old) = pending {
            // SAFETY: the reader has finished.
            unsafe { free(old) };
        }
        // SAFETY: no thread is left.
        unsafe { free(slot.load(Ordering::Relaxed)) };
    });
}

#[test]
fn a_reader_pinning_twice_and_an_advancing_reader() {
    model(|| {
        let domain = Arc::new(Domain::new());
        let slot = Arc::new(AtomicPtr::new(object(1)));

        let reader = {
            let (domain, slot) = (Arc::clone(&domain), Arc::clone(&slot));
            thread::spawn(move || {
                let record = domain.register();
                read_once(&domain, &slot, record);
                // Readers also advance the epoch in the real map (through their writes).
                domain.try_advance();
                read_once(&domain, &slot, record);
                domain.release(record);
            })
        };
        let pending = replace_and_reclaim(&domain, &slot);
        reader.join().unwrap();

        if let Some(old) = pending {
            // SAFETY: the reader has finished.
            unsafe { free(old) };
        }
        // SAFETY: no thread is left.
        unsafe { free(slot.load(Ordering::Relaxed)) };
    });
}

/// A key's hash is the key: keys `0..n` sit in slots `0..n` of the one shard's table.
#[derive(Default, Clone)]
struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed");
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map = mapguard::ReadMostlyMap<Key, Value, std::hash::BuildHasherDefault<Identity>>;

/// A map key: `n`, and a tracked copy of it that `Drop` overwrites, so that a key read through
/// a `Ref` after its table was freed is reported like a value read after its free. Looked up
/// by `n` (`Borrow<u64>`), hashed as `n`.
struct Key {
    n: u64,
    cell: UnsafeCell<u64>,
}

// SAFETY: as for `Value`: `cell` is written only by `Drop`.
unsafe impl Sync for Key {}

impl Key {
    fn new(n: u64) -> Self {
        Self {
            n,
            cell: UnsafeCell::new(n),
        }
    }

    /// The key, read through the tracked cell.
    fn read(&self) -> u64 {
        // SAFETY: a shared read; the only write is in `Drop`, which loom orders against it.
        let seen = self.cell.with(|cell| unsafe { *cell });
        assert_ne!(seen, DROPPED, "read a dropped key ({})", self.n);
        assert_eq!(seen, self.n, "a torn key");
        seen
    }
}

impl Clone for Key {
    fn clone(&self) -> Self {
        Self::new(self.read())
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.n.hash(state);
    }
}

impl std::borrow::Borrow<u64> for Key {
    fn borrow(&self) -> &u64 {
        &self.n
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.cell.with_mut(|cell| {
            // SAFETY: the tracked access is exclusive, which loom checks.
            unsafe { *cell = DROPPED };
        });
    }
}

/// What a cell holds once its value was dropped.
const DROPPED: u64 = u64::MAX;

/// How many values a model made and how many were dropped (plain atomics: bookkeeping, not
/// part of what loom schedules).
#[derive(Default)]
struct Log {
    made: std::sync::atomic::AtomicUsize,
    dropped: std::sync::atomic::AtomicUsize,
}

impl Log {
    fn made(&self) -> usize {
        self.made.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn dropped(&self) -> usize {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A map value: `n`, and a tracked copy of it that `Drop` overwrites.
struct Value {
    n: u64,
    cell: UnsafeCell<u64>,
    log: std::sync::Arc<Log>,
}

// SAFETY: `cell` is written only by `Drop` (exclusive access); shared references only read it.
unsafe impl Sync for Value {}

impl Value {
    fn new(log: &std::sync::Arc<Log>, n: u64) -> Self {
        log.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self {
            n,
            cell: UnsafeCell::new(n),
            log: std::sync::Arc::clone(log),
        }
    }

    /// The value, read through the tracked cell: loom reports it if it races the drop, and a
    /// value already dropped shows `DROPPED`.
    fn read(&self) -> u64 {
        // SAFETY: a shared read; the only write is in `Drop`, which loom orders against it.
        let seen = self.cell.with(|cell| unsafe { *cell });
        assert_ne!(seen, DROPPED, "read a dropped value ({})", self.n);
        assert_eq!(seen, self.n, "a torn value");
        seen
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.read() == other.read()
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        self.cell.with_mut(|cell| {
            // SAFETY: the tracked access is exclusive, which loom checks.
            unsafe { *cell = DROPPED };
        });
        self.log
            .dropped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A one-shard map with keys `keys`, each holding `key * 10`.
fn map_with(log: &std::sync::Arc<Log>, keys: std::ops::Range<u64>) -> Arc<Map> {
    let map: Map = mapguard::ReadMostlyMap::builder()
        .shards(1)
        .hasher(std::hash::BuildHasherDefault::<Identity>::default())
        .build()
        .unwrap();
    for key in keys {
        map.insert(Key::new(key), Value::new(log, key * 10));
    }
    Arc::new(map)
}

/// What `map.get(key)` reads now (through the value's tracked cell), or `None`.
fn read(map: &Map, key: u64) -> Option<u64> {
    map.get(&key).map(|entry| {
        assert_eq!(entry.key().read(), key);
        entry.read()
    })
}

/// After every thread joined: frees what is retired, checks that every value made is either
/// in the map or was dropped exactly once, then drops the map and checks that all were.
fn reclaim_all(map: Arc<Map>, log: &Log, live: usize) {
    map.reclaim();
    assert_eq!(map.pending_reclamation(), 0, "nothing is pinned any more");
    assert_eq!(map.len(), live);
    assert_eq!(
        log.dropped(),
        log.made() - live,
        "every replaced or removed value is dropped once the readers are gone"
    );
    let map = Arc::try_unwrap(map).unwrap_or_else(|_| panic!("the threads dropped their handles"));
    drop(map);
    assert_eq!(
        log.dropped(),
        log.made(),
        "dropping the map drops every value once"
    );
}

/// Spawns a reader that gets key 1 (whose value is 10 to 12 while the model runs), runs
/// `meanwhile` with the map and the value it read, and checks that the value it holds has not
/// changed under it.
fn spawn_holder_of_key_1(map: &Arc<Map>, meanwhile: fn(&Map, u64)) -> thread::JoinHandle<()> {
    let map = Arc::clone(map);
    thread::spawn(move || {
        let held = map.get(&1).expect("key 1 stays present");
        let first = held.read();
        assert!(matches!(first, 10..=12), "read {first}");
        meanwhile(&map, first);
        assert_eq!(held.read(), first, "a held value changed under its reader");
    })
}

#[test]
fn map_read_while_an_insert_grows_the_table() {
    model(|| {
        let log = std::sync::Arc::new(Log::default());
        // Seven keys fill a table of 8 slots to its limit (7/8); the eighth rebuilds it.
        let map = map_with(&log, 0..7);
        let capacity = map.capacity();

        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                // Present all along: found whole in whichever table the read goes through.
                let old = map.get(&3).expect("a key present all along is found");
                assert_eq!(old.read(), 30);
                // The new key: absent, or its value; `old` keeps the first table pinned.
                let new = read(&map, 7);
                assert!(matches!(new, None | Some(70)), "read {new:?}");
                // Key and value of the first table's slot, still readable.
                assert_eq!((old.key().read(), old.read()), (3, 30));
            })
        };
        map.insert(Key::new(7), Value::new(&log, 70));
        // Frees the old table (keys included) unless the reader is still pinned on it.
        map.reclaim();
        reader.join().unwrap();

        assert!(map.capacity() > capacity, "the table grew");
        for key in 0..8 {
            assert_eq!(read(&map, key), Some(key * 10));
        }
        reclaim_all(map, &log, 8);
    });
}

#[test]
fn map_read_while_a_value_is_overwritten_and_another_removed() {
    model(|| {
        let log = std::sync::Arc::new(Log::default());
        let map = map_with(&log, 1..3);

        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                // Held across the writer's retire and reclaim.
                let one = map.get(&1).expect("key 1 stays present");
                assert!(matches!(one.read(), 10 | 11), "read {}", one.n);
                let two = read(&map, 2);
                assert!(matches!(two, None | Some(20)), "read {two:?}");
                assert!(matches!(one.read(), 10 | 11));
            })
        };
        assert!(
            map.insert(Key::new(1), Value::new(&log, 11)),
            "an overwrite"
        );
        let removed = map.remove(&2).map(|value| value.read());
        assert_eq!(removed, Some(20));
        map.reclaim();
        reader.join().unwrap();

        assert_eq!(read(&map, 1), Some(11));
        assert_eq!(read(&map, 2), None);
        reclaim_all(map, &log, 1);
    });
}

#[test]
fn map_read_while_the_last_key_is_removed_and_the_table_freed() {
    model(|| {
        let log = std::sync::Arc::new(Log::default());
        let map = map_with(&log, 1..2);

        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                let one = read(&map, 1);
                assert!(matches!(one, None | Some(10)), "read {one:?}");
                // Iteration goes through the same table and values.
                let seen: Vec<u64> = map
                    .iter()
                    .map(|entry| {
                        assert_eq!(entry.key().read() * 10, entry.read());
                        entry.read()
                    })
                    .collect();
                assert!(seen.is_empty() || seen == [10], "iterated {seen:?}");
            })
        };
        // Leaves the shard empty: its table is retired with the value, then reclaimed.
        let removed = map.remove(&1).map(|value| value.read());
        assert_eq!(removed, Some(10));
        map.reclaim();
        reader.join().unwrap();

        assert!(map.is_empty());
        assert_eq!(map.capacity(), 0, "an empty shard has no table");
        reclaim_all(map, &log, 0);
    });
}

#[test]
fn map_two_writers_on_one_shard_and_a_reader_match_a_linearization() {
    model(|| {
        let log = std::sync::Arc::new(Log::default());
        let map = map_with(&log, 1..3);

        // Each writer also reclaims: two threads retire, advance and free at once.
        let inserter = {
            let (map, log) = (Arc::clone(&map), std::sync::Arc::clone(&log));
            thread::spawn(move || {
                let replaced = map.insert(Key::new(1), Value::new(&log, 11));
                map.reclaim();
                replaced
            })
        };
        let remover = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                let removed = map.remove(&1).map(|value| value.read());
                map.reclaim();
                removed
            })
        };
        let seen = read(&map, 1);
        let replaced = inserter.join().unwrap();
        let removed = remover.join().unwrap();
        let last = read(&map, 1);

        // Insert then remove, or remove then insert; the read fits either order.
        match (replaced, removed, last) {
            (true, Some(11), None) => assert!(matches!(seen, Some(10 | 11) | None)),
            (false, Some(10), Some(11)) => assert!(matches!(seen, Some(10 | 11) | None)),
            other => panic!("no linearization gives {other:?}"),
        }
        assert_eq!(read(&map, 2), Some(20));
        reclaim_all(map, &log, 1 + usize::from(last.is_some()));
    });
}

#[test]
fn map_compare_exchange_against_remove_with_a_reader() {
    model(|| {
        let log = std::sync::Arc::new(Log::default());
        let map = map_with(&log, 1..3);

        let swapper = {
            let (map, log) = (Arc::clone(&map), std::sync::Arc::clone(&log));
            thread::spawn(move || {
                let expected = Value::new(&log, 10);
                match map.compare_exchange(Key::new(1), &expected, Value::new(&log, 12)) {
                    Ok(previous) => Ok(previous.read()),
                    Err(present) => Err(present.map(|value| value.read())),
                }
            })
        };
        let remover = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                let removed = map.remove(&1).map(|value| value.read());
                map.reclaim();
                removed
            })
        };
        let seen = read(&map, 1);
        assert!(matches!(seen, None | Some(10 | 12)), "read {seen:?}");
        let swapped = swapper.join().unwrap();
        let removed = remover.join().unwrap();

        match (swapped, removed) {
            // The swap first: the remove takes its value.
            (Ok(10), Some(12)) => {}
            // The remove first: the swap finds nothing.
            (Err(None), Some(10)) => {}
            other => panic!("no linearization gives {other:?}"),
        }
        assert_eq!(read(&map, 1), None);
        reclaim_all(map, &log, 1);
    });
}

#[test]
fn map_reads_in_turn_while_a_value_is_overwritten_twice() {
    model(|| {
        let log = std::sync::Arc::new(Log::default());
        let map = map_with(&log, 1..2);

        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                // Separate pins: each read may see a later value, never an earlier one.
                let first = read(&map, 1).expect("key 1 stays present");
                let second = read(&map, 1).expect("key 1 stays present");
                assert!(matches!(first, 10..=12), "read {first}");
                assert!(second >= first, "read {first} then {second}");
            })
        };
        map.insert(Key::new(1), Value::new(&log, 11));
        map.reclaim();
        map.insert(Key::new(1), Value::new(&log, 12));
        map.reclaim();
        reader.join().unwrap();

        assert_eq!(read(&map, 1), Some(12));
        reclaim_all(map, &log, 1);
    });
}

#[test]
fn map_a_value_stamped_late_waits_for_its_reader() {
    model(|| {
        let log = std::sync::Arc::new(Log::default());
        let map = map_with(&log, 1..2);
        // Moves the epoch off zero first, so that a stamp one epoch too old is a different one.
        map.insert(Key::new(1), Value::new(&log, 10));
        map.reclaim();

        // Held while the writer retires it, stamps it with the next retirement and reclaims:
        // it must stay whole until dropped.
        let reader = spawn_holder_of_key_1(&map, |_, _| {});
        // Two overwrites, then a reclaim: the garbage list stamps value 10 only at the second
        // retirement (loom's stamp batch is two), with the epoch read then.
        map.insert(Key::new(1), Value::new(&log, 11));
        map.insert(Key::new(1), Value::new(&log, 12));
        map.reclaim();
        reader.join().unwrap();

        assert_eq!(read(&map, 1), Some(12));
        reclaim_all(map, &log, 1);
    });
}

#[test]
fn map_iteration_while_an_insert_grows_the_table() {
    model(|| {
        let log = std::sync::Arc::new(Log::default());
        let map = map_with(&log, 0..7);

        let iterator = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                let mut seen: Vec<u64> = map
                    .iter()
                    .map(|entry| {
                        assert_eq!(entry.key().read() * 10, entry.read());
                        entry.read()
                    })
                    .collect();
                seen.sort_unstable();
                // Keys present all along exactly once; the new one at most once.
                let old: Vec<u64> = (0..7).map(|key| key * 10).collect();
                assert!(
                    seen == old || seen[..7] == old && seen[7..] == [70],
                    "iterated {seen:?}"
                );
            })
        };
        map.insert(Key::new(7), Value::new(&log, 70));
        map.reclaim();
        iterator.join().unwrap();

        reclaim_all(map, &log, 8);
    });
}

#[test]
fn map_read_while_another_map_advances_the_shared_epoch() {
    // Three threads: 1.6 million executions at 4 preemptions, 20 thousand at 2, which are
    // enough to catch a retire that reads the epoch before its unlink is visible.
    model_bounded(2, || {
        let log = std::sync::Arc::new(Log::default());
        let map = map_with(&log, 1..2);
        // The epoch is shared by every map: writes and reclaims of this one move it too.
        let other = map_with(&log, 1..2);

        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                let one = read(&map, 1);
                assert!(matches!(one, Some(10 | 11)), "read {one:?}");
            })
        };
        let advancer = {
            let (other, log) = (Arc::clone(&other), std::sync::Arc::clone(&log));
            thread::spawn(move || {
                other.insert(Key::new(1), Value::new(&log, 12));
                other.reclaim();
            })
        };
        map.insert(Key::new(1), Value::new(&log, 11));
        map.reclaim();
        reader.join().unwrap();
        advancer.join().unwrap();

        assert_eq!(read(&map, 1), Some(11));
        assert_eq!(read(&other, 1), Some(12));
        map.reclaim();
        other.reclaim();
        assert_eq!(log.dropped(), 2, "both replaced values are dropped");
        drop(other);
        reclaim_all(map, &log, 1);
    });
}

#[test]
fn map_a_held_value_box_is_not_reused_by_later_overwrites() {
    model(|| {
        let log = std::sync::Arc::new(Log::default());
        let map = map_with(&log, 1..2);

        // Held across overwrites whose boxes may be refilled from the shard's spares: the box
        // it points to must not be one of them while it is held.
        let reader = spawn_holder_of_key_1(&map, |map, first| {
            let later = read(map, 1).expect("key 1 stays present");
            assert!(later >= first, "read {first} then {later}");
        });
        // Each reclaim turns the replaced value's box into a spare once no reader holds it,
        // and a later overwrite refills such a box.
        let boxed = |map: &Map| std::ptr::from_ref::<Value>(&map.get(&1).unwrap()) as usize;
        let mut boxes = vec![boxed(&map)];
        map.insert(Key::new(1), Value::new(&log, 11));
        boxes.push(boxed(&map));
        map.reclaim();
        map.insert(Key::new(1), Value::new(&log, 12));
        boxes.push(boxed(&map));
        map.reclaim();
        reader.join().unwrap();

        // With no reader left, a replaced box is refilled by the next overwrites: the path
        // the threads above race against runs.
        map.insert(Key::new(1), Value::new(&log, 13));
        boxes.push(boxed(&map));
        map.reclaim();
        map.insert(Key::new(1), Value::new(&log, 14));
        let after = boxed(&map);
        assert!(
            boxes.contains(&after),
            "the overwrite reused a spare box: {after:#x} is none of {boxes:x?}"
        );
        assert_eq!(read(&map, 1), Some(14));
        reclaim_all(map, &log, 1);
    });
}

/// A one-shard map holding `key * 10` for each of `keys`.
fn map_of(log: &std::sync::Arc<Log>, keys: impl IntoIterator<Item = u64>) -> Arc<Map> {
    let map = map_with(log, 0..0);
    for key in keys {
        map.insert(Key::new(key), Value::new(log, key * 10));
    }
    map
}

#[test]
fn map_read_past_a_tombstone_that_a_new_key_takes() {
    model(|| {
        let log = std::sync::Arc::new(Log::default());
        // Identity hashes in a table of two groups: the even keys 0..=14 fill group 0, and 16
        // goes on to group 1. Removing 4 leaves a tombstone in the full group 0 (probes for 16
        // must go on past it); 18, homed in group 0 too, then takes it.
        let map = map_of(&log, (0..=16).step_by(2));
        let capacity = map.capacity();

        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                assert_eq!(
                    read(&map, 16),
                    Some(160),
                    "a key past the tombstone is found"
                );
                let new = read(&map, 18);
                assert!(matches!(new, None | Some(180)), "read {new:?}");
                let old = read(&map, 4);
                assert!(matches!(old, None | Some(40)), "read {old:?}");
            })
        };
        assert_eq!(map.remove(&4).map(|value| value.read()), Some(40));
        map.insert(Key::new(18), Value::new(&log, 180));
        map.reclaim();
        reader.join().unwrap();

        assert_eq!(map.capacity(), capacity, "no rebuild: the slot was reused");
        for key in (0..=18).step_by(2) {
            let expected = (key != 4).then_some(key * 10);
            assert_eq!(read(&map, key), expected, "key {key}");
        }
        reclaim_all(map, &log, 9);
    });
}

#[test]
fn map_a_held_entry_survives_its_slot_taken_by_another_key() {
    model(|| {
        let log = std::sync::Arc::new(Log::default());
        // One group with a never-used slot: removing 1 makes its slot never-used again, and
        // the next new key takes that slot (the group's lowest free one).
        let map = map_of(&log, 1..3);

        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                if let Some(held) = map.get(&1) {
                    let key = held.key().read();
                    let value = held.read();
                    assert_eq!((key, value), (1, 10));
                    let other = read(&map, 9);
                    assert!(matches!(other, None | Some(90)), "read {other:?}");
                    // Removed and its slot refilled meanwhile, perhaps: still whole.
                    assert_eq!((held.key().read(), held.read()), (1, 10));
                }
            })
        };
        assert_eq!(map.remove(&1).map(|value| value.read()), Some(10));
        map.insert(Key::new(9), Value::new(&log, 90));
        map.reclaim();
        reader.join().unwrap();

        assert_eq!(read(&map, 1), None);
        assert_eq!(read(&map, 9), Some(90));
        assert_eq!(read(&map, 2), Some(20));
        reclaim_all(map, &log, 2);
    });
}
