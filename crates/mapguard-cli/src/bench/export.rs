//! Machine-readable results: one [`Record`] per cell, written as JSON (`--json`) or CSV
//! (`--csv`). Both carry the same figures as the table, unrounded.

use std::fmt::Write as _;

use serde::Serialize;

use super::adapter::{Contention, MapRole};
use super::noise::TransferLog;
use super::report::{Row, sorted_rows};
use super::run::{BenchConfig, BenchResult, RunLength};

/// One cell's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    /// Workload name.
    pub workload: &'static str,
    /// Map name (CLI name).
    pub map: &'static str,
    /// `ours`, `peer` or `baseline`.
    pub role: &'static str,
    /// Worker threads.
    pub threads: usize,
    /// Median throughput over the samples, Mops/s (`null` for a failed cell).
    pub mops: Option<f64>,
    /// Every sample's throughput, Mops/s, in run order.
    pub mops_samples: Vec<f64>,
    /// How far the samples disagree, percent (`BenchResult::spread_percent`).
    pub spread_percent: Option<f64>,
    /// Whether the cell stayed noisy after its extra samples (spread above 15 %): its ratios
    /// may not hold in the next run.
    pub noisy: bool,
    /// Samples taken beyond `--repeat` because the first ones disagreed.
    pub extra_samples: usize,
    /// Whether the machine changed state while the cell's workload and thread count ran
    /// (then `noisy` too).
    pub state_changed: bool,
    /// Sampled latency, 50th percentile, ns.
    pub p50_ns: Option<u64>,
    /// Sampled latency, 99th percentile, ns.
    pub p99_ns: Option<u64>,
    /// Sampled latency, 99.9th percentile, ns.
    pub p999_ns: Option<u64>,
    /// Bytes requested from the allocator per entry after prefill.
    pub bytes_per_entry: Option<f64>,
    /// Entries after prefill.
    pub prefill_entries: usize,
    /// Throughput over the best peer's at the same workload and thread count.
    pub ratio_to_best_peer: Option<f64>,
    /// Throughput as a percentage of the limit measured at the same workload and thread
    /// count ([`limit_mops`](super::report::limit_mops)).
    pub percent_of_limit: Option<f64>,
    /// Lock contention the map reported (mapguard maps with statistics; `null` for peers).
    pub contention: Option<Contention>,
    /// Why the cell failed, if it did.
    pub failure: Option<String>,
    /// The core-to-core round trip of the machine state the cell ran in: the median of those
    /// measured just before its samples, ns.
    pub transfer_ns: Option<f64>,
    /// `cheap` or `dear`: the machine state the cell ran in, when the run saw both (see
    /// [`RunInfo::transfer`]); `null` when it saw one.
    pub transfer_state: Option<&'static str>,
}

impl Record {
    /// The record of one table row.
    pub fn from_row(row: &Row<'_>) -> Self {
        let r = row.result;
        let ok = (!r.failed()).then_some(());
        Record {
            workload: r.workload.name,
            map: r.map.name(),
            role: match r.map.role() {
                MapRole::Ours => "ours",
                MapRole::Peer => "peer",
                MapRole::Baseline => "baseline",
                MapRole::Reference => "reference",
            },
            threads: r.threads,
            mops: ok.map(|()| r.mops()),
            mops_samples: r.mops_samples.clone(),
            spread_percent: ok.map(|()| r.spread_percent()),
            noisy: r.is_noisy(),
            extra_samples: r.extra_samples,
            state_changed: r.state_changed,
            p50_ns: ok.map(|()| r.latency_ns(0.5)),
            p99_ns: ok.map(|()| r.latency_ns(0.99)),
            p999_ns: ok.map(|()| r.latency_ns(0.999)),
            bytes_per_entry: r.bytes_per_entry,
            prefill_entries: r.prefill_entries,
            ratio_to_best_peer: row.ratio_to_best_peer,
            percent_of_limit: row.percent_of_limit,
            contention: r.contention(),
            failure: r.failure.clone(),
            transfer_ns: r.transfer_ns,
            transfer_state: None,
        }
    }
}

