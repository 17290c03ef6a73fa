//! Statistics, hot keys and write observers for all three maps.
//!
//! Turned on per map when it is built: `builder().stats(true)` counts operations,
//! `builder().stats_keys(true)` (for `K: Debug`) adds the keys' text to the hot keys,
//! `builder().observer(..)` installs an [`Observer`], `builder().name(..)` labels exports.
//! `stats()` returns a [`StatsSnapshot`] (`Debug`, `Display` as a small table, `serde` with
//! the feature, [`to_prometheus`](StatsSnapshot::to_prometheus)), or `None` when off.
//!
//! # What is exact, what is sampled, what is atomic
//! - **Exact**: every counter of the snapshot (gets hit/miss, inserts, overwrites, removes
//!   hit/miss, computes, clears), `len`, `capacity`, and per shard the entries, the
//!   write-lock acquisitions, the contended acquisitions and the time they waited (every
//!   contended wait is timed; uncontended acquisitions are never timed).
//! - **Sampled**: one access in [`SAMPLE_PERIOD`] on average is sampled, chosen by mixing
//!   the thread's own count with the key's hash (so that neither a key nor a periodic workload
//!   is always or never sampled, and no extra per-thread state is touched). A sampled access feeds the hot-key
//!   sketch (Space-Saving over key hashes, 64 monitored hashes, reads and writes) and, for a
//!   read of a `ShardedMap` or `LockedMap`, that shard's read count. Reported estimates are sample counts
//!   times the period: `read_locks_estimate`, `operations_estimate`, hot-key `count` and its
//!   `error` bound. A key with more than 1/64 of the sampled accesses is always in the sketch
//!   (it monitors 64 hashes).
//! - **Not atomic**: a snapshot sums per-thread stripes and shards one at a time while other
//!   threads go on; each figure is exact for what it saw, the set is not one instant.
//!
//! # Cost, and why the read path stays unshared
//! This module exists with the `stats` feature (opt-in). A map keeps one optional boxed
//! `Instrument` pointer and, beside it, a pointer to its counters when it counts and a
//! pointer to its observer (with the map's name) when it has one. With statistics and
//! observer off, every operation tests one field once (one load and one branch). The
//! hottest methods (`get`, `get_cloned`, `contains_key`, `insert`, `remove`) have two copies
//! of their body, with and without the hooks, and a field chooses: the reads test the
//! counters' pointer (an observer alone leaves reads on the plain copy), the writes the
//! instrument's; the other writes call a cold out-of-line hook. The twinned writes
//! (`insert`, and `remove_entry` or `remove`) are always inlined, so that with the feature
//! their plain copy is still inlined into the caller as it is without. No hook hands the
//! caller's key to a function that is not inlined (a sampled read names its hot key by a
//! stored key of the same hash, or looks it up inline), so the plain copy keeps the key in
//! a register as a build without the feature does. In instruction counts
//! (`examples/stats_off_ir.rs` under callgrind, 200 000 operations, against the same code
//! built without the feature) off costs `ShardedMap` +2.2 % on `seed95` (92.9 against 90.9
//! per operation), +2.3 % on `read-heavy` (89.7 / 87.7) and +3.8 % on `exchange` (98.1 /
//! 94.5); `ReadMostlyMap` +2.2 % (100.4 / 98.2), +2.6 % (91.7 / 89.4) and +2.2 % (239.5 /
//! 234.4); `LockedMap` +10 % (55.9 / 50.8), +9.7 % (54.5 / 49.7) and +10 % (81.1 / 73.4).
//! For `ShardedMap` and `ReadMostlyMap` that is the test itself, two or three instructions
//! (a load or a compare with memory, and the branch); `LockedMap` pays about two more, a
//! constant and a pointer the caller's loop can no longer keep in registers. A test on a
//! 50-instruction operation cannot stay within 1 %: that is why the feature is opt-in;
//! built without it, the maps have no hook at all and run the code they had before
//! statistics existed.
//!
//! On, counters live in cache-padded per-thread stripes (see `counters`): a thread whose
//! number is below the stripe count (twice the cores rounded up to a power of two, 4 to 64)
//! is the only writer of its stripe and adds with a relaxed load and store; threads beyond
//! share one overflow stripe with `fetch_add`. The read path therefore writes no line
//! another core reads, except once per sampled access, which takes the map's sampling mutex.
//! A read counts its lookup before it looks (one stripe access, whose count also decides
//! the sampling), so that a sampled read feeds the sketch before it takes any lock and the
//! hooked copy makes no call while it holds a guard; a miss is counted after, once the
//! guard is gone (a second, out-of-line stripe access, for misses only); hits are lookups
//! less misses. A sampled read of a map built with `stats_keys` looks its key up once more
//! (plainly) to render it; `ShardedMap` takes a stored key of the sampled hash. Write-lock counts come free from the shard lock, which counts its
//! writers under the writer word already (`ShardedMap`), from a count the shard's writer
//! keeps under its mutex (`ReadMostlyMap`), or from the write counters, each write counting
//! exactly one (`LockedMap`). Contention is counted and timed only on the slow paths:
//! `ShardedMap`'s shard lock times its waits; `LockedMap` (with statistics, in the hooked
//! copies) and `ReadMostlyMap`'s shard writers try their lock first and time only an
//! acquisition whose try failed. An observer costs one dynamic call per write, passed a
//! [`WriteEvent`] the map fills with four stores (the key's hash, the method, the caller's
//! `Location` and the address of the map's label, which holds its name and, for
//! `ShardedMap`, the shard mask); the shard is derived from the hash only when the observer
//! asks, and the observer itself is reached with one load (no `Arc` header arithmetic: see
//! `raw::held`). `examples/stats_cost.rs` measures all three maps with statistics off, on,
//! and with a no-op observer, in one process. Under callgrind (`--ir`, one thread, 1 000 000
//! operations), instructions per operation off / on / no-op observer: `ShardedMap` `seed95`
//! 114.1 / 129.6 / 115.4, `read-heavy` 110.5 / 128.9 / 110.9, `exchange` 115.8 / 143.1 /
//! 135.8; `ReadMostlyMap` 117.2 / 162.1 / 118.1, 108.1 / 155.7 / 108.5, 246.3 / 279.6 /
//! 262.6; `LockedMap` 72.2 / 88.6 / 73.3, 70.8 / 89.9 / 71.2, 100.0 / 132.0 / 120.6. A
//! counted read costs about 15 to 20 instructions more than a plain one (`ReadMostlyMap`'s,
//! whose counting copy is out of line, about 45), a counted write about 25 to 35, an
//! observed write about 18 to 23 (it was 24 to 28 with an event of eight stores: the name
//! as a `&str`, and the hash and shard as `Option`s).
//!
//! # Exports
//! - [`StatsSnapshot::to_prometheus`]: the text exposition format, no dependency.
//! - Feature `metrics`: a map built with statistics registers its counters and gauges with
//!   the `metrics` facade when it is built (names `mapguard_*`, label `map` = its name or
//!   `"unnamed"`); no handle is touched per operation. Values flow when the map's
//!   `publish_metrics()` is called — from a scrape handler or a periodic task — which takes a
//!   snapshot and sets the counters (absolute) and gauges, and returns the snapshot.
//! - Feature `tracing`: [`TracingObserver`] emits a TRACE event per write.
//! - Feature `usdt` (Linux): static probes `mapguard:insert`, `mapguard:remove`,
//!   `mapguard:write` (key hash, shard, op) on every write and `mapguard:lock_contended`
//!   (shard, read/write, nanoseconds) on every contended shard-lock wait, whether or not
//!   statistics are on; a probe site is a `nop` until bpftrace or perf attaches, e.g.
//!   `bpftrace -e 'usdt:./app:mapguard:lock_contended { @[arg0] = sum(arg2); }'`.

