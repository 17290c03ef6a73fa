//! Running cells: one workload × map × thread count, measured `repeat` times.
//!
//! Order of work, chosen so that noise hits every map alike: for each workload, plans are
//! generated once (before any timing) and shared by all maps; then for each thread count and
//! each repetition, every map runs once, in a rotating order. Each sample builds and prefills a
//! fresh map (measuring its memory), starts all workers at a barrier, and times them until the
//! last one finishes. This module measures; it prints nothing (see `report.rs`).

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::adapter::{
    BenchHasher, BenchMap, Contention, Dashmap, Hashbrown, Locked, MapHandle, MapKind, MapRole,
    MutexStd, Papaya, ReadMostly, RwLockStd, Scc, Sharded, bench_hasher,
};
use super::alloc;
use super::calibration::Calibration;
use super::noise::TransferLog;
use super::plan::{self, Op};
use super::workload::Workload;

/// One operation in every `SAMPLE_EVERY` is timed on its own, so that the cost of reading
/// the clock stays off most operations.
pub const SAMPLE_EVERY: usize = 128;

/// Samples a cell the verdict reads (mapguard's fastest map or the fastest peer of a workload
/// and thread count) takes beyond `--repeat`, at most, while its samples spread more than
/// [`NOISY_SPREAD_PERCENT`]: one round over those cells at a time, so that the extra samples
/// interleave too.
pub const EXTRA_SAMPLES: usize = 2;

/// Spread (`(max - min) / median` of a cell's samples, percent) above which a cell is noisy:
/// it takes extra samples, and if it stays noisy every output flags it, since its ratios may
/// not hold in the next run.
pub const NOISY_SPREAD_PERCENT: f64 = 15.0;

/// `(max - min) / median` of `values`, in percent, the highest and the lowest left out from 5
/// values on; 0 for fewer than 2.
fn spread_percent(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n < 2 {
        return 0.0;
    }
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let kept = if n >= 5 {
        &sorted[1..n - 1]
    } else {
        &sorted[..]
    };
    match (kept.first(), kept.last()) {
        (Some(min), Some(max)) if median > 0.0 => 100.0 * (max - min) / median,
        _ => 0.0,
    }
}

/// Whether the verdict comparing `ours` with `peer` is noisy: either cell is
/// ([`BenchResult::is_noisy`]), or their ratio moved more than [`NOISY_SPREAD_PERCENT`] from
/// round to round ([`BenchResult::ratio_spread_percent`]).
pub fn pair_is_noisy(ours: &BenchResult, peer: &BenchResult) -> bool {
    ours.is_noisy() || peer.is_noisy() || ours.ratio_spread_percent(peer) > NOISY_SPREAD_PERCENT
}

/// Whether the round trips `transfers` measured span two machine states: the dearest at least
/// [`STATE_CHANGE_RATIO`](super::noise::STATE_CHANGE_RATIO) times the cheapest, each state
/// seen at least twice once there are four measurements or more, so that one stray figure
/// does not flag a whole group.
fn spans_states(transfers: &[f64]) -> bool {
    let mut sorted: Vec<f64> = transfers.iter().copied().filter(|ns| *ns > 0.0).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n < 2 {
        return false;
    }
    let (lo, hi) = if n >= 4 {
        (sorted[1], sorted[n - 2])
    } else {
        (sorted[0], sorted[n - 1])
    };
    hi / lo >= super::noise::STATE_CHANGE_RATIO
}

/// Largest latency the histograms hold (longer samples are clamped): 100 s.
const MAX_LATENCY_NS: u64 = 100_000_000_000;

/// How long each worker runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RunLength {
    /// Each worker runs its whole plan of `per_thread` operations. On workloads that a replay
    /// leaves as they are ([`Workload::is_replayable`]: all but `rapid-grow`) it replays the
    /// whole plan until at least `min_time` has passed, so that a sample is timed in the steady
    /// state and not over thread start and the first writes after prefill; replaying
    /// `rapid-grow` would change it (a second pass finds its keys already there).
    Ops {
        /// Operations in each worker's plan.
        per_thread: usize,
        /// Least time of a worker on a replayable workload (zero: one pass).
        min_time: Duration,
    },
    /// Each worker cycles through a plan of `plan_len` operations until `duration` has passed.
    Duration {
        /// Wall time per worker.
        duration: Duration,
        /// Length of each worker's plan, replayed from the start when exhausted.
        plan_len: usize,
    },
}

/// The longest plan a replayed workload gets so that its keys cover the key space.
pub const MAX_COVERING_PLAN: usize = 1 << 20;

impl RunLength {
    /// Length of each worker's generated plan.
    pub fn plan_len(self) -> usize {
        match self {
            RunLength::Ops { per_thread, .. } => per_thread,
            RunLength::Duration { plan_len, .. } => plan_len,
        }
    }

    /// Length of each of `threads` workers' plans on `workload`: [`plan_len`](Self::plan_len),
    /// and on a workload whose plan is replayed at least its key space (up to
    /// [`MAX_COVERING_PLAN`], and within the bound on all plans together), so that replaying a
    /// short plan does not shrink the keys touched to a set that fits in the caches (a
    /// 100,000-op plan over `exchange`'s million keys would touch a tenth of them, again and
    /// again).
    pub fn plan_len_for(self, workload: &Workload, threads: usize) -> usize {
        let replayed = match self {
            RunLength::Ops { min_time, .. } => workload.is_replayable() && !min_time.is_zero(),
            RunLength::Duration { .. } => true,
        };
        let cover = usize::try_from(workload.key_space)
            .unwrap_or(usize::MAX)
            .min(super::config::MAX_PLANNED_OPS / threads.max(1));
        if replayed {
            self.plan_len().max(cover.min(MAX_COVERING_PLAN))
        } else {
            self.plan_len()
        }
    }
}

