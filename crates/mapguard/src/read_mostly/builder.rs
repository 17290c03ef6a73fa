//! [`ReadMostlyMapBuilder`]: checked construction of a [`ReadMostlyMap`].

use std::fmt;
use std::marker::PhantomData;

use super::{DefaultHashBuilder, ReadMostlyMap};
use crate::error::BuildError;
use crate::raw::read_mostly::RawReadMostly;
use crate::sharded::shard_count;

/// Settings for a [`ReadMostlyMap`], checked by [`build`](Self::build).
///
/// # Examples
/// ```
/// use mapguard::ReadMostlyMap;
///
/// let map: ReadMostlyMap<u64, String, _> = ReadMostlyMap::builder()
///     .shards(32)
///     .capacity(10_000)
///     .hasher(foldhash::fast::FixedState::with_seed(1))
///     .build()?;
/// assert_eq!(map.shard_count(), 32);
/// assert!(ReadMostlyMap::<u64, u64>::builder().shards(0).build().is_err());
/// # Ok::<(), mapguard::BuildError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ReadMostlyMapBuilder<K, V, S = DefaultHashBuilder> {
    shards: Option<usize>,
    capacity: usize,
    hasher: S,
    settings: crate::stats::Settings<K>,
    _entries: PhantomData<fn() -> (K, V)>,
}

impl<K, V> ReadMostlyMapBuilder<K, V, DefaultHashBuilder> {
    /// Default settings: [`default_shard_count`](crate::sharded::default_shard_count) shards, no capacity, the default hasher.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ReadMostlyMap<u8, u8> = mapguard::ReadMostlyMapBuilder::new().build()?;
    /// assert_eq!(map.shard_count(), mapguard::sharded::default_shard_count());
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn new() -> Self {
        Self {
            shards: None,
            capacity: 0,
            hasher: DefaultHashBuilder::default(),
            settings: crate::stats::Settings::default(),
            _entries: PhantomData,
        }
    }
}

impl<K, V> Default for ReadMostlyMapBuilder<K, V, DefaultHashBuilder> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> ReadMostlyMapBuilder<K, V, S> {
    /// The number of shards: a power of two from 1 to [`MAX_SHARDS`](crate::sharded::MAX_SHARDS). Writers of new keys in
    /// different shards do not wait for each other; readers do not care.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::<u8, u8>::builder().shards(1).build()?;
    /// assert_eq!(map.shard_count(), 1);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Room for about `capacity` entries, spread evenly over the shards.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::<u8, u8>::builder().capacity(100).build()?;
    /// assert!(map.capacity() >= 100);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The hasher for keys.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::<u8, u8>::builder()
    ///     .hasher(std::collections::hash_map::RandomState::new())
    ///     .build()?;
    /// map.insert(1, 1);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn hasher<T>(self, hasher: T) -> ReadMostlyMapBuilder<K, V, T> {
        ReadMostlyMapBuilder {
            shards: self.shards,
            capacity: self.capacity,
            hasher,
            settings: self.settings,
            _entries: PhantomData,
        }
    }

    /// Records statistics (see [`crate::stats`]): read them with `stats()`. Off by default;
    /// off, each operation pays one predictable branch.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::builder().stats(true).build()?;
    /// map.insert(1, 1);
    /// assert_eq!(map.stats().unwrap().inserts, 1);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    #[cfg(feature = "stats")]
    pub fn stats(mut self, on: bool) -> Self {
        self.settings.set_stats(on);
        self
    }

    /// Reports the hot keys' `Debug` text as well as their hashes (with [`stats`](Self::stats)).
    /// The text is made once per key that enters the hot-key sketch, never per operation.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::builder().stats(true).stats_keys(true).build()?;
    /// map.insert(7u32, ());
    /// for _ in 0..1000 {
    ///     map.get(&7);
    /// }
    /// assert_eq!(map.stats().unwrap().hot_keys[0].key.as_deref(), Some("7"));
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    #[cfg(feature = "stats")]
    pub fn stats_keys(mut self, on: bool) -> Self
    where
        K: fmt::Debug,
    {
        self.settings.set_stats_keys(on);
        self
    }

    /// A name for the map, reported in snapshots, to observers and as the `map` label of the
    /// exports.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::<u8, u8>::builder().name("cache").stats(true).build()?;
    /// assert_eq!(map.stats().unwrap().name.as_deref(), Some("cache"));
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    #[cfg(feature = "stats")]
    pub fn name(mut self, name: &str) -> Self {
        self.settings.set_name(name);
        self
    }

    /// Calls `observer` on every write (see [`Observer`](crate::stats::Observer)).
    ///
    /// # Examples
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use mapguard::stats::{Observer, WriteEvent, WriteOp};
    ///
    /// #[derive(Default)]
    /// struct Log(Mutex<Vec<WriteOp>>);
    /// impl Observer for Log {
    ///     fn on_write(&self, event: &WriteEvent<'_>) {
    ///         self.0.lock().unwrap().push(event.op());
    ///     }
    /// }
    /// let log = Arc::new(Log::default());
    /// let map = mapguard::ReadMostlyMap::builder().observer(log.clone()).build()?;
    /// map.insert(1, 1);
    /// assert_eq!(*log.0.lock().unwrap(), [WriteOp::Insert]);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    #[cfg(feature = "stats")]
    pub fn observer(mut self, observer: std::sync::Arc<dyn crate::stats::Observer>) -> Self {
        self.settings.set_observer(observer);
        self
    }

    /// Checks the settings and builds the map.
    ///
    /// # Errors
    /// [`BuildError`] if the shard count is 0, not a power of two or above [`MAX_SHARDS`](crate::sharded::MAX_SHARDS), or if
    /// the capacity cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use mapguard::{BuildError, ReadMostlyMap};
    /// let err = ReadMostlyMap::<u8, u8>::builder().shards(6).build().unwrap_err();
    /// assert_eq!(err, BuildError::ShardsNotPowerOfTwo { shards: 6 });
    /// let err = ReadMostlyMap::<u8, u8>::builder().capacity(usize::MAX).build().unwrap_err();
    /// assert!(matches!(err, BuildError::Capacity { .. }));
    /// ```
    pub fn build(self) -> Result<ReadMostlyMap<K, V, S>, BuildError> {
        let shards = shard_count(self.shards)?;
        let raw =
            RawReadMostly::new(shards, self.capacity).map_err(|source| BuildError::Capacity {
                capacity: self.capacity,
                source,
            })?;
        Ok(ReadMostlyMap::from_raw(raw, self.hasher, &self.settings))
    }
}

impl<K, V, S> fmt::Debug for ReadMostlyMapBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadMostlyMapBuilder")
            .field("shards", &self.shards)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<K, V, S: Clone> Clone for ReadMostlyMapBuilder<K, V, S> {
    fn clone(&self) -> Self {
        Self {
            shards: self.shards,
            capacity: self.capacity,
            hasher: self.hasher.clone(),
            settings: self.settings.clone(),
            _entries: PhantomData,
        }
    }
}