pub(crate) mod counters;
#[cfg(feature = "metrics")]
mod export_metrics;
mod observer;
mod prometheus;
mod sketch;
mod snapshot;

use std::fmt;
use std::panic::Location;
use std::sync::Arc;

use parking_lot::Mutex;

#[cfg(feature = "stats")]
use crate::raw::held::Held;
use crate::raw::lock_stats::LockStats;
pub(crate) use counters::Counter;
use counters::{Block, Stripes, with_stripes};
use crossbeam_utils::CachePadded;
#[cfg(feature = "stats")]
use observer::MapLabel;
#[cfg(feature = "tracing")]
pub use observer::TracingObserver;
pub use observer::{Observer, WriteEvent, WriteOp};
use sketch::Sampled;
pub use snapshot::{HotKey, ShardStats, StatsSnapshot};

/// The mean interval, in accesses of one thread, between sampled accesses.
pub const SAMPLE_PERIOD: u64 = counters::SAMPLE_PERIOD;

/// How many hot keys a snapshot reports.
pub const HOT_KEYS: usize = 16;

/// What a builder was told about statistics and observing; cloned into every map it builds.
pub(crate) struct Settings<K> {
    stats: bool,
    name: Option<Arc<str>>,
    observer: Option<Arc<dyn Observer>>,
    key_label: Option<fn(&K) -> String>,
}

