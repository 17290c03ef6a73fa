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

    /// Adds one to `counter` for the thread numbered `thread` (`usize::MAX` if it has none).
    #[inline]
    pub(crate) fn bump(&self, thread: usize, counter: Counter) {
        match self.owned.get(thread) {
            Some(block) => {
                // Only the thread numbered `thread` writes this block (module docs).
                let cell = &block.0[counter as usize];
                cell.store(cell.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            None => {
                self.overflow.0[counter as usize].fetch_add(1, Ordering::Relaxed);
            }
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

/// The calling thread's number and sampling countdown.
pub(crate) struct ThreadSlot {
    number: Cell<usize>,
    countdown: Cell<u32>,
    rng: Cell<u32>,
}

const UNNUMBERED: usize = usize::MAX;

thread_local! {
    static SLOT: ThreadSlot = const {
        ThreadSlot { number: Cell::new(UNNUMBERED), countdown: Cell::new(0), rng: Cell::new(0) }
    };
}

impl ThreadSlot {
    #[cold]
    fn claim(&self) -> usize {
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
        // A per-thread seed for the sampling intervals; any odd-mixing of the number will do.
        self.rng.set((number as u32).wrapping_mul(0x9E37_79B9) | 1);
        self.countdown.set(1 + self.next_random() % SAMPLE_PERIOD);
        number
    }

    fn next_random(&self) -> u32 {
        // xorshift32: the intervals only need to avoid lining up with a periodic workload.
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng.set(x);
        x
    }
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        let number = self.number.get();
        if number != UNNUMBERED {
            POOL.lock().free.push(number);
        }
    }
}

/// The mean interval between sampled accesses of one thread.
pub(crate) const SAMPLE_PERIOD: u32 = 64;

/// The calling thread's number (`usize::MAX` while its thread-locals are being destroyed)
/// and whether this access is sampled: each thread samples one access in
/// [`SAMPLE_PERIOD`] on average, at random intervals from 1 to `2 * SAMPLE_PERIOD - 1`.
#[inline]
pub(crate) fn this_thread() -> (usize, bool) {
    SLOT.try_with(|slot| {
        let mut number = slot.number.get();
        if number == UNNUMBERED {
            number = slot.claim();
        }
        let left = slot.countdown.get() - 1;
        if left == 0 {
            slot.countdown
                .set(1 + slot.next_random() % (2 * SAMPLE_PERIOD - 1));
            (number, true)
        } else {
            slot.countdown.set(left);
            (number, false)
        }
    })
    .unwrap_or((UNNUMBERED, false))
}
