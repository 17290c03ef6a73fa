//! The `mapguard` binary as a user runs it: exit codes, the one-line errors, the files of a
//! quick bench, and each demo ending with its diagnosis.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mapguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mapguard"))
        .args(args)
        .output()
        .expect("the mapguard binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_bad_input(args: &[&str], expected: &[&str]) {
    let out = mapguard(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(
        err.lines().count(),
        1,
        "{args:?} printed more than one line: {err}"
    );
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    for needle in expected {
        assert!(err.contains(needle), "{args:?}: `{err}` lacks `{needle}`");
    }
}

#[test]
fn unknown_names_exit_2_with_the_valid_names() {
    assert_bad_input(
        &["bench", "--workloads", "seed95,readmostly"],
        &[
            "unknown workload `readmostly`",
            "seed95, seed99, read100",
            "hot-keys",
        ],
    );
    assert_bad_input(
        &["bench", "--maps", "dashmap,flurry"],
        &[
            "unknown map `flurry`",
            "sharded, read-mostly, locked, dashmap, papaya, scc, rwlock-std",
        ],
    );
}

#[test]
fn bad_values_exit_2_on_one_line() {
    assert_bad_input(
        &["bench", "--threads", "1,0"],
        &["thread count 0", "--threads"],
    );
    assert_bad_input(&["bench", "--threads", "two"], &["--threads", "two"]);
    assert_bad_input(&["bench", "--ops", "0"], &["--ops"]);
    assert_bad_input(&["bench", "--repeat", "0"], &["--repeat"]);
    assert_bad_input(&["bench", "--duration", "0"], &["--duration"]);
    assert_bad_input(&["bench", "--ops", "lots"], &["--ops", "lots"]);
    assert_bad_input(&["bench", "--repeat", "-1"], &["--repeat"]);
    assert_bad_input(&["bench", "--quick", "--threads", "0"], &["thread count 0"]);
    assert_bad_input(
        &["bench", "--report", "x", "--no-report"],
        &["--no-report", "--report"],
    );
    assert_bad_input(&["bench", "--frobnicate"], &["--frobnicate"]);
    assert_bad_input(&["benchmark"], &["benchmark"]);
}

/// Flags of a bench run of a fraction of a second, for the flags `args` does not give.
const SMALL_RUN: [(&str, &str); 8] = [
    ("--workloads", "read100"),
    ("--maps", "dashmap"),
    ("--threads", "1"),
    ("--ops", "1000"),
    ("--repeat", "1"),
    ("--min-time-ms", "0"),
    ("--warm-up-ms", "0"),
    ("--no-report", ""),
];

/// Runs `mapguard bench <args>` (completed from [`SMALL_RUN`], so that only `args` can make
/// the run long or large) and checks that it is refused before any work: exit 2 within a few
/// seconds, one `error:` line naming each of `expected` on stderr (so no progress line), and
/// nothing on stdout (so no table). Returns what was wrong instead of panicking, so that one
/// test reports every case.
fn refused_before_work(args: &[&str], expected: &[&str]) -> Result<(), String> {
    let mut full = vec!["bench"];
    full.extend_from_slice(args);
    for (flag, value) in SMALL_RUN {
        let given = args.contains(&flag) || (flag == "--no-report" && args.contains(&"--report"));
        if !given {
            full.push(flag);
            full.extend((!value.is_empty()).then_some(value));
        }
    }
    let limit = Duration::from_secs(10);
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mapguard"))
        .args(&full)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mapguard binary runs");
    while child.try_wait().expect("wait for mapguard").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            return Err(format!(
                "{args:?} still ran after {limit:?}: {}",
                gist(&stderr(&out))
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    if out.status.code() != Some(2) {
        return Err(format!("{args:?} exited {:?}: {}", out.status, gist(&err)));
    }
    if err.lines().count() != 1 || !err.starts_with("error: ") {
        return Err(format!("{args:?} did not print one error line:\n{err}"));
    }
    if !out.stdout.is_empty() {
        return Err(format!("{args:?} printed to stdout"));
    }
    match expected.iter().find(|needle| !err.contains(*needle)) {
        Some(needle) => Err(format!("{args:?}: `{}` lacks `{needle}`", err.trim_end())),
        None => Ok(()),
    }
}

/// The telling lines of a failed run's stderr: a panic's message, or the first and the last
/// line (the first progress line, the error at the end).
fn gist(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let shown = match lines.iter().position(|l| l.contains("panicked at")) {
        Some(i) => lines[i..].iter().take(2).copied().collect(),
        None if lines.len() > 1 => vec![lines[0], lines[lines.len() - 1]],
        None => lines,
    };
    shown.join(" | ")
}

/// Checks every case with [`refused_before_work`] and fails with all that went wrong.
#[track_caller]
fn assert_all_refused_before_work(cases: &[(&[&str], &[&str])]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(args, expected)| refused_before_work(args, expected).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases not refused before work:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Values that parse but would overflow, allocate tens of gigabytes, or run for hours are
/// refused, each naming the flag, the value and the limit.
#[test]
fn numeric_flags_beyond_their_bounds_are_refused_before_any_work() {
    let max = u64::MAX.to_string();
    let max = max.as_str();
    assert_all_refused_before_work(&[
        (&["--ops", max], &["--ops", max, "10000000"]),
        (&["--ops", "4000000000"], &["--ops 4000000000", "10000000"]),
        (&["--ops", "10000001"], &["--ops 10000001", "10000000"]),
        // Every thread of the largest count gets its own plan.
        (
            &["--ops", "10000000", "--threads", "1,8"],
            &["--ops", "--threads", "64000000"],
        ),
        (&["--min-time-ms", max], &["--min-time-ms", max, "3600000"]),
        (&["--min-time-ms", "3600001"], &["--min-time-ms", "3600000"]),
        (&["--warm-up-ms", max], &["--warm-up-ms", max, "3600000"]),
        (&["--warm-up-ms", "3600001"], &["--warm-up-ms", "3600000"]),
        (&["--duration", "3601"], &["--duration 3601", "3600"]),
        (&["--duration", "1e30"], &["--duration", "3600"]),
        (&["--repeat", max], &["--repeat", max, "100"]),
        (&["--repeat", "101"], &["--repeat 101", "100"]),
    ]);
}

/// Output paths that cannot be written are refused before the run, not after it.
#[test]
fn unusable_output_paths_are_refused_before_any_work() {
    let dir = temp_dir("outputs");
    let file = dir.join("a-file");
    fs::write(&file, "").unwrap();
    let d = dir.to_str().unwrap();
    let f = file.to_str().unwrap();
    let missing = dir.join("missing").join("out.json");
    let missing = missing.to_str().unwrap();
    let under_file = file.join("report");
    let under_file = under_file.to_str().unwrap();
    assert_all_refused_before_work(&[
        (&["--json", d], &["--json", d, "directory"]),
        (&["--csv", d], &["--csv", d, "directory"]),
        (&["--json", missing], &["--json", missing]),
        (&["--report", under_file], &["--report", under_file]),
        (&["--report", f], &["--report", f]),
        #[cfg(target_os = "linux")]
        (&["--report", "/proc/nope"], &["--report", "/proc/nope"]),
        // A device that is always full refuses even an empty write.
        #[cfg(target_os = "linux")]
        (&["--json", "/dev/full"], &["--json", "/dev/full"]),
        #[cfg(target_os = "linux")]
        (&["--csv", "/dev/full"], &["--csv", "/dev/full"]),
    ]);
    // Nothing was written beside the file.
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["a-file"], "{names:?}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_small_bench_prints_the_table() {
    let out = mapguard(&[
        "bench",
        "--workloads",
        "read100,exchange",
        "--maps",
        "dashmap,sharded",
        "--threads",
        "2",
        "--ops",
        "2000",
        "--repeat",
        "1",
        "--no-report",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    for needle in [
        "Verdict: mapguard's fastest map is ahead",
        "ours ÷ peer",
        "vs peer",
        "% limit",
        // The maps asked for leave out the reference of exchange's limit: said, not hidden.
        "% limit is - on the mixes with writes",
        "B/entry",
        "sharded (ours)",
        "hashbrown (unsync)",
    ] {
        assert!(stdout.contains(needle), "no `{needle}` in:\n{stdout}");
    }
    assert!(!stdout.contains("Report with charts"), "{stdout}");
    // Two workloads × (the baseline at 1 thread + two maps at 2 threads), and on the
    // read-only read100 the baseline at 2 threads too (the shared-read limit): one sample
    // each, one progress line each (stderr is not a terminal here).
    assert_eq!(stderr(&out).lines().count(), 7, "{}", stderr(&out));
    // Only dashmap is a peer, so it is its own best peer.
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("dashmap") && l.contains("1.00x"))
    );
}

/// A fresh empty directory under the system's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mapguard-cli-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// The `src="..."` targets of `html`.
fn image_sources(html: &str) -> Vec<String> {
    html.split("src=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').expect("closing quote")].to_owned())
        .collect()
}

#[test]
fn quick_writes_json_csv_and_a_report_whose_charts_exist() {
    let dir = temp_dir("quick");
    let report = dir.join("report");
    let json = dir.join("out.json");
    let csv = dir.join("out.csv");
    let out = mapguard(&[
        "bench",
        "--quick",
        "--ops",
        "500",
        "--maps",
        "sharded,dashmap,mutex-std",
        "--report",
        report.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let doc: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&json).unwrap()).expect("valid JSON");
    let rows = doc["results"].as_array().expect("a results array");
    // 5 default workloads × (3 maps × threads 1,2 + the baseline).
    assert_eq!(rows.len(), 5 * (3 * 2 + 1), "{doc:#}");
    assert_eq!(doc["run"]["threads"], serde_json::json!([1, 2]));
    assert_eq!(doc["run"]["repeat"], 1);
    for row in rows {
        assert!(row["mops"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["failure"].is_null(), "{row}");
        // Without --stats every map runs uninstrumented: no contention figures.
        assert!(row["contention"].is_null(), "{row}");
    }
    assert_eq!(doc["run"]["mapguard_stats"], false);
    let workloads: Vec<&str> = rows
        .iter()
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    for w in [
        "seed95",
        "read-heavy",
        "exchange",
        "write-heavy",
        "rapid-grow",
    ] {
        assert!(workloads.contains(&w), "{w} missing");
    }
    let csv_text = fs::read_to_string(&csv).unwrap();
    assert_eq!(csv_text.lines().count(), rows.len() + 1, "{csv_text}");
    assert!(csv_text.starts_with("workload,map,role,threads,mops,"));

    let html = fs::read_to_string(report.join("index.html")).expect("index.html");
    let sources = image_sources(&html);
    // A throughput and a latency chart per workload.
    assert_eq!(sources.len(), 10, "{sources:?}");
    for src in &sources {
        assert!(
            !src.contains('/') && src.ends_with(".svg"),
            "not a relative SVG: {src}"
        );
        let svg = fs::read_to_string(report.join(src)).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{src}");
        assert!(
            svg.contains("dashmap"),
            "{src} has no legend or label for dashmap"
        );
    }
    assert!(html.contains("sharded (ours)") && html.contains("<style>"));
    assert!(report.join("results.json").exists() && report.join("results.csv").exists());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn unknown_demo_exits_2_on_one_line() {
    assert_bad_input(
        &["demo", "deadlock"],
        &[
            "unknown scenario `deadlock`",
            "self-deadlock, lock-order, cross-shard, contention, hot-keys",
        ],
    );
}

#[test]
fn demo_without_a_scenario_lists_them_one_per_line() {
    let out = mapguard(&["demo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    for (line, name) in lines[1..].iter().zip([
        "self-deadlock",
        "lock-order",
        "cross-shard",
        "contention",
        "hot-keys",
    ]) {
        assert!(line.trim_start().starts_with(name), "{stdout}");
    }
}

/// Runs a demo, killing it after `limit`; returns its output and how long it took.
fn demo(scenario: &str, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mapguard"))
        .args(["demo", scenario])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mapguard binary runs");
    while child.try_wait().expect("wait for the demo").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "`mapguard demo {scenario}` still ran after {limit:?}:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

#[track_caller]
fn assert_diagnosed(scenario: &str, limit: Duration, diagnosis: &[&str]) {
    let (out, took) = demo(scenario, limit);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{scenario} after {took:?}:\n{stdout}{}",
        stderr(&out)
    );
    for needle in diagnosis {
        assert!(stdout.contains(needle), "`{needle}` not in:\n{stdout}");
    }
    assert!(stdout.contains("Fix:"), "no fix in:\n{stdout}");
}

#[test]
fn self_deadlock_demo_prints_the_avoided_deadlock() {
    assert_diagnosed(
        "self-deadlock",
        Duration::from_secs(10),
        &[
            "mapguard: deadlock avoided:",
            "src/demo/self_deadlock.rs:",
            "taken at",
            "alice = Some(100)",
        ],
    );
}

#[test]
fn lock_order_demo_prints_lockdeps_report() {
    assert_diagnosed(
        "lock-order",
        Duration::from_secs(15),
        &[
            "lock-order inversion",
            "ledger.accounts",
            "ledger.audit_log",
            "src/demo/lock_order.rs:",
        ],
    );
}

/// The two threads really deadlock; ShardedMap's wait-for-graph detection breaks the cycle
/// with a "mapguard: deadlock detected:" panic (or, with mapguard's `lockdep` feature, lockdep
/// reports the shard-order inversion first). Within the demo's own 10 s deadline.
#[test]
fn cross_shard_demo_prints_the_detected_deadlock() {
    let (out, took) = demo("cross-shard", Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "after {took:?}:\n{stdout}");
    assert!(
        stdout.contains("mapguard: deadlock detected:") || stdout.contains("lock-order inversion"),
        "{stdout}"
    );
    assert!(stdout.contains("shard"), "{stdout}");
    assert!(stdout.contains("Fix:"), "{stdout}");
}

#[test]
fn bench_stats_fills_contention_for_mapguard_maps_only() {
    let dir = temp_dir("stats");
    let json = dir.join("out.json");
    let out = mapguard(&[
        "bench",
        "--quick",
        "--stats",
        "--workloads",
        "exchange",
        "--maps",
        "sharded,locked,read-mostly,dashmap",
        "--ops",
        "2000",
        "--no-report",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&json).unwrap()).expect("valid JSON");
    assert_eq!(doc["run"]["mapguard_stats"], true);
    let rows = doc["results"].as_array().expect("a results array");
    // sharded, locked, read-mostly, dashmap at threads 1 and 2, plus the baseline.
    assert_eq!(rows.len(), 9, "{doc:#}");
    for row in rows {
        let contention = &row["contention"];
        if ["sharded", "locked", "read-mostly"].contains(&row["map"].as_str().unwrap_or("")) {
            let contended = contention["contended_percent"].as_f64().expect("{row}");
            let wait = contention["wait_percent"].as_f64().expect("{row}");
            assert!((0.0..=100.0).contains(&contended), "{row}");
            assert!(wait >= 0.0, "{row}");
        } else {
            // Peers (and the baseline) keep no statistics.
            assert!(contention.is_null(), "{row}");
        }
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().filter(|l| l.contains("% wait")).count() >= 3,
        "{stdout}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn contention_demo_prints_lock_wait_before_and_after() {
    assert_diagnosed(
        "contention",
        Duration::from_secs(20),
        &[
            "LockedMap (one RwLock)",
            "ShardedMap, 1 shard (one lock)",
            "Diagnosis (from statistics, one lock ->",
            "lock wait:",
            "% of thread time ->",
            "contended acquisitions:",
        ],
    );
}

#[test]
fn hot_keys_demo_prints_top_keys_hit_rate_and_hottest_shard() {
    let (out, took) = demo("hot-keys", Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "after {took:?}:\n{stdout}");
    for needle in [
        "≈count",
        "±error",
        "true",
        "hit rate:",
        "hottest shard: #",
        "Fix:",
    ] {
        assert!(stdout.contains(needle), "`{needle}` not in:\n{stdout}");
    }
    // The hottest Zipf rank is key 0: it must head the statistics' list, and its estimate must
    // be within a quarter of the true count the demo kept.
    let first = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .expect("a first hot key");
    let cols: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(cols[1], "0", "{first}");
    let (estimate, truth): (f64, f64) = (cols[2].parse().unwrap(), cols[4].parse().unwrap());
    assert!((estimate / truth - 1.0).abs() < 0.25, "{first}");
}

#[test]
fn a_quick_run_says_it_is_a_smoke_run_everywhere() {
    let dir = temp_dir("smoke");
    let json = dir.join("run.json");
    let out = mapguard(&[
        "bench",
        "-q",
        "-w",
        "read100",
        "-m",
        "dashmap,sharded",
        "-t",
        "1",
        "-j",
        json.to_str().unwrap(),
        "--report",
        dir.join("report").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let banner = "SMOKE RUN (--quick)";
    assert!(stdout.starts_with(banner), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("do not compare its figures"),
        "{stdout}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&json).unwrap()).expect("valid JSON");
    assert_eq!(doc["run"]["smoke_run"], true, "{doc:#}");
    let html = fs::read_to_string(dir.join("report/index.html")).unwrap();
    assert!(html.contains(banner), "the report lacks the banner");
    let _ = fs::remove_dir_all(&dir);

    // A run without --quick says nothing of the kind.
    let out = mapguard(&[
        "bench",
        "-w",
        "read100",
        "-m",
        "dashmap",
        "-t",
        "1",
        "-n",
        "1000",
        "-r",
        "1",
        "--min-time-ms",
        "0",
        "--warm-up-ms",
        "0",
        "--no-report",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(banner));
}

#[test]
fn the_verdict_comes_before_the_full_table() {
    let out = mapguard(&[
        "bench",
        "-w",
        "seed95",
        "-m",
        "sharded,dashmap",
        "-t",
        "1,2",
        "-n",
        "2000",
        "-r",
        "1",
        "--min-time-ms",
        "0",
        "--warm-up-ms",
        "0",
        "--no-report",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdict = stdout.find("Verdict:").expect("a verdict");
    let table = stdout.find("| workload | map").expect("the full table");
    assert!(verdict < table, "{stdout}");
    // One verdict line per thread count, naming both maps.
    let lines: Vec<&str> = stdout[verdict..table]
        .lines()
        .filter(|l| l.starts_with("| seed95"))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("sharded") && l.contains("dashmap"))
    );
    assert!(
        lines
            .iter()
            .all(|l| l.contains("ahead") || l.contains("behind")),
        "{stdout}"
    );
    // Without --stats the lock-wait column is left out, and the table fits 120 columns.
    assert!(!stdout.contains("lock wait"), "{stdout}");
    for line in stdout.lines().filter(|l| l.starts_with('|')) {
        assert!(
            line.chars().count() <= 120,
            "{} columns: {line}",
            line.chars().count()
        );
    }
}

#[test]
fn help_is_wrapped_and_demo_help_lists_the_scenarios() {
    let out = mapguard(&["bench", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for line in help.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    for short in [
        "-q, --quick",
        "-w, --workloads",
        "-m, --maps",
        "-t, --threads",
        "-n, --ops",
    ] {
        assert!(help.contains(short), "no `{short}` in:\n{help}");
    }
    let out = mapguard(&["demo", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for scenario in [
        "self-deadlock",
        "lock-order",
        "cross-shard",
        "contention",
        "hot-keys",
    ] {
        assert!(help.contains(scenario), "no `{scenario}` in:\n{help}");
    }
}

#[test]
fn a_baseline_run_is_compared_cell_by_cell() {
    let dir = temp_dir("baseline");
    let base = dir.join("base.json");
    let args = |json: &str| {
        vec![
            "bench".to_owned(),
            "-w".into(),
            "read100".into(),
            "-m".into(),
            "dashmap,sharded".into(),
            "-t".into(),
            "1".into(),
            "-n".into(),
            "2000".into(),
            "-r".into(),
            "2".into(),
            "--min-time-ms".into(),
            "5".into(),
            "--warm-up-ms".into(),
            "0".into(),
            "--no-report".into(),
            json.to_owned(),
        ]
    };
    let mut first = args("-j");
    first.push(base.to_str().unwrap().to_owned());
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let out = mapguard(&first);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut second = args("-b");
    second.push(base.to_str().unwrap().to_owned());
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let out = mapguard(&second);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Against "), "{stdout}");
    assert!(stdout.contains("now ÷ base"), "{stdout}");
    // Both maps and the baseline map, at one thread each.
    let lines = stdout
        .lines()
        .filter(|l| l.starts_with("| read100") && l.contains("x |"))
        .filter(|l| {
            ["faster", "slower", "within noise"]
                .iter()
                .any(|v| l.contains(v))
        })
        .count();
    assert_eq!(lines, 3, "{stdout}");

    // A baseline that is missing or not a run stops before anything runs.
    assert_bad_input(
        &[
            "bench",
            "--baseline",
            dir.join("missing.json").to_str().unwrap(),
        ],
        &["cannot read --baseline", "--json FILE"],
    );
    let junk = dir.join("junk.json");
    fs::write(&junk, "{\"run\": 1}").unwrap();
    assert_bad_input(
        &["bench", "--baseline", junk.to_str().unwrap()],
        &[
            "is not the JSON of a mapguard bench run",
            "no `results` array",
        ],
    );
    let _ = fs::remove_dir_all(&dir);
}
