//! [`ShardedMap`]: a general-purpose concurrent hash map whose reads write no shared memory.
//!
//! The map is an array of shards, each a `hashbrown` table behind a `ShardLock`. A key's
//! shard comes from the top bits of the hash times an odd constant: hashbrown probes with the
//! low bits and tags buckets with the top 7, and that product's top bits are independent of
//! both, so the shard choice does not make keys of one shard collide in their table. Shards are cache-padded, so two shards never share a cache line,
//! and a read touches only the first line of its shard (the lock words and the table's
//! header).
//!
//! # Why a reader-biased lock with per-thread reader records
//! Every lock-based peer keeps a reader count in the lock word: each read writes that word, the
//! line bounces between cores, and two cores end up slower than one. Three designs avoid it:
//!
//! - **Lock-free reads with epoch reclamation** (papaya, scc, Go's xsync): each entry lives in
//!   its own allocation so that a reader can keep reading a replaced value. That costs an
//!   allocation per insert *and per overwrite*, an extra pointer chase per read, and about
//!   twice the memory per small entry of an inline table; readers still pay a fence to pin.
//! - **Optimistic versioned reads** (a seqlock per shard): reads write nothing, but they read
//!   keys and values that a writer may be changing, which is undefined behaviour in Rust for
//!   any `K`/`V` that is not plain atomic data (and `K::eq` on a torn `String` is a crash).
//! - **Reader-biased locks with per-thread reader slots** (the "big reader" lock, BRAVO):
//!   a reader announces itself in a cache line that only its own thread writes and checks the
//!   shard's writer word; a writer sets the word and waits until no thread's record names the
//!   shard. Entries stay inline in an ordinary `hashbrown` table: no allocation per entry, no
//!   allocation on overwrite, the same memory per entry as a plain table, any `K` and `V`.
//!
//! mapguard uses the third. Its costs, stated plainly: a read pays one sequentially consistent
//! store to its own line (a fence on x86) and a load of the shard's writer word; a write pays,
//! besides its shard lock, one cache line per thread that currently reads (one miss for each
//! thread that has read since), and readers of the written shard wait while it writes and take
//! one miss on the shard's header line afterwards. Readers of other shards are not affected.
//!
//! # Self-deadlock detection and its cost
//! Each thread knows which shards it reads (a bit mask and a few slots in its thread-local
//! record, needed anyway to count recursive reads) and the writer word stores the writing
//! thread's identity. A read that finds its own thread writing, a write that finds its own
//! thread reading or writing the shard, panics with both call sites. All checks sit on paths
//! that would otherwise wait; the fast read path only stores its call site (one store to the
//! cache line of its reader slot, which it writes anyway), so the check is always on, in
//! release builds too.
//!
//! # Cross-thread deadlock detection and its cost
//! Two threads that each hold a guard on one shard and then wait for the other's shard
//! (dashmap issue 369: `get(a)` + `insert(b)` against `get(b)` + `insert(a)`), or a longer
//! ring of such threads, would wait forever. A call that has waited for a shard longer than
//! the map's threshold ([`ShardedMapBuilder::deadlock_check_after`], 100 ms by default) builds
//! the wait-for graph from what threads publish in their reader records — the shards each
//! reads and where (slot and call site), the shard each waits for and where, and the thread
//! that holds each write lock and where — and looks for a cycle through itself; it looks
//! again each time the threshold passes once more. A cycle is confirmed with a second look
//! (every member still in the same wait), then exactly one member withdraws from its wait
//! (giving back a write lock it was holding while waiting for readers) and panics with
//! "mapguard: deadlock detected:", naming every thread of the cycle, the shard each holds and
//! where it took it, and the shard each waits for and the call that waits. Its guards drop
//! while it unwinds, the other threads go on, and the map stays consistent. Only waits on
//! shard locks form the graph: a thread that holds a guard while it sleeps, computes or waits
//! on anything else is a long hold, never a deadlock, and never fails a call (see the map's
//! [Deadlocks section](ShardedMap#deadlocks) for the stall line and leaked guards). Cycles through
//! shards of several maps are found too. The fast paths are unchanged: everything is
//! published on paths that already wait, apart from the read site above.
//!
//! # Lock-order checking (the `lockdep` feature)
//! Detection finds deadlocks that happen. With the `lockdep` feature every shard
//! lock reports to the `lockdep` crate, which learns the order in which each thread takes
//! shards and reports an order that closes a cycle *before* the acquisition that closes it
//! waits — the first time the second order happens, even if the threads never overlap.
//!
//! - **Classes.** Every shard of every map is a lockdep class of its own, named
//!   `ShardedMap#<map>.shard[<index>]`; maps are numbered in creation order and numbers are
//!   never reused (addresses are). One class per map with the shard index as lockdep
//!   subclass would not fit: lockdep has 8 subclasses and a map up to 65536 shards, and two
//!   shards sharing a subclass would make a legal "guard on one shard, write to another" look
//!   like a problem. The price of per-shard classes: orders are learned per map, so an
//!   inversion is found when both orders happen on one map, not across two maps. A dropped
//!   map's classes and orders are forgotten.
//! - **Writes** (`insert`, `remove`, `compute`, `entry`, `get_mut`, `clear`, …) are checked
//!   before they wait for the shard.
//! - **Reads** take the shard's lock too (see above), and a new reader waits while a writer
//!   holds *or waits for* the shard. So a read is checked like a write: `get(a)` then `get(b)`
//!   in one thread and `get(b)` then `get(a)` in another can hang once writers queue on both
//!   shards, and is reported; so is nested iteration over one map, which does exactly that.
//!   A re-read of a shard the thread already reads never waits and is not reported: lockdep
//!   sees one acquisition per span of reads of a shard, from the first read guard to the
//!   drop of the last.
//! - Taking many shards in one consistent order (all shards in index order, a guard on one
//!   shard while iterating or writing another) is never reported.
//! - A same-thread self-deadlock still panics with this crate's "deadlock avoided" message,
//!   checked before lockdep is asked.
//! - Reports go wherever lockdep's reaction says (a panic by default, before anything
//!   blocks; `lockdep::set_thread_reaction` to print or collect them instead).
//!
//! Off, the feature adds no code to any lock path; on, the first read of a shard and every
//! write cost a lockdep check (a thread-local step once the order is known), and lockdep's
//! statistics (`lockdep::stats()`) show acquisitions per shard.
//!
//! This module owns the public API and its documentation; the lock itself (and every `unsafe`)
//! lives in `crate::raw`.

