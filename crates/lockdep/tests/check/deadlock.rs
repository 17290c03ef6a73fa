//! Real deadlocks: threads actually blocked on each other are found by the waiters after the
//! configured timeout, and reported with every holder's acquisition site.

use std::sync::{Arc, Barrier};

use lockdep::{Mutex, ReportKind};

use crate::common::{Collected, init, with_timeout};

#[test]
fn abba_deadlock_between_two_threads_is_reported_with_holder_sites() {
    init();
    let a = Arc::new(Mutex::with_class("real.a", ()));
    let b = Arc::new(Mutex::with_class("real.b", ()));
    let barrier = Arc::new(Barrier::new(2));
    let collected = Collected::default();

    let spawn = |first: Arc<Mutex<()>>, second: Arc<Mutex<()>>, name: &str| {
        let (barrier, sink) = (Arc::clone(&barrier), collected.clone());
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // Let the order warning pass so that the threads really block; stop (and so
                // unblock the other thread) on the deadlock report.
                sink.install(&[ReportKind::Deadlock]);
                let _first = first.lock();
                barrier.wait();
                let _second = second.lock();
            })
            .unwrap()
    };
    let t1 = spawn(Arc::clone(&a), Arc::clone(&b), "abba-1");
    let t2 = spawn(Arc::clone(&b), Arc::clone(&a), "abba-2");
    let joined = with_timeout(20, move || (t1.join().is_err(), t2.join().is_err())).unwrap();
    assert!(
        joined.0 ^ joined.1,
        "exactly one thread should be stopped: {joined:?}"
    );

    let kinds = collected.kinds();
    assert!(kinds.contains(&ReportKind::LockOrderInversion), "{kinds:?}");
    let report = collected.only(ReportKind::Deadlock);
    let text = report.to_string();
    for needle in [
        "abba-1",
        "abba-2",
        "real.a",
        "real.b",
        "tests/check/deadlock.rs",
        "has waited",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // Every holder's acquisition site: two held locks, two waits.
    assert!(report.sites().len() >= 4, "{:?}", report.sites());
    assert!(report.summary().contains("cycle"), "{}", report.summary());
}

#[test]
fn self_deadlock_that_was_let_through_is_caught_as_a_real_deadlock() {
    // With a reaction that carries on, the re-lock really blocks; the waiter then finds
    // itself in the wait-for graph.
    init();
    let collected = Collected::default();
    let sink = collected.clone();
    let result = with_timeout(10, move || {
        sink.install(&[ReportKind::Deadlock]);
        let m = Mutex::new(());
        let _first = m.lock();
        let _second = m.lock();
    });
    assert!(result.is_err());
    assert_eq!(
        collected.kinds(),
        vec![ReportKind::SelfDeadlock, ReportKind::Deadlock]
    );
    assert!(
        collected
            .only(ReportKind::Deadlock)
            .summary()
            .contains("holds itself")
    );
}

#[test]
fn a_long_wait_without_a_cycle_is_not_a_deadlock() {
    init();
    let m = Arc::new(Mutex::with_class("slow.holder", ()));
    let collected = Collected::default();
    let (m2, sink) = (Arc::clone(&m), collected.clone());
    let guard = m.lock();
    let waiter = std::thread::spawn(move || {
        sink.install(&[]);
        let _g = m2.lock();
    });
    std::thread::sleep(std::time::Duration::from_millis(400)); // > 2 deadlock timeouts
    drop(guard);
    waiter.join().unwrap();
    assert!(collected.all().is_empty(), "{:?}", collected.kinds());
}
