//! [`LockedMap`]: one reader-writer lock around one hash table — the smallest correct fix for
//! a map shared between threads, and the baseline that shows what the other maps buy.
//!
//! Every read takes the lock shared and every write takes it exclusively, so reads on two cores
//! contend on the lock's one counter, and a writer stops every reader. Guards follow the rules
//! of `std`'s `RwLock` (without poisoning): a thread that holds a guard and calls a writing
//! method of the same map deadlocks, as it would with `std`; a thread that holds a read guard
//! and takes another read may deadlock if a writer is waiting in between (the lock is fair to
//! writers). With one lock per map, that self-deadlock is the only deadlock within one map;
//! unlike [`ShardedMap`](crate::ShardedMap), the map does not detect it by itself: without the
//! `lockdep` feature it hangs, as with `std`.
//!
//! With the `lockdep` feature, each map's lock reports its acquisitions to the `lockdep` crate
//! as a class of its own (`LockedMap#<n>`): two threads that lock two maps in opposite orders,
//! or a thread that re-enters a map it holds, are reported before they hang.
//!
//! The lock is reached only through the private `TableLock` alias in this module, so that it can be
//! replaced (for example by a lock-order-checking lock) without touching the map.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::ops::Deref;
use std::panic::Location;

use crossbeam_utils::CachePadded;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry as TableEntry;

use crate::deferred_drop::{self, Dropper};
use crate::error::{BuildError, ReserveError};
use crate::growth;
#[cfg(not(feature = "lockdep"))]
use crate::raw::lock_stats::{LockStats, WaitKind};
#[cfg(not(feature = "lockdep"))]
use crate::raw::std_lock;
use crate::sharded::{Action, Computed, DefaultHashBuilder};
use crate::stats::{Counter, Instrument, Settings, Slot, WriteOp};

/// The lock around the table: `std`'s `RwLock` (without poisoning), the lock of the
/// `RwLock<HashMap>` this map is the baseline for. Swap this (and the guard aliases) to change
/// the lock.
#[cfg(not(feature = "lockdep"))]
type TableLock<T> = std_lock::RwLock<T>;
#[cfg(not(feature = "lockdep"))]
type TableReadGuard<'a, T> = std_lock::ReadGuard<'a, T>;
#[cfg(not(feature = "lockdep"))]
type MappedReadGuard<'a, T, U> = std_lock::MappedReadGuard<'a, T, U>;
#[cfg(not(feature = "lockdep"))]
type TableWriteGuard<'a, T> = std_lock::WriteGuard<'a, T>;

#[cfg(feature = "lockdep")]
use traced::{MappedReadGuard, TableLock, TableReadGuard, TableWriteGuard};

/// With the `lockdep` feature: the same `std` lock, each acquisition reported to
/// lockdep as a foreign lock of a class of the map's own (`LockedMap#<n>`, numbered in
/// creation order), so that two threads locking two maps in opposite orders are reported
/// before they hang, and a thread re-entering its own map is reported before it blocks.
#[cfg(feature = "lockdep")]
mod traced {
    use std::ops::{Deref, DerefMut};
    use std::panic::Location;
    use std::sync::atomic::{AtomicU64, Ordering};

    use lockdep::foreign::{Access, LockClass, Token};

    use crate::raw::Unshared;

    use crate::raw::lock_stats::{LockStats, WaitKind};
    use crate::raw::std_lock::{self, RwLock};

    pub(super) struct TableLock<T> {
        inner: RwLock<T>,
        class: LockClass,
    }

    impl<T> TableLock<T> {
        pub(super) fn new(value: T) -> Self {
            static MAPS: AtomicU64 = AtomicU64::new(0);
            let id = MAPS.fetch_add(1, Ordering::Relaxed);
            Self {
                inner: RwLock::new(value),
                class: LockClass::unique(format_args!("LockedMap#{id}")),
            }
        }

        #[track_caller]
        pub(super) fn read(&self) -> TableReadGuard<'_, T> {
            // The lock prefers writers: a re-read can wait behind a queued writer.
            let token = self
                .class
                .acquire_at(self, Access::Read, Location::caller());
            let guard = self.inner.read();
            token.acquired();
            TableReadGuard {
                guard,
                token: Unshared::new(token),
            }
        }