mod builder;
mod entry;
mod iter;
#[cfg(feature = "rayon")]
mod rayon;
mod refs;
#[cfg(feature = "serde")]
mod serde;

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::panic::Location;
use std::sync::OnceLock;

use crossbeam_utils::CachePadded;
use hashbrown::HashTable;

use crate::deferred_drop::{self, Dropper};
use crate::error::ReserveError;
use crate::growth;
use crate::raw::pow2::{self, Pow2Slice};
use crate::raw::{MapId, ReadGuard, ShardLock};
use crate::stats::{Counter, Instrument, Settings, Slot, WriteOp};
#[cfg(feature = "stats")]
use crate::stats::{ShardStats, StatsSnapshot};

pub use builder::ShardedMapBuilder;
pub use entry::{Entry, OccupiedEntry, VacantEntry};
pub use iter::{IntoIter, Iter, Keys, Values};
pub use refs::{KeyRef, OccupiedError, Ref, RefMut};

/// The largest shard count a [`ShardedMap`] accepts.
pub const MAX_SHARDS: usize = 1 << 16;

/// How long a call waits for a shard before it first checks for a cross-thread deadlock,
/// unless [`ShardedMapBuilder::deadlock_check_after`] says otherwise: 100 ms.
pub const DEFAULT_DEADLOCK_CHECK_AFTER: std::time::Duration =
    crate::raw::waitfor::DEFAULT_CHECK_AFTER;

/// The hasher [`ShardedMap`] uses unless told otherwise: foldhash's fast, randomly seeded
/// hasher (the one hashbrown uses by default).
pub type DefaultHashBuilder = foldhash::fast::RandomState;

type Table<K, V> = HashTable<(K, V)>;
type Shard<K, V> = CachePadded<ShardLock<Table<K, V>>>;

/// Stores `(key, value)` in `entry`: the value replaced, if any, and how the write counts.
#[inline(always)]
fn store<K, V>(
    entry: hashbrown::hash_table::Entry<'_, (K, V)>,
    key: K,
    value: V,
) -> (Option<V>, Counter) {
    match entry {
        hashbrown::hash_table::Entry::Occupied(mut entry) => (
            Some(std::mem::replace(&mut entry.get_mut().1, value)),
            Counter::Overwrite,
        ),
        hashbrown::hash_table::Entry::Vacant(entry) => {
            entry.insert((key, value));
            (None, Counter::Insert)
        }
    }
}

/// The shard count used when none is given: 32 shards per available core, rounded up to a
/// power of two and capped at 256, computed once per process.
///
/// More shards than cores keep two writers (and a writer and the readers it makes wait) on
/// different shards most of the time; reads do not get slower with more shards. On a 2-core
/// machine, 64 shards instead of 16 made the write-heavy bench workloads (`exchange`,
/// `rapid-grow`) 15-30 % faster with no measurable change on the read-mostly ones. The cap
/// keeps an empty map's shard headers (128 bytes each) at 32 KiB on large machines.
///
/// # Examples
/// ```
/// let shards = mapguard::sharded::default_shard_count();
/// assert!(shards.is_power_of_two());
/// ```
pub fn default_shard_count() -> usize {
    static SHARDS: OnceLock<usize> = OnceLock::new();
    *SHARDS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores * 32).next_power_of_two().clamp(1, 256)
    })
}

/// The shard count a builder asked for, checked: `None` means [`default_shard_count`].
pub(crate) fn shard_count(asked: Option<usize>) -> Result<usize, crate::BuildError> {
    use crate::BuildError;
    match asked {
        None => Ok(default_shard_count()),
        Some(0) => Err(BuildError::ZeroShards { max: MAX_SHARDS }),
        Some(n) if n > MAX_SHARDS => Err(BuildError::TooManyShards {
            shards: n,
            max: MAX_SHARDS,
        }),
        Some(n) if !n.is_power_of_two() => Err(BuildError::ShardsNotPowerOfTwo { shards: n }),
        Some(n) => Ok(n),
    }
}

/// What a [`compute`](ShardedMap::compute) closure decides for its key.
///
/// # Examples
/// ```
/// use mapguard::{Action, ShardedMap};
///
/// let map = ShardedMap::new();
/// map.compute("hits", |_, old: Option<&u64>| Action::Set(old.map_or(1, |n| n + 1)));
/// assert_eq!(map.get_cloned("hits"), Some(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<V> {
    /// Leave the entry as it is (absent stays absent).
    Keep,
    /// Insert this value, or replace the present one.
    Set(V),
    /// Remove the entry if it is present.
    Remove,
}

/// What [`compute`](ShardedMap::compute) did.
///
/// # Examples
/// ```
/// use mapguard::{Action, Computed, ShardedMap};
///
/// let map = ShardedMap::new();
/// assert_eq!(map.compute(1, |_, _| Action::Set(10)), Computed::Inserted);
/// assert_eq!(map.compute(1, |_, _| Action::Set(11)), Computed::Replaced(10));
/// assert_eq!(map.compute(1, |_, _| Action::Remove), Computed::Removed(11));
/// assert_eq!(map.compute(1, |_, _| Action::<i32>::Remove), Computed::Unchanged);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Computed<V> {
    /// Nothing changed.
    Unchanged,
    /// The key was absent and a value was inserted.
    Inserted,
    /// The key was present; this is the value that was replaced.
    Replaced(V),
    /// The key was present; this is the value that was removed.
    Removed(V),
}

