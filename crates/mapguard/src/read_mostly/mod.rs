//! [`ReadMostlyMap`]: a concurrent map for keys that are written once and read many times,
//! and for threads that work on disjoint key sets (the two cases Go documents for `sync.Map`).
//!
//! # Design
//! The map is split into shards by the top bits of the key's hash times an odd constant (bits
//! independent of those a table probes and tags with). Each shard is an open-addressing table
//! of slots in groups of eight, probed group by group: a slot holds an atomic pointer to its
//! entry (the key and the value, in a cell of its shard's blocks), and each group has a
//! control word with one byte per slot (never used, emptied, or used with 7 more bits of the
//! key's hash). An entry never changes once published; only slot pointers are swapped:
//!
//! - **A read** hashes the key, *pins* the thread (copies the global epoch into a record only
//!   this thread writes, plus a compiler fence), loads the shard's table pointer, matches the
//!   key's control byte against a whole group's control word at once, compares the key only in
//!   the entries of the slots that match, and unpins. No lock, no retry loop, no write to
//!   memory another core reads: it is wait-free and its cost does not depend on what writers
//!   do. This is checked by counting, not only measured: `tests/read_writes.rs` runs reads in
//!   a build whose atomics and locks count every shared store, read-modify-write and fence,
//!   while other threads write, and asserts none.
//! - **A write** locks the key's shard (a mutex only writers take). An overwrite publishes a
//!   new entry (the key given and the new value) with one release store; a new key's entry
//!   goes into the first emptied slot of its probe sequence, or the never-used slot that ends
//!   it, whose control byte is published last. The replaced entry is *retired*: dropped once
//!   every reader that might still hold it has unpinned (epoch-based reclamation; see below).
//!   Writes to different shards never wait for each other, and no write ever waits for a
//!   reader.
//! - **Removal** nulls the slot's pointer and retires the entry; the slot is free for the next
//!   new key of its group at once.
//! - **Growth** rebuilds one shard's table, under that shard's lock, when 7/8 of its slots are
//!   taken or emptied: it moves the entry pointers into a new table at most 3/4 full, placing
//!   them by their hash (`K::hash` runs again; no key is cloned or moved), and publishes the
//!   new table with one store. Readers on the old table keep reading a frozen, consistent
//!   copy. A shard whose live entries fall below 1/8 of its slots shrinks the same way, and one
//!   left empty frees its table.
//!
//! Compared with Go's classic `sync.Map`: new keys take their shard's lock, not a map-wide one,
//! and there is no read-only/dirty pair, so no O(n) copy after a promotion and no miss counting;
//! a rebuild is the amortized growth of one shard's table, as in any hash table.
//!
//! # Reclamation
//! Memory is reclaimed with epochs shared by all maps of the process: a global epoch moves on
//! only when every pinned thread has seen it, and a retired object is freed two epochs later.
//! Advancing costs a `membarrier` system call on Linux (which lets a pin avoid a `SeqCst` fence)
//! and is tried by each writing thread once per few thousand objects it retired, or by a shard
//! whose list of retired objects grew past a bound (a replaced table counts for its size).
//! Entries live in cells that each shard carves from chunks it allocates (16 bytes for a
//! `u64` key and value, packed, where separate allocations would take more); the cell of an
//! expired entry is not freed but refilled by the shard's next stores, the most recently
//! expired first, so overwrites and insert/remove churn skip the allocator. A shard's chunks are freed together
//! once it has no entry and nothing retired (checked by [`clear`](ReadMostlyMap::clear) and
//! [`reclaim`](ReadMostlyMap::reclaim)), or with the map: a shard that shrinks keeps the
//! cells of its largest size until then. A [`Ref`] (or an iterator) keeps
//! its thread pinned: while one is alive anywhere in the process, retired entries of every map
//! wait. [`clear`](ReadMostlyMap::clear) frees what it removed before returning unless such a
//! reference is alive; dropping the map frees everything.
//!
//! A replaced or removed value is therefore dropped later, by whichever write (or `clear`,
//! `reclaim`, or the map's drop) collects its batch. If its `Drop` panics, the rest of the
//! batch is dropped all the same, and that call then panics ("mapguard: a value's Drop
//! panicked while ...", naming the call, its shard and the call that replaced the value, with
//! the value's own message); a write that panics so does it before it changes anything.
//!
//! The publish/retire protocol is model-checked with loom on the map's own code
//! (`tests/loom_read_mostly.rs`): reads racing growth, overwrites and removals never see a
//! freed or torn key or value, and every replaced value is dropped exactly once.
//!
//! # Deadlocks
//! The map cannot deadlock through its API: a [`Ref`] pins an epoch and holds no lock, reads
//! never wait, and a shard's write lock is held only inside one call, where only the key's and
//! value's own `Hash`, `Eq`, `Clone` and `Drop` run (a write from there to the same shard
//! panics with "deadlock avoided" instead of waiting for itself).
//!
//! This module owns the public API; the tables, pointers and epochs live in `crate::raw`.

mod builder;
mod iter;
#[cfg(feature = "rayon")]
mod rayon;
#[cfg(feature = "serde")]
mod serde;

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::ops::Deref;
use std::panic::Location;

use crate::Equivalent;
use crate::raw::read_mostly::{Decision, Lookup, Pinned, RawReadMostly};
use crate::stats::{Counter, Instrument, Settings, Slot, WriteOp};

pub use builder::ReadMostlyMapBuilder;
pub use iter::Iter;

/// The hasher [`ReadMostlyMap`] uses unless told otherwise (foldhash's fast, randomly seeded
/// hasher, as for [`ShardedMap`](crate::ShardedMap)).
pub type DefaultHashBuilder = crate::sharded::DefaultHashBuilder;

