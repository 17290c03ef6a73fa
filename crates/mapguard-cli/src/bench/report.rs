//! Turning results into the comparisons the product brief asks for (ratio to the best peer,
//! share of the measured limit) and into tables. Only same-run ratios mean anything: absolute
//! figures drift by 2× between runs on the reference machines.

use comfy_table::{CellAlignment, Table, presets};

use super::adapter::{MapKind, MapRole};
use super::noise::TransferLog;
use super::run::BenchResult;
use super::workload::Workload;

/// A result with the comparisons derived from the other results of the same run.
#[derive(Clone, Debug)]
pub struct Row<'a> {
    /// The measured cell.
    pub result: &'a BenchResult,
    /// Throughput over the best peer's at the same workload and thread count.
    pub ratio_to_best_peer: Option<f64>,
    /// Throughput as a percentage of the limit measured at the same workload and thread
    /// count ([`limit_mops`]).
    pub percent_of_limit: Option<f64>,
    /// Whether this is the fastest map of its workload and thread count, the baseline and
    /// the reference left out (marked `*` in the tables).
    pub fastest: bool,
}

/// The best peer throughput (Mops/s) at `workload` and `threads`.
pub fn best_peer_mops(results: &[BenchResult], workload: &str, threads: usize) -> Option<f64> {
    results
        .iter()
        .filter(|r| r.workload.name == workload && r.threads == threads)
        .filter(|r| r.map.role() == MapRole::Peer && !r.failed())
        .map(BenchResult::mops)
        .max_by(f64::total_cmp)
}

/// The reference that measures the limit of `workload`: on a read-only mix every thread
/// reading one shared immutable hashbrown table (what the machine's reads allow), on a mix
/// with writes the calibration map (what its writes allow: one atomic access per write).
pub fn limit_reference(workload: &Workload) -> MapKind {
    if workload.is_read_only() {
        MapKind::Hashbrown
    } else {
        MapKind::Calibration
    }
}

/// The limit of `workload` at `threads` in this run: the throughput of its
/// [`limit_reference`] measured at the same thread count (Mops/s), if it ran and did not fail.
pub fn limit_mops(results: &[BenchResult], workload: &Workload, threads: usize) -> Option<f64> {
    let reference = limit_reference(workload);
    results
        .iter()
        .find(|r| r.workload.name == workload.name && r.map == reference && r.threads == threads)
        .filter(|r| !r.failed())
        .map(BenchResult::mops)
}

/// Every result with its comparisons, in run order.
pub fn rows(results: &[BenchResult]) -> Vec<Row<'_>> {
    results
        .iter()
        .map(|result| {
            let mops = result.mops();
            let best = best_peer_mops(results, result.workload.name, result.threads);
            let limit = limit_mops(results, result.workload, result.threads);
            let ok = !result.failed();
            let contender = |r: &BenchResult| matches!(r.map.role(), MapRole::Ours | MapRole::Peer);
            let fastest = ok
                && contender(result)
                && results
                    .iter()
                    .filter(|r| r.workload.name == result.workload.name)
                    .filter(|r| r.threads == result.threads && contender(r) && !r.failed())
                    .all(|r| r.mops() <= mops);
            Row {
                result,
                fastest,
                ratio_to_best_peer: best.filter(|b| ok && *b > 0.0).map(|b| mops / b),
                percent_of_limit: limit.filter(|l| ok && *l > 0.0).map(|l| 100.0 * mops / l),
            }
        })
        .collect()
}

/// [`rows`] in reading order: by workload (in the order of [`WORKLOADS`]), then thread count,
/// keeping run order within a group.
///
/// [`WORKLOADS`]: super::workload::WORKLOADS
pub fn sorted_rows(results: &[BenchResult]) -> Vec<Row<'_>> {
    let mut rows = rows(results);
    rows.sort_by_key(|r| {
        let w = super::workload::WORKLOADS
            .iter()
            .position(|w| w.name == r.result.workload.name);
        (w, r.result.threads)
    });
    rows
}

/// The map's name as the tables print it: mapguard's maps marked "(ours)", the baseline
/// "(unsync)", the calibration reference "(ref)".
pub fn display_name(map: MapKind) -> String {
    match map.role() {
        MapRole::Ours => format!("{map} (ours)"),
        MapRole::Baseline => format!("{map} (unsync)"),
        MapRole::Reference => format!("{map} (ref)"),
        MapRole::Peer => map.to_string(),
    }
}

/// One line of the verdict: mapguard's fastest map of a workload and thread count against the
/// fastest peer.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The workload.
    pub workload: &'static str,
    /// Worker threads.
    pub threads: usize,
    /// mapguard's fastest map here and its Mops/s.
    pub ours: (MapKind, f64),
    /// The fastest peer here and its Mops/s.
    pub peer: (MapKind, f64),
    /// Whether either cell is noisy, or their ratio moved from round to round
    /// ([`pair_is_noisy`](super::run::pair_is_noisy)).
    pub noisy: bool,
    /// The core-to-core round trip of the state our cell ran in
    /// ([`BenchResult::transfer_ns`]), ns.
    pub transfer_ns: Option<f64>,
}

