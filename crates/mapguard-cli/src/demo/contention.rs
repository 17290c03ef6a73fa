//! `contention`: the same write-including workload on one global lock and on ShardedMap, both
//! built with statistics, and the lock wait before and after as a share of thread time.
//!
//! The lock-wait figures come from the maps' own statistics: a `ShardedMap` counts and times
//! every contended acquisition of a shard lock. A `ShardedMap` with one shard is one global
//! lock with the same accounting, so it is the "before" of the comparison. `LockedMap` (one
//! parking_lot lock) runs too: with statistics it tries its lock first and counts and times
//! every acquisition whose try failed.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use mapguard::stats::StatsSnapshot;
use mapguard::{Action, LockedMap, ShardedMap};

use super::{Outcome, Scenario};
use crate::bench::plan::Rng;

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "contention",
    summary: "one global lock vs ShardedMap on the same writes: lock wait before and after",
    run,
};

/// Worker threads (at least two, so that they can wait for each other).
const THREADS: usize = 2;
/// Rounds per map, interleaved between the maps so that a busy moment of the machine hits
/// them alike; each figure is the median round's, so that a worker descheduled for a few
/// milliseconds in one round does not decide it.
const ROUNDS: usize = 11;
/// How long each round runs.
const ROUND: Duration = Duration::from_millis(25);
/// Distinct keys; half of them are present at the start.
const KEYS: u64 = 10_000;
/// Percentage of gets; the rest are read-modify-writes (`compute`) that do [`WORK`] rounds of
/// arithmetic under the lock, like a service that updates an order book entry in place.
const GETS: u64 = 10;
/// Rounds of arithmetic each write does under the lock (a few hundred nanoseconds).
const WORK: u32 = 256;

/// A map the phases run on.
trait DemoMap: Send + Sync {
    fn get(&self, key: u64) -> bool;
    fn insert(&self, key: u64);
    fn update(&self, key: u64);
    fn stats(&self) -> Option<StatsSnapshot>;
}

impl DemoMap for ShardedMap<u64, u64> {
    fn get(&self, key: u64) -> bool {
        ShardedMap::get(self, &key).is_some()
    }
    fn insert(&self, key: u64) {
        ShardedMap::insert(self, key, key);
    }
    fn update(&self, key: u64) {
        ShardedMap::compute(self, key, |_, v| Action::Set(work(v.copied())));
    }
    fn stats(&self) -> Option<StatsSnapshot> {
        ShardedMap::stats(self)
    }
}

impl DemoMap for LockedMap<u64, u64> {
    fn get(&self, key: u64) -> bool {
        LockedMap::get(self, &key).is_some()
    }
    fn insert(&self, key: u64) {
        LockedMap::insert(self, key, key);
    }
    fn update(&self, key: u64) {
        LockedMap::compute(self, key, |_, v| Action::Set(work(v.copied())));
    }
    fn stats(&self) -> Option<StatsSnapshot> {
        LockedMap::stats(self)
    }
}

/// What one round on one map measured.
struct Round {
    /// Operations counted by the map's statistics.
    ops: u64,
    /// Sum of the workers' running times.
    thread_ns: u64,
    /// Contended acquisitions and their wait, from statistics (`None`: not reported).
    contended: Option<u64>,
    wait_ns: Option<u64>,
}

/// All rounds of one map.
struct Phase {
    label: String,
    map: Arc<dyn DemoMap>,
    rounds: Vec<Round>,
}

impl Phase {
    fn new(label: &str, map: Arc<dyn DemoMap>) -> Self {
        for k in (0..KEYS).step_by(2) {
            map.insert(k);
        }
        Phase {
            label: label.to_owned(),
            map,
            rounds: Vec::new(),
        }
    }

    /// The median over the rounds of `figure` (`None` if a round has none).
    fn median(&self, figure: impl Fn(&Round) -> Option<f64>) -> Option<f64> {
        let mut values: Vec<f64> = self.rounds.iter().map(figure).collect::<Option<_>>()?;
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    }

    /// Median lock wait over thread time, in percent, from statistics.
    fn wait_percent(&self) -> Option<f64> {
        self.median(|r| {
            r.wait_ns
                .map(|w| 100.0 * w as f64 / r.thread_ns.max(1) as f64)
        })
    }

    /// Median share of operations that waited for a lock, in percent, from statistics.
    fn contended_percent(&self) -> Option<f64> {
        self.median(|r| r.contended.map(|c| 100.0 * c as f64 / r.ops.max(1) as f64))
    }

    /// Contended acquisitions over all rounds, from statistics.
    fn contended(&self) -> Option<u64> {
        self.rounds.iter().map(|r| r.contended).sum()
    }

    /// Median throughput in Mops/s (statistics' operation count over the workers' time).
    fn mops(&self) -> f64 {
        self.median(|r| Some(r.ops as f64 / (r.thread_ns as f64 / THREADS as f64) * 1e3))
            .unwrap_or(0.0)
    }

    /// Runs one round of the workload for [`ROUND`] with [`THREADS`] threads.
    fn round(&mut self, round: usize) {
        let map = &self.map;
        let before = map
            .stats()
            .expect("the demo's maps are built with statistics");
        let barrier = Barrier::new(THREADS);
        let reports: Vec<u64> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let barrier = &barrier;
                    s.spawn(move || worker(map.as_ref(), barrier, (round * THREADS + t) as u64))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a demo worker does not panic"))
                .collect()
        });
        let after = map
            .stats()
            .expect("the demo's maps are built with statistics");
        let reports_locks = !after.shards.is_empty();
        self.rounds.push(Round {
            ops: after.operations() - before.operations(),
            thread_ns: reports.iter().sum(),
            contended: reports_locks.then(|| after.contended() - before.contended()),
            wait_ns: reports_locks.then(|| after.wait_ns() - before.wait_ns()),
        });
    }
}

