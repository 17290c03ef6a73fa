//! Validating user choices (names, counts) into a [`BenchConfig`]. Every way a choice can be
//! wrong is a [`ConfigError`] variant whose message is one line naming what was wrong and
//! what would be right.

use std::time::Duration;

use thiserror::Error;

use super::adapter::MapKind;
use super::run::{BenchConfig, RunLength};
use super::workload::Workload;

/// The most worker threads a cell may have.
pub const MAX_THREADS: usize = 1024;

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
    /// `--ops 0`.
    #[error("--ops must be at least 1 (operations per thread)")]
    ZeroOps,
    /// `--repeat 0`.
    #[error("--repeat must be at least 1")]
    ZeroRepeat,
    /// A duration that is not a positive number of seconds.
    #[error("invalid --duration {got}; give a positive number of seconds, e.g. 0.5")]
    BadDuration {
        /// The value given.
        got: f64,
    },
}

/// Raw user choices, as given on the command line (names not yet checked).
#[derive(Clone, Debug, Default)]
pub struct Choices {
    /// Workload names; `None` means all.
    pub workloads: Option<Vec<String>>,
    /// Map names; `None` means the default set ([`MapKind::DEFAULT`]).
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
            || MapKind::DEFAULT.to_vec(),
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
        if self.ops == 0 {
            return Err(ConfigError::ZeroOps);
        }
        if self.repeat == 0 {
            return Err(ConfigError::ZeroRepeat);
        }
        let length = match self.duration_secs {
            None => RunLength::Ops {
                per_thread: self.ops,
                min_time: Duration::from_millis(self.min_time_ms),
            },
            Some(secs) => {
                let duration = Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|d| !d.is_zero())
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
            warm_up: Duration::from_millis(self.warm_up_ms),
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
        assert_eq!(c.workloads.len(), 7);
        assert_eq!(c.maps, MapKind::DEFAULT.to_vec());
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
             exchange, rapid-grow, hot-keys"
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
        assert_eq!(c.validate().unwrap_err(), ConfigError::ZeroOps);
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