/// A concurrent hash map for any `K: Hash + Eq` and `V`, split into independently locked shards.
///
/// # Guarantees
/// - **Reads write no shared memory.** [`get`](Self::get), [`contains_key`](Self::contains_key)
///   and iteration announce themselves in a per-thread record that only the reading thread
///   writes; they never write a cache line that another core reads, so readers on different
///   cores do not slow each other down. A read waits only while a writer holds its shard.
/// - **Writes lock one shard.** `insert`, `remove`, `compute`, `entry` and friends lock the key's
///   shard exclusively: they wait for that shard's readers to finish and make new readers of that
///   shard wait. Overwriting a present key replaces the value in place: no allocation, and keys of
///   other shards are not affected at all.
/// - **Each single-key call is atomic**, including the closures of `compute`, `update`,
///   `remove_if`, `get_or_insert_with` and the whole life of an [`Entry`].
/// - **No silent deadlock.** See [Deadlocks](#deadlocks): a self-deadlock panics at once, a
///   deadlock between threads panics in one of them after the map's threshold. A thread may
///   hold any number of read guards, including several on one shard.
/// - **Panics in user code** (closures, and the keys' `Hash` and `Eq`) leave the map
///   consistent: no poisoning, no lock left held, no entry lost, no value leaked or dropped
///   twice. A shard's table that grows or shrinks hashes every key it holds; a panic there
///   leaves the table as it was and ends the call that grew it.
/// - **Iteration** visits shards one at a time and read-locks each while it yields that shard's
///   entries. A key present for the whole iteration is seen exactly once; a key inserted or
///   removed during it may or may not be seen; no key is seen twice.
/// - **`len`, `is_empty` and `capacity`** sum the shards one at a time, with no map-wide lock:
///   under concurrent writes the result is a value the map had at some point of each shard,
///   not a snapshot of the whole map.
///
/// # Deadlocks
/// Guards ([`Ref`], [`RefMut`], [`Entry`], iterator items) hold their shard's lock, so a call
/// made while holding one can wait for another guard. What mapguard does about each case:
/// - **Same thread, at once.** A call that would wait for a guard its own thread holds on the
///   same shard (an `insert` while a [`Ref`] into that shard is alive; a `compute` closure that
///   calls back into the map; a read while this thread holds the shard's write lock) panics
///   before it waits, with "mapguard: deadlock avoided:", the shard and both call sites. A
///   re-read of a shard the thread already reads never waits and is always allowed.
/// - **Across threads, after the threshold.** Threads that wait for each other's shards in a
///   cycle (thread 1 holds a guard on shard A and inserts into shard B while thread 2 holds a
///   guard on B and inserts into A; write guards, read guards, or three threads in a ring; one
///   map or several) are found once a waiting call has waited
///   [`deadlock_check_after`](ShardedMapBuilder::deadlock_check_after) (100 ms by default).
///   One thread of the cycle panics with "mapguard: deadlock detected:", naming every thread,
///   the shard each holds and where it took it, and the shard each waits for and the call that
///   waits; its call has no effect, its guards drop as it unwinds, and the others complete.
///   A guard merely held for long, with no cycle, never fails a call, however long the wait.
///   Only waits on `ShardedMap` shards count: a cycle that goes through another lock, a
///   channel or a join is not seen (which is why `par_for_each` and `par_retain` panic at
///   once, "deadlock avoided", when their caller holds a guard into the map).
/// - **Leaked guards** (`mem::forget`, a reference cycle). The leaking thread's next call on
///   that shard panics as above. A writer waiting for a read guard that a thread leaked and
///   then exited with panics after the threshold ("mapguard: leaked guard:", the thread and
///   the guard's site), since that read is never released; its map can still be read and
///   dropped. A wait that lasts ten times the threshold (at least a second) without a cycle
///   prints one line to stderr ("mapguard: stalled:", the waiting call, the shard, and who
///   holds it and where it took it) and goes on waiting: a guard leaked by a thread that
///   still runs looks exactly like one held for long. `deadlock_check_after(Duration::MAX)`
///   turns every check and report off.
/// - **Orders that have not deadlocked yet** need the `lockdep` feature: it reports two
///   threads taking shards in opposite orders the first time the second order happens, even
///   if they never overlap (see the [module docs](crate::sharded)).
///
/// ```
/// use std::panic::{AssertUnwindSafe, catch_unwind};
/// use std::sync::{Arc, Barrier};
/// use std::time::Duration;
///
/// let map = Arc::new(
///     mapguard::ShardedMap::builder()
///         .shards(64)
///         .deadlock_check_after(Duration::from_millis(10))
///         .build()?,
/// );
/// for key in 0..100u32 {
///     map.insert(key, 0);
/// }
/// // Two keys in different shards.
/// let shard = |key: u32| map.get(&key).unwrap().shard();
/// let (a, b) = (0, (1..100).find(|&key| shard(key) != shard(0)).unwrap());
/// let barrier = Arc::new(Barrier::new(2));
/// let threads: Vec<_> = [(a, b), (b, a)]
///     .into_iter()
///     .map(|(held, other)| {
///         let (map, barrier) = (Arc::clone(&map), Arc::clone(&barrier));
///         std::thread::spawn(move || {
///             let guard = map.get(&held).unwrap();
///             barrier.wait();
///             // Each thread waits for the other's guard: one of them panics.
///             let outcome = catch_unwind(AssertUnwindSafe(|| map.insert(other, 1)));
///             drop(guard);
///             outcome.is_err()
///         })
///     })
///     .collect();
/// let panicked = threads.into_iter().map(|t| t.join().unwrap());
/// assert_eq!(panicked.filter(|&p| p).count(), 1);
/// # Ok::<(), mapguard::BuildError>(())
/// ```
///
/// # Examples
/// ```
/// use mapguard::ShardedMap;
/// use std::sync::Arc;
///
/// let map = Arc::new(ShardedMap::new());
/// let writers: Vec<_> = (0..4u64)
///     .map(|t| {
///         let map = Arc::clone(&map);
///         std::thread::spawn(move || {
///             for i in 0..100 {
///                 map.insert(t * 100 + i, i);
///             }
///         })
///     })
///     .collect();
/// for w in writers {
///     w.join().unwrap();
/// }
/// assert_eq!(map.len(), 400);
/// assert_eq!(*map.get(&205).unwrap(), 5);
/// ```
pub struct ShardedMap<K, V, S = DefaultHashBuilder> {
    /// Indexed by a mask (`shards.mask()`, `len - 1`, kept beside the slice so that a lookup
    /// masks with one load), with no bounds check.
    shards: Pow2Slice<Shard<K, V>>,
    hasher: S,
    /// Statistics and observer; `None` (one branch per operation) when neither is on.
    instr: Slot<K>,
}

