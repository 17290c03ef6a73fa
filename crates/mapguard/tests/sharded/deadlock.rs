//! Self-deadlock detection: a call that would wait for a guard its own thread holds panics with
//! "deadlock avoided", the shard index and both call sites, and leaves the map usable; the legal
//! re-entrant patterns (many read guards, nested iteration, guards on other shards) never panic
//! and never hang, including while a writer is queued on the shard.
//!
//! Cross-thread deadlocks (dashmap issue 369: two or three threads that each hold a guard and
//! wait for another's shard) end with exactly one of the threads panicking with "deadlock
//! detected", naming every thread, shard and call site, after the map's threshold; the others
//! complete and the map stays usable. A guard held for long without a cycle is never reported.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mapguard::{Action, Entry, ShardedMap};

use crate::common::{
    TIMEOUT, TestState, expect_panic, keys_by_shard, map_with_shards, panic_message, site,
    within_timeout,
};

type Map = ShardedMap<u64, u64, TestState>;

/// Asserts a self-deadlock report: the marker, the shard, and both call sites of this file.
#[track_caller]
fn assert_report(message: &str, shard: usize, held_line: u32, call_line: u32) {
    assert!(
        message.contains("deadlock avoided"),
        "not a deadlock report: {message}"
    );
    assert!(
        message.contains(&format!("shard {shard} ")),
        "report does not name shard {shard}: {message}"
    );
    for line in [held_line, call_line] {
        let at = site(file!(), line);
        assert!(
            message.contains(&at),
            "report does not name the call site {at}: {message}"
        );
    }
}

/// The map must be fully usable after a caught self-deadlock panic: every shard readable and
/// writable from this thread and from another one (no lock left held).
fn assert_usable(map: &Arc<Map>) {
    let keys = (1000..1000 + 64 * map.shard_count() as u64).collect::<Vec<_>>();
    for &key in &keys {
        map.insert(key, key);
        assert_eq!(map.get_cloned(&key), Some(key));
    }
    let other = Arc::clone(map);
    let other_keys = keys.clone();
    within_timeout("writes from another thread after the panic", move || {
        for &key in &other_keys {
            assert_eq!(other.insert(key, key + 1), Some(key));
            assert_eq!(other.remove(&key), Some(key + 1));
        }
        other.clear();
        assert!(other.is_empty());
    });
    assert!(map.is_empty());
}

fn one_shard() -> Arc<Map> {
    Arc::new(map_with_shards(1))
}

#[test]
fn insert_while_holding_get_panics() {
    let map = one_shard();
    map.insert(1, 10);
    let held_line = line!() + 1;
    let guard = map.get(&1).unwrap();
    let call_line = line!() + 1;
    let message = expect_panic(|| map.insert(2, 20));
    assert_report(&message, 0, held_line, call_line);
    // The guard is still valid and the failed insert changed nothing.
    assert_eq!(*guard, 10);
    drop(guard);
    assert_eq!(map.len(), 1);
    assert_eq!(map.get_cloned(&2), None);
    assert_usable(&map);
}

#[test]
fn insert_while_holding_get_on_same_shard_of_many_names_that_shard() {
    let map: Arc<Map> = Arc::new(map_with_shards(64));
    let keys = keys_by_shard(&map, 2);
    // A shard other than 0, so that the index in the report is really the guard's.
    let shard = 37;
    let (held_key, other_key) = (keys[shard][0], keys[shard][1]);
    map.insert(held_key, 1);
    let held_line = line!() + 1;
    let guard = map.get(&held_key).unwrap();
    assert_eq!(guard.shard(), shard);
    let call_line = line!() + 1;
    let message = expect_panic(|| map.insert(other_key, 2));
    assert_report(&message, shard, held_line, call_line);
    drop(guard);
    assert_eq!(map.get_cloned(&other_key), None);
    map.clear();
    assert_usable(&map);
}

#[test]
fn compute_closure_calling_get_panics() {
    let map = one_shard();
    map.insert(1, 10);
    map.insert(2, 20);
    let held_line = line!() + 2;
    let message = expect_panic(|| {
        map.compute(1, |_, _| {
            let _ = map.get_cloned(&2);
            Action::Keep
        })
    });
    assert_report(&message, 0, held_line, held_line + 1);
    assert_eq!(
        map.get_cloned(&1),
        Some(10),
        "a panicking compute changed the entry"
    );
    map.clear();
    assert_usable(&map);
}

#[test]
fn compute_closure_calling_insert_panics() {
    let map = one_shard();
    let held_line = line!() + 2;
    let message = expect_panic(|| {
        map.compute(1, |_, _| {
            map.insert(2, 20);
            Action::Set(10)
        })
    });
    assert_report(&message, 0, held_line, held_line + 1);
    assert!(map.is_empty(), "a panicking compute inserted something");
    assert_usable(&map);
}

#[test]
fn get_while_holding_entry_panics() {
    let map = one_shard();
    map.insert(1, 10);
    let held_line = line!() + 1;
    let entry = map.entry(1);
    let call_line = line!() + 1;
    let message = expect_panic(|| map.get(&1).map(|r| *r));
    assert_report(&message, 0, held_line, call_line);
    match entry {
        Entry::Occupied(mut occupied) => *occupied.get_mut() += 1,
        Entry::Vacant(_) => panic!("key 1 is present"),
    }
    assert_eq!(map.get_cloned(&1), Some(11));
    map.clear();
    assert_usable(&map);
}

#[test]
fn vacant_entry_then_contains_key_panics() {
    let map = one_shard();
    let held_line = line!() + 1;
    let entry = map.entry(5);
    let call_line = line!() + 1;
    let message = expect_panic(|| map.contains_key(&6));
    assert_report(&message, 0, held_line, call_line);
    drop(entry);
    assert!(map.is_empty());
    assert_usable(&map);
}

#[test]
fn insert_while_holding_get_mut_panics() {
    let map = one_shard();
    map.insert(1, 10);
    let held_line = line!() + 1;
    let mut guard = map.get_mut(&1).unwrap();
    let call_line = line!() + 1;
    let message = expect_panic(|| map.insert(2, 20));
    assert_report(&message, 0, held_line, call_line);
    *guard += 5;
    drop(guard);
    assert_eq!(map.get_cloned(&1), Some(15));
    assert_eq!(map.len(), 1);
    map.clear();
    assert_usable(&map);
}

