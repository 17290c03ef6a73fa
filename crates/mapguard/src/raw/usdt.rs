//! Static USDT probes (feature `usdt`, Linux): SystemTap SDT notes that bpftrace and perf
//! attach to by name, provider `mapguard`. Each probe site is a `nop` while nothing is
//! attached; its arguments are values already in registers. Without the feature (or off
//! Linux) the write probes do not exist (their call sites are compiled out) and
//! `lock_contended` is empty.
//!
//! | probe | arguments |
//! |---|---|
//! | `mapguard:insert` | key hash, shard (`u64::MAX` for maps without shards), write-op code |
//! | `mapguard:remove` | key hash, shard, write-op code |
//! | `mapguard:write` | key hash (0 if none), shard, write-op code (every other write) |
//! | `mapguard:lock_contended` | shard, 0 = read / 1 = write, nanoseconds waited |

#[cfg(all(feature = "usdt", target_os = "linux"))]
mod imp {
    #[inline(always)]
    pub(crate) fn insert(hash: u64, shard: u64, op: u8) {
        probe::probe!(mapguard, insert, hash, shard, op);
    }

    #[inline(always)]
    pub(crate) fn remove(hash: u64, shard: u64, op: u8) {
        probe::probe!(mapguard, remove, hash, shard, op);
    }

    #[inline(always)]
    pub(crate) fn write(hash: u64, shard: u64, op: u8) {
        probe::probe!(mapguard, write, hash, shard, op);
    }

    #[inline(always)]
    pub(crate) fn lock_contended(shard: usize, kind: u8, waited_ns: u64) {
        probe::probe!(mapguard, lock_contended, shard, kind, waited_ns);
    }
}

#[cfg(not(all(feature = "usdt", target_os = "linux")))]
mod imp {
    #[inline(always)]
    pub(crate) fn lock_contended(_shard: usize, _kind: u8, _waited_ns: u64) {}
}

pub(crate) use imp::lock_contended;
#[cfg(all(feature = "usdt", target_os = "linux"))]
pub(crate) use imp::{insert, remove, write};