/// A validated bench configuration.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Workloads to run, in order.
    pub workloads: Vec<&'static Workload>,
    /// Maps to compare. The `hashbrown` baseline runs at one thread whether listed or not,
    /// and on read-only mixes at every thread count, since the read limit is defined by it.
    pub maps: Vec<MapKind>,
    /// Thread counts, ascending, without duplicates.
    pub threads: Vec<usize>,
    /// How long each worker runs.
    pub length: RunLength,
    /// Seed of the plans and of the hasher.
    pub seed: u64,
    /// Repetitions of every cell, one sample each; the reported throughput is the median of
    /// the samples.
    pub repeat: usize,
    /// Build mapguard's maps with statistics on and fill the contention column from them
    /// (`--stats`): this measures instrumented maps, which are slower than the default.
    pub stats: bool,
    /// How long untimed samples of the run's first cell run before the first timed one
    /// (zero: none). The first samples of a process otherwise run on an idle-clocked core,
    /// with cold caches and with every page still to be faulted in, and come out slower
    /// than the rest however the maps are ordered.
    pub warm_up: Duration,
    /// A smoke run (`--quick`): every output says its figures are not for comparison.
    pub smoke: bool,
}

impl BenchConfig {
    /// The cells of `workload`, grouped by thread count, in run order: at each thread count
    /// the listed maps, with `hashbrown` at one thread and, on a read-only mix, at every
    /// thread count (added where not listed; on a mix with writes it runs nowhere else).
    pub fn cells(&self, workload: &Workload) -> Vec<(usize, Vec<MapKind>)> {
        let mut threads = self.threads.clone();
        if !threads.contains(&1) {
            threads.insert(0, 1);
        }
        threads
            .into_iter()
            .map(|t| {
                let mut maps: Vec<MapKind> = self
                    .maps
                    .iter()
                    .copied()
                    .filter(|m| *m != MapKind::Hashbrown && self.threads.contains(&t))
                    .collect();
                if t == 1 || workload.is_read_only() {
                    maps.push(MapKind::Hashbrown);
                }
                (t, maps)
            })
            .collect()
    }

    /// Number of samples the whole run takes, for progress reports.
    pub fn sample_count(&self) -> usize {
        let samples: usize = self
            .workloads
            .iter()
            .flat_map(|workload| self.cells(workload))
            .map(|(_, maps)| maps.len())
            .sum();
        samples * self.repeat
    }
}

/// One measurement of one cell.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Operations run by all workers together.
    pub ops: u64,
    /// From the first worker's start to the last worker's end.
    pub elapsed: Duration,
    /// Sampled per-operation latencies of all workers, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Entries after prefill.
    pub prefill_entries: usize,
    /// Net bytes allocated to build and prefill the map (`None` without the counting
    /// allocator).
    pub prefill_bytes: Option<isize>,
    /// Lock contention the map reported about this sample ([`BenchMap::lock_counts`]).
    pub contention: Option<Contention>,
}