#[test]
fn whole_map_calls_while_holding_get_mut_panic() {
    let map = one_shard();
    map.insert(1, 10);
    let held_line = line!() + 1;
    let guard = map.get_mut(&1).unwrap();
    let call_line = line!() + 1;
    let message = expect_panic(|| map.len());
    assert_report(&message, 0, held_line, call_line);
    let call_line = line!() + 1;
    let message = expect_panic(|| map.is_empty());
    assert_report(&message, 0, held_line, call_line);
    let call_line = line!() + 1;
    let message = expect_panic(|| map.capacity());
    assert_report(&message, 0, held_line, call_line);
    let call_line = line!() + 1;
    let message = expect_panic(|| map.clear());
    assert_report(&message, 0, held_line, call_line);
    let call_line = line!() + 1;
    let message = expect_panic(|| map.retain(|_, _| true));
    assert_report(&message, 0, held_line, call_line);
    drop(guard);
    map.clear();
    assert_usable(&map);
}

#[test]
fn insert_while_iterating_same_shard_panics() {
    let map = one_shard();
    map.insert(1, 10);
    let mut iter = map.iter();
    let item = iter.next().unwrap();
    let message = expect_panic(|| map.insert(2, 20));
    assert!(message.contains("deadlock avoided"), "{message}");
    assert!(message.contains("shard 0 "), "{message}");
    drop(item);
    drop(iter);
    map.clear();
    assert_usable(&map);
}

/// A thread holding a read guard calls `insert` on the same shard while another thread's
/// `insert` is already queued there (holding the writer word and waiting for this reader).
/// Waiting for the queued writer would hang both threads; the call must panic instead.
#[test]
fn insert_while_holding_get_with_writer_queued_panics() {
    let map = one_shard();
    map.insert(1, 10);
    let (queued_tx, queued_rx) = mpsc::channel();
    let writer_done = Arc::new(AtomicBool::new(false));
    let reader_map = Arc::clone(&map);
    let reader_writer_done = Arc::clone(&writer_done);
    let outcome = within_timeout(
        "insert while holding get, with a writer queued",
        move || {
            let map = reader_map;
            let held_line = line!() + 1;
            let guard = map.get(&1).unwrap();
            let writer_map = Arc::clone(&map);
            let done = Arc::clone(&reader_writer_done);
            let writer = std::thread::spawn(move || {
                queued_tx.send(()).unwrap();
                writer_map.insert(3, 30);
                done.store(true, Ordering::SeqCst);
            });
            queued_rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(100));
            assert!(
                !reader_writer_done.load(Ordering::SeqCst),
                "the writer finished while a read guard was held"
            );
            let call_line = line!() + 1;
            let message = expect_panic(|| map.insert(2, 20));
            drop(guard);
            writer.join().unwrap();
            (message, held_line, call_line)
        },
    );
    let (message, held_line, call_line) = outcome;
    assert_report(&message, 0, held_line, call_line);
    assert!(writer_done.load(Ordering::SeqCst));
    assert_eq!(map.get_cloned(&3), Some(30));
    assert_eq!(map.get_cloned(&2), None);
    map.clear();
    assert_usable(&map);
}

#[test]
fn many_read_guards_on_one_shard_do_not_panic() {
    let map = one_shard();
    for key in 0..32 {
        map.insert(key, key * 2);
    }
    let guards: Vec<_> = (0..32)
        .chain(0..32)
        .map(|key| map.get(&key).unwrap())
        .collect();
    for (i, guard) in guards.iter().enumerate() {
        assert_eq!(*guard.key(), i as u64 % 32);
        assert_eq!(**guard, (i as u64 % 32) * 2);
        assert_eq!(guard.shard(), 0);
    }
    // Reads of every kind while the guards are held.
    assert_eq!(map.len(), 32);
    assert!(map.contains_key(&3));
    assert_eq!(map.iter().count(), 32);
    assert_eq!(map.clone().len(), 32);
    drop(guards);
    assert_usable(&{
        map.clear();
        map
    });
}