/// A concurrent hash map whose reads take no lock and write no shared memory, for keys that are
/// mostly read. See the [module docs](self) for the design.
///
/// # Guarantees
/// - **Reads are wait-free** ([`get`](Self::get), [`get_cloned`](Self::get_cloned),
///   [`contains_key`](Self::contains_key), iteration): they never wait, never retry and write
///   only the calling thread's own epoch record. Readers on different cores do not slow each
///   other down, and no writer makes them wait. (A thread's very first read claims its record:
///   a one-time, lock-free step.)
/// - **Writes lock one shard** (a lock readers never take). An overwrite publishes a new entry
///   with one atomic store (in a cell the shard reuses, not a new allocation, once the map is
///   warm); readers see the old or the new value, whole.
/// - **Each single-key call is atomic** (linearizable), including
///   [`get_or_insert`](Self::get_or_insert), [`swap`](Self::swap),
///   [`compare_exchange`](Self::compare_exchange) and [`remove_if_eq`](Self::remove_if_eq).
/// - **Iteration** visits the shards one at a time, slot by slot, without locking: a key
///   present for the whole iteration is seen exactly once, with a value it had during the
///   iteration; a key inserted or removed meanwhile may or may not be seen, and one removed and
///   inserted again meanwhile may be seen twice (in its old slot and its new one).
/// - **[`len`](Self::len)** sums per-shard counts without locking: under concurrent writes it
///   may be off by the writes in flight.
/// - **References** ([`Ref`]) stay valid while they live, even if the entry is overwritten or
///   removed meanwhile; they keep the calling thread pinned (see the module docs on
///   reclamation), so do not keep one for long.
/// - **Never a silent hang**: a reference holds no lock, so holding any number of them while
///   writing any key cannot deadlock. Only closures that run under a shard's write lock
///   ([`compute`](Self::compute), [`update`](Self::update), [`remove_if`](Self::remove_if),
///   [`retain`](Self::retain), `V::eq` in the compare calls, and `Hash`/`Eq`/`Drop` of keys
///   and values) must not write to the same shard: such a write panics, naming the call.
///
/// # What it does not offer, and why
/// - **No `get_mut`, no entry guard, no in-place `update`:** readers hold plain references to
///   published entries with no lock between them and a writer, so an entry is never written
///   once published. [`update`](Self::update) and [`compute`](Self::compute) publish a new
///   value instead. For in-place mutation of large values under a guard, use
///   [`ShardedMap`](crate::ShardedMap) (`get_mut`, `entry`, `update`).
/// - **No `try_get`:** [`get`](Self::get) never waits and never panics, whatever the calling
///   thread holds, so there is nothing for a `try_` form to report.
/// - **Lookups take any [`Equivalent`] key**, not only a `Borrow`ed one.
///
/// # Examples
/// ```
/// use mapguard::ReadMostlyMap;
/// use std::sync::Arc;
///
/// let config = Arc::new(ReadMostlyMap::new());
/// config.insert("timeout_ms".to_string(), 250u64);
/// let reader = {
///     let config = Arc::clone(&config);
///     std::thread::spawn(move || config.get_cloned("timeout_ms"))
/// };
/// assert_eq!(reader.join().unwrap(), Some(250));
/// assert!(config.get("retries").is_none());
/// ```
pub struct ReadMostlyMap<K, V, S = DefaultHashBuilder> {
    raw: RawReadMostly<K, V>,
    hasher: S,
    /// Statistics and observer; `None` (one branch per operation) when neither is on.
    instr: Slot<K>,
}

/// A reference to an entry of a [`ReadMostlyMap`], dereferencing to the value.
///
/// It stays valid while it lives, even if the key is overwritten or removed meanwhile (it then
/// shows the value it was created with). It keeps the calling thread pinned, which delays the
/// freeing of replaced entries in the whole process: drop it soon. `!Send`; [`Sync`](crate#what-blocks-and-what-never-does) when `K` and
/// `V` are.
///
/// # Examples
/// ```
/// let map = mapguard::ReadMostlyMap::new();
/// map.insert(1, "one".to_string());
/// let one = map.get(&1).unwrap();
/// map.insert(1, "uno".to_string());
/// assert_eq!(*one, "one");
/// assert_eq!((*one.key(), one.value().as_str()), (1, "one"));
/// ```
pub struct Ref<'a, K, V> {
    entry: Pinned<'a, K, V>,
}

impl<'a, K, V> Ref<'a, K, V> {
    fn new(entry: Pinned<'a, K, V>) -> Self {
        Self { entry }
    }

    /// The key of the entry.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert("k", 1);
    /// assert_eq!(*map.get("k").unwrap().key(), "k");
    /// ```
    pub fn key(&self) -> &K {
        self.entry.key()
    }

    /// The value of the entry.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert("k", 1);
    /// assert_eq!(*map.get("k").unwrap().value(), 1);
    /// ```
    pub fn value(&self) -> &V {
        self.entry.value()
    }

    /// The key and the value.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert('a', 1);
    /// let entry = map.get(&'a').unwrap();
    /// assert_eq!(entry.pair(), (&'a', &1));
    /// ```
    pub fn pair(&self) -> (&K, &V) {
        (self.entry.key(), self.entry.value())
    }
}

impl<K, V> Deref for Ref<'_, K, V> {
    type Target = V;

    fn deref(&self) -> &V {
        self.entry.value()
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

// A panic anywhere in the map's operations, user closures included, leaves the map
// consistent and unlocked (crate docs, "What blocks and what never does"), so it may be
// observed after one.
impl<K, V, S> std::panic::UnwindSafe for ReadMostlyMap<K, V, S> {}
impl<K, V, S> std::panic::RefUnwindSafe for ReadMostlyMap<K, V, S> {}

impl<K, V> ReadMostlyMap<K, V, DefaultHashBuilder> {
    /// An empty map with the default shard count and hasher. Allocates no table until the first
    /// insert.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ReadMostlyMap<String, u32> = mapguard::ReadMostlyMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_hasher(DefaultHashBuilder::default())
    }

    /// An empty map with room for about `capacity` entries before any shard grows.
    ///
    /// # Panics
    /// If the capacity cannot be allocated; [`builder`](Self::builder) returns an error instead.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ReadMostlyMap<u64, u64> = mapguard::ReadMostlyMap::with_capacity(1000);
    /// assert!(map.capacity() >= 1000);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, DefaultHashBuilder::default())
    }

    /// A builder to choose the shard count, capacity and hasher, with errors for bad values.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::<u64, u64>::builder().shards(4).build()?;
    /// assert_eq!(map.shard_count(), 4);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn builder() -> ReadMostlyMapBuilder<K, V, DefaultHashBuilder> {
        ReadMostlyMapBuilder::new()
    }
}

