//! The checked locks: parking_lot locks plus the bookkeeping that feeds the detectors.
//!
//! This module owns the order of operations around an acquisition: check and register
//! *before* blocking (so a report comes before a hang), try the lock, fall back to the
//! contended path (statistics, events, real-deadlock detection), and on release pop the
//! registration before the lock is actually unlocked. A long timed try takes the same path
//! with a deadline, and withdraws the registration if it gives up.

mod condvar;
mod mutex;
mod rwlock;

use std::num::NonZeroU64;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use condvar::Condvar;
pub use mutex::{Mutex, MutexGuard};
pub use rwlock::{
    GenericRwLock, GenericRwLockReadGuard, GenericRwLockWriteGuard, RecursiveRwLock,
    RecursiveRwLockReadGuard, RecursiveRwLockWriteGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

use crate::MAX_SUBCLASSES;
use crate::class::{ClassCell, ClassKey, Node};
use crate::config::{DEFAULT_DEADLOCK_TIMEOUT, ENABLED, FLAGS, HOLD_TIMES, SETTINGS, SUBSCRIBER};
use crate::event::{Event, EventKind, emit};
use crate::raw::SiteSlot;
use crate::thread::{self, LockId, Mode};

/// Makes a guard `!Send` whatever parking_lot's `send_guard` feature says: held-lock
/// tracking is per thread. (`std::sync::MutexGuard` is `!Send` and `Sync`.)
type NotSend = std::marker::PhantomData<std::sync::MutexGuard<'static, ()>>;

/// What a checked lock carries besides the parking_lot lock.
pub(crate) struct LockMeta {
    class: ClassCell,
    instance: InstanceCell,
    /// The last acquisition site: who holds the lock, as seen by a contended waiter.
    holder: SiteSlot,
}

impl LockMeta {
    #[track_caller]
    pub(crate) const fn new(name: Option<&'static str>, kind: &'static str) -> Self {
        let created = Location::caller();
        let key = match name {
            Some(name) => ClassKey::Name(name),
            None => ClassKey::Site(created),
        };
        Self {
            class: ClassCell::new(key, kind, created),
            instance: InstanceCell::new(),
            holder: SiteSlot::new(),
        }
    }

    /// The graph node of this lock for `subclass`.
    #[inline]
    fn node(&self, subclass: u32) -> Node {
        self.class.node(subclass)
    }

    /// A blocking acquisition: check, register, lock (via `try_now`, else the contended
    /// path with `wait_for` / `wait`). Returns the inner guard and whether it is tracked.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn acquire<G>(
        &self,
        mode: Mode,
        subclass: u32,
        site: &'static Location<'static>,
        try_now: impl FnOnce() -> Option<G>,
        wait_for: impl FnMut(Duration) -> Option<G>,
        wait: impl FnOnce() -> G,
    ) -> (G, bool) {
        // The switched-off path stays inline: one relaxed load more than a plain lock.
        let flags = FLAGS.load(Ordering::Relaxed);
        if flags & ENABLED == 0 {
            return (wait(), false);
        }
        match self.acquire_checked(mode, subclass, site, flags, None, try_now, wait_for, wait) {
            Some(acquired) => acquired,
            None => unreachable!("lockdep: an acquisition without a deadline gave up"),
        }
    }

    /// A timed try (`try_lock_for` and the like) that may wait up to `timeout`. A long one
    /// (see [`is_long_wait`]) is checked and registered like [`acquire`](Self::acquire) and
    /// withdrawn if it gives up; a short one cannot hang and is a
    /// [`try_acquire`](Self::try_acquire) of `wait_for(timeout)`.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn try_acquire_for<G>(
        &self,
        mode: Mode,
        subclass: u32,
        site: &'static Location<'static>,
        timeout: Duration,
        try_now: impl FnOnce() -> Option<G>,
        mut wait_for: impl FnMut(Duration) -> Option<G>,
        wait: impl FnOnce() -> G,
    ) -> Option<(G, bool)> {
        let flags = FLAGS.load(Ordering::Relaxed);
        if flags & ENABLED == 0 || !is_long_wait(timeout) {
            return self.try_acquire(mode, subclass, site, || wait_for(timeout));
        }
        // No deadline when `timeout` reaches past what `Instant` can hold: that waits
        // forever, as parking_lot's own timed try does then.
        let deadline = Instant::now().checked_add(timeout);
        self.acquire_checked(
            mode, subclass, site, flags, deadline, try_now, wait_for, wait,
        )
    }

    /// Check, register, lock; `None` (and nothing registered) if `deadline` passed first.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn acquire_checked<G>(
        &self,
        mode: Mode,
        subclass: u32,
        site: &'static Location<'static>,
        flags: u8,
        deadline: Option<Instant>,
        try_now: impl FnOnce() -> Option<G>,
        wait_for: impl FnMut(Duration) -> Option<G>,
        wait: impl FnOnce() -> G,
    ) -> Option<(G, bool)> {
        let lock = self.instance.get();
        let node = self.node(subclass);
        let tracked = thread::enter(lock, node, mode, site);
        let guard = match try_now() {
            Some(guard) => guard,
            None => self.contended(lock, node, mode, site, tracked, deadline, wait_for, wait)?,
        };
        self.holder.set(site);
        if flags & (SUBSCRIBER | HOLD_TIMES) != 0 {
            after_acquire(lock, node, mode, site, tracked);
        }
        Some((guard, tracked))
    }

    /// A non-blocking acquisition: nothing to check, since it cannot wait.
    #[inline]
    pub(crate) fn try_acquire<G>(
        &self,
        mode: Mode,
        subclass: u32,
        site: &'static Location<'static>,
        try_now: impl FnOnce() -> Option<G>,
    ) -> Option<(G, bool)> {
        let flags = FLAGS.load(Ordering::Relaxed);
        let guard = try_now()?;
        if flags & ENABLED == 0 {
            return Some((guard, false));
        }
        let lock = self.instance.get();
        let node = self.node(subclass);
        let tracked = thread::enter_acquired(lock, node, mode, site);
        self.holder.set(site);
        if flags & (SUBSCRIBER | HOLD_TIMES) != 0 {
            after_acquire(lock, node, mode, site, tracked);
        }
        Some((guard, tracked))
    }

    /// Waits for the lock, until `deadline` if there is one: `None` then, with the
    /// registration made by `enter` withdrawn.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn contended<G>(
        &self,
        lock: LockId,
        node: Node,
        mode: Mode,
        site: &'static Location<'static>,
        tracked: bool,
        deadline: Option<Instant>,
        mut wait_for: impl FnMut(Duration) -> Option<G>,
        wait: impl FnOnce() -> G,
    ) -> Option<G> {
        let start = Instant::now();
        let holder = self.holder.get();
        if FLAGS.load(Ordering::Relaxed) & SUBSCRIBER != 0 {
            emit_event(EventKind::Contended, node, mode, site);
        }
        // If a report panics while we wait, or the deadline passes, the registration made
        // by `enter` must go.
        let undo = UndoEnter {
            lock,
            armed: tracked,
        };
        let left = |deadline: Instant| deadline.saturating_duration_since(Instant::now());
        let timeout = SETTINGS.read().deadlock_timeout;
        let guard = match timeout {
            Some(period) if tracked => {
                let registration = crate::watchdog::register(lock, node, mode, site, start);
                loop {
                    let slice = deadline.map_or(period, |d| period.min(left(d)));
                    if let Some(guard) = wait_for(slice) {
                        break Some(guard);
                    }
                    if deadline.is_some_and(|d| left(d).is_zero()) {
                        break None;
                    }
                    if let Some(report) = crate::watchdog::scan(&registration, period) {
                        crate::report::raise(report, thread::reaction(), false);
                    }
                }
            }
            _ => match deadline {
                None => Some(wait()),
                Some(d) => wait_for(left(d)),
            },
        }?;
        std::mem::forget(undo);
        if let Some(block) = thread::stats_block() {
            block.contended(
                node / MAX_SUBCLASSES,
                mode.side(),
                start.elapsed(),
                site,
                holder,
            );
        }
        Some(guard)
    }

    /// Bookkeeping for a release, before the lock is unlocked.
    #[inline(always)]
    pub(crate) fn release(&self, tracked: bool) {
        if tracked {
            release_tracked(self.instance.get());
        }
    }

    /// The lock instance, as held-lock entries know it.
    #[inline]
    pub(crate) fn instance(&self) -> LockId {
        self.instance.get()
    }

    /// `assert_held` / `assert_not_held`.
    #[track_caller]
    pub(crate) fn assert_held(&self, expected: bool) {
        if FLAGS.load(Ordering::Relaxed) & ENABLED == 0 {
            return;
        }
        if thread::holds(self.instance.get()).is_some_and(|held| held != expected) {
            thread::assert_failed(expected, self.node(0), Location::caller());
        }
    }
}