        #[track_caller]
        pub(super) fn write(&self) -> TableWriteGuard<'_, T> {
            let token = self
                .class
                .acquire_at(self, Access::Write, Location::caller());
            let guard = self.inner.write();
            token.acquired();
            TableWriteGuard {
                guard,
                token: Unshared::new(token),
            }
        }

        /// [`read`](Self::read), timing the wait into `waits` when the lock is taken.
        #[track_caller]
        pub(super) fn read_timed(&self, waits: &LockStats) -> TableReadGuard<'_, T> {
            let token = self
                .class
                .acquire_at(self, Access::Read, Location::caller());
            let guard = match self.inner.try_read() {
                Some(guard) => guard,
                None => {
                    let _wait = waits.wait(0, WaitKind::Read);
                    self.inner.read()
                }
            };
            token.acquired();
            TableReadGuard {
                guard,
                token: Unshared::new(token),
            }
        }

        /// [`write`](Self::write), timing the wait into `waits` when the lock is taken.
        #[track_caller]
        pub(super) fn write_timed(&self, waits: &LockStats) -> TableWriteGuard<'_, T> {
            let token = self
                .class
                .acquire_at(self, Access::Write, Location::caller());
            let guard = match self.inner.try_write() {
                Some(guard) => guard,
                None => {
                    let _wait = waits.wait(0, WaitKind::Write);
                    self.inner.write()
                }
            };
            token.acquired();
            TableWriteGuard {
                guard,
                token: Unshared::new(token),
            }
        }
    }

    // The registrations are `Unshared`: a `Token` is `!Sync` (its methods act on the calling
    // thread's bookkeeping), and a guard is shared only for its `Deref`.
    pub(super) struct TableReadGuard<'a, T> {
        guard: std_lock::ReadGuard<'a, T>,
        token: Unshared<Token>,
    }

    impl<'a, T> TableReadGuard<'a, T> {
        pub(super) fn map<U>(this: Self, f: impl FnOnce(&T) -> &U) -> MappedReadGuard<'a, T, U> {
            MappedReadGuard {
                guard: std_lock::ReadGuard::map(this.guard, f),
                _token: this.token,
            }
        }

        pub(super) fn try_map<U>(
            this: Self,
            f: impl FnOnce(&T) -> Option<&U>,
        ) -> Result<MappedReadGuard<'a, T, U>, Self> {
            let token = this.token;
            match std_lock::ReadGuard::try_map(this.guard, f) {
                Ok(guard) => Ok(MappedReadGuard {
                    guard,
                    _token: token,
                }),
                Err(guard) => Err(Self { guard, token }),
            }
        }
    }

    impl<T> Deref for TableReadGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.guard
        }
    }

    pub(super) struct MappedReadGuard<'a, T, U> {
        guard: std_lock::MappedReadGuard<'a, T, U>,
        _token: Unshared<Token>,
    }

    impl<T, U> Deref for MappedReadGuard<'_, T, U> {
        type Target = U;
        fn deref(&self) -> &U {
            &self.guard
        }
    }

    pub(super) struct TableWriteGuard<'a, T> {
        guard: std_lock::WriteGuard<'a, T>,
        token: Unshared<Token>,
    }

    impl<'a, T> TableWriteGuard<'a, T> {
        pub(super) fn downgrade(this: Self) -> TableReadGuard<'a, T> {
            let mut token = this.token;
            token.get_mut().downgrade(Access::Read);
            TableReadGuard {
                guard: std_lock::WriteGuard::downgrade(this.guard),
                token,
            }
        }
    }

    impl<T> Deref for TableWriteGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.guard
        }
    }

    impl<T> DerefMut for TableWriteGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.guard
        }
    }
}

/// Acquisitions that try the lock first and time only a wait (for maps with statistics).
#[cfg(not(feature = "lockdep"))]
trait TimedLock<T> {
    fn read_timed(&self, waits: &LockStats) -> TableReadGuard<'_, T>;
    fn write_timed(&self, waits: &LockStats) -> TableWriteGuard<'_, T>;
}

#[cfg(not(feature = "lockdep"))]
impl<T> TimedLock<T> for TableLock<T> {
    #[inline(always)]
    fn read_timed(&self, waits: &LockStats) -> TableReadGuard<'_, T> {
        match self.try_read() {
            Some(guard) => guard,
            None => read_waiting(self, waits),
        }
    }

    #[inline(always)]
    fn write_timed(&self, waits: &LockStats) -> TableWriteGuard<'_, T> {
        match self.try_write() {
            Some(guard) => guard,
            None => write_waiting(self, waits),
        }
    }
}

/// A read acquisition that found the lock taken: timed (and counted as contended).
#[cfg(not(feature = "lockdep"))]
#[cold]
#[inline(never)]
fn read_waiting<'a, T>(lock: &'a TableLock<T>, waits: &LockStats) -> TableReadGuard<'a, T> {
    let _wait = waits.wait(0, WaitKind::Read);
    lock.read()
}

/// A write acquisition that found the lock taken: timed (and counted as contended).
#[cfg(not(feature = "lockdep"))]
#[cold]
#[inline(never)]
fn write_waiting<'a, T>(lock: &'a TableLock<T>, waits: &LockStats) -> TableWriteGuard<'a, T> {
    let _wait = waits.wait(0, WaitKind::Write);
    lock.write()
}

type Table<K, V> = HashTable<(K, V)>;

/// A hash map behind one reader-writer lock. See the [module docs](self).
///
/// # Examples
/// ```
/// use mapguard::LockedMap;
/// use std::sync::Arc;
///
/// let map = Arc::new(LockedMap::new());
/// let writer = {
///     let map = Arc::clone(&map);
///     std::thread::spawn(move || {
///         for i in 0..100u32 {
///             map.insert(i, i * 2);
///         }
///     })
/// };
/// writer.join().unwrap();
/// assert_eq!(map.len(), 100);
/// assert_eq!(*map.get(&7).unwrap(), 14);
/// ```
pub struct LockedMap<K, V, S = DefaultHashBuilder> {
    /// On cache lines of its own: the lock word and the table's header are written by every
    /// write, while the hasher and `instr` below are read before the lock is taken (hashing
    /// happens outside the lock). Sharing one line, each write would pull that line away from
    /// the other cores' next hash, and each lock acquisition would then need it back.
    table: CachePadded<TableLock<Table<K, V>>>,
    hasher: S,
    /// Statistics and observer; `None` (one branch per operation) when neither is on.
    instr: Slot<K>,
}

/// A read guard on one entry of a [`LockedMap`]: the whole map stays read-locked while it
/// lives. Dereferences to the value. `!Send`; [`Sync`](crate#what-blocks-and-what-never-does) when `K` and `V` are.
///
/// # Examples
/// ```
/// let map = mapguard::LockedMap::new();
/// map.insert("k", 1);
/// let entry = map.get("k").unwrap();
/// assert_eq!((*entry.key(), *entry.value(), *entry), ("k", 1, 1));
/// ```
pub struct LockedRef<'a, K, V> {
    entry: MappedReadGuard<'a, Table<K, V>, (K, V)>,
}

impl<K, V> LockedRef<'_, K, V> {
    /// The key of the entry.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert(1, 'a');
    /// assert_eq!(*map.get(&1).unwrap().key(), 1);
    /// ```
    pub fn key(&self) -> &K {
        &self.entry.0
    }

    /// The value of the entry.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert(1, 'a');
    /// assert_eq!(*map.get(&1).unwrap().value(), 'a');
    /// ```
    pub fn value(&self) -> &V {
        &self.entry.1
    }
}

