//! The checked condition variable.

use std::panic::Location;
use std::time::Duration;

use super::MutexGuard;
use crate::WaitTimeoutResult;
use crate::thread::{self, Mode};

/// A condition variable for [`Mutex`](crate::Mutex) (parking_lot's `Condvar` underneath).
///
/// Waiting releases the mutex and re-acquires it while this thread still holds its other
/// locks, so the wait is checked like a fresh acquisition of the mutex on top of them.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use lockdep::{Condvar, Mutex};
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
    /// let cv = lockdep::Condvar::new();
    /// assert!(!cv.notify_one());
    /// ```
    pub const fn new() -> Self {
        Self {
            inner: parking_lot::Condvar::new(),
        }
    }

    /// Re-registers the guard's mutex on top of the held locks, checking that order.
    fn requeue<T: ?Sized>(guard: &mut MutexGuard<'_, T>, site: &'static Location<'static>) {
        let (lock, tracked) = guard.parts();
        if tracked && let Some(held) = thread::exit_with_info(lock) {
            let tracked = thread::enter(lock, held.node, Mode::Write, site);
            guard.set_tracked(tracked);
        }
    }

    /// Releases the guard's mutex, waits for a notification, and re-acquires it.
    ///
    /// # Examples
    ///
    /// See [`Condvar`].
    #[track_caller]
    pub fn wait<T: ?Sized>(&self, guard: &mut MutexGuard<'_, T>) {
        Self::requeue(guard, Location::caller());
        self.inner.wait(&mut guard.inner);
    }

    /// Like [`wait`](Self::wait), giving up after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = lockdep::Mutex::new(());
    /// let cv = lockdep::Condvar::new();
    /// let mut g = m.lock();
    /// assert!(cv.wait_for(&mut g, std::time::Duration::from_millis(1)).timed_out());
    /// ```
    #[track_caller]
    pub fn wait_for<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        Self::requeue(guard, Location::caller());
        self.inner.wait_for(&mut guard.inner, timeout)
    }

    /// Wakes one waiting thread; returns whether one was woken.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!lockdep::Condvar::new().notify_one());
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
    /// assert_eq!(lockdep::Condvar::new().notify_all(), 0);
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
