//! The one place that names `loom`: atomics and fences come from `loom` under `--cfg loom` and
//! from `std` otherwise, so that the epoch protocol in [`super::epoch`] can be model-checked
//! as it is compiled for real.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, fence};

pub(crate) use std::sync::atomic::Ordering;

/// A fence that orders this thread's earlier stores before its later loads, as seen by a thread
/// that runs [`heavy_fence`] with `asymmetric` set.
///
/// With `asymmetric` (the process is registered for `membarrier`), this only stops the compiler
/// from reordering: the heavy side makes every running thread of the process execute a full
/// barrier instead. Loom cannot model that, so under loom both sides are `SeqCst` fences.
#[inline(always)]
pub(crate) fn light_fence(asymmetric: bool) {
    #[cfg(not(loom))]
    if asymmetric {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
        return;
    }
    let _ = asymmetric;
    fence(Ordering::SeqCst);
}

/// The counterpart of [`light_fence`]: a `SeqCst` fence in this thread and, with `asymmetric`,
/// a full barrier on every running thread of the process.
pub(crate) fn heavy_fence(asymmetric: bool) {
    fence(Ordering::SeqCst);
    #[cfg(not(loom))]
    if asymmetric {
        super::membarrier::barrier();
    }
    let _ = asymmetric;
}
