//! What statistics and observers cost: each map with statistics off, statistics on, and a
//! no-op observer installed, on the `seed95`, `read-heavy` and `exchange` workloads at 1 and
//! 2 threads, measured in one process with the configurations interleaved in every repeat.
//!
//! ```text
//! cargo run --release -p mapguard --features stats --example stats_cost -- \
//!     [--repeat 5] [--ops 1000000] [--workload exchange] [--map locked]
//! cargo run --release -p mapguard --features stats --example stats_cost -- --ir sharded stats seed95
//! ```
//!
//! The table shows the median Mops/s of each configuration and its ratio to statistics off.
//! `--ir MAP CONFIG WORKLOAD` runs one thread's fixed operation sequence once through
//! `run_plan` (no timing), for `valgrind --tool=callgrind --toggle-collect=*run_plan*`:
//! instructions per operation are the collected Ir divided by the operation count it prints.

use std::hash::BuildHasher;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use mapguard::stats::{Observer, WriteEvent};
use mapguard::{LockedMap, ReadMostlyMap, ShardedMap};

type Hasher = foldhash::fast::FixedState;

#[derive(Clone, Copy)]
enum Op {
    Get(u64),
    Insert(u64),
    Remove(u64),
}

struct Workload {
    name: &'static str,
    /// Percent get, insert (any key), remove (any key), update (insert over a hot key).
    mix: [u64; 4],
    key_space: u64,
    prefill_percent: u64,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "seed95",
        mix: [95, 0, 0, 5],
        key_space: 10_000,
        prefill_percent: 100,
    },
    Workload {
        name: "read-heavy",
        mix: [98, 1, 1, 0],
        key_space: 1 << 20,
        prefill_percent: 75,
    },
    Workload {
        name: "exchange",
        mix: [10, 40, 40, 10],
        key_space: 1 << 20,
        prefill_percent: 75,
    },
];

fn key_of(index: u64) -> u64 {
    let mut z = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn plan(w: &Workload, thread: u64, len: usize) -> Vec<Op> {
    let mut state = 0x5EED ^ (thread << 32);
    let mut below = |bound: u64| {
        state = key_of(state);
        ((u128::from(state) * u128::from(bound)) >> 64) as u64
    };
    (0..len)
        .map(|_| {
            let roll = below(100);
            let key = key_of(below(w.key_space));
            if roll < w.mix[0] {
                Op::Get(key)
            } else if roll < w.mix[0] + w.mix[1] {
                Op::Insert(key)
            } else if roll < w.mix[0] + w.mix[1] + w.mix[2] {
                Op::Remove(key)
            } else {
                Op::Insert(key)
            }
        })
        .collect()
}

trait CostMap: Send + Sync + 'static {
    fn get(&self, key: u64) -> bool;
    fn insert(&self, key: u64);
    fn remove(&self, key: u64);
}

impl<S: BuildHasher + Send + Sync + 'static> CostMap for ShardedMap<u64, u64, S> {
    fn get(&self, key: u64) -> bool {
        ShardedMap::get(self, &key).is_some()
    }
    fn insert(&self, key: u64) {
        ShardedMap::insert(self, key, key);
    }
    fn remove(&self, key: u64) {
        ShardedMap::remove(self, &key);
    }
}

impl<S: BuildHasher + Send + Sync + 'static> CostMap for ReadMostlyMap<u64, u64, S> {
    fn get(&self, key: u64) -> bool {
        ReadMostlyMap::get(self, &key).is_some()
    }
    fn insert(&self, key: u64) {
        ReadMostlyMap::insert(self, key, key);
    }
    fn remove(&self, key: u64) {
        ReadMostlyMap::remove(self, &key);
    }
}

impl<S: BuildHasher + Send + Sync + 'static> CostMap for LockedMap<u64, u64, S> {
    fn get(&self, key: u64) -> bool {
        LockedMap::get(self, &key).is_some()
    }
    fn insert(&self, key: u64) {
        LockedMap::insert(self, key, key);
    }
    fn remove(&self, key: u64) {
        LockedMap::remove(self, &key);
    }
}

/// An observer that does nothing: what remains is the cost of having one.
struct Nothing;

impl Observer for Nothing {
    fn on_write(&self, _: &WriteEvent<'_>) {}
}

#[derive(Clone, Copy, PartialEq)]
enum Config {
    Off,
    Stats,
    Observer,
}

const CONFIGS: [Config; 3] = [Config::Off, Config::Stats, Config::Observer];

impl Config {
    fn name(self) -> &'static str {
        match self {
            Config::Off => "off",
            Config::Stats => "stats",
            Config::Observer => "observer",
        }
    }
}

const MAPS: [&str; 3] = ["sharded", "read-mostly", "locked"];