// A panic anywhere in the map's operations, user closures included, leaves the map
// consistent and unlocked (crate docs, "What blocks and what never does"), so it may be
// observed after one.
impl<K, V, S> std::panic::UnwindSafe for ShardedMap<K, V, S> {}
impl<K, V, S> std::panic::RefUnwindSafe for ShardedMap<K, V, S> {}

impl<K, V> ShardedMap<K, V, DefaultHashBuilder> {
    /// An empty map with the default shard count and hasher.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ShardedMap<String, u32> = mapguard::ShardedMap::new();
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
    /// let map: mapguard::ShardedMap<u64, u64> = mapguard::ShardedMap::with_capacity(1000);
    /// assert!(map.capacity() >= 1000);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, DefaultHashBuilder::default())
    }

    /// A builder to choose the shard count, capacity and hasher, with errors for bad values.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::<u64, u64>::builder().shards(4).capacity(100).build()?;
    /// assert_eq!(map.shard_count(), 4);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn builder() -> ShardedMapBuilder<K, V, DefaultHashBuilder> {
        ShardedMapBuilder::new()
    }
}

impl<K, V, S> ShardedMap<K, V, S> {
    /// An empty map with the default shard count, hashing keys with `hasher`.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ShardedMap<u64, u64, _> =
    ///     mapguard::ShardedMap::with_hasher(foldhash::fast::FixedState::with_seed(7));
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
    /// let map: mapguard::ShardedMap<u64, u64, _> = mapguard::ShardedMap::with_capacity_and_hasher(
    ///     64,
    ///     foldhash::fast::RandomState::default(),
    /// );
    /// assert!(map.capacity() >= 64);
    /// ```
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        match ShardedMapBuilder::new()
            .hasher(hasher)
            .capacity(capacity)
            .build()
        {
            Ok(map) => map,
            Err(err) => panic!("mapguard: {err}"),
        }
    }

    fn from_parts(shard_count: usize, hasher: S, settings: &Settings<K>) -> Self {
        debug_assert!(shard_count.is_power_of_two() && shard_count <= MAX_SHARDS);
        let map = MapId::next();
        let shards = (0..shard_count)
            .map(|index| {
                let mut lock = ShardLock::new(map, index, HashTable::new());
                if settings.stats() {
                    lock.enable_stats();
                }
                CachePadded::new(lock)
            })
            .collect();
        Self {
            shards,
            hasher,
            instr: settings.build_sharded("ShardedMap", shard_count),
        }
    }

    /// A snapshot of the map's statistics, or `None` unless it was built with
    /// `builder().stats(true)`. See [`crate::stats`] for what is exact and what is sampled.
    ///
    /// Reads each shard under its read lock, one at a time.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::builder().shards(4).stats(true).build()?;
    /// map.insert("a", 1);
    /// map.insert("a", 2);
    /// map.remove("b");
    /// let stats = map.stats().unwrap();
    /// assert_eq!((stats.inserts, stats.overwrites, stats.removes_miss), (1, 1, 1));
    /// assert_eq!(stats.shards.len(), 4);
    /// assert!(mapguard::ShardedMap::<u8, u8>::new().stats().is_none());
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    #[track_caller]
    #[cfg(feature = "stats")]
    pub fn stats(&self) -> Option<StatsSnapshot> {
        let instr = self.instr.get().filter(|instr| instr.records())?;
        let reads = instr.shard_read_estimates();
        let mut shards = Vec::with_capacity(self.shards.len());
        let (mut len, mut capacity) = (0, 0);
        for (index, shard) in self.shards.iter().enumerate() {
            let (entries, room) = {
                let table = shard.read();
                (table.len(), table.capacity())
            };
            len += entries;
            capacity += room;
            let (write_locks, contended, wait_ns) = shard.figures();
            shards.push(ShardStats {
                index,
                entries,
                write_locks,
                read_locks_estimate: reads.get(index).copied().unwrap_or(0),
                contended,
                wait_ns,
            });
        }
        instr.snapshot(len, capacity, shards)
    }

    /// Takes a [`stats`](Self::stats) snapshot and sets the `metrics` counters and gauges
    /// registered when the map was built (feature `metrics`); call it from a scrape handler
    /// or a periodic task. `None` (and nothing published) when statistics are off.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::builder().name("sessions").stats(true).build()?;
    /// map.insert(1, 1);
    /// assert_eq!(map.publish_metrics().unwrap().inserts, 1);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    #[cfg(feature = "metrics")]
    #[track_caller]
    pub fn publish_metrics(&self) -> Option<StatsSnapshot> {
        let snapshot = self.stats()?;
        if let Some(instr) = self.instr.get() {
            instr.publish(&snapshot);
        }
        Some(snapshot)
    }

    /// Counts a write and tells the observer through `instr` (the hooked copy of a write
    /// method passes the instrument it found; the plain copy `None`); fires the probe either
    /// way.
    #[inline(always)]
    fn note_write_in(
        &self,
        instr: Option<&Instrument<K>>,
        op: WriteOp,
        hash: Option<u64>,
        shard: Option<usize>,
        counter: Option<Counter>,
        location: &'static Location<'static>,
    ) {
        self.instr
            .write_hooked(instr, op, hash, shard, counter, location);
    }

    /// Counts a write and tells the observer and the probes.
    #[inline(always)]
    fn note_write(
        &self,
        op: WriteOp,
        hash: Option<u64>,
        shard: Option<usize>,
        counter: Option<Counter>,
        location: &'static Location<'static>,
    ) {
        self.instr.write_cold(op, hash, shard, counter, location);
    }

    /// The number of shards (a power of two).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::<u8, u8>::builder().shards(16).build()?;
    /// assert_eq!(map.shard_count(), 16);
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// How long a call waits for a shard before it checks for a cross-thread deadlock (see
    /// [`ShardedMapBuilder::deadlock_check_after`] and [Deadlocks](Self#deadlocks)).
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ShardedMap<u8, u8> = mapguard::ShardedMap::new();
    /// assert_eq!(map.deadlock_check_after(), mapguard::sharded::DEFAULT_DEADLOCK_CHECK_AFTER);
    /// ```
    pub fn deadlock_check_after(&self) -> std::time::Duration {
        self.shards[0].deadlock_check_after()
    }

    /// The map's hasher.
    ///
    /// # Examples
    /// ```
    /// use std::hash::BuildHasher;
    /// let map: mapguard::ShardedMap<u8, u8> = mapguard::ShardedMap::new();
    /// let _ = map.hasher().hash_one(5u8);
    /// ```
    pub fn hasher(&self) -> &S {
        &self.hasher
    }

    /// The index of the shard holding keys with this hash.
    #[inline]
    fn shard_index(&self, hash: u64) -> usize {
        // See `shard_of`: independent of the bits a shard's table probes and tags with.
        const _: () = assert!(MAX_SHARDS <= 1 << 16);
        pow2::shard_of(hash, self.shards.mask())
    }

    /// The number of entries, summed over the shards one at a time (see the type's docs).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert('a', 1);
    /// map.insert('b', 2);
    /// assert_eq!(map.len(), 2);
    /// ```
    #[track_caller]
    pub fn len(&self) -> usize {
        // Loops rather than iterator adaptors here and below: `#[track_caller]` does not reach
        // through a closure, and a deadlock report must name the caller's site, not this one.
        let mut len = 0;
        for shard in self.shards.iter() {
            len += shard.read().len();
        }
        len
    }

    /// Whether the map has no entries (see [`len`](Self::len) for what it sees under writes).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// assert!(map.is_empty());
    /// map.insert(1, 1);
    /// assert!(!map.is_empty());
    /// ```
    #[track_caller]
    pub fn is_empty(&self) -> bool {
        for shard in self.shards.iter() {
            if !shard.read().is_empty() {
                return false;
            }
        }
        true
    }

    /// How many entries the shards hold together before one of them must grow.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ShardedMap<u32, u32> = mapguard::ShardedMap::with_capacity(500);
    /// assert!(map.capacity() >= 500);
    /// ```
    #[track_caller]
    pub fn capacity(&self) -> usize {
        let mut capacity = 0;
        for shard in self.shards.iter() {
            capacity += shard.read().capacity();
        }
        capacity
    }

    /// Removes every entry, one shard at a time; keeps the allocated memory.
    ///
    /// Each shard's entries are dropped after its lock is released, so a key's or value's
    /// `Drop` may call the map. If some `Drop`s panic, every other entry is still dropped and
    /// every shard cleared; then the first of those panics is resumed.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, "one");
    /// map.clear();
    /// assert!(map.is_empty());
    /// ```
    #[track_caller]
    pub fn clear(&self) {
        let mut dropper = Dropper::new();
        for shard in self.shards.iter() {
            let mut table = shard.write();
            if table.is_empty() {
                continue;
            }
            let taken = deferred_drop::take_all(&mut table);
            drop(table);
            dropper.drop_all(taken);
        }
        let site = Location::caller();
        self.note_write(WriteOp::Clear, None, None, Some(Counter::Clear), site);
        dropper.finish();
    }

    /// An iterator over the entries; see the type's docs for what it sees under writes.
    ///
    /// Each item is a [`Ref`], a read guard on its shard: while an item or the iterator is on a
    /// shard, writers to that shard wait, and a write to it from this thread panics.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, 10);
    /// map.insert(2, 20);
    /// let sum: i32 = map.iter().map(|entry| *entry.value()).sum();
    /// assert_eq!(sum, 30);
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter::new(&self.shards)
    }

    /// An iterator over the keys, with the guarantees of [`iter`](Self::iter).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(3, ());
    /// let keys: Vec<i32> = map.keys().map(|k| *k).collect();
    /// assert_eq!(keys, [3]);
    /// ```
    pub fn keys(&self) -> Keys<'_, K, V> {
        Keys::new(self.iter())
    }

    /// An iterator over the values, with the guarantees of [`iter`](Self::iter).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert("x", 5);
    /// let total: i32 = map.values().map(|v| *v).sum();
    /// assert_eq!(total, 5);
    /// ```
    pub fn values(&self) -> Values<'_, K, V> {
        Values::new(self.iter())
    }

    /// Keeps only the entries for which `keep` returns `true`, one shard at a time.
    ///
    /// The entries a shard rejects are dropped after its lock is released, so a key's or
    /// value's `Drop` may call the map. If `keep` panics, the entries it already rejected are
    /// removed (and dropped), the others stay, and the shard is unlocked. If some `Drop`s panic,
    /// every other rejected entry is still dropped and every shard filtered; then the first of
    /// those panics is resumed.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ShardedMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// map.retain(|_, v| *v % 2 == 0);
    /// assert_eq!(map.len(), 5);
    /// ```
    #[track_caller]
    pub fn retain(&self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let mut dropper = Dropper::new();
        for shard in self.shards.iter() {
            // Declared before the guard: if `keep` panics, the guard goes first.
            let mut rejected = Vec::new();
            let mut table = shard.write();
            rejected.extend(table.extract_if(|(k, v)| !keep(k, v)));
            drop(table);
            dropper.drop_all(rejected);
        }
        self.note_write(WriteOp::Retain, None, None, None, Location::caller());
        dropper.finish();
    }
}

