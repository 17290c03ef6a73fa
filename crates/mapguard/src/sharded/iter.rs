//! Iterators over a [`ShardedMap`](super::ShardedMap).

use std::fmt;

use super::{KeyRef, Ref, Shard, Table};
use crate::raw::ReadGuard;

/// An iterator over the entries of a [`ShardedMap`](super::ShardedMap), yielding [`Ref`]s.
/// See [`ShardedMap::iter`](super::ShardedMap::iter) for what it sees under concurrent writes.
///
/// # Examples
/// ```
/// let map: mapguard::ShardedMap<u8, u8> = (0..5).map(|i| (i, i)).collect();
/// assert_eq!(map.iter().count(), 5);
/// ```
pub struct Iter<'a, K, V> {
    shards: &'a [Shard<K, V>],
    next_shard: usize,
    current: Option<ReadGuard<'a, Table<K, V>>>,
    next_bucket: usize,
}

impl<'a, K, V> Iter<'a, K, V> {
    pub(super) fn new(shards: &'a [Shard<K, V>]) -> Self {
        Self {
            shards,
            next_shard: 0,
            current: None,
            next_bucket: 0,
        }
    }
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = Ref<'a, K, V>;

    #[track_caller]
    fn next(&mut self) -> Option<Ref<'a, K, V>> {
        loop {
            if let Some(table) = &self.current {
                while self.next_bucket < table.num_buckets() {
                    let bucket = self.next_bucket;
                    self.next_bucket += 1;
                    if table.get_bucket(bucket).is_some() {
                        // A second read of a shard this thread reads never waits.
                        let guard = ReadGuard::reread(table);
                        return Some(Ref::new(ReadGuard::map(guard, |table| {
                            table
                                .get_bucket(bucket)
                                .expect("the shard is read-locked, so the bucket stays full")
                        })));
                    }
                }
                self.current = None;
            }
            let shard = self.shards.get(self.next_shard)?;
            self.next_shard += 1;
            self.next_bucket = 0;
            self.current = Some(shard.read());
        }
    }
}

impl<K, V> fmt::Debug for Iter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("next_shard", &self.next_shard)
            .finish_non_exhaustive()
    }
}

/// An iterator over the keys of a [`ShardedMap`](super::ShardedMap), yielding [`KeyRef`]s.
///
/// # Examples
/// ```
/// let map: mapguard::ShardedMap<u8, ()> = (0..3).map(|i| (i, ())).collect();
/// let mut keys: Vec<u8> = map.keys().map(|k| *k).collect();
/// keys.sort();
/// assert_eq!(keys, [0, 1, 2]);
/// ```
#[derive(Debug)]
pub struct Keys<'a, K, V> {
    inner: Iter<'a, K, V>,
}

impl<'a, K, V> Keys<'a, K, V> {
    pub(super) fn new(inner: Iter<'a, K, V>) -> Self {
        Self { inner }
    }
}

impl<'a, K, V> Iterator for Keys<'a, K, V> {
    type Item = KeyRef<'a, K, V>;

    #[track_caller]
    fn next(&mut self) -> Option<KeyRef<'a, K, V>> {
        self.inner.next().map(Ref::into_key_ref)
    }
}

/// An iterator over the values of a [`ShardedMap`](super::ShardedMap), yielding [`Ref`]s
/// (which deref to the value).
///
/// # Examples
/// ```
/// let map: mapguard::ShardedMap<u8, u32> = (0..3).map(|i| (i, 1)).collect();
/// assert_eq!(map.values().map(|v| *v).sum::<u32>(), 3);
/// ```
#[derive(Debug)]
pub struct Values<'a, K, V> {
    inner: Iter<'a, K, V>,
}

impl<'a, K, V> Values<'a, K, V> {
    pub(super) fn new(inner: Iter<'a, K, V>) -> Self {
        Self { inner }
    }
}

impl<'a, K, V> Iterator for Values<'a, K, V> {
    type Item = Ref<'a, K, V>;

    #[track_caller]
    fn next(&mut self) -> Option<Ref<'a, K, V>> {
        self.inner.next()
    }
}

/// The owning iterator of a [`ShardedMap`](super::ShardedMap), yielding `(K, V)`.
///
/// # Examples
/// ```
/// let map: mapguard::ShardedMap<u8, u8> = (0..3).map(|i| (i, i)).collect();
/// let mut pairs: Vec<(u8, u8)> = map.into_iter().collect();
/// pairs.sort();
/// assert_eq!(pairs, [(0, 0), (1, 1), (2, 2)]);
/// ```
pub struct IntoIter<K, V> {
    shards: std::vec::IntoIter<Shard<K, V>>,
    current: Option<hashbrown::hash_table::IntoIter<(K, V)>>,
}

impl<K, V> IntoIter<K, V> {
    pub(super) fn new(shards: Box<[Shard<K, V>]>) -> Self {
        Self {
            shards: shards.into_vec().into_iter(),
            current: None,
        }
    }
}

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        loop {
            if let Some(entry) = self.current.as_mut().and_then(Iterator::next) {
                return Some(entry);
            }
            let shard = self.shards.next()?;
            self.current = Some(shard.into_inner().into_inner().into_iter());
        }
    }
}

impl<K, V> fmt::Debug for IntoIter<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter").finish_non_exhaustive()
    }
}