impl<K> Default for Settings<K> {
    fn default() -> Self {
        Self {
            stats: false,
            name: None,
            observer: None,
            key_label: None,
        }
    }
}

impl<K> Clone for Settings<K> {
    fn clone(&self) -> Self {
        Self {
            stats: self.stats,
            name: self.name.clone(),
            observer: self.observer.clone(),
            key_label: self.key_label,
        }
    }
}

impl<K> fmt::Debug for Settings<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("stats", &self.stats)
            .field("name", &self.name)
            .field("observer", &self.observer.is_some())
            .field("stats_keys", &self.key_label.is_some())
            .finish()
    }
}

impl<K> Settings<K> {
    pub(crate) fn set_stats(&mut self, on: bool) {
        self.stats = on;
    }

    pub(crate) fn stats(&self) -> bool {
        self.stats
    }

    pub(crate) fn set_name(&mut self, name: &str) {
        self.name = Some(name.into());
    }

    pub(crate) fn set_observer(&mut self, observer: Arc<dyn Observer>) {
        self.observer = Some(observer);
    }

    pub(crate) fn set_stats_keys(&mut self, on: bool)
    where
        K: fmt::Debug,
    {
        self.key_label = on.then_some(|key: &K| format!("{key:?}"));
    }

    /// The instrument of a new map with `shards` shards (0 without shards), or an empty slot
    /// when there is nothing to record or call: the only cost of instrumentation then is the
    /// map checking that field (and nothing without the `stats` feature).
    pub(crate) fn build(&self, map_type: &'static str, shards: usize) -> Slot<K> {
        self.build_as(map_type, shards, false, false)
    }

    /// [`build`](Self::build) for a map whose write events report the key's shard
    /// (`ShardedMap`, whose shard is [`shard_of`](crate::raw::pow2::shard_of) the hash).
    pub(crate) fn build_sharded(&self, map_type: &'static str, shards: usize) -> Slot<K> {
        self.build_as(map_type, shards, false, true)
    }

    /// [`build`](Self::build) for a map whose one lock counts nothing itself (`LockedMap`):
    /// its write-lock acquisitions are the sum of the write counters (each write counts one,
    /// [`Counter::WriteLock`] if no other), and its
    /// contention figures kept in the instrument ([`lock_waits`](Instrument::lock_waits)),
    /// reported as one shard.
    pub(crate) fn build_locked(&self, map_type: &'static str) -> Slot<K> {
        self.build_as(map_type, 1, true, false)
    }

    fn build_as(
        &self,
        map_type: &'static str,
        shards: usize,
        lock_here: bool,
        report_shards: bool,
    ) -> Slot<K> {
        if !self.stats && self.observer.is_none() {
            return Slot::empty();
        }
        let stats = self.stats.then(|| {
            let mut lock_waits = LockStats::default();
            lock_waits.enable();
            macro_rules! map_stats {
                ($n:literal) => {
                    Arc::new(MapStats {
                        count_write_locks: lock_here,
                        lock_waits,
                        sampled: Mutex::new(Sampled::new(shards)),
                        stripes: Stripes::<[CachePadded<Block>; $n]>::sized(),
                    }) as Arc<MapStats>
                };
            }
            with_stripes!(counters::stripe_count(), map_stats)
        });
        let shard_mask = (report_shards && shards > 0).then(|| shards - 1);
        Slot::holding(
            Box::new(Instrument {
                #[cfg(feature = "metrics")]
                metrics: self.stats.then(|| {
                    export_metrics::Handles::new(
                        self.name.as_deref().unwrap_or("unnamed"),
                        shards > 0,
                    )
                }),
                map_type,
                settings: self.clone(),
                stats,
            }),
            shard_mask,
        )
    }
}