/// How the run was made, for the JSON document.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    /// mapguard's version.
    pub version: &'static str,
    /// Workloads run.
    pub workloads: Vec<&'static str>,
    /// Maps run.
    pub maps: Vec<&'static str>,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// Operations per thread (the plan length in duration mode).
    pub ops_per_thread: usize,
    /// Seconds per worker in duration mode.
    pub duration_secs: Option<f64>,
    /// Samples per cell.
    pub repeat: usize,
    /// Untimed warm-up before the first sample, milliseconds.
    pub warm_up_ms: u64,
    /// Seed of plans and hasher.
    pub seed: u64,
    /// Whether mapguard's maps ran with statistics on (`--stats`): instrumented maps, and the
    /// source of the `contention` figures.
    pub mapguard_stats: bool,
    /// Wall time of the whole run, seconds.
    pub elapsed_secs: f64,
    /// Median cost of one clock reading pair, included in every latency, ns.
    pub clock_overhead_ns: u64,
    /// Share of the machine's CPU other processes used during the run, percent.
    pub other_processes_cpu_percent: Option<f64>,
    /// Logical CPUs of the machine.
    pub available_parallelism: usize,
    /// A smoke run (`--quick`): seconds long, its figures not for comparison.
    pub smoke_run: bool,
    /// The core-to-core round trips measured before the run, before every sample and after
    /// each workload and thread count (see `noise::transfer_ns`).
    pub transfer: TransferLog,
    /// Whether the machine changed state during the run (the dearest round trip 1.5 times the
    /// cheapest or more): then only cells of one `transfer_state` compare.
    pub transfer_changed: bool,
}

impl RunInfo {
    /// The run information of `config`, with the figures measured around the run.
    pub fn new(
        config: &BenchConfig,
        elapsed_secs: f64,
        clock_overhead_ns: u64,
        foreign_share: Option<f64>,
        transfer: TransferLog,
    ) -> Self {
        RunInfo {
            version: env!("CARGO_PKG_VERSION"),
            workloads: config.workloads.iter().map(|w| w.name).collect(),
            maps: config.maps.iter().map(|m| m.name()).collect(),
            threads: config.threads.clone(),
            ops_per_thread: config.length.plan_len(),
            duration_secs: match config.length {
                RunLength::Duration { duration, .. } => Some(duration.as_secs_f64()),
                RunLength::Ops { .. } => None,
            },
            repeat: config.repeat,
            warm_up_ms: u64::try_from(config.warm_up.as_millis()).unwrap_or(u64::MAX),
            seed: config.seed,
            mapguard_stats: config.stats,
            elapsed_secs,
            clock_overhead_ns,
            other_processes_cpu_percent: foreign_share.map(|s| 100.0 * s),
            available_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            smoke_run: config.smoke,
            transfer_changed: transfer.changed(),
            transfer,
        }
    }
}

/// The JSON document of `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    /// How the run was made.
    pub run: RunInfo,
    /// One record per cell, in table order.
    pub results: Vec<Record>,
}

/// The records of `results`, in table order.
pub fn records(results: &[BenchResult]) -> Vec<Record> {
    sorted_rows(results).iter().map(Record::from_row).collect()
}

/// `results` as a pretty-printed JSON document.
pub fn to_json(run: RunInfo, results: &[BenchResult]) -> String {
    let mut results = records(results);
    for record in &mut results {
        record.transfer_state = record.transfer_ns.and_then(|ns| run.transfer.state_of(ns));
    }
    let doc = Document { run, results };
    serde_json::to_string_pretty(&doc).expect("records serialize")
}

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 17] = [
    "workload",
    "map",
    "role",
    "threads",
    "mops",
    "spread_percent",
    "p50_ns",
    "p99_ns",
    "p999_ns",
    "bytes_per_entry",
    "prefill_entries",
    "ratio_to_best_peer",
    "percent_of_limit",
    "contended_percent",
    "wait_percent",
    "samples",
    "failure",
];

