//! Turning results into the comparisons the product brief asks for (ratio to the best peer,
//! share of the two-core limit) and into tables. Only same-run ratios mean anything: absolute
//! figures drift by 2× between runs on the reference machines.

use comfy_table::{CellAlignment, Table, presets};

use super::adapter::{MapKind, MapRole};
use super::run::BenchResult;

/// A result with the comparisons derived from the other results of the same run.
#[derive(Clone, Debug)]
pub struct Row<'a> {
    /// The measured cell.
    pub result: &'a BenchResult,
    /// Throughput over the best peer's at the same workload and thread count.
    pub ratio_to_best_peer: Option<f64>,
    /// Throughput as a percentage of the workload's two-core limit.
    pub percent_of_limit: Option<f64>,
}

/// The best peer throughput (Mops/s) at `workload` and `threads`.
pub fn best_peer_mops(results: &[BenchResult], workload: &str, threads: usize) -> Option<f64> {
    results
        .iter()
        .filter(|r| r.workload.name == workload && r.threads == threads)
        .filter(|r| r.map.role() == MapRole::Peer)
        .map(BenchResult::mops)
        .max_by(f64::total_cmp)
}

/// The two-core limit of `workload` in this run: twice the single-thread throughput of the
/// unsynchronized hashbrown baseline (Mops/s).
pub fn two_core_limit_mops(results: &[BenchResult], workload: &str) -> Option<f64> {
    results
        .iter()
        .find(|r| r.workload.name == workload && r.map == MapKind::Hashbrown && r.threads == 1)
        .map(|r| 2.0 * r.mops())
}

/// Every result with its comparisons, in run order.
pub fn rows(results: &[BenchResult]) -> Vec<Row<'_>> {
    results
        .iter()
        .map(|result| {
            let mops = result.mops();
            let best = best_peer_mops(results, result.workload.name, result.threads);
            let limit = two_core_limit_mops(results, result.workload.name);
            Row {
                result,
                ratio_to_best_peer: best.filter(|b| *b > 0.0).map(|b| mops / b),
                percent_of_limit: limit.filter(|l| *l > 0.0).map(|l| 100.0 * mops / l),
            }
        })
        .collect()
}

fn table_with_header(header: &[&str], right_from: usize) -> Table {
    let mut table = Table::new();
    table.load_style(presets::ASCII_MARKDOWN);
    table.set_header(header.to_vec());
    for i in right_from..header.len() {
        table
            .column_mut(i)
            .expect("column exists")
            .set_cell_alignment(CellAlignment::Right);
    }
    table
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_owned())
}

/// The main table: one line per cell, grouped by workload, then thread count.
pub fn throughput_table(results: &[BenchResult]) -> Table {
    let mut table = table_with_header(
        &[
            "workload",
            "map",
            "threads",
            "Mops/s",
            "spread",
            "p50 ns",
            "p99 ns",
            "p999 ns",
            "vs best peer",
            "% 2-core limit",
        ],
        2,
    );
    let mut rows = rows(results);
    // Stable: run order is kept within a (workload, threads) group.
    rows.sort_by_key(|r| {
        let w = super::workload::WORKLOADS
            .iter()
            .position(|w| w.name == r.result.workload.name);
        (w, r.result.threads)
    });
    for row in rows {
        let r = row.result;
        let name = match r.map.role() {
            MapRole::Ours => format!("{} (ours)", r.map),
            MapRole::Baseline => format!("{} (unsync)", r.map),
            MapRole::Peer => r.map.to_string(),
        };
        table.add_row(vec![
            r.workload.name.to_owned(),
            name,
            r.threads.to_string(),
            format!("{:.1}", r.mops()),
            format!("{:.0} %", r.spread_percent()),
            r.latency_ns(0.5).to_string(),
            r.latency_ns(0.99).to_string(),
            r.latency_ns(0.999).to_string(),
            or_dash(row.ratio_to_best_peer.map(|x| format!("{x:.2}x"))),
            or_dash(row.percent_of_limit.map(|x| format!("{x:.0} %"))),
        ]);
    }
    table
}

/// Bytes per entry after prefill: one line per map, one column per distinct prefill size.
pub fn memory_table(results: &[BenchResult]) -> Table {
    let mut sizes: Vec<(usize, &str)> = Vec::new();
    for r in results.iter().filter(|r| r.bytes_per_entry.is_some()) {
        if !sizes.iter().any(|(n, _)| *n == r.prefill_entries) {
            sizes.push((r.prefill_entries, r.workload.name));
        }
    }
    sizes.sort();
    let mut header = vec!["bytes/entry after prefill (requested)".to_owned()];
    header.extend(sizes.iter().map(|(n, w)| format!("{n} entries ({w})")));
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut table = table_with_header(&header_refs, 1);
    for map in MapKind::ALL {
        let cells: Vec<String> = sizes
            .iter()
            .map(|(n, _)| {
                results
                    .iter()
                    .find(|r| r.map == map && r.prefill_entries == *n)
                    .and_then(|r| r.bytes_per_entry)
                    .map(|b| format!("{b:.1}"))
            })
            .map(or_dash)
            .collect();
        if cells.iter().all(|c| c == "-") {
            continue;
        }
        let mut line = vec![map.to_string()];
        line.extend(cells);
        table.add_row(line);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::workload::Workload;
    use hdrhistogram::Histogram;

    fn result(workload: &str, map: MapKind, threads: usize, mops: f64) -> BenchResult {
        BenchResult {
            workload: Workload::by_name(workload).unwrap(),
            map,
            threads,
            mops_samples: vec![mops * 2.0, mops, mops / 2.0],
            latency: Histogram::new(3).unwrap(),
            prefill_entries: 10_000,
            bytes_per_entry: Some(40.0),
        }
    }

    #[test]
    fn ratios_use_same_workload_and_threads_and_only_peers() {
        let results = vec![
            result("seed95", MapKind::Hashbrown, 1, 100.0),
            result("seed95", MapKind::Sharded, 2, 150.0),
            result("seed95", MapKind::Dashmap, 2, 60.0),
            result("seed95", MapKind::Scc, 2, 75.0),
            result("seed95", MapKind::Scc, 1, 999.0),
            result("read100", MapKind::Scc, 2, 999.0),
        ];
        assert_eq!(best_peer_mops(&results, "seed95", 2), Some(75.0));
        assert_eq!(two_core_limit_mops(&results, "seed95"), Some(200.0));
        assert_eq!(two_core_limit_mops(&results, "read100"), None);
        let rows = rows(&results);
        assert_eq!(rows[1].ratio_to_best_peer, Some(2.0));
        assert_eq!(rows[1].percent_of_limit, Some(75.0));
        assert_eq!(rows[2].ratio_to_best_peer, Some(0.8));
        assert_eq!(rows[5].percent_of_limit, None);
    }

    #[test]
    fn tables_render_every_cell() {
        let results = vec![
            result("seed95", MapKind::Hashbrown, 1, 100.0),
            result("seed95", MapKind::Sharded, 2, 150.0),
        ];
        let text = throughput_table(&results).to_string();
        assert!(text.contains("sharded (ours)"), "{text}");
        assert!(text.contains("75 %"), "{text}");
        let memory = memory_table(&results).to_string();
        assert!(memory.contains("40.0"), "{memory}");
    }
}
