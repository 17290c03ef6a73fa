//! Guards that give access to entries: [`Ref`], [`KeyRef`], [`RefMut`], and the error of
//! [`try_insert`](super::ShardedMap::try_insert).

use std::fmt;
use std::ops::{Deref, DerefMut};

use super::Table;
use crate::raw::{ReadGuard, WriteGuard};

/// A read guard on one entry of a [`ShardedMap`](super::ShardedMap); derefs to the value.
///
/// While it lives, its shard is read-locked: writers to that shard wait, and a write to that
/// shard from the same thread panics instead of deadlocking. It cannot be sent to another
/// thread (`!Send`), but it can be shared with one: it is [`Sync`](crate#what-blocks-and-what-never-does) when `K` and `V` are. It
/// cannot outlive its map.
///
/// # Examples
/// ```
/// let map = mapguard::ShardedMap::new();
/// map.insert("k", 1);
/// let entry = map.get("k").unwrap();
/// assert_eq!((entry.key(), entry.value()), (&"k", &1));
/// assert_eq!(*entry + 1, 2);
/// ```
pub struct Ref<'a, K, V> {
    guard: ReadGuard<'a, Table<K, V>, (K, V)>,
}

impl<'a, K, V> Ref<'a, K, V> {
    pub(super) fn new(guard: ReadGuard<'a, Table<K, V>, (K, V)>) -> Self {
        Self { guard }
    }

    /// The entry's key.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(5, ());
    /// assert_eq!(*map.get(&5).unwrap().key(), 5);
    /// ```
    pub fn key(&self) -> &K {
        &self.guard.0
    }

    /// The entry's value.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(5, 'v');
    /// assert_eq!(*map.get(&5).unwrap().value(), 'v');
    /// ```
    pub fn value(&self) -> &V {
        &self.guard.1
    }

    /// The key and the value.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, 2);
    /// assert_eq!(map.get(&1).unwrap().pair(), (&1, &2));
    /// ```
    pub fn pair(&self) -> (&K, &V) {
        (&self.guard.0, &self.guard.1)
    }

    /// The index of the shard this entry lives in.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, 2);
    /// assert!(map.get(&1).unwrap().shard() < map.shard_count());
    /// ```
    pub fn shard(&self) -> usize {
        ReadGuard::shard_index(&self.guard)
    }

    /// A guard on the key alone, keeping the same shard read-locked.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, 2);
    /// let key = map.get(&1).unwrap().into_key_ref();
    /// assert_eq!(*key, 1);
    /// ```
    pub fn into_key_ref(self) -> KeyRef<'a, K, V> {
        KeyRef {
            guard: ReadGuard::map(self.guard, |(k, _)| k),
        }
    }
}

impl<K, V> Deref for Ref<'_, K, V> {
    type Target = V;

    fn deref(&self) -> &V {
        self.value()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Ref<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ref")
            .field("key", self.key())
            .field("value", self.value())
            .finish()
    }
}

/// A read guard on one key of a [`ShardedMap`](super::ShardedMap), as yielded by
/// [`keys`](super::ShardedMap::keys); derefs to the key. Same locking as [`Ref`].
///
/// # Examples
/// ```
/// let map = mapguard::ShardedMap::new();
/// map.insert(9, ());
/// assert_eq!(*map.keys().next().unwrap(), 9);
/// ```
pub struct KeyRef<'a, K, V> {
    guard: ReadGuard<'a, Table<K, V>, K>,
}

impl<K, V> Deref for KeyRef<'_, K, V> {
    type Target = K;

    fn deref(&self) -> &K {
        &self.guard
    }
}

impl<K: fmt::Debug, V> fmt::Debug for KeyRef<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A write guard on one entry of a [`ShardedMap`](super::ShardedMap); derefs (mutably) to the
/// value. While it lives its shard is write-locked: every other access to that shard waits,
/// and one from this thread panics. `!Send`; [`Sync`](crate#what-blocks-and-what-never-does) when `K` and `V` are.
///
/// # Examples
/// ```
/// let map = mapguard::ShardedMap::new();
/// map.insert(1, String::from("a"));
/// map.get_mut(&1).unwrap().push('b');
/// assert_eq!(map.get_cloned(&1).as_deref(), Some("ab"));
/// ```
pub struct RefMut<'a, K, V> {
    guard: WriteGuard<'a, Table<K, V>>,
    /// Bucket of the entry in the shard's table; stable while the write lock is held and the
    /// table is not changed through anything but this guard.
    index: usize,
}

