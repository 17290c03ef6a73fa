//! Contention figures of one shard lock: how many acquisitions had to wait and for how long.
//!
//! Only the lock's slow paths touch this: the fast read and write paths never do, so a lock
//! whose map has statistics off pays nothing, and one whose map has them on pays only when it
//! already waits. Waits are timed with the monotonic clock, every one of them (a clock read
//! costs tens of nanoseconds; a wait costs at least a few hundred). The counters are shared
//! read-modify-writes on the lock's own line, which a waiting thread is spinning on anyway.
//! Plain `std` atomics: the figures carry no synchronization, so loom need not model them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Contended acquisitions and the time they waited.
#[derive(Default)]
pub(crate) struct LockStats {
    /// Set once, before the lock is shared, when the map records statistics.
    enabled: bool,
    contended: AtomicU64,
    wait_ns: AtomicU64,
}

/// What kind of acquisition waited (for the probe).
#[derive(Clone, Copy)]
pub(crate) enum WaitKind {
    Read = 0,
    Write = 1,
}

impl LockStats {
    pub(crate) fn enable(&mut self) {
        self.enabled = true;
    }

    /// `(contended acquisitions, nanoseconds waited)` so far.
    #[cfg_attr(not(feature = "stats"), allow(dead_code))]
    pub(crate) fn figures(&self) -> (u64, u64) {
        (
            self.contended.load(Ordering::Relaxed),
            self.wait_ns.load(Ordering::Relaxed),
        )
    }

    /// Starts timing a wait; the returned timer records it when dropped. `None` (nothing to
    /// record) when statistics are off and no probe is compiled in.
    #[inline]
    pub(crate) fn wait(&self, shard: usize, kind: WaitKind) -> Option<WaitTimer<'_>> {
        if !self.enabled && !cfg!(all(feature = "usdt", target_os = "linux")) {
            return None;
        }
        Some(WaitTimer {
            stats: self,
            shard,
            kind,
            start: Instant::now(),
        })
    }
}

/// A wait in progress; see [`LockStats::wait`].
pub(crate) struct WaitTimer<'a> {
    stats: &'a LockStats,
    shard: usize,
    kind: WaitKind,
    start: Instant,
}

impl Drop for WaitTimer<'_> {
    fn drop(&mut self) {
        let waited_ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if self.stats.enabled {
            self.stats.contended.fetch_add(1, Ordering::Relaxed);
            self.stats.wait_ns.fetch_add(waited_ns, Ordering::Relaxed);
        }
        super::usdt::lock_contended(self.shard, self.kind as u8, waited_ns);
    }
}
