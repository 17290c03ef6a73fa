//! Striped operation counters: the read path writes only a line its own thread owns.
//!
//! Every thread gets a small number, unique among live threads and reused after the thread
//! exits (`ThreadSlot`). A map with statistics has one cache-padded block of counters per
//! number below its stripe count: the thread with that number is the only writer of that
//! block, so it adds with a relaxed load and a relaxed store (no read-modify-write, no lock
//! prefix, no line shared with another writer). Threads numbered beyond the stripes share an
//! overflow block and use `fetch_add`. A number passes from an exited thread to a new one
//! through the pool's mutex, which orders the old thread's last store before the new
//! thread's first load, so no increment is lost. Readers of the figures sum the blocks with
//! relaxed loads: each counter is exact, the sum of several is not an atomic cut.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

/// The counters of one block, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counter {
    GetHit = 0,
    GetMiss = 1,
    Insert = 2,
    Overwrite = 3,
    RemoveHit = 4,
    RemoveMiss = 5,
    Compute = 6,
    Clear = 7,
}

pub(crate) const COUNTERS: usize = 8;

/// One thread's counters: 64 bytes, one line, padded against its neighbours.
#[derive(Default)]
struct Block([AtomicU64; COUNTERS]);

/// Per-thread stripes of counters; see the module docs.
pub(crate) struct Stripes {
    owned: Box<[CachePadded<Block>]>,
    overflow: CachePadded<Block>,
}

impl Stripes {
    /// Twice the cores (at least 4, at most 64): the threads that run at once usually own a
    /// stripe; more would only cost memory (128 bytes each).
    pub(crate) fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let stripes = (cores * 2).clamp(4, 64);
        Self {
            owned: (0..stripes).map(|_| CachePadded::default()).collect(),
            overflow: CachePadded::default(),
        }
    }

    /// Adds one to `counter` for the calling thread and says whether this access of a key
    /// with hash `hash` is sampled. The fast path is one thread-local load, one compare with
    /// the stripe count (which also catches an unnumbered or exiting thread, both numbered
    /// above any stripe count) and a relaxed load and store into the thread's own stripe.
    #[inline(always)]
    pub(crate) fn bump(&self, counter: Counter, hash: u64) -> bool {
        let thread = SLOT.with(|slot| slot.number.get());
        let before = if thread < self.owned.len() {
            // Only the thread numbered `thread` writes this block (module docs).
            let cell = &self.owned[thread].0[counter as usize];
            let before = cell.load(Ordering::Relaxed);
            cell.store(before + 1, Ordering::Relaxed);
            before
        } else {
            self.bump_slow(thread, counter)
        };
        sampled(before, hash)
    }

    /// [`bump`](Self::bump) for a thread not numbered yet, or numbered beyond the stripes.
    #[cold]
    #[inline(never)]
    fn bump_slow(&self, thread: usize, counter: Counter) -> u64 {
        let thread = if thread == UNNUMBERED {
            SLOT.with(ThreadSlot::claim)
        } else {
            thread
        };
        match self.owned.get(thread) {
            Some(block) => {
                // Only the thread numbered `thread` writes this block (module docs).
                let cell = &block.0[counter as usize];
                let before = cell.load(Ordering::Relaxed);
                cell.store(before + 1, Ordering::Relaxed);
                before
            }
            None => self.overflow.0[counter as usize].fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Every counter summed over the stripes (not an atomic cut).
    pub(crate) fn sum(&self) -> [u64; COUNTERS] {
        let mut total = [0u64; COUNTERS];
        for block in self.owned.iter().chain(std::iter::once(&self.overflow)) {
            for (sum, cell) in total.iter_mut().zip(block.0.iter()) {
                *sum += cell.load(Ordering::Relaxed);
            }
        }
        total
    }
}

/// Numbers of live threads; freed numbers are reused smallest first.
struct Pool {
    next: usize,
    free: Vec<usize>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    next: 0,
    free: Vec::new(),
});

/// Whether the access that found a counter at `count` is sampled: one in
/// [`SAMPLE_PERIOD`], chosen by mixing the count with the key's hash (a multiply and a
/// shift, no per-thread state), so that neither a fixed key nor a workload that cycles with
/// any period is always or never sampled.
#[inline(always)]
fn sampled(count: u64, hash: u64) -> bool {
    (count ^ hash).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SAMPLE_PERIOD.trailing_zeros()) == 0
}

/// The calling thread's number. No destructor, so that reaching it is a plain thread-local
/// load with no registration check; the number is given back by [`Release`], a second
/// thread-local registered only when the number is claimed.
struct ThreadSlot {
    number: Cell<usize>,
}

/// Not numbered yet.
const UNNUMBERED: usize = usize::MAX;
/// The number was given back (the thread is exiting): count in the overflow stripe.
const RELEASED: usize = usize::MAX - 1;

thread_local! {
    static SLOT: ThreadSlot = const { ThreadSlot { number: Cell::new(UNNUMBERED) } };
    static RELEASE: Release = const { Release };
}

/// Gives the thread's number back when the thread exits.
struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        let number = SLOT.with(|slot| slot.number.replace(RELEASED));
        if number < RELEASED {
            POOL.lock().free.push(number);
        }
    }
}

impl ThreadSlot {
    #[cold]
    #[inline(never)]
    fn claim(&self) -> usize {
        // Registers the destructor that gives the number back; if this thread is already
        // exiting, it has no number to give back and counts in the overflow stripe.
        if RELEASE.try_with(|_| ()).is_err() {
            self.number.set(RELEASED);
            return RELEASED;
        }
        let number = {
            let mut pool = POOL.lock();
            match pool.free.iter().enumerate().min_by_key(|(_, n)| **n) {
                Some((at, _)) => pool.free.swap_remove(at),
                None => {
                    pool.next += 1;
                    pool.next - 1
                }
            }
        };
        self.number.set(number);
        number
    }
}

/// The mean interval between sampled accesses (a power of two).
pub(crate) const SAMPLE_PERIOD: u64 = 128;