/// A lock's instance id, drawn from a process-wide counter on the lock's first checked use
/// (`new` is a `const fn`, so it cannot draw one) and never reused: held-lock entries are
/// keyed by it, not by address, so that a new lock where a dropped one was left held (its
/// guard leaked) is not mistaken for it.
struct InstanceCell {
    /// 0 until drawn.
    id: AtomicU64,
}

impl InstanceCell {
    const fn new() -> Self {
        Self {
            id: AtomicU64::new(0),
        }
    }

    #[inline]
    fn get(&self) -> LockId {
        match NonZeroU64::new(self.id.load(Ordering::Relaxed)) {
            Some(id) => LockId::Instance(id),
            None => self.draw(),
        }
    }

    /// Draws the id; of two threads drawing at once, the first to store wins and both use
    /// its id (all that matters is one value per lock, so relaxed ordering is enough).
    #[cold]
    #[inline(never)]
    fn draw(&self) -> LockId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let drawn = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = match self
            .id
            .compare_exchange(0, drawn, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => drawn,
            Err(stored) => stored,
        };
        // A counter that started at 1 and counts one per lock does not wrap to 0.
        LockId::Instance(NonZeroU64::new(id).expect("lockdep: lock instance ids ran out"))
    }
}

/// Whether a timed try that may wait `timeout` is checked like a blocking acquisition: a
/// wait of at least the deadlock timeout counts as a hang (see the crate docs, "Timed
/// tries"); with detection off, the default timeout is the line.
fn is_long_wait(timeout: Duration) -> bool {
    timeout
        >= SETTINGS
            .read()
            .deadlock_timeout
            .unwrap_or(DEFAULT_DEADLOCK_TIMEOUT)
}