/// `results` as CSV (RFC 4180: comma-separated, text fields quoted when they need it), one
/// line per cell; `samples` holds the per-sample Mops/s separated by `;`.
pub fn to_csv(results: &[BenchResult]) -> String {
    fn opt<T: ToString>(v: Option<T>) -> String {
        v.map(|v| v.to_string()).unwrap_or_default()
    }
    fn quote(field: &str) -> String {
        if field.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", field.replace('"', "\"\""))
        } else {
            field.to_owned()
        }
    }
    let mut out = CSV_HEADER.join(",");
    out.push('\n');
    for r in records(results) {
        let fields = [
            r.workload.to_owned(),
            r.map.to_owned(),
            r.role.to_owned(),
            r.threads.to_string(),
            opt(r.mops),
            opt(r.spread_percent),
            opt(r.p50_ns),
            opt(r.p99_ns),
            opt(r.p999_ns),
            opt(r.bytes_per_entry),
            r.prefill_entries.to_string(),
            opt(r.ratio_to_best_peer),
            opt(r.percent_of_limit),
            opt(r.contention.map(|c| c.contended_percent)),
            opt(r.contention.map(|c| c.wait_percent)),
            r.mops_samples
                .iter()
                .map(f64::to_string)
                .collect::<Vec<_>>()
                .join(";"),
            r.failure.unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| quote(f)).collect();
        let _ = writeln!(out, "{}", line.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::adapter::MapKind;
    use crate::bench::workload::Workload;
    use hdrhistogram::Histogram;

    fn result(map: MapKind, threads: usize, mops: f64) -> BenchResult {
        let mut latency = Histogram::new(3).unwrap();
        latency.record(100).unwrap();
        BenchResult {
            workload: Workload::by_name("exchange").unwrap(),
            map,
            threads,
            mops_samples: vec![mops],
            sample_rounds: vec![0],
            latency,
            prefill_entries: 786_432,
            bytes_per_entry: Some(24.5),
            contention_samples: Vec::new(),
            failure: None,
            transfer_ns: None,
            sample_transfers: Vec::new(),
            extra_samples: 0,
            state_changed: false,
        }
    }

    #[test]
    fn json_and_csv_carry_every_cell() {
        let mut failed = result(MapKind::Sharded, 2, 1.0);
        failed.failure = Some("boom, \"quoted\"\nline two".to_owned());
        failed.contention_samples.push(Contention {
            contended_percent: 1.5,
            wait_percent: 0.25,
        });
        let results = vec![
            result(MapKind::Calibration, 2, 80.0),
            result(MapKind::Dashmap, 2, 20.0),
            failed,
        ];
        let csv = to_csv(&results);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER.join(","));
        assert!(
            lines[1].starts_with("exchange,calibration,reference,2,80,"),
            "{csv}"
        );
        assert!(lines[2].starts_with("exchange,dashmap,peer,2,20,"), "{csv}");
        // A failed cell: no figures, but its contention and failure.
        assert!(lines[3].starts_with("exchange,sharded,ours,2,,,"), "{csv}");
        // The failure is one quoted field holding the newline.
        assert!(
            csv.contains("1.5,0.25,1,\"boom, \"\"quoted\"\"\nline two\""),
            "{csv}"
        );

        let info = RunInfo {
            version: "0",
            workloads: vec!["exchange"],
            maps: vec!["sharded", "dashmap"],
            threads: vec![2],
            ops_per_thread: 10,
            duration_secs: None,
            repeat: 1,
            warm_up_ms: 0,
            seed: 1,
            mapguard_stats: true,
            elapsed_secs: 0.5,
            clock_overhead_ns: 20,
            other_processes_cpu_percent: None,
            available_parallelism: 2,
            smoke_run: false,
            transfer: TransferLog::default(),
            transfer_changed: false,
        };
        let json: serde_json::Value = serde_json::from_str(&to_json(info, &results)).unwrap();
        let rows = json["results"].as_array().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1]["map"], "dashmap");
        assert_eq!(rows[1]["percent_of_limit"], 25.0);
        assert_eq!(rows[2]["mops"], serde_json::Value::Null);
        assert_eq!(rows[2]["contention"]["wait_percent"], 0.25);
        assert_eq!(json["run"]["threads"][0], 2);
    }
}
