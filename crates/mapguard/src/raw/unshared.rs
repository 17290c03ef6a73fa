//! [`Unshared`]: a value that a shared reference cannot reach, so that a guard holding it may be
//! `Sync` whatever the value is (the lockdep registration of a `LockedMap` guard is `!Sync`:
//! its methods act on the calling thread's bookkeeping).

/// Holds a `T` that is only ever used through `&mut` or dropped by its owner, never through
/// `&Unshared<T>`.
pub(crate) struct Unshared<T>(T);

// SAFETY: a `&Unshared<T>` gives no access to the `T` inside (there is no `&self` method), so
// sharing one between threads shares nothing.
unsafe impl<T> Sync for Unshared<T> {}

impl<T> Unshared<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(value)
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        &mut self.0
    }
}
