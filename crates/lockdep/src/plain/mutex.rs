//! The plain mutex: parking_lot's `Mutex` behind a transparent wrapper.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// A mutual-exclusion lock; parking_lot's `Mutex` with lockdep's API and no checking.
///
/// # Examples
///
/// ```
/// let counter = lockdep::plain::Mutex::new(0);
/// *counter.lock() += 1;
/// assert_eq!(counter.into_inner(), 1);
/// ```
#[repr(transparent)]
pub struct Mutex<T: ?Sized> {
    inner: parking_lot::Mutex<T>,
}

impl<T> Mutex<T> {
    /// Creates an unlocked mutex holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// static TOTAL: lockdep::plain::Mutex<u64> = lockdep::plain::Mutex::new(0);
    /// *TOTAL.lock() += 2;
    /// ```
    #[inline]
    pub const fn new(value: T) -> Self {
        Self {
            inner: parking_lot::Mutex::new(value),
        }
    }

    /// Creates an unlocked mutex in the named lock class (the name is ignored here).
    ///
    /// # Examples
    ///
    /// ```
    /// let shard = lockdep::plain::Mutex::with_class("cache.shard", 0u8);
    /// assert_eq!(*shard.lock(), 0);
    /// ```
    #[inline]
    pub const fn with_class(name: &'static str, value: T) -> Self {
        let _ = name;
        Self::new(value)
    }

    /// Consumes the mutex and returns the value.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(lockdep::plain::Mutex::new(5).into_inner(), 5);
    /// ```
    #[inline]
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Blocks until the lock is acquired and returns its guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = lockdep::plain::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            inner: self.inner.lock(),
        }
    }

    /// Like [`lock`](Self::lock), declaring a nesting level within the class (ignored here).
    ///
    /// # Examples
    ///
    /// ```
    /// let (parent, child) = (lockdep::plain::Mutex::new(1), lockdep::plain::Mutex::new(2));
    /// let _p = parent.lock_nested(0);
    /// let _c = child.lock_nested(1);
    /// ```
    #[inline]
    pub fn lock_nested(&self, subclass: u32) -> MutexGuard<'_, T> {
        let _ = subclass;
        self.lock()
    }

    /// Acquires the lock if it is free, without blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = lockdep::plain::Mutex::new(());
    /// let held = m.lock();
    /// assert!(m.try_lock().is_none());
    /// drop(held);
    /// assert!(m.try_lock().is_some());
    /// ```
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.inner.try_lock().map(|inner| MutexGuard { inner })
    }

    /// Tries to acquire the lock for up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = lockdep::plain::Mutex::new(());
    /// assert!(m.try_lock_for(std::time::Duration::from_millis(1)).is_some());
    /// ```
    #[inline]
    pub fn try_lock_for(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        self.inner
            .try_lock_for(timeout)
            .map(|inner| MutexGuard { inner })
    }

    /// Returns a mutable reference to the value; no locking is needed.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut m = lockdep::plain::Mutex::new(1);
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
    /// let m = lockdep::plain::Mutex::new(());
    /// let _g = m.lock();
    /// assert!(m.is_locked());
    /// ```
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// Checks that this thread holds the lock; does nothing without checking.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = lockdep::plain::Mutex::new(());
    /// let _g = m.lock();
    /// m.assert_held();
    /// ```
    #[inline]
    pub fn assert_held(&self) {}

    /// Checks that this thread does not hold the lock; does nothing without checking.
    ///
    /// # Examples
    ///
    /// ```
    /// lockdep::plain::Mutex::new(()).assert_not_held();
    /// ```
    #[inline]
    pub fn assert_not_held(&self) {}
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
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
/// let m = lockdep::plain::Mutex::new(String::new());
/// let mut guard: lockdep::plain::MutexGuard<'_, String> = m.lock();
/// guard.push('x');
/// ```
///
/// A guard cannot move to another thread (held locks are tracked per thread):
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let m = lockdep::plain::Mutex::new(0);
/// send(m.lock());
/// ```
#[repr(transparent)]
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    pub(super) inner: parking_lot::MutexGuard<'a, T>,
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
