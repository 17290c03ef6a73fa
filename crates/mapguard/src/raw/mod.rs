//! Everything `unsafe` in mapguard lives under this module.
//!
//! - [`readers`]: the per-thread records where readers announce what they read.
//! - [`shard_lock`]: the reader-biased lock built on them, and its guards.

mod primitive;
pub(crate) mod readers;
pub(crate) mod shard_lock;

pub(crate) use shard_lock::{ReadGuard, ShardLock, WriteGuard};
