//! The `--report DIR` page: `index.html` (inline CSS, relative links only, so the directory
//! can be moved or attached as is) showing the charts of [`charts`](super::charts) above the
//! full table, plus `results.json` and `results.csv` beside it.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use super::adapter::MapRole;
use super::charts::{Chart, all_charts};
use super::export::{RunInfo, to_csv, to_json};
use super::report::{THROUGHPUT_HEADER, row_cells, shown_columns, sorted_rows, verdicts};
use super::run::BenchResult;

/// The report directory used when `--report` is not given.
pub const DEFAULT_REPORT_DIR: &str = "mapguard-report";

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #282828;
       margin: 24px auto; max-width: 1400px; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.meta { color: #555; margin-top: 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(640px, 1fr)); gap: 12px; }
figure { margin: 0; border: 1px solid #e4e4e4; border-radius: 6px; padding: 4px; background: #fff; }
figure img { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 9px; border-bottom: 1px solid #eee; white-space: nowrap; }
th { background: #f4f4f4; position: sticky; top: 0; text-align: right; }
th.l, td.l { text-align: left; }
td { text-align: right; }
tr.group td { border-top: 2px solid #ccc; }
tr.ours td { background: #fff4f2; font-weight: 600; }
tr.baseline td { color: #777; }
td.best { outline: 2px solid #2a7d2a; outline-offset: -2px; }
tr.failed td { background: #fde8e8; color: #a00; }
p.smoke { background: #fff3cd; border: 1px solid #e0c060; padding: 8px 12px; font-weight: 600; }
table.verdict td.ahead { background: #e3f4e1; color: #1d6b19; font-weight: 600; }
table.verdict td.behind { background: #fbe3e1; color: #a3221a; font-weight: 600; }
dl { font-size: 14px; } dt { font-weight: 600; margin-top: 6px; } dd { margin-left: 16px; color: #444; }
";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The verdict grid, first on the page: per workload and thread count, mapguard's fastest map
/// against the fastest peer, green where ours is ahead and red where it is behind.
fn verdict_html(html: &mut String, results: &[BenchResult]) {
    let verdicts = verdicts(results);
    if verdicts.is_empty() {
        return;
    }
    let ahead = verdicts.iter().filter(|v| v.ahead()).count();
    let _ = write!(
        html,
        "<h2>Verdict: ahead of the fastest peer in {ahead} of {} cells</h2>\n\
         <table class=\"verdict\">\n<thead><tr><th class=\"l\">workload</th><th>threads</th>\
         <th class=\"l\">ours</th><th>Mops/s</th><th class=\"l\">best peer</th><th>Mops/s</th>\
         <th>ours ÷ peer</th></tr></thead>\n<tbody>\n",
        verdicts.len()
    );
    for v in &verdicts {
        let class = if v.ahead() { "ahead" } else { "behind" };
        let noisy = if v.noisy { " (noisy)" } else { "" };
        let _ = writeln!(
            html,
            "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td>{:.1}</td>\
             <td class=\"l\">{}</td><td>{:.1}</td><td class=\"{class}\">{:.2}x{noisy}</td></tr>",
            escape(v.workload),
            v.threads,
            v.ours.0,
            v.ours.1,
            v.peer.0,
            v.peer.1,
            v.ratio(),
        );
    }
    html.push_str("</tbody>\n</table>\n");
}

/// The HTML page for `results`, referring to `charts` by file name.
pub fn index_html(info: &RunInfo, charts: &[Chart], results: &[BenchResult]) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>mapguard bench report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>mapguard bench</h1>\n"
    );
    if info.smoke_run {
        html.push_str(
            "<p class=\"smoke\">SMOKE RUN (--quick): seconds long, one short sample per cell; \
             check that everything runs, do not compare its figures.</p>\n",
        );
    }
    verdict_html(&mut html, results);
    let _ = write!(
        html,
        "<p class=\"meta\">mapguard {} · {} CPU(s) · threads {} · \
         {} sample(s) per cell · {} ops per thread · seed {} · {:.1} s",
        escape(info.version),
        info.available_parallelism,
        info.threads
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        info.repeat,
        info.ops_per_thread,
        info.seed,
        info.elapsed_secs,
    );
    if let Some(share) = info.other_processes_cpu_percent {
        let _ = write!(html, " · other processes used {share:.0} % of the CPU");
        if share > 10.0 {
            html.push_str(" (numbers unreliable)");
        }
    }
    if let Some(summary) = info.transfer.summary() {
        let _ = write!(html, ". {}", escape(summary.trim_end_matches('.')));
    }
    html.push_str(
        ". Only ratios within one run compare. Raw figures: \
         <a href=\"results.json\">results.json</a>, <a href=\"results.csv\">results.csv</a>.</p>\n",
    );
    html.push_str("<h2>Charts</h2>\n<div class=\"charts\">\n");
    for chart in charts {
        let _ = writeln!(
            html,
            "<figure><img src=\"{}\" alt=\"{}\"></figure>",
            escape(&chart.file),
            escape(&chart.title)
        );
    }
    html.push_str("</div>\n<h2>All cells</h2>\n<table>\n<thead><tr>");
    let shown = shown_columns(results);
    for (i, h) in THROUGHPUT_HEADER.iter().enumerate() {
        if !shown.contains(&i) {
            continue;
        }
        let class = if i < 2 { " class=\"l\"" } else { "" };
        let _ = write!(html, "<th{class}>{}</th>", escape(h));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    let mut previous = None;
    for row in sorted_rows(results) {
        let r = row.result;
        let mut classes = Vec::new();
        if previous != Some((r.workload.name, r.threads)) {
            classes.push("group");
        }
        previous = Some((r.workload.name, r.threads));
        match r.map.role() {
            MapRole::Ours => classes.push("ours"),
            MapRole::Baseline | MapRole::Reference => classes.push("baseline"),
            MapRole::Peer => {}
        }
        if r.failed() {
            classes.push("failed");
        }
        let _ = write!(html, "<tr class=\"{}\">", classes.join(" "));
        for (i, cell) in row_cells(&row).iter().enumerate() {
            if !shown.contains(&i) {
                continue;
            }
            let class = if i < 2 || (r.failed() && i == 4) {
                " class=\"l\""
            } else if i == 3 && row.fastest {
                " class=\"best\""
            } else {
                ""
            };
            let _ = write!(html, "<td{class}>{}</td>", escape(cell));
        }
        html.push_str("</tr>\n");
    }
    html.push_str(
        "</tbody>\n</table>\n<h2>Columns</h2>\n<dl>\n\
         <dt>Mops/s</dt><dd>million operations per second, all threads together; the median of \
         the samples. Framed and marked * : the fastest map of its workload and thread count \
         (the baseline and the reference left out).</dd>\n\
         <dt>spread</dt><dd>(max − min) / median of the samples: run-to-run noise.</dd>\n\
         <dt>p50 / p99 / p999 ns</dt><dd>latency of one operation in 128, timed alone; includes \
         the clock's own cost.</dd>\n\
         <dt>bytes/entry</dt><dd>bytes requested from the allocator to build and prefill the \
         map, per entry.</dd>\n\
         <dt>vs best peer</dt><dd>throughput over the best of dashmap, papaya, scc, rwlock-std \
         and mutex-std at the same workload and thread count.</dd>\n\
         <dt>% limit</dt><dd>throughput over that of the reference measured at the same \
         workload and thread count: on a read-only mix, every thread reading one shared \
         immutable hashbrown table; on a mix with writes, the calibration map (u64 words in \
         atomic slots: an overwrite is one atomic store, a removal a load and a swap, only a \
         key's first insert takes a lock).</dd>\n\
         <dt>contention</dt><dd>lock wait over the workers' time, from the map's own \
         statistics: only with <code>--stats</code>, which runs mapguard's maps instrumented \
         (ShardedMap, LockedMap and ReadMostlyMap report it; \"-\" for the peers).</dd>\n\
         </dl>\n</body>\n</html>\n",
    );
    html
}

/// Writes the charts, `index.html`, `results.json` and `results.csv` into `dir` (created if
/// missing) and returns the path of `index.html`.
pub fn write_report(dir: &Path, info: RunInfo, results: &[BenchResult]) -> anyhow::Result<PathBuf> {
    use anyhow::Context as _;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let charts = all_charts(results).map_err(|e| anyhow::anyhow!("drawing a chart: {e}"))?;
    for chart in &charts {
        let path = dir.join(&chart.file);
        fs::write(&path, &chart.svg).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let index = dir.join("index.html");
    fs::write(&index, index_html(&info, &charts, results))
        .with_context(|| format!("cannot write {}", index.display()))?;
    let json = dir.join("results.json");
    fs::write(&json, to_json(info, results))
        .with_context(|| format!("cannot write {}", json.display()))?;
    let csv = dir.join("results.csv");
    fs::write(&csv, to_csv(results)).with_context(|| format!("cannot write {}", csv.display()))?;
    Ok(index)
}
