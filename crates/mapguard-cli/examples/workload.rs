//! Single-thread probe of one `mapguard bench` workload on one map: the bench's own plan
//! (thread 0, seed 1) and prefill, replayed a few times in one non-inlined function, so that
//! `perf record` or `valgrind --tool=callgrind --toggle-collect='*workload::pass*'` sees only
//! the map's operations; prints ns/op per pass.
//!
//! ```text
//! cargo build --release -p mapguard-cli --example workload
//! target/release/examples/workload read-mostly exchange 2000000
//! ```
//! Maps: sharded, read-mostly, locked, dashmap, papaya, scc, rwlock-std. Workloads: those of
//! `mapguard bench --help` (a replay of `rapid-grow` overwrites what the first pass inserted).

use std::time::Instant;

use mapguard_cli::bench::adapter::{
    BenchMap, Dashmap, Locked, MapHandle, Papaya, ReadMostly, RwLockStd, Scc, Sharded, bench_hasher,
};
use mapguard_cli::bench::plan::{Op, key_of, thread_plan};
use mapguard_cli::bench::workload::Workload;

/// Passes over the plan; the first warms the caches and the allocator.
const PASSES: usize = 4;

#[inline(never)]
fn pass<H: MapHandle>(h: &mut H, plan: &[Op]) -> usize {
    let mut found = 0;
    for op in plan {
        match *op {
            Op::Get(k) => found += usize::from(h.get(&k)),
            Op::Insert(k) => h.insert(k, k),
            Op::Remove(k) => found += usize::from(h.remove(&k)),
            Op::Update(k) => h.update(k, 1),
        }
    }
    found
}

fn run<M: BenchMap>(workload: &Workload, ops: usize) {
    let plan = thread_plan(workload, 1, 0, ops);
    let map = M::with_capacity(workload.initial_capacity(), bench_hasher(0x5eed));
    let mut h = map.handle();
    for i in 0..workload.prefill_len() {
        h.insert(key_of(i), i);
    }
    for _ in 0..PASSES {
        let start = Instant::now();
        let found = pass(&mut h, &plan);
        let ns = start.elapsed().as_nanos() as f64 / ops as f64;
        println!("{workload} {ns:7.2} ns/op  ({found} found)");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: workload MAP WORKLOAD [OPS]";
    let (Some(map), Some(name)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let Some(workload) = Workload::by_name(name) else {
        eprintln!(
            "unknown workload {name}; valid: {}",
            Workload::valid_names()
        );
        std::process::exit(2);
    };
    let ops = match args.get(2).map(|n| n.parse::<usize>()) {
        None => 2_000_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("OPS must be a positive whole number; {usage}");
            std::process::exit(2);
        }
    };
    match map.as_str() {
        "sharded" => run::<Sharded>(workload, ops),
        "read-mostly" => run::<ReadMostly>(workload, ops),
        "locked" => run::<Locked>(workload, ops),
        "dashmap" => run::<Dashmap>(workload, ops),
        "papaya" => run::<Papaya>(workload, ops),
        "scc" => run::<Scc>(workload, ops),
        "rwlock-std" => run::<RwLockStd>(workload, ops),
        other => {
            eprintln!(
                "unknown map {other}; valid: sharded, read-mostly, locked, dashmap, papaya, \
                 scc, rwlock-std"
            );
            std::process::exit(2);
        }
    }
}
