//! Every kind of bad value for each `mapguard bench` flag (--workloads, --maps, --threads,
//! --ops, --seed, --repeat) exits with status 2 and one line on stderr that names the flag or
//! the bad value, and prints nothing on stdout (no benchmark starts).

use std::process::{Command, Output};

fn mapguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mapguard"))
        .args(args)
        .output()
        .expect("the mapguard binary runs")
}

/// Runs `mapguard bench <args>` and checks the one-line refusal; returns the line.
#[track_caller]
fn refused(args: &[&str], mentions: &[&str]) -> String {
    let mut full = vec!["bench"];
    full.extend_from_slice(args);
    let out = mapguard(&full);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{full:?} exited {:?}: {err}",
        out.status
    );
    assert!(out.stdout.is_empty(), "{full:?} printed to stdout");
    assert_eq!(
        err.lines().count(),
        1,
        "{full:?} printed more than one line:\n{err}"
    );
    for needle in mentions {
        assert!(
            err.contains(needle),
            "{full:?}: `{err}` does not mention `{needle}`"
        );
    }
    err
}

#[test]
fn bad_workloads() {
    let valid = "seed95, seed99, read100, read-heavy, exchange, write-heavy, rapid-grow, hot-keys";
    refused(
        &["--workloads", "nope"],
        &["unknown workload `nope`", valid],
    );
    refused(&["--workloads", "SEED95"], &["`SEED95`", valid]);
    refused(&["--workloads", "read100,nope"], &["`nope`", valid]);
    refused(&["--workloads="], &["--workloads", valid]);
    refused(&["--workloads", ","], &["--workloads", valid]);
    refused(&["--workloads"], &["--workloads"]);
}

#[test]
fn bad_maps() {
    let valid =
        "sharded, read-mostly, locked, dashmap, papaya, scc, rwlock-std, mutex-std, hashbrown";
    refused(&["--maps", "flurry"], &["unknown map `flurry`", valid]);
    refused(&["--maps", "sharded,Sharded"], &["`Sharded`", valid]);
    refused(&["--maps="], &["--maps", valid]);
    refused(&["--maps", ",,"], &["--maps", valid]);
    refused(&["--maps"], &["--maps"]);
}

#[test]
fn bad_threads() {
    refused(&["--threads", "0"], &["--threads", "0", "1024"]);
    refused(&["--threads", "2,0"], &["--threads", "0"]);
    refused(&["--threads", "1025"], &["--threads", "1025", "1024"]);
    refused(
        &["--threads", "99999999999999999999999"],
        &["--threads", "too large"],
    );
    refused(&["--threads", "two"], &["--threads", "two"]);
    refused(&["--threads", "1,,2"], &["--threads"]);
    refused(&["--threads="], &["--threads"]);
    refused(&["--threads", "-1"], &["-1"]);
    refused(&["--threads", "1.5"], &["--threads", "1.5"]);
    refused(&["--threads"], &["--threads"]);
}

#[test]
fn bad_ops() {
    refused(&["--ops", "0"], &["--ops"]);
    refused(&["--ops", "-5"], &["-5"]);
    refused(&["--ops", "1e6"], &["--ops", "1e6"]);
    refused(&["--ops", "0x10"], &["--ops", "0x10"]);
    refused(&["--ops", "18446744073709551616"], &["--ops", "too large"]);
    refused(&["--ops", ""], &["--ops"]);
    refused(&["--ops"], &["--ops"]);
}

#[test]
fn bad_seed() {
    refused(&["--seed", "x"], &["--seed", "x"]);
    refused(&["--seed", "-1"], &["-1"]);
    refused(
        &["--seed", "18446744073709551616"],
        &["--seed", "too large"],
    );
    refused(&["--seed", "1.0"], &["--seed", "1.0"]);
    refused(&["--seed"], &["--seed"]);
}

#[test]
fn bad_repeat() {
    refused(&["--repeat", "0"], &["--repeat"]);
    refused(&["--repeat", "-1"], &["-1"]);
    refused(&["--repeat", "many"], &["--repeat", "many"]);
    refused(
        &["--repeat", "18446744073709551616"],
        &["--repeat", "too large"],
    );
    refused(&["--repeat"], &["--repeat"]);
}

#[test]
fn repeated_single_value_flags_and_unknown_flags() {
    refused(&["--ops", "10", "--ops", "20"], &["--ops"]);
    refused(&["--seed", "1", "--seed", "2"], &["--seed"]);
    refused(&["--repeat", "1", "--repeat", "2"], &["--repeat"]);
    refused(&["--op", "10"], &["--op"]);
    refused(&["--threads", "1", "extra"], &["extra"]);
}

/// A bad flag is refused before any work, even when the other flags would start a long run.
#[test]
fn refusal_comes_before_any_benchmark() {
    let line = refused(
        &[
            "--ops",
            "100000000",
            "--repeat",
            "1000",
            "--maps",
            "sharded,nope",
        ],
        &["`nope`"],
    );
    assert!(line.starts_with("error:"), "{line}");
}