/// Pops the entry `enter` pushed if the contended path unwinds or gives up.
struct UndoEnter {
    lock: LockId,
    armed: bool,
}

impl Drop for UndoEnter {
    fn drop(&mut self) {
        if self.armed {
            thread::exit(self.lock);
        }
    }
}

#[cold]
pub(crate) fn after_acquire(
    lock: LockId,
    node: Node,
    mode: Mode,
    site: &'static Location<'static>,
    tracked: bool,
) {
    let flags = FLAGS.load(Ordering::Relaxed);
    if flags & HOLD_TIMES != 0 && tracked {
        thread::mark_acquired(lock);
    }
    if flags & SUBSCRIBER != 0 {
        emit_event(EventKind::Acquired, node, mode, site);
    }
}

/// Out of line, so that guards of untracked acquisitions (switch off) drop as cheaply as
/// plain ones.
#[inline(never)]
pub(crate) fn release_tracked(lock: LockId) {
    if FLAGS.load(Ordering::Relaxed) & SUBSCRIBER == 0 {
        thread::exit(lock);
    } else {
        release_with_event(lock);
    }
}

#[cold]
#[inline(never)]
fn release_with_event(lock: LockId) {
    if let Some(held) = thread::exit_with_info(lock) {
        emit_event(EventKind::Released, held.node, held.mode, held.site);
    }
}

#[cold]
fn emit_event(kind: EventKind, node: Node, mode: Mode, site: &'static Location<'static>) {
    let (class, _) = crate::class::class_label(node / MAX_SUBCLASSES);
    emit(&Event {
        kind,
        class: &class,
        side: mode.side(),
        thread: std::thread::current().id(),
        site,
    });
}

/// Panics unless `subclass` is in range.
#[track_caller]
#[inline]
pub(crate) fn check_subclass(subclass: u32) {
    assert!(
        subclass < MAX_SUBCLASSES,
        "lockdep: subclass {subclass} is out of range; lock_nested takes 0..{MAX_SUBCLASSES}"
    );
}
