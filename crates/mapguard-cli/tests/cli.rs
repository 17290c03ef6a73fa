//! The `mapguard` binary as a user runs it: exit codes and the one-line errors.

use std::process::{Command, Output};

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
    assert_bad_input(&["bench", "--frobnicate"], &["--frobnicate"]);
    assert_bad_input(&["benchmark"], &["benchmark"]);
}

#[test]
fn a_small_bench_prints_the_tables() {
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
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    for needle in [
        "vs best peer",
        "% 2-core limit",
        "sharded (ours)",
        "hashbrown (unsync)",
        "bytes/entry after prefill (requested)",
        "786432 entries",
    ] {
        assert!(stdout.contains(needle), "no `{needle}` in:\n{stdout}");
    }
    // Two workloads × (3 baseline samples at 1 thread + two maps at 2 threads), one progress
    // line each.
    assert_eq!(stderr(&out).lines().count(), 10, "{}", stderr(&out));
    // Only dashmap is a peer, so it is its own best peer.
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("dashmap") && l.contains("1.00x"))
    );
}