/// A map's instrument, if it has one. Without the `stats` feature it is always empty and
/// zero-sized, and every check of it compiles to nothing.
pub(crate) struct Slot<K> {
    #[cfg(feature = "stats")]
    inner: Option<Box<Instrument<K>>>,
    /// The instrument's counters, if it counts (reads have nothing to do for an observer
    /// alone): the one field a counted read tests, with no second test to reach them.
    #[cfg(feature = "stats")]
    counts: Option<Arc<MapStats>>,
    /// The observer, if one is installed, reached with one load (see `raw::held`), and the
    /// label its events point to: the field a hooked write tests after the counters.
    #[cfg(feature = "stats")]
    observer: Option<Observing>,
    _instrument: std::marker::PhantomData<fn(&K)>,
}

/// An installed observer, reached with one load (see `raw::held`), and the label every
/// write event points to.
#[cfg(feature = "stats")]
struct Observing {
    observer: Held<dyn Observer>,
    label: MapLabel,
}

impl<K> Slot<K> {
    pub(crate) fn empty() -> Self {
        Self {
            #[cfg(feature = "stats")]
            inner: None,
            #[cfg(feature = "stats")]
            counts: None,
            #[cfg(feature = "stats")]
            observer: None,
            _instrument: std::marker::PhantomData,
        }
    }

    fn holding(instrument: Box<Instrument<K>>, shard_mask: Option<usize>) -> Self {
        #[cfg(not(feature = "stats"))]
        drop((instrument, shard_mask));
        Self {
            #[cfg(feature = "stats")]
            counts: instrument.stats.clone(),
            #[cfg(feature = "stats")]
            observer: instrument
                .settings
                .observer
                .clone()
                .map(|observer| Observing {
                    observer: Held::new(observer),
                    label: MapLabel::new(instrument.settings.name.clone(), shard_mask),
                }),
            #[cfg(feature = "stats")]
            inner: Some(instrument),
            _instrument: std::marker::PhantomData,
        }
    }

    /// Counts a lookup of `hash` as it starts, in the hooked copies of the read methods (see
    /// [`counts_reads`](Self::counts_reads)); `true` if it is sampled, and the caller then
    /// calls [`sample_read`](Self::sample_read) (cold) before it looks the key up. Counting
    /// before the lookup is what keeps the hooked copies free of calls while they hold a
    /// guard: the only other hook, [`read_missed`](Self::read_missed), never samples.
    #[inline(always)]
    pub(crate) fn read_start(&self, hash: u64) -> bool {
        #[cfg(feature = "stats")]
        if let Some(stats) = &self.counts {
            return stats.stripes.bump(Counter::Get, hash);
        }
        let _ = hash;
        false
    }

    /// Counts a lookup started with [`read_start`](Self::read_start) that found nothing.
    /// Out of line: inlined, the second stripe access of a read method keeps the stripe's
    /// address parts in callee-saved registers, which the plain copy then saves and restores
    /// too.
    #[inline(never)]
    pub(crate) fn read_missed(&self) {
        #[cfg(feature = "stats")]
        if let Some(stats) = &self.counts {
            stats.stripes.bump(Counter::GetMiss, 0);
        }
    }

    /// [`read_missed`](Self::read_missed) in the hooked copy of a read method (`COUNT`);
    /// nothing in the plain copy.
    #[inline(always)]
    pub(crate) fn read_missed_if<const COUNT: bool>(&self) {
        if COUNT {
            self.read_missed();
        }
    }

    /// Whether a sampled read should look its key up for [`sample_read`](Self::sample_read)
    /// (the map was built with `stats_keys`).
    #[inline(always)]
    pub(crate) fn samples_keys(&self) -> bool {
        #[cfg(feature = "stats")]
        return self
            .inner
            .as_ref()
            .is_some_and(|instr| instr.settings.key_label.is_some());
        #[cfg(not(feature = "stats"))]
        false
    }

