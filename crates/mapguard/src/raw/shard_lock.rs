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
    AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, DataCell, ReadAccess, SKIP_FREE_RECORDS,
    WriteAccess, pause, store_load_fence,
};

use super::readers::{ALL_SLOTS, LOCAL, LocalReader, SLOTS, records, thread_tag};

#[cfg(feature = "lockdep")]
use lockdep::foreign::{Access, LockClass, Token};

/// A reader-writer lock for one shard. See the module docs.
pub(crate) struct ShardLock<T> {
    /// 0 when no writer holds the lock, else the holder's [`thread_tag`].
    writer: AtomicUsize,
    /// While set, readers publish with a plain store and a compiler barrier; a writer that
    /// finds it set clears it and pays a heavy barrier (see [`barrier`]). Only changed by a
    /// thread that holds the writer word.
    bias: AtomicBool,
    /// A reader may set `bias` again once the clock passes this (see `revoke_bias`)...
    inhibit_until_ns: AtomicU64,
    /// ...which moves this far ahead whenever a reader sees that the shard was written.
    inhibit_window_ns: AtomicU64,
    /// Writes so far (changed only under the writer word), and the count a reader saw when
    /// it last considered restoring the bias.
    writes: AtomicU64,
    writes_seen: AtomicU64,
    /// Readers that could not use a slot of their own record.
    shared_readers: AtomicUsize,
    /// Where the current writer took the lock (meaningful only while `writer != 0`).
    write_site: AtomicPtr<Location<'static>>,
    /// The shard's index in its map, for reports.
    index: usize,
    /// This shard's lockdep class (see `lock_class`).
    #[cfg(feature = "lockdep")]
    class: LockClass,
    /// Contention figures, touched only on the slow paths.
    stats: LockStats,
    data: DataCell<T>,
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

/// How a read guard is registered, so that dropping it undoes exactly that.
#[derive(Clone, Copy)]
enum ReadHold {
    /// Through slot `n` of the thread's record.
    Slot(u8),
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
            writer: AtomicUsize::new(0),
            bias: AtomicBool::new(barrier::available()),
            inhibit_until_ns: AtomicU64::new(0),
            inhibit_window_ns: AtomicU64::new(MIN_INHIBIT_NS),
            writes: AtomicU64::new(0),
            writes_seen: AtomicU64::new(0),
            shared_readers: AtomicUsize::new(0),
            write_site: AtomicPtr::new(std::ptr::null_mut()),
            index,
            #[cfg(feature = "lockdep")]
            class: map.shard_class(index),
            stats: LockStats::default(),
            data: DataCell::new(data),
        }
    }

    fn addr(&self) -> usize {
        self as *const Self as usize
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

    /// Consumes the lock, returning its data.
    pub(crate) fn into_inner(self) -> T {
        self.data.into_inner()
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
        if self.writer.load(Ordering::Relaxed) == thread_tag() {
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
            ReadHold::Slot(slot) => {
                let _ = LOCAL.try_with(|local| local.tokens[usize::from(slot)].set(token));
            }
            ReadHold::Overflow => {
                let me = self.addr();
                let _ = LOCAL.try_with(|local| {
                    let mut overflow = local.overflow.borrow_mut();
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
    #[inline]
    fn read_hold(&self, site: &'static Location<'static>) -> ReadHold {
        let fast = LOCAL.try_with(|local| self.try_read_local(local, site));
        match fast {
            Ok(Some(hold)) => hold,
            _ => self.read_slow(site),
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
        self.publish(local, slot, site)
    }

    /// Publishes a read of this lock in the free `slot`, unless a writer is present.
    #[inline]
    fn publish(
        &self,
        local: &LocalReader,
        slot: usize,
        site: &'static Location<'static>,
    ) -> Option<ReadHold> {
        let me = self.addr();
        let held = &local.record.held[slot];
        if self.bias.load(Ordering::Relaxed) {
            // Reader-biased: no fence. A writer clears `bias` and runs a heavy barrier before
            // it looks at the slots, so either it sees this store or the loads below see its
            // writer word or the cleared bias (module docs of `barrier`).
            held.store(me, Ordering::Relaxed);
            barrier::light();
            if self.writer.load(Ordering::Acquire) == 0 && self.bias.load(Ordering::Relaxed) {
                return Some(local.note_read(slot, me, site));
            }
        } else {
            // Publish first, then look for a writer (see the module docs for why SeqCst).
            held.store(me, Ordering::SeqCst);
            store_load_fence();
            if self.writer.load(Ordering::SeqCst) == 0 {
                if local.tick() {
                    self.restore_bias();
                }
                return Some(local.note_read(slot, me, site));
            }
        }
        held.store(0, Ordering::Release);
        None
    }

    /// Turns the reader bias back on once its inhibition window has passed. Called now and
    /// then by readers that had to fence.
    #[cold]
    fn restore_bias(&self) {
        if !barrier::available() {
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
        let tag = thread_tag();
        if self
            .writer
            .compare_exchange(0, tag, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
        {
            self.bias.store(true, Ordering::Relaxed);
            self.writer.store(0, Ordering::Release);
        }
    }

    /// Clears the reader bias, making every light reader visible, and keeps it off for a
    /// while proportional to what this cost, so that a shard written often stays fenced.
    #[cold]
    fn revoke_bias(&self) {
        let start = barrier::now_ns();
        self.bias.store(false, Ordering::Relaxed);
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
        let _wait = self.stats.wait(self.index, WaitKind::Read);
        let me = self.addr();
        let mut backoff = Waiter::new();
        loop {
            // A read of a lock this thread already reads never waits: a writer queued behind
            // the first read would wait for it, and it would wait for the writer.
            if let Ok(Some(hold)) = LOCAL.try_with(|local| local.recursive_read(me)) {
                return hold;
            }
            let writer = self.writer.load(Ordering::Acquire);
            if writer != 0 && writer == thread_tag() {
                self.self_deadlock("read", site, "the write lock", self.write_site());
            }
            if writer == 0 {
                let attempt = LOCAL.try_with(|local| {
                    if let Some(hold) = self.try_read_local(local, site) {
                        return Some(hold);
                    }
                    if local.used.get() != ALL_SLOTS {
                        return None; // A writer came in: wait for it.
                    }
                    // Every slot is taken: count on the lock, remember it in the overflow list.
                    if self.try_read_shared() {
                        local.push_overflow(me, site);
                        return Some(ReadHold::Overflow);
                    }
                    None
                });
                match attempt {
                    Ok(Some(hold)) => return hold,
                    Ok(None) => {}
                    // Thread-locals are being destroyed: count on the lock itself.
                    Err(_) => {
                        if self.try_read_shared() {
                            return ReadHold::Shared;
                        }
                    }
                }
            }
            backoff.wait();
        }
    }

    fn try_read_shared(&self) -> bool {
        self.shared_readers.fetch_add(1, Ordering::SeqCst);
        store_load_fence();
        if self.writer.load(Ordering::SeqCst) == 0 {
            return true;
        }
        self.shared_readers.fetch_sub(1, Ordering::Release);
        false
    }

    #[inline]
    fn read_unlock(&self, hold: ReadHold) {
        match hold {
            ReadHold::Slot(slot) => {
                let slot = usize::from(slot);
                // The guard is `!Send`, so it is dropped on the thread whose record it used,
                // and that thread's `LOCAL` outlives every guard it handed out (a guard
                // created during its destruction uses `ReadHold::Shared`).
                let _ = LOCAL.try_with(|local| {
                    let count = local.counts[slot].get() - 1;
                    local.counts[slot].set(count);
                    if count == 0 {
                        local.locks[slot].set(0);
                        local.used.set(local.used.get() & !(1 << slot));
                        local.record.held[slot].store(0, Ordering::Release);
                        // The span's last read: lockdep's registration goes (after the
                        // slot is free, so a subscriber that reads the map finds it free).
                        #[cfg(feature = "lockdep")]
                        drop(local.tokens[slot].take());
                    }
                });
            }
            ReadHold::Overflow | ReadHold::Shared => self.read_unlock_shared(hold),
        }
    }

    #[cold]
    fn read_unlock_shared(&self, hold: ReadHold) {
        if let ReadHold::Overflow = hold {
            let me = self.addr();
            // The finished entry is dropped (with its lockdep token) after the borrow ends.
            let _finished = LOCAL.try_with(|local| {
                let mut overflow = local.overflow.borrow_mut();
                let at = overflow.iter().position(|hold| hold.lock == me)?;
                overflow[at].count -= 1;
                if overflow[at].count != 0 {
                    return None;
                }
                let finished = overflow.swap_remove(at);
                local.overflowed.set(!overflow.is_empty());
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
        if self.writer.load(Ordering::Relaxed) == thread_tag() {
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
    #[inline]
    #[track_caller]
    fn write_at(&self, site: &'static Location<'static>) -> WriteGuard<'_, T> {
        let tag = thread_tag();
        if self
            .writer
            .compare_exchange(0, tag, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            self.acquire_writer_slow(tag, site);
        }
        if self.bias.load(Ordering::Relaxed) {
            self.revoke_bias();
        }
        // Under the writer word: a plain increment, on a line this writer already owns.
        self.writes.store(
            self.writes.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        self.write_site.store(
            site as *const Location<'static> as *mut _,
            Ordering::Relaxed,
        );
        // A read this thread holds would never be released while we wait for readers.
        let own_read = LOCAL
            .try_with(|local| local.held_site(self.addr()))
            .ok()
            .flatten();
        if let Some(read_site) = own_read {
            self.writer.store(0, Ordering::Release);
            self.self_deadlock("write", site, "a read guard", Some(read_site));
        }
        self.wait_for_readers();
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

    #[cold]
    #[track_caller]
    fn acquire_writer_slow(&self, tag: usize, site: &'static Location<'static>) {
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
        let mut backoff = Waiter::new();
        loop {
            let writer = self.writer.load(Ordering::Relaxed);
            if writer == tag {
                self.self_deadlock("write", site, "the write lock", self.write_site());
            }
            if writer == 0
                && self
                    .writer
                    .compare_exchange(0, tag, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            backoff.wait();
        }
    }

    /// Waits until no thread reads this lock. Called with the writer word set, so no new
    /// reader can get in (see the module docs).
    fn wait_for_readers(&self) {
        store_load_fence();
        let me = self.addr();
        // Most records of a process whose threads come and go are free: one load each.
        for record in records().filter(|record| !SKIP_FREE_RECORDS || record.in_use()) {
            for slot in &record.held {
                if slot.load(Ordering::SeqCst) == me {
                    wait_while_held(slot, me, &self.stats, self.index);
                }
            }
        }
        if self.shared_readers.load(Ordering::SeqCst) != 0 {
            self.wait_for_shared_readers();
        }
    }

    /// Waits until no reader counts on the lock's shared count.
    #[cold]
    fn wait_for_shared_readers(&self) {
        let _wait = self.stats.wait(self.index, WaitKind::Write);
        let mut backoff = Waiter::new();
        while self.shared_readers.load(Ordering::SeqCst) != 0 {
            backoff.wait();
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

/// Waits until a reader's slot stops naming the lock at `me`.
#[cold]
fn wait_while_held(slot: &AtomicUsize, me: usize, stats: &LockStats, shard: usize) {
    let _wait = stats.wait(shard, WaitKind::Write);
    let mut backoff = Waiter::new();
    while slot.load(Ordering::SeqCst) == me {
        backoff.wait();
    }
}

/// Backoff for waits: spin briefly, then yield, then sleep in short steps so that a thread
/// waiting on a guard held for long does not burn a core.
struct Waiter {
    rounds: u32,
}

impl Waiter {
    fn new() -> Self {
        Self { rounds: 0 }
    }

    #[cold]
    fn wait(&mut self) {
        self.rounds = self.rounds.saturating_add(1);
        pause(self.rounds);
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
                let me = lock.addr();
                let slot = (!local.used.get()).trailing_zeros() as usize;
                if slot < SLOTS {
                    local.record.held[slot].store(me, Ordering::SeqCst);
                    local.note_read(slot, me, site)
                } else {
                    lock.shared_readers.fetch_add(1, Ordering::SeqCst);
                    local.push_overflow(me, site);
                    ReadHold::Overflow
                }
            })
            .unwrap_or_else(|_| {
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
        self.lock.writer.store(0, Ordering::Release);
    }
}

impl LocalReader {
    /// Records in the thread's own bookkeeping a read of `lock` published in `slot`.
    #[inline]
    fn note_read(&self, slot: usize, lock: usize, site: &'static Location<'static>) -> ReadHold {
        self.locks[slot].set(lock);
        self.counts[slot].set(1);
        self.sites[slot].set(Some(site));
        self.used.set(self.used.get() | (1 << slot));
        ReadHold::Slot(slot as u8)
    }

    fn overflow_holds(&self, lock: usize) -> bool {
        self.overflowed.get() && self.overflow.borrow().iter().any(|hold| hold.lock == lock)
    }

    /// Counts one more read of `lock` if this thread already reads it.
    fn recursive_read(&self, lock: usize) -> Option<ReadHold> {
        let mut used = self.used.get();
        while used != 0 {
            let slot = used.trailing_zeros() as usize;
            used &= used - 1;
            if self.locks[slot].get() == lock {
                self.counts[slot].set(self.counts[slot].get() + 1);
                return Some(ReadHold::Slot(slot as u8));
            }
        }
        if !self.overflowed.get() {
            return None;
        }
        let mut overflow = self.overflow.borrow_mut();
        let hold = overflow.iter_mut().find(|hold| hold.lock == lock)?;
        hold.count += 1;
        Some(ReadHold::Overflow)
    }
}