impl<K, V> Deref for LockedRef<'_, K, V> {
    type Target = V;

    fn deref(&self) -> &V {
        &self.entry.1
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for LockedRef<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockedRef")
            .field("key", self.key())
            .field("value", self.value())
            .finish()
    }
}

/// The whole map read-locked, for iteration: `for (k, v) in &map.iter()`. Writers wait while
/// it lives.
///
/// # Examples
/// ```
/// let map: mapguard::LockedMap<u32, u32> = (0..4).map(|i| (i, i * 10)).collect();
/// let locked = map.iter();
/// let mut pairs: Vec<(u32, u32)> = locked.iter().map(|(k, v)| (*k, *v)).collect();
/// pairs.sort();
/// assert_eq!(pairs, [(0, 0), (1, 10), (2, 20), (3, 30)]);
/// assert_eq!(locked.len(), 4);
/// ```
pub struct Iter<'a, K, V> {
    table: TableReadGuard<'a, Table<K, V>>,
}

impl<K, V> Iter<'_, K, V> {
    /// The entries, as key-value pairs, in table order.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert(1, 2);
    /// assert_eq!(map.iter().iter().count(), 1);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.table.iter().map(|(k, v)| (k, v))
    }

    /// The number of entries (stable while this guard lives).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert(1, 2);
    /// assert_eq!(map.iter().len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there are no entries.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::<u8, u8>::new();
    /// assert!(map.iter().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

impl<'b, K, V> IntoIterator for &'b Iter<'_, K, V> {
    type Item = (&'b K, &'b V);
    type IntoIter = std::iter::Map<hashbrown::hash_table::Iter<'b, (K, V)>, PairRef<K, V>>;

    fn into_iter(self) -> Self::IntoIter {
        self.table.iter().map(pair_ref as PairRef<K, V>)
    }
}

type PairRef<K, V> = for<'r> fn(&'r (K, V)) -> (&'r K, &'r V);

fn pair_ref<K, V>((k, v): &(K, V)) -> (&K, &V) {
    (k, v)
}

impl<K, V> fmt::Debug for Iter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// Settings for a [`LockedMap`], checked by [`build`](Self::build).
///
/// # Examples
/// ```
/// let map = mapguard::LockedMap::<u64, u64>::builder()
///     .capacity(1000)
///     .hasher(foldhash::fast::FixedState::with_seed(3))
///     .build()?;
/// assert!(map.capacity() >= 1000);
/// # Ok::<(), mapguard::BuildError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct LockedMapBuilder<K, V, S = DefaultHashBuilder> {
    capacity: usize,
    hasher: S,
    settings: Settings<K>,
    _entries: PhantomData<fn() -> (K, V)>,
}

impl<K, V> LockedMapBuilder<K, V, DefaultHashBuilder> {
    /// Default settings: no capacity, the default hasher.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::LockedMap<u8, u8> = mapguard::LockedMapBuilder::new().build()?;
    /// assert!(map.is_empty());
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn new() -> Self {
        Self {
            capacity: 0,
            hasher: DefaultHashBuilder::default(),
            settings: Settings::default(),
            _entries: PhantomData,
        }
    }
}

impl<K, V> Default for LockedMapBuilder<K, V, DefaultHashBuilder> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> LockedMapBuilder<K, V, S> {
    /// Room for `capacity` entries before the table grows.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::<u8, u8>::builder().capacity(50).build()?;
    /// assert!(map.capacity() >= 50);
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
    /// let map = mapguard::LockedMap::<u8, u8>::builder()
    ///     .hasher(std::collections::hash_map::RandomState::new())
    ///     .build()?;
    /// map.insert(1, 1);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn hasher<T>(self, hasher: T) -> LockedMapBuilder<K, V, T> {
        LockedMapBuilder {
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
    /// let map = mapguard::LockedMap::builder().stats(true).build()?;
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
    /// let map = mapguard::LockedMap::builder().stats(true).stats_keys(true).build()?;
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
    /// let map = mapguard::LockedMap::<u8, u8>::builder().name("cache").stats(true).build()?;
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
    /// let map = mapguard::LockedMap::builder().observer(log.clone()).build()?;
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
    /// [`BuildError::Capacity`] if the capacity overflows or cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use mapguard::{BuildError, LockedMap};
    /// let err = LockedMap::<u64, u64>::builder().capacity(usize::MAX).build().unwrap_err();
    /// assert!(matches!(err, BuildError::Capacity { .. }));
    /// ```
    pub fn build(self) -> Result<LockedMap<K, V, S>, BuildError> {
        let mut table = HashTable::new();
        table
            .try_reserve(self.capacity, |_: &(K, V)| {
                unreachable!("an empty table has nothing to rehash")
            })
            .map_err(|err| BuildError::Capacity {
                capacity: self.capacity,
                source: err.into(),
            })?;
        Ok(LockedMap {
            table: CachePadded::new(TableLock::new(table)),
            hasher: self.hasher,
            instr: self.settings.build_locked("LockedMap"),
        })
    }
}

impl<K, V, S> fmt::Debug for LockedMapBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockedMapBuilder")
            .field("capacity", &self.capacity)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

// A panic anywhere in the map's operations, user closures included, leaves the map
// consistent and unlocked (crate docs, "What blocks and what never does"), so it may be
// observed after one.
impl<K, V, S> std::panic::UnwindSafe for LockedMap<K, V, S> {}
impl<K, V, S> std::panic::RefUnwindSafe for LockedMap<K, V, S> {}

impl<K, V> LockedMap<K, V, DefaultHashBuilder> {
    /// An empty map with the default hasher; allocates nothing until the first insert.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::LockedMap<String, u32> = mapguard::LockedMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_hasher(DefaultHashBuilder::default())
    }

