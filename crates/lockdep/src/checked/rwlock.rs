//! The checked reader-writer locks.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::time::Duration;

use parking_lot::RawRwLock;
use parking_lot::lock_api;

use super::{LockMeta, NotSend, check_subclass};
use crate::thread::Mode;

/// A reader-writer lock that reports misuse (parking_lot's `RwLock` underneath).
///
/// With `RECURSIVE = false` (the default) the lock is writer-preferring: a `read` waits
/// behind a queued writer, so a thread taking `read` twice can hang, and lockdep reports it
/// (parking_lot issue 212). [`RecursiveRwLock`] (`RECURSIVE = true`) lets readers in while a
/// writer waits, so recursive reads are legal and not reported.
///
/// # Examples
///
/// ```
/// let config = lockdep::RwLock::new(vec![1, 2]);
/// assert_eq!(config.read().len(), 2);
/// config.write().push(3);
/// ```
pub struct GenericRwLock<T: ?Sized, const RECURSIVE: bool> {
    meta: LockMeta,
    inner: lock_api::RwLock<RawRwLock<RECURSIVE>, T>,
}

/// A reader-biased reader-writer lock: one thread may hold several read locks at once.
///
/// # Examples
///
/// ```
/// let table = lockdep::RecursiveRwLock::new(7);
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
/// let l = lockdep::RwLock::new(1);
/// assert_eq!(*l.read(), 1);
/// ```
pub type RwLock<T> = GenericRwLock<T, false>;

/// The read guard of a [`RwLock`].
///
/// # Examples
///
/// ```
/// let l = lockdep::RwLock::new(1);
/// let r: lockdep::RwLockReadGuard<'_, i32> = l.read();
/// assert_eq!(*r, 1);
/// ```
pub type RwLockReadGuard<'a, T> = GenericRwLockReadGuard<'a, T, false>;

/// The write guard of a [`RwLock`].
///
/// # Examples
///
/// ```
/// let l = lockdep::RwLock::new(1);
/// let mut w: lockdep::RwLockWriteGuard<'_, i32> = l.write();
/// *w = 2;
/// ```
pub type RwLockWriteGuard<'a, T> = GenericRwLockWriteGuard<'a, T, false>;

/// The read guard of a [`RecursiveRwLock`].
///
/// # Examples
///
/// ```
/// let l = lockdep::RecursiveRwLock::new(1);
/// let r: lockdep::RecursiveRwLockReadGuard<'_, i32> = l.read();
/// assert_eq!(*r, 1);
/// ```
pub type RecursiveRwLockReadGuard<'a, T> = GenericRwLockReadGuard<'a, T, true>;

/// The write guard of a [`RecursiveRwLock`].
///
/// # Examples
///
/// ```
/// let l = lockdep::RecursiveRwLock::new(1);
/// let mut w: lockdep::RecursiveRwLockWriteGuard<'_, i32> = l.write();
/// *w = 2;
/// ```
pub type RecursiveRwLockWriteGuard<'a, T> = GenericRwLockWriteGuard<'a, T, true>;

const fn kind(recursive: bool) -> &'static str {
    if recursive {
        "RecursiveRwLock"
    } else {
        "RwLock"
    }
}

impl<T, const RECURSIVE: bool> GenericRwLock<T, RECURSIVE> {
    /// Creates an unlocked reader-writer lock whose class is this call site.
    ///
    /// # Examples
    ///
    /// ```
    /// static NAMES: lockdep::RwLock<Vec<&str>> = lockdep::RwLock::new(Vec::new());
    /// NAMES.write().push("a");
    /// ```
    #[track_caller]
    #[inline]
    pub const fn new(value: T) -> Self {
        Self {
            meta: LockMeta::new(None, kind(RECURSIVE)),
            inner: lock_api::RwLock::new(value),
        }
    }

    /// Creates an unlocked lock in the class `name`, shared by every lock given that name.
    ///
    /// # Examples
    ///
    /// ```
    /// let index = lockdep::RwLock::with_class("index", 0);
    /// assert_eq!(*index.read(), 0);
    /// ```
    #[track_caller]
    #[inline]
    pub const fn with_class(name: &'static str, value: T) -> Self {
        Self {
            meta: LockMeta::new(Some(name), kind(RECURSIVE)),
            inner: lock_api::RwLock::new(value),
        }
    }

