//! A shared value kept together with a plain pointer to it, so that a hot path reaches the
//! value with one load, without the `Arc` header arithmetic.
//!
//! Reaching the contents of an `Arc<dyn Trait>` (or `Arc<str>`) computes their offset past
//! the reference counts from the alignment in the vtable at every use: five instructions on
//! x86-64 for a write observer called on every write. `Held` computes the pointer once.

use std::ptr::NonNull;
use std::sync::Arc;

/// An `Arc<T>` and a pointer to its contents.
pub(crate) struct Held<T: ?Sized> {
    ptr: NonNull<T>,
    /// Keeps the contents alive (and in place: an `Arc`'s contents never move) for as long
    /// as `ptr` may be read.
    _owner: Arc<T>,
}

// SAFETY: a `Held<T>` gives out only `&T` (as `&Arc<T>` does), so it may cross threads and
// be shared exactly when `Arc<T>` may.
unsafe impl<T: ?Sized + Send + Sync> Send for Held<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for Held<T> {}

impl<T: ?Sized> Held<T> {
    pub(crate) fn new(owner: Arc<T>) -> Self {
        Self {
            ptr: NonNull::from(&*owner),
            _owner: owner,
        }
    }

    /// The contents.
    #[inline(always)]
    pub(crate) fn get(&self) -> &T {
        // SAFETY: `ptr` points into the allocation `_owner` keeps alive for at least as long
        // as `self`, whose contents an `Arc` never moves or mutably borrows.
        unsafe { self.ptr.as_ref() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_the_shared_contents() {
        let text: Arc<str> = Arc::from("sessions");
        let held = Held::new(Arc::clone(&text));
        drop(text);
        assert_eq!(held.get(), "sessions");
        let value: Arc<dyn Fn() -> u8 + Send + Sync> = Arc::new(|| 7);
        assert_eq!((Held::new(value).get())(), 7);
    }
}