    /// An empty map with room for `capacity` entries.
    ///
    /// # Panics
    /// If the capacity cannot be allocated; [`builder`](Self::builder) returns an error instead.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::LockedMap<u64, u64> = mapguard::LockedMap::with_capacity(100);
    /// assert!(map.capacity() >= 100);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, DefaultHashBuilder::default())
    }

    /// A builder to choose the capacity and hasher, with errors for bad values.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::<u64, u64>::builder().capacity(10).build()?;
    /// assert!(map.capacity() >= 10);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn builder() -> LockedMapBuilder<K, V, DefaultHashBuilder> {
        LockedMapBuilder::new()
    }
}

impl<K, V, S> LockedMap<K, V, S> {
    /// An empty map hashing keys with `hasher`.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::LockedMap<u64, u64, _> =
    ///     mapguard::LockedMap::with_hasher(foldhash::fast::FixedState::with_seed(7));
    /// map.insert(1, 2);
    /// assert_eq!(map.get_cloned(&1), Some(2));
    /// ```
    pub fn with_hasher(hasher: S) -> Self {
        Self {
            table: CachePadded::new(TableLock::new(HashTable::new())),
            hasher,
            instr: Slot::empty(),
        }
    }

    /// An empty map with room for `capacity` entries, hashing keys with `hasher`.
    ///
    /// # Panics
    /// If the capacity cannot be allocated; [`builder`](Self::builder) returns an error instead.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::LockedMap<u8, u8, _> =
    ///     mapguard::LockedMap::with_capacity_and_hasher(8, foldhash::fast::RandomState::default());
    /// assert!(map.capacity() >= 8);
    /// ```
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        match LockedMapBuilder::new()
            .hasher(hasher)
            .capacity(capacity)
            .build()
        {
            Ok(map) => map,
            Err(err) => panic!("mapguard: {err}"),
        }
    }

    /// The map's hasher.
    ///
    /// # Examples
    /// ```
    /// use std::hash::BuildHasher;
    /// let map: mapguard::LockedMap<u8, u8> = mapguard::LockedMap::new();
    /// let _ = map.hasher().hash_one(5u8);
    /// ```
    pub fn hasher(&self) -> &S {
        &self.hasher
    }

    /// The number of entries.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert(1, 1);
    /// assert_eq!(map.len(), 1);
    /// ```
    #[track_caller]
    pub fn len(&self) -> usize {
        self.table.read().len()
    }

    /// Whether the map has no entries.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::<u8, u8>::new();
    /// assert!(map.is_empty());
    /// ```
    #[track_caller]
    pub fn is_empty(&self) -> bool {
        self.table.read().is_empty()
    }

    /// How many entries fit before the table grows.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::<u8, u8>::with_capacity(20);
    /// assert!(map.capacity() >= 20);
    /// ```
    #[track_caller]
    pub fn capacity(&self) -> usize {
        self.table.read().capacity()
    }

    /// A snapshot of the map's statistics, or `None` unless it was built with
    /// `builder().stats(true)`. See [`crate::stats`] for what is exact and what is sampled.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::builder().stats(true).build()?;
    /// map.insert("a", 1);
    /// map.insert("a", 2);
    /// map.remove("b");
    /// let stats = map.stats().unwrap();
    /// assert_eq!((stats.inserts, stats.overwrites, stats.removes_miss), (1, 1, 1));
    /// assert!(mapguard::LockedMap::<u8, u8>::new().stats().is_none());
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    #[cfg(feature = "stats")]
    #[track_caller]
    pub fn stats(&self) -> Option<crate::stats::StatsSnapshot> {
        let instr = self.instr.get().filter(|instr| instr.records())?;
        let (len, capacity) = {
            let table = self.table.read();
            (table.len(), table.capacity())
        };
        // The one lock, reported as one shard.
        let (write_locks, contended, wait_ns) = instr.lock_figures();
        let shard = crate::stats::ShardStats {
            index: 0,
            entries: len,
            write_locks,
            read_locks_estimate: instr.shard_read_estimates().first().copied().unwrap_or(0),
            contended,
            wait_ns,
        };
        instr.snapshot(len, capacity, vec![shard])
    }

    /// Takes a [`stats`](Self::stats) snapshot and sets the `metrics` counters and gauges
    /// registered when the map was built (feature `metrics`); call it from a scrape handler
    /// or a periodic task. `None` (and nothing published) when statistics are off.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::builder().name("cache").stats(true).build()?;
    /// map.insert(1, 1);
    /// assert_eq!(map.publish_metrics().unwrap().inserts, 1);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn publish_metrics(&self) -> Option<crate::stats::StatsSnapshot> {
        let snapshot = self.stats()?;
        if let Some(instr) = self.instr.get() {
            instr.publish(&snapshot);
        }
        Some(snapshot)
    }

    /// Read-locks the table; with statistics (`waits`, from
    /// [`note_read_start`](Self::note_read_start) in the hooked copies of the reads) a try
    /// first, and a timed wait only when that fails.
    #[inline(always)]
    #[track_caller]
    fn read_table(
        &self,
        waits: Option<&crate::raw::lock_stats::LockStats>,
    ) -> TableReadGuard<'_, Table<K, V>> {
        match waits {
            Some(waits) => self.table.read_timed(waits),
            None => self.table.read(),
        }
    }

    /// Write-locks the table; with statistics on `instr` a try first, and a timed wait only
    /// when that fails.
    #[inline(always)]
    #[track_caller]
    fn write_table(&self, instr: Option<&Instrument<K>>) -> TableWriteGuard<'_, Table<K, V>> {
        match instr.and_then(Instrument::lock_waits) {
            Some(waits) => self.table.write_timed(waits),
            None => self.table.write(),
        }
    }

    /// Counts a write and tells the observer and the probes.
    #[inline(always)]
    fn note_write(
        &self,
        op: crate::stats::WriteOp,
        hash: Option<u64>,
        shard: Option<usize>,
        counter: Option<crate::stats::Counter>,
        location: &'static std::panic::Location<'static>,
    ) {
        self.instr.write_cold(op, hash, shard, counter, location);
    }

    /// Counts a write and tells the observer through `instr` (the hooked copy of a write
    /// method passes the instrument it found; the plain copy `None`); fires the probe either
    /// way.
    #[inline(always)]
    fn note_write_in(
        &self,
        instr: Option<&Instrument<K>>,
        op: crate::stats::WriteOp,
        hash: Option<u64>,
        shard: Option<usize>,
        counter: Option<crate::stats::Counter>,
        location: &'static std::panic::Location<'static>,
    ) {
        self.instr
            .write_hooked(instr, op, hash, shard, counter, location);
    }

    /// Removes every entry, keeping the allocated memory.
    ///
    /// The entries are dropped after the lock is released, so a key's or value's `Drop` may
    /// call the map. If some `Drop`s panic, every other entry is still dropped; then the first
    /// of those panics is resumed.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert(1, 1);
    /// map.clear();
    /// assert!(map.is_empty());
    /// ```
    #[track_caller]
    pub fn clear(&self) {
        let mut table = self.write_table(self.instr.get());
        let taken = (!table.is_empty()).then(|| deferred_drop::take_all(&mut table));
        drop(table);
        let mut dropper = Dropper::new();
        dropper.drop_all(taken.into_iter().flatten());
        let site = std::panic::Location::caller();
        self.note_write(WriteOp::Clear, None, None, Some(Counter::Clear), site);
        dropper.finish();
    }

    /// Read-locks the whole map for iteration (see [`Iter`]).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert(1, 10);
    /// map.insert(2, 20);
    /// let sum: i32 = map.iter().iter().map(|(_, v)| *v).sum();
    /// assert_eq!(sum, 30);
    /// for (k, v) in &map.iter() {
    ///     assert_eq!(*v, *k * 10);
    /// }
    /// ```
    #[track_caller]
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            table: self.table.read(),
        }
    }

    /// Keeps only the entries for which `keep` returns `true`, under the write lock.
    ///
    /// The rejected entries are dropped after the lock is released, so a key's or value's
    /// `Drop` may call the map. If `keep` panics, the entries it already rejected are removed
    /// (and dropped) and the others stay. If some `Drop`s panic, every other rejected entry is
    /// still dropped; then the first of those panics is resumed.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::LockedMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// map.retain(|_, v| *v % 2 == 0);
    /// assert_eq!(map.len(), 5);
    /// ```
    #[track_caller]
    pub fn retain(&self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        // Declared before the guard: if `keep` panics, the guard goes first.
        let mut rejected = Vec::new();
        let mut table = self.write_table(self.instr.get());
        rejected.extend(table.extract_if(|(k, v)| !keep(k, v)));
        drop(table);
        let mut dropper = Dropper::new();
        dropper.drop_all(rejected);
        self.note_write(
            WriteOp::Retain,
            None,
            None,
            None,
            std::panic::Location::caller(),
        );
        dropper.finish();
    }
}

