//! [`StatsSnapshot`]: the figures of one map at one moment, and their derived rates.

use std::fmt;

/// The statistics of one map, read by `stats()`: see the [module docs](crate::stats) for
/// which figures are exact and which are sampled estimates.
///
/// Counters are summed over per-thread stripes one at a time while other threads may keep
/// counting: each is exact for the operations it saw, but a snapshot is not an atomic cut
/// (under concurrent writes, `inserts - removes_hit` need not equal `len` at any instant).
///
/// # Examples
/// ```
/// let map = mapguard::ShardedMap::builder().stats(true).build()?;
/// map.insert(1, "a");
/// assert!(map.get(&1).is_some());
/// assert!(map.get(&2).is_none());
/// let stats = map.stats().expect("statistics are on");
/// assert_eq!((stats.gets_hit, stats.gets_miss, stats.inserts), (1, 1, 1));
/// assert_eq!(stats.hit_rate(), 0.5);
/// println!("{stats}");
/// # Ok::<(), mapguard::BuildError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StatsSnapshot {
    /// `"ShardedMap"`, `"ReadMostlyMap"` or `"LockedMap"`.
    pub map_type: String,
    /// The name given with `builder().name(..)`, if any.
    pub name: Option<String>,
    /// Entries when the snapshot was taken.
    pub len: usize,
    /// Capacity when the snapshot was taken (slots for `ReadMostlyMap`).
    pub capacity: usize,
    /// Lookups that found their key (`get`, `get_cloned`, `contains_key`, `get_mut`). Exact.
    pub gets_hit: u64,
    /// Lookups that did not find their key. Exact.
    pub gets_miss: u64,
    /// Writes that added a key (`insert`, `swap`, and the insert of `try_insert`,
    /// `get_or_insert*`). Exact.
    pub inserts: u64,
    /// `insert`/`swap` calls that replaced the value of a present key. Exact.
    pub overwrites: u64,
    /// Removals that removed an entry (`remove`, `remove_entry`, `remove_if`,
    /// `remove_if_eq`). Exact.
    pub removes_hit: u64,
    /// Removals that removed nothing. Exact.
    pub removes_miss: u64,
    /// Read-modify-write calls (`compute`, `update`, `entry`, `compare_exchange`). Exact.
    pub computes: u64,
    /// `clear` calls. Exact.
    pub clears: u64,
    /// On average one access in this many per thread is sampled for hot keys and per-shard
    /// reads; sampled counts are multiplied by it.
    pub sample_period: u64,
    /// Per-shard lock figures: each shard of a `ShardedMap`, each shard's write lock of a
    /// `ReadMostlyMap` (its reads take no lock: `read_locks_estimate` is 0), and the one
    /// lock of a `LockedMap` as shard 0.
    pub shards: Vec<ShardStats>,
    /// The most accessed keys (reads and writes), most first, from the sampled sketch.
    pub hot_keys: Vec<HotKey>,
}

/// The figures of one shard: a shard of a `ShardedMap` or of a `ReadMostlyMap` (its write
/// lock), or the one lock of a `LockedMap`.
///
/// # Examples
/// ```
/// let map = mapguard::ShardedMap::builder().shards(2).stats(true).build()?;
/// map.insert(1, 1);
/// let stats = map.stats().unwrap();
/// assert_eq!(stats.shards.iter().map(|s| s.write_locks).sum::<u64>(), 1);
/// # Ok::<(), mapguard::BuildError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ShardStats {
    /// The shard's index.
    pub index: usize,
    /// Entries in the shard when it was read. Exact.
    pub entries: usize,
    /// Write-lock acquisitions (every write call, and each shard's share of `clear`,
    /// `retain`, `reserve`, `shrink_to_fit`; for `LockedMap`, the write calls). Exact.
    pub write_locks: u64,
    /// Read-lock acquisitions, estimated from sampled reads (`samples × sample_period`).
    pub read_locks_estimate: u64,
    /// Acquisitions (read or write) that had to wait. Exact count of slow-path waits: a
    /// `ShardedMap` write that first waited for another writer and then for readers counts
    /// twice. `LockedMap` and `ReadMostlyMap` try their lock first and count an acquisition
    /// whose try failed.
    pub contended: u64,
    /// Nanoseconds spent in those waits. Every contended wait is timed.
    pub wait_ns: u64,
}

impl ShardStats {
    /// Estimated operations on this shard: exact writes plus estimated reads.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::builder().shards(1).stats(true).build()?;
    /// map.insert(1, 1);
    /// assert!(map.stats().unwrap().shards[0].operations_estimate() >= 1);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn operations_estimate(&self) -> u64 {
        self.write_locks + self.read_locks_estimate
    }
}

/// A frequently accessed key, from the Space-Saving sketch over sampled accesses.
///
/// # Examples
/// ```
/// let map = mapguard::ShardedMap::builder().stats(true).stats_keys(true).build()?;
/// map.insert("hot", 1);
/// for _ in 0..10_000 {
///     assert!(map.get("hot").is_some());
/// }
/// let stats = map.stats().unwrap();
/// assert_eq!(stats.hot_keys[0].key.as_deref(), Some("\"hot\""));
/// # Ok::<(), mapguard::BuildError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HotKey {
    /// The key's hash (by the map's hasher).
    pub hash: u64,
    /// The key's `Debug` text, with `builder().stats_keys(true)` and once the key was sampled
    /// by an access that had the stored key at hand (a hit or a write).
    pub key: Option<String>,
    /// Estimated accesses (`sampled count × sample_period`); over-estimates the sampled
    /// count by at most `error`.
    pub count: u64,
    /// The most `count` may exceed the key's sampled accesses (times `sample_period`).
    pub error: u64,
}

