//! `--baseline FILE`: this run against an earlier one, cell by cell. The earlier run is the
//! JSON that `--json FILE` (or a report's `results.json`) wrote, read and checked before the
//! run starts; after it, every cell both runs have gets the ratio of its throughputs and a
//! verdict that takes the cells' own noise into account. For comparing two builds or two
//! machines, as users tuning with the bench do.

use std::path::{Path, PathBuf};

use comfy_table::{CellAlignment, Table, presets};
use thiserror::Error;

use super::run::{BenchResult, NOISY_SPREAD_PERCENT};

/// A `--baseline` file that cannot be used, as one line.
#[derive(Debug, Error)]
pub enum BaselineError {
    /// The file cannot be read.
    #[error(
        "cannot read --baseline {}: {reason}; give a file written by `mapguard bench --json \
         FILE` (or a report's results.json)",
        path.display()
    )]
    Read {
        /// The path given.
        path: PathBuf,
        /// What the system said.
        reason: std::io::Error,
    },
    /// The file is not the JSON of a bench run.
    #[error(
        "--baseline {} is not the JSON of a mapguard bench run ({what}); give a file written \
         by `mapguard bench --json FILE` (or a report's results.json)",
        path.display()
    )]
    NotARun {
        /// The path given.
        path: PathBuf,
        /// What was wrong with it.
        what: String,
    },
}

/// One cell of the earlier run.
#[derive(Clone, Debug, PartialEq)]
pub struct BaselineCell {
    /// Workload name.
    pub workload: String,
    /// Map name.
    pub map: String,
    /// Worker threads.
    pub threads: usize,
    /// Median throughput, Mops/s.
    pub mops: f64,
    /// Spread of its samples, percent.
    pub spread_percent: f64,
    /// Whether that run flagged it noisy.
    pub noisy: bool,
    /// The machine state it ran in (`cheap`/`dear`), when that run saw both.
    pub transfer_state: Option<String>,
}

/// The earlier run of `--baseline`.
#[derive(Clone, Debug)]
pub struct Baseline {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its cells that did not fail.
    pub cells: Vec<BaselineCell>,
}

impl Baseline {
    /// Reads and checks the JSON of an earlier run.
    ///
    /// # Errors
    /// [`BaselineError::Read`] when the file cannot be read, [`BaselineError::NotARun`] when
    /// it is not a bench run's JSON.
    ///
    /// # Examples
    /// ```
    /// use mapguard_cli::bench::compare::{Baseline, BaselineError};
    /// let err = Baseline::load(std::path::Path::new("/nonexistent/run.json")).unwrap_err();
    /// assert!(matches!(err, BaselineError::Read { .. }));
    /// ```
    pub fn load(path: &Path) -> Result<Self, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|reason| BaselineError::Read {
            path: path.to_owned(),
            reason,
        })?;
        Self::parse(path, &text)
    }

    /// [`load`](Self::load) from text already read.
    ///
    /// # Errors
    /// [`BaselineError::NotARun`] when `text` is not a bench run's JSON.
    pub fn parse(path: &Path, text: &str) -> Result<Self, BaselineError> {
        let not_a_run = |what: String| BaselineError::NotARun {
            path: path.to_owned(),
            what,
        };
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|e| not_a_run(format!("not JSON: {e}")))?;
        let results = doc
            .get("results")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| not_a_run("no `results` array".to_owned()))?;
        let mut cells = Vec::new();
        for (i, r) in results.iter().enumerate() {
            let text = |key: &str| {
                r.get(key)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| not_a_run(format!("result {i} has no `{key}`")))
            };
            let (workload, map) = (text("workload")?, text("map")?);
            let threads = r
                .get("threads")
                .and_then(serde_json::Value::as_u64)
                .and_then(|t| usize::try_from(t).ok())
                .ok_or_else(|| not_a_run(format!("result {i} has no `threads`")))?;
            // A failed cell has no throughput: nothing to compare with.
            let Some(mops) = r.get("mops").and_then(serde_json::Value::as_f64) else {
                continue;
            };
            cells.push(BaselineCell {
                workload,
                map,
                threads,
                mops,
                spread_percent: r
                    .get("spread_percent")
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or(0.0),
                noisy: r
                    .get("noisy")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false),
                transfer_state: r
                    .get("transfer_state")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
            });
        }
        Ok(Baseline {
            path: path.to_owned(),
            cells,
        })
    }
}

/// One cell of both runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// Workload name.
    pub workload: &'static str,
    /// Map name.
    pub map: &'static str,
    /// Worker threads.
    pub threads: usize,
    /// Mops/s in the baseline run.
    pub before: f64,
    /// Mops/s in this run.
    pub now: f64,
    /// The largest change either run's noise explains, as a fraction: the larger of the
    /// noisy threshold and the two cells' spreads.
    pub tolerance: f64,
    /// Whether either run flagged the cell noisy.
    pub noisy: bool,
    /// Whether the two cells ran in different machine states (both runs saw both states).
    pub states_differ: bool,
}

impl Change {
    /// This run's throughput over the baseline's.
    pub fn ratio(&self) -> f64 {
        self.now / self.before
    }

