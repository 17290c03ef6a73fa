//! `ShardLock<T>`: a reader-biased reader-writer lock whose reads write no shared cache line.
//!
//! A reader publishes the lock's address in a slot of its own thread's [`ReaderRecord`] with a
//! sequentially consistent store, then checks the lock's writer word. A writer sets the writer
//! word with a sequentially consistent compare-and-swap, then waits until no record names the
//! lock. This is the store-then-load handshake of Dekker's algorithm: under the single total
//! order of `SeqCst` operations, either the reader's store comes first and the writer sees it, or
//! the writer's CAS comes first and the reader sees the writer and backs off. It is the
//! "big reader" / BRAVO technique with a permanent reader bias: reads cost one atomic store to a
//! line only this thread writes; writes cost a walk over one line per reading thread.
//!
//! **Reader bias.** The `SeqCst` store is a full fence on the reader's core (an `xchg` on x86),
//! which stalls the pipeline and stops consecutive lookups from overlapping their cache
//! misses. While a shard is not being written, it is *reader-biased*: readers publish with a
//! plain store and a compiler barrier only, and the first writer that comes along clears the
//! bias and runs a heavy barrier (`membarrier` on Linux, see [`barrier`]) before it looks at
//! the slots, which orders every reader as the fences would have. A revoked bias stays off
//! for 64 times what the revocation cost (at least 1 ms), so a shard written often keeps
//! fenced readers and cheap writers; a fenced reader turns the bias back on, once in 256
//! reads, when the shard has gone a whole window without a write (each look that finds new
//! writes pushes the window out again) (taking the writer word for an instant to do so, since
//! only its holder may change the bias). Where heavy barriers are unavailable (and under
//! loom, which cannot model them) shards are never biased.
//!
//! **Write-heavy shards.** A writer of a fenced shard still walks one line per reading thread,
//! and that line is written by its owner at every read: on a shard written thousands of times
//! a second, each write takes a cache miss per reading thread. So every 64 writes the writer
//! looks at the clock, and a shard written faster than 64 writes per millisecond becomes
//! *write-heavy* (`counted`): its readers also add themselves to the lock's shared reader count
//! (a shared-line increment, as any reader-writer lock does, cheap next to the writes that
//! already move that line), and its writers check that count only, skipping the walk. A fenced
//! reader re-checks the mode after publishing, as a biased reader re-checks the bias, so the
//! writer that turns counting on (and still walks) sees every reader that did not see it. A
//! slower run of 64 writes, or a reader that finds the shard quiet for a whole window, turns
//! the mode back off; only holders of the writer word change it.
//!
//! **Unread fenced shards.** The first fenced reader after a write sets a `SEEN` bit beside
//! the mode (a compare-and-swap on the shard's word, once per write at most; reader-biased
//! reads never do). A writer walks the records of a fenced shard only if it takes the writer
//! word with that bit set, and its release clears it: a shard written again before anyone
//! read it costs the writer no walk. Either the reader's publish-then-check comes first in
//! the `SeqCst` order, and its bit is in the value the writer's exact compare-and-swap
//! expects, or it finds the writer's tag and backs off.
//!
//! Re-entrancy is handled in the thread's own bookkeeping, not on shared memory:
//! - a second read of a lock the thread already reads only increments a thread-local count (it
//!   never waits for a writer, which would be waiting for this thread's first read);
//! - a write while the thread reads the same lock, a read or a write while the thread writes it:
//!   each of these would wait forever, so each panics with both call sites instead.
//!
//! The module owns every `unsafe` of the lock: the `UnsafeCell` access and the guards' pointer
//! mapping. Callers get safe guards whose lifetimes tie them to the lock.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use super::barrier;
use super::lock_class::MapId;
use super::lock_stats::{LockStats, WaitKind};
use super::primitive::{
    AtomicPtr, AtomicU64, AtomicUsize, DataCell, ReadAccess, WriteAccess, store_load_fence,
};

use super::readers::{
    ALL_SLOTS, COLD, LOCAL, LocalReader, ReaderRecord, SLOTS, local, records, thread_tag,
};
use super::waitfor::{self, WaitMode, WaitPoint};

#[cfg(feature = "lockdep")]
use lockdep::foreign::{Access, LockClass, Token};

/// A reader-writer lock for one shard. See the module docs.
///
/// `repr(C)`, hot fields first: what a read touches (the writer word, the mode, the shared
/// count and the data, for a `hashbrown` table its 32-byte header) fills the first 64 bytes,
/// so that a read of a shard whose line left the cache takes one miss there, not two. What
/// only writers, slow paths and the occasional bias check touch comes after.
#[repr(C)]
pub(crate) struct ShardLock<T> {
    /// The writer word and the mode in one word, so that a reader decides with one load
    /// (and re-checks with one): the holder's [`thread_tag`] (0 when no writer holds the
    /// lock; tags have their three low bits clear) or'ed with how readers register, in the
    /// two low bits, and the `SEEN` bit. The mode is only changed by a thread that holds the
    /// writer word.
    ///
    /// - `BIASED`: readers publish with a plain store and a compiler barrier; a writer that
    ///   finds the shard biased makes it fenced and pays a heavy barrier (see [`barrier`]).
    /// - `FENCED`: readers publish with a sequentially consistent store.
    /// - `COUNTED` (a write-heavy shard): readers also count themselves in `shared_readers`
    ///   and writers skip the walk over every thread's record.
    /// - `SEEN` (only ever beside `FENCED`): a fenced reader got in since the writer word was
    ///   last given back. The first fenced reader after a write sets it (a compare-and-swap
    ///   from `FENCED`, after publishing its slot); a writer walks the records of a fenced
    ///   shard only when it took the word with the bit set, and its release clears it. So a
    ///   shard written again before anyone read it costs its writer no walk.
    state: AtomicUsize,
    /// Readers that could not use a slot of their own record.
    shared_readers: AtomicUsize,
    /// Where the current writer took the lock (meaningful only while a writer holds it).
    write_site: AtomicPtr<Location<'static>>,
    /// Writes so far (changed only under the writer word).
    writes: AtomicU64,
    data: DataCell<T>,
    /// The write count a reader saw when it last considered restoring the bias.
    writes_seen: AtomicU64,
    /// When the current run of `WRITE_RUN` writes began (changed only under the writer word).
    run_start_ns: AtomicU64,
    /// A reader may set `bias` again once the clock passes this (see `revoke_bias`)...
    inhibit_until_ns: AtomicU64,
    /// ...which moves this far ahead whenever a reader sees that the shard was written.
    inhibit_window_ns: AtomicU64,
    /// The shard's index in its map, for reports.
    index: usize,
    /// How long a wait on this lock lasts before it looks for a cross-thread deadlock
    /// (nanoseconds; `u64::MAX`: never). See `waitfor`.
    check_after_ns: u64,
    /// This shard's lockdep class (see `lock_class`).
    #[cfg(feature = "lockdep")]
    class: LockClass,
    /// Contention figures, touched only on the slow paths.
    stats: LockStats,
}