/// The new value of an entry: [`WORK`] dependent multiply-rotate steps over the old one.
fn work(old: Option<u64>) -> u64 {
    let mut x = std::hint::black_box(old.unwrap_or(1));
    for _ in 0..WORK {
        x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    }
    x
}

/// One worker of one round: returns its running time.
fn worker(map: &dyn DemoMap, barrier: &Barrier, seed: u64) -> u64 {
    let mut rng = Rng::new(0x5eed_0000 + seed);
    barrier.wait();
    let start = Instant::now();
    let mut n = 0u64;
    // The clock is read every 256 operations only.
    while !n.is_multiple_of(256) || start.elapsed() < ROUND {
        n += 1;
        let key = rng.below(KEYS);
        let roll = rng.below(100);
        if roll < GETS {
            std::hint::black_box(map.get(key));
            continue;
        }
        map.update(key);
    }
    start.elapsed().as_nanos() as u64
}

fn run() -> Outcome {
    println!(
        "{THREADS} threads, {ROUNDS} rounds of {} ms per map (interleaved), {KEYS} keys, half",
        ROUND.as_millis()
    );
    println!(
        "present, uniform keys: {GETS} % gets, {} % `compute` calls that do ~{WORK} steps of",
        100 - GETS
    );
    println!("arithmetic under the lock (an order book updated in place).");
    println!("Every map is built with `.stats(true)`; each figure is the median round's.\n");
    let build_sharded = |shards: Option<usize>| -> Arc<ShardedMap<u64, u64>> {
        let builder = ShardedMap::builder().stats(true);
        let builder = match shards {
            Some(n) => builder.shards(n),
            None => builder,
        };
        Arc::new(builder.build().expect("valid demo settings"))
    };
    let locked: Arc<LockedMap<u64, u64>> = Arc::new(
        LockedMap::builder()
            .stats(true)
            .build()
            .expect("valid demo settings"),
    );
    let sharded = build_sharded(None);
    let shards = sharded.stats().map_or(0, |s| s.shards.len());
    let mut phases = [
        Phase::new("LockedMap (one RwLock)", locked),
        Phase::new("ShardedMap, 1 shard (one lock)", build_sharded(Some(1))),
        Phase::new(&format!("ShardedMap, {shards} shards"), sharded),
    ];
    for round in 0..ROUNDS {
        for phase in &mut phases {
            phase.round(round);
        }
    }

    println!(
        "  {:<32} {:>7} {:>11} {:>11} {:>11}",
        "map", "Mops/s", "contended", "contended", "lock wait"
    );
    println!(
        "  {:<32} {:>7} {:>11} {:>11} {:>11}",
        "", "", "(stats)", "% of ops", "% of time"
    );
    let or_na = |v: Option<String>| v.unwrap_or_else(|| "n/a".to_owned());
    for p in &phases {
        println!(
            "  {:<32} {:>7.2} {:>11} {:>11} {:>11}",
            p.label,
            p.mops(),
            or_na(p.contended().map(|c| c.to_string())),
            or_na(p.contended_percent().map(|c| format!("{c:.3} %"))),
            or_na(p.wait_percent().map(|w| format!("{w:.1} %"))),
        );
    }
    println!();
    println!("  contended, lock wait: from the maps' statistics (every contended acquisition of a");
    println!("  shard lock is counted and timed; lock wait is over the workers' running time).");
    println!("  LockedMap tries its lock first and times each acquisition whose try failed.\n");

    let [_, global, sharded] = &phases;
    let (Some(before), Some(after)) = (global.wait_percent(), sharded.wait_percent()) else {
        println!("the statistics reported no lock-wait figures; no diagnosis");
        return Outcome::NotDiagnosed;
    };
    println!("Diagnosis (from statistics, one lock -> {shards} shards):\n");
    println!("  lock wait: {before:.1} % of thread time -> {after:.2} %");
    if before > 0.0 {
        let fell = 100.0 * (before - after) / before;
        println!("  contention fell {fell:.0} %");
    } else {
        println!("  no contended wait on the single lock in this run: the threads did not overlap");
    }
    println!(
        "  contended acquisitions: {} -> {} ({:.3} % -> {:.3} % of operations)",
        global.contended().unwrap_or(0),
        sharded.contended().unwrap_or(0),
        global.contended_percent().unwrap_or(0.0),
        sharded.contended_percent().unwrap_or(0.0),
    );
    println!();
    let speedup = sharded.mops() / global.mops().max(f64::MIN_POSITIVE);
    if speedup < 1.3 {
        println!(
            "  caution: {shards} shards ran only {speedup:.2}x as fast as one lock, so the workers"
        );
        println!(
            "  seldom ran at the same time: other processes kept the cores busy, and the waits"
        );
        println!(
            "  above are mostly for a lock holder the scheduler had paused. Run it on an idle"
        );
        println!("  machine for the figures of the maps themselves.\n");
    }
    println!("What it means: with one lock every write excludes every other operation, so threads");
    println!(
        "queue for it; spread over shards, two writes collide only when they hit the same shard.\n\
         More acquisitions may wait on many shards (a write waits a moment for a reader of its\n\
         shard to leave), but each such wait is short: the time lost to waiting is what falls.\n"
    );
    println!(
        "Fix: use ShardedMap (or more shards, `builder().shards(n)`) for write-heavy maps, and"
    );
    println!("watch `stats().contended()` and `wait_ns()` per shard in production.");
    Outcome::Diagnosed
}