    /// `faster`, `slower` or `within noise`.
    pub fn verdict(&self) -> &'static str {
        let ratio = self.ratio();
        if ratio > 1.0 + self.tolerance {
            "faster"
        } else if ratio < 1.0 - self.tolerance {
            "slower"
        } else {
            "within noise"
        }
    }
}

/// Every cell of `results` that the baseline has too, in the order of `results`. `state_of`
/// gives the machine state a result of this run ran in (see `noise::TransferLog::state_of`),
/// to mark the cells whose states differ between the runs.
pub fn compare(
    baseline: &Baseline,
    results: &[BenchResult],
    state_of: impl Fn(&BenchResult) -> Option<&'static str>,
) -> Vec<Change> {
    results
        .iter()
        .filter(|r| !r.failed())
        .filter_map(|r| {
            let before = baseline.cells.iter().find(|c| {
                c.workload == r.workload.name && c.map == r.map.name() && c.threads == r.threads
            })?;
            let states_differ = match (before.transfer_state.as_deref(), state_of(r)) {
                (Some(before), Some(now)) => before != now,
                _ => false,
            };
            Some(Change {
                workload: r.workload.name,
                map: r.map.name(),
                threads: r.threads,
                before: before.mops,
                now: r.mops(),
                tolerance: NOISY_SPREAD_PERCENT
                    .max(before.spread_percent)
                    .max(r.spread_percent())
                    / 100.0,
                noisy: before.noisy || r.is_noisy(),
                states_differ,
            })
        })
        .filter(|c| c.before > 0.0)
        .collect()
}

/// The comparison as a table, one line per cell both runs have.
pub fn comparison_table(changes: &[Change]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::ASCII_MARKDOWN);
    table.set_header(vec![
        "workload",
        "map",
        "thr",
        "baseline",
        "now",
        "now ÷ base",
        "verdict",
    ]);
    for i in 2..7 {
        table
            .column_mut(i)
            .expect("column exists")
            .set_cell_alignment(CellAlignment::Right);
    }
    for c in changes {
        let mut verdict = c.verdict().to_owned();
        if c.noisy {
            verdict.push_str(" (noisy)");
        }
        if c.states_differ {
            verdict.push_str(" (states differ)");
        }
        table.add_row(vec![
            c.workload.to_owned(),
            c.map.to_owned(),
            c.threads.to_string(),
            format!("{:.1}", c.before),
            format!("{:.1}", c.now),
            format!("{:.2}x", c.ratio()),
            verdict,
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::adapter::MapKind;
    use crate::bench::workload::WORKLOADS;

    fn result(map: MapKind, samples: &[f64]) -> BenchResult {
        let mut r = BenchResult::new(&WORKLOADS[0], map, 2);
        r.mops_samples = samples.to_vec();
        r
    }

    #[test]
    fn cells_of_both_runs_get_a_ratio_and_a_verdict_within_their_noise() {
        let text = r#"{"run": {}, "results": [
            {"workload": "seed95", "map": "dashmap", "threads": 2, "mops": 50.0,
             "spread_percent": 2.0, "noisy": false, "transfer_state": "cheap"},
            {"workload": "seed95", "map": "sharded", "threads": 2, "mops": 100.0,
             "spread_percent": 30.0, "noisy": true},
            {"workload": "seed95", "map": "scc", "threads": 2, "mops": null},
            {"workload": "seed95", "map": "papaya", "threads": 2, "mops": 10.0}
        ]}"#;
        let baseline = Baseline::parse(Path::new("b.json"), text).unwrap();
        assert_eq!(baseline.cells.len(), 3, "the failed cell is left out");
        let results = [
            result(MapKind::Dashmap, &[60.0, 61.0, 59.0]),
            result(MapKind::Sharded, &[125.0, 126.0, 124.0]),
            result(MapKind::Papaya, &[8.0, 8.0, 8.0]),
            result(MapKind::Scc, &[70.0, 70.0, 70.0]),
        ];
        let changes = compare(&baseline, &results, |r| {
            (r.map == MapKind::Dashmap).then_some("dear")
        });
        assert_eq!(changes.len(), 3);
        assert_eq!(changes[0].verdict(), "faster");
        assert!(changes[0].states_differ);
        // +25 % is within the 30 % spread of the baseline's noisy cell.
        assert_eq!(changes[1].verdict(), "within noise");
        assert!(changes[1].noisy);
        assert_eq!(changes[2].verdict(), "slower");
        let table = comparison_table(&changes).to_string();
        assert!(table.contains("faster (states differ)"), "{table}");
        assert!(table.contains("within noise (noisy)"), "{table}");
    }

    #[test]
    fn files_that_are_not_runs_are_typed_errors() {
        for (text, what) in [
            ("not json", "not JSON"),
            ("{}", "no `results` array"),
            (
                r#"{"results": [{"map": "x", "threads": 1}]}"#,
                "no `workload`",
            ),
        ] {
            let err = Baseline::parse(Path::new("x.json"), text).unwrap_err();
            assert!(matches!(err, BaselineError::NotARun { .. }));
            assert!(err.to_string().contains(what), "{err}");
        }
    }
}
