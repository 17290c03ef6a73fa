//! Validating user choices (names, counts, times) into a [`BenchConfig`]. Every way a choice
//! can be wrong is a [`ConfigError`] variant whose message is one line naming what was wrong
//! and what would be right. Every number has an upper bound, so that a valid configuration
//! cannot overflow, cannot ask for more memory than a workstation has, and cannot run for
//! more than an hour per sample.

use std::time::Duration;

use thiserror::Error;

use super::adapter::MapKind;
use super::plan::Op;
use super::run::{BenchConfig, RunLength};
use super::workload::Workload;

/// The most worker threads a cell may have.
pub const MAX_THREADS: usize = 1024;

/// The most operations per thread (`--ops`). Each thread's plan is generated before timing,
/// `size_of::<Op>()` (16) bytes per operation: 160 MB per thread at this bound.
pub const MAX_OPS: usize = 10_000_000;

/// The most operations of all plans together: `--ops` times the largest thread count, about
/// 1 GB of plans.
pub const MAX_PLANNED_OPS: usize = 64_000_000;

/// The most samples per cell (`--repeat`).
pub const MAX_REPEAT: usize = 100;

/// The longest `--min-time-ms`, `--warm-up-ms` and `--duration`: one hour.
pub const MAX_TIME: Duration = Duration::from_secs(3600);

/// A bench configuration that cannot run.
#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    /// A workload name that does not exist.
    #[error("unknown workload `{name}`; valid workloads: {valid}")]
    UnknownWorkload {
        /// The name given.
        name: String,
        /// The valid names.
        valid: String,
    },
    /// A map name that does not exist.
    #[error("unknown map `{name}`; valid maps: {valid}")]
    UnknownMap {
        /// The name given.
        name: String,
        /// The valid names.
        valid: String,
    },
    /// A list flag given with no names.
    #[error("{flag} needs at least one name; valid names: {valid}")]
    EmptyList {
        /// The flag, e.g. `--maps`.
        flag: &'static str,
        /// The valid names.
        valid: String,
    },
    /// A thread count of 0 or above [`MAX_THREADS`].
    #[error("invalid thread count {got} in --threads; each must be between 1 and {MAX_THREADS}")]
    BadThreads {
        /// The count given.
        got: usize,
    },
    /// An operation count of 0 or above [`MAX_OPS`].
    #[error("invalid --ops {got}; give 1 to {MAX_OPS} operations per thread")]
    BadOps {
        /// The count given.
        got: usize,
    },
    /// Plans of more than [`MAX_PLANNED_OPS`] operations in all.
    #[error(
        "--ops {ops} at {threads} threads plans {} operations ({:.1} GB); at most \
         {MAX_PLANNED_OPS} in all (--ops times the largest --threads): give --ops up to {} or \
         fewer threads",
        planned(*ops, *threads),
        planned(*ops, *threads) as f64 * size_of::<Op>() as f64 / 1e9,
        MAX_PLANNED_OPS / threads
    )]
    PlansTooLarge {
        /// Operations per thread.
        ops: usize,
        /// The largest thread count.
        threads: usize,
    },
    /// A sample count of 0 or above [`MAX_REPEAT`].
    #[error("invalid --repeat {got}; give 1 to {MAX_REPEAT} samples per cell")]
    BadRepeat {
        /// The count given.
        got: usize,
    },
    /// A `--min-time-ms` above [`MAX_TIME`].
    #[error("invalid --min-time-ms {got}; give 0 to {} (one hour)", MAX_TIME.as_millis())]
    BadMinTime {
        /// The milliseconds given.
        got: u64,
    },
    /// A `--warm-up-ms` above [`MAX_TIME`].
    #[error("invalid --warm-up-ms {got}; give 0 to {} (one hour)", MAX_TIME.as_millis())]
    BadWarmUp {
        /// The milliseconds given.
        got: u64,
    },
    /// A duration that is not a positive number of seconds up to [`MAX_TIME`].
    #[error(
        "invalid --duration {got}; give a positive number of seconds up to {} (one hour), e.g. 0.5",
        MAX_TIME.as_secs()
    )]
    BadDuration {
        /// The value given.
        got: f64,
    },
}

/// Operations of `threads` plans of `ops` each, without overflow.
fn planned(ops: usize, threads: usize) -> u64 {
    ops as u64 * threads as u64
}