impl<K, V, S> ReadMostlyMap<K, V, S> {
    /// An empty map with the default shard count, hashing keys with `hasher`.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ReadMostlyMap<u64, u64, _> =
    ///     mapguard::ReadMostlyMap::with_hasher(foldhash::fast::FixedState::with_seed(7));
    /// map.insert(1, 2);
    /// assert_eq!(map.get_cloned(&1), Some(2));
    /// ```
    pub fn with_hasher(hasher: S) -> Self {
        Self::with_capacity_and_hasher(0, hasher)
    }

    /// An empty map with room for about `capacity` entries, hashing keys with `hasher`.
    ///
    /// # Panics
    /// If the capacity cannot be allocated; [`builder`](Self::builder) returns an error instead.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ReadMostlyMap<u64, u64, _> =
    ///     mapguard::ReadMostlyMap::with_capacity_and_hasher(64, foldhash::fast::RandomState::default());
    /// assert!(map.capacity() >= 64);
    /// ```
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        match ReadMostlyMapBuilder::new()
            .hasher(hasher)
            .capacity(capacity)
            .build()
        {
            Ok(map) => map,
            Err(err) => panic!("mapguard: {err}"),
        }
    }

    pub(crate) fn from_raw(
        mut raw: RawReadMostly<K, V>,
        hasher: S,
        settings: &Settings<K>,
    ) -> Self {
        if settings.stats() {
            raw.enable_stats();
        }
        let instr = settings.build("ReadMostlyMap", raw.shard_count());
        Self { raw, hasher, instr }
    }

    /// The number of shards (a power of two): how many writers of new keys can work at once.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::<u8, u8>::builder().shards(16).build()?;
    /// assert_eq!(map.shard_count(), 16);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn shard_count(&self) -> usize {
        self.raw.shard_count()
    }

    /// The map's hasher.
    ///
    /// # Examples
    /// ```
    /// use std::hash::BuildHasher;
    /// let map: mapguard::ReadMostlyMap<u8, u8> = mapguard::ReadMostlyMap::new();
    /// let _ = map.hasher().hash_one(5u8);
    /// ```
    pub fn hasher(&self) -> &S {
        &self.hasher
    }

    /// The number of entries (see the type's docs for what it sees under writes).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert('a', 1);
    /// map.insert('b', 2);
    /// assert_eq!(map.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the map has no entries.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// assert!(map.is_empty());
    /// map.insert(1, 1);
    /// assert!(!map.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// About how many entries fit before some shard's table is rebuilt (with keys spread evenly
    /// over the shards).
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ReadMostlyMap<u32, u32> = mapguard::ReadMostlyMap::with_capacity(500);
    /// assert!(map.capacity() >= 500);
    /// ```
    pub fn capacity(&self) -> usize {
        self.raw.key_capacity()
    }

    /// Removes every entry. The shards' tables are released, and their memory is freed before
    /// `clear` returns unless a [`Ref`] or iterator of some map is alive on some thread (then
    /// later writes or dropping the map free it).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert(1, "one");
    /// map.clear();
    /// assert!(map.is_empty());
    /// assert!(map.get(&1).is_none());
    /// ```
    #[track_caller]
    pub fn clear(&self) {
        self.raw.clear();
        let site = Location::caller();
        self.note_write(WriteOp::Clear, None, None, Some(Counter::Clear), site);
    }

    /// A snapshot of the map's statistics, or `None` unless it was built with
    /// `builder().stats(true)`. See [`crate::stats`] for what is exact and what is sampled.
    ///
    /// Per shard, a `ReadMostlyMap` snapshot reports its write lock: acquisitions, contended
    /// acquisitions and their wait (`read_locks_estimate` is 0: reads take no lock).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::builder().stats(true).build()?;
    /// map.insert("a", 1);
    /// map.insert("a", 2);
    /// map.remove("b");
    /// let stats = map.stats().unwrap();
    /// assert_eq!((stats.inserts, stats.overwrites, stats.removes_miss), (1, 1, 1));
    /// assert!(mapguard::ReadMostlyMap::<u8, u8>::new().stats().is_none());
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    #[cfg(feature = "stats")]
    pub fn stats(&self) -> Option<crate::stats::StatsSnapshot> {
        let instr = self.instr.get().filter(|instr| instr.records())?;
        // Reads take no lock: per shard, the write lock's figures only.
        let shards = (self.raw.shard_figures().enumerate())
            .map(
                |(index, (entries, write_locks, contended, wait_ns))| crate::stats::ShardStats {
                    index,
                    entries,
                    write_locks,
                    read_locks_estimate: 0,
                    contended,
                    wait_ns,
                },
            )
            .collect();
        instr.snapshot(self.len(), self.capacity(), shards)
    }

    /// Takes a [`stats`](Self::stats) snapshot and sets the `metrics` counters and gauges
    /// registered when the map was built (feature `metrics`); call it from a scrape handler
    /// or a periodic task. `None` (and nothing published) when statistics are off.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::builder().name("cache").stats(true).build()?;
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

    /// An iterator over the entries; see the type's docs for what it sees under writes.
    ///
    /// The iterator and its items keep the thread pinned while they live.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert(1, 10);
    /// map.insert(2, 20);
    /// let sum: i32 = map.iter().map(|entry| *entry).sum();
    /// assert_eq!(sum, 30);
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter::new(self.raw.iter())
    }

    /// How many replaced or removed entries wait to be freed (they are freed once no thread
    /// that might read them is pinned; see the module docs).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert(1, 1);
    /// map.insert(1, 2);
    /// map.reclaim();
    /// assert_eq!(map.pending_reclamation(), 0);
    /// ```
    pub fn pending_reclamation(&self) -> usize {
        self.raw.garbage_len()
    }

    /// Frees every replaced or removed entry that no reader can still hold, without waiting.
    /// (Values are dropped; a shard keeps the emptied value cells for its next stores, and
    /// frees them once it has no entry and nothing retired, here, in [`clear`](Self::clear) or
    /// with the map.)
    ///
    /// Writes do this on their own in batches; call it to release memory at once, for example
    /// after a burst of overwrites.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// for i in 0..100 {
    ///     map.insert(1, i);
    /// }
    /// map.reclaim();
    /// assert_eq!(map.pending_reclamation(), 0);
    /// ```
    #[track_caller]
    pub fn reclaim(&self) {
        self.raw.collect();
    }
}

