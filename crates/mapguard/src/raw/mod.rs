//! Everything `unsafe` in mapguard lives under this module.
//!
//! - [`barrier`]: asymmetric barriers, so that readers of a rarely written shard need no fence.
//! - [`readers`]: the per-thread records where readers announce what they read.
//! - [`shard_lock`]: the reader-biased lock built on them, and its guards.
//! - [`waitfor`]: cross-thread deadlock detection for shard locks (a wait-for graph built by
//!   threads that have waited too long).
//! - [`epoch`]: epoch-based reclamation for memory that readers reach without a lock (built on
//!   [`barrier`] and `primitive`, like the lock).
//! - [`read_mostly`]: the slot tables of `ReadMostlyMap`.
//! - [`std_lock`]: `std`'s reader-writer lock without poisoning, with mapped read guards (the
//!   lock of `LockedMap`).
//! - [`pow2`]: the shard array, indexed by a mask instead of a bounds check.
//! - [`lock_stats`]: contention figures of a shard lock (slow paths only); [`usdt`]: static
//!   probes (feature `usdt`; the probe macro emits inline assembly).
//! - [`held`]: a shared value with a plain pointer to it (the write observer's hot path).
//! - [`unshared`]: a value no shared reference reaches (lockdep registrations in `Sync` guards).

mod barrier;
pub(crate) mod epoch;
#[cfg(feature = "stats")]
pub(crate) mod held;
mod lock_class;
pub(crate) mod lock_stats;
pub(crate) mod pow2;
pub(crate) mod primitive;
pub(crate) mod read_mostly;
pub(crate) mod readers;
pub(crate) mod shard_lock;
pub(crate) mod std_lock;
#[cfg(feature = "lockdep")]
mod unshared;
pub(crate) mod usdt;
pub(crate) mod waitfor;

pub(crate) use lock_class::MapId;
pub(crate) use shard_lock::{ReadGuard, ShardLock, WriteGuard};
#[cfg(feature = "lockdep")]
pub(crate) use unshared::Unshared;