    /// A sampled read of `hash` in `shard` (`usize::MAX` without shards; `key`: the stored
    /// key, when [`samples_keys`](Self::samples_keys) asked for it): feeds the sketch and
    /// the shard's read count. Called from the maps' cold sampling functions, into which it
    /// is inlined.
    #[inline(always)]
    pub(crate) fn sample_read(&self, hash: u64, shard: usize, key: Option<&K>) {
        #[cfg(feature = "stats")]
        if let (Some(instr), Some(stats)) = (&self.inner, &self.counts) {
            instr.sample(stats, hash, shard, key);
        }
        #[cfg(not(feature = "stats"))]
        let _ = (hash, shard, key);
    }

    /// Counts a write, tells the observer and fires the probe, in the hooked copy of a write
    /// method (`instr`: the instrument the method took from [`get`](Self::get) once to
    /// choose that copy; `None` in the plain copy, which only fires the probe). Inlined; the
    /// callers pass constant `Some`s, so what remains is a test of the counters' field and
    /// one of the observer's, both in the map itself.
    #[inline(always)]
    pub(crate) fn write_hooked(
        &self,
        instr: Option<&Instrument<K>>,
        op: WriteOp,
        hash: Option<u64>,
        shard: Option<usize>,
        counter: Option<Counter>,
        location: &'static Location<'static>,
    ) {
        self.probe(op, hash, shard, counter);
        if instr.is_some() {
            self.write_now(op, hash, shard, counter, location);
        }
    }

    /// Counts a write, tells the observer and fires the probe; for the write methods without
    /// a twin: one load and one branch on the slot (and the probe with the `usdt` feature),
    /// the rest out of line and cold. `location` is the write method's caller.
    #[inline(always)]
    pub(crate) fn write_cold(
        &self,
        op: WriteOp,
        hash: Option<u64>,
        shard: Option<usize>,
        counter: Option<Counter>,
        location: &'static Location<'static>,
    ) {
        self.probe(op, hash, shard, counter);
        #[cfg(feature = "stats")]
        if self.inner.is_some() {
            self.write_out_of_line(op, hash, shard, counter, location);
        }
        #[cfg(not(feature = "stats"))]
        let _ = location;
    }

    /// [`write_now`](Self::write_now), out of line and cold.
    #[cfg(feature = "stats")]
    #[cold]
    #[inline(never)]
    fn write_out_of_line(
        &self,
        op: WriteOp,
        hash: Option<u64>,
        shard: Option<usize>,
        counter: Option<Counter>,
        location: &'static Location<'static>,
    ) {
        self.write_now(op, hash, shard, counter, location);
    }

    /// A write: counts `counter` (if any) and calls the observer (if any), the event built
    /// only when there is one.
    #[inline(always)]
    fn write_now(
        &self,
        op: WriteOp,
        hash: Option<u64>,
        shard: Option<usize>,
        counter: Option<Counter>,
        location: &'static Location<'static>,
    ) {
        #[cfg(feature = "stats")]
        {
            // The event derives the shard from the hash when asked (see `MapLabel`).
            let _ = shard;
            if let Some(stats) = &self.counts {
                match counter {
                    // A lookup (`get_mut`) that missed: counted as a lookup and a miss.
                    Some(Counter::GetMiss) => {
                        stats.stripes.bump(Counter::Get, 0);
                        stats.stripes.bump(Counter::GetMiss, 0);
                    }
                    Some(counter) => {
                        let sampled = stats.stripes.bump(counter, hash.unwrap_or(0));
                        if let (true, Some(hash)) = (sampled, hash) {
                            self.sample_write(hash);
                        }
                    }
                    // A write that counts nothing else (`retain`, `get_or_insert` of a
                    // present key) still took the write lock.
                    None if stats.count_write_locks => {
                        stats.stripes.bump(Counter::WriteLock, 0);
                    }
                    None => {}
                }
            }
            if let Some(observing) = &self.observer {
                // Four stores: the hash, the method, the caller and the label's address.
                let event = WriteEvent::new(&observing.label, op, hash.unwrap_or(0), location);
                observing.observer.get().on_write(&event);
            }
        }
        #[cfg(not(feature = "stats"))]
        let _ = (op, hash, shard, counter, location);
    }