impl<'a, K, V> RefMut<'a, K, V> {
    pub(super) fn new(guard: WriteGuard<'a, Table<K, V>>, index: usize) -> Self {
        Self { guard, index }
    }

    fn entry(&self) -> &(K, V) {
        self.guard
            .get_bucket(self.index)
            .expect("a RefMut's bucket stays full while it holds the write lock")
    }

    fn entry_mut(&mut self) -> &mut (K, V) {
        self.guard
            .get_bucket_mut(self.index)
            .expect("a RefMut's bucket stays full while it holds the write lock")
    }

    /// The entry's key.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(4, 0);
    /// assert_eq!(*map.get_mut(&4).unwrap().key(), 4);
    /// ```
    pub fn key(&self) -> &K {
        &self.entry().0
    }

    /// The entry's value.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(4, 7);
    /// assert_eq!(*map.get_mut(&4).unwrap().value(), 7);
    /// ```
    pub fn value(&self) -> &V {
        &self.entry().1
    }

    /// The entry's value, mutably.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(4, 7);
    /// *map.get_mut(&4).unwrap().value_mut() = 8;
    /// assert_eq!(map.get_cloned(&4), Some(8));
    /// ```
    pub fn value_mut(&mut self) -> &mut V {
        &mut self.entry_mut().1
    }

    /// The key and the value, mutably.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(4, 7);
    /// let mut entry = map.get_mut(&4).unwrap();
    /// let (k, v) = entry.pair_mut();
    /// *v += *k;
    /// drop(entry);
    /// assert_eq!(map.get_cloned(&4), Some(11));
    /// ```
    pub fn pair_mut(&mut self) -> (&K, &mut V) {
        let (k, v) = self.entry_mut();
        (k, v)
    }

    /// Turns the write guard into a read guard on the same entry, letting other readers of
    /// the shard in without letting a writer in between.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, 1);
    /// let read = map.get_mut(&1).unwrap().downgrade();
    /// assert!(map.get(&1).is_some()); // other reads of the shard are fine now
    /// assert_eq!(*read, 1);
    /// ```
    #[track_caller]
    pub fn downgrade(self) -> Ref<'a, K, V> {
        let index = self.index;
        let read = WriteGuard::downgrade(self.guard);
        Ref::new(ReadGuard::map(read, |table| {
            table
                .get_bucket(index)
                .expect("a RefMut's bucket stays full while it holds the write lock")
        }))
    }
}

impl<K, V> Deref for RefMut<'_, K, V> {
    type Target = V;

    fn deref(&self) -> &V {
        self.value()
    }
}

impl<K, V> DerefMut for RefMut<'_, K, V> {
    fn deref_mut(&mut self) -> &mut V {
        self.value_mut()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for RefMut<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefMut")
            .field("key", self.key())
            .field("value", self.value())
            .finish()
    }
}

/// The error of [`try_insert`](super::ShardedMap::try_insert): the key was present.
///
/// # Examples
/// ```
/// let map = mapguard::ShardedMap::new();
/// map.insert(1, "old");
/// let err = map.try_insert(1, "new").unwrap_err();
/// assert_eq!(*err.current, "old");
/// assert_eq!(err.value, "new");
/// ```
pub struct OccupiedError<'a, K, V> {
    /// A read guard on the entry that is present.
    pub current: Ref<'a, K, V>,
    /// The value that was not inserted.
    pub value: V,
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for OccupiedError<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::error::occupied_debug(f, self.current.key(), self.current.value(), &self.value)
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Display for OccupiedError<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::error::occupied_display(f, self.current.key(), self.current.value(), &self.value)
    }
}

impl<K: fmt::Debug, V: fmt::Debug> std::error::Error for OccupiedError<'_, K, V> {}