impl<K, V, S> ReadMostlyMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    #[inline(always)]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// A reference to the entry of `key`, or `None` if the key is absent. Wait-free.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert("a".to_string(), 1);
    /// assert!(map.get("a").is_some());
    /// assert_eq!(*map.get("a").unwrap(), 1);
    /// assert!(map.get("b").is_none());
    /// ```
    #[inline(always)]
    pub fn get<Q>(&self, key: &Q) -> Option<Ref<'_, K, V>>
    where
        Q: Hash + Equivalent<K> + ?Sized,
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
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn get_counted<'a, Q>(&'a self, key: &Q, found: &mut Option<Ref<'a, K, V>>)
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        *found = self.get_with::<true, Q>(key);
    }

    /// Counts a lookup of `key` (hash `hash`) as it starts, if `COUNT` (in the hooked copy
    /// of a read method; see `Slot::counts_reads`), and samples it when chosen.
    #[inline(always)]
    fn note_read_start<const COUNT: bool, Q>(&self, key: &Q, hash: u64)
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        if COUNT && self.instr.read_start(hash) {
            self.sample_read(key, hash);
        }
    }

    /// A sampled lookup of `key`, before the lookup itself: feeds the sketch, with the stored
    /// key looked up again (plainly) when the map reports keys.
    #[cold]
    #[inline(never)]
    fn sample_read<Q>(&self, key: &Q, hash: u64)
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        if self.instr.samples_keys() {
            let found = self.get_with::<false, Q>(key);
            self.instr
                .sample_read(hash, usize::MAX, found.as_ref().map(|found| found.key()));
        } else {
            self.instr.sample_read(hash, usize::MAX, None);
        }
    }

    /// The body of [`get`](Self::get), with the hooks if `COUNT`.
    #[inline(always)]
    #[track_caller]
    fn get_with<const COUNT: bool, Q>(&self, key: &Q) -> Option<Ref<'_, K, V>>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        self.note_read_start::<COUNT, Q>(key, hash);
        let found = self.raw.get(hash, |k| key.equivalent(k));
        if !COUNT {
            return found.map(Ref::new);
        }
        match found {
            Some(entry) => Some(Ref::new(entry)),
            None => {
                self.instr.read_missed_if::<COUNT>();
                None
            }
        }
    }

    /// A clone of the value of `key`. Wait-free; the thread is pinned only during the call.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert(1, vec![1, 2]);
    /// assert_eq!(map.get_cloned(&1), Some(vec![1, 2]));
    /// ```
    #[inline(always)]
    pub fn get_cloned<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        if self.instr.counts_reads() {
            return self.get_cloned_counted(key);
        }
        self.get_cloned_with::<false, Q>(key)
    }

    /// [`get_cloned`](Self::get_cloned) with the statistics and observer hooks: a second copy of the
    /// body, so that the plain copy has none.
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn get_cloned_counted<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        self.get_cloned_with::<true, Q>(key)
    }

    /// The body of [`get_cloned`](Self::get_cloned), with the hooks if `COUNT`.
    #[inline(always)]
    #[track_caller]
    fn get_cloned_with<const COUNT: bool, Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        let hash = self.hash(key);
        self.note_read_start::<COUNT, Q>(key, hash);
        let found = self.raw.read(hash, |k| key.equivalent(k), V::clone);
        if found.is_none() {
            self.instr.read_missed_if::<COUNT>();
        }
        found
    }

    /// Whether `key` is present. Wait-free.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert(7, ());
    /// assert!(map.contains_key(&7));
    /// assert!(!map.contains_key(&8));
    /// ```
    #[inline(always)]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        if self.instr.counts_reads() {
            return self.contains_key_counted(key);
        }
        self.contains_key_with::<false, Q>(key)
    }

    /// [`contains_key`](Self::contains_key) with the statistics and observer hooks: a second copy of the
    /// body, so that the plain copy has none.
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn contains_key_counted<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.contains_key_with::<true, Q>(key)
    }

    /// The body of [`contains_key`](Self::contains_key), with the hooks if `COUNT`.
    #[inline(always)]
    #[track_caller]
    fn contains_key_with<const COUNT: bool, Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        self.note_read_start::<COUNT, Q>(key, hash);
        let found = self.raw.contains(hash, |k| key.equivalent(k));
        if !found {
            self.instr.read_missed_if::<COUNT>();
        }
        found
    }
}