/// More distinct shards read at once than a thread has reader slots: the extra reads take
/// the overflow path, which must still exclude writers and be released exactly.
#[test]
fn read_guards_on_64_shards_at_once() {
    let map: Arc<Map> = Arc::new(map_with_shards(64));
    let keys = keys_by_shard(&map, 1);
    for shard_keys in &keys {
        map.insert(shard_keys[0], shard_keys[0] + 1);
    }
    let mut guards: Vec<_> = keys
        .iter()
        .map(|shard_keys| map.get(&shard_keys[0]).unwrap())
        .collect();
    for (shard, guard) in guards.iter().enumerate() {
        assert_eq!(guard.shard(), shard);
        assert_eq!(**guard, keys[shard][0] + 1);
    }
    // Writers of a slot-held shard (0) and an overflow-held one (63) must wait for the guards.
    let started = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel();
    let writer = {
        let map = Arc::clone(&map);
        let keys = keys.clone();
        let started = Arc::clone(&started);
        std::thread::spawn(move || {
            started.store(true, Ordering::SeqCst);
            for shard in [0, 63] {
                map.insert(keys[shard][0], 0);
                done_tx.send(shard).unwrap();
            }
        })
    };
    while !started.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    assert_eq!(
        done_rx.recv_timeout(Duration::from_millis(100)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "a writer got in while its shard was read-locked"
    );
    // Release the first guards (the slot holders), then read overflow-held shards again: the
    // re-reads find a free slot but must count on the overflow hold they already have.
    let slot_guards: Vec<_> = guards.drain(..8).collect();
    let again: Vec<_> = (40..64).map(|s| map.get(&keys[s][0]).unwrap()).collect();
    drop(slot_guards);
    assert_eq!(done_rx.recv_timeout(TIMEOUT), Ok(0));
    assert_eq!(
        done_rx.recv_timeout(Duration::from_millis(100)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "a writer got in while its shard was read-locked through the overflow path"
    );
    drop(guards);
    assert_eq!(
        done_rx.recv_timeout(Duration::from_millis(100)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "a writer got in while a re-read of its shard was alive"
    );
    drop(again);
    assert_eq!(done_rx.recv_timeout(TIMEOUT), Ok(63));
    writer.join().unwrap();
    // Nothing is left read-locked by this thread: writing every shard from here must not panic.
    for shard_keys in &keys {
        map.insert(shard_keys[0], 7);
    }
    assert!(map.iter().all(|entry| *entry == 7));
    map.clear();
    assert_usable(&map);
}

#[test]
fn iterating_while_holding_a_get_guard() {
    let map: Arc<Map> = Arc::new(map_with_shards(4));
    for key in 0..100 {
        map.insert(key, key);
    }
    let guard = map.get(&42).unwrap();
    let mut seen: Vec<u64> = map.iter().map(|entry| *entry.key()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
    assert_eq!(*guard, 42);
    drop(guard);
    map.clear();
    assert_usable(&map);
}

#[test]
fn nested_iteration() {
    // Legal in one thread, and that is what this test checks. With the `lockdep` feature
    // lockdep rightly reports it: the outer loop holds shard i while the inner one reads
    // shard j, and later holds j while reading i; two threads doing that while writers queue
    // on i and j would hang (a new reader waits behind a queued writer). Record the report
    // instead of panicking, and check it is that inversion.
    #[cfg(feature = "lockdep")]
    let recorder = crate::lockdep::Recorder::install();
    let map: Arc<Map> = Arc::new(map_with_shards(4));
    for key in 0..40 {
        map.insert(key, key);
    }
    let mut pairs = 0;
    let mut sum = 0;
    for outer in map.iter() {
        for inner in map.values() {
            pairs += 1;
            sum += *outer * *inner;
        }
    }
    assert_eq!(pairs, 40 * 40);
    assert_eq!(sum, (0..40u64).sum::<u64>().pow(2));
    #[cfg(feature = "lockdep")]
    crate::lockdep::assert_inversions_within_one_map(&recorder.reports());
    map.clear();
    assert_usable(&map);
}

#[test]
fn guard_on_one_shard_while_writing_another() {
    // Legal in one thread, and that is what this test checks. With the `lockdep` feature
    // lockdep rightly reports it: the first part reads shard 2 while writing shard 1, the
    // last loop reads shard 1 while writing shard 2 (and each shard while writing the next,
    // all the way round); two threads doing two of these at once would hang. Record the
    // report instead of panicking, and check it is such an inversion.
    #[cfg(feature = "lockdep")]
    let recorder = crate::lockdep::Recorder::install();
    let map: Arc<Map> = Arc::new(map_with_shards(8));
    let keys = keys_by_shard(&map, 2);
    map.insert(keys[2][0], 1);
    let guard = map.get(&keys[2][0]).unwrap();
    assert_eq!(guard.shard(), 2);
    for (shard, shard_keys) in keys.iter().enumerate() {
        if shard == 2 {
            continue;
        }
        assert_eq!(map.insert(shard_keys[0], 5), None);
        map.compute(shard_keys[1], |_, _| Action::Set(6));
        *map.entry(shard_keys[1]).or_insert(0) += 1;
        assert_eq!(map.remove(&shard_keys[0]), Some(5));
        let mut write = map.get_mut(&shard_keys[1]).unwrap();
        *write += 1;
        // A read guard and a write guard on two other shards at once.
        assert_eq!(*guard, 1);
    }
    drop(guard);
    assert_eq!(map.len(), 8);
    assert!(
        map.iter()
            .all(|entry| *entry.key() == keys[2][0] || *entry == 8)
    );
    // Writing other shards while iterating one: the iterator holds only its current shard.
    let mut visited = 0;
    for entry in map.iter() {
        let shard = entry.shard();
        let other = keys[(shard + 1) % 8][1];
        map.update(&other, |v| *v += 0);
        visited += 1;
    }
    assert_eq!(visited, 8);
    #[cfg(feature = "lockdep")]
    crate::lockdep::assert_inversions_within_one_map(&recorder.reports());
    map.clear();
    assert_usable(&map);
}

/// parking_lot issue 212: a thread that holds a read lock and reads again while a writer is
/// queued must not wait for the writer (which waits for it).
#[test]
fn recursive_read_with_writer_queued_does_not_hang() {
    let map = one_shard();
    map.insert(1, 10);
    map.insert(2, 20);
    let writer_done = Arc::new(AtomicBool::new(false));
    let (queued_tx, queued_rx) = mpsc::channel();
    let (writer_tx, writer_rx) = mpsc::channel();
    let reader_map = Arc::clone(&map);
    let reader_writer_done = Arc::clone(&writer_done);
    let writer_map = Arc::clone(&map);
    let writer_flag = Arc::clone(&writer_done);
    within_timeout("recursive reads while a writer is queued", move || {
        let map = reader_map;
        let first = map.get(&1).unwrap();
        let writer = std::thread::spawn(move || {
            queued_tx.send(()).unwrap();
            writer_map.insert(3, 30);
            writer_flag.store(true, Ordering::SeqCst);
            writer_tx.send(()).unwrap();
        });
        queued_rx.recv().unwrap();
        // Give the writer time to take the writer word and start waiting for this reader.
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !reader_writer_done.load(Ordering::SeqCst),
            "the writer finished while a read guard was held"
        );
        let second = map.get(&2).unwrap();
        let same = map.get(&1).unwrap();
        assert_eq!((*first, *second, *same), (10, 20, 10));
        assert!(map.contains_key(&2));
        assert_eq!(
            map.get_cloned(&3),
            None,
            "the queued writer must not be in yet"
        );
        assert_eq!(map.iter().count(), 2);
        assert_eq!(map.len(), 2);
        drop((first, second, same));
        writer_rx
            .recv_timeout(TIMEOUT)
            .expect("the writer completes");
        writer.join().unwrap();
    });
    assert!(writer_done.load(Ordering::SeqCst));
    assert_eq!(map.get_cloned(&3), Some(30));
    map.clear();
    assert_usable(&map);
}

// ---------------------------------------------------------------------------------------------
// Cross-thread deadlocks.

/// The detection threshold of the cross-thread tests: low, so that the tests are quick.
const CHECK_AFTER: Duration = Duration::from_millis(20);

/// A map of 8 shards that checks for deadlocks after [`CHECK_AFTER`], and two keys in each of
/// shards 1, 2 and 3 (`keys[s][0]` is present, `keys[s][1]` absent).
fn detecting_map() -> (Arc<Map>, Vec<Vec<u64>>) {
    let map: Map = ShardedMap::builder()
        .shards(8)
        .hasher(TestState::Sip(Default::default()))
        .deadlock_check_after(CHECK_AFTER)
        .build()
        .unwrap();
    assert_eq!(map.deadlock_check_after(), CHECK_AFTER);
    let keys = keys_by_shard(&map, 2);
    for (shard, shard_keys) in keys.iter().enumerate().take(4).skip(1) {
        map.insert(shard_keys[0], shard as u64);
    }
    (Arc::new(map), keys)
}

/// What one thread of a deadlock test did: the panic message of its waiting call, if it
/// panicked, and the lines of its guard and of its waiting call.
struct Outcome {
    name: &'static str,
    message: Option<String>,
    held_line: u32,
    call_line: u32,
}

/// Spawns a named thread that runs `body` once all `barrier` parties are there. Under the
/// `lockdep` feature, lockdep's reports of the inversion are recorded instead of panicking,
/// so that the real deadlock happens and the map's own detection is what is tested.
fn spawn_party(
    name: &'static str,
    barrier: &Arc<Barrier>,
    body: impl FnOnce(&Barrier) -> (Option<String>, u32, u32) + Send + 'static,
) -> JoinHandle<Outcome> {
    let barrier = Arc::clone(barrier);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            #[cfg(feature = "lockdep")]
            let _recorder = crate::lockdep::Recorder::install();
            let (message, held_line, call_line) = body(&barrier);
            Outcome {
                name,
                message,
                held_line,
                call_line,
            }
        })
        .unwrap()
}

/// The panic message of `call`, or `None` if it returned.
fn panic_of<R>(call: impl FnOnce() -> R) -> Option<String> {
    catch_unwind(AssertUnwindSafe(call))
        .err()
        .map(|payload| panic_message(&*payload))
}

/// Joins the parties (within the timeout) and checks that exactly one panicked with a
/// deadlock report naming every party, its guard's and its call's lines and the given shards;
/// returns the outcomes, the panicking one first.
fn expect_one_deadlock_report(
    what: &str,
    parties: Vec<JoinHandle<Outcome>>,
    shards: &[usize],
) -> Vec<Outcome> {
    let mut outcomes = within_timeout(what, move || {
        parties
            .into_iter()
            .map(|party| party.join().expect("parties catch their panics"))
            .collect::<Vec<_>>()
    });
    let panicked = outcomes.iter().filter(|o| o.message.is_some()).count();
    assert_eq!(
        panicked,
        1,
        "{what}: exactly one thread of the cycle must panic; messages: {:?}",
        outcomes.iter().map(|o| &o.message).collect::<Vec<_>>()
    );
    outcomes.sort_by_key(|o| o.message.is_none());
    let message = outcomes[0].message.clone().unwrap();
    assert!(
        message.starts_with("mapguard: deadlock detected:"),
        "{what}: not a deadlock report: {message}"
    );
    for outcome in &outcomes {
        assert!(
            message.contains(&format!("thread '{}'", outcome.name)),
            "{what}: the report does not name thread {}: {message}",
            outcome.name
        );
        for line in [outcome.held_line, outcome.call_line] {
            let at = site(file!(), line);
            assert!(
                message.contains(&at),
                "{what}: the report does not name {at} (of {}): {message}",
                outcome.name
            );
        }
    }
    for shard in shards {
        assert!(
            message.contains(&format!("shard {shard} ")),
            "{what}: the report does not name shard {shard}: {message}"
        );
    }
    assert!(
        message.contains(&format!("thread '{}' (", outcomes[0].name))
            && message.contains(", this thread)"),
        "{what}: {message}"
    );
    outcomes
}

/// dashmap issue 369: thread A holds a read guard on shard 1 and inserts into shard 2; thread B
/// holds a read guard on shard 2 and inserts into shard 1.
#[test]
fn read_guards_and_inserts_across_two_threads_report_a_deadlock() {
    let (map, keys) = detecting_map();
    let barrier = Arc::new(Barrier::new(2));
    let party = |name, own: usize, other: usize| {
        let map = Arc::clone(&map);
        let (held, target) = (keys[own][0], keys[other][1]);
        spawn_party(name, &barrier, move |barrier| {
            let held_line = line!() + 1;
            let guard = map.get(&held).unwrap();
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| map.insert(target, 100));
            assert_eq!(*guard, own as u64, "the guard still reads its value");
            drop(guard);
            (message, held_line, call_line)
        })
    };
    let parties = vec![party("reader-a", 1, 2), party("reader-b", 2, 1)];
    let outcomes = expect_one_deadlock_report("get + insert, AB-BA", parties, &[1, 2]);
    eprintln!("{}", outcomes[0].message.as_ref().unwrap());
    // The survivor's insert went in; the panicking one's did not.
    let (lost, kept) = if outcomes[0].name == "reader-a" {
        (keys[2][1], keys[1][1])
    } else {
        (keys[1][1], keys[2][1])
    };
    assert_eq!(map.get_cloned(&kept), Some(100));
    assert_eq!(map.get_cloned(&lost), None);
    assert_eq!(map.len(), 4);
    map.clear();
    assert_usable(&map);
}

