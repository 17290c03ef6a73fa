//! The entry API: one key's slot in a write-locked shard.

use std::fmt;
use std::hash::BuildHasher;

use super::{RefMut, Table};
use crate::raw::WriteGuard;

/// The entry for one key, from [`ShardedMap::entry`](super::ShardedMap::entry). Its shard
/// stays write-locked until the entry, or the [`RefMut`] it turns into, is dropped. Like
/// every guard it is `!Send`, and [`Sync`](crate#what-blocks-and-what-never-does) when `K` and `V` are (and `S`, for a vacant entry).
///
/// # Examples
/// ```
/// use mapguard::{Entry, ShardedMap};
///
/// let map = ShardedMap::new();
/// match map.entry("a") {
///     Entry::Occupied(_) => unreachable!(),
///     Entry::Vacant(v) => { v.insert(1); }
/// }
/// map.entry("a").and_modify(|v| *v += 1).or_insert(0);
/// assert_eq!(map.get_cloned("a"), Some(2));
/// ```
pub enum Entry<'a, K, V, S> {
    /// The key is present.
    Occupied(OccupiedEntry<'a, K, V>),
    /// The key is absent.
    Vacant(VacantEntry<'a, K, V, S>),
}

impl<'a, K, V, S: BuildHasher> Entry<'a, K, V, S>
where
    K: std::hash::Hash,
{
    /// The entry's key (for an occupied entry, the key passed to `entry`).
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ShardedMap<&str, u8> = mapguard::ShardedMap::new();
    /// assert_eq!(*map.entry("k").key(), "k");
    /// ```
    pub fn key(&self) -> &K {
        match self {
            Self::Occupied(entry) => entry.key(),
            Self::Vacant(entry) => entry.key(),
        }
    }

    /// A guard on the value, inserting `value` first if absent.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// *map.entry(1).or_insert(10) += 1;
    /// assert_eq!(map.get_cloned(&1), Some(11));
    /// ```
    pub fn or_insert(self, value: V) -> RefMut<'a, K, V> {
        self.or_insert_with(|| value)
    }

    /// A guard on the value, inserting `make()` first if absent. If `make` panics, nothing is
    /// inserted and the shard is unlocked.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.entry(1).or_insert_with(Vec::new).push(3);
    /// assert_eq!(map.get_cloned(&1), Some(vec![3]));
    /// ```
    pub fn or_insert_with(self, make: impl FnOnce() -> V) -> RefMut<'a, K, V> {
        match self {
            Self::Occupied(entry) => entry.into_ref(),
            Self::Vacant(entry) => entry.insert(make()),
        }
    }

    /// A guard on the value, inserting `V::default()` first if absent.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// *map.entry("n").or_default() += 5u32;
    /// assert_eq!(map.get_cloned("n"), Some(5));
    /// ```
    pub fn or_default(self) -> RefMut<'a, K, V>
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }

    /// Changes the value in place if present; returns the entry for chaining.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, 1);
    /// map.entry(1).and_modify(|v| *v *= 10);
    /// assert_eq!(map.get_cloned(&1), Some(10));
    /// ```
    pub fn and_modify(mut self, change: impl FnOnce(&mut V)) -> Self {
        if let Self::Occupied(entry) = &mut self {
            change(entry.get_mut());
        }
        self
    }

    /// Sets the value, present or not, and returns a guard on it.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// assert_eq!(*map.entry(1).insert_entry('x'), 'x');
    /// ```
    pub fn insert_entry(self, value: V) -> RefMut<'a, K, V> {
        match self {
            Self::Occupied(mut entry) => {
                entry.insert(value);
                entry.into_ref()
            }
            Self::Vacant(entry) => entry.insert(value),
        }
    }
}

/// An entry whose key is present. See [`Entry`].
///
/// # Examples
/// ```
/// use mapguard::Entry;
/// let map = mapguard::ShardedMap::new();
/// map.insert(1, 'a');
/// if let Entry::Occupied(e) = map.entry(1) {
///     assert_eq!(e.remove(), 'a');
/// }
/// assert!(map.is_empty());
/// ```
pub struct OccupiedEntry<'a, K, V> {
    guard: WriteGuard<'a, Table<K, V>>,
    index: usize,
    key: K,
}

impl<'a, K, V> OccupiedEntry<'a, K, V> {
    pub(super) fn new(guard: WriteGuard<'a, Table<K, V>>, index: usize, key: K) -> Self {
        Self { guard, index, key }
    }

    fn stored(&self) -> &(K, V) {
        self.guard
            .get_bucket(self.index)
            .expect("an occupied entry's bucket stays full while it holds the write lock")
    }

    fn stored_mut(&mut self) -> &mut (K, V) {
        self.guard
            .get_bucket_mut(self.index)
            .expect("an occupied entry's bucket stays full while it holds the write lock")
    }