/// Writes.
impl<K, V, S> ReadMostlyMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// Stores `value` under `key` (Go's `Store`); returns `true` if it replaced a value.
    ///
    /// An overwrite publishes a new entry of this `key` and `value` and frees the old entry
    /// (its key and value) once no reader holds it. Use [`swap`](Self::swap) to see the replaced
    /// value.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// assert!(!map.insert(1, "a"));
    /// assert!(map.insert(1, "b"));
    /// assert_eq!(map.get_cloned(&1), Some("b"));
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn insert(&self, key: K, value: V) -> bool {
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
    fn insert_counted(&self, instr: &Instrument<K>, key: K, value: V) -> bool {
        self.insert_with(Some(instr), key, value)
    }

    /// The body of [`insert`](Self::insert), with the hooks of `instr` if any.
    #[inline(always)]
    #[track_caller]
    fn insert_with(&self, instr: Option<&Instrument<K>>, key: K, value: V) -> bool {
        let hash = self.hash(&key);
        let outcome = self
            .raw
            .write::<false>(hash, OwnedKey(key), &|k| self.hash(k), |_| {
                Decision::Store(value)
            });
        let counter = if outcome.existed {
            Counter::Overwrite
        } else {
            Counter::Insert
        };
        let site = Location::caller();
        self.note_write_in(
            instr,
            WriteOp::Insert,
            Some(hash),
            None,
            Some(counter),
            site,
        );
        outcome.existed
    }

    /// Stores `value` under `key` and returns a reference to the value it replaced (Go's
    /// `Swap`).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// assert!(map.swap(1, 'a').is_none());
    /// assert_eq!(*map.swap(1, 'b').unwrap(), 'a');
    /// ```
    #[track_caller]
    pub fn swap(&self, key: K, value: V) -> Option<Ref<'_, K, V>> {
        self.swap_as(WriteOp::Swap, key, value)
    }

    #[track_caller]
    fn swap_as(&self, op: WriteOp, key: K, value: V) -> Option<Ref<'_, K, V>> {
        let hash = self.hash(&key);
        let outcome = self
            .raw
            .write::<true>(hash, OwnedKey(key), &|k| self.hash(k), |_| {
                Decision::Store(value)
            });
        let counter = if outcome.existed {
            Counter::Overwrite
        } else {
            Counter::Insert
        };
        self.note_write(op, Some(hash), None, Some(counter), Location::caller());
        outcome.previous.map(Ref::new)
    }

    /// A reference to the value of `key`, storing `value` first if the key is absent (Go's
    /// `LoadOrStore`). The check and the store are one atomic step.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// assert_eq!(*map.get_or_insert(1, 'a'), 'a');
    /// assert_eq!(*map.get_or_insert(1, 'b'), 'a');
    /// ```
    #[track_caller]
    pub fn get_or_insert(&self, key: K, value: V) -> Ref<'_, K, V> {
        if let Some(found) = self.get(&key) {
            return found;
        }
        self.store_absent(WriteOp::GetOrInsert, key, || value).0
    }

    /// A reference to the value of `key`, storing `make()` first if the key is absent.
    ///
    /// `make` runs without any lock held (so it may use this map), and only when the key was
    /// absent just before; if another thread stores the key first, that value wins and the one
    /// `make` returned is dropped.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// assert_eq!(*map.get_or_insert_with(1, || 10), 10);
    /// assert_eq!(*map.get_or_insert_with(1, || 20), 10);
    /// ```
    #[track_caller]
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> Ref<'_, K, V> {
        if let Some(found) = self.get(&key) {
            return found;
        }
        let value = make();
        self.store_absent(WriteOp::GetOrInsert, key, || value).0
    }

    /// Removes `key` and returns a reference to the value it had (Go's `LoadAndDelete`).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert(1, 'a');
    /// assert_eq!(*map.remove(&1).unwrap(), 'a');
    /// assert!(map.remove(&1).is_none());
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn remove<Q>(&self, key: &Q) -> Option<Ref<'_, K, V>>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        #[cfg(feature = "stats")]
        if let Some(instr) = self.instr.get() {
            // Through a place of its own: returned directly, the twin's result place
            // would be shared with this path and keep the result in memory here too.
            let mut found = None;
            self.remove_counted(instr, key, &mut found);
            return found;
        }
        self.remove_with(None, key)
    }

    /// [`remove`](Self::remove) with the statistics and observer hooks: a second copy of the
    /// body, so that the plain copy has none.
    #[cfg(feature = "stats")]
    #[inline(always)]
    #[track_caller]
    fn remove_counted<'a, Q>(
        &'a self,
        instr: &Instrument<K>,
        key: &Q,
        found: &mut Option<Ref<'a, K, V>>,
    ) where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        *found = self.remove_with(Some(instr), key);
    }

    /// The body of [`remove`](Self::remove), with the hooks of `instr` if any.
    #[inline(always)]
    #[track_caller]
    fn remove_with<Q>(&self, instr: Option<&Instrument<K>>, key: &Q) -> Option<Ref<'_, K, V>>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        let outcome = self
            .raw
            .write::<true>(hash, BorrowedKey(key), &|k| self.hash(k), |_| {
                Decision::Remove
            });
        let counter = removed_counter(outcome.previous.is_some());
        self.note_write_in(
            instr,
            WriteOp::Remove,
            Some(hash),
            None,
            Some(counter),
            Location::caller(),
        );
        outcome.previous.map(Ref::new)
    }

    /// Removes `key` only if its value equals `current` (Go's `CompareAndDelete`); returns
    /// whether it did.
    ///
    /// `V::eq` runs under the shard's write lock: reads of the map from it are fine, a write to
    /// the same shard panics (it would wait for itself).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert(1, 5);
    /// assert!(!map.remove_if_eq(&1, &6));
    /// assert!(map.remove_if_eq(&1, &5));
    /// assert!(!map.contains_key(&1));
    /// ```
    #[track_caller]
    pub fn remove_if_eq<Q>(&self, key: &Q, current: &V) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: PartialEq,
    {
        let hash = self.hash(key);
        let mut removed = false;
        self.raw.write::<false>(
            hash,
            BorrowedKey(key),
            &|k| self.hash(k),
            |present| match present {
                Some((_, value)) if value == current => {
                    removed = true;
                    Decision::Remove
                }
                _ => Decision::Keep,
            },
        );
        let counter = removed_counter(removed);
        let site = Location::caller();
        self.note_write(WriteOp::RemoveIfEq, Some(hash), None, Some(counter), site);
        removed
    }

    /// Stores `new` under `key` only if the present value equals `current` (Go's
    /// `CompareAndSwap`). Returns the replaced value on success, or the present value (`None`
    /// if absent) on failure; `new` is dropped then.
    ///
    /// `V::eq` runs under the shard's write lock: reads of the map from it are fine, a write to
    /// the same shard panics (it would wait for itself).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert("n", 1);
    /// assert_eq!(*map.compare_exchange("n", &1, 2).unwrap(), 1);
    /// assert_eq!(*map.compare_exchange("n", &1, 3).unwrap_err().unwrap(), 2);
    /// assert!(map.compare_exchange("m", &1, 3).unwrap_err().is_none());
    /// ```
    #[allow(clippy::type_complexity)]
    #[track_caller]
    pub fn compare_exchange(
        &self,
        key: K,
        current: &V,
        new: V,
    ) -> Result<Ref<'_, K, V>, Option<Ref<'_, K, V>>>
    where
        V: PartialEq,
    {
        let hash = self.hash(&key);
        let outcome =
            self.raw.write::<true>(
                hash,
                OwnedKey(key),
                &|k| self.hash(k),
                |present| match present {
                    Some((_, value)) if value == current => Decision::Store(new),
                    _ => Decision::Keep,
                },
            );
        let op = WriteOp::CompareExchange;
        self.note_write(
            op,
            Some(hash),
            None,
            Some(Counter::Compute),
            Location::caller(),
        );
        match outcome.previous {
            Some(previous) => Ok(Ref::new(previous)),
            None => Err(outcome.current.map(Ref::new)),
        }
    }

    /// Applies `read` to the value of `key` and returns what it returns, or `None` if the key
    /// is absent: a read that leaves no reference behind (nothing to hold across an `.await`).
    /// `read` runs with the thread pinned, as a [`Ref`] keeps it; it may read and write the
    /// map.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert("a", vec![1, 2, 3]);
    /// assert_eq!(map.with("a", |v| v.len()), Some(3));
    /// assert_eq!(map.with("b", |v| v.len()), None);
    /// ```
    pub fn with<Q, R>(&self, key: &Q, read: impl FnOnce(&V) -> R) -> Option<R>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        if self.instr.counts_reads() {
            self.note_read_start::<true, Q>(key, hash);
            let found = self.raw.read(hash, |k| key.equivalent(k), read);
            if found.is_none() {
                self.instr.read_missed_if::<true>();
            }
            return found;
        }
        self.raw.read(hash, |k| key.equivalent(k), read)
    }

    /// The keys, as [`iter`](Self::iter) visits them (each a [`KeyRef`]).
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ReadMostlyMap<u8, u8> = (0..3).map(|i| (i, 0)).collect();
    /// let mut keys: Vec<u8> = map.keys().map(|k| *k).collect();
    /// keys.sort();
    /// assert_eq!(keys, [0, 1, 2]);
    /// ```
    pub fn keys(&self) -> Keys<'_, K, V> {
        Keys(self.iter())
    }

    /// The values, as [`iter`](Self::iter) visits them: its [`Ref`]s, which dereference to
    /// the values.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ReadMostlyMap<u8, u8> = (0..3).map(|i| (i, i * 10)).collect();
    /// assert_eq!(map.values().map(|v| u32::from(*v)).sum::<u32>(), 30);
    /// ```
    pub fn values(&self) -> Iter<'_, K, V> {
        self.iter()
    }

    /// Stores `value` under `key` only if the key is absent, and returns a reference to it;
    /// if the key is present, returns the present value and `value` in the error, and changes
    /// nothing.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// assert_eq!(*map.try_insert(1, 'a').unwrap(), 'a');
    /// let err = map.try_insert(1, 'b').unwrap_err();
    /// assert_eq!(*err.current, 'a');
    /// assert_eq!(err.value, 'b');
    /// ```
    #[track_caller]
    pub fn try_insert(&self, key: K, value: V) -> Result<Ref<'_, K, V>, OccupiedError<'_, K, V>> {
        let mut value = Some(value);
        let (current, stored) = self.store_absent(WriteOp::TryInsert, key, || {
            value.take().expect("called once")
        });
        match value {
            Some(value) if !stored => Err(OccupiedError { current, value }),
            _ => Ok(current),
        }
    }

    /// A reference to the value of `key`, storing `make()` first if the key is absent, and
    /// whether it stored: `Ok` with the value it stored, `Err` with the one present (then
    /// `make` was not called). `make` runs under the shard's write lock (see
    /// [`get_or_insert_with`](Self::get_or_insert_with)).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// assert_eq!(*map.try_insert_with(1, || 'a').unwrap(), 'a');
    /// assert_eq!(*map.try_insert_with(1, || 'b').unwrap_err(), 'a');
    /// ```
    #[track_caller]
    pub fn try_insert_with(
        &self,
        key: K,
        make: impl FnOnce() -> V,
    ) -> Result<Ref<'_, K, V>, Ref<'_, K, V>> {
        match self.store_absent(WriteOp::GetOrInsert, key, make) {
            (current, true) => Ok(current),
            (current, false) => Err(current),
        }
    }

    /// Stores `make()` under `key` if it is absent; returns the value the key then has and
    /// whether it was stored.
    #[track_caller]
    fn store_absent(&self, op: WriteOp, key: K, make: impl FnOnce() -> V) -> (Ref<'_, K, V>, bool) {
        let hash = self.hash(&key);
        let mut stored = false;
        let outcome =
            self.raw.write::<true>(
                hash,
                OwnedKey(key),
                &|k| self.hash(k),
                |present| match present {
                    Some(_) => Decision::Keep,
                    None => {
                        stored = true;
                        Decision::Store(make())
                    }
                },
            );
        let counter = stored.then_some(Counter::Insert);
        self.note_write(op, Some(hash), None, counter, Location::caller());
        let current = outcome.current.expect("the key is present after the write");
        (Ref::new(current), stored)
    }

    /// Removes `key` if `condition` returns true for its key and value; returns a reference to
    /// the value removed. `condition` runs under the shard's write lock: reads of the map from
    /// it are fine, a write to the same shard panics (it would wait for itself).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert(1, 10);
    /// assert!(map.remove_if(&1, |_, v| *v > 10).is_none());
    /// assert_eq!(*map.remove_if(&1, |_, v| *v == 10).unwrap(), 10);
    /// assert!(map.is_empty());
    /// ```
    #[track_caller]
    pub fn remove_if<Q>(
        &self,
        key: &Q,
        condition: impl FnOnce(&K, &V) -> bool,
    ) -> Option<Ref<'_, K, V>>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        let outcome =
            self.raw
                .write::<true>(
                    hash,
                    BorrowedKey(key),
                    &|k| self.hash(k),
                    |present| match present {
                        Some((k, v)) if condition(k, v) => Decision::Remove,
                        _ => Decision::Keep,
                    },
                );
        let counter = removed_counter(outcome.previous.is_some());
        self.note_write(
            WriteOp::RemoveIf,
            Some(hash),
            None,
            Some(counter),
            Location::caller(),
        );
        outcome.previous.map(Ref::new)
    }

    /// Replaces the value of `key` by `change(&value)` and returns a reference to the new
    /// value; `None` (and `change` is not called) if the key is absent. Atomic with respect to
    /// other writes of the key: no write comes between the read of the old value and the
    /// store of the new. The new value goes into a new entry, under a clone of the stored key
    /// (entries never change once published), so `K: Clone`; [`compute`](Self::compute) takes
    /// an owned key instead. `change` runs under the shard's write lock (see
    /// [`remove_if`](Self::remove_if)).
    ///
    /// Readers that hold a [`Ref`] to the old value keep seeing it. For in-place mutation
    /// under a lock, use [`ShardedMap::update`](crate::ShardedMap::update).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ReadMostlyMap::new();
    /// map.insert("hits".to_owned(), 1);
    /// assert_eq!(*map.update("hits", |n| n + 1).unwrap(), 2);
    /// assert!(map.update("misses", |n| n + 1).is_none());
    /// ```
    #[track_caller]
    pub fn update<Q>(&self, key: &Q, change: impl FnOnce(&V) -> V) -> Option<Ref<'_, K, V>>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        K: Clone,
    {
        let hash = self.hash(key);
        let outcome =
            self.raw.write::<true>(
                hash,
                ClonedKey(key),
                &|k| self.hash(k),
                |present| match present {
                    Some((_, v)) => Decision::Store(change(v)),
                    None => Decision::Keep,
                },
            );
        let counter = outcome.existed.then_some(Counter::Compute);
        self.note_write(
            WriteOp::Update,
            Some(hash),
            None,
            counter,
            Location::caller(),
        );
        outcome.current.map(Ref::new)
    }

    /// Decides the fate of `key` from its current value (`None`: absent) in one atomic step:
    /// [`Action::Keep`] leaves it, [`Action::Set`] stores a value (under `key`), and
    /// [`Action::Remove`] removes it. Returns a reference to the value the key has afterwards,
    /// if any. `decide` runs under the shard's write lock (see [`remove_if`](Self::remove_if)).
    ///
    /// # Examples
    /// ```
    /// use mapguard::sharded::Action;
    ///
    /// let map = mapguard::ReadMostlyMap::new();
    /// let count = |n: Option<&u32>| Action::Set(n.map_or(1, |n| n + 1));
    /// assert_eq!(*map.compute("a", count).unwrap(), 1);
    /// assert_eq!(*map.compute("a", count).unwrap(), 2);
    /// assert!(map.compute("a", |_| Action::Remove).is_none());
    /// assert!(map.is_empty());
    /// ```
    #[track_caller]
    pub fn compute(
        &self,
        key: K,
        decide: impl FnOnce(Option<&V>) -> Action<V>,
    ) -> Option<Ref<'_, K, V>> {
        let hash = self.hash(&key);
        let mut changed = false;
        let outcome =
            self.raw.write::<true>(
                hash,
                OwnedKey(key),
                &|k| self.hash(k),
                |present| match decide(present.map(|(_, v)| v)) {
                    Action::Keep => Decision::Keep,
                    Action::Set(value) => {
                        changed = true;
                        Decision::Store(value)
                    }
                    Action::Remove => {
                        changed = present.is_some();
                        Decision::Remove
                    }
                },
            );
        let counter = changed.then_some(Counter::Compute);
        self.note_write(
            WriteOp::Compute,
            Some(hash),
            None,
            counter,
            Location::caller(),
        );
        outcome.current.map(Ref::new)
    }

    /// Keeps only the entries for which `keep` returns true, one shard at a time: each shard's
    /// write lock is held while `keep` runs over its entries (readers never wait; writers of
    /// that shard do). Entries written meanwhile to shards already visited are not seen.
    ///
    /// # Panics
    /// If `keep` panics: the entries it rejected before stay removed, the rest stay.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ReadMostlyMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// map.retain(|_, v| v % 2 == 0);
    /// assert_eq!(map.len(), 5);
    /// assert!(!map.contains_key(&3));
    /// ```
    #[track_caller]
    pub fn retain(&self, keep: impl FnMut(&K, &V) -> bool) {
        self.raw.retain(keep, &|k| self.hash(k));
        self.note_write(WriteOp::Retain, None, None, None, Location::caller());
    }

    /// Makes room for at least `additional` more entries, spread evenly over the shards, so
    /// that inserting them grows no table (a removal that leaves a shard below 1/8 full
    /// still shrinks it).
    ///
    /// # Panics
    /// If the room cannot be addressed or allocated; see [`try_reserve`](Self::try_reserve).
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ReadMostlyMap<u32, u32> = mapguard::ReadMostlyMap::new();
    /// map.reserve(1000);
    /// assert!(map.capacity() >= 1000);
    /// ```
    #[track_caller]
    pub fn reserve(&self, additional: usize) {
        if let Err(err) = self.try_reserve(additional) {
            panic!("mapguard: cannot reserve {additional} entries: {err}");
        }
    }

    /// [`reserve`](Self::reserve), returning an error instead of panicking.
    ///
    /// # Errors
    /// [`ReserveError::CapacityOverflow`](crate::ReserveError::CapacityOverflow) if a shard's
    /// table could not be addressed (then no shard changed), or
    /// [`ReserveError::AllocError`](crate::ReserveError::AllocError) if the allocator refused
    /// one (shards grown before keep their tables).
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ReadMostlyMap<u32, u32> = mapguard::ReadMostlyMap::new();
    /// assert!(map.try_reserve(usize::MAX).is_err());
    /// assert!(map.try_reserve(10).is_ok());
    /// ```
    #[track_caller]
    pub fn try_reserve(&self, additional: usize) -> Result<(), crate::ReserveError> {
        self.raw.reserve(additional, &|k| self.hash(k))
    }

    /// Shrinks every shard's table to the smallest that holds its entries (and frees those
    /// of empty shards). Readers never wait; writers of a shard wait while it is rebuilt.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ReadMostlyMap<u32, u32> = mapguard::ReadMostlyMap::with_capacity(10_000);
    /// map.insert(1, 1);
    /// map.shrink_to_fit();
    /// assert!(map.capacity() < 10_000);
    /// assert_eq!(map.get_cloned(&1), Some(1));
    /// ```
    #[track_caller]
    pub fn shrink_to_fit(&self) {
        self.raw.shrink_to_fit(&|k| self.hash(k));
    }
}