impl HotKey {
    /// The fewest accesses the key certainly had in the sample, scaled: `count - error`.
    ///
    /// # Examples
    /// ```
    /// # let map = mapguard::ShardedMap::builder().stats(true).build()?;
    /// # map.insert(1, 1);
    /// # for _ in 0..1000 { map.get(&1); }
    /// let stats = map.stats().unwrap();
    /// assert!(stats.hot_keys[0].guaranteed() <= stats.hot_keys[0].count);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn guaranteed(&self) -> u64 {
        self.count - self.error
    }
}

impl StatsSnapshot {
    /// All lookups: `gets_hit + gets_miss`.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::<u8, u8>::builder().stats(true).build()?;
    /// map.get(&1);
    /// assert_eq!(map.stats().unwrap().gets(), 1);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn gets(&self) -> u64 {
        self.gets_hit + self.gets_miss
    }

    /// The share of lookups that found their key, from 0 to 1; 0 when there were no lookups
    /// (so that `hit_rate() + miss_rate()` is 1 after a lookup and 0 before).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::<u8, u8>::builder().stats(true).build()?;
    /// let stats = map.stats().unwrap();
    /// assert_eq!((stats.hit_rate(), stats.miss_rate()), (0.0, 0.0));
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn hit_rate(&self) -> f64 {
        ratio(self.gets_hit, self.gets())
    }

    /// The share of lookups that did not find their key; 0 when there were none.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::<u8, u8>::builder().stats(true).build()?;
    /// map.get(&1);
    /// assert_eq!(map.stats().unwrap().miss_rate(), 1.0);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn miss_rate(&self) -> f64 {
        ratio(self.gets_miss, self.gets())
    }

    /// All counted operations: lookups, inserts, overwrites, removals, computes and clears.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::builder().stats(true).build()?;
    /// map.insert(1, 1);
    /// map.remove(&1);
    /// assert_eq!(map.stats().unwrap().operations(), 2);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn operations(&self) -> u64 {
        self.gets()
            + self.inserts
            + self.overwrites
            + self.removes_hit
            + self.removes_miss
            + self.computes
            + self.clears
    }

    /// The shard with the most estimated operations and its skew: its operations divided by
    /// the mean over all shards. `None` without shards or before any operation.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::builder().shards(4).stats(true).build()?;
    /// assert_eq!(map.stats().unwrap().hottest_shard(), None);
    /// map.insert(1, 1);
    /// let (_, skew) = map.stats().unwrap().hottest_shard().unwrap();
    /// assert_eq!(skew, 4.0); // one shard had every operation
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn hottest_shard(&self) -> Option<(usize, f64)> {
        let total: u64 = self
            .shards
            .iter()
            .map(ShardStats::operations_estimate)
            .sum();
        if total == 0 {
            return None;
        }
        let hottest = self
            .shards
            .iter()
            .max_by_key(|s| (s.operations_estimate(), std::cmp::Reverse(s.index)))?;
        let mean = total as f64 / self.shards.len() as f64;
        Some((hottest.index, hottest.operations_estimate() as f64 / mean))
    }

    /// Contended acquisitions over all shards.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::<u8, u8>::builder().stats(true).build()?;
    /// assert_eq!(map.stats().unwrap().contended(), 0);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn contended(&self) -> u64 {
        self.shards.iter().map(|s| s.contended).sum()
    }

    /// Nanoseconds waited over all shards.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::<u8, u8>::builder().stats(true).build()?;
    /// assert_eq!(map.stats().unwrap().wait_ns(), 0);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn wait_ns(&self) -> u64 {
        self.shards.iter().map(|s| s.wait_ns).sum()
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// A small table: counters and rates, the hottest shard, the top hot keys.
impl fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{} {name:?}", self.map_type)?,
            None => write!(f, "{}", self.map_type)?,
        }
        writeln!(f, ": len {}, capacity {}", self.len, self.capacity)?;
        let rows: [(&str, u64, Option<f64>); 9] = [
            ("gets hit", self.gets_hit, Some(self.hit_rate())),
            ("gets miss", self.gets_miss, Some(self.miss_rate())),
            ("inserts", self.inserts, None),
            ("overwrites", self.overwrites, None),
            ("removes hit", self.removes_hit, None),
            ("removes miss", self.removes_miss, None),
            ("computes", self.computes, None),
            ("clears", self.clears, None),
            ("operations", self.operations(), None),
        ];
        writeln!(f, "  {:<14} {:>14} {:>8}", "counter", "count", "rate")?;
        for (label, count, rate) in rows {
            match rate {
                Some(rate) => writeln!(f, "  {label:<14} {count:>14} {:>7.2}%", rate * 100.0)?,
                None => writeln!(f, "  {label:<14} {count:>14} {:>8}", "")?,
            }
        }
        if !self.shards.is_empty() {
            write!(
                f,
                "  shards: {}, contended {}, waited {} µs",
                self.shards.len(),
                self.contended(),
                self.wait_ns() / 1000
            )?;
            match self.hottest_shard() {
                Some((index, skew)) => writeln!(f, ", hottest #{index} at {skew:.2}× mean")?,
                None => writeln!(f)?,
            }
        }
        if !self.hot_keys.is_empty() {
            writeln!(
                f,
                "  {:<4} {:<24} {:>14} {:>12}",
                "hot", "key", "≈count", "±error"
            )?;
            for (rank, hot) in self.hot_keys.iter().take(5).enumerate() {
                let key = hot
                    .key
                    .clone()
                    .unwrap_or_else(|| format!("#{:016x}", hot.hash));
                writeln!(
                    f,
                    "  {:<4} {:<24} {:>14} {:>12}",
                    rank + 1,
                    key,
                    hot.count,
                    hot.error
                )?;
            }
        }
        Ok(())
    }
}
