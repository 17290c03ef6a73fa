//! Parallel iteration and filling with `rayon` (feature `rayon`): one task per shard.

use std::hash::{BuildHasher, Hash};
use std::panic::Location;

use rayon::prelude::*;

use super::ReadMostlyMap;
use crate::stats::WriteOp;

impl<K, V, S> ReadMostlyMap<K, V, S>
where
    K: Hash + Eq + Send + Sync,
    V: Send + Sync,
    S: BuildHasher + Sync,
{
    /// Calls `visit` for every entry, shards in parallel. Takes no lock; each shard is seen
    /// as [`iter`](Self::iter) sees it (every entry present throughout is visited once, with
    /// a whole value).
    ///
    /// # Panics
    /// Before any work, if the calling thread holds a shard's write lock of this map (it was
    /// called from a closure of [`compute`](Self::compute), [`update`](Self::update),
    /// [`remove_if`](Self::remove_if) or [`retain`](Self::retain)): `visit` could write to
    /// that shard from another thread, which would wait for this one while this one waits
    /// for it. Also if `visit` panics (after the other shards are done).
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let map: mapguard::ReadMostlyMap<u64, u64> = (0..1000).map(|i| (i, i)).collect();
    /// let sum = AtomicU64::new(0);
    /// map.par_for_each(|_, v| { sum.fetch_add(*v, Ordering::Relaxed); });
    /// assert_eq!(sum.into_inner(), 499_500);
    /// ```
    #[track_caller]
    pub fn par_for_each(&self, visit: impl Fn(&K, &V) + Sync + Send) {
        self.raw
            .assert_no_write_lock_here("par_for_each", Location::caller());
        (0..self.raw.shard_count())
            .into_par_iter()
            .for_each(|shard| {
                for entry in self.raw.iter_shards(shard..shard + 1) {
                    visit(entry.key(), entry.value());
                }
            });
    }

    /// Keeps only the entries for which `keep` returns `true`, shards in parallel, each under
    /// its write lock while it is filtered, as [`retain`](Self::retain) does.
    ///
    /// # Panics
    /// Before any work, if the calling thread holds a shard's write lock of this map (see
    /// [`par_for_each`](Self::par_for_each)). If `keep` panics, as [`retain`](Self::retain)
    /// says; if `keep` writes to the shard it is filtering, with "deadlock avoided".
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ReadMostlyMap<u64, u64> = (0..100).map(|i| (i, i)).collect();
    /// map.par_retain(|k, _| k % 10 == 0);
    /// assert_eq!(map.len(), 10);
    /// ```
    #[track_caller]
    pub fn par_retain(&self, keep: impl Fn(&K, &V) -> bool + Sync + Send) {
        let site = Location::caller();
        self.raw.assert_no_write_lock_here("par_retain", site);
        (0..self.raw.shard_count())
            .into_par_iter()
            .for_each(|shard| {
                self.raw
                    .retain_shards(shard..shard + 1, &keep, &|k| self.hash(k), site);
            });
        self.note_write(WriteOp::Retain, None, None, None, site);
    }
}

/// Inserts the items in parallel (a later item for a key present overwrites, in no particular
/// order among items of the same key).
///
/// # Examples
/// ```
/// use rayon::prelude::*;
/// let mut map = mapguard::ReadMostlyMap::new();
/// map.par_extend((0..1000u64).into_par_iter().map(|i| (i, i * 2)));
/// assert_eq!(map.len(), 1000);
/// assert_eq!(map.get_cloned(&7), Some(14));
/// ```
impl<K, V, S> ParallelExtend<(K, V)> for ReadMostlyMap<K, V, S>
where
    K: Hash + Eq + Send + Sync,
    V: Send + Sync,
    S: BuildHasher + Sync,
{
    fn par_extend<I: IntoParallelIterator<Item = (K, V)>>(&mut self, items: I) {
        let map = &*self;
        items.into_par_iter().for_each(|(key, value)| {
            map.insert(key, value);
        });
    }
}

/// Builds a map from a parallel iterator (see [`ParallelExtend`] for duplicate keys).
///
/// # Examples
/// ```
/// use rayon::prelude::*;
/// let map: mapguard::ReadMostlyMap<u64, u64> =
///     (0..1000u64).into_par_iter().map(|i| (i, i)).collect();
/// assert_eq!(map.len(), 1000);
/// ```
impl<K, V, S> FromParallelIterator<(K, V)> for ReadMostlyMap<K, V, S>
where
    K: Hash + Eq + Send + Sync,
    V: Send + Sync,
    S: BuildHasher + Default + Sync,
{
    fn from_par_iter<I: IntoParallelIterator<Item = (K, V)>>(items: I) -> Self {
        let mut map = Self::with_hasher(S::default());
        map.par_extend(items);
        map
    }
}