/// A key given by value: it can be stored.
struct OwnedKey<K>(K);

impl<K: Eq> Lookup<K> for OwnedKey<K> {
    fn matches(&self, stored: &K) -> bool {
        *stored == self.0
    }

    fn into_owned(self, _stored: Option<&K>) -> Option<K> {
        Some(self.0)
    }
}

/// A key given by reference: it can only be looked up.
struct BorrowedKey<'q, Q: ?Sized>(&'q Q);

impl<K, Q: Equivalent<K> + ?Sized> Lookup<K> for BorrowedKey<'_, Q> {
    fn matches(&self, stored: &K) -> bool {
        self.0.equivalent(stored)
    }

    fn into_owned(self, _stored: Option<&K>) -> Option<K> {
        None
    }
}

/// A key given by reference whose stored twin may be cloned to store a new value under it.
struct ClonedKey<'q, Q: ?Sized>(&'q Q);

impl<K: Clone, Q: Equivalent<K> + ?Sized> Lookup<K> for ClonedKey<'_, Q> {
    fn matches(&self, stored: &K) -> bool {
        self.0.equivalent(stored)
    }

    fn into_owned(self, stored: Option<&K>) -> Option<K> {
        stored.cloned()
    }
}

/// The error of [`ReadMostlyMap::try_insert`]: the key was present. Holds a reference to the
/// value in the map and the value that was not stored.
///
/// # Examples
/// ```
/// let map = mapguard::ReadMostlyMap::new();
/// map.insert(1, 'a');
/// let err = map.try_insert(1, 'b').unwrap_err();
/// assert_eq!((*err.current, err.value), ('a', 'b'));
/// ```
pub struct OccupiedError<'a, K, V> {
    /// The value in the map, which was kept.
    pub current: Ref<'a, K, V>,
    /// The value that was not stored.
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