/// Write guards on both sides: an entry in one thread, a `get_mut` guard in the other.
#[test]
fn write_guards_and_inserts_across_two_threads_report_a_deadlock() {
    let (map, keys) = detecting_map();
    let barrier = Arc::new(Barrier::new(2));
    let writer_a = {
        let map = Arc::clone(&map);
        let (held, target) = (keys[1][0], keys[2][1]);
        spawn_party("entry-a", &barrier, move |barrier| {
            let held_line = line!() + 1;
            let entry = map.entry(held);
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| map.insert(target, 100));
            if let Entry::Occupied(mut occupied) = entry {
                *occupied.get_mut() += 10;
            }
            (message, held_line, call_line)
        })
    };
    let writer_b = {
        let map = Arc::clone(&map);
        let (held, target) = (keys[2][0], keys[1][1]);
        spawn_party("get-mut-b", &barrier, move |barrier| {
            let held_line = line!() + 1;
            let mut guard = map.get_mut(&held).unwrap();
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| map.insert(target, 200));
            *guard += 10;
            drop(guard);
            (message, held_line, call_line)
        })
    };
    let outcomes = expect_one_deadlock_report(
        "entry / get_mut + insert",
        vec![writer_a, writer_b],
        &[1, 2],
    );
    // Both guards were used after the panic (the +10s), and exactly the survivor's insert is in.
    assert_eq!(map.get_cloned(&keys[1][0]), Some(11));
    assert_eq!(map.get_cloned(&keys[2][0]), Some(12));
    let survivor_inserted = if outcomes[1].name == "entry-a" {
        map.get_cloned(&keys[2][1]) == Some(100) && map.get_cloned(&keys[1][1]).is_none()
    } else {
        map.get_cloned(&keys[1][1]) == Some(200) && map.get_cloned(&keys[2][1]).is_none()
    };
    assert!(survivor_inserted, "{:?}", map);
    map.clear();
    assert_usable(&map);
}

