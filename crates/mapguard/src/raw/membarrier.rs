//! The Linux `membarrier` system call: a full memory barrier on every running thread of the
//! process, paid for by the caller alone. It lets readers of the epoch domain replace their
//! `SeqCst` fence by a compiler fence (see [`super::primitive::light_fence`]).
//!
//! On other systems, or when the kernel refuses, [`register`] says no and the domain keeps
//! `SeqCst` fences on both sides.

#[cfg(target_os = "linux")]
mod imp {
    const QUERY: libc::c_int = 0;
    const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

    fn membarrier(command: libc::c_int) -> libc::c_long {
        // SAFETY: `membarrier(cmd, flags)` reads and writes no memory of this process; it only
        // takes two integers and returns a status.
        unsafe { libc::syscall(libc::SYS_membarrier, command, 0 as libc::c_int) }
    }

    pub(crate) fn register() -> bool {
        let supported = membarrier(QUERY);
        if supported < 0 {
            return false;
        }
        let needed = libc::c_long::from(PRIVATE_EXPEDITED | REGISTER_PRIVATE_EXPEDITED);
        supported & needed == needed && membarrier(REGISTER_PRIVATE_EXPEDITED) == 0
    }

    pub(crate) fn barrier() {
        // Registration succeeded before any reader relied on it, and the command takes no
        // argument that could be wrong: a failure here means the kernel broke its contract, and
        // carrying on could free memory that a reader still uses.
        if membarrier(PRIVATE_EXPEDITED) != 0 {
            std::process::abort();
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(crate) fn register() -> bool {
        false
    }

    pub(crate) fn barrier() {
        unreachable!("membarrier is never registered on this system")
    }
}

pub(crate) use imp::{barrier, register};