/// Raw user choices, as given on the command line (names not yet checked).
#[derive(Clone, Debug, Default)]
pub struct Choices {
    /// Workload names; `None` means all.
    pub workloads: Option<Vec<String>>,
    /// Map names; `None` means the default set ([`MapKind::default_set`]).
    pub maps: Option<Vec<String>>,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// Operations per thread (the plan length in duration mode).
    pub ops: usize,
    /// Least time of a sample on workloads whose plans can be replayed, in milliseconds.
    pub min_time_ms: u64,
    /// Seconds per worker, instead of a fixed operation count.
    pub duration_secs: Option<f64>,
    /// Seed of plans and hasher.
    pub seed: u64,
    /// Samples per cell.
    pub repeat: usize,
    /// Build mapguard's maps with statistics on (`--stats`).
    pub stats: bool,
    /// Untimed warm-up before the first sample, in milliseconds.
    pub warm_up_ms: u64,
    /// A smoke run (`--quick`), marked as such in every output.
    pub smoke: bool,
}

fn names<T>(
    given: Option<&[String]>,
    flag: &'static str,
    all: impl Fn() -> Vec<T>,
    lookup: impl Fn(&str) -> Option<T>,
    valid: String,
    unknown: impl Fn(String, String) -> ConfigError,
) -> Result<Vec<T>, ConfigError>
where
    T: PartialEq,
{
    let Some(given) = given else {
        return Ok(all());
    };
    let mut out = Vec::new();
    for name in given.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let item = lookup(name).ok_or_else(|| unknown(name.to_owned(), valid.clone()))?;
        if !out.contains(&item) {
            out.push(item);
        }
    }
    if out.is_empty() {
        return Err(ConfigError::EmptyList { flag, valid });
    }
    Ok(out)
}

