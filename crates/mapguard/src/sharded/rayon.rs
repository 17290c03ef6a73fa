//! Parallel iteration with `rayon` (feature `rayon`): one task per shard.

use std::hash::BuildHasher;

use rayon::prelude::*;

use super::ShardedMap;

impl<K, V, S> ShardedMap<K, V, S>
where
    K: Send + Sync,
    V: Send + Sync,
    S: BuildHasher + Sync,
{
    /// Calls `visit` for every entry, shards in parallel, each shard read-locked while it is
    /// visited. Same guarantees as [`iter`](Self::iter).
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let map: mapguard::ShardedMap<u64, u64> = (0..1000).map(|i| (i, i)).collect();
    /// let sum = AtomicU64::new(0);
    /// map.par_for_each(|_, v| { sum.fetch_add(*v, Ordering::Relaxed); });
    /// assert_eq!(sum.into_inner(), 499_500);
    /// ```
    pub fn par_for_each(&self, visit: impl Fn(&K, &V) + Sync + Send) {
        self.shards.par_iter().for_each(|shard| {
            for (k, v) in shard.read().iter() {
                visit(k, v);
            }
        });
    }

    /// Keeps only the entries for which `keep` returns `true`, shards in parallel.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ShardedMap<u64, u64> = (0..100).map(|i| (i, i)).collect();
    /// map.par_retain(|k, _| k % 10 == 0);
    /// assert_eq!(map.len(), 10);
    /// ```
    pub fn par_retain(&self, keep: impl Fn(&K, &mut V) -> bool + Sync + Send) {
        self.shards.par_iter().for_each(|shard| {
            shard.write().retain(|(k, v)| keep(k, v));
        });
    }

    /// Consumes the map into a parallel iterator over its entries.
    ///
    /// # Examples
    /// ```
    /// use rayon::prelude::*;
    /// let map: mapguard::ShardedMap<u64, u64> = (0..100).map(|i| (i, 2 * i)).collect();
    /// let total: u64 = map.into_par_iter().map(|(_, v)| v).sum();
    /// assert_eq!(total, 9_900);
    /// ```
    pub fn into_par_iter(self) -> impl ParallelIterator<Item = (K, V)> {
        self.shards
            .into_boxed()
            .into_vec()
            .into_par_iter()
            .flat_map_iter(|shard| shard.into_inner().into_inner().into_iter())
    }
}
