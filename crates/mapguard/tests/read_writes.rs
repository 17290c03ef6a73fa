//! The promise that a `ReadMostlyMap` read writes no memory that another core reads and runs
//! no fence, whatever writers do meanwhile, checked by counting instead of timing: in the
//! write-counting build (`--cfg mapguard_count_writes`) every atomic store and
//! read-modify-write, lock acquisition and fence of the crate adds one to a count of the
//! calling thread, except the stores of a reader to its own epoch record. A thread that reads
//! while others overwrite, insert, remove, grow and shrink the map must end with the counts it
//! started with. `ShardedMap`'s reads, which take a shard's read lock, are counted the same
//! way, as a check that the count sees a read that writes.
//!
//! ```text
//! RUSTFLAGS="--cfg mapguard_count_writes" CARGO_TARGET_DIR=target/count \
//!   cargo test -p mapguard --test read_writes
//! ```
#![cfg(all(mapguard_count_writes, not(loom)))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use mapguard::{
    ReadMostlyMap, ShardedMap, fences_by_this_thread, reads_use_light_fences,
    shared_writes_by_this_thread,
};

const KEYS: u64 = 4096;
const READS: u64 = 200_000;

/// This thread's shared writes and fences so far.
fn counts() -> (u64, u64) {
    (shared_writes_by_this_thread(), fences_by_this_thread())
}

/// Runs `writers` threads that overwrite, insert and remove keys of `map` (growing and
/// shrinking its shards) until `read` returns, then returns what `read` returned.
fn with_writers<R>(
    map: &Arc<ReadMostlyMap<u64, u64>>,
    writers: usize,
    read: impl FnOnce() -> R,
) -> R {
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..writers as u64)
        .map(|w| {
            let (map, stop) = (Arc::clone(map), Arc::clone(&stop));
            thread::spawn(move || {
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for k in 0..KEYS {
                        map.insert(k, round);
                    }
                    // New keys grow the shards; removing them shrinks them again.
                    for k in 0..KEYS {
                        map.insert(KEYS * (2 + w) + k, k);
                    }
                    for k in 0..KEYS {
                        map.remove(&(KEYS * (2 + w) + k));
                    }
                    map.remove_if_eq(&(round % KEYS), &round);
                    round += 1;
                }
            })
        })
        .collect();
    let result = read();
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.join().expect("a writer panicked");
    }
    result
}

#[test]
fn reads_of_a_read_mostly_map_write_nothing_shared_and_fence_nothing_while_others_write() {
    let map = Arc::new(ReadMostlyMap::<u64, u64>::new());
    for k in 0..KEYS {
        map.insert(k, k);
    }
    // The thread's first read registers its epoch record (a write to the domain's list).
    assert!(map.get(&0).is_some());
    let (found, before, after) = with_writers(&map, 2, || {
        let before = counts();
        let mut found = 0u64;
        for i in 0..READS {
            let k = i.wrapping_mul(0x9e37_79b9) % (2 * KEYS);
            found += u64::from(map.get(&k).is_some());
            found += u64::from(map.contains_key(&k));
            found += map.get_cloned(&k).map_or(0, |_| 1);
            if i % 1024 == 0 {
                found += map.iter().take(64).count() as u64;
            }
        }
        (found, before, counts())
    });
    assert!(
        found > 0,
        "the reads found nothing: the test read an empty map"
    );
    assert_eq!(
        after.0 - before.0,
        0,
        "{READS} rounds of reads made {} stores or read-modify-writes on shared memory",
        after.0 - before.0
    );
    // Without `membarrier` (not Linux, or a sandbox that refuses it) a pin needs a real fence.
    let fences_allowed = if reads_use_light_fences() {
        0
    } else {
        4 * READS
    };
    assert!(
        after.1 - before.1 <= fences_allowed,
        "{READS} rounds of reads ran {} fences (allowed: {fences_allowed})",
        after.1 - before.1
    );
}

#[test]
fn the_count_sees_the_shared_writes_of_a_read_that_takes_a_lock() {
    let map = ShardedMap::<u64, u64>::new();
    for k in 0..KEYS {
        map.insert(k, k);
    }
    assert!(map.get(&0).is_some());
    let before = counts();
    for k in 0..KEYS {
        assert!(map.get_cloned(&k).is_some());
    }
    let (writes, fences) = (counts().0 - before.0, counts().1 - before.1);
    assert!(
        writes + fences >= KEYS,
        "{KEYS} locked reads counted only {writes} shared writes and {fences} fences"
    );
}