    /// A sampled write of `hash`: feeds the sketch (writes are counted per shard exactly by
    /// the lock: no shard here).
    #[cfg(feature = "stats")]
    #[cold]
    #[inline(never)]
    fn sample_write(&self, hash: u64) {
        if let (Some(instr), Some(stats)) = (&self.inner, &self.counts) {
            instr.sample(stats, hash, usize::MAX, None);
        }
    }

    /// The USDT probe of a write (feature `usdt`, Linux); nothing at all otherwise.
    #[inline(always)]
    pub(crate) fn probe(
        &self,
        op: WriteOp,
        hash: Option<u64>,
        shard: Option<usize>,
        counter: Option<Counter>,
    ) {
        #[cfg(all(feature = "usdt", target_os = "linux"))]
        probe_write(op, hash, shard, counter);
        #[cfg(not(all(feature = "usdt", target_os = "linux")))]
        let _ = (op, hash, shard, counter);
    }

    /// Whether the map counts operations: one load and one branch. The read methods test it
    /// (rather than [`get`](Self::get), which the writes test) to choose their hooked copy, since a read has
    /// nothing to tell an observer. Always `false` without the `stats` feature.
    #[inline(always)]
    pub(crate) fn counts_reads(&self) -> bool {
        #[cfg(feature = "stats")]
        return self.counts.is_some();
        #[cfg(not(feature = "stats"))]
        false
    }

    /// Where a map whose lock keeps no figures (`LockedMap`) times its contended read
    /// acquisitions, from the field [`counts_reads`](Self::counts_reads) tests; `None` when
    /// statistics are off (always, without the `stats` feature).
    #[inline(always)]
    pub(crate) fn lock_waits(&self) -> Option<&LockStats> {
        #[cfg(feature = "stats")]
        return self.counts.as_deref().map(|stats| &stats.lock_waits);
        #[cfg(not(feature = "stats"))]
        None
    }

    /// The instrument, or `None` (always, without the `stats` feature).
    #[inline(always)]
    pub(crate) fn get(&self) -> Option<&Instrument<K>> {
        #[cfg(feature = "stats")]
        return self.inner.as_deref();
        #[cfg(not(feature = "stats"))]
        None
    }
}

/// A map's counters and sampled figures. Unsized like its last field, the stripes (see
/// [`Stripes`]).
struct MapStats<S: ?Sized = [CachePadded<Block>]> {
    /// Count [`Counter::WriteLock`] for writes without a counter (see
    /// `Settings::build_locked`).
    count_write_locks: bool,
    /// Contended acquisitions of the map's lock and their wait, for a map whose lock keeps
    /// none itself (`LockedMap`).
    lock_waits: LockStats,
    sampled: Mutex<Sampled>,
    stripes: Stripes<S>,
}

/// The per-map hook object: present only when the map records statistics or has an
/// observer. Its methods are the hooks the maps call.
pub(crate) struct Instrument<K> {
    map_type: &'static str,
    settings: Settings<K>,
    stats: Option<Arc<MapStats>>,
    #[cfg(feature = "metrics")]
    metrics: Option<export_metrics::Handles>,
}

impl<K> Instrument<K> {
    /// The settings it was built from (for a clone of the map).
    pub(crate) fn settings(&self) -> &Settings<K> {
        &self.settings
    }

    /// Whether counters are on (so that shard locks can turn on their contention figures).
    pub(crate) fn records(&self) -> bool {
        self.stats.is_some()
    }

    /// Where a map whose lock keeps no figures (`LockedMap`) times its contended
    /// acquisitions; `None` when statistics are off.
    #[inline(always)]
    pub(crate) fn lock_waits(&self) -> Option<&LockStats> {
        self.stats.as_ref().map(|stats| &stats.lock_waits)
    }