impl<K, V, S> LockedMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// A read guard on the entry of `key`, or `None` if absent. The whole map stays
    /// read-locked while the guard lives.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert("a".to_string(), 1);
    /// assert!(map.get("a").is_some());
    /// assert!(map.get("b").is_none());
    /// ```
    #[inline]
    #[track_caller]
    pub fn get<Q>(&self, key: &Q) -> Option<LockedRef<'_, K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.instr.counts_reads() {
            // Through a place of its own: returned directly, the twin's result place
            // would be shared with this path and keep the result in memory here too.
            let mut found = None;
            self.get_counted(key, &mut found);
            return found;
        }
        self.get_with::<false, Q>(key)
    }

    /// [`get`](Self::get) with the statistics and observer hooks: a second copy of the
    /// body, so that the plain copy has none.
    #[inline(always)]
    #[track_caller]
    fn get_counted<'a, Q>(&'a self, key: &Q, found: &mut Option<LockedRef<'a, K, V>>)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        *found = self.get_with::<true, Q>(key);
    }

    /// Counts a lookup of `key` (hash `hash`) as it starts, if `COUNT` (in the hooked copy
    /// of a read method; see `Slot::counts_reads`), and samples it when chosen. Returns
    /// where [`read_table`](Self::read_table) times a contended wait (`None` unless
    /// `COUNT`), taken before the sampling call so that it stays in a register across it.
    ///
    /// `key` goes to no call: the stored key a map built with `stats_keys` reports is
    /// looked up here, inline, on the rare sampled path. Passed to a function that is not
    /// inlined, the caller's key would have to sit in memory on every path, the plain copy's
    /// too, where a build without the `stats` feature keeps it in a register.
    #[inline(always)]
    #[track_caller]
    fn note_read_start<const COUNT: bool, Q>(
        &self,
        key: &Q,
        hash: u64,
    ) -> Option<&crate::raw::lock_stats::LockStats>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if !COUNT {
            return None;
        }
        let waits = self.instr.lock_waits();
        if self.instr.read_start(hash) {
            if self.instr.samples_keys() {
                let table = self.read_table(None);
                let found = table.find(hash, |(k, _)| k.borrow() == key);
                self.sample_read(hash, found.map(|(k, _)| k));
            } else {
                self.sample_read(hash, None);
            }
        }
        waits
    }

    /// A sampled lookup of `hash`, before the lookup itself, with the stored key when the
    /// map reports keys: feeds the sketch (shard 0: the one lock's sampled read
    /// acquisitions).
    #[cold]
    #[inline(never)]
    fn sample_read(&self, hash: u64, key: Option<&K>) {
        self.instr.sample_read(hash, 0, key);
    }

    /// The body of [`get`](Self::get), with the hooks if `COUNT`.
    #[inline(always)]
    #[track_caller]
    fn get_with<const COUNT: bool, Q>(&self, key: &Q) -> Option<LockedRef<'_, K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let waits = self.note_read_start::<COUNT, Q>(key, hash);
        let table = self.read_table(waits);
        let found =
            TableReadGuard::try_map(table, |table| table.find(hash, |(k, _)| k.borrow() == key));
        if !COUNT {
            return found.ok().map(|entry| LockedRef { entry });
        }
        match found {
            Ok(entry) => Some(LockedRef { entry }),
            Err(table) => {
                // Counted after the guard is gone.
                drop(table);
                self.instr.read_missed_if::<COUNT>();
                None
            }
        }
    }

    /// A clone of the value of `key`, taken under a short read lock.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert(1, vec![1]);
    /// assert_eq!(map.get_cloned(&1), Some(vec![1]));
    /// ```
    #[inline]
    #[track_caller]
    pub fn get_cloned<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.with(key, V::clone)
    }

    /// Applies `read` to the value of `key` and returns what it returns, or `None` if the key
    /// is absent: a read that leaves no guard behind (nothing to hold across an `.await`).
    /// `read` runs under the map's read lock, released when it returns or unwinds; like a
    /// [`LockedRef`] it may read the map, and a write to the map from inside it waits for
    /// itself (reported before it blocks with the `lockdep` feature, a hang without; see
    /// [Deadlocks](crate#deadlocks-never-a-silent-hang)).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert("a", vec![1, 2, 3]);
    /// assert_eq!(map.with("a", |v| v.len()), Some(3));
    /// assert_eq!(map.with("b", |v| v.len()), None);
    /// ```
    #[inline]
    #[track_caller]
    pub fn with<Q, R>(&self, key: &Q, read: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.instr.counts_reads() {
            return self.with_counted(key, read);
        }
        self.with_hooks::<false, Q, R>(key, read)
    }

    /// [`with`](Self::with) with the statistics and observer hooks: a second copy of the
    /// body, so that the plain copy has none.
    #[inline(always)]
    #[track_caller]
    fn with_counted<Q, R>(&self, key: &Q, read: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with_hooks::<true, Q, R>(key, read)
    }

    /// The body of [`with`](Self::with), with the hooks if `COUNT`.
    #[inline(always)]
    #[track_caller]
    fn with_hooks<const COUNT: bool, Q, R>(&self, key: &Q, read: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let waits = self.note_read_start::<COUNT, Q>(key, hash);
        let found = {
            let table = self.read_table(waits);
            table
                .find(hash, |(k, _)| k.borrow() == key)
                .map(|(_, v)| read(v))
        };
        if found.is_none() {
            self.instr.read_missed_if::<COUNT>();
        }
        found
    }

    /// Whether `key` is present.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert(1, ());
    /// assert!(map.contains_key(&1));
    /// assert!(!map.contains_key(&2));
    /// ```
    #[inline]
    #[track_caller]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.instr.counts_reads() {
            return self.contains_key_counted(key);
        }
        self.contains_key_with::<false, Q>(key)
    }

    /// [`contains_key`](Self::contains_key) with the statistics and observer hooks: a second copy of the
    /// body, so that the plain copy has none.
    #[inline(always)]
    #[track_caller]
    fn contains_key_counted<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.contains_key_with::<true, Q>(key)
    }

    /// The body of [`contains_key`](Self::contains_key), with the hooks if `COUNT`.
    #[inline(always)]
    #[track_caller]
    fn contains_key_with<const COUNT: bool, Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let waits = self.note_read_start::<COUNT, Q>(key, hash);
        let found = self
            .read_table(waits)
            .find(hash, |(k, _)| k.borrow() == key)
            .is_some();
        if !found {
            self.instr.read_missed_if::<COUNT>();
        }
        found
    }

    /// Inserts `value` under `key`, returning the value it replaced.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// assert_eq!(map.insert(1, 'a'), None);
    /// assert_eq!(map.insert(1, 'b'), Some('a'));
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        #[cfg(feature = "stats")]
        if let Some(instr) = self.instr.get() {
            return self.insert_counted(instr, key, value);
        }
        self.insert_with(None, key, value)
    }

    /// [`insert`](Self::insert) with the statistics and observer hooks: a second copy of the
    /// body, so that the plain copy has none.
    #[cfg(feature = "stats")]
    #[inline(always)]
    #[track_caller]
    fn insert_counted(&self, instr: &Instrument<K>, key: K, value: V) -> Option<V> {
        self.insert_with(Some(instr), key, value)
    }

    /// The body of [`insert`](Self::insert), with the hooks of `instr` if any.
    #[inline(always)]
    #[track_caller]
    fn insert_with(&self, instr: Option<&Instrument<K>>, key: K, value: V) -> Option<V> {
        let hash = self.hash(&key);
        let mut table = self.write_table(instr);
        let (old, counter) = match table.find_mut(hash, |(k, _)| *k == key) {
            Some((_, slot)) => (Some(std::mem::replace(slot, value)), Counter::Overwrite),
            None => {
                let rehash = |(k, _): &(K, V)| self.hasher.hash_one(k);
                growth::insert_unique(&mut table, hash, (key, value), rehash);
                (None, Counter::Insert)
            }
        };
        drop(table);
        let site = Location::caller();
        self.note_write_in(
            instr,
            WriteOp::Insert,
            Some(hash),
            None,
            Some(counter),
            site,
        );
        old
    }

    /// Removes `key`, returning its value.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert(1, 'a');
    /// assert_eq!(map.remove(&1), Some('a'));
    /// assert_eq!(map.remove(&1), None);
    /// ```
    #[inline]
    #[track_caller]
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Removes `key`, returning the stored key and its value.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert("k".to_string(), 1);
    /// assert_eq!(map.remove_entry("k"), Some(("k".to_string(), 1)));
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn remove_entry<Q>(&self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        #[cfg(feature = "stats")]
        if let Some(instr) = self.instr.get() {
            // Through a place of its own: returned directly, the twin's result place
            // would be shared with this path and keep the result in memory here too.
            let mut found = None;
            self.remove_entry_counted(instr, key, &mut found);
            return found;
        }
        self.remove_entry_with(None, key)
    }

    /// [`remove_entry`](Self::remove_entry) with the statistics and observer hooks: a second copy of the
    /// body, so that the plain copy has none.
    #[cfg(feature = "stats")]
    #[inline(always)]
    #[track_caller]
    fn remove_entry_counted<Q>(&self, instr: &Instrument<K>, key: &Q, found: &mut Option<(K, V)>)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        *found = self.remove_entry_with(Some(instr), key);
    }

    /// The body of [`remove_entry`](Self::remove_entry), with the hooks of `instr` if any.
    #[inline(always)]
    #[track_caller]
    fn remove_entry_with<Q>(&self, instr: Option<&Instrument<K>>, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let mut table = self.write_table(instr);
        let removed = match table.find_entry(hash, |(k, _)| k.borrow() == key) {
            Ok(entry) => Some(entry.remove().0),
            Err(_) => None,
        };
        drop(table);
        let counter = removed_counter(removed.is_some());
        let site = Location::caller();
        self.note_write_in(
            instr,
            WriteOp::Remove,
            Some(hash),
            None,
            Some(counter),
            site,
        );
        removed
    }

    /// Removes `key` if `condition` returns `true` for its entry, atomically.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert(1, 5);
    /// assert_eq!(map.remove_if(&1, |_, v| *v > 9), None);
    /// assert_eq!(map.remove_if(&1, |_, v| *v == 5), Some((1, 5)));
    /// ```
    #[track_caller]
    pub fn remove_if<Q>(&self, key: &Q, condition: impl FnOnce(&K, &V) -> bool) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let mut table = self.write_table(self.instr.get());
        let removed = match table.find_entry(hash, |(k, _)| k.borrow() == key) {
            Ok(entry) => {
                let (k, v) = entry.get();
                if condition(k, v) {
                    Some(entry.remove().0)
                } else {
                    None
                }
            }
            Err(_) => None,
        };
        drop(table);
        let counter = removed_counter(removed.is_some());
        let site = Location::caller();
        self.note_write(WriteOp::RemoveIf, Some(hash), None, Some(counter), site);
        removed
    }

    /// A read guard on the value of `key`, inserting `make()` first if the key is absent. The
    /// check and the insert happen under one write lock; `make` runs under it and must not use
    /// this map.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// assert_eq!(*map.get_or_insert_with(1, || 10), 10);
    /// assert_eq!(*map.get_or_insert_with(1, || 20), 10);
    /// ```
    #[track_caller]
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> LockedRef<'_, K, V> {
        if let Some(found) = self.get(&key) {
            return found;
        }
        let hash = self.hash(&key);
        let mut table = self.write_table(self.instr.get());
        let rehash = |(k, _): &(K, V)| self.hasher.hash_one(k);
        let (index, counter) = match growth::entry(&mut table, hash, |(k, _)| *k == key, rehash) {
            TableEntry::Occupied(entry) => (entry.bucket_index(), None),
            TableEntry::Vacant(entry) => (
                entry.insert((key, make())).bucket_index(),
                Some(Counter::Insert),
            ),
        };
        let site = Location::caller();
        self.note_write(WriteOp::GetOrInsert, Some(hash), None, counter, site);
        let table = TableWriteGuard::downgrade(table);
        let entry = TableReadGuard::map(table, |table| {
            table
                .get_bucket(index)
                .expect("the bucket was just found or filled")
        });
        LockedRef { entry }
    }

    /// A read guard on the value of `key`, inserting `value` first if the key is absent.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// assert_eq!(*map.get_or_insert(1, 'a'), 'a');
    /// assert_eq!(*map.get_or_insert(1, 'b'), 'a');
    /// ```
    #[track_caller]
    pub fn get_or_insert(&self, key: K, value: V) -> LockedRef<'_, K, V> {
        self.get_or_insert_with(key, || value)
    }

    /// Decides atomically, under the write lock, what happens to `key`.
    ///
    /// # Examples
    /// ```
    /// use mapguard::{Action, Computed, LockedMap};
    ///
    /// let map = LockedMap::new();
    /// assert_eq!(map.compute(1, |_, _| Action::Set(10)), Computed::Inserted);
    /// assert_eq!(map.compute(1, |_, v| Action::Set(v.unwrap() + 1)), Computed::Replaced(10));
    /// assert_eq!(map.compute(1, |_, _| Action::Remove), Computed::Removed(11));
    /// assert_eq!(map.compute(1, |_, _| Action::<i32>::Keep), Computed::Unchanged);
    /// ```
    #[track_caller]
    pub fn compute(&self, key: K, decide: impl FnOnce(&K, Option<&V>) -> Action<V>) -> Computed<V> {
        let hash = self.hash(&key);
        let mut table = self.write_table(self.instr.get());
        let rehash = |(k, _): &(K, V)| self.hasher.hash_one(k);
        let computed = match growth::entry(&mut table, hash, |(k, _)| *k == key, rehash) {
            TableEntry::Occupied(mut entry) => {
                let action = {
                    let (k, v) = entry.get();
                    decide(k, Some(v))
                };
                match action {
                    Action::Keep => Computed::Unchanged,
                    Action::Set(value) => {
                        Computed::Replaced(std::mem::replace(&mut entry.get_mut().1, value))
                    }
                    Action::Remove => Computed::Removed(entry.remove().0.1),
                }
            }
            TableEntry::Vacant(entry) => match decide(&key, None) {
                Action::Set(value) => {
                    entry.insert((key, value));
                    Computed::Inserted
                }
                Action::Keep | Action::Remove => Computed::Unchanged,
            },
        };
        drop(table);
        let site = Location::caller();
        self.note_write(
            WriteOp::Compute,
            Some(hash),
            None,
            Some(Counter::Compute),
            site,
        );
        computed
    }

    /// Changes the value of `key` in place under the write lock; returns what `change` returned,
    /// or `None` if the key is absent.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::LockedMap::new();
    /// map.insert("n", 1);
    /// assert_eq!(map.update("n", |n| { *n += 1; *n }), Some(2));
    /// assert_eq!(map.update("m", |n| *n), None);
    /// ```
    #[track_caller]
    pub fn update<Q, R>(&self, key: &Q, change: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let mut table = self.write_table(self.instr.get());
        let changed = table
            .find_mut(hash, |(k, _)| k.borrow() == key)
            .map(|(_, value)| change(value));
        drop(table);
        let site = Location::caller();
        self.note_write(
            WriteOp::Update,
            Some(hash),
            None,
            Some(Counter::Compute),
            site,
        );
        changed
    }

    /// Makes room for at least `additional` more entries.
    ///
    /// # Panics
    /// If the capacity overflows or cannot be allocated; see [`try_reserve`](Self::try_reserve).
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::LockedMap<u64, u64> = mapguard::LockedMap::new();
    /// map.reserve(100);
    /// assert!(map.capacity() >= 100);
    /// ```
    #[track_caller]
    pub fn reserve(&self, additional: usize) {
        if let Err(err) = self.try_reserve(additional) {
            panic!("mapguard: cannot reserve {additional} entries: {err}");
        }
    }

    /// Makes room for at least `additional` more entries, or says why it cannot.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::LockedMap<u64, u64> = mapguard::LockedMap::new();
    /// assert!(map.try_reserve(10).is_ok());
    /// assert_eq!(map.try_reserve(usize::MAX), Err(mapguard::ReserveError::CapacityOverflow));
    /// ```
    #[track_caller]
    pub fn try_reserve(&self, additional: usize) -> Result<(), ReserveError> {
        let rehash = |(k, _): &(K, V)| self.hasher.hash_one(k);
        growth::try_reserve(&mut self.table.write(), additional, rehash)
    }

    /// Shrinks the table as far as its entries allow.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::LockedMap<u64, u64> = mapguard::LockedMap::with_capacity(1000);
    /// map.insert(1, 1);
    /// map.shrink_to_fit();
    /// assert!(map.capacity() < 1000);
    /// ```
    #[track_caller]
    pub fn shrink_to_fit(&self) {
        // hashbrown shrinks into a new table only: a panicking `Hash` loses nothing (see
        // `crate::growth`).
        self.table
            .write()
            .shrink_to_fit(|(k, _)| self.hasher.hash_one(k));
    }
}

