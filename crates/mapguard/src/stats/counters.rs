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
//!
//! The atomics, the pool's mutex and the thread-locals come from `raw::primitive`, so that
//! `tests/loom_stats.rs` checks these claims under loom (through `model`, compiled only there).

use std::cell::Cell;
use std::sync::atomic::Ordering;

use crossbeam_utils::CachePadded;

use crate::raw::primitive::{AtomicU64, Mutex, global, thread_local};

/// The counters of one block, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counter {
    /// Every lookup, counted as it starts (so that the sampling decision is taken before
    /// the lookup holds anything); the hits are these less [`GetMiss`](Self::GetMiss).
    Get = 0,
    GetMiss = 1,
    Insert = 2,
    Overwrite = 3,
    RemoveHit = 4,
    RemoveMiss = 5,
    Compute = 6,
    Clear = 7,
    /// Write-lock acquisitions of writes that count nothing else (`retain`, `get_or_insert`
    /// of a present key), for maps whose lock does not count its acquisitions (`LockedMap`,
    /// whose every other write counts one of the write counters above).
    WriteLock = 8,
}

pub(crate) const COUNTERS: usize = 9;

/// One thread's counters, padded against its neighbours.
pub(crate) struct Block([AtomicU64; COUNTERS]);

impl Default for Block {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Block {
    /// Adds one to `counter` as the only writer of this block; returns its value before.
    #[inline(always)]
    fn add_owned(&self, counter: Counter) -> u64 {
        let cell = &self.0[counter as usize];
        let before = cell.load(Ordering::Relaxed);
        cell.store(before + 1, Ordering::Relaxed);
        before
    }

    /// [`add_owned`](Self::add_owned) for a block other threads may write too.
    fn add_shared(&self, counter: Counter) -> u64 {
        self.0[counter as usize].fetch_add(1, Ordering::Relaxed)
    }
}

/// Per-thread stripes of counters; see the module docs. Unsized: the owned stripes are its
/// last field, a slice built as an array of a size chosen when the map is built (see
/// [`stripe_count`]), so that a pointer to it carries their count and the stripes sit at a
/// fixed offset behind it (one load fewer per count than a separately boxed slice).
pub(crate) struct Stripes<S: ?Sized = [CachePadded<Block>]> {
    overflow: CachePadded<Block>,
    owned: S,
}

/// How many owned stripes a map gets: twice the cores rounded up to a power of two (at
/// least 4, at most 64), so that the threads that run at once usually own one; more would
/// only cost memory (128 bytes each).
pub(crate) fn stripe_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 2).clamp(4, 64).next_power_of_two()
}

impl<const N: usize> Stripes<[CachePadded<Block>; N]> {
    /// `N` owned stripes, all zero.
    pub(crate) fn sized() -> Self {
        Self {
            overflow: CachePadded::default(),
            owned: std::array::from_fn(|_| CachePadded::default()),
        }
    }
}

/// Calls `$make!(N)` with the `N` among 4, 8, 16, 32 and 64 that `$count` rounds up to: the
/// sizes [`Stripes`] is built with.
macro_rules! with_stripes {
    ($count:expr, $make:ident) => {
        match $count {
            0..=4 => $make!(4),
            5..=8 => $make!(8),
            9..=16 => $make!(16),
            17..=32 => $make!(32),
            _ => $make!(64),
        }
    };
}
pub(crate) use with_stripes;

