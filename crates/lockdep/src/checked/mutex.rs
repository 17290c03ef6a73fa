//! The checked mutex.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::time::Duration;

use super::{LockMeta, NotSend, check_subclass};
use crate::thread::{LockId, Mode};

/// A mutual-exclusion lock that reports misuse (parking_lot's `Mutex` underneath).
///
/// Its lock class is the call site of [`new`](Self::new), or the name given to
/// [`with_class`](Self::with_class).
///
/// # Examples
///
/// ```
/// let counter = lockdep::Mutex::new(0);
/// *counter.lock() += 1;
/// assert_eq!(counter.into_inner(), 1);
/// ```
pub struct Mutex<T: ?Sized> {
    meta: LockMeta,
    inner: parking_lot::Mutex<T>,
}

impl<T> Mutex<T> {
    /// Creates an unlocked mutex whose class is this call site.
    ///
    /// # Examples
    ///
    /// ```
    /// static TOTAL: lockdep::Mutex<u64> = lockdep::Mutex::new(0);
    /// *TOTAL.lock() += 2;
    /// ```
    #[track_caller]
    #[inline]
    pub const fn new(value: T) -> Self {
        Self {
            meta: LockMeta::new(None, "Mutex"),
            inner: parking_lot::Mutex::new(value),
        }
    }

    /// Creates an unlocked mutex in the class `name`, shared by every lock given that name.
    ///
    /// # Examples
    ///
    /// ```
    /// let shard = lockdep::Mutex::with_class("cache.shard", 0u8);
    /// assert_eq!(*shard.lock(), 0);
    /// ```
    #[track_caller]
    #[inline]
    pub const fn with_class(name: &'static str, value: T) -> Self {
        Self {
            meta: LockMeta::new(Some(name), "Mutex"),
            inner: parking_lot::Mutex::new(value),
        }
    }

    /// Consumes the mutex and returns the value.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(lockdep::Mutex::new(5).into_inner(), 5);
    /// ```
    #[inline]
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Blocks until the lock is acquired and returns its guard.
    ///
    /// Before blocking, the acquisition is checked against the locks this thread holds: a
    /// lock-order inversion, or re-locking a lock this thread holds, is reported first.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = lockdep::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    #[track_caller]
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.lock_at(0, Location::caller())
    }

    /// Like [`lock`](Self::lock), as nesting level `subclass` of the lock's class, for real
    /// hierarchies of one class (parent → child). Each subclass is ordered like a class of
    /// its own.
    ///
    /// # Panics
    ///
    /// If `subclass >= MAX_SUBCLASSES`.
    ///
    /// # Examples
    ///
    /// ```
    /// let nodes: Vec<lockdep::Mutex<u32>> = (0..2).map(lockdep::Mutex::new).collect();
    /// let _parent = nodes[0].lock_nested(0);
    /// let _child = nodes[1].lock_nested(1);
    /// ```
    #[track_caller]
    #[inline]
    pub fn lock_nested(&self, subclass: u32) -> MutexGuard<'_, T> {
        check_subclass(subclass);
        self.lock_at(subclass, Location::caller())
    }

    #[inline]
    fn lock_at(&self, subclass: u32, site: &'static Location<'static>) -> MutexGuard<'_, T> {
        let (inner, tracked) = self.meta.acquire(
            Mode::Write,
            subclass,
            site,
            || self.inner.try_lock(),
            |timeout| self.inner.try_lock_for(timeout),
            || self.inner.lock(),
        );
        MutexGuard {
            owner: self,
            tracked,
            _not_send: NotSend::default(),
            inner,
        }
    }

    /// Acquires the lock if it is free, without blocking (and so without an order check).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = lockdep::Mutex::new(());
    /// let held = m.lock();
    /// assert!(m.try_lock().is_none());
    /// drop(held);
    /// assert!(m.try_lock().is_some());
    /// ```
    #[track_caller]
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let (inner, tracked) = self
            .meta
            .try_acquire(Mode::Write, 0, Location::caller(), || self.inner.try_lock())?;
        Some(MutexGuard {
            owner: self,
            tracked,
            _not_send: NotSend::default(),
            inner,
        })
    }

    /// Tries to acquire the lock, waiting up to `timeout`.
    ///
    /// A `timeout` of at least [`Config::deadlock_timeout`](crate::Config::deadlock_timeout)
    /// is checked like [`lock`](Self::lock), before it waits: `try_lock_for(Duration::MAX)`
    /// on a lock this thread holds is reported, not a silent hang. A shorter one is treated
    /// like [`try_lock`](Self::try_lock). See [Timed tries](crate#timed-tries).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let m = lockdep::Mutex::new(());
    /// let held = m.lock();
    /// // Gives up soon: a plain try, which fails on a lock this thread holds.
    /// assert!(m.try_lock_for(Duration::from_millis(1)).is_none());
    /// drop(held);
    /// // Long enough to count as a hang: checked like `lock` (the lock is free here).
    /// assert!(m.try_lock_for(Duration::from_secs(60)).is_some());
    /// ```
    #[track_caller]
    #[inline]
    pub fn try_lock_for(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        let (inner, tracked) = self.meta.try_acquire_for(
            Mode::Write,
            0,
            Location::caller(),
            timeout,
            || self.inner.try_lock(),
            |timeout| self.inner.try_lock_for(timeout),
            || self.inner.lock(),
        )?;
        Some(MutexGuard {
            owner: self,
            tracked,
            _not_send: NotSend::default(),
            inner,
        })
    }

    /// Returns a mutable reference to the value; no locking is needed.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut m = lockdep::Mutex::new(1);
    /// *m.get_mut() = 3;
    /// assert_eq!(*m.lock(), 3);
    /// ```
    #[inline]
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    /// Whether some thread holds the lock right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = lockdep::Mutex::new(());
    /// let _g = m.lock();
    /// assert!(m.is_locked());
    /// ```
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// Reports (see [`Reaction`](crate::Reaction)) unless this thread holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = lockdep::Mutex::new(());
    /// let _g = m.lock();
    /// m.assert_held();
    /// ```
    #[track_caller]
    pub fn assert_held(&self) {
        self.meta.assert_held(true);
    }

    /// Reports (see [`Reaction`](crate::Reaction)) if this thread holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// lockdep::Mutex::new(()).assert_not_held();
    /// ```
    #[track_caller]
    pub fn assert_not_held(&self) {
        self.meta.assert_held(false);
    }
}

impl<T: Default> Default for Mutex<T> {
    #[track_caller]
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    #[track_caller]
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Proof that a [`Mutex`] is held; releases it on drop. Not `Send`.
///
/// # Examples
///
/// ```
/// let m = lockdep::Mutex::new(String::new());
/// let mut guard: lockdep::MutexGuard<'_, String> = m.lock();
/// guard.push('x');
/// ```
///
/// A guard cannot move to another thread (held locks are tracked per thread):
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let m = lockdep::Mutex::new(0);
/// send(m.lock());
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    owner: &'a Mutex<T>,
    tracked: bool,
    _not_send: NotSend,
    pub(super) inner: parking_lot::MutexGuard<'a, T>,
}

impl<T: ?Sized> MutexGuard<'_, T> {
    /// For the condition variable: the lock instance and whether it is tracked.
    pub(super) fn parts(&self) -> (LockId, bool) {
        (self.owner.meta.instance(), self.tracked)
    }

    pub(super) fn set_tracked(&mut self, tracked: bool) {
        self.tracked = tracked;
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.owner.meta.release(self.tracked);
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