impl<K, V, S: Default> Default for LockedMap<K, V, S> {
    fn default() -> Self {
        Self::with_hasher(S::default())
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for LockedMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(&self.iter()).finish()
    }
}

impl<K: Clone, V: Clone, S: Clone> Clone for LockedMap<K, V, S> {
    /// Copies the table under its read lock.
    #[track_caller]
    fn clone(&self) -> Self {
        Self {
            table: CachePadded::new(TableLock::new(self.table.read().clone())),
            hasher: self.hasher.clone(),
            // A clone counts from zero, with the same settings and observer.
            instr: self.instr.get().map_or_else(Slot::empty, |instr| {
                instr.settings().build_locked("LockedMap")
            }),
        }
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for LockedMap<K, V, S> {
    #[track_caller]
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        (&*self).extend(iter);
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for &LockedMap<K, V, S> {
    /// Inserts every pair under one write lock.
    #[track_caller]
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        let hasher = &self.hasher;
        let mut table = self.write_table(self.instr.get());
        let rehash = |(k, _): &(K, V)| hasher.hash_one(k);
        growth::reserve(&mut table, iter.size_hint().0, rehash);
        for (key, value) in iter {
            let hash = hasher.hash_one(&key);
            match growth::entry(&mut table, hash, |(k, _)| *k == key, rehash) {
                TableEntry::Occupied(mut entry) => entry.get_mut().1 = value,
                TableEntry::Vacant(entry) => {
                    entry.insert((key, value));
                }
            }
        }
    }
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> FromIterator<(K, V)> for LockedMap<K, V, S> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = Self::default();
        map.extend(iter);
        map
    }
}

#[cfg(feature = "serde")]
mod serde_impls {
    use std::hash::{BuildHasher, Hash};

