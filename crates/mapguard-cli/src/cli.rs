//! The command line: flags of `mapguard` and its subcommands (clap derive), turned into the
//! engine's [`Choices`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::bench::config::{Choices, ConfigError};
use crate::bench::html::DEFAULT_REPORT_DIR;
use crate::bench::run::BenchConfig;

/// Workloads of the default set.
pub const DEFAULT_WORKLOADS: [&str; 5] = [
    "seed95",
    "read-heavy",
    "exchange",
    "write-heavy",
    "rapid-grow",
];

/// Operations per thread in the default set.
pub const DEFAULT_OPS: usize = 100_000;

/// Least milliseconds of a sample on replayable workloads in the default set: long enough
/// that thread start, the first writes after prefill and a shard's mode switches are a small
/// part of it.
pub const DEFAULT_MIN_TIME_MS: u64 = 70;

/// Milliseconds of untimed warm-up before the first sample in the default set.
pub const DEFAULT_WARM_UP_MS: u64 = 300;

/// Milliseconds of untimed warm-up with `--quick`: enough that the first maps measured do not
/// pay for a cold process.
pub const QUICK_WARM_UP_MS: u64 = 100;

/// Samples per cell in the default set.
pub const DEFAULT_REPEAT: usize = 3;

/// Operations per thread with `--quick`.
pub const QUICK_OPS: usize = 20_000;

/// Least milliseconds of a sample on replayable workloads with `--quick`.
pub const QUICK_MIN_TIME_MS: u64 = 20;

/// Thread counts with `--quick`.
pub const QUICK_THREADS: [usize; 2] = [1, 2];

/// The default thread counts: 1, 2, the machine's parallelism and 8, ascending, without
/// duplicates.
///
/// # Examples
/// ```
/// let t = mapguard_cli::cli::default_threads();
/// assert!(t.starts_with(&[1, 2]) && t.contains(&8));
/// ```
pub fn default_threads() -> Vec<usize> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = vec![1, 2, cpus, 8];
    threads.sort_unstable();
    threads.dedup();
    threads
}

/// Concurrent maps that are fast, never hang silently, and show where they hurt.
#[derive(Debug, Parser)]
#[command(
    name = "mapguard",
    version,
    about,
    arg_required_else_help = true,
    max_term_width = 100
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run workloads × maps × thread counts; print throughput, latency and memory, and write
    /// a report with charts.
    Bench(Box<BenchArgs>),
    /// Replay one failure class of the original incident and print the diagnosis (without a
    /// scenario: list them).
    #[command(after_help = crate::demo::listing())]
    Demo(DemoArgs),
}

/// Flags of `mapguard bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A seconds-long smoke run, not for comparison: threads 1,2, one sample of 20 ms (20,000
    /// ops per thread on rapid-grow) per cell, 100 ms of warm-up (flags given explicitly still
    /// win).
    #[arg(short, long)]
    pub quick: bool,
    /// Workloads to run, comma-separated [default: seed95, read-heavy, exchange, write-heavy,
    /// rapid-grow; also: seed99, read100, hot-keys]
    #[arg(short, long, value_delimiter = ',', value_name = "NAMES")]
    pub workloads: Option<Vec<String>>,
    /// Maps to compare, comma-separated [default: sharded, read-mostly, locked, dashmap, papaya,
    /// scc, rwlock-std, hashbrown, calibration; also: mutex-std]. The hashbrown baseline
    /// always runs at one thread, and on read100 at every thread count (one shared table:
    /// the read limit); the calibration reference (u64 words in atomic slots) is the limit of
    /// the mixes with writes.
    #[arg(short, long, value_delimiter = ',', value_name = "NAMES")]
    pub maps: Option<Vec<String>>,
    /// Thread counts, comma-separated, each 1 to 1024 [default: 1, 2, the number of CPUs, 8]
    #[arg(
        short,
        long,
        value_delimiter = ',',
        value_name = "COUNTS",
        allow_negative_numbers = true
    )]
    pub threads: Option<Vec<usize>>,
    /// Operations per thread (with --duration: the length of the plan that is replayed), 1 to
    /// 10000000, and at most 64000000 times the largest --threads [default: 100000]
    #[arg(short = 'n', long, value_name = "N", allow_negative_numbers = true)]
    pub ops: Option<usize>,
    /// On every workload but rapid-grow, replay whole plans until a sample has run at least
    /// this many milliseconds (0: one pass), up to 3600000 (one hour) [default: 70; 20 with
    /// --quick]
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    pub min_time_ms: Option<u64>,
    /// Run untimed samples of the first cell for this many milliseconds before the first
    /// timed one, so that the first maps measured do not pay for a cold process and an idle
    /// core; 0 to 3600000 (one hour) [default: 300; 100 with --quick]
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    pub warm_up_ms: Option<u64>,
    /// Run each worker for this many seconds instead of a fixed number of operations: more
    /// than 0, up to 3600 (one hour).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub duration: Option<f64>,
    /// Seed of the operation plans and of the hasher: any number from 0 to 2^64 - 1.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub seed: u64,
    /// Samples per cell, 1 to 100; throughput is their median, latency merges them [default: 3;
    /// 1 with --quick]
    #[arg(short, long, value_name = "N", allow_negative_numbers = true)]
    pub repeat: Option<usize>,
    /// Also write the results as JSON to FILE (opened before the run).
    #[arg(short, long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Compare this run with an earlier one, cell by cell: FILE is the JSON an earlier run
    /// wrote with --json (or a report's results.json), read before the run. Prints each
    /// common cell's throughput ratio and whether it is faster, slower or within the cells'
    /// noise.
    #[arg(short, long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Also write the results as CSV to FILE (opened before the run).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Directory of the HTML report (index.html, SVG charts, results.json, results.csv),
    /// created and checked for writing before the run.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_REPORT_DIR)]
    pub report: PathBuf,
    /// Do not write the HTML report.
    #[arg(long, conflicts_with = "report")]
    pub no_report: bool,
    /// Build mapguard's maps with statistics on and fill the `contention` column from them
    /// (share of operations that waited for a lock, lock wait over the workers' time). This
    /// measures instrumented maps, slower than the default; without it every map runs with
    /// statistics off and the column is `-`. mapguard's maps report their lock waits (for
    /// ReadMostlyMap, its writers' shard mutexes); peers keep no statistics, so theirs is `-`.
    #[arg(long)]
    pub stats: bool,
}

