//! What lockdep costs: ns per uncontended lock+unlock, per nested pair (A then B), and per
//! nested pair with 8 threads each locking their own pair, for parking_lot, std, lockdep
//! without checking (`lockdep::plain`, which is what `lockdep::Mutex` is with the feature
//! off), lockdep with checking on, and lockdep with the run-time switch off.
//!
//! Everything is measured in one run, interleaved round by round (each figure is the best
//! of its rounds), so background load hits all variants alike and the ratios compare.
//!
//! `cargo run --release -p lockdep --features check --example lockdep_bench`

use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

const SINGLE_ITERS: u64 = 10_000_000;
const PAIR_ITERS: u64 = 6_000_000;
const THREADS: usize = 8;
const THREAD_ITERS: u64 = 1_000_000;
const ROUNDS: usize = 5;

/// CPU time this thread has run, in ns (Linux `schedstat`, updated at scheduler ticks, so
/// runs are long); wall time where unavailable.
/// CPU time keeps the figures honest on a loaded machine: time spent preempted by other
/// processes is not counted against any variant.
fn thread_cpu_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| START.get_or_init(Instant::now).elapsed().as_nanos() as u64)
}

/// CPU ns per call of `op`, after a short warm-up.
fn per_op(iters: u64, op: impl Fn()) -> f64 {
    for _ in 0..iters / 20 {
        op();
    }
    let start = thread_cpu_ns();
    for _ in 0..iters {
        op();
    }
    (thread_cpu_ns() - start) as f64 / iters as f64
}

/// CPU ns per iteration, summed over `THREADS` threads that each run `iters` iterations of
/// their own `work` (made on the thread by `make`) at the same time.
fn per_op_threads<W: Fn()>(iters: u64, make: impl Fn() -> W + Sync) -> f64 {
    let barrier = Barrier::new(THREADS);
    let cpu_ns: u64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let work = make();
                    for _ in 0..iters / 20 {
                        work();
                    }
                    barrier.wait();
                    let start = thread_cpu_ns();
                    for _ in 0..iters {
                        work();
                    }
                    thread_cpu_ns() - start
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    cpu_ns as f64 / (iters * THREADS as u64) as f64
}

/// One measurement: variant row, scenario column, and the function that measures it once.
type Case = (usize, usize, Box<dyn Fn() -> f64>);

/// The three cases of a variant: `$single`, `$a`/`$b` make locks; `$lock` is the method.
macro_rules! cases {
    ($row:expr, $single:expr, $a:expr, $b:expr, $lock:ident) => {{
        let single = $single;
        let (a, b) = ($a, $b);
        let cases: Vec<Case> = vec![
            (
                $row,
                0,
                Box::new(move || per_op(SINGLE_ITERS, || drop(black_box(&single).$lock()))),
            ),
            (
                $row,
                1,
                Box::new(move || {
                    per_op(PAIR_ITERS, || {
                        let ga = black_box(&a).$lock();
                        let gb = black_box(&b).$lock();
                        drop(gb);
                        drop(ga);
                    })
                }),
            ),
            (
                $row,
                2,
                Box::new(|| {
                    // Each thread makes its own pair; for lockdep all threads' pairs share
                    // two classes (one creation site each): one order, learned per thread.
                    per_op_threads(THREAD_ITERS, || {
                        let (a, b) = ($a, $b);
                        move || {
                            let ga = black_box(&a).$lock();
                            let gb = black_box(&b).$lock();
                            drop(gb);
                            drop(ga);
                        }
                    })
                }),
            ),
        ];
        cases
    }};
}

/// `std::sync::Mutex::lock` with the poison check, as callers write it.
trait LockUnwrap<T> {
    fn lock_unwrap(&self) -> std::sync::MutexGuard<'_, T>;
}

impl<T> LockUnwrap<T> for std::sync::Mutex<T> {
    #[inline]
    fn lock_unwrap(&self) -> std::sync::MutexGuard<'_, T> {
        self.lock().unwrap()
    }
}

