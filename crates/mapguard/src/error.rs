//! Errors returned by mapguard's constructors and allocation methods.

use thiserror::Error;

/// Why a map builder refused its settings.
///
/// # Examples
/// ```
/// use mapguard::{BuildError, ShardedMap};
///
/// let err = ShardedMap::<u64, u64>::builder().shards(3).build().unwrap_err();
/// assert_eq!(err, BuildError::ShardsNotPowerOfTwo { shards: 3 });
/// assert!(err.to_string().contains("power of two"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A shard count of zero was asked for.
    #[error("shard count 0 is not allowed: use a power of two from 1 to {max}")]
    ZeroShards {
        /// The largest shard count allowed.
        max: usize,
    },
    /// The shard count is not a power of two.
    #[error(
        "shard count {shards} is not a power of two: use 1, 2, 4, ... up to {}",
        crate::sharded::MAX_SHARDS
    )]
    ShardsNotPowerOfTwo {
        /// The shard count asked for.
        shards: usize,
    },
    /// The shard count is above the maximum.
    #[error(
        "shard count {shards} is above the maximum of {max}: use a power of two from 1 to {max}"
    )]
    TooManyShards {
        /// The shard count asked for.
        shards: usize,
        /// The largest shard count allowed.
        max: usize,
    },
    /// The initial capacity cannot be allocated.
    #[error("capacity {capacity} cannot be allocated: {source}")]
    Capacity {
        /// The capacity asked for.
        capacity: usize,
        /// Why the allocation failed.
        source: ReserveError,
    },
}

/// Why [`try_reserve`](crate::ShardedMap::try_reserve) could not make room.
///
/// # Examples
/// ```
/// use mapguard::{ReserveError, ShardedMap};
///
/// let map: ShardedMap<u64, u64> = ShardedMap::new();
/// assert_eq!(map.try_reserve(usize::MAX), Err(ReserveError::CapacityOverflow));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReserveError {
    /// The capacity asked for exceeds what a table can address (`isize::MAX` bytes).
    #[error("the requested capacity exceeds the maximum a table can address (isize::MAX bytes)")]
    CapacityOverflow,
    /// The allocator refused the memory.
    #[error("the allocator could not provide {bytes} bytes")]
    AllocError {
        /// Size of the refused allocation.
        bytes: usize,
    },
}

impl From<hashbrown::TryReserveError> for ReserveError {
    fn from(err: hashbrown::TryReserveError) -> Self {
        match err {
            hashbrown::TryReserveError::CapacityOverflow => Self::CapacityOverflow,
            hashbrown::TryReserveError::AllocError { layout } => Self::AllocError {
                bytes: layout.size(),
            },
        }
    }
}

/// The `Debug` text of a map's `OccupiedError` (ShardedMap's and ReadMostlyMap's read alike).
pub(crate) fn occupied_debug(
    f: &mut std::fmt::Formatter<'_>,
    key: &dyn std::fmt::Debug,
    current: &dyn std::fmt::Debug,
    value: &dyn std::fmt::Debug,
) -> std::fmt::Result {
    f.debug_struct("OccupiedError")
        .field("key", key)
        .field("current", current)
        .field("value", value)
        .finish()
}

/// The `Display` text of a map's `OccupiedError`.
pub(crate) fn occupied_display(
    f: &mut std::fmt::Formatter<'_>,
    key: &dyn std::fmt::Debug,
    current: &dyn std::fmt::Debug,
    value: &dyn std::fmt::Debug,
) -> std::fmt::Result {
    write!(
        f,
        "key {key:?} is already present with value {current:?}; {value:?} was not inserted"
    )
}