    /// `(write-lock acquisitions, contended acquisitions, nanoseconds waited)` of a map built
    /// with `Settings::build_locked`: its one "shard".
    pub(crate) fn lock_figures(&self) -> (u64, u64, u64) {
        match &self.stats {
            Some(stats) => {
                let (contended, wait_ns) = stats.lock_waits.figures();
                // Every write of such a map counts exactly one of these.
                let sums = stats.stripes.sum();
                let locks = [
                    Counter::Insert,
                    Counter::Overwrite,
                    Counter::RemoveHit,
                    Counter::RemoveMiss,
                    Counter::Compute,
                    Counter::Clear,
                    Counter::WriteLock,
                ]
                .iter()
                .map(|&c| sums[c as usize])
                .sum();
                (locks, contended, wait_ns)
            }
            None => (0, 0, 0),
        }
    }

    #[cold]
    #[inline(never)]
    fn sample(&self, stats: &MapStats, hash: u64, shard: usize, key: Option<&K>) {
        let label = match (self.settings.key_label, key) {
            (Some(render), Some(key)) => Some(move || render(key)),
            _ => None,
        };
        let mut sampled = stats.sampled.lock();
        sampled.offer(hash, label.as_ref().map(|f| f as &dyn Fn() -> String));
        if let Some(reads) = sampled.shard_reads.get_mut(shard) {
            *reads += 1;
        }
    }

    /// The sampled reads of each shard, scaled to estimates.
    pub(crate) fn shard_read_estimates(&self) -> Vec<u64> {
        match &self.stats {
            Some(stats) => stats
                .sampled
                .lock()
                .shard_reads
                .iter()
                .map(|n| n * SAMPLE_PERIOD)
                .collect(),
            None => Vec::new(),
        }
    }

    /// A snapshot with these map-wide figures, or `None` when statistics are off.
    pub(crate) fn snapshot(
        &self,
        len: usize,
        capacity: usize,
        shards: Vec<ShardStats>,
    ) -> Option<StatsSnapshot> {
        let stats = self.stats.as_ref()?;
        let sums = stats.stripes.sum();
        let hot_keys = stats
            .sampled
            .lock()
            .top_k(HOT_KEYS)
            .into_iter()
            .map(|m| HotKey {
                hash: m.hash,
                key: m.key,
                count: m.count * SAMPLE_PERIOD,
                error: m.error * SAMPLE_PERIOD,
            })
            .collect();
        Some(StatsSnapshot {
            map_type: self.map_type.to_owned(),
            name: self.settings.name.as_deref().map(str::to_owned),
            len,
            capacity,
            // Each thread counts a lookup before its miss: a sum taken while others count
            // may see a miss without its lookup, never the reverse for one thread's
            // finished reads.
            gets_hit: sums[Counter::Get as usize].saturating_sub(sums[Counter::GetMiss as usize]),
            gets_miss: sums[Counter::GetMiss as usize],
            inserts: sums[Counter::Insert as usize],
            overwrites: sums[Counter::Overwrite as usize],
            removes_hit: sums[Counter::RemoveHit as usize],
            removes_miss: sums[Counter::RemoveMiss as usize],
            computes: sums[Counter::Compute as usize],
            clears: sums[Counter::Clear as usize],
            sample_period: SAMPLE_PERIOD,
            shards,
            hot_keys,
        })
    }

    /// Pushes a snapshot to the `metrics` handles registered at build time.
    #[cfg(feature = "metrics")]
    pub(crate) fn publish(&self, snapshot: &StatsSnapshot) {
        if let Some(handles) = &self.metrics {
            handles.publish(snapshot);
        }
    }
}

/// The probe of a write (feature `usdt`, Linux).
#[cfg(all(feature = "usdt", target_os = "linux"))]
#[inline(always)]
fn probe_write(op: WriteOp, hash: Option<u64>, shard: Option<usize>, counter: Option<Counter>) {
    let hash = hash.unwrap_or(0);
    let shard = shard.map_or(u64::MAX, |s| s as u64);
    match counter {
        Some(Counter::Insert | Counter::Overwrite) => {
            crate::raw::usdt::insert(hash, shard, op as u8)
        }
        Some(Counter::RemoveHit) => crate::raw::usdt::remove(hash, shard, op as u8),
        _ => crate::raw::usdt::write(hash, shard, op as u8),
    }
}