/// A write guard against a read guard: the writer's insert waits for the reader's guard, the
/// reader's `get` waits for the writer's guard.
#[test]
fn write_guard_and_read_guard_across_two_threads_report_a_deadlock() {
    let (map, keys) = detecting_map();
    let barrier = Arc::new(Barrier::new(2));
    let writer = {
        let map = Arc::clone(&map);
        let (held, target) = (keys[1][0], keys[2][1]);
        spawn_party("writer", &barrier, move |barrier| {
            let held_line = line!() + 1;
            let guard = map.get_mut(&held).unwrap();
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| map.insert(target, 100));
            drop(guard);
            (message, held_line, call_line)
        })
    };
    let reader = {
        let map = Arc::clone(&map);
        let (held, target) = (keys[2][0], keys[1][0]);
        spawn_party("reader", &barrier, move |barrier| {
            let held_line = line!() + 1;
            let guard = map.get(&held).unwrap();
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| map.get_cloned(&target));
            drop(guard);
            (message, held_line, call_line)
        })
    };
    expect_one_deadlock_report(
        "get_mut + insert / get + get",
        vec![writer, reader],
        &[1, 2],
    );
    map.clear();
    assert_usable(&map);
}

/// Three threads in a ring: each holds a read guard on its shard and inserts into the next.
#[test]
fn three_thread_cycle_reports_a_deadlock() {
    let (map, keys) = detecting_map();
    let barrier = Arc::new(Barrier::new(3));
    let party = |name, own: usize, next: usize| {
        let map = Arc::clone(&map);
        let (held, target) = (keys[own][0], keys[next][1]);
        spawn_party(name, &barrier, move |barrier| {
            let held_line = line!() + 1;
            let guard = map.get(&held).unwrap();
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| map.insert(target, 100));
            drop(guard);
            (message, held_line, call_line)
        })
    };
    let parties = vec![
        party("ring-1", 1, 2),
        party("ring-2", 2, 3),
        party("ring-3", 3, 1),
    ];
    let outcomes = expect_one_deadlock_report("three-thread ring", parties, &[1, 2, 3]);
    assert!(
        outcomes[0]
            .message
            .as_ref()
            .unwrap()
            .contains(": 3 threads "),
        "{:?}",
        outcomes[0].message
    );
    // The two survivors inserted.
    assert_eq!(map.len(), 5);
    map.clear();
    assert_usable(&map);
}

/// A guard held for much longer than the threshold, with a chain of waiters behind it (one of
/// them holding a guard the next waits for) but no cycle: nobody panics, everyone completes.
#[test]
fn long_hold_without_a_cycle_is_not_reported() {
    let (map, keys) = detecting_map();
    let barrier = Arc::new(Barrier::new(3));
    let hold = CHECK_AFTER * 15;
    let holder = {
        let map = Arc::clone(&map);
        let held = keys[1][0];
        spawn_party("holder", &barrier, move |barrier| {
            let guard = map.get(&held).unwrap();
            barrier.wait();
            // Waits on something that is not a shard lock, for long.
            std::thread::sleep(hold);
            drop(guard);
            (None, 0, 0)
        })
    };
    let middle = {
        let map = Arc::clone(&map);
        let (held, target) = (keys[2][0], keys[1][1]);
        spawn_party("middle", &barrier, move |barrier| {
            let guard = map.get_mut(&held).unwrap();
            barrier.wait();
            let message = panic_of(|| map.insert(target, 1));
            drop(guard);
            (message, 0, 0)
        })
    };
    let last = {
        let map = Arc::clone(&map);
        let target = keys[2][1];
        spawn_party("last", &barrier, move |barrier| {
            barrier.wait();
            std::thread::sleep(CHECK_AFTER);
            let message = panic_of(|| map.insert(target, 2));
            (message, 0, 0)
        })
    };
    let started = Instant::now();
    let outcomes = within_timeout("long hold, no cycle", move || {
        [holder, middle, last]
            .map(|party| party.join().unwrap())
            .into_iter()
            .collect::<Vec<_>>()
    });
    for outcome in &outcomes {
        assert_eq!(outcome.message, None, "{} panicked", outcome.name);
    }
    assert!(started.elapsed() >= hold, "the waits did wait for the hold");
    assert_eq!(map.get_cloned(&keys[1][1]), Some(1));
    assert_eq!(map.get_cloned(&keys[2][1]), Some(2));
    map.clear();
    assert_usable(&map);
}

/// Two maps: a cycle through shards of different maps is found too.
#[test]
fn cycle_across_two_maps_reports_a_deadlock() {
    let (first, first_keys) = detecting_map();
    let (second, second_keys) = detecting_map();
    let barrier = Arc::new(Barrier::new(2));
    let one = {
        let (first, second) = (Arc::clone(&first), Arc::clone(&second));
        let (held, target) = (first_keys[1][0], second_keys[2][1]);
        spawn_party("maps-1", &barrier, move |barrier| {
            let held_line = line!() + 1;
            let guard = first.get(&held).unwrap();
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| second.insert(target, 1));
            drop(guard);
            (message, held_line, call_line)
        })
    };
    let two = {
        let (first, second) = (Arc::clone(&first), Arc::clone(&second));
        let (held, target) = (second_keys[2][0], first_keys[1][1]);
        spawn_party("maps-2", &barrier, move |barrier| {
            let held_line = line!() + 1;
            let guard = second.entry(held);
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| first.insert(target, 2));
            drop(guard);
            (message, held_line, call_line)
        })
    };
    expect_one_deadlock_report("two maps", vec![one, two], &[1, 2]);
    first.clear();
    second.clear();
    assert_usable(&first);
    assert_usable(&second);
}

