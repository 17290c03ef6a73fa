//! The write observer: a hook called on every write with what, where and who.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;

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

impl WriteOp {
    /// Whether the method writes one key (all but `clear` and `retain`).
    ///
    /// # Examples
    /// ```
    /// use mapguard::stats::WriteOp;
    /// assert!(WriteOp::Insert.has_key());
    /// assert!(!WriteOp::Clear.has_key());
    /// ```
    #[inline]
    pub fn has_key(self) -> bool {
        !matches!(self, Self::Clear | Self::Retain)
    }
}

impl fmt::Display for WriteOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One write call, as told to an [`Observer`]: the method ([`op`](Self::op)), the key's hash
/// ([`key_hash`](Self::key_hash)) and shard ([`shard`](Self::shard)), the caller
/// ([`location`](Self::location)) and the map's name ([`map`](Self::map)).
///
/// The map builds it on the writing thread's stack from what it has at hand (the hash, the
/// method, the caller and a reference to the map's label); the shard is derived from the
/// hash only when asked for.
///
/// # Examples
/// ```
/// use mapguard::stats::{Observer, WriteEvent};
///
/// struct Print;
/// impl Observer for Print {
///     fn on_write(&self, event: &WriteEvent<'_>) {
///         println!(
///             "{} of {:?} in shard {:?} of {:?} at {}",
///             event.op(),
///             event.key_hash(),
///             event.shard(),
///             event.map(),
///             event.location()
///         );
///     }
/// }
/// ```
#[derive(Clone, Copy)]
pub struct WriteEvent<'a> {
    /// Meaningless for the writes without a key (see [`WriteOp::has_key`]).
    key_hash: u64,
    location: &'static Location<'static>,
    label: &'a MapLabel,
    op: WriteOp,
}

/// What a map tells every write event about itself: its name and, for a map that reports
/// shards, how a hash picks one. Built once with the map.
#[derive(Debug)]
pub(crate) struct MapLabel {
    name: Option<Arc<str>>,
    /// `shards - 1` for a map whose events report a shard (`ShardedMap`).
    shard_mask: Option<usize>,
}

impl MapLabel {
    pub(crate) fn new(name: Option<Arc<str>>, shard_mask: Option<usize>) -> Self {
        Self { name, shard_mask }
    }
}

impl<'a> WriteEvent<'a> {
    /// An event of `op` on a key hashing to `key_hash` (ignored when `op` has no key).
    #[inline(always)]
    pub(crate) fn new(
        label: &'a MapLabel,
        op: WriteOp,
        key_hash: u64,
        location: &'static Location<'static>,
    ) -> Self {
        Self {
            key_hash,
            location,
            label,
            op,
        }
    }

    /// The method called.
    ///
    /// # Examples
    /// ```
    /// # use mapguard::stats::{Observer, WriteEvent, WriteOp};
    /// struct Inserts(std::sync::atomic::AtomicU64);
    /// impl Observer for Inserts {
    ///     fn on_write(&self, event: &WriteEvent<'_>) {
    ///         if event.op() == WriteOp::Insert {
    ///             self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ///         }
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn op(&self) -> WriteOp {
        self.op
    }

    /// The hash of the key (by the map's hasher); `None` for `clear` and `retain`.
    ///
    /// # Examples
    /// ```
    /// # use mapguard::stats::{Observer, WriteEvent};
    /// struct Keys(std::sync::Mutex<Vec<u64>>);
    /// impl Observer for Keys {
    ///     fn on_write(&self, event: &WriteEvent<'_>) {
    ///         if let Some(hash) = event.key_hash() {
    ///             self.0.lock().unwrap().push(hash);
    ///         }
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn key_hash(&self) -> Option<u64> {
        self.op.has_key().then_some(self.key_hash)
    }

    /// The key's shard (`ShardedMap`), derived from the hash as the map does; `None` for the
    /// other maps and for writes without a key.
    ///
    /// # Examples
    /// ```
    /// # use mapguard::stats::{Observer, WriteEvent};
    /// struct Shards(std::sync::Mutex<Vec<usize>>);
    /// impl Observer for Shards {
    ///     fn on_write(&self, event: &WriteEvent<'_>) {
    ///         self.0.lock().unwrap().extend(event.shard());
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn shard(&self) -> Option<usize> {
        let mask = self.label.shard_mask?;
        Some(crate::raw::pow2::shard_of(self.key_hash()?, mask))
    }

    /// Where the method was called from (all write methods are `#[track_caller]`).
    ///
    /// # Examples
    /// ```
    /// # use mapguard::stats::{Observer, WriteEvent};
    /// struct Sites;
    /// impl Observer for Sites {
    ///     fn on_write(&self, event: &WriteEvent<'_>) {
    ///         eprintln!("write at {}:{}", event.location().file(), event.location().line());
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// The map's name, if it was given one (`builder().name(..)`).
    ///
    /// # Examples
    /// ```
    /// # use mapguard::stats::{Observer, WriteEvent};
    /// struct Names;
    /// impl Observer for Names {
    ///     fn on_write(&self, event: &WriteEvent<'_>) {
    ///         eprintln!("write to {}", event.map().unwrap_or("an unnamed map"));
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn map(&self) -> Option<&'a str> {
        self.label.name.as_deref()
    }
}

impl fmt::Debug for WriteEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteEvent")
            .field("map", &self.map())
            .field("op", &self.op)
            .field("key_hash", &self.key_hash())
            .field("shard", &self.shard())
            .field("location", &self.location)
            .finish()
    }
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
            map = event.map().unwrap_or(""),
            op = event.op().name(),
            key_hash = event.key_hash(),
            shard = event.shard(),
            location = %event.location(),
            "mapguard write"
        );
    }
}