// SAFETY: the lock hands out `&T` to several threads at once only through read guards, and
// `&mut T` to one thread at a time through write guards, like `std::sync::RwLock`: it is `Send`
// when `T` is, and `Sync` when `T` is `Send + Sync`.
unsafe impl<T: Send> Send for ShardLock<T> {}
// SAFETY: see above.
unsafe impl<T: Send + Sync> Sync for ShardLock<T> {}

/// A revoked bias stays off for this many times what the revocation cost...
const BIAS_INHIBIT_FACTOR: u64 = 64;
/// ...and at least this long (nanoseconds). A heavy barrier costs from about a microsecond on
/// bare metal to tens of microseconds in a virtual machine (it interrupts every core).
const MIN_INHIBIT_NS: u64 = 1_000_000;

/// Shard modes, the two low bits of `ShardLock::state`. The reader-biased mode is 0, so that
/// a biased shard nobody writes has the state 0.
const BIASED: usize = 0;
const FENCED: usize = 1;
const COUNTED: usize = 2;
/// Beside `FENCED` only: a fenced reader got in since the last writer let go, so the next
/// writer must walk the records (see `ShardLock::state`).
const SEEN: usize = 0b100;
/// The mode bits, the bits below the writer's tag, and the writer bits of `ShardLock::state`.
const MODE: usize = 0b11;
const LOW: usize = 0b111;
const WRITER: usize = !LOW;

/// Every this many writes, a writer looks at how long the run took: a shard written faster
/// than `WRITE_RUN` writes per `WRITE_HEAVY_NS` becomes write-heavy (counted readers, no record
/// walk), a slower one stops being so. (Under loom, which cannot branch on the clock, every
/// second write flips the mode, so that the models cover both modes and the switches.)
#[cfg(not(loom))]
const WRITE_RUN: u64 = 64;
#[cfg(loom)]
const WRITE_RUN: u64 = 2;
/// See `WRITE_RUN`: 64 writes per millisecond, 64,000 a second on one shard.
#[cfg(not(loom))]
const WRITE_HEAVY_NS: u64 = 1_000_000;

/// How a read guard is registered, so that dropping it undoes exactly that.
#[derive(Clone, Copy)]
enum ReadHold {
    /// Through slot `n` of the thread's record.
    Slot(u8),
    /// Through slot `n` of the thread's record and the lock's shared count (a read of a
    /// write-heavy shard, or a downgrade). Every guard of such a slot carries this, so the one
    /// that releases the slot gives the count back without looking it up.
    Counted(u8),
    /// Through the thread's overflow list and the lock's shared count.
    Overflow,
    /// Through the lock's shared count only (the thread's records were already destroyed).
    Shared,
}

impl<T> ShardLock<T> {
    /// A lock around `data`, reported as shard `index` of map `map`.
    pub(crate) fn new(map: MapId, index: usize, data: T) -> Self {
        #[cfg(not(feature = "lockdep"))]
        let _ = map;
        Self {
            state: AtomicUsize::new(if barrier::available() { BIASED } else { FENCED }),
            run_start_ns: AtomicU64::new(0),
            inhibit_until_ns: AtomicU64::new(0),
            inhibit_window_ns: AtomicU64::new(MIN_INHIBIT_NS),
            writes: AtomicU64::new(0),
            writes_seen: AtomicU64::new(0),
            shared_readers: AtomicUsize::new(0),
            write_site: AtomicPtr::new(std::ptr::null_mut()),
            index,
            check_after_ns: waitfor::check_after_ns(waitfor::DEFAULT_CHECK_AFTER),
            #[cfg(feature = "lockdep")]
            class: map.shard_class("ShardedMap", index),
            stats: LockStats::default(),
            data: DataCell::new(data),
        }
    }

    fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// Sets how long a wait on this lock lasts before it looks for a cross-thread deadlock.
    pub(crate) fn set_deadlock_check_after(&mut self, after: std::time::Duration) {
        self.check_after_ns = waitfor::check_after_ns(after);
    }