    /// The stored key.
    ///
    /// # Examples
    /// ```
    /// use mapguard::Entry;
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, ());
    /// if let Entry::Occupied(e) = map.entry(1) { assert_eq!(*e.key(), 1); }
    /// ```
    pub fn key(&self) -> &K {
        &self.stored().0
    }

    pub(super) fn pair(&self) -> (&K, &V) {
        let (k, v) = self.stored();
        (k, v)
    }

    /// The value.
    ///
    /// # Examples
    /// ```
    /// use mapguard::Entry;
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, 5);
    /// if let Entry::Occupied(e) = map.entry(1) { assert_eq!(*e.get(), 5); }
    /// ```
    pub fn get(&self) -> &V {
        &self.stored().1
    }

    /// The value, mutably.
    ///
    /// # Examples
    /// ```
    /// use mapguard::Entry;
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, 5);
    /// if let Entry::Occupied(mut e) = map.entry(1) { *e.get_mut() = 6; }
    /// assert_eq!(map.get_cloned(&1), Some(6));
    /// ```
    pub fn get_mut(&mut self) -> &mut V {
        &mut self.stored_mut().1
    }

    /// Replaces the value, returning the old one.
    ///
    /// # Examples
    /// ```
    /// use mapguard::Entry;
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, 5);
    /// if let Entry::Occupied(mut e) = map.entry(1) { assert_eq!(e.insert(6), 5); }
    /// ```
    pub fn insert(&mut self, value: V) -> V {
        std::mem::replace(self.get_mut(), value)
    }

    /// Removes the entry, returning its value.
    ///
    /// # Examples
    /// ```
    /// use mapguard::Entry;
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, 5);
    /// if let Entry::Occupied(e) = map.entry(1) { assert_eq!(e.remove(), 5); }
    /// ```
    pub fn remove(self) -> V {
        self.remove_entry().1
    }

    /// Removes the entry, returning the stored key and the value.
    ///
    /// # Examples
    /// ```
    /// use mapguard::Entry;
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, 5);
    /// if let Entry::Occupied(e) = map.entry(1) { assert_eq!(e.remove_entry(), (1, 5)); }
    /// ```
    pub fn remove_entry(mut self) -> (K, V) {
        match self.guard.get_bucket_entry(self.index) {
            Ok(entry) => entry.remove().0,
            Err(_) => {
                unreachable!("an occupied entry's bucket stays full while it holds the write lock")
            }
        }
    }

    /// Turns the entry into a write guard on its value.
    ///
    /// # Examples
    /// ```
    /// use mapguard::Entry;
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, 5);
    /// if let Entry::Occupied(e) = map.entry(1) { *e.into_ref() += 1; }
    /// assert_eq!(map.get_cloned(&1), Some(6));
    /// ```
    pub fn into_ref(self) -> RefMut<'a, K, V> {
        drop(self.key);
        RefMut::new(self.guard, self.index)
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for OccupiedEntry<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OccupiedEntry")
            .field("key", self.key())
            .field("value", self.get())
            .finish()
    }
}

/// An entry whose key is absent. See [`Entry`].
///
/// # Examples
/// ```
/// use mapguard::Entry;
/// let map = mapguard::ShardedMap::new();
/// if let Entry::Vacant(v) = map.entry(1) {
///     assert_eq!(*v.insert('a'), 'a');
/// }
/// ```
pub struct VacantEntry<'a, K, V, S> {
    guard: WriteGuard<'a, Table<K, V>>,
    hash: u64,
    key: K,
    hasher: &'a S,
}

impl<'a, K, V, S> VacantEntry<'a, K, V, S> {
    pub(super) fn new(
        guard: WriteGuard<'a, Table<K, V>>,
        hash: u64,
        key: K,
        hasher: &'a S,
    ) -> Self {
        Self {
            guard,
            hash,
            key,
            hasher,
        }
    }

    /// The key that would be inserted.
    ///
    /// # Examples
    /// ```
    /// use mapguard::Entry;
    /// let map: mapguard::ShardedMap<u8, u8> = mapguard::ShardedMap::new();
    /// if let Entry::Vacant(v) = map.entry(3) { assert_eq!(*v.key(), 3); }
    /// ```
    pub fn key(&self) -> &K {
        &self.key
    }

    /// Gives the key back without inserting.
    ///
    /// # Examples
    /// ```
    /// use mapguard::Entry;
    /// let map: mapguard::ShardedMap<String, u8> = mapguard::ShardedMap::new();
    /// if let Entry::Vacant(v) = map.entry("k".into()) { assert_eq!(v.into_key(), "k"); }
    /// ```
    pub fn into_key(self) -> K {
        self.key
    }

    /// Inserts the value and returns a write guard on it.
    ///
    /// # Examples
    /// ```
    /// use mapguard::Entry;
    /// let map = mapguard::ShardedMap::new();
    /// if let Entry::Vacant(v) = map.entry(1) { *v.insert(1) += 1; }
    /// assert_eq!(map.get_cloned(&1), Some(2));
    /// ```
    pub fn insert(mut self, value: V) -> RefMut<'a, K, V>
    where
        K: std::hash::Hash,
        S: BuildHasher,
    {
        let hasher = self.hasher;
        let index = self
            .guard
            .insert_unique(self.hash, (self.key, value), |(k, _)| hasher.hash_one(k))
            .bucket_index();
        RefMut::new(self.guard, index)
    }
}

impl<K: fmt::Debug, V, S> fmt::Debug for VacantEntry<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VacantEntry").field(self.key()).finish()
    }
}
