//! `lock-order`: two threads take two locks in opposite orders (AB-BA). Each holds its first
//! lock when it asks for the second, so without a checker both wait forever. lockdep's traced
//! `Mutex` (the `lockdep` crate with its `check` feature) finds the cycle in the lock order
//! when the second thread asks, before it waits, and reports it.

use std::sync::{Arc, Barrier, Mutex as StdMutex};
use std::time::Duration;

use lockdep::{Config, Reaction, Report, ReportKind};

use super::{Outcome, Scenario, panic_text, print_indented, with_deadline};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "lock-order",
    summary: "two threads lock A then B and B then A (AB-BA), found before it hangs",
    run,
};

/// Locks of the demo: an accounts table and an audit log, as in a payment service.
struct Ledger {
    accounts: lockdep::Mutex<Vec<u64>>,
    audit_log: lockdep::Mutex<Vec<String>>,
}

fn run() -> Outcome {
    // Short stacks keep the report readable; a real service would keep the defaults.
    let _ = lockdep::configure(Config {
        reaction: Reaction::Panic,
        deadlock_timeout: Some(Duration::from_millis(500)),
        max_frames: 4,
        ..Config::default()
    });
    println!("Thread `transfer` locks accounts, then audit_log; thread `audit` locks audit_log,");
    println!("then accounts. Both take their first lock, meet at a barrier, then ask for the");
    println!("second: without a checker, each waits for the other forever.\n");
    let reports = with_deadline(
        Duration::from_secs(10),
        "lockdep did not report the AB-BA order",
        race,
    );
    let Some((report, unwound)) = reports.into_iter().next() else {
        println!("both threads finished without a report; no diagnosis");
        return Outcome::NotDiagnosed;
    };
    println!("Diagnosis (lockdep's report, made before the second thread waited):\n");
    print_indented(report.trim());
    println!();
    println!("The reporting thread then unwound, releasing its first lock, so the other thread");
    println!("finished and the demo stopped by itself:\n");
    print_indented(&unwound);
    println!();
    println!("What it means: the two code paths disagree on the order of accounts and audit_log.");
    println!("lockdep learns the order from every acquisition (per lock class, not per instance),");
    println!(
        "so the inversion is reported the first time both orders are seen, even in a test run"
    );
    println!("where the timing never actually deadlocks.\n");
    println!("Fix: pick one order (accounts before audit_log) and take the locks in it on every");
    println!("path, or take the second lock only after releasing the first.");
    Outcome::Diagnosed
}

/// Runs the two threads; returns each report of a lock-order inversion or deadlock, with the
/// panic that unwound its thread.
fn race() -> Vec<(String, String)> {
    let ledger = Arc::new(Ledger {
        accounts: lockdep::Mutex::with_class("ledger.accounts", vec![100, 50]),
        audit_log: lockdep::Mutex::with_class("ledger.audit_log", Vec::new()),
    });
    let barrier = Arc::new(Barrier::new(2));
    let found: Arc<StdMutex<Vec<String>>> = Arc::default();
    let spawn = |name: &str, accounts_first: bool| {
        let (ledger, barrier, found) = (ledger.clone(), barrier.clone(), found.clone());
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let sink = found.clone();
                lockdep::set_thread_reaction(Some(Reaction::Callback(Arc::new(
                    move |r: &Report| {
                        if matches!(
                            r.kind(),
                            ReportKind::LockOrderInversion | ReportKind::Deadlock
                        ) {
                            sink.lock().expect("not poisoned").push(r.to_string());
                            // Unwinding releases this thread's first lock: the other thread
                            // can finish, as it would if a service turned reports into errors.
                            panic!("lockdep: {} reported; unwinding", r.kind());
                        }
                    },
                ))));
                if accounts_first {
                    let mut accounts = ledger.accounts.lock();
                    barrier.wait();
                    accounts[0] -= 10;
                    ledger.audit_log.lock().push("transfer 10".to_owned());
                } else {
                    let log = ledger.audit_log.lock();
                    barrier.wait();
                    let total: u64 = ledger.accounts.lock().iter().sum();
                    drop(log);
                    let _ = total;
                }
            })
            .expect("spawn a demo thread")
    };
    let threads = [spawn("transfer", true), spawn("audit", false)];
    let mut unwound = Vec::new();
    for t in threads {
        let name = t.thread().name().unwrap_or("?").to_owned();
        if let Err(payload) = t.join() {
            unwound.push(format!("thread `{name}`: {}", panic_text(payload.as_ref())));
        }
    }
    let found = found.lock().expect("not poisoned").clone();
    found
        .into_iter()
        .zip(unwound.into_iter().chain(std::iter::repeat(String::new())))
        .collect()
}
