//! The write observer: a hook called on every write with what, where and who.

use std::fmt;
use std::panic::Location;

/// A write operation, as told to an [`Observer`]: the name of the method that was called.
///
/// # Examples
/// ```
/// assert_eq!(mapguard::stats::WriteOp::Insert.name(), "insert");
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum WriteOp {
    /// `insert`.
    Insert,
    /// `try_insert`.
    TryInsert,
    /// `swap` (`ReadMostlyMap`).
    Swap,
    /// `remove` or `remove_entry`.
    Remove,
    /// `remove_if`.
    RemoveIf,
    /// `remove_if_eq` (`ReadMostlyMap`).
    RemoveIfEq,
    /// `compare_exchange` (`ReadMostlyMap`).
    CompareExchange,
    /// `get_or_insert` or `get_or_insert_with`, when the key was absent at first look.
    GetOrInsert,
    /// `compute`.
    Compute,
    /// `update`.
    Update,
    /// `entry`.
    Entry,
    /// `get_mut`.
    GetMut,
    /// `clear` (no key).
    Clear,
    /// `retain` (no key).
    Retain,
}

impl WriteOp {
    /// The method's name, as in the source.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(mapguard::stats::WriteOp::GetOrInsert.name(), "get_or_insert");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::TryInsert => "try_insert",
            Self::Swap => "swap",
            Self::Remove => "remove",
            Self::RemoveIf => "remove_if",
            Self::RemoveIfEq => "remove_if_eq",
            Self::CompareExchange => "compare_exchange",
            Self::GetOrInsert => "get_or_insert",
            Self::Compute => "compute",
            Self::Update => "update",
            Self::Entry => "entry",
            Self::GetMut => "get_mut",
            Self::Clear => "clear",
            Self::Retain => "retain",
        }
    }
}

impl fmt::Display for WriteOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One write call, as told to an [`Observer`].
///
/// # Examples
/// ```
/// use mapguard::stats::{Observer, WriteEvent};
///
/// struct Print;
/// impl Observer for Print {
///     fn on_write(&self, event: &WriteEvent<'_>) {
///         println!("{} of {:?} at {}", event.op, event.key_hash, event.location);
///     }
/// }
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug)]
pub struct WriteEvent<'a> {
    /// The map's name, if it was given one (`builder().name(..)`).
    pub map: Option<&'a str>,
    /// The method called.
    pub op: WriteOp,
    /// The hash of the key (by the map's hasher); `None` for `clear` and `retain`.
    pub key_hash: Option<u64>,
    /// The key's shard (`ShardedMap`); `None` for the other maps and for writes without a
    /// key.
    pub shard: Option<usize>,
    /// Where the method was called from (all write methods are `#[track_caller]`).
    pub location: &'static Location<'static>,
}

/// A hook called on every write to a map it is installed in (`builder().observer(..)`).
///
/// It runs on the writing thread, after the write, with the shard unlocked, except for
/// the methods that return a guard (`entry`, `get_mut`, `try_insert`, `get_or_insert*`),
/// where it runs while that guard holds the shard: writing to the same map from it panics
/// there (the map detects the self-deadlock). Keep it short; it is on the write path.
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use mapguard::stats::{Observer, WriteEvent};
///
/// #[derive(Default)]
/// struct CountWrites(AtomicUsize);
/// impl Observer for CountWrites {
///     fn on_write(&self, _: &WriteEvent<'_>) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let writes = Arc::new(CountWrites::default());
/// let map = mapguard::ShardedMap::builder().observer(writes.clone()).build()?;
/// map.insert(1, 1);
/// map.remove(&1);
/// assert_eq!(writes.0.load(Ordering::Relaxed), 2);
/// # Ok::<(), mapguard::BuildError>(())
/// ```
pub trait Observer: Send + Sync + 'static {
    /// Called once per write call.
    fn on_write(&self, event: &WriteEvent<'_>);
}

/// An [`Observer`] that emits one `tracing` event per write at TRACE level, target
/// `mapguard`, with the fields `map`, `op`, `key_hash`, `shard` and `location`.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// let map = mapguard::ShardedMap::builder()
///     .name("sessions")
///     .observer(Arc::new(mapguard::stats::TracingObserver))
///     .build()?;
/// map.insert("alice", 1); // a TRACE event if a subscriber listens
/// # Ok::<(), mapguard::BuildError>(())
/// ```
#[cfg(feature = "tracing")]
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingObserver;

#[cfg(feature = "tracing")]
impl Observer for TracingObserver {
    fn on_write(&self, event: &WriteEvent<'_>) {
        tracing::trace!(
            target: "mapguard",
            map = event.map.unwrap_or(""),
            op = event.op.name(),
            key_hash = event.key_hash,
            shard = event.shard,
            location = %event.location,
            "mapguard write"
        );
    }
}