    /// How long a wait on this lock lasts before it looks for a cross-thread deadlock.
    pub(crate) fn deadlock_check_after(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.check_after_ns)
    }

    /// A wait on this lock, for its slow paths (publishes nothing until it pauses).
    fn wait_point(&self, mode: WaitMode, site: &'static Location<'static>) -> WaitPoint {
        WaitPoint::new(self.addr(), self.index, mode, site, self.check_after_ns)
    }

    /// Who holds the writer word, and where it was taken: what a waiter on it is blocked by.
    fn writer_holder(&self) -> (usize, Option<&'static Location<'static>>) {
        let writer = self.state.load(Ordering::Relaxed) & WRITER;
        if writer == 0 {
            (0, None)
        } else {
            (writer, self.write_site())
        }
    }

    /// Exclusive access through `&mut self`: no locking needed.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Turns on the contention figures (before the lock is shared).
    pub(crate) fn enable_stats(&mut self) {
        self.stats.enable();
    }

    /// `(write acquisitions, contended acquisitions, nanoseconds waited)` so far; the first
    /// is exact (counted under the writer word), the others count slow-path waits.
    #[cfg_attr(not(feature = "stats"), allow(dead_code))]
    pub(crate) fn figures(&self) -> (u64, u64, u64) {
        let (contended, wait_ns) = self.stats.figures();
        (self.writes.load(Ordering::Relaxed), contended, wait_ns)
    }

    /// Consumes the lock, returning its data (an empty `T` is dropped with the lock).
    pub(crate) fn into_inner(mut self) -> T
    where
        T: Default,
    {
        std::mem::take(self.data.get_mut())
    }

    /// Locks for reading; waits while another thread writes.
    ///
    /// # Panics
    /// If this thread holds the write lock (the read would wait for itself).
    #[cfg(not(feature = "lockdep"))]
    #[inline]
    #[track_caller]
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        ReadGuard::new(self, self.read_hold(Location::caller()))
    }

    /// Runs `f` on the data under a read lock that is released when `f` returns or unwinds,
    /// without handing out a guard.
    ///
    /// The common case, a thread that holds no read, publishes in slot 0 and releases slot 0
    /// inline (a guard's release must first find out which kind of hold and which slot it
    /// carries). Every other case (a write-heavy shard, more guards, a writer present) runs
    /// `f` behind an ordinary guard, out of line.
    ///
    /// # Panics
    /// As [`read`](Self::read) does.
    #[cfg(not(feature = "lockdep"))]
    #[inline(always)]
    #[track_caller]
    pub(crate) fn read_with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let site = Location::caller();
        let local = local();
        let hold = if local.used.get() == 0 {
            match self.publish(local, 0, site) {
                Some(ReadHold::Slot(_)) => {
                    let (data, access) = self.data.read_access();
                    let _release = FirstRead { lock: self, access };
                    // SAFETY: the read lock is held until `_release` is dropped, after `f`
                    // returns or unwinds, so no writer changes the data meanwhile.
                    return f(unsafe { &*data });
                }
                Some(hold) => hold,
                None => self.read_slow(site),
            }
        } else {
            self.read_slow(site)
        };
        self.read_with_guard(hold, f)
    }

    /// [`read_with`](Self::read_with) behind a guard, with any hold.
    #[cfg(not(feature = "lockdep"))]
    #[inline(never)]
    fn read_with_guard<R>(&self, hold: ReadHold, f: impl FnOnce(&T) -> R) -> R {
        f(&ReadGuard::new(self, hold))
    }

    /// Runs `f` on the data under a read lock (with lockdep, through an ordinary guard, so
    /// that lockdep sees the read as it sees every other).
    #[cfg(feature = "lockdep")]
    #[inline]
    #[track_caller]
    pub(crate) fn read_with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.read())
    }

    /// Locks for reading, telling lockdep: the first read of a span (this thread did not
    /// read the shard yet) is checked before it may wait and stays registered until the last
    /// read guard of the span is dropped. A re-read never waits, so lockdep does not see it.
    ///
    /// # Panics
    /// If this thread holds the write lock (with the message of the unchecked build), or as
    /// lockdep's reaction says.
    #[cfg(feature = "lockdep")]
    #[track_caller]
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        let site = Location::caller();
        if let Ok(Some(hold)) = LOCAL.try_with(|local| local.recursive_read(self.addr())) {
            return ReadGuard::new(self, hold);
        }
        // This thread's own write: the lock's message, not lockdep's (it says which shard).
        if self.state.load(Ordering::Relaxed) & WRITER == thread_tag() {
            self.self_deadlock("read", site, "the write lock", self.write_site());
        }
        let token = self.class.acquire_at(self, Access::Read, site);
        let hold = self.read_hold(site);
        token.acquired();
        self.keep_read_token(hold, token);
        ReadGuard::new(self, hold)
    }

    /// Files the lockdep token of a first read where its release will find it: with the
    /// thread's slot or overflow entry, whose last guard releases it.
    #[cfg(feature = "lockdep")]
    fn keep_read_token(&self, hold: ReadHold, token: Token) {
        match hold {
            ReadHold::Slot(slot) | ReadHold::Counted(slot) => {
                let _ = COLD.try_with(|cold| cold.tokens[usize::from(slot)].set(token));
            }
            ReadHold::Overflow => {
                let me = self.addr();
                let _ = COLD.try_with(|cold| {
                    let mut overflow = cold.overflow.borrow_mut();
                    if let Some(entry) = overflow.iter_mut().find(|hold| hold.lock == me) {
                        entry.token = token;
                    }
                });
            }
            // The thread's records are being destroyed; so is, most likely, its lockdep
            // state. The read is not tracked.
            ReadHold::Shared => drop(token),
        }
    }

    /// Takes a read through this thread's record (or the shared count): the lock itself.
    ///
    /// The fast path is a thread that holds no read guard (and has claimed its record): one
    /// thread-local test, the publish, the writer check. Everything else (recursion, more
    /// guards, overflow, a first read, a writer present) is out of line in `read_slow`.
    #[inline]
    fn read_hold(&self, site: &'static Location<'static>) -> ReadHold {
        let local = local();
        let fast = if local.used.get() == 0 {
            self.publish(local, 0, site)
        } else {
            None
        };
        match fast {
            Some(hold) => hold,
            None => self.read_slow(site),
        }
    }

    /// Fast path: a read through a free slot while no writer is present, or a recursive read.
    #[inline]
    fn try_read_local(
        &self,
        local: &LocalReader,
        site: &'static Location<'static>,
    ) -> Option<ReadHold> {
        let used = local.used.get();
        if used == 0 {
            // The common case: this thread holds no read guard, so slot 0 is free and no
            // recursion or overflow bookkeeping can apply.
            return self.publish(local, 0, site);
        }
        self.try_read_local_busy(local, used, site)
    }

    /// The fast path when this thread already holds read guards.
    #[inline(never)]
    fn try_read_local_busy(
        &self,
        local: &LocalReader,
        used: u8,
        site: &'static Location<'static>,
    ) -> Option<ReadHold> {
        if let Some(hold) = local.recursive_read(self.addr()) {
            return Some(hold);
        }
        let slot = (!used).trailing_zeros() as usize;
        if slot >= SLOTS || local.overflow_holds(self.addr()) {
            return None;
        }
        if slot == 0 {
            return self.publish(local, 0, site);
        }
        // Writers look past slot 0 only when the record's `high` word says so: it goes up
        // before the slot is published, and back down if the publish fails.
        local.announce_high(slot);
        let hold = self.publish(local, slot, site);
        if hold.is_none() {
            local.settle_high();
        }
        hold
    }

    /// Publishes a read of this lock in the free `slot`, unless a writer is present.
    #[inline(always)]
    fn publish(
        &self,
        local: &LocalReader,
        slot: usize,
        site: &'static Location<'static>,
    ) -> Option<ReadHold> {
        let me = self.addr();
        let record = local.record();
        let held = &record.held[slot];
        // The site first, on the slot's line, while the record's address is at hand, in every
        // mode (a counted read publishes its slot too; a failed try leaves the site behind
        // harmlessly: only a slot naming a lock is read).
        record.sites[slot].set(site);
        // One load decides: no writer and this mode (a writer present: the slow path).
        let state = self.state.load(Ordering::Relaxed);
        let kept = if state == BIASED {
            // Reader-biased: no fence. A writer clears the bias and runs a heavy barrier
            // before it looks at the slots, so either it sees this store or the load below
            // sees its writer word or the cleared bias (module docs of `barrier`).
            held.store(me, Ordering::Relaxed);
            barrier::light();
            self.state.load(Ordering::Acquire) == BIASED
        } else if state == FENCED | SEEN {
            self.fenced_kept(local, held)
        } else {
            // The first fenced read since a write, a write-heavy shard (whose reads pay a
            // shared count anyway) or a writer present: off the straight path, so that the
            // biased and fenced checks come first.
            return self.publish_other(state, local, slot);
        };
        if kept {
            return Some(local.note_read(slot, me));
        }
        held.store(0, Ordering::Release);
        None
    }

    /// The read of a fenced shard: publishes in `held`, then looks for a writer (see the
    /// module docs for why SeqCst), and checks that the shard did not become write-heavy
    /// meanwhile (a writer that made it so walked the records after that store, later
    /// writers do not). The re-check must also find `SEEN` set, or set it: a writer walks
    /// only when it takes the writer word with that bit set. Whether the read may be kept
    /// (if not, the caller clears `held`).
    #[inline(always)]
    fn fenced_kept(&self, local: &LocalReader, held: &AtomicUsize) -> bool {
        held.store(self.addr(), Ordering::SeqCst);
        store_load_fence();
        let state = self.state.load(Ordering::SeqCst);
        if state == FENCED | SEEN || self.mark_seen(state) {
            if local.tick() {
                self.restore_bias();
            }
            return true;
        }
        false
    }

    /// [`publish`](Self::publish) in any state but `BIASED` and `FENCED | SEEN`, out of line
    /// (so that the two common states cost two compares, not a jump table).
    #[cold]
    #[inline(never)]
    fn publish_other(&self, state: usize, local: &LocalReader, slot: usize) -> Option<ReadHold> {
        match state {
            // The first fenced reader after a write: it will set `SEEN`.
            FENCED => {
                let held = &local.record().held[slot];
                if self.fenced_kept(local, held) {
                    Some(local.note_read(slot, self.addr()))
                } else {
                    held.store(0, Ordering::Release);
                    None
                }
            }
            COUNTED => self.publish_counted(slot),
            _ => None,
        }
    }

    /// A fenced reader's re-check found the state other than `FENCED | SEEN`: whether it may
    /// keep the read it published. It may if the shard is fenced and it sets `SEEN` (so that
    /// the next writer walks and finds the slot), or if the shard became reader-biased (a
    /// writer that finds it so clears the bias and walks).
    #[inline(always)]
    fn mark_seen(&self, state: usize) -> bool {
        std::hint::cold_path();
        #[cfg(not(mapguard_broken_seen))]
        {
            state == BIASED
                || (state == FENCED
                    && self
                        .state
                        .compare_exchange(
                            FENCED,
                            FENCED | SEEN,
                            Ordering::SeqCst,
                            Ordering::Relaxed,
                        )
                        .is_ok())
        }
        // A deliberately broken variant for the loom model `unread_fenced_shard_skips_walk`:
        // a reader that does not set `SEEN` lets the next writer skip the walk while it reads.
        #[cfg(mapguard_broken_seen)]
        {
            state == BIASED || state == FENCED
        }
    }

    /// The read of a write-heavy shard: counted in `shared_readers`, which every writer checks
    /// after taking the writer word (the same store-then-load handshake), in whatever mode.
    /// The slot is still published (plainly; its site already is, by `publish`) so that the
    /// thread's own bookkeeping and deadlock detection see the read; the guard's drop also
    /// gives the count back.
    #[inline(never)]
    fn publish_counted(&self, slot: usize) -> Option<ReadHold> {
        if !self.try_read_shared() {
            return None;
        }
        let local = local();
        local.record().held[slot].store(self.addr(), Ordering::Relaxed);
        if local.tick() {
            self.restore_bias();
        }
        local.note_read(slot, self.addr());
        local.counted.set(local.counted.get() | (1 << slot));
        Some(ReadHold::Counted(slot as u8))
    }

    /// Turns the reader bias back on once its inhibition window has passed. Called now and
    /// then by readers that had to fence.
    #[cold]
    fn restore_bias(&self) {
        if self.state.load(Ordering::Relaxed) == COUNTED && self.write_run_is_slow() {
            // A write-heavy shard whose writes slowed down: the run of `WRITE_RUN` writes in
            // progress has lasted longer than a write-heavy one may, so its end would turn
            // counting off anyway; do it now. Without this, a shard made write-heavy by a
            // burst (a bulk load) keeps its readers counting until `WRITE_RUN` more writes
            // come, which at a slow write rate can take seconds of shared-line reads.
            self.leave_counted();
            return;
        }
        if !barrier::available() && self.state.load(Ordering::Relaxed) & MODE != COUNTED {
            return;
        }
        // Only a shard that nobody wrote for a whole window is quiet enough: every look that
        // finds new writes pushes the window out again. Re-biasing a shard that is written
        // now and then would make its next writer pay the heavy barrier again and again.
        let writes = self.writes.load(Ordering::Relaxed);
        let now = barrier::now_ns();
        if self.writes_seen.swap(writes, Ordering::Relaxed) != writes {
            let window = self.inhibit_window_ns.load(Ordering::Relaxed);
            self.inhibit_until_ns
                .store(now.saturating_add(window), Ordering::Relaxed);
            return;
        }
        if now < self.inhibit_until_ns.load(Ordering::Relaxed) {
            return;
        }
        // Only a holder of the writer word changes `bias`: a writer that holds it without the
        // heavy barrier (because bias was off) must not have light readers appear meanwhile.
        let state = self.state.load(Ordering::Relaxed);
        if state & WRITER == 0
            && self
                .state
                .compare_exchange(
                    state,
                    state | thread_tag(),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            // A quiet write-heavy shard first goes back to fenced readers (the next quiet
            // window, to biased ones). The writer word goes with the same store.
            let mode = if state == COUNTED {
                FENCED
            } else if barrier::available() {
                BIASED
            } else {
                state
            };
            self.state.store(mode, Ordering::Release);
        }
    }

    /// Whether the run of writes in progress has lasted longer than a write-heavy run may.
    #[cfg(not(loom))]
    fn write_run_is_slow(&self) -> bool {
        barrier::now_ns().saturating_sub(self.run_start_ns.load(Ordering::Relaxed)) > WRITE_HEAVY_NS
    }

    /// Under loom (no clock) a run is always slow, so that a reader's look at a write-heavy
    /// shard turns counting off (`leave_counted`: the writer word taken for an instant while
    /// readers are inside) and the models explore it against writers.
    #[cfg(loom)]
    fn write_run_is_slow(&self) -> bool {
        true
    }

    /// Turns a write-heavy shard back to fenced readers, if the writer word is free: only its
    /// holder changes the mode, and the next writer, finding the shard fenced, walks.
    #[cold]
    fn leave_counted(&self) {
        if self
            .state
            .compare_exchange(
                COUNTED,
                COUNTED | thread_tag(),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.state.store(FENCED, Ordering::Release);
        }
    }

    /// Every `WRITE_RUN` writes: makes the shard write-heavy if the run was short, not if it
    /// was long. Called by `tag`, the holder of the writer word, before the record walk, with
    /// the shard in `mode` (fenced or counted); returns the mode it is in now.
    #[cold]
    #[inline(never)]
    fn end_write_run(&self, tag: usize, mode: usize) -> usize {
        #[cfg(not(loom))]
        let new = {
            let now = barrier::now_ns();
            let start = self.run_start_ns.load(Ordering::Relaxed);
            self.run_start_ns.store(now, Ordering::Relaxed);
            let heavy = now.saturating_sub(start) < WRITE_HEAVY_NS;
            if heavy { COUNTED } else { FENCED }
        };
        #[cfg(loom)]
        let new = {
            let _ = &self.run_start_ns;
            if mode == COUNTED { FENCED } else { COUNTED }
        };
        if new != mode {
            self.state.store(tag | new, Ordering::SeqCst);
        }
        new
    }

    /// Clears the reader bias, making every light reader visible, and keeps it off for a
    /// while proportional to what this cost, so that a shard written often stays fenced.
    #[cold]
    fn revoke_bias(&self, tag: usize) {
        let start = barrier::now_ns();
        self.state.store(tag | FENCED, Ordering::Relaxed);
        barrier::heavy();
        let end = barrier::now_ns();
        let window = (end - start)
            .saturating_mul(BIAS_INHIBIT_FACTOR)
            .max(MIN_INHIBIT_NS);
        self.inhibit_window_ns.store(window, Ordering::Relaxed);
        self.inhibit_until_ns
            .store(end.saturating_add(window), Ordering::Relaxed);
    }

    #[cold]
    #[track_caller]
    fn read_slow(&self, site: &'static Location<'static>) -> ReadHold {
        // Timed (and counted as contended) from the first pause: most calls here are
        // recursive reads or a thread's further guards, which never wait.
        let mut timer = None;
        let me = self.addr();
        let mut wait = self.wait_point(WaitMode::Read, site);
        loop {
            // A read of a lock this thread already reads never waits: a writer queued behind
            // the first read would wait for it, and it would wait for the writer.
            if let Ok(Some(hold)) = LOCAL.try_with(|local| local.recursive_read(me)) {
                return hold;
            }
            let writer = self.state.load(Ordering::Acquire) & WRITER;
            if writer != 0 && writer == thread_tag() {
                self.self_deadlock("read", site, "the write lock", self.write_site());
            }
            if writer == 0 {
                let attempt = LOCAL.try_with(|local| {
                    if !local.claim() {
                        // Thread-locals are being destroyed: no record to publish in.
                        return Err(());
                    }
                    if let Some(hold) = self.try_read_local(local, site) {
                        return Ok(Some(hold));
                    }
                    if local.used.get() != ALL_SLOTS {
                        return Ok(None); // A writer came in: wait for it.
                    }
                    // Every slot is taken: count on the lock, remember it in the overflow list.
                    if self.try_read_shared() {
                        local.push_overflow(me, site);
                        return Ok(Some(ReadHold::Overflow));
                    }
                    Ok(None)
                });
                match attempt.unwrap_or(Err(())) {
                    Ok(Some(hold)) => return hold,
                    Ok(None) => {}
                    // Thread-locals are being destroyed: count on the lock itself.
                    Err(()) => {
                        if self.try_read_shared() {
                            return ReadHold::Shared;
                        }
                    }
                }
            }
            // A read waiting takes nothing while it waits (each try above takes its slot back).
            if timer.is_none() {
                timer = self.stats.wait(self.index, WaitKind::Read);
            }
            if let Err(deadlock) = wait.pause(&|| self.writer_holder()) {
                deadlock.raise();
            }
        }
    }

    fn try_read_shared(&self) -> bool {
        self.shared_readers.fetch_add(1, Ordering::SeqCst);
        store_load_fence();
        if self.state.load(Ordering::SeqCst) & WRITER == 0 {
            return true;
        }
        self.shared_readers.fetch_sub(1, Ordering::Release);
        false
    }

    #[inline]
    fn read_unlock(&self, hold: ReadHold) {
        match hold {
            ReadHold::Slot(slot) => {
                // Masked: the compiler then knows the index is in bounds.
                let slot = usize::from(slot) & (SLOTS - 1);
                // The guard is `!Send`, so it is dropped on the thread whose record it used;
                // `LOCAL` has no destructor, and the record stays claimed while a slot is used.
                let local = local();
                let count = local.counts[slot].get() - 1;
                local.counts[slot].set(count);
                if count == 0 {
                    local.used.set(local.used.get() & !(1 << slot));
                    local.record().held[slot].store(0, Ordering::Release);
                    if slot != 0 {
                        local.settle_high();
                    }
                    // The span's last read: lockdep's registration goes (after the
                    // slot is free, so a subscriber that reads the map finds it free).
                    #[cfg(feature = "lockdep")]
                    let _ = COLD.try_with(|cold| drop(cold.tokens[slot].take()));
                }
            }
            ReadHold::Counted(slot) => self.read_unlock_counted(usize::from(slot) & (SLOTS - 1)),
            ReadHold::Overflow | ReadHold::Shared => self.read_unlock_shared(hold),
        }
    }

    /// Releases a read through a counted slot (see `ReadHold::Counted`).
    #[inline(never)]
    fn read_unlock_counted(&self, slot: usize) {
        let local = local();
        let count = local.counts[slot].get() - 1;
        local.counts[slot].set(count);
        if count == 0 {
            local.used.set(local.used.get() & !(1 << slot));
            local.counted.set(local.counted.get() & !(1 << slot));
            local.record().held[slot].store(0, Ordering::Release);
            if slot != 0 {
                local.settle_high();
            }
            self.shared_readers.fetch_sub(1, Ordering::Release);
            #[cfg(feature = "lockdep")]
            let _ = COLD.try_with(|cold| drop(cold.tokens[slot].take()));
        }
    }

    #[cold]
    fn read_unlock_shared(&self, hold: ReadHold) {
        if let ReadHold::Overflow = hold {
            let me = self.addr();
            // The finished entry is dropped (with its lockdep token) after the borrow ends.
            let _finished = COLD.try_with(|cold| {
                let mut overflow = cold.overflow.borrow_mut();
                let at = overflow.iter().position(|hold| hold.lock == me)?;
                overflow[at].count -= 1;
                if overflow[at].count != 0 {
                    return None;
                }
                let finished = overflow.swap_remove(at);
                let local = local();
                local.overflowed.set(!overflow.is_empty());
                // The mirror for deadlock detection follows the cold list.
                local.record().wait.remove_overflow(me);
                self.shared_readers.fetch_sub(1, Ordering::Release);
                Some(finished)
            });
        } else {
            self.shared_readers.fetch_sub(1, Ordering::Release);
        }
    }

    /// Locks for writing; waits while any other thread reads or writes.
    ///
    /// # Panics
    /// If this thread already holds this lock for reading or writing.
    #[inline]
    #[track_caller]
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        let site = Location::caller();
        #[cfg(feature = "lockdep")]
        {
            let token = self.check_write(site);
            let mut guard = self.write_at(site);
            token.acquired();
            guard.token = token;
            guard
        }
        #[cfg(not(feature = "lockdep"))]
        self.write_at(site)
    }

    /// Before a write may wait: this thread's own guards on the shard panic with the lock's
    /// message (naming the shard), then lockdep checks the order.
    #[cfg(feature = "lockdep")]
    #[track_caller]
    fn check_write(&self, site: &'static Location<'static>) -> Token {
        if self.state.load(Ordering::Relaxed) & WRITER == thread_tag() {
            self.self_deadlock("write", site, "the write lock", self.write_site());
        }
        if let Some(read_site) = LOCAL
            .try_with(|local| local.held_site(self.addr()))
            .ok()
            .flatten()
        {
            self.self_deadlock("write", site, "a read guard", Some(read_site));
        }
        self.class.acquire_at(self, Access::Write, site)
    }

    /// The write lock itself.
    #[inline(always)]
    #[track_caller]
    fn write_at(&self, site: &'static Location<'static>) -> WriteGuard<'_, T> {
        let tag = thread_tag();
        // One try, expecting the word free in the mode last seen: a held word (or a mode
        // changed meanwhile) fails it and the slow path waits.
        let low = self.state.load(Ordering::Relaxed) & LOW;
        let low = if self
            .state
            .compare_exchange(low, low | tag, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
        {
            low
        } else {
            self.acquire_writer_slow(tag, site) & LOW
        };
        // Under the writer word: a plain increment.
        let writes = self.writes.load(Ordering::Relaxed).wrapping_add(1);
        self.writes.store(writes, Ordering::Relaxed);
        self.write_site.store(
            site as *const Location<'static> as *mut _,
            Ordering::Relaxed,
        );
        // A fenced shard that no fenced reader got into since the last writer let go has no
        // uncounted reader that a walk could find: every reader there either set `SEEN`
        // (which the exact compare-and-swap above would have seen) or finds this writer's
        // tag when it re-checks. A write-heavy shard's readers all count themselves. So in
        // either mode a write that does not end a run neither changes the mode nor walks:
        // one branch; anything else (a bias to revoke, `SEEN`, the end of a run) is sorted
        // out of line.
        if !(low == FENCED || low == COUNTED) || writes.is_multiple_of(WRITE_RUN) {
            self.write_mode_slow(tag, low, writes, site);
        }
        // Then no reader is left: with the writer word set no new reader gets in (see the
        // module docs), and the readers that could not use a slot of their own record are on
        // the shared count. Both waits (for a record, for the count) run the same backoff and
        // deadlock detection: counted readers still publish their slots, so the wait-for
        // graph finds them whichever way the writer waits. A read this thread holds on this
        // lock would never be released while it waits: it is looked for where a reader is
        // found, before any wait (the walk finds its slot, or the shared count its count), so
        // that a write with no reader present does not look.
        store_load_fence();
        if self.shared_readers.load(Ordering::SeqCst) != 0 {
            self.wait_for_shared_readers(site);
        }
        let (data, access) = self.data.write_access();
        WriteGuard {
            lock: self,
            data,
            _access: access,
            #[cfg(feature = "lockdep")]
            token: Token::default(),
            _not_send: PhantomData,
        }
    }

    /// What a writer that took the word from the low bits `low` does before it waits for
    /// readers, when that is more than the plain case of `write_at` (`low` not plain
    /// `FENCED` or `COUNTED`, or this write, its `writes`-th, ends a run): a reader-biased
    /// shard loses its bias and is walked, a fenced shard with `SEEN` is walked, and at the
    /// end of a run the mode may switch (see `end_write_run`).
    #[cold]
    #[inline(never)]
    fn write_mode_slow(
        &self,
        tag: usize,
        low: usize,
        writes: u64,
        site: &'static Location<'static>,
    ) {
        let (mut mode, mut walk) = match low {
            BIASED => {
                // Under the writer word only this thread changes the mode.
                self.revoke_bias(tag);
                (FENCED, true)
            }
            FENCED => (FENCED, false),
            COUNTED => (COUNTED, false),
            _ => (FENCED, true),
        };
        // A writer that turns counting off walks for a fenced reader that read the mode
        // before an earlier switch to counted, published, and then re-checks the mode after
        // this one's switch back. (One that turns counting on from a fenced shard walks if
        // `SEEN` says so, as any writer of a fenced shard does.)
        if writes.is_multiple_of(WRITE_RUN) {
            let old = mode;
            mode = self.end_write_run(tag, mode);
            walk |= old == COUNTED && mode != COUNTED;
        }
        if walk {
            store_load_fence();
            self.wait_for_records(site);
        }
    }

    /// Panics (after letting the writer word go) if this thread reads the lock it now holds
    /// the writer word of. Called where the writer finds a reader, before it waits.
    #[cold]
    #[inline(never)]
    fn check_own_read(&self, site: &'static Location<'static>) {
        if !local().holds_reads() {
            return;
        }
        if let Some(read_site) = LOCAL.with(|local| local.held_site(self.addr())) {
            self.abandon_writer();
            self.self_deadlock("write", site, "a read guard", Some(read_site));
        }
    }

    /// Takes the writer word after a first try failed; returns the state it found (the mode
    /// it now holds the word in).
    #[cold]
    #[track_caller]
    fn acquire_writer_slow(&self, tag: usize, site: &'static Location<'static>) -> usize {
        // Another thread holds the writer word and may be waiting for a read this thread holds:
        // waiting for that writer would hang both threads, so report it before waiting.
        if let Some(read_site) = LOCAL
            .try_with(|local| local.held_site(self.addr()))
            .ok()
            .flatten()
        {
            self.self_deadlock("write", site, "a read guard", Some(read_site));
        }
        let _wait = self.stats.wait(self.index, WaitKind::Write);
        let mut wait = self.wait_point(WaitMode::Write, site);
        loop {
            let state = self.state.load(Ordering::Relaxed);
            let writer = state & WRITER;
            if writer == tag {
                self.self_deadlock("write", site, "the write lock", self.write_site());
            }
            if writer == 0
                && self
                    .state
                    .compare_exchange(state, state | tag, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            {
                return state;
            }
            // Nothing taken yet: a deadlock just ends the wait.
            if let Err(deadlock) = wait.pause(&|| self.writer_holder()) {
                deadlock.raise();
            }
        }
    }

    /// Waits until no thread's record names this lock.
    #[inline(always)]
    fn wait_for_records(&self, site: &'static Location<'static>) {
        let me = self.addr();
        // Two loads a record, free or not: slot 0, where a thread holding one read publishes
        // it, and the word saying whether any other slot may be in use (see
        // `ReaderRecord::may_name`); a record that may name the lock is looked at slot by
        // slot, and waited for, out of line.
        for record in records() {
            if record.may_name(me) {
                self.wait_for_record(record, site);
            }
        }
    }

    /// Waits until `record` stops naming this lock in any slot (the writer word is held).
    /// Called for a record that may name it: most such records read another lock.
    #[cold]
    #[inline(never)]
    fn wait_for_record(&self, record: &ReaderRecord, site: &'static Location<'static>) {
        let me = self.addr();
        if !record
            .held
            .iter()
            .any(|slot| slot.load(Ordering::SeqCst) == me)
        {
            return;
        }
        self.check_own_read(site);
        for slot in &record.held {
            if slot.load(Ordering::SeqCst) == me {
                self.wait_while_held(slot, site);
            }
        }
    }

    /// Waits until a reader's slot stops naming this lock (the writer word is held).
    #[cold]
    fn wait_while_held(&self, slot: &AtomicUsize, site: &'static Location<'static>) {
        let _wait = self.stats.wait(self.index, WaitKind::Write);
        let me = self.addr();
        let mut wait = self.wait_point(WaitMode::Readers, site);
        while slot.load(Ordering::SeqCst) == me {
            if let Err(deadlock) = wait.pause(&|| (0, None)) {
                self.withdraw_writer(deadlock);
            }
        }
    }

    /// Waits until no reader counts on the shared count (the writer word is held).
    #[cold]
    fn wait_for_shared_readers(&self, site: &'static Location<'static>) {
        self.check_own_read(site);
        let _wait = self.stats.wait(self.index, WaitKind::Write);
        let mut wait = self.wait_point(WaitMode::Readers, site);
        while self.shared_readers.load(Ordering::SeqCst) != 0 {
            if let Err(deadlock) = wait.pause(&|| (0, None)) {
                self.withdraw_writer(deadlock);
            }
        }
    }

    /// A writer waiting for readers is part of a deadlock: it gives the writer word back (so
    /// that the readers it waited for, and new readers, can go on) and panics.
    #[cold]
    fn withdraw_writer(&self, deadlock: waitfor::Deadlock) -> ! {
        self.abandon_writer();
        deadlock.raise()
    }

    /// Gives the writer word back *without having waited for the readers* (a writer that
    /// found its own thread's read, or that gives up its wait to end a deadlock), leaving the
    /// shard fenced with `SEEN`, whatever mode it was in: the readers it did not wait for are
    /// still inside, and the next writer must find them.
    ///
    /// [`release_writer`](Self::release_writer) would keep the mode and clear `SEEN`, which
    /// says that no fenced reader got in since the last writer let go: the next writer of a
    /// fenced shard would then skip the walk over the records and take the shard while those
    /// readers still read it. With `SEEN` set it walks; a write-heavy shard's counted readers
    /// are on the shared count, which every writer checks in every mode, and the readers that
    /// a writer turning counting on did not wait for yet are in the records, which the walk
    /// covers. A reader that publishes meanwhile finds `FENCED | SEEN` and keeps its read, or
    /// finds the next writer's tag and backs off, as after any release.
    #[cold]
    fn abandon_writer(&self) {
        #[cfg(not(mapguard_broken_abandon))]
        self.state.store(FENCED | SEEN, Ordering::Release);
        // A deliberately broken variant for the loom models `writer_that_*` (the release of
        // a writer that waited): the next writer of a fenced shard skips the readers.
        #[cfg(mapguard_broken_abandon)]
        self.release_writer();
    }

    /// Gives the writer word back, keeping the mode (called by its holder, the only thread
    /// that changes the state meanwhile, once no reader is left: see
    /// [`abandon_writer`](Self::abandon_writer) for a holder that gives up before that).
    #[inline]
    fn release_writer(&self) {
        let mode = self.state.load(Ordering::Relaxed) & MODE;
        self.state.store(mode, Ordering::Release);
    }

    /// Panics ("deadlock avoided") if this thread holds a guard on this lock: for an operation
    /// at `site` (`what`, such as "par_retain") that hands the shard to other threads and
    /// waits for them. They would wait for this thread's guard (a write guard, or a read
    /// guard once a writer queues on the shard) while it waits for them, and no lock-level
    /// detection sees a wait for another thread's work.
    #[cfg(feature = "rayon")]
    #[cold]
    pub(crate) fn assert_not_held_for(&self, what: &str, site: &'static Location<'static>) {
        let held = if self.state.load(Ordering::Relaxed) & WRITER == thread_tag() {
            Some(("the write lock", self.write_site()))
        } else {
            LOCAL
                .try_with(|local| local.held_site(self.addr()))
                .ok()
                .flatten()
                .map(|read_site| ("a read guard", Some(read_site)))
        };
        if let Some((held, held_site)) = held {
            let held_at = match held_site {
                Some(at) => format!("taken at {at}"),
                None => "taken at an unknown site".to_owned(),
            };
            panic!(
                "mapguard: deadlock avoided: {what} at {site} hands shard {} of this map to \
                 other threads and waits for them, but this thread holds {held} on that shard, \
                 {held_at}; they could wait for it forever. Drop the guard before calling \
                 {what}.",
                self.index,
            );
        }
    }

    fn write_site(&self) -> Option<&'static Location<'static>> {
        // SAFETY: `write_site` only ever holds null or a pointer made from a
        // `&'static Location<'static>` (in `write`).
        unsafe { self.write_site.load(Ordering::Relaxed).as_ref() }
    }

    #[cold]
    #[track_caller]
    fn self_deadlock(
        &self,
        wanted: &str,
        site: &'static Location<'static>,
        held: &str,
        held_site: Option<&'static Location<'static>>,
    ) -> ! {
        let held_at = match held_site {
            Some(at) => format!("taken at {at}"),
            None => "taken at an unknown site".to_owned(),
        };
        panic!(
            "mapguard: deadlock avoided: {site} needs shard {} of this map for {}, but this \
             thread already holds {held} on that shard, {held_at}; waiting would hang forever. \
             Drop the guard (or copy the value out) before calling the map again.",
            self.index,
            if wanted == "read" {
                "reading"
            } else {
                "writing"
            },
        );
    }
}