/// A cycle through a read taken past the thread's reader slots (its fifth distinct shard,
/// counted on the shard's shared count): the holder is still found, with its site.
#[test]
fn cycle_through_an_overflow_read_reports_a_deadlock() {
    let (map, keys) = detecting_map();
    for shard_keys in &keys {
        map.insert(shard_keys[0], 0);
    }
    let barrier = Arc::new(Barrier::new(2));
    let many = {
        let map = Arc::clone(&map);
        let keys = keys.clone();
        spawn_party("many-guards", &barrier, move |barrier| {
            let guards: Vec<_> = (1..=4).map(|s| map.get(&keys[s][0]).unwrap()).collect();
            let held_line = line!() + 1;
            let overflow = map.get(&keys[5][0]).unwrap();
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| map.insert(keys[6][1], 1));
            drop((guards, overflow));
            (message, held_line, call_line)
        })
    };
    let other = {
        let map = Arc::clone(&map);
        let keys = keys.clone();
        spawn_party("one-guard", &barrier, move |barrier| {
            let held_line = line!() + 1;
            let guard = map.get(&keys[6][0]).unwrap();
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| map.insert(keys[5][1], 2));
            drop(guard);
            (message, held_line, call_line)
        })
    };
    expect_one_deadlock_report("overflow read in the cycle", vec![many, other], &[5, 6]);
    map.clear();
    assert_usable(&map);
}

/// Writes per run after which a shard's writer looks at the clock, and the run length under
/// which the shard becomes write-heavy (its readers count themselves in the shard's shared
/// reader count, its writers wait on that count instead of walking the reader records).
const WRITE_RUN: u64 = 64;
const WRITE_HEAVY_RUN: Duration = Duration::from_millis(1);

/// Like [`detecting_map`], but with shards 1 and 2 made write-heavy: each has had a whole
/// number of write runs, the last one measured (from outside) shorter than the write-heavy
/// threshold, so the next write neither ends a run nor walks the records.
fn write_heavy_detecting_map() -> (Arc<Map>, Vec<Vec<u64>>) {
    // Keys by shard come from a probe map with the same hasher, so that the map under test
    // has a known number of writes per shard.
    let (probe, keys) = detecting_map();
    let map: Map = ShardedMap::builder()
        .shards(8)
        .hasher(probe.hasher().clone())
        .deadlock_check_after(CHECK_AFTER)
        .build()
        .unwrap();
    for (shard, shard_keys) in keys.iter().enumerate().take(4).skip(1) {
        map.insert(shard_keys[0], shard as u64);
        assert_eq!(map.get(&shard_keys[0]).unwrap().shard(), shard);
    }
    for (shard, shard_keys) in keys.iter().enumerate().take(3).skip(1) {
        let mut writes = 1u64; // The insert above.
        let mut previous_run_end: Option<Instant> = None;
        loop {
            let before = Instant::now();
            map.insert(shard_keys[0], shard as u64);
            writes += 1;
            if writes.is_multiple_of(WRITE_RUN) {
                // The run that ended here began inside the write that ended the previous one.
                let fast = previous_run_end
                    .is_some_and(|began| began.elapsed() < WRITE_HEAVY_RUN * 8 / 10);
                if fast {
                    break;
                }
                previous_run_end = Some(before);
            }
            assert!(
                writes < 1_000 * WRITE_RUN,
                "shard {shard}: no run of {WRITE_RUN} writes took less than {WRITE_HEAVY_RUN:?}"
            );
        }
    }
    (Arc::new(map), keys)
}

/// dashmap issue 369 on write-heavy shards: the read guards are counted in the shards' shared
/// reader counts (and still published in the threads' records), and each insert waits on the
/// count without walking the records. The cycle must be found there too.
#[test]
fn read_guards_and_inserts_on_write_heavy_shards_report_a_deadlock() {
    let (map, keys) = write_heavy_detecting_map();
    let barrier = Arc::new(Barrier::new(2));
    let party = |name, own: usize, other: usize| {
        let map = Arc::clone(&map);
        let (held, target) = (keys[own][0], keys[other][1]);
        spawn_party(name, &barrier, move |barrier| {
            let held_line = line!() + 1;
            let guard = map.get(&held).unwrap();
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| map.insert(target, 100));
            assert_eq!(*guard, own as u64, "the guard still reads its value");
            drop(guard);
            (message, held_line, call_line)
        })
    };
    let parties = vec![party("heavy-a", 1, 2), party("heavy-b", 2, 1)];
    let outcomes = expect_one_deadlock_report("write-heavy get + insert", parties, &[1, 2]);
    let (lost, kept) = if outcomes[0].name == "heavy-a" {
        (keys[2][1], keys[1][1])
    } else {
        (keys[1][1], keys[2][1])
    };
    assert_eq!(map.get_cloned(&kept), Some(100));
    assert_eq!(map.get_cloned(&lost), None);
    assert_eq!(map.len(), 4);
    map.clear();
    assert_usable(&map);
}

/// A write guard against a read guard on write-heavy shards: the writer's insert waits on the
/// shared count for the reader's counted guard, the reader's `get` waits for the writer word.
#[test]
fn write_guard_and_read_guard_on_write_heavy_shards_report_a_deadlock() {
    let (map, keys) = write_heavy_detecting_map();
    let barrier = Arc::new(Barrier::new(2));
    let writer = {
        let map = Arc::clone(&map);
        let (held, target) = (keys[1][0], keys[2][1]);
        spawn_party("heavy-writer", &barrier, move |barrier| {
            let held_line = line!() + 1;
            let guard = map.get_mut(&held).unwrap();
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| map.insert(target, 100));
            drop(guard);
            (message, held_line, call_line)
        })
    };
    let reader = {
        let map = Arc::clone(&map);
        let (held, target) = (keys[2][0], keys[1][0]);
        spawn_party("heavy-reader", &barrier, move |barrier| {
            let held_line = line!() + 1;
            let guard = map.get(&held).unwrap();
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| map.get_cloned(&target));
            drop(guard);
            (message, held_line, call_line)
        })
    };
    expect_one_deadlock_report(
        "write-heavy get_mut + insert / get + get",
        vec![writer, reader],
        &[1, 2],
    );
    map.clear();
    assert_usable(&map);
}

