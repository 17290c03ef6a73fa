//! The command line: flags of `mapguard` and its subcommands (clap derive), turned into the
//! engine's [`Choices`].

use clap::{Args, Parser, Subcommand};

use crate::bench::config::{Choices, ConfigError};
use crate::bench::run::BenchConfig;

/// Operations per thread in the default set.
pub const DEFAULT_OPS: usize = 300_000;

/// Least milliseconds of a sample on replayable workloads in the default set.
pub const DEFAULT_MIN_TIME_MS: u64 = 20;

/// Samples per cell in the default set.
pub const DEFAULT_REPEAT: usize = 3;

/// Concurrent maps that are fast, never hang silently, and show where they hurt.
#[derive(Debug, Parser)]
#[command(name = "mapguard", version, about, arg_required_else_help = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run workloads × maps × thread counts and print throughput, latency and memory.
    Bench(BenchArgs),
}

/// Flags of `mapguard bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Workloads to run, comma-separated [default: all: seed95, seed99, read100, read-heavy,
    /// exchange, rapid-grow, hot-keys]
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub workloads: Option<Vec<String>>,
    /// Maps to compare, comma-separated [default: sharded, dashmap, papaya, scc, rwlock-std,
    /// mutex-std, hashbrown; also: read-mostly, locked]. The hashbrown baseline always runs at
    /// one thread.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub maps: Option<Vec<String>>,
    /// Thread counts, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "COUNTS",
        default_value = "1,2,8"
    )]
    pub threads: Vec<usize>,
    /// Operations per thread (with --duration: the length of the plan that is replayed).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_OPS)]
    pub ops: usize,
    /// On workloads without inserts or removes, replay whole plans until a sample has run at
    /// least this many milliseconds (0: one pass).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_MIN_TIME_MS)]
    pub min_time_ms: u64,
    /// Run each worker for this many seconds instead of a fixed number of operations.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Seed of the operation plans and of the hasher.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Samples per cell; throughput is their median, latency merges them.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_REPEAT)]
    pub repeat: usize,
}

impl BenchArgs {
    /// Validates the flags into a runnable configuration.
    pub fn to_config(&self) -> Result<BenchConfig, ConfigError> {
        Choices {
            workloads: self.workloads.clone(),
            maps: self.maps.clone(),
            threads: self.threads.clone(),
            ops: self.ops,
            min_time_ms: self.min_time_ms,
            duration_secs: self.duration,
            seed: self.seed,
            repeat: self.repeat,
        }
        .validate()
    }
}
