//! One adapter trait over every map the bench compares, with `u64` keys and values and the
//! same hasher everywhere, so that maps are compared and not hashers.
//!
//! A map hands each worker thread a [`MapHandle`] (the pattern of bustle's
//! `Collection::pin`): maps that need per-thread state keep it there, and the unsynchronized
//! `hashbrown` baseline uses it to take its table once per thread instead of once per operation.

use std::collections::HashMap as StdHashMap;
use std::fmt;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::plan::Op;
use super::workload::Workload;

/// The hasher every map is built with: foldhash's fast hasher with a fixed seed.
pub type BenchHasher = foldhash::fast::FixedState;

/// The hasher of one run; every map of the run gets an identical copy.
pub fn bench_hasher(seed: u64) -> BenchHasher {
    foldhash::fast::FixedState::with_seed(seed)
}

/// A map under test.
pub trait BenchMap: Send + Sync + Sized {
    /// The per-thread view through which a worker runs its operations.
    type Handle<'m>: MapHandle
    where
        Self: 'm;

    /// A map with room for `capacity` entries (0: not presized).
    fn with_capacity(capacity: usize, hasher: BenchHasher) -> Self;

    /// The capacity the map is built with to run `workload` with `plans`: the workload's own
    /// ([`Workload::initial_capacity`]) for every map that grows.
    fn capacity_for(workload: &Workload, plans: &[Vec<Op>]) -> usize {
        let _ = plans;
        workload.initial_capacity()
    }

    /// Told the workload once the prefill is done, before the workers take their handles.
    fn start(&self, workload: &Workload) {
        let _ = workload;
    }

    /// The same map built with its statistics on (`mapguard bench --stats`), so that
    /// [`lock_counts`](BenchMap::lock_counts) has figures to report. Maps without statistics
    /// build the plain map.
    fn with_stats(capacity: usize, hasher: BenchHasher) -> Self {
        Self::with_capacity(capacity, hasher)
    }

    /// A handle for the calling thread.
    fn handle(&self) -> Self::Handle<'_>;

    /// The number of entries.
    fn len(&self) -> usize;

    /// Whether the map has no entries.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The lock figures the map keeps about itself so far, read after prefill and again after
    /// the workers have finished; [`Contention::between`] turns the two readings into the
    /// sample's contention.
    ///
    /// This is the extension point for maps that keep statistics: mapguard's maps built with
    /// statistics fill it from their per-shard figures (`LockedMap`'s one lock is one shard;
    /// `ReadMostlyMap`'s are its shards' write locks); maps built without statistics and the
    /// peers return `None`, shown as `-`.
    fn lock_counts(&self) -> Option<LockCounts> {
        None
    }
}

/// Cumulative lock figures of a map (see [`BenchMap::lock_counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockCounts {
    /// Operations, each of which takes a lock once.
    pub operations: u64,
    /// Acquisitions that had to wait.
    pub contended: u64,
    /// Nanoseconds spent in those waits.
    pub wait_ns: u64,
}

/// Lock contention a map reports about one sample (see [`BenchMap::lock_counts`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Contention {
    /// Share of lock acquisitions that had to wait, in percent.
    pub contended_percent: f64,
    /// Time spent waiting for locks over the workers' total time, in percent.
    pub wait_percent: f64,
}

impl Contention {
    /// The contention between two readings of a map's lock figures, over `worker_ns`
    /// nanoseconds of the workers' running time summed over the workers.
    ///
    /// # Examples
    /// ```
    /// use mapguard_cli::bench::adapter::{Contention, LockCounts};
    /// let before = LockCounts { operations: 100, contended: 0, wait_ns: 0 };
    /// let after = LockCounts { operations: 1100, contended: 10, wait_ns: 500 };
    /// let c = Contention::between(before, after, 10_000);
    /// assert_eq!((c.contended_percent, c.wait_percent), (1.0, 5.0));
    /// ```
    pub fn between(before: LockCounts, after: LockCounts, worker_ns: u64) -> Contention {
        let percent = |part: u64, whole: u64| {
            if whole == 0 {
                0.0
            } else {
                100.0 * part as f64 / whole as f64
            }
        };
        Contention {
            contended_percent: percent(
                after.contended.saturating_sub(before.contended),
                after.operations.saturating_sub(before.operations),
            ),
            wait_percent: percent(after.wait_ns.saturating_sub(before.wait_ns), worker_ns),
        }
    }
}