impl BenchArgs {
    /// Validates the flags into a runnable configuration.
    pub fn to_config(&self) -> Result<BenchConfig, ConfigError> {
        let quick = self.quick;
        Choices {
            workloads: Some(
                self.workloads
                    .clone()
                    .unwrap_or_else(|| DEFAULT_WORKLOADS.iter().map(|w| (*w).to_owned()).collect()),
            ),
            maps: self.maps.clone(),
            threads: self.threads.clone().unwrap_or_else(|| {
                if quick {
                    QUICK_THREADS.to_vec()
                } else {
                    default_threads()
                }
            }),
            ops: self
                .ops
                .unwrap_or(if quick { QUICK_OPS } else { DEFAULT_OPS }),
            min_time_ms: self.min_time_ms.unwrap_or(if quick {
                QUICK_MIN_TIME_MS
            } else {
                DEFAULT_MIN_TIME_MS
            }),
            duration_secs: self.duration,
            seed: self.seed,
            repeat: self
                .repeat
                .unwrap_or(if quick { 1 } else { DEFAULT_REPEAT }),
            stats: self.stats,
            smoke: quick,
            warm_up_ms: self.warm_up_ms.unwrap_or(if quick {
                QUICK_WARM_UP_MS
            } else {
                DEFAULT_WARM_UP_MS
            }),
        }
        .validate()
    }

    /// The report directory, unless `--no-report`.
    pub fn report_dir(&self) -> Option<&std::path::Path> {
        (!self.no_report).then_some(self.report.as_path())
    }
}

/// Flags of `mapguard demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The scenario to replay; without one, the scenarios are listed.
    #[arg(value_name = "SCENARIO", value_parser = parse_scenario)]
    pub scenario: Option<&'static crate::demo::Scenario>,
}

fn parse_scenario(name: &str) -> Result<&'static crate::demo::Scenario, String> {
    crate::demo::Scenario::by_name(name).ok_or_else(|| {
        format!(
            "unknown scenario `{name}`; valid scenarios: {}",
            crate::demo::Scenario::valid_names()
        )
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;
    use crate::bench::config::{MAX_OPS, MAX_PLANNED_OPS, MAX_REPEAT, MAX_THREADS, MAX_TIME};

    /// `mapguard bench --help` states the bounds that validation enforces.
    #[test]
    fn help_states_every_bound() {
        let cli = Cli::command();
        let bench = cli.find_subcommand("bench").expect("a bench subcommand");
        let help = |id: &str| {
            let arg = bench.get_arguments().find(|a| a.get_id() == id);
            arg.and_then(|a| a.get_help())
                .expect("documented")
                .to_string()
        };
        let max_ms = MAX_TIME.as_millis().to_string();
        for (id, bounds) in [
            ("threads", vec!["1 to".to_owned(), MAX_THREADS.to_string()]),
            (
                "ops",
                vec![
                    "1 to".to_owned(),
                    MAX_OPS.to_string(),
                    MAX_PLANNED_OPS.to_string(),
                ],
            ),
            ("min_time_ms", vec![max_ms.clone()]),
            ("warm_up_ms", vec!["0 to".to_owned(), max_ms]),
            ("duration", vec![MAX_TIME.as_secs().to_string()]),
            ("repeat", vec!["1 to".to_owned(), MAX_REPEAT.to_string()]),
            ("seed", vec!["0 to 2^64 - 1".to_owned()]),
        ] {
            let text = help(id);
            for bound in bounds {
                assert!(text.contains(&bound), "--{id} help lacks `{bound}`: {text}");
            }
        }
    }
}