/// The self-deadlock check on a write-heavy shard: this thread's read guard is counted in the
/// shard's shared count and its insert does not walk the records, yet the insert panics at
/// once, naming both sites, and leaves the map usable. (Run on a thread of its own, so that a
/// missing check fails the test instead of hanging it.)
#[test]
fn insert_while_holding_get_on_a_write_heavy_shard_panics() {
    let (map, keys) = write_heavy_detecting_map();
    let key = keys[1][0];
    let (done, outcome) = mpsc::channel();
    let scenario = Arc::clone(&map);
    std::thread::spawn(move || {
        let held_line = line!() + 1;
        let guard = scenario.get(&key).unwrap();
        let call_line = line!() + 1;
        let message = expect_panic(|| scenario.insert(key, 7));
        assert_eq!(*guard, 1);
        drop(guard);
        done.send((message, held_line, call_line)).unwrap();
    });
    let (message, held_line, call_line) = outcome.recv_timeout(Duration::from_secs(20)).expect(
        "the insert under this thread's own counted read guard neither panicked nor returned",
    );
    assert_report(&message, 1, held_line, call_line);
    assert_eq!(map.get_cloned(&key), Some(1));
    assert_usable(&map);
}

/// How long a write that must wait for a guard is given to (wrongly) complete before the test
/// decides that it waits.
const MUST_WAIT: Duration = Duration::from_millis(200);

/// Spawns a thread that sets `key` to `value` in `map`; the flag says when it has.
fn spawn_writer(map: &Arc<Map>, key: u64, value: u64) -> (JoinHandle<()>, Arc<AtomicBool>) {
    let (map, done) = (Arc::clone(map), Arc::new(AtomicBool::new(false)));
    let flag = Arc::clone(&done);
    let writer = std::thread::spawn(move || {
        map.insert(key, value);
        flag.store(true, Ordering::SeqCst);
    });
    (writer, done)
}

/// A writer that finds its own thread's read guard gives the shard's writer word back without
/// having waited for the readers, and panics. The shard must still make every later writer
/// wait for the readers inside: a second write from the same thread panics again, and a write
/// from another thread waits until the guard is gone. (Before the fix the word went back
/// looking like a shard nobody had read, the next writer skipped the readers, and `remove`
/// dropped the value the guard pointed to.)
fn writes_after_a_caught_self_deadlock_wait_for(map: &Arc<Map>, key: u64, what: &str) {
    let guard = map.get(&key).unwrap();
    let value = *guard;
    let first = expect_panic(|| map.insert(key, value + 1));
    assert!(first.contains("deadlock avoided"), "{what}: {first}");
    let second = expect_panic(|| map.remove(&key));
    assert!(
        second.contains("deadlock avoided"),
        "{what}: a second write of the shard while this thread reads it: {second}"
    );
    let third = expect_panic(|| map.insert(key, value + 1));
    assert!(third.contains("deadlock avoided"), "{what}: {third}");
    let (writer, done) = spawn_writer(map, key, value + 2);
    std::thread::sleep(MUST_WAIT);
    assert!(
        !done.load(Ordering::SeqCst),
        "{what}: another thread's write completed while this thread holds a read guard"
    );
    assert_eq!(
        *guard, value,
        "{what}: the value changed under a live read guard"
    );
    drop(guard);
    within_timeout(
        "the other thread's write once the guard is gone",
        move || writer.join().unwrap(),
    );
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(map.get_cloned(&key), Some(value + 2), "{what}");
}

/// In each mode a shard can be in when the write finds the guard: never written (reader-biased
/// where the platform allows it), fenced after writes, fenced and read since the last write,
/// and write-heavy.
#[test]
fn writes_after_a_caught_self_deadlock_still_wait_for_the_guard() {
    let written = one_shard();
    written.insert(1, 10);
    writes_after_a_caught_self_deadlock_wait_for(&written, 1, "fenced, written once");

    let read = one_shard();
    read.insert(1, 10);
    read.insert(1, 11);
    drop(read.get(&1));
    writes_after_a_caught_self_deadlock_wait_for(&read, 1, "fenced, read since the write");

    // Reads of a shard left unwritten for a while turn its reader bias back on (where the
    // platform has the heavy barrier it needs; elsewhere the shard stays fenced).
    let quiet = one_shard();
    quiet.insert(1, 10);
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(20));
        for _ in 0..1024 {
            drop(quiet.get(&1));
        }
    }
    writes_after_a_caught_self_deadlock_wait_for(&quiet, 1, "quiet (reader-biased)");

    let (heavy, keys) = write_heavy_detecting_map();
    writes_after_a_caught_self_deadlock_wait_for(&heavy, keys[1][0], "write-heavy");
    writes_after_a_caught_self_deadlock_wait_for(&heavy, keys[3][0], "written once of many");
}

