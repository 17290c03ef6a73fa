//! Lock-order inversions: found before anything hangs, at any cycle length, across threads
//! and time, between instances of one class; reported once, with the chain and a scenario.

use std::sync::Arc;

use lockdep::{Mutex, ReportKind};

use crate::common::{Collected, init, reports_of, with_timeout};

#[test]
fn two_lock_inversion_across_threads_and_time_is_reported() {
    init();
    let a = Arc::new(Mutex::with_class("order2.a", ()));
    let b = Arc::new(Mutex::with_class("order2.b", ()));
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    // Another thread establishes a -> b, and is gone by the time of the inversion.
    std::thread::spawn(move || {
        let _a = a2.lock();
        let _b = b2.lock();
    })
    .join()
    .unwrap();

    let reports = reports_of(move || {
        let _b = b.lock();
        let _a = a.lock();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    assert_eq!(r.kind(), ReportKind::LockOrderInversion);
    assert!(
        r.classes().iter().any(|c| c.contains("order2.a")),
        "{:?}",
        r.classes()
    );
    assert!(r.classes().iter().any(|c| c.contains("order2.b")));
    let text = r.to_string();
    for needle in [
        "possible lock-order inversion",
        "existing dependency chain",
        "possible scenario",
        "*** DEADLOCK ***",
        "tests/check/order.rs",
        "would each wait forever",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The recorded edge carries a stack pointing at the closure that took a -> b.
    assert!(
        text.contains("two_lock_inversion_across_threads_and_time_is_reported"),
        "{text}"
    );
    assert!(r.summary().contains("order2.a") && r.summary().contains("order2.b"));
}

#[test]
fn three_lock_cycle_is_reported_with_the_whole_chain() {
    init();
    let a = Arc::new(Mutex::with_class("order3.a", ()));
    let b = Arc::new(Mutex::with_class("order3.b", ()));
    let c = Arc::new(Mutex::with_class("order3.c", ()));
    {
        let (a, b) = (Arc::clone(&a), Arc::clone(&b));
        std::thread::spawn(move || {
            let _a = a.lock();
            let _b = b.lock();
        })
        .join()
        .unwrap();
    }
    {
        let (b, c) = (Arc::clone(&b), Arc::clone(&c));
        std::thread::spawn(move || {
            let _b = b.lock();
            let _c = c.lock();
        })
        .join()
        .unwrap();
    }
    let reports = reports_of(move || {
        let _c = c.lock();
        let _a = a.lock();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    let text = reports[0].to_string();
    assert_eq!(reports[0].kind(), ReportKind::LockOrderInversion);
    assert!(
        text.contains("#1 `order3.a") && text.contains("#2 `order3.b"),
        "{text}"
    );
    assert!(
        reports[0].summary().contains("via"),
        "{}",
        reports[0].summary()
    );
    assert_eq!(reports[0].classes().len(), 3);
}

struct Account {
    balance: Mutex<u64>,
    log: Mutex<Vec<u64>>,
}

impl Account {
    fn new() -> Self {
        Self {
            balance: Mutex::new(0),
            log: Mutex::new(Vec::new()),
        }
    }
}

#[test]
fn inversion_between_two_instances_of_one_struct_is_reported() {
    init();
    let first = Arc::new(Account::new());
    let second = Arc::new(Account::new());
    {
        let first = Arc::clone(&first);
        std::thread::spawn(move || {
            let _balance = first.balance.lock();
            first.log.lock().push(1);
        })
        .join()
        .unwrap();
    }
    // Different instances, same classes: still an inversion.
    let reports = reports_of(move || {
        let _log = second.log.lock();
        *second.balance.lock() += 1;
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind(), ReportKind::LockOrderInversion);
    assert!(reports[0].to_string().contains("tests/check/order.rs"));
}

#[test]
fn each_distinct_cycle_is_reported_once() {
    init();
    let a = Arc::new(Mutex::with_class("once.a", ()));
    let b = Arc::new(Mutex::with_class("once.b", ()));
    let collected = Collected::default();
    let sink = collected.clone();
    with_timeout(10, move || {
        sink.install(&[]);
        {
            let _a = a.lock();
            let _b = b.lock();
        }
        for _ in 0..3 {
            let _b = b.lock();
            let _a = a.lock();
        }
    })
    .unwrap();
    assert_eq!(collected.kinds(), vec![ReportKind::LockOrderInversion]);
}

#[test]
fn inverted_edge_is_not_learned() {
    // After a rejected b -> a, the order a -> b must still be the accepted one.
    init();
    let a = Arc::new(Mutex::with_class("reject.a", ()));
    let b = Arc::new(Mutex::with_class("reject.b", ()));
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    let first = reports_of(move || {
        let _a = a2.lock();
        let _b = b2.lock();
    });
    assert!(first.is_empty());
    let second = reports_of(move || {
        let _b = b.lock();
        let _a = a.lock();
    });
    assert_eq!(second.len(), 1);
}