impl<T> Drop for ShardLock<T> {
    /// A lock that goes away can have no guard left (they borrow it), but guards leaked with
    /// `mem::forget` leave its address published in their threads' records. Those of threads
    /// that have exited are cleared, so that a new lock at the same address does not inherit
    /// them (its writers would wait for, or report, a leak that is not theirs). Those of live
    /// threads stay: such a thread's own bookkeeping still counts the read, and would take a
    /// read of a new lock at this address for a re-read of this one, publishing nothing; the
    /// stale slot keeps that new lock's writers out instead, as a leaked guard may.
    fn drop(&mut self) {
        super::readers::forget_exited_reads(self.addr());
    }
}

/// The release of a read published in slot 0 by [`ShardLock::read_with`] (a plain,
/// uncounted slot: its release needs no look at the hold kind or the slot).
#[cfg(not(feature = "lockdep"))]
struct FirstRead<'a, T> {
    lock: &'a ShardLock<T>,
    access: ReadAccess<T>,
}

#[cfg(not(feature = "lockdep"))]
impl<T> Drop for FirstRead<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // The tracked access ends before the release lets a writer in.
        self.access.end();
        self.lock.read_unlock(ReadHold::Slot(0));
    }
}

/// A read lock on a [`ShardLock`], mapped to some part `U` of the data.
///
/// `!Send`: it must be dropped on the thread that took it, whose record it was published in.
pub(crate) struct ReadGuard<'a, T, U: ?Sized = T> {
    lock: &'a ShardLock<T>,
    hold: ReadHold,
    data: NonNull<U>,
    access: ReadAccess<T>,
    _not_send: PhantomData<(*const (), &'a U)>,
}