/// The same after a cross-thread deadlock is resolved: the writer that gives up gives its word
/// back while the other thread's guard is still inside that shard, and a third thread's write
/// there must wait for that guard.
#[test]
fn a_write_after_a_deadlock_resolution_waits_for_the_survivors_guard() {
    let (map, keys) = detecting_map();
    let barrier = Arc::new(Barrier::new(2));
    let (survivor_tx, survivor_rx) = mpsc::channel::<usize>();
    let mut releases = Vec::new();
    let mut party = |name, own: usize, other: usize| {
        let map = Arc::clone(&map);
        let (held, target) = (keys[own][0], keys[other][1]);
        let survivor = survivor_tx.clone();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        releases.push(release_tx);
        spawn_party(name, &barrier, move |barrier| {
            let held_line = line!() + 1;
            let guard = map.get(&held).unwrap();
            barrier.wait();
            let call_line = line!() + 1;
            let message = panic_of(|| map.insert(target, 100));
            if message.is_none() {
                // Still holding the guard: let the test write into this shard meanwhile.
                survivor.send(own).unwrap();
                release_rx.recv().unwrap();
            }
            assert_eq!(
                *guard, own as u64,
                "the value changed under a live read guard"
            );
            drop(guard);
            (message, held_line, call_line)
        })
    };
    let parties = vec![party("reader-a", 1, 2), party("reader-b", 2, 1)];
    drop(survivor_tx);
    let shard = survivor_rx
        .recv_timeout(TIMEOUT)
        .expect("one party survives the deadlock and reports its shard");
    let (writer, done) = spawn_writer(&map, keys[shard][0], 999);
    std::thread::sleep(MUST_WAIT);
    let wrote = done.load(Ordering::SeqCst);
    for release in releases {
        let _ = release.send(());
    }
    assert!(
        !wrote,
        "a third thread's write into shard {shard} completed while the survivor held a guard there"
    );
    expect_one_deadlock_report("get + insert, AB-BA, then a third writer", parties, &[1, 2]);
    within_timeout("the third thread's write", move || writer.join().unwrap());
    assert_eq!(map.get_cloned(&keys[shard][0]), Some(999));
}

/// A thread that exits while a read guard it leaked (`mem::forget`) still read-locks a shard:
/// a writer of that shard must not wait forever. Once it has waited the map's threshold it
/// panics, naming the thread and the guard's site; the map stays readable, and other shards
/// writable. Both a read in one of the thread's record slots and one past them (its fifth
/// distinct shard, counted on the shard's shared count) are covered.
#[test]
fn a_read_guard_leaked_by_an_exited_thread_is_reported_to_writers() {
    let (map, keys) = detecting_map();
    for (shard, shard_keys) in keys.iter().enumerate() {
        map.insert(shard_keys[0], shard as u64);
    }
    let leaker = {
        let (map, keys) = (Arc::clone(&map), keys.clone());
        std::thread::Builder::new()
            .name("leaker".to_owned())
            .spawn(move || {
                let mut lines = Vec::new();
                // Shards 1 to 4 fill the thread's record slots; shard 5 goes past them.
                for shard_keys in &keys[1..=5] {
                    lines.push(line!() + 1);
                    std::mem::forget(map.get(&shard_keys[0]).unwrap());
                }
                lines
            })
            .unwrap()
    };
    let lines = leaker.join().unwrap();
    for (shard, line) in [(1, lines[0]), (5, lines[4])] {
        let (writer_map, key) = (Arc::clone(&map), keys[shard][0]);
        let message = within_timeout("a write to a shard an exited thread leaked a read of", {
            move || expect_panic(|| writer_map.insert(key, 100))
        });
        assert!(
            message.starts_with("mapguard: leaked guard:")
                && message.contains(&format!("shard {shard} "))
                && message.contains("thread 'leaker'")
                && message.contains(&site(file!(), line)),
            "shard {shard}: {message}"
        );
        assert_eq!(map.get_cloned(&key), Some(shard as u64), "reads go on");
    }
    map.insert(keys[6][0], 6);
    map.insert(keys[0][1], 0);
    assert_eq!(map.get_cloned(&keys[0][1]), Some(0));
}

/// A guard leaked by a thread that is still running cannot be told from one held for long,
/// so a writer waiting for it is not failed; but it must not wait silently: after ten times
/// the map's threshold (at least a second) it prints one line to stderr naming the shard, the
/// holder and the guard's site. Run in a child process, whose stderr the test reads.
#[test]
fn a_wait_on_a_guard_leaked_by_a_live_thread_is_reported_on_stderr() {
    const CHILD: &str = "MAPGUARD_TEST_STALL_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let (map, keys) = detecting_map();
        let key = keys[2][0];
        let (leaked_tx, leaked_rx) = mpsc::channel();
        let leaker = Arc::clone(&map);
        std::thread::Builder::new()
            .name("live-leaker".to_owned())
            .spawn(move || {
                std::mem::forget(leaker.get(&key).unwrap());
                leaked_tx.send(line!() - 1).unwrap();
                std::thread::park(); // Alive until the process exits.
            })
            .unwrap();
        let line = leaked_rx.recv().unwrap();
        eprintln!("leaked at line {line}");
        std::thread::spawn(move || map.insert(key, 1));
        std::thread::sleep(Duration::from_millis(2_500));
        std::process::exit(0);
    }
    let name = "deadlock::a_wait_on_a_guard_leaked_by_a_live_thread_is_reported_on_stderr";
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line: u32 = stderr
        .lines()
        .find_map(|line| line.strip_prefix("leaked at line "))
        .and_then(|line| line.parse().ok())
        .unwrap_or_else(|| panic!("the child did not run: {stderr}"));
    let reports: Vec<_> = stderr
        .lines()
        .filter(|line| line.starts_with("mapguard: stalled:"))
        .collect();
    assert_eq!(reports.len(), 1, "one report per wait: {stderr}");
    let report = reports[0];
    assert!(
        report.contains("shard 2 ")
            && report.contains("thread 'live-leaker'")
            && report.contains(&site(file!(), line))
            && report.contains("mem::forget"),
        "{report}"
    );
}

/// The reads an exited thread leaked name its map's shard locks by address. Once that map is
/// dropped, a new map whose shards land at the same addresses (the allocator hands the same
/// blocks out again) must not inherit them: its writes go through.
#[test]
fn a_new_map_does_not_inherit_the_leaked_reads_of_a_dropped_one() {
    let one_detecting_shard = || -> Arc<Map> {
        Arc::new(
            ShardedMap::builder()
                .shards(1)
                .hasher(TestState::Sip(Default::default()))
                .deadlock_check_after(CHECK_AFTER)
                .build()
                .unwrap(),
        )
    };
    for round in 0..20u64 {
        let map = one_detecting_shard();
        map.insert(round, round);
        let leaker = Arc::clone(&map);
        std::thread::spawn(move || std::mem::forget(leaker.get(&round).unwrap()))
            .join()
            .unwrap();
        drop(map);
        let fresh = one_detecting_shard();
        within_timeout(
            "a write to a new map after a leak in a dropped one",
            move || {
                fresh.insert(round, round + 1);
                assert_eq!(fresh.get_cloned(&round), Some(round + 1));
            },
        );
    }
}
