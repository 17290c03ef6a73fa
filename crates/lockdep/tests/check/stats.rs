//! lock_stat-style figures.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use lockdep::{Mutex, RwLock};

use crate::common::init;

#[test]
fn contention_wait_and_hold_times_and_sites_are_counted() {
    init();
    let m = Arc::new(Mutex::with_class("stats.contended", 0));
    let barrier = Arc::new(Barrier::new(2));
    let (m2, b2) = (Arc::clone(&m), Arc::clone(&barrier));
    let holder = std::thread::spawn(move || {
        let mut g = m2.lock(); // the holder site
        b2.wait();
        std::thread::sleep(Duration::from_millis(60));
        *g += 1;
    });
    let m3 = Arc::clone(&m);
    let waiter = std::thread::spawn(move || {
        barrier.wait();
        std::thread::sleep(Duration::from_millis(10));
        *m3.lock() += 1; // the waiter site
    });
    holder.join().unwrap();
    waiter.join().unwrap();
    for _ in 0..10 {
        *m.lock() += 1;
    }

    let stats = lockdep::stats();
    let class = stats.class("stats.contended").expect("class listed");
    assert_eq!(class.kind, "Mutex");
    assert_eq!(class.write.acquisitions, 12);
    assert_eq!(class.write.contentions, 1);
    assert!(
        class.write.wait.max_ns >= 20_000_000,
        "{:?}",
        class.write.wait
    );
    assert_eq!(class.write.wait.count, 1);
    assert!(
        class.write.hold.max_ns >= 40_000_000,
        "{:?}",
        class.write.hold
    );
    assert_eq!(class.write.hold.count, 12);
    assert_eq!(class.write.top_waiters.len(), 1);
    assert_eq!(class.write.top_holders.len(), 1);
    assert_ne!(
        class.write.top_waiters[0].site,
        class.write.top_holders[0].site
    );
    assert!(
        class.write.top_holders[0]
            .site
            .contains("tests/check/stats.rs")
    );
    assert_eq!(class.read.acquisitions, 0);

    let table = stats.to_string();
    assert!(
        table.contains("stats.contended") && table.contains("waited at"),
        "{table}"
    );
}

#[test]
fn read_and_write_sides_are_separate() {
    init();
    let l = RwLock::with_class("stats.sides", 0);
    for _ in 0..3 {
        let _r = l.read();
    }
    *l.write() += 1;
    let stats = lockdep::stats();
    let class = stats.class("stats.sides").unwrap();
    assert_eq!((class.read.acquisitions, class.write.acquisitions), (3, 1));
    assert_eq!(class.kind, "RwLock");
}