/// Wraps a case so it runs with the run-time switch off.
fn switched_off(cases: Vec<Case>) -> Vec<Case> {
    cases
        .into_iter()
        .map(|(row, col, f)| -> Case {
            (
                row,
                col,
                Box::new(move || {
                    lockdep::set_enabled(false);
                    let ns = f();
                    lockdep::set_enabled(true);
                    ns
                }),
            )
        })
        .collect()
}

const ROWS: [&str; 7] = [
    "parking_lot::Mutex",
    "std::sync::Mutex",
    "lockdep, feature off (plain)",
    "lockdep, checking on",
    "lockdep, run-time switch off",
    "parking_lot::RwLock read",
    "lockdep::RwLock read, checking on",
];

fn main() {
    use lockdep::plain;
    println!(
        "lockdep_bench: {} cores, {ROUNDS} interleaved rounds (best of each), checking compiled in: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        lockdep::CHECKING_COMPILED
    );
    println!(
        "sizes: parking_lot::Mutex<u64> {} B, lockdep::plain::Mutex<u64> {} B (feature off), \
         checked lockdep::Mutex<u64> {} B",
        size_of::<parking_lot::Mutex<u64>>(),
        size_of::<plain::Mutex<u64>>(),
        size_of::<lockdep::Mutex<u64>>()
    );

    let mut cases: Vec<Case> = Vec::new();
    cases.extend(cases!(
        0,
        parking_lot::Mutex::new(0u64),
        parking_lot::Mutex::new(0u64),
        parking_lot::Mutex::new(0u64),
        lock
    ));
    cases.extend(cases!(
        1,
        std::sync::Mutex::new(0u64),
        std::sync::Mutex::new(0u64),
        std::sync::Mutex::new(0u64),
        lock_unwrap
    ));
    cases.extend(cases!(
        2,
        plain::Mutex::new(0u64),
        plain::Mutex::new(0u64),
        plain::Mutex::new(0u64),
        lock
    ));
    cases.extend(cases!(
        3,
        lockdep::Mutex::with_class("bench.on.single", 0u64),
        lockdep::Mutex::with_class("bench.on.a", 0u64),
        lockdep::Mutex::with_class("bench.on.b", 0u64),
        lock
    ));
    cases.extend(switched_off(cases!(
        4,
        lockdep::Mutex::with_class("bench.off.single", 0u64),
        lockdep::Mutex::with_class("bench.off.a", 0u64),
        lockdep::Mutex::with_class("bench.off.b", 0u64),
        lock
    )));
    cases.extend(cases!(
        5,
        parking_lot::RwLock::new(0u64),
        parking_lot::RwLock::new(0u64),
        parking_lot::RwLock::new(0u64),
        read
    ));
    cases.extend(cases!(
        6,
        lockdep::RwLock::with_class("bench.rw.single", 0u64),
        lockdep::RwLock::with_class("bench.rw.a", 0u64),
        lockdep::RwLock::with_class("bench.rw.b", 0u64),
        read
    ));

    let mut best = [[f64::INFINITY; 3]; ROWS.len()];
    for _ in 0..ROUNDS {
        for (row, col, measure) in &cases {
            best[*row][*col] = best[*row][*col].min(measure());
        }
    }

    println!();
    println!(
        "{:<34} {:>12} {:>6} {:>12} {:>6} {:>15} {:>6}",
        "lock", "lock+unlock", "ratio", "nested pair", "ratio", "8 thr own pair", "ratio"
    );
    for (row, name) in ROWS.iter().enumerate() {
        let base = if row >= 5 { best[5] } else { best[0] };
        let [single, pair, threads] = best[row];
        println!(
            "{name:<34} {single:>9.2} ns {:>5.2}x {pair:>9.2} ns {:>5.2}x {threads:>12.2} ns {:>5.2}x",
            single / base[0],
            pair / base[1],
            threads / base[2]
        );
    }
    println!();
    println!("ns: CPU time per operation (Linux schedstat; wall time elsewhere), best round.");
    println!("ratio: against parking_lot::Mutex (RwLock rows: against parking_lot::RwLock read).");
    println!(
        "8 thr own pair: {THREADS} threads at once, each locking a private pair in one order; \
         CPU ns per pair summed over threads (equal to single-thread cost if it scales)."
    );
}
