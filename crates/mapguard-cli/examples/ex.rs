//! scratch: one workload, one map, one thread, the bench's own plan; ns/op per pass.
use mapguard_cli::bench::adapter::{
    BenchMap, Dashmap, MapHandle, ReadMostly, Scc, Sharded, bench_hasher,
};
use mapguard_cli::bench::plan::{Op, key_of, thread_plan};
use mapguard_cli::bench::workload::Workload;
use std::time::Instant;
#[inline(never)]
fn pass<H: MapHandle>(h: &mut H, plan: &[Op]) -> usize {
    let mut n = 0;
    for op in plan {
        match *op {
            Op::Get(k) => n += usize::from(h.get(&k)),
            Op::Insert(k) => h.insert(k, k),
            Op::Remove(k) => n += usize::from(h.remove(&k)),
            Op::Update(k) => h.update(k, 1),
        }
    }
    n
}
fn run<M: BenchMap>(w: &Workload, ops: usize) {
    let plan = thread_plan(w, 1, 0, ops);
    let map = M::with_capacity(w.initial_capacity(), bench_hasher(0x5eed));
    let mut h = map.handle();
    for i in 0..w.prefill_len() {
        h.insert(key_of(i), i);
    }
    for _ in 0..4 {
        let t = Instant::now();
        let n = pass(&mut h, &plan);
        println!(
            "{:.2} ns/op ({n})",
            t.elapsed().as_nanos() as f64 / ops as f64
        );
    }
}
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let w = Workload::by_name(&a[2]).unwrap();
    let ops: usize = a[3].parse().unwrap();
    match a[1].as_str() {
        "rm" => run::<ReadMostly>(w, ops),
        "sh" => run::<Sharded>(w, ops),
        "scc" => run::<Scc>(w, ops),
        _ => run::<Dashmap>(w, ops),
    }
}