    /// Consumes the lock and returns the value.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::RwLock::new(3);
    /// assert_eq!(l.into_inner(), 3);
    /// ```
    #[inline]
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized, const RECURSIVE: bool> GenericRwLock<T, RECURSIVE> {
    const READ: Mode = if RECURSIVE {
        Mode::RecursiveRead
    } else {
        Mode::Read
    };

    /// Blocks until a shared (read) lock is acquired.
    ///
    /// On a writer-preferring lock, a second `read` by a thread that already reads it is
    /// reported before blocking; on a [`RecursiveRwLock`] it is fine.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::RwLock::new(1);
    /// assert_eq!(*l.read(), 1);
    /// ```
    #[track_caller]
    #[inline]
    pub fn read(&self) -> GenericRwLockReadGuard<'_, T, RECURSIVE> {
        self.read_at(0, Location::caller())
    }

    /// Like [`read`](Self::read), as nesting level `subclass` of the lock's class.
    ///
    /// # Panics
    ///
    /// If `subclass >= MAX_SUBCLASSES`.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::RwLock::new(1);
    /// assert_eq!(*l.read_nested(1), 1);
    /// ```
    #[track_caller]
    #[inline]
    pub fn read_nested(&self, subclass: u32) -> GenericRwLockReadGuard<'_, T, RECURSIVE> {
        check_subclass(subclass);
        self.read_at(subclass, Location::caller())
    }

    #[inline]
    fn read_at(
        &self,
        subclass: u32,
        site: &'static Location<'static>,
    ) -> GenericRwLockReadGuard<'_, T, RECURSIVE> {
        let (inner, tracked) = self.meta.acquire(
            Self::READ,
            subclass,
            site,
            || self.inner.try_read(),
            |timeout| self.inner.try_read_for(timeout),
            || self.inner.read(),
        );
        GenericRwLockReadGuard {
            owner: self,
            tracked,
            _not_send: NotSend::default(),
            inner,
        }
    }

    /// Acquires a read lock if that is possible without blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::RwLock::new(1);
    /// let w = l.write();
    /// assert!(l.try_read().is_none());
    /// ```
    #[track_caller]
    #[inline]
    pub fn try_read(&self) -> Option<GenericRwLockReadGuard<'_, T, RECURSIVE>> {
        let (inner, tracked) = self
            .meta
            .try_acquire(Self::READ, 0, Location::caller(), || self.inner.try_read())?;
        Some(GenericRwLockReadGuard {
            owner: self,
            tracked,
            _not_send: NotSend::default(),
            inner,
        })
    }

    /// Tries to acquire a read lock, waiting up to `timeout`: checked like
    /// [`read`](Self::read) if `timeout` is at least
    /// [`Config::deadlock_timeout`](crate::Config::deadlock_timeout), like
    /// [`try_read`](Self::try_read) otherwise. See [Timed tries](crate#timed-tries).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let l = lockdep::RwLock::new(1);
    /// assert_eq!(l.try_read_for(Duration::from_secs(60)).map(|r| *r), Some(1));
    /// ```
    #[track_caller]
    #[inline]
    pub fn try_read_for(
        &self,
        timeout: Duration,
    ) -> Option<GenericRwLockReadGuard<'_, T, RECURSIVE>> {
        let (inner, tracked) = self.meta.try_acquire_for(
            Self::READ,
            0,
            Location::caller(),
            timeout,
            || self.inner.try_read(),
            |timeout| self.inner.try_read_for(timeout),
            || self.inner.read(),
        )?;
        Some(GenericRwLockReadGuard {
            owner: self,
            tracked,
            _not_send: NotSend::default(),
            inner,
        })
    }

    /// Blocks until the exclusive (write) lock is acquired.
    ///
    /// Taking `write` while this thread holds `read` (or `write`) is reported before
    /// blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::RwLock::new(1);
    /// *l.write() = 2;
    /// assert_eq!(*l.read(), 2);
    /// ```
    #[track_caller]
    #[inline]
    pub fn write(&self) -> GenericRwLockWriteGuard<'_, T, RECURSIVE> {
        self.write_at(0, Location::caller())
    }

    /// Like [`write`](Self::write), as nesting level `subclass` of the lock's class.
    ///
    /// # Panics
    ///
    /// If `subclass >= MAX_SUBCLASSES`.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::RwLock::new(1);
    /// *l.write_nested(1) = 5;
    /// ```
    #[track_caller]
    #[inline]
    pub fn write_nested(&self, subclass: u32) -> GenericRwLockWriteGuard<'_, T, RECURSIVE> {
        check_subclass(subclass);
        self.write_at(subclass, Location::caller())
    }

    #[inline]
    fn write_at(
        &self,
        subclass: u32,
        site: &'static Location<'static>,
    ) -> GenericRwLockWriteGuard<'_, T, RECURSIVE> {
        let (inner, tracked) = self.meta.acquire(
            Mode::Write,
            subclass,
            site,
            || self.inner.try_write(),
            |timeout| self.inner.try_write_for(timeout),
            || self.inner.write(),
        );
        GenericRwLockWriteGuard {
            owner: self,
            tracked,
            _not_send: NotSend::default(),
            inner,
        }
    }

    /// Acquires the write lock if it is free, without blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::RwLock::new(1);
    /// let r = l.read();
    /// assert!(l.try_write().is_none());
    /// ```
    #[track_caller]
    #[inline]
    pub fn try_write(&self) -> Option<GenericRwLockWriteGuard<'_, T, RECURSIVE>> {
        let (inner, tracked) = self
            .meta
            .try_acquire(Mode::Write, 0, Location::caller(), || {
                self.inner.try_write()
            })?;
        Some(GenericRwLockWriteGuard {
            owner: self,
            tracked,
            _not_send: NotSend::default(),
            inner,
        })
    }

    /// Tries to acquire the write lock, waiting up to `timeout`: checked like
    /// [`write`](Self::write) if `timeout` is at least
    /// [`Config::deadlock_timeout`](crate::Config::deadlock_timeout), like
    /// [`try_write`](Self::try_write) otherwise. See [Timed tries](crate#timed-tries).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let l = lockdep::RwLock::new(1);
    /// let r = l.read();
    /// // Gives up soon: a plain try, which fails while this thread reads.
    /// assert!(l.try_write_for(Duration::from_millis(1)).is_none());
    /// drop(r);
    /// *l.try_write_for(Duration::from_secs(60)).unwrap() = 2;
    /// ```
    #[track_caller]
    #[inline]
    pub fn try_write_for(
        &self,
        timeout: Duration,
    ) -> Option<GenericRwLockWriteGuard<'_, T, RECURSIVE>> {
        let (inner, tracked) = self.meta.try_acquire_for(
            Mode::Write,
            0,
            Location::caller(),
            timeout,
            || self.inner.try_write(),
            |timeout| self.inner.try_write_for(timeout),
            || self.inner.write(),
        )?;
        Some(GenericRwLockWriteGuard {
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
    /// let mut l = lockdep::RwLock::new(1);
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
    /// let l = lockdep::RwLock::new(1);
    /// let _r = l.read();
    /// assert!(l.is_locked());
    /// ```
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// Reports (see [`Reaction`](crate::Reaction)) unless this thread holds the lock in some
    /// mode.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = lockdep::RwLock::new(1);
    /// let _r = l.read();
    /// l.assert_held();
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
    /// let l = lockdep::RwLock::new(1);
    /// l.assert_not_held();
    /// ```
    #[track_caller]
    pub fn assert_not_held(&self) {
        self.meta.assert_held(false);
    }
}

impl<T: Default, const RECURSIVE: bool> Default for GenericRwLock<T, RECURSIVE> {
    #[track_caller]
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T, const RECURSIVE: bool> From<T> for GenericRwLock<T, RECURSIVE> {
    #[track_caller]
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
/// let l = lockdep::RwLock::new(1);
/// let r: lockdep::RwLockReadGuard<'_, i32> = l.read();
/// assert_eq!(*r, 1);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct GenericRwLockReadGuard<'a, T: ?Sized, const RECURSIVE: bool> {
    owner: &'a GenericRwLock<T, RECURSIVE>,
    tracked: bool,
    _not_send: NotSend,
    inner: lock_api::RwLockReadGuard<'a, RawRwLock<RECURSIVE>, T>,
}

/// Proof of the exclusive lock on a [`GenericRwLock`]; releases it on drop. Not `Send`.
///
/// # Examples
///
/// ```
/// let l = lockdep::RwLock::new(1);
/// let mut w: lockdep::RwLockWriteGuard<'_, i32> = l.write();
/// *w += 1;
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct GenericRwLockWriteGuard<'a, T: ?Sized, const RECURSIVE: bool> {
    owner: &'a GenericRwLock<T, RECURSIVE>,
    tracked: bool,
    _not_send: NotSend,
    inner: lock_api::RwLockWriteGuard<'a, RawRwLock<RECURSIVE>, T>,
}

impl<T: ?Sized, const RECURSIVE: bool> Drop for GenericRwLockReadGuard<'_, T, RECURSIVE> {
    #[inline]
    fn drop(&mut self) {
        self.owner.meta.release(self.tracked);
    }
}

impl<T: ?Sized, const RECURSIVE: bool> Drop for GenericRwLockWriteGuard<'_, T, RECURSIVE> {
    #[inline]
    fn drop(&mut self) {
        self.owner.meta.release(self.tracked);
    }
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