impl Sample {
    /// Throughput in millions of operations per second.
    pub fn mops(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// The result of one cell: workload × map × thread count, over all repetitions.
#[derive(Clone, Debug)]
pub struct BenchResult {
    /// The workload.
    pub workload: &'static Workload,
    /// The map.
    pub map: MapKind,
    /// Worker threads.
    pub threads: usize,
    /// Every sample's throughput, in Mops/s, in run order.
    pub mops_samples: Vec<f64>,
    /// The round each sample of `mops_samples` was taken in (the repetition, then the extra
    /// rounds): the samples of two cells in one round ran next to each other.
    pub sample_rounds: Vec<usize>,
    /// Sampled latencies of all samples merged, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Entries after prefill.
    pub prefill_entries: usize,
    /// Bytes per entry after prefill (first sample), when measurable.
    pub bytes_per_entry: Option<f64>,
    /// Lock contention of each sample, for maps that report it ([`BenchMap::lock_counts`]).
    pub contention_samples: Vec<Contention>,
    /// Why the cell failed (a panic in the map or its adapter), if it did; the cell's other
    /// figures then cover only the samples before the failure.
    pub failure: Option<String>,
    /// The core-to-core round trip of the machine state the cell ran in
    /// ([`noise::transfer_ns`](super::noise::transfer_ns)), ns: the median of those measured
    /// just before its samples ([`sample_transfers`](Self::sample_transfers)), or the one
    /// measured before its workload and thread count where there are none.
    pub transfer_ns: Option<f64>,
    /// The round trips measured just before each of the cell's samples, ns (none when the run
    /// measures nothing, or where a measurement gave no figure).
    pub sample_transfers: Vec<f64>,
    /// Samples taken beyond `--repeat` because the first ones disagreed (see
    /// [`EXTRA_SAMPLES`]).
    pub extra_samples: usize,
    /// Whether the core-to-core round trips measured before, between and after the samples
    /// of the cell's workload and thread count spread by
    /// [`STATE_CHANGE_RATIO`](super::noise::STATE_CHANGE_RATIO) or more: the machine changed
    /// state while they ran.
    pub state_changed: bool,
}

impl BenchResult {
    fn record(&mut self, sample: &Sample, round: usize) {
        if self.mops_samples.is_empty() {
            self.prefill_entries = sample.prefill_entries;
            self.bytes_per_entry = match (sample.prefill_bytes, sample.prefill_entries) {
                (Some(bytes), entries) if entries > 0 => Some(bytes as f64 / entries as f64),
                _ => None,
            };
        }
        self.mops_samples.push(sample.mops());
        self.sample_rounds.push(round);
        self.latency
            .add(&sample.latency)
            .expect("histograms share their bounds");
        self.contention_samples.extend(sample.contention);
    }

    /// An empty result for a cell about to run.
    pub fn new(workload: &'static Workload, map: MapKind, threads: usize) -> Self {
        BenchResult {
            workload,
            map,
            threads,
            mops_samples: Vec::new(),
            sample_rounds: Vec::new(),
            latency: new_histogram(),
            prefill_entries: 0,
            bytes_per_entry: None,
            contention_samples: Vec::new(),
            failure: None,
            transfer_ns: None,
            sample_transfers: Vec::new(),
            extra_samples: 0,
            state_changed: false,
        }
    }

    /// Whether the cell failed.
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// The contention of the median sample (by wait time), for maps that report it.
    pub fn contention(&self) -> Option<Contention> {
        let mut sorted = self.contention_samples.clone();
        sorted.sort_by(|a, b| a.wait_percent.total_cmp(&b.wait_percent));
        sorted.get(sorted.len() / 2).copied()
    }

    /// Median throughput over the samples, in Mops/s.
    pub fn mops(&self) -> f64 {
        let mut sorted = self.mops_samples.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n == 0 {
            0.0
        } else if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        }
    }

    /// How far the samples disagree: `(max - min) / median`, in percent, leaving out the
    /// highest and the lowest sample when there are 5 or more (a cell that took extra
    /// samples), so that one sample taken while the machine switched state does not decide.
    pub fn spread_percent(&self) -> f64 {
        spread_percent(&self.mops_samples)
    }

    /// How far the ratio of this cell's throughput to `other`'s disagrees from round to round:
    /// the spread ([`spread_percent`](Self::spread_percent)) of `self / other` over the rounds
    /// in which both took a sample (their first sample of the round each). Two cells can each
    /// be steady while their ratio is not, when the machine's state moves one map more than
    /// the other.
    pub fn ratio_spread_percent(&self, other: &BenchResult) -> f64 {
        let first_of = |cell: &BenchResult, round: usize| {
            cell.sample_rounds
                .iter()
                .position(|r| *r == round)
                .map(|i| cell.mops_samples[i])
        };
        let mut rounds = self.sample_rounds.clone();
        rounds.dedup();
        let ratios: Vec<f64> = rounds
            .into_iter()
            .filter_map(|round| Some((first_of(self, round)?, first_of(other, round)?)))
            .filter(|(_, b)| *b > 0.0)
            .map(|(a, b)| a / b)
            .collect();
        spread_percent(&ratios)
    }

    /// Whether the cell's samples spread more than [`NOISY_SPREAD_PERCENT`].
    ///
    /// A cell whose workload and thread count ran while the machine changed state
    /// ([`state_changed`](Self::state_changed)) counts as noisy too.
    pub fn is_noisy(&self) -> bool {
        self.state_changed
            || (self.mops_samples.len() > 1 && self.spread_percent() > NOISY_SPREAD_PERCENT)
    }

    /// The latency at `quantile` (0.5 = p50), in nanoseconds.
    pub fn latency_ns(&self, quantile: f64) -> u64 {
        self.latency.value_at_quantile(quantile)
    }
}

/// What the engine reports after each sample, for progress output.
#[derive(Debug)]
pub struct Progress<'a> {
    /// Samples finished so far, this one included.
    pub done: usize,
    /// Samples in the whole run.
    pub total: usize,
    /// The workload.
    pub workload: &'static Workload,
    /// The map.
    pub map: MapKind,
    /// Worker threads.
    pub threads: usize,
    /// The repetition (0-based).
    pub repetition: usize,
    /// The sample just taken, or why it failed.
    pub sample: Result<&'a Sample, &'a str>,
}

