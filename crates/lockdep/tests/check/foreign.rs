//! Foreign locks: a lock lockdep does not own reports its acquisitions through
//! `lockdep::foreign` and gets the same checks as lockdep's locks, before it would wait.

use std::sync::Arc;

use lockdep::foreign::{Access, LockClass};
use lockdep::{Mutex, ReportKind};

use crate::common::{init, reports_of};

/// A stand-in for another crate's lock: only its identity matters here.
struct Foreign {
    class: LockClass,
}

impl Foreign {
    fn new(label: &str) -> Arc<Self> {
        Arc::new(Self {
            class: LockClass::unique(label),
        })
    }
}

/// Takes `first` then `second` (with `how` each) on a thread of its own, reporting nothing.
fn nest(first: &Arc<Foreign>, how1: Access, second: &Arc<Foreign>, how2: Access) {
    let (a, b) = (Arc::clone(first), Arc::clone(second));
    let reports = reports_of(move || {
        let ta = a.class.acquire(&*a, how1);
        ta.acquired();
        let tb = b.class.acquire(&*b, how2);
        tb.acquired();
        drop((tb, ta));
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn inversion_between_foreign_locks_is_reported_with_their_labels_and_sites() {
    init();
    let a = Foreign::new("foreign.inv.a");
    let b = Foreign::new("foreign.inv.b");
    nest(&a, Access::Read, &b, Access::Write);
    let line = line!() + 4;
    let reports = reports_of(move || {
        let tb = b.class.acquire(&*b, Access::Read);
        tb.acquired();
        let _ta = a.class.acquire(&*a, Access::Write);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    assert_eq!(r.kind(), ReportKind::LockOrderInversion, "{r}");
    assert_eq!(
        r.classes()[..2],
        ["`foreign.inv.b`", "`foreign.inv.a`"],
        "{r}"
    );
    let at = format!("{}:{line}:", file!());
    assert!(
        r.sites().iter().any(|s| s.starts_with(&at)),
        "{at} not in {:?}",
        r.sites()
    );
}

#[test]
fn read_cycles_count_for_writer_preferring_reads_only() {
    init();
    // Read -> Read both ways: two threads can hang once writers queue.
    let a = Foreign::new("foreign.rr.a");
    let b = Foreign::new("foreign.rr.b");
    nest(&a, Access::Read, &b, Access::Read);
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    let reports = reports_of(move || {
        let _tb = b2.class.acquire(&*b2, Access::Read);
        let _ta = a2.class.acquire(&*a2, Access::Read);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind(), ReportKind::LockOrderInversion);

    // The same with recursive (reader-preferring) reads is not a deadlock.
    let c = Foreign::new("foreign.rr.c");
    let d = Foreign::new("foreign.rr.d");
    nest(&c, Access::RecursiveRead, &d, Access::RecursiveRead);
    nest(&d, Access::RecursiveRead, &c, Access::RecursiveRead);
}

#[test]
fn re_reading_and_re_locking_one_foreign_lock() {
    init();
    let a = Foreign::new("foreign.self");
    let a2 = Arc::clone(&a);
    let reports = reports_of(move || {
        let _first = a2.class.acquire(&*a2, Access::Read);
        let _again = a2.class.acquire(&*a2, Access::Read);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind(), ReportKind::RecursiveRead);
    let a2 = Arc::clone(&a);
    let reports = reports_of(move || {
        let _first = a2.class.acquire(&*a2, Access::Write);
        let _again = a2.class.acquire(&*a2, Access::Write);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind(), ReportKind::SelfDeadlock);
    // A recursive re-read is legal.
    let reports = reports_of(move || {
        let _first = a.class.acquire(&*a, Access::RecursiveRead);
        let _again = a.class.acquire(&*a, Access::RecursiveRead);
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn a_dropped_unique_class_takes_its_orders_with_it() {
    init();
    let a = Foreign::new("foreign.retire.a");
    let b = Foreign::new("foreign.retire.b");
    let gone = Foreign::new("foreign.retire.gone");
    // a -> gone -> b: a path from a to b only through `gone`.
    nest(&a, Access::Write, &gone, Access::Write);
    nest(&gone, Access::Write, &b, Access::Write);
    drop(gone);
    // b -> a closes no cycle once `gone` is dropped.
    nest(&b, Access::Write, &a, Access::Write);
}

#[test]
fn released_and_downgraded_tokens_leave_nothing_held() {
    init();
    let a = Foreign::new("foreign.tokens.a");
    let b = Foreign::new("foreign.tokens.b");
    let reports = reports_of(move || {
        let mut ta = a.class.acquire(&*a, Access::Write);
        ta.acquired();
        assert!(ta.is_tracked());
        ta.downgrade(Access::Read);
        let tb = b.class.acquire(&*b, Access::Write);
        tb.release();
        drop(ta);
        // Both released: taking them the other way round is an order, not a re-lock, and
        // nothing is held at thread exit.
        let _tb = b.class.acquire(&*b, Access::Write);
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn a_named_foreign_class_is_the_class_of_that_name() {
    init();
    static SHARED: LockClass = LockClass::named("foreign.named.shared");
    let mutex = Arc::new(Mutex::with_class("foreign.named.other", ()));
    let foreign = Arc::new(0u8);
    let (m, f) = (Arc::clone(&mutex), Arc::clone(&foreign));
    let reports = reports_of(move || {
        let _t = SHARED.acquire(&*f, Access::Write);
        let _g = m.lock();
    });
    assert!(reports.is_empty(), "{reports:?}");
    // A lockdep mutex of the shared name, locked the other way round: an inversion.
    let named = Mutex::with_class("foreign.named.shared", ());
    let reports = reports_of(move || {
        let _g = mutex.lock();
        let _n = named.lock();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind(), ReportKind::LockOrderInversion);
    assert_eq!(SHARED.label(), "`foreign.named.shared`");
}
