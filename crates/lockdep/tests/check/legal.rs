//! Legal patterns that must not be reported.

use std::sync::Arc;

use lockdep::{Condvar, Mutex};

use crate::common::{init, reports_of, with_timeout};

#[test]
fn consistent_order_across_threads_is_not_reported() {
    init();
    let a = Arc::new(Mutex::with_class("legal.a", 0));
    let b = Arc::new(Mutex::with_class("legal.b", 0));
    let c = Arc::new(Mutex::with_class("legal.c", 0));
    let mut handles = Vec::new();
    for _ in 0..4 {
        let (a, b, c) = (Arc::clone(&a), Arc::clone(&b), Arc::clone(&c));
        handles.push(std::thread::spawn(move || {
            reports_of(move || {
                for i in 0..500 {
                    let mut ga = a.lock();
                    let mut gb = b.lock();
                    if i % 2 == 0 {
                        *c.lock() += 1;
                    }
                    *ga += 1;
                    *gb += 1;
                }
            })
        }));
    }
    for h in handles {
        let reports = h.join().unwrap();
        assert!(reports.is_empty(), "{reports:?}");
    }
    assert_eq!(*a.lock(), 2000);
}

struct TreeNode {
    value: Mutex<u32>,
}

fn chain(n: usize) -> Vec<TreeNode> {
    (0..n)
        .map(|i| TreeNode {
            value: Mutex::new(i as u32),
        })
        .collect()
}

#[test]
fn hand_over_hand_in_a_declared_hierarchy_is_not_reported() {
    init();
    let reports = reports_of(|| {
        let nodes = chain(5);
        let mut parent = nodes[0].value.lock_nested(0);
        for (depth, node) in nodes.iter().enumerate().skip(1) {
            let child = node.value.lock_nested(depth as u32);
            *parent += 1;
            parent = child; // releases the parent after the child is held
        }
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn hand_over_hand_without_declaring_it_is_reported() {
    init();
    let reports = reports_of(|| {
        let nodes = chain(3);
        let mut parent = nodes[0].value.lock();
        for node in &nodes[1..] {
            let child = node.value.lock();
            parent = child;
        }
        drop(parent);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind(), lockdep::ReportKind::SameClassNesting);
}

#[test]
fn trylock_against_the_order_is_not_reported() {
    init();
    let reports = reports_of(|| {
        let a = Mutex::with_class("try.a", ());
        let b = Mutex::with_class("try.b", ());
        {
            let _a = a.lock();
            let _b = b.lock();
        }
        let _b = b.lock();
        assert!(a.try_lock().is_some()); // cannot block, so no deadlock
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn condvar_wait_works_and_is_checked_as_a_reacquisition() {
    init();
    let pair = Arc::new((Mutex::with_class("cv.mutex", 0), Condvar::new()));
    let pair2 = Arc::clone(&pair);
    let notifier = std::thread::spawn(move || {
        for _ in 0..3 {
            *pair2.0.lock() += 1;
            pair2.1.notify_all();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    with_timeout(10, move || {
        let mut count = pair.0.lock();
        while *count < 3 {
            pair.1
                .wait_for(&mut count, std::time::Duration::from_millis(50));
        }
        // Still tracked after the waits: re-locking is reported.
        pair.0.assert_held();
    })
    .unwrap();
    notifier.join().unwrap();

    // Waiting while holding a lock taken after the mutex re-takes the mutex on top of it.
    let reports = reports_of(|| {
        let m = Mutex::with_class("cv.inv.m", ());
        let other = Mutex::with_class("cv.inv.other", ());
        let cv = Condvar::new();
        let mut g = m.lock();
        let _o = other.lock();
        cv.wait_for(&mut g, std::time::Duration::from_millis(1));
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind(), lockdep::ReportKind::LockOrderInversion);
}
