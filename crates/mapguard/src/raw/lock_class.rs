//! What the shard locks tell `lockdep` (the `lockdep` feature): which class each shard lock
//! belongs to. Without the feature everything here is zero-sized and does nothing.
//!
//! Each shard of each map is a class of its own, named `ShardedMap#<map>.shard[<index>]`
//! (`ReadMostlyMap#...` for the write locks of a ReadMostlyMap), with a map number that is never reused (a dropped map's address is, so addresses cannot
//! name classes). One class per map with the shard index as lockdep subclass does not fit:
//! lockdep has 8 subclasses, maps have up to 65536 shards, and two shards sharing a
//! subclass would make a legal "guard on one shard, write to another" look like a
//! self-nesting. Per-shard classes make every order lockdep learns an order between two
//! particular shards of particular maps, which is exactly the deadlock the maps can have
//! (dashmap issue 369). The price: an inversion is found only when both orders happen on the
//! same map (in a service, the one long-lived map), not across instances.

#[cfg(feature = "lockdep")]
use std::sync::atomic::{AtomicU64, Ordering};

/// The number of a map, for its shards' lock classes: unique in the process.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MapId {
    #[cfg(feature = "lockdep")]
    number: u64,
}

impl MapId {
    /// A number no other map of this process had.
    #[inline]
    pub(crate) fn next() -> Self {
        #[cfg(feature = "lockdep")]
        {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            Self {
                number: NEXT.fetch_add(1, Ordering::Relaxed),
            }
        }
        #[cfg(not(feature = "lockdep"))]
        Self {}
    }

    /// The lock class of shard `index` of this map, a map of type `kind`.
    #[cfg(feature = "lockdep")]
    pub(crate) fn shard_class(self, kind: &str, index: usize) -> lockdep::foreign::LockClass {
        lockdep::foreign::LockClass::unique(format_args!("{kind}#{}.shard[{index}]", self.number))
    }
}
