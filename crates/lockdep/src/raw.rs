//! The crate's only unsafe code: a lock-free slot holding a `&'static Location`, used to
//! remember the last acquisition site of a lock so a contended waiter can say who held it.

#![allow(unsafe_code)]

use std::panic::Location;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// An atomically replaceable, possibly empty `&'static Location<'static>`.
pub(crate) struct SiteSlot {
    ptr: AtomicPtr<Location<'static>>,
}

impl SiteSlot {
    /// An empty slot.
    pub(crate) const fn new() -> Self {
        Self {
            ptr: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Stores `site`; skips the write when it is already there, so readers sharing the lock
    /// do not dirty its cache line for nothing.
    #[inline]
    pub(crate) fn set(&self, site: &'static Location<'static>) {
        let new = ptr::from_ref(site).cast_mut();
        if self.ptr.load(Ordering::Relaxed) != new {
            self.ptr.store(new, Ordering::Relaxed);
        }
    }

    /// The last stored site, if any.
    pub(crate) fn get(&self) -> Option<&'static Location<'static>> {
        let ptr = self.ptr.load(Ordering::Relaxed);
        // SAFETY: the slot holds either null (from `new`) or a pointer made in `set` from a
        // `&'static Location<'static>`. Such a reference is valid and immutable for the rest
        // of the program, nothing ever writes through the stored pointer, and the atomic
        // load returns a whole pointer value, so turning it back into a shared `'static`
        // reference is sound; `as_ref` maps null to `None`.
        unsafe { ptr.cast_const().as_ref() }
    }
}
