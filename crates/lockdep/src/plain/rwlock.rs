//! The plain reader-writer locks: parking_lot's `RwLock` / `RecursiveRwLock` behind a
//! transparent wrapper.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use parking_lot::RawRwLock;

/// A reader-writer lock; parking_lot's `RwLock` with lockdep's API and no checking.
///
/// With `RECURSIVE = false` (the default) the lock is writer-preferring: a `read` waits behind
/// a queued writer, so a thread must not take `read` twice. [`RecursiveRwLock`] (`RECURSIVE =
/// true`) lets readers in while a writer waits, so recursive reads are fine.
///
/// # Examples
///
/// ```
/// let config = lockdep::plain::RwLock::new(vec![1, 2]);
/// assert_eq!(config.read().len(), 2);
/// config.write().push(3);
/// ```
#[repr(transparent)]
pub struct GenericRwLock<T: ?Sized, const RECURSIVE: bool> {
    inner: parking_lot::lock_api::RwLock<RawRwLock<RECURSIVE>, T>,
}

/// A reader-biased reader-writer lock: one thread may hold several read locks at once.
///
/// # Examples
///
/// ```
/// let table = lockdep::plain::RecursiveRwLock::new(7);
/// let a = table.read();
/// let b = table.read();
/// assert_eq!(*a + *b, 14);
/// ```
pub type RecursiveRwLock<T> = GenericRwLock<T, true>;

/// A writer-preferring reader-writer lock: see [`GenericRwLock`].
///
/// # Examples
///
/// ```
/// let l = lockdep::plain::RwLock::new(1);
/// assert_eq!(*l.read(), 1);
/// ```
pub type RwLock<T> = GenericRwLock<T, false>;

/// The read guard of a [`RwLock`].
///
/// # Examples
///
/// ```
/// let l = lockdep::plain::RwLock::new(1);
/// let r: lockdep::plain::RwLockReadGuard<'_, i32> = l.read();
/// assert_eq!(*r, 1);
/// ```
pub type RwLockReadGuard<'a, T> = GenericRwLockReadGuard<'a, T, false>;

/// The write guard of a [`RwLock`].
///
/// # Examples
///
/// ```
/// let l = lockdep::plain::RwLock::new(1);
/// let mut w: lockdep::plain::RwLockWriteGuard<'_, i32> = l.write();
/// *w = 2;
/// ```
pub type RwLockWriteGuard<'a, T> = GenericRwLockWriteGuard<'a, T, false>;

/// The read guard of a [`RecursiveRwLock`].
///
/// # Examples
///
/// ```
/// let l = lockdep::plain::RecursiveRwLock::new(1);
/// let r: lockdep::plain::RecursiveRwLockReadGuard<'_, i32> = l.read();
/// assert_eq!(*r, 1);
/// ```
pub type RecursiveRwLockReadGuard<'a, T> = GenericRwLockReadGuard<'a, T, true>;

/// The write guard of a [`RecursiveRwLock`].
///
/// # Examples
///
/// ```
/// let l = lockdep::plain::RecursiveRwLock::new(1);
/// let mut w: lockdep::plain::RecursiveRwLockWriteGuard<'_, i32> = l.write();
/// *w = 2;
/// ```
pub type RecursiveRwLockWriteGuard<'a, T> = GenericRwLockWriteGuard<'a, T, true>;

impl<T, const RECURSIVE: bool> GenericRwLock<T, RECURSIVE> {
    /// Creates an unlocked reader-writer lock holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// static NAMES: lockdep::plain::RwLock<Vec<&str>> = lockdep::plain::RwLock::new(Vec::new());
    /// NAMES.write().push("a");
    /// ```
    #[inline]
    pub const fn new(value: T) -> Self {
        Self {
            inner: parking_lot::lock_api::RwLock::new(value),
        }
    }

    /// Creates an unlocked lock in the named lock class (the name is ignored here).
    ///
    /// # Examples
    ///
    /// ```
    /// let index = lockdep::plain::RwLock::with_class("index", 0);
    /// assert_eq!(*index.read(), 0);
    /// ```
    #[inline]
    pub const fn with_class(name: &'static str, value: T) -> Self {
        let _ = name;
        Self::new(value)
    }

    /// Consumes the lock and returns the value.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::plain::RwLock::new(3);
    /// assert_eq!(l.into_inner(), 3);
    /// ```
    #[inline]
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized, const RECURSIVE: bool> GenericRwLock<T, RECURSIVE> {
    /// Blocks until a shared (read) lock is acquired.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::plain::RwLock::new(1);
    /// assert_eq!(*l.read(), 1);
    /// ```
    #[inline]
    pub fn read(&self) -> GenericRwLockReadGuard<'_, T, RECURSIVE> {
        GenericRwLockReadGuard {
            inner: self.inner.read(),
        }
    }