impl<K, V, S> ShardedMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// A read guard on the value of `key`, or `None` if the key is absent.
    ///
    /// The guard read-locks the key's shard until it is dropped: writers to that shard wait for
    /// it, and a write to that shard from this thread while it lives panics (it would deadlock).
    /// Use [`get_cloned`](Self::get_cloned) to copy the value out instead.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert("a".to_string(), 1);
    /// assert!(map.get("a").is_some());
    /// assert_eq!(*map.get("a").unwrap(), 1);
    /// assert!(map.get("b").is_none());
    /// ```
    #[inline]
    #[track_caller]
    pub fn get<Q>(&self, key: &Q) -> Option<Ref<'_, K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.instr.counts_reads() {
            return self.get_with::<true, Q>(key);
        }
        self.get_with::<false, Q>(key)
    }

    /// Counts a lookup of hash `hash` (in `shard`) as it starts, if `COUNT` (in the hooked
    /// copy of a read method; see `Slot::counts_reads`), and samples it when chosen.
    #[inline(always)]
    fn note_read_start<const COUNT: bool>(&self, hash: u64, shard: usize) {
        if COUNT && self.instr.read_start(hash) {
            self.sample_read(hash, shard);
        }
    }

    /// A sampled lookup of `hash` in `shard`, before the lookup itself: feeds the sketch,
    /// with the text of a stored key of that hash when the map reports keys.
    ///
    /// It takes the hash, not the key: the sketch counts hashes, so a stored key whose hash
    /// is `hash` names the entry, and the caller's key goes to no call. Passed to a function
    /// that is not inlined, that key would have to sit in memory on every path of the
    /// caller, the plain copy's too, where a build without the `stats` feature keeps it in
    /// a register.
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn sample_read(&self, hash: u64, shard: usize) {
        if self.instr.samples_keys() {
            self.shards[shard].read_with(|table| {
                let found = table.find(hash, |(k, _)| self.hash(k) == hash);
                self.instr.sample_read(hash, shard, found.map(|(k, _)| k));
            });
        } else {
            self.instr.sample_read(hash, shard, None);
        }
    }

    /// The body of [`get`](Self::get), with the hooks if `COUNT`.
    #[inline(always)]
    #[track_caller]
    fn get_with<const COUNT: bool, Q>(&self, key: &Q) -> Option<Ref<'_, K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let shard = self.shard_index(hash);
        self.note_read_start::<COUNT>(hash, shard);
        let guard = self.shards[shard].read();
        let found = ReadGuard::try_map(guard, |table| table.find(hash, |(k, _)| k.borrow() == key));
        if !COUNT {
            return found.ok().map(Ref::new);
        }
        match found {
            Ok(guard) => Some(Ref::new(guard)),
            Err(guard) => {
                // Counted after the guard is gone.
                drop(guard);
                self.instr.read_missed_if::<COUNT>();
                None
            }
        }
    }

    /// A clone of the value of `key`, taken without keeping any lock.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, vec![1, 2]);
    /// assert_eq!(map.get_cloned(&1), Some(vec![1, 2]));
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
    /// `read` runs under the shard's read lock, which is released when it returns or
    /// unwinds; like a [`Ref`] it may read the map, and a write to the same shard from inside
    /// it panics with both call sites instead of deadlocking.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
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
        let shard = self.shard_index(hash);
        self.note_read_start::<COUNT>(hash, shard);
        // No guard: `read` runs under the read lock, which is released inline.
        let found = self.shards[shard].read_with(move |table| {
            table
                .find(hash, |(k, _)| k.borrow() == key)
                .map(|(_, v)| read(v))
        });
        if found.is_none() {
            self.instr.read_missed_if::<COUNT>();
        }
        found
    }

    /// Whether `key` is present.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(7, ());
    /// assert!(map.contains_key(&7));
    /// assert!(!map.contains_key(&8));
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
        let shard = self.shard_index(hash);
        self.note_read_start::<COUNT>(hash, shard);
        let found = self.shards[shard]
            .read_with(move |table| table.find(hash, |(k, _)| k.borrow() == key).is_some());
        if !found {
            self.instr.read_missed_if::<COUNT>();
        }
        found
    }

    /// A write guard on the value of `key`, or `None` if absent. The shard is write-locked
    /// while the guard lives.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// map.insert(1, 10);
    /// *map.get_mut(&1).unwrap() += 1;
    /// assert_eq!(map.get_cloned(&1), Some(11));
    /// ```
    #[track_caller]
    pub fn get_mut<Q>(&self, key: &Q) -> Option<RefMut<'_, K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let shard = self.shard_index(hash);
        let guard = self.shards[shard].write();
        let index = guard.find_bucket_index(hash, |(k, _)| k.borrow() == key);
        let counter = if index.is_some() {
            Counter::Get
        } else {
            Counter::GetMiss
        };
        let op = WriteOp::GetMut;
        self.note_write(
            op,
            Some(hash),
            Some(shard),
            Some(counter),
            Location::caller(),
        );
        Some(RefMut::new(guard, index?))
    }

    /// Inserts `value` under `key`, returning the value it replaced.
    ///
    /// Replacing keeps the stored key and reuses the bucket: no allocation.
    ///
    /// # Panics
    /// If this thread holds a guard on the key's shard (see the type's docs).
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// assert_eq!(map.insert(1, "a"), None);
    /// assert_eq!(map.insert(1, "b"), Some("a"));
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
        let shard = self.shard_index(hash);
        let mut table = self.shards[shard].write();
        // One probe: the entry either holds the key or marks where it goes.
        let rehash = |(k, _): &(K, V)| self.hasher.hash_one(k);
        let entry = growth::entry(&mut table, hash, |(k, _)| *k == key, rehash);
        let (old, counter) = store(entry, key, value);
        drop(table);
        let site = Location::caller();
        self.note_write_in(
            instr,
            WriteOp::Insert,
            Some(hash),
            Some(shard),
            Some(counter),
            site,
        );
        old
    }

    /// [`insert`](Self::insert) that reports a shard that cannot grow instead of panicking or
    /// aborting: for deserialization, where the input decides how far the tables grow.
    #[cfg(feature = "serde")]
    #[track_caller]
    pub(crate) fn insert_or_refuse(&self, key: K, value: V) -> Result<Option<V>, ReserveError> {
        let hash = self.hash(&key);
        let shard = self.shard_index(hash);
        let mut table = self.shards[shard].write();
        let rehash = |(k, _): &(K, V)| self.hasher.hash_one(k);
        growth::try_reserve(&mut table, 1, rehash)?;
        // With the room made above, `entry` never grows the table.
        let (old, counter) = store(table.entry(hash, |(k, _)| *k == key, rehash), key, value);
        drop(table);
        let site = Location::caller();
        self.note_write(
            WriteOp::Insert,
            Some(hash),
            Some(shard),
            Some(counter),
            site,
        );
        Ok(old)
    }

    /// Inserts `value` only if `key` is absent. Returns a guard on the new value, or an error
    /// holding a guard on the present value and the value that was not inserted.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// assert_eq!(*map.try_insert(1, 'a').unwrap(), 'a');
    /// let err = map.try_insert(1, 'b').unwrap_err();
    /// assert_eq!((*err.current, err.value), ('a', 'b'));
    /// ```
    #[track_caller]
    pub fn try_insert(&self, key: K, value: V) -> Result<Ref<'_, K, V>, OccupiedError<'_, K, V>> {
        let (entry, hash, shard) = self.entry_at(key);
        let (result, counter) = match entry {
            Entry::Occupied(entry) => (
                Err(OccupiedError {
                    current: entry.into_ref().downgrade(),
                    value,
                }),
                None,
            ),
            Entry::Vacant(entry) => (Ok(entry.insert(value).downgrade()), Some(Counter::Insert)),
        };
        let site = Location::caller();
        self.note_write(WriteOp::TryInsert, Some(hash), Some(shard), counter, site);
        result
    }

    /// Removes `key`, returning its value.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
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
    /// let map = mapguard::ShardedMap::new();
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
        let shard = self.shard_index(hash);
        let mut table = self.shards[shard].write();
        let removed = match table.find_entry(hash, |(k, _)| k.borrow() == key) {
            Ok(entry) => Some(entry.remove().0),
            Err(_) => None,
        };
        drop(table);
        let counter = if removed.is_some() {
            Counter::RemoveHit
        } else {
            Counter::RemoveMiss
        };
        let site = Location::caller();
        self.note_write_in(
            instr,
            WriteOp::Remove,
            Some(hash),
            Some(shard),
            Some(counter),
            site,
        );
        removed
    }

    /// Removes `key` if `condition` returns `true` for its entry, atomically.
    ///
    /// If `condition` panics, the entry stays and the shard is unlocked.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
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
        let shard = self.shard_index(hash);
        let mut table = self.shards[shard].write();
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
        let counter = if removed.is_some() {
            Counter::RemoveHit
        } else {
            Counter::RemoveMiss
        };
        let site = Location::caller();
        self.note_write(
            WriteOp::RemoveIf,
            Some(hash),
            Some(shard),
            Some(counter),
            site,
        );
        removed
    }

    /// A guard on the value of `key`, inserting `make()` first if the key is absent. The check
    /// and the insert are one atomic step: two threads racing on one key insert once.
    ///
    /// If `make` panics, nothing is inserted and the shard is unlocked.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// assert_eq!(*map.get_or_insert_with(1, || 10), 10);
    /// assert_eq!(*map.get_or_insert_with(1, || 20), 10);
    /// ```
    #[track_caller]
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> Ref<'_, K, V> {
        if let Some(found) = self.get(&key) {
            return found;
        }
        let (entry, hash, shard) = self.entry_at(key);
        let (found, counter) = match entry {
            Entry::Occupied(entry) => (entry.into_ref().downgrade(), None),
            Entry::Vacant(entry) => (entry.insert(make()).downgrade(), Some(Counter::Insert)),
        };
        let site = Location::caller();
        self.note_write(WriteOp::GetOrInsert, Some(hash), Some(shard), counter, site);
        found
    }

    /// A guard on the value of `key`, inserting `value` first if the key is absent.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// assert_eq!(*map.get_or_insert(1, 'a'), 'a');
    /// assert_eq!(*map.get_or_insert(1, 'b'), 'a');
    /// ```
    #[track_caller]
    pub fn get_or_insert(&self, key: K, value: V) -> Ref<'_, K, V> {
        self.get_or_insert_with(key, || value)
    }

    /// Decides atomically what happens to `key`: `decide` sees the present value (if any) and
    /// returns whether to keep, set or remove it. The shard is write-locked meanwhile, so
    /// `decide` must not call this map for a key of the same shard (that panics).
    ///
    /// If `decide` panics, the entry is left as it was and the shard is unlocked.
    ///
    /// # Examples
    /// ```
    /// use mapguard::{Action, ShardedMap};
    ///
    /// let stock = ShardedMap::new();
    /// stock.insert("apples", 1u32);
    /// // Take one apple; remove the entry when none are left.
    /// stock.compute("apples", |_, n| match n {
    ///     Some(&1) => Action::Remove,
    ///     Some(&n) => Action::Set(n - 1),
    ///     None => Action::Keep,
    /// });
    /// assert!(!stock.contains_key("apples"));
    /// ```
    #[track_caller]
    pub fn compute(&self, key: K, decide: impl FnOnce(&K, Option<&V>) -> Action<V>) -> Computed<V> {
        let (entry, hash, shard) = self.entry_at(key);
        let computed = match entry {
            Entry::Occupied(mut entry) => {
                let action = {
                    let (k, v) = entry.pair();
                    decide(k, Some(v))
                };
                match action {
                    Action::Keep => Computed::Unchanged,
                    Action::Set(value) => Computed::Replaced(entry.insert(value)),
                    Action::Remove => Computed::Removed(entry.remove()),
                }
            }
            Entry::Vacant(entry) => match decide(entry.key(), None) {
                Action::Set(value) => {
                    entry.insert(value);
                    Computed::Inserted
                }
                Action::Keep | Action::Remove => Computed::Unchanged,
            },
        };
        let site = Location::caller();
        self.note_write(
            WriteOp::Compute,
            Some(hash),
            Some(shard),
            Some(Counter::Compute),
            site,
        );
        computed
    }

    /// Changes the value of `key` in place, atomically, if present; returns what `change`
    /// returned, or `None` if the key is absent.
    ///
    /// If `change` panics, whatever it already did to the value stays and the shard is unlocked.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
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
        let shard = self.shard_index(hash);
        let mut table = self.shards[shard].write();
        let changed = table
            .find_mut(hash, |(k, _)| k.borrow() == key)
            .map(|(_, value)| change(value));
        drop(table);
        let site = Location::caller();
        self.note_write(
            WriteOp::Update,
            Some(hash),
            Some(shard),
            Some(Counter::Compute),
            site,
        );
        changed
    }

    /// The entry for `key`, write-locking its shard until the entry (or the guard it turns
    /// into) is dropped.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::new();
    /// *map.entry("a").or_insert(0) += 1;
    /// *map.entry("a").or_insert(0) += 1;
    /// assert_eq!(map.get_cloned("a"), Some(2));
    /// ```
    #[track_caller]
    pub fn entry(&self, key: K) -> Entry<'_, K, V, S> {
        let (entry, hash, shard) = self.entry_at(key);
        let site = Location::caller();
        self.note_write(
            WriteOp::Entry,
            Some(hash),
            Some(shard),
            Some(Counter::Compute),
            site,
        );
        entry
    }

    /// The entry for `key`, its hash and shard, not counted (the callers count).
    #[track_caller]
    fn entry_at(&self, key: K) -> (Entry<'_, K, V, S>, u64, usize) {
        let hash = self.hash(&key);
        let shard = self.shard_index(hash);
        let mut table = self.shards[shard].write();
        let entry = match table.find_bucket_index(hash, |(k, _)| *k == key) {
            Some(index) => Entry::Occupied(OccupiedEntry::new(table, index, key)),
            None => {
                // The vacant entry's insert then has room and never grows the table.
                growth::reserve(&mut table, 1, |(k, _)| self.hasher.hash_one(k));
                Entry::Vacant(VacantEntry::new(table, hash, key, &self.hasher))
            }
        };
        (entry, hash, shard)
    }

    /// Makes room for at least `additional` more entries spread evenly over the shards.
    ///
    /// # Panics
    /// If the capacity overflows or cannot be allocated; see [`try_reserve`](Self::try_reserve).
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ShardedMap<u64, u64> = mapguard::ShardedMap::new();
    /// map.reserve(1000);
    /// assert!(map.capacity() >= 1000);
    /// ```
    #[track_caller]
    pub fn reserve(&self, additional: usize) {
        if let Err(err) = self.try_reserve(additional) {
            panic!("mapguard: cannot reserve {additional} entries: {err}");
        }
    }

    /// Makes room for at least `additional` more entries spread evenly over the shards, or
    /// says why it cannot. Shards already reserved keep their room on error.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ShardedMap<u64, u64> = mapguard::ShardedMap::new();
    /// assert!(map.try_reserve(100).is_ok());
    /// assert!(map.try_reserve(usize::MAX).is_err());
    /// ```
    #[track_caller]
    pub fn try_reserve(&self, additional: usize) -> Result<(), ReserveError> {
        // No table, and no set of tables, can address more than isize::MAX bytes of entries.
        // Checking the whole request up front (not each shard's share, which is small enough
        // on many shards) keeps a huge request from trying a huge allocation in every shard
        // and from half-reserving the shards.
        if additional > isize::MAX as usize / std::mem::size_of::<(K, V)>().max(1) {
            return Err(ReserveError::CapacityOverflow);
        }
        let per_shard = additional.div_ceil(self.shards.len());
        for shard in self.shards.iter() {
            let rehash = |(k, _): &(K, V)| self.hasher.hash_one(k);
            growth::try_reserve(&mut shard.write(), per_shard, rehash)?;
        }
        Ok(())
    }

    /// Shrinks every shard's table as far as its entries allow.
    ///
    /// # Examples
    /// ```
    /// let map: mapguard::ShardedMap<u64, u64> = mapguard::ShardedMap::with_capacity(10_000);
    /// map.insert(1, 1);
    /// map.shrink_to_fit();
    /// assert!(map.capacity() < 10_000);
    /// ```
    #[track_caller]
    pub fn shrink_to_fit(&self) {
        // hashbrown shrinks into a new table only: a panicking `Hash` loses nothing (see
        // `crate::growth`).
        for shard in self.shards.iter() {
            shard
                .write()
                .shrink_to_fit(|(k, _)| self.hasher.hash_one(k));
        }
    }
}

