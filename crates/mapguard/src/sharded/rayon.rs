//! Parallel iteration with `rayon` (feature `rayon`): one task per shard.

use std::hash::BuildHasher;
use std::panic::Location;

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
    /// # Panics
    /// Before any work, if the calling thread holds a guard into this map: the threads that
    /// visit the shards could wait for it (behind a writer queued on its shard) while this
    /// thread waits for them. Also if `visit` panics (after the other shards are done).
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let map: mapguard::ShardedMap<u64, u64> = (0..1000).map(|i| (i, i)).collect();
    /// let sum = AtomicU64::new(0);
    /// map.par_for_each(|_, v| { sum.fetch_add(*v, Ordering::Relaxed); });
    /// assert_eq!(sum.into_inner(), 499_500);
    /// ```
    #[track_caller]
    pub fn par_for_each(&self, visit: impl Fn(&K, &V) + Sync + Send) {
        self.assert_no_guard_here("par_for_each", Location::caller());
        self.shards.par_iter().for_each(|shard| {
            for (k, v) in shard.read().iter() {
                visit(k, v);
            }
        });
    }

    /// Keeps only the entries for which `keep` returns `true`, shards in parallel.
    ///
    /// # Panics
    /// Before any work, if the calling thread holds a guard into this map (the threads that
    /// write the shards would wait for it while this thread waits for them). If `keep` panics,
    /// as [`retain`](Self::retain) says.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ShardedMap<u64, u64> = (0..100).map(|i| (i, i)).collect();
    /// map.par_retain(|k, _| k % 10 == 0);
    /// assert_eq!(map.len(), 10);
    /// ```
    #[track_caller]
    pub fn par_retain(&self, keep: impl Fn(&K, &mut V) -> bool + Sync + Send) {
        self.assert_no_guard_here("par_retain", Location::caller());
        self.shards.par_iter().for_each(|shard| {
            shard.write().retain(|(k, v)| keep(k, v));
        });
    }

    /// Panics if this thread holds a guard on any shard (see `par_retain`).
    fn assert_no_guard_here(&self, what: &str, site: &'static Location<'static>) {
        for shard in self.shards.iter() {
            shard.assert_not_held_for(what, site);
        }
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
