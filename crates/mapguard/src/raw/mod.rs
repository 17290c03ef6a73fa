//! Everything `unsafe` in mapguard lives under this module.
//!
//! - [`readers`]: the per-thread records where readers announce what they read.
//! - [`shard_lock`]: the reader-biased lock built on them, and its guards.
//! - [`epoch`]: epoch-based reclamation for memory that readers reach without a lock, with
//!   [`primitive`] (the only module that names loom) and `membarrier` (asymmetric fences).
//! - [`read_mostly`]: the slot tables of `ReadMostlyMap`.

pub(crate) mod epoch;
mod membarrier;
pub(crate) mod primitive;
pub(crate) mod read_mostly;
pub(crate) mod readers;
pub(crate) mod shard_lock;

pub(crate) use shard_lock::{ReadGuard, ShardLock, WriteGuard};
