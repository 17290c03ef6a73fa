//! Memory of every map, measured with a counting global allocator (its own binary, one test, so
//! no other test's allocations are counted): every byte comes back after `clear` (and
//! `shrink_to_fit` where the map keeps its tables) and after drop, and memory stays bounded
//! under 10^7 operations of insert/remove churn from several threads.

#[path = "support/hashers.rs"]
mod hashers;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use hashers::Rng;
use mapguard::{LockedMap, ReadMostlyMap, ShardedMap};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn counted(size: usize) {
    let now = LIVE.fetch_add(size as isize, Ordering::Relaxed) + size as isize;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: forwards every call to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted(layout.size());
        // SAFETY: the caller keeps `GlobalAlloc::alloc`'s contract, which `System` has too.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counted(layout.size());
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

static MADE: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// A value owning heap memory that counts its drops.
#[derive(Clone, PartialEq)]
struct Value(Box<[u64; 4]>);

impl Value {
    fn new(n: u64) -> Self {
        MADE.fetch_add(1, Ordering::Relaxed);
        Self(Box::new([n; 4]))
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

fn alive() -> usize {
    MADE.load(Ordering::Relaxed) - DROPPED.load(Ordering::Relaxed)
}

/// The operations the churn needs, on every map.
trait Churn: Sync + Send {
    fn put(&self, key: u64, value: Value);
    fn take(&self, key: u64);
    fn read(&self, key: u64) -> bool;
    fn clear_all(&self);
    fn len(&self) -> usize;
    /// Makes a writer wait for a reader once (where the map's lock parks threads).
    fn make_a_writer_wait(&self) {}
}

impl Churn for ShardedMap<u64, Value> {
    fn put(&self, key: u64, value: Value) {
        self.insert(key, value);
    }
    fn take(&self, key: u64) {
        self.remove(&key);
    }
    fn read(&self, key: u64) -> bool {
        self.get(&key).is_some()
    }
    fn clear_all(&self) {
        self.clear();
        self.shrink_to_fit();
    }
    fn len(&self) -> usize {
        ShardedMap::len(self)
    }
}

impl Churn for ReadMostlyMap<u64, Value> {
    fn put(&self, key: u64, value: Value) {
        self.insert(key, value);
    }
    fn take(&self, key: u64) {
        self.remove(&key);
    }
    fn read(&self, key: u64) -> bool {
        self.get(&key).is_some()
    }
    fn clear_all(&self) {
        self.clear();
        self.reclaim();
    }
    fn len(&self) -> usize {
        ReadMostlyMap::len(self)
    }
}

impl Churn for LockedMap<u64, Value> {
    fn put(&self, key: u64, value: Value) {
        self.insert(key, value);
    }
    fn take(&self, key: u64) {
        self.remove(&key);
    }
    fn read(&self, key: u64) -> bool {
        self.get(&key).is_some()
    }
    fn clear_all(&self) {
        self.clear();
        self.shrink_to_fit();
    }
    fn len(&self) -> usize {
        LockedMap::len(self)
    }
    fn make_a_writer_wait(&self) {
        self.insert(0, Value::new(0));
        std::thread::scope(|scope| {
            let held = self.get(&0);
            let writer = scope.spawn(|| self.insert(0, Value::new(1)));
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(held);
            writer.join().unwrap();
        });
        self.remove(&0);
    }
}

const THREADS: u64 = 2;
const KEYS: u64 = 4096;

type Shared = Arc<dyn Churn + Send>;

/// The job the workers run next.
#[derive(Default)]
struct Job {
    generation: u64,
    map: Option<Shared>,
    ops: u64,
    seed: u64,
    finished: u64,
}

/// Worker threads that live for the whole test: the maps keep a per-thread record for every
/// thread that used them (reused by later threads, never freed), so fresh threads for each run
/// would make the count depend on when exited threads give their records back.
struct Workers {
    job: Arc<(Mutex<Job>, Condvar)>,
}

impl Workers {
    fn start() -> Self {
        let job: Arc<(Mutex<Job>, Condvar)> = Arc::default();
        for thread in 0..THREADS {
            let job = Arc::clone(&job);
            std::thread::spawn(move || {
                let mut seen = 0;
                loop {
                    let (map, ops, seed) = {
                        let (lock, wake) = &*job;
                        let mut next = lock.lock().unwrap();
                        while next.generation == seen {
                            next = wake.wait(next).unwrap();
                        }
                        seen = next.generation;
                        (
                            next.map.clone().unwrap(),
                            next.ops,
                            next.seed ^ (thread << 32),
                        )
                    };
                    churn(map.as_ref(), ops, seed);
                    drop(map);
                    let (lock, wake) = &*job;
                    lock.lock().unwrap().finished += 1;
                    wake.notify_all();
                }
            });
        }
        Self { job }
    }

    /// Runs `ops` operations on each worker and waits for them.
    fn run(&self, map: &Shared, ops: u64, seed: u64) {
        let (lock, wake) = &*self.job;
        let mut job = lock.lock().unwrap();
        job.generation += 1;
        job.map = Some(Arc::clone(map));
        job.ops = ops;
        job.seed = seed;
        job.finished = 0;
        wake.notify_all();
        while job.finished < THREADS {
            job = wake.wait(job).unwrap();
        }
        job.map = None;
    }
}

/// `ops` operations of random insert / remove / get on `KEYS` keys.
fn churn(map: &dyn Churn, ops: u64, seed: u64) {
    let mut rng = Rng(seed);
    for _ in 0..ops {
        let key = rng.below(KEYS);
        match rng.below(3) {
            0 => map.put(key, Value::new(key)),
            1 => map.take(key),
            _ => {
                map.read(key);
            }
        }
    }
}

/// Parks this thread once. parking_lot (behind `ReadMostlyMap`'s shard locks) allocates its
/// table of parked threads at the first park in the process and keeps it for good: whether the
/// throwaway churn happened to park is chance, so a park here keeps the table out of the count.
fn park_once() {
    let lock = parking_lot::Mutex::new(());
    let mut guard = lock.lock();
    parking_lot::Condvar::new().wait_for(&mut guard, std::time::Duration::from_millis(1));
}

/// Figures of one map's run.
struct Figures {
    ops: u64,
    warm_peak: isize,
    churn_peak: isize,
    leaked_after_clear: isize,
    leaked_after_drop: isize,
}

fn measure(
    name: &str,
    workers: &Workers,
    make: &dyn Fn() -> Shared,
    ops_per_thread: u64,
) -> Figures {
    // Keep the per-thread records out of the count: the maps allocate one per thread on first
    // use and keep it for the life of the thread (not per map). A throwaway churn claims them.
    let throwaway = make();
    workers.run(&throwaway, 1000, 0);
    churn(throwaway.as_ref(), 1000, 0);
    drop(throwaway);
    park_once();
    let baseline = live();
    PEAK.store(baseline, Ordering::Relaxed);
    let map = make();
    let empty = live();

    // Warm-up: the tables reach their working size.
    workers.run(&map, ops_per_thread / 5, 1);
    let warm_peak = PEAK.load(Ordering::Relaxed) - baseline;
    PEAK.store(live(), Ordering::Relaxed);
    // The rest of the churn must not need more memory than the warm-up did (plus slack for
    // values waiting for reclamation and table-growth timing).
    workers.run(&map, ops_per_thread - ops_per_thread / 5, 2);
    let churn_peak = PEAK.load(Ordering::Relaxed) - baseline;
    assert!(map.len() as u64 <= KEYS);
    assert!(
        churn_peak <= warm_peak + warm_peak / 2,
        "{name}: memory grew under churn: peak {churn_peak} B after a warm-up peak of {warm_peak} B"
    );

    map.clear_all();
    assert_eq!(alive(), 0, "{name}: values alive after clear");
    let leaked_after_clear = live() - empty;
    assert_eq!(
        Arc::strong_count(&map),
        1,
        "the workers dropped their handles"
    );
    drop(map);
    assert_eq!(alive(), 0, "{name}: values alive after drop");
    let leaked_after_drop = live() - baseline;
    Figures {
        ops: ops_per_thread * THREADS,
        warm_peak,
        churn_peak,
        leaked_after_clear,
        leaked_after_drop,
    }
}

#[test]
#[cfg_attr(
    feature = "lockdep",
    ignore = "lockdep keeps the lock classes of every map it saw, for its statistics; CI runs this \
              test without features"
)]
fn every_byte_comes_back_and_churn_stays_bounded() {
    const OPS_PER_THREAD: u64 = 1_700_000; // x 2 threads x 3 maps: 10.2 million operations
    let maps: [(&str, &dyn Fn() -> Shared); 3] = [
        ("ShardedMap", &|| Arc::new(ShardedMap::<u64, Value>::new())),
        ("ReadMostlyMap", &|| {
            Arc::new(ReadMostlyMap::<u64, Value>::new())
        }),
        ("LockedMap", &|| Arc::new(LockedMap::<u64, Value>::new())),
    ];
    let workers = Workers::start();
    // parking_lot's global table of parked threads (the lock of `LockedMap` and the writers'
    // mutex of `ReadMostlyMap`) is allocated when a thread first waits and kept for the
    // process: make a writer wait once before anything is counted.
    let map: Shared = Arc::new(LockedMap::<u64, Value>::new());
    map.make_a_writer_wait();
    drop(map);
    let (mut ops, mut leaked) = (0, 0);
    for (name, make) in maps {
        let f = measure(name, &workers, make, OPS_PER_THREAD);
        println!(
            "memory {name:<14} ops {:>9} warm-up peak {:>8} B churn peak {:>8} B \
             leaked after clear {} B after drop {} B",
            f.ops, f.warm_peak, f.churn_peak, f.leaked_after_clear, f.leaked_after_drop
        );
        assert_eq!(f.leaked_after_clear, 0, "{name}: bytes kept after clear");
        assert_eq!(f.leaked_after_drop, 0, "{name}: bytes kept after drop");
        ops += f.ops;
        leaked += f.leaked_after_clear + f.leaked_after_drop;
    }
    println!("memory TOTAL ops {ops} bytes leaked {leaked}");
}
