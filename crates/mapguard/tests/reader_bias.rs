//! Stress tests of the shard lock's reader-biased mode: rare writes (so that shards return to
//! fence-free reads between them) and frequent writes, with readers checking that they never
//! see a value while it is being written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mapguard::ShardedMap;

const KEYS: u64 = 64;
const WIDTH: usize = 16;

/// A value a writer replaces field by field: a reader that overlaps a write sees fields of
/// two generations.
type Value = [u64; WIDTH];

fn check(key: u64, value: &Value) {
    assert!(
        value.iter().all(|field| *field == value[0]),
        "key {key}: torn value {value:?}"
    );
    assert_eq!(value[0] % KEYS, key, "key {key}: value of another key");
}

fn run(write_gap: Duration, duration: Duration) -> (u64, u64) {
    let map: Arc<ShardedMap<u64, Value>> =
        Arc::new(ShardedMap::builder().shards(4).build().unwrap());
    for key in 0..KEYS {
        map.insert(key, [key; WIDTH]);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|seed| {
            let (map, stop) = (Arc::clone(&map), Arc::clone(&stop));
            thread::spawn(move || {
                let mut reads = 0u64;
                let mut key = seed;
                while !stop.load(Ordering::Relaxed) {
                    key = (key * 31 + 7) % KEYS;
                    let value = map.get(&key).expect("keys are never removed");
                    check(key, &value);
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let writer = {
        let (map, stop) = (Arc::clone(&map), Arc::clone(&stop));
        thread::spawn(move || {
            let mut writes = 0u64;
            let mut generation = 1;
            while !stop.load(Ordering::Relaxed) {
                let key = generation % KEYS;
                // Write field by field while holding the write lock.
                let mut entry = map.get_mut(&key).unwrap();
                for field in entry.iter_mut() {
                    *field = generation;
                    std::hint::black_box(&*field);
                }
                drop(entry);
                writes += 1;
                generation += 1;
                if !write_gap.is_zero() {
                    thread::sleep(write_gap);
                }
            }
            writes
        })
    };
    thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let reads = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let writes = writer.join().unwrap();
    for key in 0..KEYS {
        check(key, &map.get(&key).unwrap());
    }
    (reads, writes)
}

#[test]
fn rare_writes_never_tear_reads() {
    // Writes 300 µs apart: longer than the bias inhibition window, so most writes find the
    // shard reader-biased and must revoke it with the heavy barrier.
    let started = Instant::now();
    let (reads, writes) = run(Duration::from_micros(300), Duration::from_millis(600));
    assert!(reads > 1000, "readers made no progress: {reads} reads");
    assert!(writes > 10, "writer made no progress: {writes} writes");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn frequent_writes_never_tear_reads() {
    let (reads, writes) = run(Duration::ZERO, Duration::from_millis(400));
    assert!(reads > 1000, "readers made no progress: {reads} reads");
    assert!(writes > 1000, "writer made no progress: {writes} writes");
}

/// Reader threads that come and go while a writer writes: each new thread claims a reader
/// record (often one a finished thread freed) while the writer may be walking the records,
/// and must still never see a value while it is being written.
#[test]
fn short_lived_readers_never_tear_reads() {
    let map: Arc<ShardedMap<u64, Value>> =
        Arc::new(ShardedMap::builder().shards(2).build().unwrap());
    for key in 0..KEYS {
        map.insert(key, [key; WIDTH]);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (map, stop) = (Arc::clone(&map), Arc::clone(&stop));
        thread::spawn(move || {
            let mut generation = 1;
            while !stop.load(Ordering::Relaxed) {
                let key = generation % KEYS;
                let mut entry = map.get_mut(&key).unwrap();
                for field in entry.iter_mut() {
                    *field = generation;
                    std::hint::black_box(&*field);
                }
                drop(entry);
                generation += 1;
            }
            generation
        })
    };
    let mut reads = 0u64;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(400) {
        let spawned: Vec<_> = (0..4u64)
            .map(|seed| {
                let map = Arc::clone(&map);
                thread::spawn(move || {
                    let mut key = seed;
                    for _ in 0..200 {
                        key = (key * 31 + 7) % KEYS;
                        check(key, &map.get(&key).expect("keys are never removed"));
                    }
                    200u64
                })
            })
            .collect();
        reads += spawned.into_iter().map(|r| r.join().unwrap()).sum::<u64>();
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(reads > 1000, "readers made no progress: {reads} reads");
    assert!(writes > 100, "writer made no progress: {writes} writes");
}