/// What a [`compute`](ReadMostlyMap::compute) closure decides for its key.
pub use crate::sharded::Action;

/// The keys of a [`ReadMostlyMap`], from [`keys`](ReadMostlyMap::keys): each a [`KeyRef`].
pub struct Keys<'a, K, V>(Iter<'a, K, V>);

impl<'a, K, V> Iterator for Keys<'a, K, V> {
    type Item = KeyRef<'a, K, V>;

    fn next(&mut self) -> Option<KeyRef<'a, K, V>> {
        self.0.next().map(KeyRef)
    }
}

impl<K, V> fmt::Debug for Keys<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys").finish_non_exhaustive()
    }
}

/// A key of a [`ReadMostlyMap`], kept valid as a [`Ref`] keeps its value (it is one,
/// dereferencing to the key).
///
/// # Examples
/// ```
/// let map: mapguard::ReadMostlyMap<u8, u8> = [(3, 0)].into_iter().collect();
/// let key = map.keys().next().unwrap();
/// assert_eq!(*key, 3);
/// ```
pub struct KeyRef<'a, K, V>(Ref<'a, K, V>);

impl<K, V> Deref for KeyRef<'_, K, V> {
    type Target = K;

    fn deref(&self) -> &K {
        self.0.key()
    }
}