    use serde::de::{Deserialize, Deserializer};
    use serde::ser::{Serialize, SerializeMap, Serializer};

    use super::{LockedMap, LockedMapBuilder};
    use crate::serde_map::FillMap;
    use crate::{BuildError, ReserveError};

    impl<K: Serialize, V: Serialize, S> Serialize for LockedMap<K, V, S> {
        /// Serializes under the read lock: a consistent snapshot.
        fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
            let locked = self.iter();
            let mut map = serializer.serialize_map(Some(locked.len()))?;
            for (key, value) in &locked {
                map.serialize_entry(key, value)?;
            }
            map.end()
        }
    }

    impl<'de, K, V, S> Deserialize<'de> for LockedMap<K, V, S>
    where
        K: Deserialize<'de> + Hash + Eq,
        V: Deserialize<'de>,
        S: BuildHasher + Default,
    {
        /// Trusts the length the input announces only up to 1 MiB of presized entries; a
        /// table that cannot grow for the entries that come is a deserializer error.
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            crate::serde_map::deserialize(deserializer)
        }
    }

    impl<K: Hash + Eq, V, S: BuildHasher + Default> FillMap<K, V> for LockedMap<K, V, S> {
        fn tables() -> usize {
            1
        }

        fn with_room(entries: usize) -> Result<Self, BuildError> {
            LockedMapBuilder::new()
                .hasher(S::default())
                .capacity(entries)
                .build()
        }

        fn put(&self, key: K, value: V) -> Result<(), ReserveError> {
            // Deserialization has the map to itself: the room stays until the insert.
            self.try_reserve(1)?;
            self.insert(key, value);
            Ok(())
        }
    }
}

fn removed_counter(removed: bool) -> Counter {
    if removed {
        Counter::RemoveHit
    } else {
        Counter::RemoveMiss
    }
}