// SAFETY: a shared reference to a read guard gives out only `&U` (through `Deref`) and the
// shard's index; a recursive read through it (`reread`) is an ordinary read of the calling
// thread, published in that thread's own record. The guard stays `!Send`: its release must run
// on the thread whose record holds the read. So sharing it is sound when `U` (and the data it
// points into) may be shared.
unsafe impl<T: Sync, U: ?Sized + Sync> Sync for ReadGuard<'_, T, U> {}

impl<'a, T> ReadGuard<'a, T> {
    fn new(lock: &'a ShardLock<T>, hold: ReadHold) -> Self {
        let (data, access) = lock.data.read_access();
        Self {
            lock,
            hold,
            // SAFETY: a cell's data pointer is never null.
            data: unsafe { NonNull::new_unchecked(data) },
            access,
            _not_send: PhantomData,
        }
    }
}

impl<'a, T, U: ?Sized> ReadGuard<'a, T, U> {
    /// Narrows the guard to a part of the data.
    pub(crate) fn map<W: ?Sized>(this: Self, f: impl FnOnce(&U) -> &W) -> ReadGuard<'a, T, W> {
        // SAFETY: the read lock is held (it moves into the new guard), so no writer can change
        // the data while the returned reference, or the new guard, lives.
        let data = NonNull::from(f(unsafe { this.data.as_ref() }));
        let (lock, hold, access) = Self::into_parts_mapped(this);
        ReadGuard {
            lock,
            hold,
            data,
            access,
            _not_send: PhantomData,
        }
    }

    /// Narrows the guard to a part of the data, or gives it back if `f` finds none.
    pub(crate) fn try_map<W: ?Sized>(
        this: Self,
        f: impl FnOnce(&U) -> Option<&W>,
    ) -> Result<ReadGuard<'a, T, W>, Self> {
        // SAFETY: as in `map`.
        match f(unsafe { this.data.as_ref() }) {
            Some(part) => {
                let data = NonNull::from(part);
                let (lock, hold, access) = Self::into_parts_mapped(this);
                Ok(ReadGuard {
                    lock,
                    hold,
                    data,
                    access,
                    _not_send: PhantomData,
                })
            }
            None => Err(this),
        }
    }

    /// Moves the parts out of a guard without running its `Drop` (which would unlock).
    fn into_parts_mapped(this: Self) -> (&'a ShardLock<T>, ReadHold, ReadAccess<T>) {
        let this = std::mem::ManuallyDrop::new(this);
        // SAFETY: `this` is never used or dropped again, so `access` is moved out exactly once.
        let access = unsafe { std::ptr::read(&this.access) };
        (this.lock, this.hold, access)
    }

    /// Another read guard on the same lock, for the whole data (a recursive read, which never
    /// waits).
    #[track_caller]
    pub(crate) fn reread(this: &Self) -> ReadGuard<'a, T> {
        this.lock.read()
    }

    /// The shard's index in its map.
    pub(crate) fn shard_index(this: &Self) -> usize {
        this.lock.index
    }
}