impl<K: fmt::Debug, V> fmt::Debug for KeyRef<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.key().fmt(f)
    }
}

impl<K: Hash + Eq + Clone, V: Clone, S: BuildHasher + Clone> Clone for ReadMostlyMap<K, V, S> {
    /// Copies the entries one shard at a time, without locking (as [`iter`](Self::iter)
    /// sees them), into a map with the same shard count, hasher and statistics settings
    /// (its counts start at zero).
    fn clone(&self) -> Self {
        let raw = RawReadMostly::new(self.raw.shard_count(), self.len())
            .unwrap_or_else(|err| panic!("mapguard: cannot clone a ReadMostlyMap: {err}"));
        let settings = self
            .instr
            .get()
            .map(|instr| instr.settings().clone())
            .unwrap_or_default();
        let clone = Self::from_raw(raw, self.hasher.clone(), &settings);
        for entry in self.iter() {
            clone.insert(entry.key().clone(), entry.value().clone());
        }
        clone
    }
}

impl<K: Hash + Eq, V: PartialEq, S: BuildHasher> PartialEq for ReadMostlyMap<K, V, S> {
    /// Whether both maps hold the same keys with equal values, compared without locking: under
    /// concurrent writes, the answer is that of some mix of the states each map went through.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|entry| other.with(entry.key(), |value| value == entry.value()) == Some(true))
    }
}

impl<K: Hash + Eq, V: Eq, S: BuildHasher> Eq for ReadMostlyMap<K, V, S> {}

impl<K, V, S: Default> Default for ReadMostlyMap<K, V, S> {
    fn default() -> Self {
        Self::with_hasher(S::default())
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for ReadMostlyMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for entry in self.iter() {
            map.entry(entry.key(), entry.value());
        }
        map.finish()
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for ReadMostlyMap<K, V, S> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        (&*self).extend(iter);
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for &ReadMostlyMap<K, V, S> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value);
        }
    }
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> FromIterator<(K, V)> for ReadMostlyMap<K, V, S> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let map = Self::with_capacity_and_hasher(iter.size_hint().0, S::default());
        (&map).extend(iter);
        map
    }
}

impl<'a, K, V, S> IntoIterator for &'a ReadMostlyMap<K, V, S> {
    type Item = Ref<'a, K, V>;
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

/// The removal counter for whether an entry was removed.
fn removed_counter(removed: bool) -> Counter {
    if removed {
        Counter::RemoveHit
    } else {
        Counter::RemoveMiss
    }
}
