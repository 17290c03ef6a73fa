//! Timed tries (`try_lock_for`, `try_read_for`, `try_write_for`): a timeout of at least the
//! deadlock timeout is checked like a blocking acquisition (a regression would make the
//! self-deadlock bodies hang and the timeout fail the test), a shorter one like `try_lock`.

use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use lockdep::{Config, Mutex, RecursiveRwLock, Report, ReportKind, RwLock};

use crate::common::{Collected, init, is_child, reports_of, run_in_child, with_timeout};

/// Longer than the deadlock timeout of [`init`] (150 ms), yet finite.
const HOUR: Duration = Duration::from_secs(3600);

fn kinds(reports: &[Report]) -> Vec<ReportKind> {
    reports.iter().map(Report::kind).collect()
}

#[test]
fn relocking_a_held_mutex_with_an_unbounded_timed_try_is_reported_before_blocking() {
    init();
    let reports = reports_of(|| {
        let m = Mutex::new(());
        let _first = m.lock();
        let _second = m.try_lock_for(Duration::MAX);
    });
    assert_eq!(kinds(&reports), [ReportKind::SelfDeadlock], "{reports:?}");
    assert!(reports[0].summary().contains("already holds it"));
    assert!(
        reports[0]
            .sites()
            .iter()
            .all(|s| s.contains("tests/check/timed.rs")),
        "{:?}",
        reports[0].sites()
    );
}

#[test]
fn long_timed_tries_of_a_held_rwlock_are_reported_like_read_and_write() {
    init();
    let write_after_read = reports_of(|| {
        let l = RwLock::new(());
        let _r = l.read();
        let _w = l.try_write_for(Duration::MAX);
    });
    assert_eq!(kinds(&write_after_read), [ReportKind::SelfDeadlock]);

    let read_after_write = reports_of(|| {
        let l = RwLock::new(());
        let _w = l.write();
        let _r = l.try_read_for(HOUR);
    });
    assert_eq!(kinds(&read_after_write), [ReportKind::SelfDeadlock]);

    let read_after_read = reports_of(|| {
        let l = RwLock::new(());
        let _r = l.read();
        let _again = l.try_read_for(Duration::MAX);
    });
    assert_eq!(kinds(&read_after_read), [ReportKind::RecursiveRead]);

    // Re-reads of a reader-biased lock stay legal, timed or not.
    let recursive = reports_of(|| {
        let l = RecursiveRwLock::new(());
        let _r = l.read();
        assert!(l.try_read_for(Duration::MAX).is_some());
    });
    assert!(recursive.is_empty(), "{recursive:?}");
}

#[test]
fn an_order_learned_from_a_long_timed_try_makes_the_opposite_lock_an_inversion() {
    init();
    let a = Arc::new(Mutex::with_class("timed.learn.a", ()));
    let b = Arc::new(Mutex::with_class("timed.learn.b", ()));
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    let learned = reports_of(move || {
        let _a = a2.lock();
        let _b = b2.try_lock_for(HOUR).unwrap();
    });
    assert!(learned.is_empty(), "{learned:?}");

    let reports = reports_of(move || {
        let _b = b.lock();
        let _a = a.lock();
    });
    assert_eq!(kinds(&reports), [ReportKind::LockOrderInversion]);
    assert!(reports[0].to_string().contains("tests/check/timed.rs"));
}

#[test]
fn a_long_timed_try_against_a_learned_order_is_reported_before_it_waits() {
    init();
    let a = Arc::new(Mutex::with_class("timed.check.a", ()));
    let b = Arc::new(Mutex::with_class("timed.check.b", ()));
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    let learned = reports_of(move || {
        let _a = a2.lock();
        let _b = b2.lock();
    });
    assert!(learned.is_empty(), "{learned:?}");

    let reports = reports_of(move || {
        let _b = b.lock();
        let _a = a.try_lock_for(Duration::MAX);
    });
    assert_eq!(kinds(&reports), [ReportKind::LockOrderInversion]);
}