impl<T, U: ?Sized> Deref for ReadGuard<'_, T, U> {
    type Target = U;

    fn deref(&self) -> &U {
        // SAFETY: the read lock is held for the guard's lifetime (see `map`).
        unsafe { self.data.as_ref() }
    }
}

impl<T, U: ?Sized> Drop for ReadGuard<'_, T, U> {
    #[inline]
    fn drop(&mut self) {
        // The tracked access ends before the release lets a writer in.
        self.access.end();
        self.lock.read_unlock(self.hold);
    }
}

/// A write lock on a [`ShardLock`]. `!Send`, like the read guard.
pub(crate) struct WriteGuard<'a, T> {
    lock: &'a ShardLock<T>,
    data: *mut T,
    /// Tracks the exclusive access under loom; nothing otherwise.
    _access: WriteAccess<T>,
    /// The write's lockdep registration.
    #[cfg(feature = "lockdep")]
    token: Token,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared reference to a write guard gives out only `&T` (`DerefMut` needs
// `&mut`), while the writer word keeps every other access out, as `std::sync::MutexGuard` is
// `Sync` when `T` is. The guard stays `!Send`: it must be released by its own thread.
unsafe impl<T: Sync> Sync for WriteGuard<'_, T> {}

impl<'a, T> WriteGuard<'a, T> {
    /// Turns the write lock into a read lock without letting another writer in between.
    #[track_caller]
    pub(crate) fn downgrade(
        #[cfg_attr(not(feature = "lockdep"), allow(unused_mut))] mut this: Self,
    ) -> ReadGuard<'a, T> {
        let lock = this.lock;
        // The registration stays in place as a read (a downgrade never waits).
        #[cfg(feature = "lockdep")]
        let mut token = std::mem::take(&mut this.token);
        let site = Location::caller();
        // Publish the read while still holding the writer word: no writer can be waiting for
        // readers of this lock (we are the writer), so publishing cannot race.
        let hold = LOCAL
            .try_with(|local| {
                if !local.claim() {
                    return None;
                }
                let me = lock.addr();
                let slot = (!local.used.get()).trailing_zeros() as usize;
                if slot < SLOTS {
                    if slot != 0 {
                        local.announce_high(slot);
                    }
                    // Counted, as a read of a write-heavy shard is: the shard may be one, and
                    // its next writer would then not walk the records. Every writer checks
                    // the count, whatever the mode. The slot and its site are still published,
                    // for deadlock detection.
                    lock.shared_readers.fetch_add(1, Ordering::SeqCst);
                    let record = local.record();
                    record.sites[slot].set(site);
                    record.held[slot].store(me, Ordering::Relaxed);
                    local.note_read(slot, me);
                    local.counted.set(local.counted.get() | (1 << slot));
                    Some(ReadHold::Counted(slot as u8))
                } else {
                    lock.shared_readers.fetch_add(1, Ordering::SeqCst);
                    local.push_overflow(me, site);
                    Some(ReadHold::Overflow)
                }
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                lock.shared_readers.fetch_add(1, Ordering::SeqCst);
                ReadHold::Shared
            });
        drop(this);
        #[cfg(feature = "lockdep")]
        {
            token.downgrade(Access::Read);
            lock.keep_read_token(hold, token);
        }
        ReadGuard::new(lock, hold)
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the write lock is held: no other guard exists.
        unsafe { &*self.data }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held and `&mut self` makes this the only access.
        unsafe { &mut *self.data }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // Unregistered before the unlock, as lockdep's own locks do.
        #[cfg(feature = "lockdep")]
        drop(std::mem::take(&mut self.token));
        self.lock.release_writer();
    }
}