/// Runs every cell of `config`, calling `progress` after each sample, and returns one result
/// per cell in run order, without measuring the machine's state (see [`run_logged`]).
///
/// Fixes the allocator's thresholds first (see [`alloc::steady_allocator`]), so that no sample's
/// allocations depend on what an earlier one freed.
pub fn run(config: &BenchConfig, progress: impl FnMut(&Progress<'_>)) -> Vec<BenchResult> {
    run_measured(config, progress, None)
}

/// [`run`], measuring the core-to-core transfer cost into `log` before each sample and after
/// each workload and thread count, and flagging the cells of a group that ran while it
/// changed ([`BenchResult::state_changed`]).
pub fn run_logged(
    config: &BenchConfig,
    progress: impl FnMut(&Progress<'_>),
    log: &mut TransferLog,
) -> Vec<BenchResult> {
    run_measured(config, progress, Some(log))
}

fn run_measured(
    config: &BenchConfig,
    mut progress: impl FnMut(&Progress<'_>),
    mut log: Option<&mut TransferLog>,
) -> Vec<BenchResult> {
    let mut measure = |label: String| log.as_deref_mut().and_then(|log| log.measure(label));
    alloc::steady_allocator();
    let hasher = bench_hasher(config.seed);
    let max_threads = config.threads.iter().copied().max().unwrap_or(1);
    let mut total = config.sample_count();
    let mut done = 0;
    let mut results = Vec::new();
    // Groups (a workload at a thread count) run so far: each starts its rounds one map further
    // on, so that no map is always measured first, even in a run of one repetition.
    let mut groups = 0;
    for (index, &workload) in config.workloads.iter().enumerate() {
        let plans = plan::plans(
            workload,
            config.seed,
            max_threads,
            config.length.plan_len_for(workload, max_threads),
        );
        if index == 0 {
            warm_up(config, workload, &plans, &hasher);
        }
        for (threads, maps) in config.cells(workload) {
            let transfer = measure(format!("before {} at {threads}t", workload.name));
            let mut cells: Vec<BenchResult> = maps
                .iter()
                .map(|&map| BenchResult {
                    transfer_ns: transfer,
                    ..BenchResult::new(workload, map, threads)
                })
                .collect();
            // Every round trip measured around and between this group's samples: a state
            // change between two samples, even of one round, shows in their spread.
            let group_transfers = RefCell::new(transfer.into_iter().collect::<Vec<f64>>());
            let during = format!("during {} at {threads}t", workload.name);
            let mut take = |cell: &mut BenchResult, repetition: usize, total: usize| {
                done += 1;
                // A failed cell is not run again; its samples still count as done.
                if cell.failed() {
                    return;
                }
                if let Some(ns) = measure(during.clone()) {
                    group_transfers.borrow_mut().push(ns);
                    cell.sample_transfers.push(ns);
                }
                let sample = try_sample(
                    cell.map,
                    workload,
                    &plans[..threads],
                    config.length,
                    &hasher,
                    config.stats,
                );
                progress(&Progress {
                    done,
                    total,
                    workload,
                    map: cell.map,
                    threads,
                    repetition,
                    sample: sample.as_ref().map_err(String::as_str),
                });
                match sample {
                    Ok(sample) => cell.record(&sample, repetition),
                    Err(why) => cell.failure = Some(why),
                }
            };
            for repetition in 0..config.repeat {
                for i in 0..cells.len() {
                    let cell = &mut cells[(i + repetition + groups) % maps.len()];
                    take(cell, repetition, total);
                }
            }
            // The cells the verdict reads (mapguard's fastest map, the fastest peer) get more
            // samples while theirs disagree, interleaved, up to a bound; a cell still noisy
            // after them is flagged in every output.
            for extra in 0..EXTRA_SAMPLES {
                // A group that already ran in two machine states is flagged whatever more
                // samples say: they would cost time and settle nothing.
                if spans_states(&group_transfers.borrow()) {
                    break;
                }
                let best: Vec<usize> = [MapRole::Ours, MapRole::Peer]
                    .into_iter()
                    .filter_map(|role| {
                        (0..cells.len())
                            .filter(|&i| cells[i].map.role() == role && !cells[i].failed())
                            .max_by(|&a, &b| cells[a].mops().total_cmp(&cells[b].mops()))
                    })
                    .collect();
                // Both cells of the verdict take the round when their ratio is what disagrees,
                // so that the new pair of samples ran side by side.
                let pair_noisy = match best[..] {
                    [ours, peer] => {
                        cells[ours].ratio_spread_percent(&cells[peer]) > NOISY_SPREAD_PERCENT
                    }
                    _ => false,
                };
                let noisy: Vec<usize> = best
                    .into_iter()
                    .filter(|&i| config.repeat > 1 && (pair_noisy || cells[i].is_noisy()))
                    .collect();
                total += noisy.len();
                for i in noisy {
                    cells[i].extra_samples += 1;
                    take(&mut cells[i], config.repeat + extra, total);
                }
            }
            // A group during which the machine changed state is not one measurement: its
            // ratios mix both states.
            let mut group_transfers = group_transfers.into_inner();
            group_transfers.extend(measure(format!("after {} at {threads}t", workload.name)));
            for cell in &mut cells {
                // The state each cell ran in, from the figures taken beside its own samples.
                let mut own = cell.sample_transfers.clone();
                own.sort_by(f64::total_cmp);
                if let Some(median) = own.get(own.len() / 2) {
                    cell.transfer_ns = Some(*median);
                }
            }
            if spans_states(&group_transfers) {
                for cell in &mut cells {
                    cell.state_changed = true;
                }
            }
            results.extend(cells);
            groups += 1;
        }
    }
    results
}

/// Runs untimed one-pass samples of the first cell of `workload` (the run's first) until
/// `config.warm_up` has passed; their results, failures included, are dropped (a failing
/// cell fails again when it is timed).
fn warm_up(config: &BenchConfig, workload: &Workload, plans: &[Vec<Op>], hasher: &BenchHasher) {
    let Some((threads, maps)) = config.cells(workload).into_iter().next() else {
        return;
    };
    let (Some(&map), Some(plans)) = (maps.first(), plans.get(..threads)) else {
        return;
    };
    let one_pass = RunLength::Ops {
        per_thread: config.length.plan_len(),
        min_time: Duration::ZERO,
    };
    let start = Instant::now();
    while start.elapsed() < config.warm_up {
        if try_sample(map, workload, plans, one_pass, hasher, config.stats).is_err() {
            return;
        }
    }
}

/// Takes one sample like [`sample`], but turns a panic of the map, its adapter or one of the
/// workers into `Err` with the panic's message: every worker has been joined by then, so the
/// run goes on with the next cell.
pub fn try_sample(
    map: MapKind,
    workload: &Workload,
    plans: &[Vec<Op>],
    length: RunLength,
    hasher: &BenchHasher,
    stats: bool,
) -> Result<Sample, String> {
    CELL_RUNNING.store(true, Ordering::SeqCst);
    let result = catch_panic(|| sample(map, workload, plans, length, hasher, stats));
    CELL_RUNNING.store(false, Ordering::SeqCst);
    result
}

/// Whether [`try_sample`] is running a cell: a panic hook can keep the panics it turns into
/// failed cells off the terminal, and still print any other.
pub static CELL_RUNNING: AtomicBool = AtomicBool::new(false);

/// Runs `f`, turning a panic into its message.
fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| panic_message(payload.as_ref()))
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

/// Takes one sample of `map` on `workload`, one worker per plan. A panic in the map or a
/// worker propagates after every worker has been joined ([`try_sample`] catches it). With
/// `stats`, maps that keep statistics are built with them on.
pub fn sample(
    map: MapKind,
    workload: &Workload,
    plans: &[Vec<Op>],
    length: RunLength,
    hasher: &BenchHasher,
    stats: bool,
) -> Sample {
    let s = stats;
    match map {
        MapKind::Sharded => sample_map::<Sharded>(workload, plans, length, hasher, s),
        MapKind::ReadMostly => sample_map::<ReadMostly>(workload, plans, length, hasher, s),
        MapKind::Locked => sample_map::<Locked>(workload, plans, length, hasher, s),
        MapKind::RwLockStd => sample_map::<RwLockStd>(workload, plans, length, hasher, s),
        MapKind::MutexStd => sample_map::<MutexStd>(workload, plans, length, hasher, s),
        MapKind::Dashmap => sample_map::<Dashmap>(workload, plans, length, hasher, s),
        MapKind::Papaya => sample_map::<Papaya>(workload, plans, length, hasher, s),
        MapKind::Scc => sample_map::<Scc>(workload, plans, length, hasher, s),
        MapKind::Hashbrown => {
            assert!(
                plans.len() == 1 || workload.is_read_only(),
                "the hashbrown baseline shares its table only on a read-only mix"
            );
            sample_map::<Hashbrown>(workload, plans, length, hasher, s)
        }
        MapKind::Calibration => sample_map::<Calibration>(workload, plans, length, hasher, s),
    }
}

/// The median cost of timing an empty region with `Instant` (ns): the part of every latency
/// sample that is the clock's, not the map's.
pub fn clock_overhead_ns() -> u64 {
    let mut h = new_histogram();
    for _ in 0..10_000 {
        let before = Instant::now();
        let after = std::hint::black_box(Instant::now());
        h.saturating_record((after - before).as_nanos() as u64);
    }
    h.value_at_quantile(0.5)
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}

fn prefill<M: BenchMap>(
    workload: &Workload,
    plans: &[Vec<Op>],
    hasher: &BenchHasher,
    stats: bool,
) -> M {
    let capacity = M::capacity_for(workload, plans);
    let map = if stats {
        M::with_stats(capacity, hasher.clone())
    } else {
        M::with_capacity(capacity, hasher.clone())
    };
    // Large prefills run on every CPU (each thread its own range of keys), which takes a
    // good part of a default run's time off; the keys and the map's final state are the same.
    let len = workload.prefill_len();
    let threads = if len < PARALLEL_PREFILL_FROM {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    } as u64;
    let fill = |range: std::ops::Range<u64>| {
        let mut handle = map.handle();
        for index in range {
            let key = plan::key_of(index);
            handle.insert(key, key);
        }
    };
    if threads == 1 {
        fill(0..len);
    } else {
        std::thread::scope(|s| {
            for t in 0..threads {
                let fill = &fill;
                s.spawn(move || fill(len * t / threads..len * (t + 1) / threads));
            }
        });
    }
    map
}

/// Prefills of at least this many keys are split over the CPUs.
const PARALLEL_PREFILL_FROM: u64 = 100_000;

struct WorkerReport {
    start: Instant,
    end: Instant,
    ops: u64,
    latency: Histogram<u64>,
}

fn sample_map<M: BenchMap>(
    workload: &Workload,
    plans: &[Vec<Op>],
    length: RunLength,
    hasher: &BenchHasher,
    stats: bool,
) -> Sample {
    let (map, prefill_bytes) = alloc::measure(|| prefill::<M>(workload, plans, hasher, stats));
    let prefill_entries = map.len();
    map.start(workload);
    let counts_before = map.lock_counts();
    let stop = match length {
        RunLength::Ops { min_time, .. } if workload.is_replayable() && !min_time.is_zero() => {
            Stop::PassesFor(min_time)
        }
        RunLength::Ops { .. } => Stop::OnePass,
        RunLength::Duration { duration, .. } => Stop::Deadline(duration),
    };
    let barrier = Barrier::new(plans.len());
    let joined: Vec<std::thread::Result<WorkerReport>> = std::thread::scope(|s| {
        let workers: Vec<_> = plans
            .iter()
            .map(|plan| {
                let (map, barrier) = (&map, &barrier);
                s.spawn(move || {
                    // A handle that panics must still reach the barrier, or the other
                    // workers would wait for it forever.
                    match panic::catch_unwind(AssertUnwindSafe(|| map.handle())) {
                        Ok(handle) => worker(handle, plan, stop, barrier),
                        Err(payload) => {
                            barrier.wait();
                            panic::resume_unwind(payload)
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join()).collect()
    });
    let mut reports = Vec::with_capacity(joined.len());
    for report in joined {
        match report {
            Ok(report) => reports.push(report),
            Err(payload) => panic::resume_unwind(payload),
        }
    }
    let worker_ns: u64 = reports
        .iter()
        .map(|r| (r.end - r.start).as_nanos() as u64)
        .sum();
    let contention = counts_before
        .zip(map.lock_counts())
        .map(|(before, after)| Contention::between(before, after, worker_ns));
    drop(map);
    let start = reports.iter().map(|r| r.start).min().expect("one worker");
    let end = reports.iter().map(|r| r.end).max().expect("one worker");
    let mut latency = new_histogram();
    for r in &reports {
        latency
            .add(&r.latency)
            .expect("histograms share their bounds");
    }
    Sample {
        ops: reports.iter().map(|r| r.ops).sum(),
        elapsed: end - start,
        latency,
        prefill_entries,
        prefill_bytes,
        contention,
    }
}

/// When a worker stops.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// After one pass over its plan.
    OnePass,
    /// After the first whole pass that ends at least this long after its start.
    PassesFor(Duration),
    /// At the first timed operation this long after its start, mid-pass if need be.
    Deadline(Duration),
}

fn worker<H: MapHandle>(mut handle: H, plan: &[Op], stop: Stop, barrier: &Barrier) -> WorkerReport {
    let mut latency = new_histogram();
    let mut ops = 0u64;
    barrier.wait();
    let start = Instant::now();
    let deadline = match stop {
        Stop::Deadline(duration) => Some(start + duration),
        Stop::OnePass | Stop::PassesFor(_) => None,
    };
    'run: loop {
        for chunk in plan.chunks(SAMPLE_EVERY) {
            let (first, rest) = chunk.split_first().expect("chunks are not empty");
            let before = Instant::now();
            apply(&mut handle, *first);
            let after = Instant::now();
            latency.saturating_record((after - before).as_nanos() as u64);
            for op in rest {
                apply(&mut handle, *op);
            }
            ops += chunk.len() as u64;
            // The timed operation's clock reading doubles as the deadline check.
            if deadline.is_some_and(|d| after >= d) {
                break 'run;
            }
        }
        let again = match stop {
            Stop::OnePass => false,
            Stop::PassesFor(min_time) => start.elapsed() < min_time,
            Stop::Deadline(_) => true,
        };
        if !again || plan.is_empty() {
            break;
        }
    }
    let end = Instant::now();
    drop(handle);
    WorkerReport {
        start,
        end,
        ops,
        latency,
    }
}

#[inline(always)]
fn apply<H: MapHandle>(handle: &mut H, op: Op) {
    match op {
        Op::Get(key) => {
            std::hint::black_box(handle.get(&key));
        }
        Op::Insert(key) => handle.insert(key, key),
        Op::Remove(key) => {
            std::hint::black_box(handle.remove(&key));
        }
        Op::Update(key) => handle.update(key, !key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::adapter::LockCounts;
    use crate::bench::workload::WORKLOADS;

    fn config(maps: Vec<MapKind>, threads: Vec<usize>) -> BenchConfig {
        BenchConfig {
            workloads: vec![&WORKLOADS[0]],
            maps,
            threads,
            length: RunLength::Ops {
                per_thread: 2_000,
                min_time: Duration::ZERO,
            },
            seed: 1,
            repeat: 2,
            stats: false,
            warm_up: Duration::ZERO,
            smoke: false,
        }
    }

    /// Samples the noisy cells of `results` took beyond `--repeat`.
    fn extra_samples(results: &[BenchResult]) -> usize {
        results.iter().map(|r| r.extra_samples).sum()
    }

    #[test]
    fn the_spread_leaves_out_the_extremes_of_five_samples_or_more() {
        let mut r = BenchResult::new(&WORKLOADS[0], MapKind::Dashmap, 1);
        r.mops_samples = vec![100.0, 100.0, 150.0];
        r.sample_rounds = vec![0, 1, 2];
        assert!(r.is_noisy());
        r.mops_samples.extend([101.0, 99.0]);
        // Five samples: the highest and the lowest are left out of the spread.
        assert!(
            (r.spread_percent() - 1.0).abs() < 1e-9,
            "{}",
            r.spread_percent()
        );
        assert!(!r.is_noisy());
    }

    #[test]
    fn a_ratio_that_moves_from_round_to_round_is_noisy_though_each_cell_is_steady() {
        let cell = |map: MapKind, samples: &[f64], rounds: &[usize]| {
            let mut r = BenchResult::new(&WORKLOADS[0], map, 2);
            r.mops_samples = samples.to_vec();
            r.sample_rounds = rounds.to_vec();
            r
        };
        // Each within 10 %, but one up when the other is down: the ratio spreads 20 %.
        let ours = cell(MapKind::Sharded, &[105.0, 95.0, 100.0], &[0, 1, 2]);
        let peer = cell(MapKind::Scc, &[95.0, 105.0, 100.0], &[0, 1, 2]);
        assert!(!ours.is_noisy() && !peer.is_noisy());
        assert!(ours.ratio_spread_percent(&peer) > NOISY_SPREAD_PERCENT);
        assert!(pair_is_noisy(&ours, &peer));
        // Moving together, the ratio holds.
        let peer = cell(MapKind::Scc, &[52.5, 47.5, 50.0], &[0, 1, 2]);
        assert!(ours.ratio_spread_percent(&peer) < 1e-9);
        assert!(!pair_is_noisy(&ours, &peer));
        // Rounds are paired by number: a round one cell missed is left out.
        let peer = cell(MapKind::Scc, &[50.0, 47.5, 50.0], &[0, 1, 3]);
        let ours = cell(MapKind::Sharded, &[100.0, 95.0, 200.0], &[0, 1, 2]);
        assert!(ours.ratio_spread_percent(&peer) < 1e-9);
    }

    #[test]
    fn warm_up_samples_are_neither_reported_nor_recorded() {
        let mut c = config(vec![MapKind::Sharded, MapKind::Dashmap], vec![1]);
        c.warm_up = Duration::from_millis(30);
        let mut reported = 0;
        let results = run(&c, |_| reported += 1);
        assert_eq!(reported, c.sample_count() + extra_samples(&results));
        let sharded = results.iter().find(|r| r.map == MapKind::Sharded).unwrap();
        assert_eq!(sharded.mops_samples.len(), c.repeat + sharded.extra_samples);
    }

    #[test]
    fn hashbrown_runs_once_at_one_thread() {
        let c = config(vec![MapKind::Dashmap, MapKind::Hashbrown], vec![2, 8]);
        let cells = c.cells(c.workloads[0]);
        assert_eq!(
            cells,
            vec![
                (1, vec![MapKind::Hashbrown]),
                (2, vec![MapKind::Dashmap]),
                (8, vec![MapKind::Dashmap]),
            ]
        );
        assert_eq!(c.sample_count(), 2 * 3);
    }

    #[test]
    fn the_references_run_every_workload_and_hashbrown_shares_its_table_only_on_reads() {
        let mut c = config(vec![MapKind::Calibration, MapKind::Dashmap], vec![1, 2]);
        c.workloads = ["read100", "exchange", "rapid-grow"]
            .map(|name| Workload::by_name(name).unwrap())
            .to_vec();
        use MapKind::{Calibration, Dashmap, Hashbrown};
        assert_eq!(
            c.cells(c.workloads[0]),
            vec![
                (1, vec![Calibration, Dashmap, Hashbrown]),
                (2, vec![Calibration, Dashmap, Hashbrown])
            ]
        );
        assert_eq!(
            c.cells(c.workloads[1]),
            vec![
                (1, vec![Calibration, Dashmap, Hashbrown]),
                (2, vec![Calibration, Dashmap])
            ]
        );
        let mut seen = 0;
        let results = run(&c, |p| {
            seen += 1;
            assert!(p.sample.is_ok(), "{:?}", p.sample.err());
        });
        assert_eq!(seen, c.sample_count() + extra_samples(&results));
        let cells = |map: MapKind| {
            results
                .iter()
                .filter(|r| r.map == map)
                .map(|r| (r.workload.name, r.threads))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            cells(Calibration),
            [
                ("read100", 1),
                ("read100", 2),
                ("exchange", 1),
                ("exchange", 2),
                ("rapid-grow", 1),
                ("rapid-grow", 2)
            ]
        );
        assert_eq!(
            cells(Hashbrown),
            [
                ("read100", 1),
                ("read100", 2),
                ("exchange", 1),
                ("rapid-grow", 1)
            ]
        );
    }

    #[test]
    fn a_group_spans_two_states_only_when_each_is_seen_twice() {
        assert!(!spans_states(&[]));
        assert!(!spans_states(&[100.0]));
        assert!(spans_states(&[100.0, 300.0]));
        assert!(!spans_states(&[100.0, 110.0, 105.0]));
        // One stray figure among many does not flag the group; two do.
        assert!(!spans_states(&[100.0, 110.0, 2_000_000.0, 105.0, 102.0]));
        assert!(spans_states(&[100.0, 110.0, 330.0, 105.0, 320.0]));
        assert!(spans_states(&[65.0, 66.0, 340.0, 330.0]));
    }

    #[test]
    fn each_group_starts_its_rounds_with_another_map() {
        let mut c = config(
            vec![MapKind::Dashmap, MapKind::Scc, MapKind::Sharded],
            vec![1, 2],
        );
        c.repeat = 1;
        let mut order = Vec::new();
        run(&c, |p| order.push((p.threads, p.map)));
        use MapKind::{Dashmap, Hashbrown, Scc, Sharded};
        assert_eq!(
            order,
            [
                (1, Dashmap),
                (1, Scc),
                (1, Sharded),
                (1, Hashbrown),
                (2, Scc),
                (2, Sharded),
                (2, Dashmap)
            ]
        );
    }

    #[test]
    fn each_cell_takes_the_state_measured_beside_its_own_samples() {
        let c = config(vec![MapKind::Dashmap, MapKind::Scc], vec![1]);
        let mut log = TransferLog::default();
        let results = run_logged(&c, |_| {}, &mut log);
        let during: Vec<f64> = log
            .points
            .iter()
            .filter(|(label, _)| label.starts_with("during"))
            .map(|(_, ns)| *ns)
            .collect();
        // Every figure taken before a sample went to that sample's cell, and to no other.
        let owned: usize = results.iter().map(|r| r.sample_transfers.len()).sum();
        assert_eq!(owned, during.len());
        for r in &results {
            assert!(r.sample_transfers.len() <= r.mops_samples.len());
            if r.sample_transfers.is_empty() {
                continue; // one CPU, or cores too busy for a figure
            }
            let mut own = r.sample_transfers.clone();
            own.sort_by(f64::total_cmp);
            assert_eq!(r.transfer_ns, Some(own[own.len() / 2]), "{:?}", r.map);
            assert!(own.iter().all(|ns| during.contains(ns)));
        }
    }

    #[test]
    fn a_small_run_counts_every_operation() {
        let c = config(vec![MapKind::Scc, MapKind::Sharded], vec![1, 2]);
        let mut seen = 0;
        let results = run(&c, |p| {
            seen += 1;
            let sample = p.sample.expect("no map fails");
            assert_eq!(sample.ops, 2_000 * p.threads as u64);
            assert_eq!(sample.prefill_entries, 10_000);
            // 2,000 ops per worker, one timed in every 128.
            assert_eq!(
                sample.latency.len(),
                2_000u64.div_ceil(SAMPLE_EVERY as u64) * p.threads as u64
            );
        });
        assert_eq!(seen, c.sample_count() + extra_samples(&results));
        assert_eq!(results.len(), 5);
        for r in &results {
            assert_eq!(r.mops_samples.len(), 2 + r.extra_samples);
            assert!(r.extra_samples <= EXTRA_SAMPLES);
            assert!(r.mops() > 0.0);
        }
    }

    /// A map whose 1,000th lookup panics: an adapter bug in the middle of a run.
    struct PanicsOnGet(
        super::super::adapter::MutexStd,
        std::sync::atomic::AtomicUsize,
    );

    impl BenchMap for PanicsOnGet {
        type Handle<'m> = &'m PanicsOnGet;
        fn with_capacity(capacity: usize, hasher: BenchHasher) -> Self {
            PanicsOnGet(
                BenchMap::with_capacity(capacity, hasher),
                Default::default(),
            )
        }
        fn handle(&self) -> &PanicsOnGet {
            self
        }
        fn len(&self) -> usize {
            self.0.len()
        }
    }

    impl MapHandle for &PanicsOnGet {
        fn get(&mut self, key: &u64) -> bool {
            let n = self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            assert!(n != 1_000, "adapter bug on lookup 1000");
            (&self.0).get(key)
        }
        fn insert(&mut self, key: u64, value: u64) {
            (&self.0).insert(key, value);
        }
        fn remove(&mut self, key: &u64) -> bool {
            (&self.0).remove(key)
        }
    }

    #[test]
    fn a_panicking_adapter_is_an_error_after_every_worker_is_joined() {
        let w = &WORKLOADS[2];
        let plans = plan::plans(w, 1, 2, 20_000);
        let length = RunLength::Ops {
            per_thread: 20_000,
            min_time: Duration::ZERO,
        };
        let hasher = bench_hasher(1);
        let err = catch_panic(|| sample_map::<PanicsOnGet>(w, &plans, length, &hasher, false))
            .map(|s| s.ops)
            .expect_err("the plans make 40,000 lookups");
        assert!(err.contains("adapter bug on lookup 1000"), "{err}");
        // The engine still works afterwards.
        assert!(try_sample(MapKind::Dashmap, w, &plans, length, &hasher, false).is_ok());
    }

    /// dashmap that reports lock figures as a map with statistics would: nothing at its first
    /// reading, then 1,000 operations of which 20 waited 1 ms in all.
    struct ReportsContention(super::super::adapter::Dashmap, AtomicBool);

    impl BenchMap for ReportsContention {
        type Handle<'m> = <super::super::adapter::Dashmap as BenchMap>::Handle<'m>;
        fn with_capacity(capacity: usize, hasher: BenchHasher) -> Self {
            ReportsContention(
                BenchMap::with_capacity(capacity, hasher),
                AtomicBool::new(false),
            )
        }
        fn handle(&self) -> Self::Handle<'_> {
            self.0.handle()
        }
        fn len(&self) -> usize {
            self.0.len()
        }
        fn lock_counts(&self) -> Option<LockCounts> {
            let later = self.1.swap(true, Ordering::Relaxed);
            Some(if later {
                LockCounts {
                    operations: 1_000,
                    contended: 20,
                    wait_ns: 1_000_000,
                }
            } else {
                LockCounts::default()
            })
        }
    }

    #[test]
    fn contention_reported_by_the_map_reaches_the_result() {
        let w = &WORKLOADS[2];
        let plans = plan::plans(w, 1, 1, 1_000);
        let length = RunLength::Ops {
            per_thread: 1_000,
            min_time: Duration::ZERO,
        };
        let hasher = bench_hasher(1);
        let s = sample_map::<ReportsContention>(w, &plans, length, &hasher, false);
        let c = s.contention.expect("the map reports lock figures");
        assert_eq!(c.contended_percent, 2.0);
        // 1 ms of waiting over the worker's running time.
        let expected = 100.0 * 1e6 / s.elapsed.as_nanos() as f64;
        assert!(
            (c.wait_percent - expected).abs() < 1e-9,
            "{c:?} vs {expected}"
        );
        let mut r = BenchResult::new(w, MapKind::Sharded, 1);
        r.record(&s, 0);
        assert_eq!(r.contention(), Some(c));
        // Peers report nothing.
        let peer = sample(MapKind::Dashmap, w, &plans, length, &hasher, true);
        assert_eq!(peer.contention, None);
    }

    #[test]
    fn mapguard_maps_report_contention_only_when_built_with_statistics() {
        let w = Workload::by_name("exchange").unwrap();
        let plans = plan::plans(w, 1, 2, 2_000);
        let length = RunLength::Ops {
            per_thread: 2_000,
            min_time: Duration::ZERO,
        };
        let hasher = bench_hasher(1);
        let plain = sample(MapKind::Sharded, w, &plans, length, &hasher, false);
        assert_eq!(plain.contention, None);
        let counted = sample(MapKind::Sharded, w, &plans, length, &hasher, true);
        let c = counted
            .contention
            .expect("ShardedMap with statistics reports");
        assert!((0.0..=100.0).contains(&c.contended_percent), "{c:?}");
        assert!(c.wait_percent >= 0.0, "{c:?}");
        // LockedMap and ReadMostlyMap report their locks too, with statistics only.
        for kind in [MapKind::Locked, MapKind::ReadMostly] {
            let plain = sample(kind, w, &plans, length, &hasher, false);
            assert_eq!(plain.contention, None);
            let counted = sample(kind, w, &plans, length, &hasher, true);
            let c = counted
                .contention
                .expect("a mapguard map with statistics reports");
            assert!((0.0..=100.0).contains(&c.contended_percent), "{c:?}");
            assert!(c.wait_percent >= 0.0, "{c:?}");
        }
        // Peers keep no statistics.
        let peer = sample(MapKind::Dashmap, w, &plans, length, &hasher, true);
        assert_eq!(peer.contention, None);
    }

    #[test]
    fn min_time_replays_whole_plans_only_where_keys_are_stable() {
        let length = RunLength::Ops {
            per_thread: 1_000,
            min_time: Duration::from_millis(20),
        };
        let read = &WORKLOADS[2];
        let plans = plan::plans(read, 1, 1, 1_000);
        let s = sample(
            MapKind::Dashmap,
            read,
            &plans,
            length,
            &bench_hasher(1),
            false,
        );
        assert!(
            s.ops > 1_000 && s.ops.is_multiple_of(1_000),
            "{} ops",
            s.ops
        );
        assert!(s.elapsed >= Duration::from_millis(20));
        let grow = Workload::by_name("rapid-grow").unwrap();
        let plans = plan::plans(grow, 1, 1, 1_000);
        let s = sample(
            MapKind::Dashmap,
            grow,
            &plans,
            length,
            &bench_hasher(1),
            false,
        );
        assert_eq!(s.ops, 1_000);
    }

    #[test]
    fn duration_mode_replays_the_plan() {
        let w = &WORKLOADS[2];
        let plans = plan::plans(w, 1, 1, 1_000);
        let length = RunLength::Duration {
            duration: Duration::from_millis(20),
            plan_len: 1_000,
        };
        let s = sample(MapKind::Dashmap, w, &plans, length, &bench_hasher(1), false);
        assert!(s.ops > 1_000, "only {} ops in 20 ms", s.ops);
        assert!(s.elapsed >= Duration::from_millis(20));
    }
}
