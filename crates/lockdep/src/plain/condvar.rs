//! The plain condition variable: parking_lot's `Condvar` taking lockdep guards.

use std::time::Duration;

use super::MutexGuard;
use crate::WaitTimeoutResult;

/// A condition variable for [`plain::Mutex`](super::Mutex); parking_lot's `Condvar`.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use lockdep::plain::{Condvar, Mutex};
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let pair2 = Arc::clone(&pair);
/// std::thread::spawn(move || {
///     *pair2.0.lock() = true;
///     pair2.1.notify_one();
/// });
/// let mut ready = pair.0.lock();
/// while !*ready {
///     pair.1.wait(&mut ready);
/// }
/// ```
#[derive(Default)]
pub struct Condvar {
    inner: parking_lot::Condvar,
}

impl Condvar {
    /// Creates a condition variable.
    ///
    /// # Examples
    ///
    /// ```
    /// let cv = lockdep::plain::Condvar::new();
    /// assert!(!cv.notify_one());
    /// ```
    pub const fn new() -> Self {
        Self {
            inner: parking_lot::Condvar::new(),
        }
    }

    /// Releases the guard's mutex, waits for a notification, and re-acquires it.
    ///
    /// # Examples
    ///
    /// See [`Condvar`].
    #[inline]
    pub fn wait<T: ?Sized>(&self, guard: &mut MutexGuard<'_, T>) {
        self.inner.wait(&mut guard.inner);
    }

    /// Like [`wait`](Self::wait), giving up after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = lockdep::plain::Mutex::new(());
    /// let cv = lockdep::plain::Condvar::new();
    /// let mut g = m.lock();
    /// assert!(cv.wait_for(&mut g, std::time::Duration::from_millis(1)).timed_out());
    /// ```
    #[inline]
    pub fn wait_for<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        self.inner.wait_for(&mut guard.inner, timeout)
    }

    /// Wakes one waiting thread; returns whether one was woken.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!lockdep::plain::Condvar::new().notify_one());
    /// ```
    #[inline]
    pub fn notify_one(&self) -> bool {
        self.inner.notify_one()
    }

    /// Wakes all waiting threads; returns how many were woken.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(lockdep::plain::Condvar::new().notify_all(), 0);
    /// ```
    #[inline]
    pub fn notify_all(&self) -> usize {
        self.inner.notify_all()
    }
}

impl std::fmt::Debug for Condvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Condvar")
    }
}