/// The lock figures of a statistics snapshot, when it has any. Operations are the lock
/// acquisitions: every operation of a map whose reads lock (`ShardedMap`, `LockedMap`), the
/// write-lock acquisitions of one whose reads take no lock (`ReadMostlyMap`).
fn snapshot_counts(stats: Option<mapguard::stats::StatsSnapshot>) -> Option<LockCounts> {
    let stats = stats?;
    let reads_lock = stats.map_type != "ReadMostlyMap";
    (!stats.shards.is_empty()).then(|| LockCounts {
        operations: if reads_lock {
            stats.operations()
        } else {
            stats.shards.iter().map(|s| s.write_locks).sum()
        },
        contended: stats.contended(),
        wait_ns: stats.wait_ns(),
    })
}

/// The operations of a workload, as one thread sees the map.
///
/// Every adapter marks its operations `#[inline(always)]`, so that each map's operation is
/// compiled into the workers' loop alike: left to the inliner, a map whose method carries
/// more code (a second, statistics-counting copy of its body) would pay a call per operation
/// that a smaller one does not.
pub trait MapHandle {
    /// Looks `key` up, passing the value to `black_box`; returns whether it was present.
    fn get(&mut self, key: &u64) -> bool;
    /// Inserts `key`, overwriting any previous value.
    fn insert(&mut self, key: u64, value: u64);
    /// Removes `key`; returns whether it was present.
    fn remove(&mut self, key: &u64) -> bool;
    /// Inserts over a key that is probably present. The same as `insert` for every map here;
    /// a separate method so that a map with a cheaper overwrite path can use it.
    fn update(&mut self, key: u64, value: u64) {
        self.insert(key, value);
    }
}

/// The maps the bench knows, by CLI name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MapKind {
    /// `mapguard::ShardedMap`.
    Sharded,
    /// `mapguard::ReadMostlyMap`.
    ReadMostly,
    /// `mapguard::LockedMap`.
    Locked,
    /// std `RwLock<HashMap>`.
    RwLockStd,
    /// std `Mutex<HashMap>`.
    MutexStd,
    /// dashmap 6 `DashMap`.
    Dashmap,
    /// papaya 0.2 `HashMap`, pinned per operation.
    Papaya,
    /// scc 3 `HashMap`.
    Scc,
    /// An unsynchronized `hashbrown::HashMap` ([`Hashbrown`]): at one thread the whole mix on
    /// a table of its own; on a read-only mix also at every other thread count, each thread
    /// reading one shared immutable table, which is the limit of the machine's reads.
    Hashbrown,
    /// The calibration map ([`Calibration`](super::calibration::Calibration)): `u64` words
    /// in atomic slots in a table sized for every key; the limit of a mix with writes.
    Calibration,
}

/// Whose map it is, for the "ratio to the best peer" column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapRole {
    /// A mapguard map.
    Ours,
    /// Another crate's map (or std's): the competition.
    Peer,
    /// The unsynchronized baseline (hashbrown).
    Baseline,
    /// A measure of what the hardware allows, not a general map (the calibration map).
    Reference,
}

impl MapKind {
    /// Every map, in the order the bench runs and prints them.
    pub const ALL: [MapKind; 10] = [
        MapKind::Sharded,
        MapKind::ReadMostly,
        MapKind::Locked,
        MapKind::Dashmap,
        MapKind::Papaya,
        MapKind::Scc,
        MapKind::RwLockStd,
        MapKind::MutexStd,
        MapKind::Hashbrown,
        MapKind::Calibration,
    ];

    /// The maps of the default set, in the order of [`ALL`](Self::ALL): all but `mutex-std`
    /// (std's `RwLock<HashMap>` stands for std), so that the default run stays within about a
    /// minute and a half.
    ///
    /// # Examples
    /// ```
    /// use mapguard_cli::bench::MapKind;
    /// assert!(!MapKind::default_set().contains(&MapKind::MutexStd));
    /// ```
    pub fn default_set() -> Vec<MapKind> {
        MapKind::ALL
            .into_iter()
            .filter(|m| *m != MapKind::MutexStd)
            .collect()
    }

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            MapKind::Sharded => "sharded",
            MapKind::ReadMostly => "read-mostly",
            MapKind::Locked => "locked",
            MapKind::RwLockStd => "rwlock-std",
            MapKind::MutexStd => "mutex-std",
            MapKind::Dashmap => "dashmap",
            MapKind::Papaya => "papaya",
            MapKind::Scc => "scc",
            MapKind::Hashbrown => "hashbrown",
            MapKind::Calibration => "calibration",
        }
    }

    /// Whose map it is.
    pub fn role(self) -> MapRole {
        match self {
            MapKind::Sharded | MapKind::ReadMostly | MapKind::Locked => MapRole::Ours,
            MapKind::Hashbrown => MapRole::Baseline,
            MapKind::Calibration => MapRole::Reference,
            _ => MapRole::Peer,
        }
    }

    /// Looks a map up by its CLI name.
    pub fn by_name(name: &str) -> Option<MapKind> {
        MapKind::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The CLI names of all maps, comma-separated, for error messages.
    pub fn valid_names() -> String {
        MapKind::ALL.map(MapKind::name).join(", ")
    }
}