#[test]
fn a_short_timed_try_is_neither_order_checked_nor_a_self_deadlock() {
    // A try that gives up soon cannot hang: it is treated like `try_lock`.
    init();
    let short = Duration::from_millis(10);
    let reports = reports_of(move || {
        let m = Mutex::new(());
        let held = m.lock();
        assert!(m.try_lock_for(short).is_none());
        drop(held);

        let a = Mutex::with_class("timed.short.a", ());
        let b = Mutex::with_class("timed.short.b", ());
        {
            let _a = a.lock();
            let _b = b.lock();
        }
        let _b = b.lock();
        assert!(a.try_lock_for(short).is_some());
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn a_long_timed_try_that_times_out_leaves_the_lock_unheld() {
    // The checked try registers the lock before it waits; giving up must withdraw that, or
    // the next `lock` would look like a self-deadlock.
    init();
    let m = Arc::new(Mutex::with_class("timed.gives_up", ()));
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let m2 = Arc::clone(&m);
    let holder = std::thread::spawn(move || {
        let _g = m2.lock();
        held_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    held_rx.recv().unwrap();
    let timeout = Duration::from_millis(400);
    let reports = reports_of(move || {
        let start = Instant::now();
        assert!(m.try_lock_for(timeout).is_none());
        assert!(
            start.elapsed() >= timeout,
            "gave up after {:?}",
            start.elapsed()
        );
        m.assert_not_held();
        release_tx.send(()).unwrap();
        let _g = m.lock();
    });
    holder.join().unwrap();
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn a_long_timed_try_blocked_in_a_cycle_is_found_as_a_real_deadlock() {
    init();
    let a = Arc::new(Mutex::with_class("timed.real.a", ()));
    let b = Arc::new(Mutex::with_class("timed.real.b", ()));
    let barrier = Arc::new(Barrier::new(2));
    let collected = Collected::default();

    let spawn = |first: Arc<Mutex<()>>, second: Arc<Mutex<()>>, timed: bool| {
        let (barrier, sink) = (Arc::clone(&barrier), collected.clone());
        std::thread::spawn(move || {
            // Let the order warning pass so that the threads really block.
            sink.install(&[ReportKind::Deadlock]);
            let _first = first.lock();
            barrier.wait();
            if timed {
                let _second = second.try_lock_for(HOUR);
            } else {
                let _second = second.lock();
            }
        })
    };
    let t1 = spawn(Arc::clone(&a), Arc::clone(&b), true);
    let t2 = spawn(Arc::clone(&b), Arc::clone(&a), false);
    let joined = with_timeout(20, move || (t1.join().is_err(), t2.join().is_err())).unwrap();
    assert!(
        joined.0 ^ joined.1,
        "exactly one thread should be stopped: {joined:?}"
    );
    let kinds = collected.kinds();
    assert!(kinds.contains(&ReportKind::LockOrderInversion), "{kinds:?}");
    let text = collected.only(ReportKind::Deadlock).to_string();
    assert!(
        text.contains("timed.real.a") && text.contains("timed.real.b"),
        "{text}"
    );
}

#[test]
fn an_unbounded_timed_try_is_checked_with_deadlock_detection_off() {
    if !is_child() {
        let (ok, out) = run_in_child(
            "timed::an_unbounded_timed_try_is_checked_with_deadlock_detection_off",
            30,
        );
        assert!(ok, "child failed:\n{out}");
        return;
    }
    lockdep::configure(Config {
        deadlock_timeout: None,
        ..Config::default()
    })
    .unwrap();
    let reports = reports_of(|| {
        let m = Mutex::new(());
        let _first = m.lock();
        let _second = m.try_lock_for(Duration::MAX);
    });
    assert_eq!(kinds(&reports), [ReportKind::SelfDeadlock], "{reports:?}");

    // Below the default threshold a timed try is still a plain try.
    let short = reports_of(|| {
        let m = Mutex::new(());
        let _first = m.lock();
        assert!(m.try_lock_for(Duration::from_millis(10)).is_none());
    });
    assert!(short.is_empty(), "{short:?}");
}