    /// Like [`read`](Self::read), declaring a nesting level within the class (ignored here).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::plain::RwLock::new(1);
    /// assert_eq!(*l.read_nested(1), 1);
    /// ```
    #[inline]
    pub fn read_nested(&self, subclass: u32) -> GenericRwLockReadGuard<'_, T, RECURSIVE> {
        let _ = subclass;
        self.read()
    }

    /// Acquires a read lock if that is possible without blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::plain::RwLock::new(1);
    /// let w = l.write();
    /// assert!(l.try_read().is_none());
    /// ```
    #[inline]
    pub fn try_read(&self) -> Option<GenericRwLockReadGuard<'_, T, RECURSIVE>> {
        self.inner
            .try_read()
            .map(|inner| GenericRwLockReadGuard { inner })
    }

    /// Tries to acquire a read lock for up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::plain::RwLock::new(1);
    /// assert!(l.try_read_for(std::time::Duration::from_millis(1)).is_some());
    /// ```
    #[inline]
    pub fn try_read_for(
        &self,
        timeout: Duration,
    ) -> Option<GenericRwLockReadGuard<'_, T, RECURSIVE>> {
        self.inner
            .try_read_for(timeout)
            .map(|inner| GenericRwLockReadGuard { inner })
    }

    /// Blocks until the exclusive (write) lock is acquired.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::plain::RwLock::new(1);
    /// *l.write() = 2;
    /// assert_eq!(*l.read(), 2);
    /// ```
    #[inline]
    pub fn write(&self) -> GenericRwLockWriteGuard<'_, T, RECURSIVE> {
        GenericRwLockWriteGuard {
            inner: self.inner.write(),
        }
    }

    /// Like [`write`](Self::write), declaring a nesting level within the class (ignored here).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::plain::RwLock::new(1);
    /// *l.write_nested(1) = 5;
    /// ```
    #[inline]
    pub fn write_nested(&self, subclass: u32) -> GenericRwLockWriteGuard<'_, T, RECURSIVE> {
        let _ = subclass;
        self.write()
    }

    /// Acquires the write lock if it is free, without blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::plain::RwLock::new(1);
    /// let r = l.read();
    /// assert!(l.try_write().is_none());
    /// ```
    #[inline]
    pub fn try_write(&self) -> Option<GenericRwLockWriteGuard<'_, T, RECURSIVE>> {
        self.inner
            .try_write()
            .map(|inner| GenericRwLockWriteGuard { inner })
    }

    /// Tries to acquire the write lock for up to `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::plain::RwLock::new(1);
    /// assert!(l.try_write_for(std::time::Duration::from_millis(1)).is_some());
    /// ```
    #[inline]
    pub fn try_write_for(
        &self,
        timeout: Duration,
    ) -> Option<GenericRwLockWriteGuard<'_, T, RECURSIVE>> {
        self.inner
            .try_write_for(timeout)
            .map(|inner| GenericRwLockWriteGuard { inner })
    }

    /// Returns a mutable reference to the value; no locking is needed.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut l = lockdep::plain::RwLock::new(1);
    /// *l.get_mut() = 4;
    /// assert_eq!(*l.read(), 4);
    /// ```
    #[inline]
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    /// Whether some thread holds the lock in any mode right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::plain::RwLock::new(1);
    /// let _r = l.read();
    /// assert!(l.is_locked());
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
    /// let l = lockdep::plain::RwLock::new(1);
    /// let _r = l.read();
    /// l.assert_held();
    /// ```
    #[inline]
    pub fn assert_held(&self) {}

    /// Checks that this thread does not hold the lock; does nothing without checking.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::plain::RwLock::new(1);
    /// l.assert_not_held();
    /// ```
    #[inline]
    pub fn assert_not_held(&self) {}
}

impl<T: Default, const RECURSIVE: bool> Default for GenericRwLock<T, RECURSIVE> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T, const RECURSIVE: bool> From<T> for GenericRwLock<T, RECURSIVE> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: ?Sized + fmt::Debug, const RECURSIVE: bool> fmt::Debug for GenericRwLock<T, RECURSIVE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Proof of a shared lock on a [`GenericRwLock`]; releases it on drop. Not `Send`.
///
/// # Examples
///
/// ```
/// let l = lockdep::plain::RwLock::new(1);
/// let r: lockdep::plain::RwLockReadGuard<'_, i32> = l.read();
/// assert_eq!(*r, 1);
/// ```
#[repr(transparent)]
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct GenericRwLockReadGuard<'a, T: ?Sized, const RECURSIVE: bool> {
    inner: parking_lot::lock_api::RwLockReadGuard<'a, RawRwLock<RECURSIVE>, T>,
}

/// Proof of the exclusive lock on a [`GenericRwLock`]; releases it on drop. Not `Send`.
///
/// # Examples
///
/// ```
/// let l = lockdep::plain::RwLock::new(1);
/// let mut w: lockdep::plain::RwLockWriteGuard<'_, i32> = l.write();
/// *w += 1;
/// ```
#[repr(transparent)]
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct GenericRwLockWriteGuard<'a, T: ?Sized, const RECURSIVE: bool> {
    inner: parking_lot::lock_api::RwLockWriteGuard<'a, RawRwLock<RECURSIVE>, T>,
}

impl<T: ?Sized, const RECURSIVE: bool> Deref for GenericRwLockReadGuard<'_, T, RECURSIVE> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized, const RECURSIVE: bool> Deref for GenericRwLockWriteGuard<'_, T, RECURSIVE> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized, const RECURSIVE: bool> DerefMut for GenericRwLockWriteGuard<'_, T, RECURSIVE> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: ?Sized + fmt::Debug, const RECURSIVE: bool> fmt::Debug
    for GenericRwLockReadGuard<'_, T, RECURSIVE>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug, const RECURSIVE: bool> fmt::Debug
    for GenericRwLockWriteGuard<'_, T, RECURSIVE>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