impl<K, V, S: Default> Default for ShardedMap<K, V, S> {
    fn default() -> Self {
        Self::with_hasher(S::default())
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for ShardedMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for entry in self.iter() {
            map.entry(entry.key(), entry.value());
        }
        map.finish()
    }
}

impl<K: Clone, V: Clone, S: Clone> Clone for ShardedMap<K, V, S> {
    /// Copies the shards one at a time, each under its read lock.
    fn clone(&self) -> Self {
        let map = MapId::next();
        let settings = self.instr.get().map(|instr| instr.settings().clone());
        let shards = self
            .shards
            .iter()
            .enumerate()
            .map(|(index, shard)| {
                let mut lock = ShardLock::new(map, index, shard.read().clone());
                lock.set_deadlock_check_after(shard.deadlock_check_after());
                if settings.as_ref().is_some_and(Settings::stats) {
                    lock.enable_stats();
                }
                CachePadded::new(lock)
            })
            .collect();
        // A clone counts from zero, with the same settings and observer.
        let instr = settings.map_or_else(Slot::empty, |settings| {
            settings.build_sharded("ShardedMap", self.shards.len())
        });
        Self {
            shards,
            hasher: self.hasher.clone(),
            instr,
        }
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for ShardedMap<K, V, S> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        (&*self).extend(iter);
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for &ShardedMap<K, V, S> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value);
        }
    }
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> FromIterator<(K, V)> for ShardedMap<K, V, S> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = Self::default();
        map.extend(iter);
        map
    }
}

impl<K, V, S> IntoIterator for ShardedMap<K, V, S> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    fn into_iter(self) -> IntoIter<K, V> {
        IntoIter::new(self.shards.into_boxed())
    }
}

impl<'a, K, V, S> IntoIterator for &'a ShardedMap<K, V, S> {
    type Item = Ref<'a, K, V>;
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}