fn build(map: &str, config: Config, capacity: usize) -> Arc<dyn CostMap> {
    let hasher = Hasher::with_seed(1);
    macro_rules! configure {
        ($builder:expr) => {{
            let builder = $builder.capacity(capacity).hasher(hasher);
            let builder = match config {
                Config::Off => builder,
                Config::Stats => builder.stats(true),
                Config::Observer => builder.observer(Arc::new(Nothing)),
            };
            Arc::new(builder.build().expect("valid settings")) as Arc<dyn CostMap>
        }};
    }
    match map {
        "sharded" => configure!(ShardedMap::<u64, u64>::builder()),
        "read-mostly" => configure!(ReadMostlyMap::<u64, u64>::builder()),
        "locked" => configure!(LockedMap::<u64, u64>::builder()),
        other => panic!("unknown map {other:?}; maps are {MAPS:?}"),
    }
}

fn prefill(map: &dyn CostMap, w: &Workload) {
    for index in 0..w.key_space * w.prefill_percent / 100 {
        map.insert(key_of(index));
    }
}

#[inline(never)]
fn run_plan(map: &dyn CostMap, plan: &[Op]) -> u64 {
    let mut found = 0;
    for op in plan {
        match *op {
            Op::Get(key) => found += u64::from(map.get(key)),
            Op::Insert(key) => map.insert(key),
            Op::Remove(key) => map.remove(key),
        }
    }
    found
}

/// Mops/s of `threads` threads each running its plan once.
fn measure(map: &Arc<dyn CostMap>, plans: &[Arc<Vec<Op>>]) -> f64 {
    let start = Arc::new(Barrier::new(plans.len() + 1));
    let handles: Vec<_> = plans
        .iter()
        .map(|plan| {
            let (map, plan, start) = (map.clone(), plan.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let t = Instant::now();
                std::hint::black_box(run_plan(&*map, &plan));
                t.elapsed()
            })
        })
        .collect();
    start.wait();
    let ops: usize = plans.iter().map(|p| p.len()).sum();
    let slowest = handles
        .into_iter()
        .map(|h| h.join().expect("no panic"))
        .max()
        .expect("one thread at least");
    ops as f64 / slowest.as_secs_f64() / 1e6
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 5;
    let mut ops = 1_000_000;
    let mut only_workload: Option<String> = None;
    let mut only_map: Option<String> = None;
    let mut at = 0;
    while at < args.len() {
        match args[at].as_str() {
            "--repeat" => repeat = args[at + 1].parse().expect("--repeat takes a number"),
            "--ops" => ops = args[at + 1].parse().expect("--ops takes a number"),
            "--workload" => only_workload = Some(args[at + 1].clone()),
            "--map" => only_map = Some(args[at + 1].clone()),
            "--ir" => {
                let (map, config, workload) = (&args[at + 1], &args[at + 2], &args[at + 3]);
                let config = *CONFIGS
                    .iter()
                    .find(|c| c.name() == config)
                    .expect("configs are off, stats, observer");
                let w = WORKLOADS
                    .iter()
                    .find(|w| w.name == workload)
                    .expect("workloads are seed95, read-heavy, exchange");
                let m = build(map, config, w.key_space as usize);
                prefill(&*m, w);
                let plan = plan(w, 0, ops);
                std::hint::black_box(run_plan(&*m, &plan));
                println!(
                    "{map} {} {}: {ops} operations in run_plan",
                    config.name(),
                    w.name
                );
                return;
            }
            other => panic!("unknown argument {other:?}; see the example's docs"),
        }
        at += 2;
    }
    println!("stats_cost: {ops} ops per thread, {repeat} interleaved repeats, median Mops/s");
    println!(
        "{:<12} {:<11} {:>3} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "workload", "map", "thr", "off", "stats", "observer", "stats/off", "obs/off"
    );
    for w in &WORKLOADS {
        if only_workload.as_ref().is_some_and(|only| only != w.name) {
            continue;
        }
        let plans: Vec<Arc<Vec<Op>>> = (0..2).map(|t| Arc::new(plan(w, t, ops))).collect();
        for map in MAPS {
            if only_map.as_ref().is_some_and(|only| only != map) {
                continue;
            }
            let maps: Vec<Arc<dyn CostMap>> = CONFIGS
                .iter()
                .map(|&config| {
                    let m = build(map, config, w.key_space as usize);
                    prefill(&*m, w);
                    m
                })
                .collect();
            for threads in [1, 2] {
                let mut results = vec![Vec::new(); CONFIGS.len()];
                for round in 0..repeat {
                    // Rotate the order so that no configuration always runs first.
                    for i in 0..CONFIGS.len() {
                        let c = (i + round) % CONFIGS.len();
                        results[c].push(measure(&maps[c], &plans[..threads]));
                    }
                }
                let [off, stats, observer] = [0, 1, 2].map(|c| median(results[c].clone()));
                println!(
                    "{:<12} {:<11} {:>3} {:>9.2} {:>9.2} {:>9.2} {:>8.3} {:>8.3}",
                    w.name,
                    map,
                    threads,
                    off,
                    stats,
                    observer,
                    stats / off,
                    observer / off
                );
            }
        }
    }
}