impl fmt::Display for MapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Defines the adapter of a mapguard map: `$name` wraps `$map<u64, u64, BenchHasher>`, built
/// with `with_capacity_and_hasher` (or its builder with statistics on), read with `get` (the
/// value passed to `black_box`).
macro_rules! mapguard_adapter {
    ($(#[$doc:meta])* $name:ident, $map:ident) => {
        mapguard_adapter!($(#[$doc])* $name, $map, |map, key| map
            .get(key)
            .map(|v| black_box(*v))
            .is_some());
    };
    ($(#[$doc:meta])* $name:ident, $map:ident, |$m:ident, $k:ident| $get:expr) => {
        $(#[$doc])*
        pub struct $name(mapguard::$map<u64, u64, BenchHasher>);

        impl BenchMap for $name {
            type Handle<'m> = &'m $name;
            fn with_capacity(capacity: usize, hasher: BenchHasher) -> Self {
                $name(mapguard::$map::with_capacity_and_hasher(capacity, hasher))
            }
            fn with_stats(capacity: usize, hasher: BenchHasher) -> Self {
                $name(
                    mapguard::$map::builder()
                        .capacity(capacity)
                        .hasher(hasher)
                        .stats(true)
                        .build()
                        .expect("a bench map's settings are valid"),
                )
            }
            fn lock_counts(&self) -> Option<LockCounts> {
                snapshot_counts(self.0.stats())
            }
            fn handle(&self) -> &$name {
                self
            }
            fn len(&self) -> usize {
                self.0.len()
            }
        }

        impl MapHandle for &$name {
            #[inline(always)]
            fn get(&mut self, key: &u64) -> bool {
                let ($m, $k) = (&self.0, key);
                $get
            }
            #[inline(always)]
            fn insert(&mut self, key: u64, value: u64) {
                black_box(self.0.insert(key, value));
            }
            #[inline(always)]
            fn remove(&mut self, key: &u64) -> bool {
                self.0.remove(key).is_some()
            }
        }
    };
}

mapguard_adapter!(
    /// `mapguard::ShardedMap`. A read copies the value out under the shard's read lock, as
    /// the peers' adapters do (through a guard or a closure), with `get_cloned`: no guard
    /// object, and the lock released inline.
    Sharded,
    ShardedMap,
    |map, key| map.get_cloned(key).map(black_box).is_some()
);
mapguard_adapter!(
    /// `mapguard::ReadMostlyMap`.
    ReadMostly,
    ReadMostlyMap
);
mapguard_adapter!(
    /// `mapguard::LockedMap`: one lock around one table, mapguard's baseline. A read copies
    /// the value out under the read lock with `get_cloned`, as the std `RwLock` adapter does.
    Locked,
    LockedMap,
    |map, key| map.get_cloned(key).map(black_box).is_some()
);

/// std `RwLock<HashMap>`: the minimal fix.
pub struct RwLockStd(RwLock<StdHashMap<u64, u64, BenchHasher>>);

impl BenchMap for RwLockStd {
    type Handle<'m> = &'m RwLockStd;
    fn with_capacity(capacity: usize, hasher: BenchHasher) -> Self {
        RwLockStd(RwLock::new(StdHashMap::with_capacity_and_hasher(
            capacity, hasher,
        )))
    }
    fn handle(&self) -> &RwLockStd {
        self
    }
    fn len(&self) -> usize {
        self.0.read().expect("lock not poisoned").len()
    }
}

impl MapHandle for &RwLockStd {
    #[inline(always)]
    fn get(&mut self, key: &u64) -> bool {
        let map = self.0.read().expect("lock not poisoned");
        map.get(key).map(|v| black_box(*v)).is_some()
    }
    #[inline(always)]
    fn insert(&mut self, key: u64, value: u64) {
        black_box(
            self.0
                .write()
                .expect("lock not poisoned")
                .insert(key, value),
        );
    }
    #[inline(always)]
    fn remove(&mut self, key: &u64) -> bool {
        self.0
            .write()
            .expect("lock not poisoned")
            .remove(key)
            .is_some()
    }
}

/// std `Mutex<HashMap>`.
pub struct MutexStd(Mutex<StdHashMap<u64, u64, BenchHasher>>);

impl BenchMap for MutexStd {
    type Handle<'m> = &'m MutexStd;
    fn with_capacity(capacity: usize, hasher: BenchHasher) -> Self {
        MutexStd(Mutex::new(StdHashMap::with_capacity_and_hasher(
            capacity, hasher,
        )))
    }
    fn handle(&self) -> &MutexStd {
        self
    }
    fn len(&self) -> usize {
        self.0.lock().expect("lock not poisoned").len()
    }
}

impl MapHandle for &MutexStd {
    #[inline(always)]
    fn get(&mut self, key: &u64) -> bool {
        let map = self.0.lock().expect("lock not poisoned");
        map.get(key).map(|v| black_box(*v)).is_some()
    }
    #[inline(always)]
    fn insert(&mut self, key: u64, value: u64) {
        black_box(self.0.lock().expect("lock not poisoned").insert(key, value));
    }
    #[inline(always)]
    fn remove(&mut self, key: &u64) -> bool {
        self.0
            .lock()
            .expect("lock not poisoned")
            .remove(key)
            .is_some()
    }
}

/// dashmap 6.
pub struct Dashmap(dashmap::DashMap<u64, u64, BenchHasher>);

impl BenchMap for Dashmap {
    type Handle<'m> = &'m Dashmap;
    fn with_capacity(capacity: usize, hasher: BenchHasher) -> Self {
        Dashmap(dashmap::DashMap::with_capacity_and_hasher(capacity, hasher))
    }
    fn handle(&self) -> &Dashmap {
        self
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl MapHandle for &Dashmap {
    #[inline(always)]
    fn get(&mut self, key: &u64) -> bool {
        self.0.get(key).map(|v| black_box(*v)).is_some()
    }
    #[inline(always)]
    fn insert(&mut self, key: u64, value: u64) {
        black_box(self.0.insert(key, value));
    }
    #[inline(always)]
    fn remove(&mut self, key: &u64) -> bool {
        self.0.remove(key).is_some()
    }
}

/// papaya 0.2. Each operation pins its own guard, as papaya's docs show; a guard held for a
/// whole run would keep every removed entry alive until the run ends.
pub struct Papaya(papaya::HashMap<u64, u64, BenchHasher>);

impl BenchMap for Papaya {
    type Handle<'m> = &'m Papaya;
    fn with_capacity(capacity: usize, hasher: BenchHasher) -> Self {
        Papaya(papaya::HashMap::with_capacity_and_hasher(capacity, hasher))
    }
    fn handle(&self) -> &Papaya {
        self
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl MapHandle for &Papaya {
    #[inline(always)]
    fn get(&mut self, key: &u64) -> bool {
        self.0.pin().get(key).map(|v| black_box(*v)).is_some()
    }
    #[inline(always)]
    fn insert(&mut self, key: u64, value: u64) {
        black_box(self.0.pin().insert(key, value).is_some());
    }
    #[inline(always)]
    fn remove(&mut self, key: &u64) -> bool {
        self.0.pin().remove(key).is_some()
    }
}

/// scc 3 `HashMap` (its synchronous API).
pub struct Scc(scc::HashMap<u64, u64, BenchHasher>);

impl BenchMap for Scc {
    type Handle<'m> = &'m Scc;
    fn with_capacity(capacity: usize, hasher: BenchHasher) -> Self {
        Scc(scc::HashMap::with_capacity_and_hasher(capacity, hasher))
    }
    fn handle(&self) -> &Scc {
        self
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl MapHandle for &Scc {
    #[inline(always)]
    fn get(&mut self, key: &u64) -> bool {
        self.0.read_sync(key, |_, v| black_box(*v)).is_some()
    }
    #[inline(always)]
    fn insert(&mut self, key: u64, value: u64) {
        black_box(self.0.upsert_sync(key, value));
    }
    #[inline(always)]
    fn remove(&mut self, key: &u64) -> bool {
        self.0.remove_sync(key).is_some()
    }
}

/// hashbrown's table without synchronization, the baseline: each worker's handle holds the
/// table for the whole sample, exclusively (a write guard, one worker) or, once
/// [`start`](BenchMap::start) was told of a read-only mix, shared (a read guard each, any
/// number of workers reading one immutable table).
pub struct Hashbrown {
    table: RwLock<HashbrownTable>,
    /// Whether handles read the table shared (set by `start` on a read-only mix).
    shared: AtomicBool,
}

type HashbrownTable = hashbrown::HashMap<u64, u64, BenchHasher>;

/// A worker's hold on the [`Hashbrown`] table.
pub enum HashbrownHandle<'m> {
    /// The only worker, running any mix.
    Own(RwLockWriteGuard<'m, HashbrownTable>),
    /// One of the workers reading a shared immutable table.
    Shared(RwLockReadGuard<'m, HashbrownTable>),
}

impl BenchMap for Hashbrown {
    type Handle<'m> = HashbrownHandle<'m>;
    fn with_capacity(capacity: usize, hasher: BenchHasher) -> Self {
        Hashbrown {
            table: RwLock::new(hashbrown::HashMap::with_capacity_and_hasher(
                capacity, hasher,
            )),
            shared: AtomicBool::new(false),
        }
    }
    fn start(&self, workload: &Workload) {
        self.shared
            .store(workload.is_read_only(), Ordering::Relaxed);
    }
    fn handle(&self) -> HashbrownHandle<'_> {
        if self.shared.load(Ordering::Relaxed) {
            HashbrownHandle::Shared(self.table.read().expect("lock not poisoned"))
        } else {
            HashbrownHandle::Own(self.table.write().expect("lock not poisoned"))
        }
    }
    fn len(&self) -> usize {
        self.table.read().expect("lock not poisoned").len()
    }
}

impl HashbrownHandle<'_> {
    /// The table, for a write.
    ///
    /// # Panics
    /// If the table is shared: the bench runs only read-only mixes on it then.
    #[inline(always)]
    fn own(&mut self) -> &mut HashbrownTable {
        match self {
            HashbrownHandle::Own(table) => table,
            HashbrownHandle::Shared(_) => {
                panic!("the shared hashbrown table is read-only: it runs only read-only mixes")
            }
        }
    }
}

impl MapHandle for HashbrownHandle<'_> {
    #[inline(always)]
    fn get(&mut self, key: &u64) -> bool {
        let table: &HashbrownTable = match self {
            HashbrownHandle::Own(table) => table,
            HashbrownHandle::Shared(table) => table,
        };
        table.get(key).map(|v| black_box(*v)).is_some()
    }
    #[inline(always)]
    fn insert(&mut self, key: u64, value: u64) {
        black_box(self.own().insert(key, value));
    }
    #[inline(always)]
    fn remove(&mut self, key: &u64) -> bool {
        self.own().remove(key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise<M: BenchMap>() {
        let map = M::with_capacity(16, bench_hasher(1));
        {
            let mut h = map.handle();
            assert!(!h.get(&1));
            h.insert(1, 10);
            h.update(1, 11);
            h.insert(2, 20);
            assert!(h.get(&1));
            assert!(h.remove(&2));
            assert!(!h.remove(&2));
            assert!(!h.get(&2));
        }
        assert_eq!(map.len(), 1, "{}", std::any::type_name::<M>());
    }

    #[test]
    fn every_adapter_behaves_like_a_map() {
        exercise::<Sharded>();
        exercise::<ReadMostly>();
        exercise::<Locked>();
        exercise::<RwLockStd>();
        exercise::<MutexStd>();
        exercise::<Dashmap>();
        exercise::<Papaya>();
        exercise::<Scc>();
        exercise::<Hashbrown>();
        exercise::<super::super::calibration::Calibration>();
    }

    #[test]
    fn hashbrown_is_read_by_every_worker_at_once_on_a_read_only_mix() {
        let map = Hashbrown::with_capacity(16, bench_hasher(1));
        map.handle().insert(1, 10);
        map.start(Workload::by_name("read100").unwrap());
        let mut a = map.handle();
        // A second reader while the first holds its handle: the table is shared, not held
        // with the write guard of a mix with writes.
        assert!(
            map.table.try_read().is_ok(),
            "the table is held exclusively"
        );
        let mut b = map.handle();
        assert!(a.get(&1) && b.get(&1));
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.insert(2, 2)));
        assert!(refused.is_err(), "a shared table refuses writes");
    }

    #[test]
    fn names_round_trip() {
        for m in MapKind::ALL {
            assert_eq!(MapKind::by_name(m.name()), Some(m));
        }
        assert_eq!(MapKind::by_name("DashMap"), None);
    }
}
