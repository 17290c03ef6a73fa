//! Precise read locks: recursive reads of a reader-biased lock are legal; a plain `read`
//! re-entered on a writer-preferring lock is reported (parking_lot issue 212), and the real
//! hang it leads to once a writer queues is caught by the deadlock detector.

use std::sync::Arc;
use std::time::Duration;

use lockdep::{RecursiveRwLock, ReportKind, RwLock};

use crate::common::{Collected, init, reports_of, with_timeout};

#[test]
fn recursive_reads_of_a_recursive_rwlock_are_not_reported() {
    init();
    let reports = reports_of(|| {
        let l = RecursiveRwLock::new(1);
        let a = l.read();
        let b = l.read();
        let c = l.read();
        assert_eq!(*a + *b + *c, 3);
        // Two instances of one class, read-nested: also fine for recursive readers.
        let pair: Vec<RecursiveRwLock<u8>> = (0..2).map(RecursiveRwLock::new).collect();
        let _x = pair[0].read();
        let _y = pair[1].read();
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn plain_read_reentry_is_reported() {
    init();
    let reports = reports_of(|| {
        let l = RwLock::new(1);
        let _a = l.read();
        let _b = l.read();
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind(), ReportKind::RecursiveRead);
    let text = reports[0].to_string();
    assert!(text.contains("writer"), "{text}");
    assert!(text.contains("RecursiveRwLock"), "{text}");
}

#[test]
fn read_reentry_behind_a_queued_writer_is_reported_then_caught_as_a_deadlock() {
    init();
    let lock = Arc::new(RwLock::with_class("rwr.lock", 0));
    let collected = Collected::default();
    let sink = collected.clone();
    let writer_lock = Arc::clone(&lock);
    let result = with_timeout(20, move || {
        sink.install(&[ReportKind::Deadlock]);
        let _first = lock.read();
        let writer = std::thread::spawn(move || {
            *writer_lock.write() += 1;
        });
        std::thread::sleep(Duration::from_millis(100)); // let the writer queue
        let _second = lock.read(); // reported, then really blocks behind the writer
        drop(_second);
        drop(_first);
        writer.join().unwrap();
    });
    assert!(
        result.is_err(),
        "the reader should have been stopped by the deadlock report"
    );
    assert_eq!(
        collected.kinds(),
        vec![ReportKind::RecursiveRead, ReportKind::Deadlock]
    );
    let deadlock = collected.only(ReportKind::Deadlock);
    assert!(deadlock.to_string().contains("rwr.lock"), "{deadlock}");
}

#[test]
fn recursive_reader_cycle_is_not_a_deadlock() {
    // T1: read(a) then lock(b); T2: lock(b) then read(a). With a reader-biased `a`, T2's read
    // gets in while T1 reads, so this is no deadlock (lockdep's strong-cycle rule).
    init();
    let a = Arc::new(RecursiveRwLock::with_class("strong.recursive.a", ()));
    let b = Arc::new(lockdep::Mutex::with_class("strong.recursive.b", ()));
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    let first = reports_of(move || {
        let _a = a2.read();
        let _b = b2.lock();
    });
    let second = reports_of(move || {
        let _b = b.lock();
        let _a = a.read();
    });
    assert!(
        first.is_empty() && second.is_empty(),
        "{first:?} {second:?}"
    );
}

#[test]
fn writer_preferring_reader_cycle_is_reported() {
    // The same pattern with a writer-preferring lock hangs once a writer queues on `a`.
    init();
    let a = Arc::new(RwLock::with_class("strong.plain.a", ()));
    let b = Arc::new(lockdep::Mutex::with_class("strong.plain.b", ()));
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    let first = reports_of(move || {
        let _a = a2.read();
        let _b = b2.lock();
    });
    let second = reports_of(move || {
        let _b = b.lock();
        let _a = a.read();
    });
    assert!(first.is_empty());
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0].kind(), ReportKind::LockOrderInversion);
}

#[test]
fn write_after_recursive_read_cycle_is_reported() {
    // A recursive reader does wait for a writer: read(a) -> lock(b) and lock(b) -> write(a).
    init();
    let a = Arc::new(RecursiveRwLock::with_class("strong.write.a", ()));
    let b = Arc::new(lockdep::Mutex::with_class("strong.write.b", ()));
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    let first = reports_of(move || {
        let _a = a2.read();
        let _b = b2.lock();
    });
    let second = reports_of(move || {
        let _b = b.lock();
        let _a = a.write();
    });
    assert!(first.is_empty());
    assert_eq!(second.len(), 1, "{second:?}");
}
