//! Asymmetric memory barriers: a free "light" barrier for readers, paid for by a "heavy"
//! barrier in the rare writer that needs it.
//!
//! On Linux the heavy barrier is `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: the kernel
//! makes every running thread of the process execute a full memory barrier before the call
//! returns. A reader that publishes with a plain store and a compiler-only barrier is then
//! ordered against a writer exactly as if both had used `SeqCst` fences: for each reader,
//! either its store is visible to the writer after the heavy barrier, or its later loads see
//! what the writer stored before it. Where the call is unavailable (other systems, old kernels,
//! sandboxes that filter it, loom), [`available`] is false and the lock never uses the light
//! path.

use std::sync::OnceLock;
use std::sync::atomic::{Ordering, compiler_fence};
use std::time::Instant;

/// Whether heavy barriers work in this process (registers for them on first call).
pub(crate) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(register)
}

#[cfg(all(target_os = "linux", not(loom)))]
mod sys {
    const MEMBARRIER_CMD_QUERY: libc::c_long = 0;
    const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    fn membarrier(cmd: libc::c_long) -> libc::c_long {
        // SAFETY: `membarrier` takes two integer arguments (command and flags) plus a CPU id
        // that is ignored without MEMBARRIER_CMD_FLAG_CPU; it touches no memory of ours.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        }
    }

    pub(super) fn register() -> bool {
        let supported = membarrier(MEMBARRIER_CMD_QUERY);
        supported >= 0
            && supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED != 0
            && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0
    }

    pub(super) fn heavy() {
        let result = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
        // Registration succeeded, so the kernel documents no failure for this command.
        assert_eq!(
            result, 0,
            "membarrier failed after a successful registration"
        );
    }
}

#[cfg(not(all(target_os = "linux", not(loom))))]
mod sys {
    pub(super) fn register() -> bool {
        false
    }

    pub(super) fn heavy() {
        unreachable!("heavy barriers are used only where `available()` is true")
    }
}

fn register() -> bool {
    sys::register()
}

/// The reader's side: keeps the compiler from reordering memory accesses across it; costs
/// nothing at run time.
#[inline(always)]
pub(crate) fn light() {
    compiler_fence(Ordering::SeqCst);
}

/// The writer's side: every thread of the process passes a full barrier before this returns.
/// Only to be called when [`available`] returned true.
#[cold]
pub(crate) fn heavy() {
    sys::heavy();
}

/// Nanoseconds since an arbitrary process-wide origin, for bias inhibition windows.
pub(crate) fn now_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
