//! Self-deadlocks: re-locking a held lock, `write` while holding `read`; reported before
//! blocking (a regression would make these bodies hang and the timeout fail the test).

use lockdep::{Mutex, ReportKind, RwLock};

use crate::common::{Collected, init, reports_of};

#[test]
fn relocking_a_held_mutex_is_reported_before_blocking() {
    init();
    let reports = reports_of(|| {
        let m = Mutex::new(0);
        let _first = m.lock();
        let _second = m.lock();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    assert_eq!(r.kind(), ReportKind::SelfDeadlock);
    assert!(r.summary().contains("already holds it"), "{}", r.summary());
    assert_eq!(r.sites().len(), 2);
    assert!(
        r.sites()
            .iter()
            .all(|s| s.contains("tests/check/self_deadlock.rs"))
    );
}

#[test]
fn write_while_holding_read_is_reported() {
    init();
    let reports = reports_of(|| {
        let l = RwLock::new(0);
        let _r = l.read();
        let _w = l.write();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind(), ReportKind::SelfDeadlock);
    assert!(reports[0].to_string().contains("(read)"), "{}", reports[0]);
}

#[test]
fn read_while_holding_write_is_reported() {
    init();
    let reports = reports_of(|| {
        let l = lockdep::RecursiveRwLock::new(0);
        let _w = l.write();
        let _r = l.read();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind(), ReportKind::SelfDeadlock);
}

#[test]
fn same_class_nesting_without_subclass_is_reported() {
    init();
    let reports = reports_of(|| {
        let nodes: Vec<Mutex<u32>> = (0..2).map(Mutex::new).collect();
        let _p = nodes[0].lock();
        let _c = nodes[1].lock();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind(), ReportKind::SameClassNesting);
    assert!(reports[0].to_string().contains("lock_nested"));
}

#[test]
fn relock_after_a_cached_chain_is_still_reported() {
    // The per-thread chain cache must not hide a re-lock of the same instance.
    init();
    let reports = reports_of(|| {
        let outer = Mutex::new(());
        let inner = Mutex::new(());
        for _ in 0..3 {
            let _o = outer.lock();
            let _i = inner.lock();
        }
        let _o = outer.lock();
        let _i = inner.lock();
        let _again = outer.lock();
    });
    assert_eq!(
        reports.iter().map(|r| r.kind()).collect::<Vec<_>>(),
        [ReportKind::SelfDeadlock]
    );
}

#[test]
fn a_new_lock_where_a_dropped_one_was_leaked_held_is_not_held() {
    // A leaked guard keeps its lock registered as held; once that lock is dropped, a new
    // lock at the same address is another lock, and is not held.
    init();
    let collected = Collected::default();
    let sink = collected.clone();
    std::thread::spawn(move || {
        sink.install(&[]);
        // One place in memory holds first the leaked lock and then the new one, so the new
        // lock is at the old lock's address whatever the allocator does.
        let mut slot = Mutex::new(());
        let addr = std::ptr::from_ref(&slot).addr();
        std::mem::forget(slot.lock());
        slot = Mutex::new(());
        assert_eq!(std::ptr::from_ref(&slot).addr(), addr);
        slot.assert_not_held();
        let _g = slot.lock();
        slot.assert_held();
    })
    .join()
    .unwrap();
    // The leaked guard itself is still reported when the thread exits.
    assert_eq!(collected.kinds(), [ReportKind::HeldAtThreadExit]);
}