impl LocalReader {
    /// Records in the thread's own bookkeeping a read of `lock` published in `slot` (its site
    /// was published with the slot, in the record).
    #[inline]
    fn note_read(&self, slot: usize, lock: usize) -> ReadHold {
        self.locks[slot].set(lock);
        self.counts[slot].set(1);
        self.used.set(self.used.get() | (1 << slot));
        ReadHold::Slot(slot as u8)
    }

    fn overflow_holds(&self, lock: usize) -> bool {
        self.overflowed.get()
            && COLD
                .try_with(|cold| cold.overflow.borrow().iter().any(|hold| hold.lock == lock))
                .unwrap_or(false)
    }

    /// Counts one more read of `lock` if this thread already reads it.
    fn recursive_read(&self, lock: usize) -> Option<ReadHold> {
        if self.exited.get() {
            // The reads still published are leaked ones, which may name a lock that has gone
            // away since (and a new one at its address): no read counts as a re-read of them.
            return None;
        }
        let mut used = self.used.get() & ALL_SLOTS;
        while used != 0 {
            let slot = used.trailing_zeros() as usize;
            used &= used - 1;
            if self.locks[slot].get() == lock {
                self.counts[slot].set(self.counts[slot].get() + 1);
                return Some(if self.counted.get() & (1 << slot) != 0 {
                    ReadHold::Counted(slot as u8)
                } else {
                    ReadHold::Slot(slot as u8)
                });
            }
        }
        if !self.overflowed.get() {
            return None;
        }
        COLD.try_with(|cold| {
            let mut overflow = cold.overflow.borrow_mut();
            let hold = overflow.iter_mut().find(|hold| hold.lock == lock)?;
            hold.count += 1;
            Some(ReadHold::Overflow)
        })
        .ok()
        .flatten()
    }
}