impl Verdict {
    /// Ours over the best peer.
    pub fn ratio(&self) -> f64 {
        self.ours.1 / self.peer.1
    }

    /// Whether ours is ahead (at least level).
    pub fn ahead(&self) -> bool {
        self.ratio() >= 1.0
    }
}

/// The verdict of every workload and thread count where both one of mapguard's maps and a
/// peer ran without failing, in reading order.
///
/// # Examples
/// ```
/// let verdicts = mapguard_cli::bench::report::verdicts(&[]);
/// assert!(verdicts.is_empty());
/// ```
pub fn verdicts(results: &[BenchResult]) -> Vec<Verdict> {
    let mut groups: Vec<(&'static str, usize)> = Vec::new();
    for row in sorted_rows(results) {
        let key = (row.result.workload.name, row.result.threads);
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    groups
        .into_iter()
        .filter_map(|(workload, threads)| {
            let best = |role: MapRole| {
                results
                    .iter()
                    .filter(|r| r.workload.name == workload && r.threads == threads)
                    .filter(|r| r.map.role() == role && !r.failed())
                    .max_by(|a, b| a.mops().total_cmp(&b.mops()))
            };
            let (ours, peer) = (best(MapRole::Ours)?, best(MapRole::Peer)?);
            let noisy = super::run::pair_is_noisy(ours, peer);
            Some(Verdict {
                workload,
                threads,
                ours: (ours.map, ours.mops()),
                peer: (peer.map, peer.mops()),
                noisy,
                transfer_ns: ours.transfer_ns,
            })
        })
        .collect()
}

/// The verdict as a table: one line per workload and thread count, with the machine state
/// each ran in when the run saw two (`transfer`).
pub fn verdict_table(verdicts: &[Verdict], transfer: &TransferLog) -> Table {
    let states = transfer.changed();
    let mut header = vec![
        "workload",
        "threads",
        "ours (Mops/s)",
        "best peer (Mops/s)",
        "ours ÷ peer",
        "verdict",
    ];
    if states {
        header.push("transfers");
    }
    let mut table = table_with_header(&header, 1);
    for v in verdicts {
        let mut row = vec![
            v.workload.to_owned(),
            v.threads.to_string(),
            format!("{} {:.1}", v.ours.0, v.ours.1),
            format!("{} {:.1}", v.peer.0, v.peer.1),
            format!("{:.2}x", v.ratio()),
            format!(
                "{}{}",
                if v.ahead() { "ahead" } else { "behind" },
                if v.noisy { " (noisy)" } else { "" }
            ),
        ];
        if states {
            let state = v.transfer_ns.and_then(|ns| transfer.state_of(ns));
            row.push(state.unwrap_or("-").to_owned());
        }
        table.add_row(row);
    }
    table
}

/// The first line of a failure, cut to `max` characters, for table cells.
pub fn short_failure(why: &str, max: usize) -> String {
    let line = why.lines().next().unwrap_or("");
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// One table line's cells, as text: the stdout table and the HTML report print the same.
pub fn row_cells(row: &Row<'_>) -> Vec<String> {
    let r = row.result;
    let mut cells = vec![
        r.workload.name.to_owned(),
        display_name(r.map),
        r.threads.to_string(),
    ];
    if let Some(why) = &r.failure {
        cells.push("FAILED".to_owned());
        cells.push(short_failure(why, 60));
        cells.extend(std::iter::repeat_n(
            String::new(),
            THROUGHPUT_HEADER.len() - 5,
        ));
        return cells;
    }
    cells.extend([
        format!("{:.1}{}", r.mops(), if row.fastest { " *" } else { "" }),
        if r.mops_samples.len() < 2 {
            // One sample has no spread to show.
            "-".to_owned()
        } else {
            format!(
                "{:.0} %{}",
                r.spread_percent(),
                if r.is_noisy() { " !" } else { "" }
            )
        },
        latency_text(r.latency_ns(0.5)),
        latency_text(r.latency_ns(0.99)),
        latency_text(r.latency_ns(0.999)),
        or_dash(r.bytes_per_entry.map(|b| format!("{b:.1}"))),
        or_dash(row.ratio_to_best_peer.map(|x| format!("{x:.2}x"))),
        or_dash(row.percent_of_limit.map(|x| format!("{x:.0} %"))),
        or_dash(
            r.contention()
                .map(|c| format!("{:.1} % wait", c.wait_percent)),
        ),
    ]);
    cells
}

/// A latency in ns as the tables print it: in µs from 10,000 ns on.
///
/// # Examples
/// ```
/// use mapguard_cli::bench::report::latency_text;
/// assert_eq!(latency_text(9_999), "9999");
/// assert_eq!(latency_text(12_345), "12.3µs");
/// ```
pub fn latency_text(ns: u64) -> String {
    if ns >= 10_000 {
        format!("{:.1}µs", ns as f64 / 1000.0)
    } else {
        ns.to_string()
    }
}

/// The columns of the main table (latencies in ns, or µs where marked).
pub const THROUGHPUT_HEADER: [&str; 12] = [
    "workload",
    "map",
    "thr",
    "Mops/s",
    "spread",
    "p50",
    "p99",
    "p99.9",
    "B/entry",
    "vs peer",
    "% limit",
    "lock wait",
];

/// The index of the `lock wait` column, shown only when some cell has the figure.
const CONTENTION_COLUMN: usize = 11;

/// The columns of [`THROUGHPUT_HEADER`] worth showing for `results`: every one but the
/// lock-wait column when no cell has contention figures (a run without `--stats`).
pub fn shown_columns(results: &[BenchResult]) -> Vec<usize> {
    let contention = results.iter().any(|r| r.contention().is_some());
    (0..THROUGHPUT_HEADER.len())
        .filter(|&i| contention || i != CONTENTION_COLUMN)
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
    let shown = shown_columns(results);
    let header: Vec<&str> = shown.iter().map(|&i| THROUGHPUT_HEADER[i]).collect();
    let mut table = table_with_header(&header, 2);
    for row in sorted_rows(results) {
        let cells = row_cells(&row);
        table.add_row(shown.iter().map(|&i| cells[i].clone()).collect::<Vec<_>>());
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
            sample_rounds: vec![0, 1, 2],
            latency: Histogram::new(3).unwrap(),
            prefill_entries: 10_000,
            bytes_per_entry: Some(40.0),
            contention_samples: Vec::new(),
            failure: None,
            transfer_ns: None,
            sample_transfers: Vec::new(),
            extra_samples: 0,
            state_changed: false,
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
            result("seed95", MapKind::Calibration, 2, 200.0),
            result("read100", MapKind::Calibration, 2, 9_999.0),
            result("read100", MapKind::Hashbrown, 2, 1_998.0),
        ];
        assert_eq!(best_peer_mops(&results, "seed95", 2), Some(75.0));
        let [seed95, read100] = ["seed95", "read100"].map(|w| Workload::by_name(w).unwrap());
        // A mix with writes is measured against the calibration map at the same thread
        // count, a read-only one against hashbrown's shared table.
        assert_eq!(limit_mops(&results, seed95, 2), Some(200.0));
        assert_eq!(limit_mops(&results, seed95, 1), None);
        assert_eq!(limit_mops(&results, read100, 2), Some(1_998.0));
        let rows = rows(&results);
        assert_eq!(rows[1].ratio_to_best_peer, Some(2.0));
        assert_eq!(rows[1].percent_of_limit, Some(75.0));
        assert_eq!(rows[2].ratio_to_best_peer, Some(0.8));
        assert_eq!(rows[4].percent_of_limit, None);
        assert_eq!(rows[5].percent_of_limit, Some(50.0));
        // The fastest map of each group, the references left out.
        let fastest: Vec<(MapKind, usize, &str)> = rows
            .iter()
            .filter(|r| r.fastest)
            .map(|r| (r.result.map, r.result.threads, r.result.workload.name))
            .collect();
        assert_eq!(
            fastest,
            [
                (MapKind::Sharded, 2, "seed95"),
                (MapKind::Scc, 1, "seed95"),
                (MapKind::Scc, 2, "read100")
            ]
        );
    }

    #[test]
    fn failed_cells_are_shown_and_left_out_of_comparisons() {
        let mut failed = result("seed95", MapKind::Scc, 2, 999.0);
        failed.failure = Some("scc: adapter bug\nsecond line".to_owned());
        let results = vec![
            result("seed95", MapKind::Hashbrown, 1, 100.0),
            result("seed95", MapKind::Dashmap, 2, 50.0),
            failed,
        ];
        assert_eq!(best_peer_mops(&results, "seed95", 2), Some(50.0));
        let rows = rows(&results);
        assert_eq!(rows[2].ratio_to_best_peer, None);
        assert_eq!(rows[2].percent_of_limit, None);
        let text = throughput_table(&results).to_string();
        let line = text.lines().find(|l| l.contains("scc")).unwrap();
        assert!(
            line.contains("FAILED") && line.contains("scc: adapter bug"),
            "{text}"
        );
        assert!(!text.contains("second line"), "{text}");
    }

    #[test]
    fn tables_render_every_cell() {
        let results = vec![
            result("seed95", MapKind::Calibration, 2, 200.0),
            result("seed95", MapKind::Sharded, 2, 150.0),
        ];
        let text = throughput_table(&results).to_string();
        assert!(text.contains("sharded (ours)"), "{text}");
        assert!(text.contains("75 %"), "{text}");
        assert!(
            text.contains("150.0 *"),
            "the fastest map is marked: {text}"
        );
        assert!(
            !text.contains("200.0 *"),
            "the reference is not a contender: {text}"
        );
        assert!(text.contains("40.0"), "{text}");
        let memory = memory_table(&results).to_string();
        assert!(memory.contains("40.0"), "{memory}");
    }
}
