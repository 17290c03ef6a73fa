//! [`ShardedMapBuilder`]: checked construction of a [`ShardedMap`].

use std::fmt;
use std::marker::PhantomData;
#[cfg(feature = "stats")]
use std::sync::Arc;
use std::time::Duration;

use super::{DEFAULT_DEADLOCK_CHECK_AFTER, DefaultHashBuilder, ShardedMap, shard_count};
use crate::error::{BuildError, ReserveError};
#[cfg(feature = "stats")]
use crate::stats::Observer;
use crate::stats::Settings;

/// Settings for a [`ShardedMap`], checked by [`build`](Self::build).
///
/// # Examples
/// ```
/// use mapguard::ShardedMap;
///
/// let map: ShardedMap<u64, String, _> = ShardedMap::builder()
///     .shards(32)
///     .capacity(10_000)
///     .hasher(foldhash::fast::FixedState::with_seed(1))
///     .build()?;
/// assert_eq!(map.shard_count(), 32);
/// assert!(ShardedMap::<u64, u64>::builder().shards(0).build().is_err());
/// # Ok::<(), mapguard::BuildError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ShardedMapBuilder<K, V, S = DefaultHashBuilder> {
    shards: Option<usize>,
    capacity: usize,
    hasher: S,
    deadlock_check_after: Duration,
    settings: Settings<K>,
    _entries: PhantomData<fn() -> (K, V)>,
}

impl<K, V> ShardedMapBuilder<K, V, DefaultHashBuilder> {
    /// Default settings: [`default_shard_count`](crate::sharded::default_shard_count) shards, no capacity, the default hasher.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ShardedMap<u8, u8> = mapguard::ShardedMapBuilder::new().build()?;
    /// assert_eq!(map.shard_count(), mapguard::sharded::default_shard_count());
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn new() -> Self {
        Self {
            shards: None,
            capacity: 0,
            hasher: DefaultHashBuilder::default(),
            deadlock_check_after: DEFAULT_DEADLOCK_CHECK_AFTER,
            settings: Settings::default(),
            _entries: PhantomData,
        }
    }
}

impl<K, V> Default for ShardedMapBuilder<K, V, DefaultHashBuilder> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> ShardedMapBuilder<K, V, S> {
    /// The number of shards: a power of two from 1 to [`MAX_SHARDS`](crate::sharded::MAX_SHARDS).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::<u8, u8>::builder().shards(1).build()?;
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
    /// let map = mapguard::ShardedMap::<u8, u8>::builder().capacity(100).build()?;
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
    /// let map = mapguard::ShardedMap::<u8, u8>::builder()
    ///     .hasher(std::collections::hash_map::RandomState::new())
    ///     .build()?;
    /// map.insert(1, 1);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn hasher<T>(self, hasher: T) -> ShardedMapBuilder<K, V, T> {
        ShardedMapBuilder {
            shards: self.shards,
            capacity: self.capacity,
            hasher,
            deadlock_check_after: self.deadlock_check_after,
            settings: self.settings,
            _entries: PhantomData,
        }
    }

    /// How long a call waits for a shard before it checks whether it is part of a cross-thread
    /// deadlock (default [`DEFAULT_DEADLOCK_CHECK_AFTER`], 100 ms); it checks again each time
    /// this much longer has passed (at most once a millisecond). A check that finds threads
    /// waiting for each other in a cycle makes one of them panic with
    /// "mapguard: deadlock detected: ..." (see [the map's docs](ShardedMap#deadlocks), which
    /// also say what becomes of waits for leaked guards). A wait that is only long (a guard
    /// held for long elsewhere) never fails, whatever the threshold, and prints one stall line
    /// at ten times it; a lower threshold finds deadlocks sooner, and costs a few microseconds
    /// of checking per check on waits that long. `Duration::MAX` turns the checks off.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let map = mapguard::ShardedMap::<u8, u8>::builder()
    ///     .deadlock_check_after(Duration::from_millis(20))
    ///     .build()?;
    /// assert_eq!(map.deadlock_check_after(), Duration::from_millis(20));
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn deadlock_check_after(mut self, after: Duration) -> Self {
        self.deadlock_check_after = after;
        self
    }

    /// Records statistics (see [`crate::stats`]): read them with
    /// [`ShardedMap::stats`]. Off by default; off, each operation pays one predictable branch.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::builder().stats(true).build()?;
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
    /// let map = mapguard::ShardedMap::builder().stats(true).stats_keys(true).build()?;
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
    /// let map = mapguard::ShardedMap::<u8, u8>::builder().name("sessions").stats(true).build()?;
    /// assert_eq!(map.stats().unwrap().name.as_deref(), Some("sessions"));
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    #[cfg(feature = "stats")]
    pub fn name(mut self, name: &str) -> Self {
        self.settings.set_name(name);
        self
    }

    /// Calls `observer` on every write (see [`Observer`]).
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
    /// let map = mapguard::ShardedMap::builder().observer(log.clone()).build()?;
    /// map.insert(1, 1);
    /// assert_eq!(*log.0.lock().unwrap(), [WriteOp::Insert]);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    #[cfg(feature = "stats")]
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
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
    /// use mapguard::{BuildError, ShardedMap};
    /// let err = ShardedMap::<u8, u8>::builder().shards(1 << 20).build().unwrap_err();
    /// assert!(matches!(err, BuildError::TooManyShards { .. }));
    /// ```
    pub fn build(self) -> Result<ShardedMap<K, V, S>, BuildError> {
        let shards = shard_count(self.shards)?;
        let mut map = ShardedMap::from_parts(shards, self.hasher, &self.settings);
        for shard in map.shards.iter_mut() {
            shard.set_deadlock_check_after(self.deadlock_check_after);
        }
        if self.capacity > 0 {
            let capacity_error = |source| BuildError::Capacity {
                capacity: self.capacity,
                source,
            };
            // The whole capacity, not each shard's share: see `ShardedMap::try_reserve`.
            if self.capacity > isize::MAX as usize / std::mem::size_of::<(K, V)>().max(1) {
                return Err(capacity_error(ReserveError::CapacityOverflow));
            }
            let per_shard = self.capacity.div_ceil(shards);
            for shard in map.shards.iter_mut() {
                shard
                    .get_mut()
                    .try_reserve(per_shard, |_| {
                        unreachable!("an empty table has nothing to rehash")
                    })
                    .map_err(|err| capacity_error(err.into()))?;
            }
        }
        Ok(map)
    }
}

impl<K, V, S> fmt::Debug for ShardedMapBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedMapBuilder")
            .field("shards", &self.shards)
            .field("capacity", &self.capacity)
            .field("deadlock_check_after", &self.deadlock_check_after)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<K, V, S: Clone> Clone for ShardedMapBuilder<K, V, S> {
    fn clone(&self) -> Self {
        Self {
            shards: self.shards,
            capacity: self.capacity,
            hasher: self.hasher.clone(),
            deadlock_check_after: self.deadlock_check_after,
            settings: self.settings.clone(),
            _entries: PhantomData,
        }
    }
}