impl Choices {
    /// Checks every choice and builds the configuration.
    pub fn validate(&self) -> Result<BenchConfig, ConfigError> {
        let workloads = names(
            self.workloads.as_deref(),
            "--workloads",
            || super::workload::WORKLOADS.iter().collect(),
            Workload::by_name,
            Workload::valid_names(),
            |name, valid| ConfigError::UnknownWorkload { name, valid },
        )?;
        let maps = names(
            self.maps.as_deref(),
            "--maps",
            MapKind::default_set,
            MapKind::by_name,
            MapKind::valid_names(),
            |name, valid| ConfigError::UnknownMap { name, valid },
        )?;
        if let Some(&got) = self.threads.iter().find(|t| **t == 0 || **t > MAX_THREADS) {
            return Err(ConfigError::BadThreads { got });
        }
        let mut threads = self.threads.clone();
        threads.sort_unstable();
        threads.dedup();
        if threads.is_empty() {
            return Err(ConfigError::BadThreads { got: 0 });
        }
        if !(1..=MAX_OPS).contains(&self.ops) {
            return Err(ConfigError::BadOps { got: self.ops });
        }
        let max_threads = *threads.last().expect("checked not empty");
        if planned(self.ops, max_threads) > MAX_PLANNED_OPS as u64 {
            return Err(ConfigError::PlansTooLarge {
                ops: self.ops,
                threads: max_threads,
            });
        }
        if !(1..=MAX_REPEAT).contains(&self.repeat) {
            return Err(ConfigError::BadRepeat { got: self.repeat });
        }
        let min_time = Duration::from_millis(self.min_time_ms);
        if min_time > MAX_TIME {
            return Err(ConfigError::BadMinTime {
                got: self.min_time_ms,
            });
        }
        let warm_up = Duration::from_millis(self.warm_up_ms);
        if warm_up > MAX_TIME {
            return Err(ConfigError::BadWarmUp {
                got: self.warm_up_ms,
            });
        }
        let length = match self.duration_secs {
            None => RunLength::Ops {
                per_thread: self.ops,
                min_time,
            },
            Some(secs) => {
                let duration = Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|d| !d.is_zero() && *d <= MAX_TIME)
                    .ok_or(ConfigError::BadDuration { got: secs })?;
                RunLength::Duration {
                    duration,
                    plan_len: self.ops,
                }
            }
        };
        Ok(BenchConfig {
            workloads,
            maps,
            threads,
            length,
            seed: self.seed,
            repeat: self.repeat,
            stats: self.stats,
            warm_up,
            smoke: self.smoke,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choices() -> Choices {
        Choices {
            threads: vec![1, 2],
            ops: 10,
            repeat: 1,
            ..Choices::default()
        }
    }

    #[test]
    fn defaults_select_everything() {
        let c = choices().validate().unwrap();
        assert_eq!(c.workloads.len(), super::super::WORKLOADS.len());
        assert_eq!(c.maps, MapKind::default_set());
        assert_eq!(
            c.length,
            RunLength::Ops {
                per_thread: 10,
                min_time: Duration::ZERO
            }
        );
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let mut c = choices();
        c.workloads = Some(vec!["seed95".into(), "seed96".into()]);
        let err = c.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown workload `seed96`; valid workloads: seed95, seed99, read100, read-heavy, \
             exchange, write-heavy, rapid-grow, hot-keys"
        );
        let mut c = choices();
        c.maps = Some(vec!["chashmap".into()]);
        let err = c.validate().unwrap_err().to_string();
        assert!(err.starts_with(
            "unknown map `chashmap`; valid maps: sharded, read-mostly, locked, dashmap"
        ));
    }

    #[test]
    fn bad_values_are_rejected() {
        let mut c = choices();
        c.threads = vec![2, 0];
        assert_eq!(
            c.validate().unwrap_err(),
            ConfigError::BadThreads { got: 0 }
        );
        let mut c = choices();
        c.ops = 0;
        assert_eq!(c.validate().unwrap_err(), ConfigError::BadOps { got: 0 });
        let mut c = choices();
        c.duration_secs = Some(-1.0);
        assert_eq!(
            c.validate().unwrap_err(),
            ConfigError::BadDuration { got: -1.0 }
        );
        let mut c = choices();
        c.maps = Some(vec![" ".into()]);
        assert!(matches!(
            c.validate().unwrap_err(),
            ConfigError::EmptyList { flag: "--maps", .. }
        ));
    }

    /// Each bound is itself allowed and one past it is not.
    #[test]
    fn every_number_is_bounded_above() {
        let max_ms = u64::try_from(MAX_TIME.as_millis()).unwrap();
        let mut c = choices();
        c.threads = vec![1, MAX_PLANNED_OPS / MAX_OPS];
        c.ops = MAX_OPS;
        c.repeat = MAX_REPEAT;
        c.min_time_ms = max_ms;
        c.warm_up_ms = max_ms;
        assert!(c.validate().is_ok());
        c.duration_secs = Some(MAX_TIME.as_secs_f64());
        assert!(c.validate().is_ok());

        let refused = |change: &dyn Fn(&mut Choices)| {
            let mut c = choices();
            change(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(
            refused(&|c| c.ops = MAX_OPS + 1),
            ConfigError::BadOps { got: MAX_OPS + 1 }
        );
        let threads = MAX_PLANNED_OPS / MAX_OPS + 1;
        let err = refused(&|c| {
            c.ops = MAX_OPS;
            c.threads = vec![threads, 1];
        });
        assert_eq!(
            err,
            ConfigError::PlansTooLarge {
                ops: MAX_OPS,
                threads
            }
        );
        assert_eq!(
            err.to_string(),
            "--ops 10000000 at 7 threads plans 70000000 operations (1.1 GB); at most 64000000 \
             in all (--ops times the largest --threads): give --ops up to 9142857 or fewer \
             threads"
        );
        assert_eq!(
            refused(&|c| c.repeat = MAX_REPEAT + 1),
            ConfigError::BadRepeat {
                got: MAX_REPEAT + 1
            }
        );
        assert_eq!(
            refused(&|c| c.min_time_ms = u64::MAX),
            ConfigError::BadMinTime { got: u64::MAX }
        );
        assert_eq!(
            refused(&|c| c.warm_up_ms = max_ms + 1),
            ConfigError::BadWarmUp { got: max_ms + 1 }
        );
        let secs = MAX_TIME.as_secs_f64() + 0.001;
        assert_eq!(
            refused(&|c| c.duration_secs = Some(secs)),
            ConfigError::BadDuration { got: secs }
        );
    }

    #[test]
    fn duplicates_and_order_are_normalized() {
        let mut c = choices();
        c.threads = vec![8, 1, 8, 2];
        c.maps = Some(vec!["scc".into(), "scc".into(), "papaya".into()]);
        let c = c.validate().unwrap();
        assert_eq!(c.threads, vec![1, 2, 8]);
        assert_eq!(c.maps, vec![MapKind::Scc, MapKind::Papaya]);
    }
}