impl Stripes {
    /// Adds one to `counter` for the calling thread and says whether this access of a key
    /// with hash `hash` is sampled. The fast path is one thread-local load, one compare with the stripe count (which also catches
    /// an unnumbered or exiting thread, both numbered above any stripe count) and a relaxed
    /// load and store into the thread's own stripe. The sampling decision needs no state of
    /// its own: it mixes the count just read with the key's hash (see [`sampled`]).
    #[inline(always)]
    pub(crate) fn bump(&self, counter: Counter, hash: u64) -> bool {
        let thread = SLOT.with(|slot| slot.number.get());
        let before = match self.owned.get(thread) {
            // Only the thread numbered `thread` writes this block (module docs).
            Some(block) => block.add_owned(counter),
            None => self.bump_slow(thread, counter),
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
        self.add_as(thread, counter)
    }

    /// Adds one to `counter` for the thread numbered `thread`: what [`bump`](Self::bump)
    /// does once it has read the calling thread's number.
    fn add_as(&self, thread: usize, counter: Counter) -> u64 {
        match self.owned.get(thread) {
            // Only the thread numbered `thread` writes this block (module docs).
            Some(block) => block.add_owned(counter),
            None => self.overflow.add_shared(counter),
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

/// Numbers of live threads; freed numbers are reused smallest first. The mutex is what hands
/// a stripe from an exited thread to the next owner: the old owner's last store happens
/// before its `release`, which happens before the `claim` that returns the number again.
struct Pool {
    numbers: Mutex<Numbers>,
}

struct Numbers {
    next: usize,
    free: Vec<usize>,
}

impl Pool {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Self {
            numbers: Mutex::new(Numbers {
                next: 0,
                free: Vec::new(),
            }),
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        Self {
            numbers: Mutex::new(Numbers {
                next: 0,
                free: Vec::new(),
            }),
        }
    }

    /// The smallest free number.
    fn claim(&self) -> usize {
        let mut numbers = self.numbers.lock();
        match numbers.free.iter().enumerate().min_by_key(|(_, n)| **n) {
            Some((at, _)) => numbers.free.swap_remove(at),
            None => {
                numbers.next += 1;
                numbers.next - 1
            }
        }
    }

    /// Gives `number` back, once its thread counts no more.
    fn release(&self, number: usize) {
        self.numbers.lock().free.push(number);
    }
}

global! {
    /// The process's pool of thread numbers.
    fn pool() -> &'static Pool = Pool::new();
}

/// Whether the access that found a counter at `count` is sampled: one in
/// [`SAMPLE_PERIOD`], chosen by mixing the count with the key's hash (Fibonacci hashing of
/// their low 32 bits: a multiply and a shift, no per-thread state), so that neither a fixed
/// key nor a workload that cycles with any period is always or never sampled. 32 bits, so
/// that x86-64 multiplies by the constant without first loading it into a register.
#[inline(always)]
fn sampled(count: u64, hash: u64) -> bool {
    ((count ^ hash) as u32).wrapping_mul(0x9E37_79B9) >> (32 - SAMPLE_PERIOD.trailing_zeros()) == 0
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
}
thread_local! {
    static RELEASE: Release = const { Release };
}

/// Gives the thread's number back when the thread exits.
struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        let number = SLOT.with(|slot| slot.number.replace(RELEASED));
        if number < RELEASED {
            pool().release(number);
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
        let number = pool().claim();
        self.number.set(number);
        number
    }
}

/// The mean interval between sampled accesses (a power of two).
pub(crate) const SAMPLE_PERIOD: u64 = 128;

/// The counters' protocol with explicit thread numbers, public only under `--cfg loom` for
/// its model (`tests/loom_stats.rs`): a model thread claims a number from its own pool, counts
/// as that number (the code [`Stripes::bump`] runs once it has read the thread's number) and
/// releases the number as an exiting thread does. Not part of the API.
#[cfg(loom)]
pub mod model {
    /// Per-thread stripes of counters.
    pub struct Stripes(Box<super::Stripes>);

    impl Stripes {
        /// `stripes` owned stripes (rounded up to a power of two, at least 4) and the
        /// overflow stripe.
        pub fn new(stripes: usize) -> Self {
            macro_rules! boxed {
                ($n:literal) => {
                    Box::new(super::Stripes::<[_; $n]>::sized()) as Box<super::Stripes>
                };
            }
            Self(super::with_stripes!(stripes, boxed))
        }

        /// Counts one get (`insert`: one insert) as the thread numbered `thread`;
        /// returns that counter's value before.
        pub fn add_as(&self, thread: usize, insert: bool) -> u64 {
            let counter = if insert {
                super::Counter::Insert
            } else {
                super::Counter::Get
            };
            self.0.add_as(thread, counter)
        }

        /// `(gets, inserts)` summed over the stripes, as a snapshot sums them.
        pub fn sum(&self) -> (u64, u64) {
            let sums = self.0.sum();
            (
                sums[super::Counter::Get as usize],
                sums[super::Counter::Insert as usize],
            )
        }
    }

    /// A pool of thread numbers.
    pub struct Pool(super::Pool);

    impl Pool {
        /// An empty pool: the first claim gets 0.
        pub fn new() -> Self {
            Self(super::Pool::new())
        }

        /// The smallest free number, as a thread's first count claims it.
        pub fn claim(&self) -> usize {
            self.0.claim()
        }

        /// Gives `number` back, as an exiting thread does.
        pub fn release(&self, number: usize) {
            self.0.release(number);
        }
    }

    impl Default for Pool {
        fn default() -> Self {
            Self::new()
        }
    }
}
