//! The unchecked build: `lockdep::plain` (and, without the `check` feature, the root types)
//! are parking_lot's locks at the same size with the same behaviour.

use std::mem::size_of;

use parking_lot::lock_api;

#[test]
fn plain_locks_are_the_size_of_parking_lot_locks() {
    assert_eq!(
        size_of::<lockdep::plain::Mutex<u64>>(),
        size_of::<parking_lot::Mutex<u64>>()
    );
    assert_eq!(
        size_of::<lockdep::plain::Mutex<[u8; 3]>>(),
        size_of::<parking_lot::Mutex<[u8; 3]>>()
    );
    assert_eq!(
        size_of::<lockdep::plain::RwLock<u64>>(),
        size_of::<parking_lot::RwLock<u64>>()
    );
    assert_eq!(
        size_of::<lockdep::plain::RecursiveRwLock<u64>>(),
        size_of::<parking_lot::RecursiveRwLock<u64>>()
    );
    assert_eq!(
        size_of::<lockdep::plain::MutexGuard<'static, u64>>(),
        size_of::<parking_lot::MutexGuard<'static, u64>>()
    );
    assert_eq!(
        size_of::<lockdep::plain::RwLockReadGuard<'static, u64>>(),
        size_of::<lock_api::RwLockReadGuard<'static, parking_lot::RawRwLock, u64>>()
    );
    assert_eq!(
        size_of::<lockdep::plain::Condvar>(),
        size_of::<parking_lot::Condvar>()
    );
}

#[cfg(not(feature = "check"))]
#[test]
fn without_the_feature_the_root_types_are_the_plain_ones() {
    assert_eq!(
        size_of::<lockdep::Mutex<u64>>(),
        size_of::<parking_lot::Mutex<u64>>()
    );
    assert_eq!(
        size_of::<lockdep::RwLock<u64>>(),
        size_of::<parking_lot::RwLock<u64>>()
    );
    let same: lockdep::plain::Mutex<u8> = lockdep::Mutex::new(1);
    assert_eq!(same.into_inner(), 1);
    const { assert!(!lockdep::CHECKING_COMPILED) };
    assert_eq!(lockdep::stats(), lockdep::Stats::default());
}

#[test]
fn plain_locks_behave_like_parking_lot() {
    use lockdep::plain::{Mutex, RecursiveRwLock, RwLock};
    let m = Mutex::with_class("plain.m", 1);
    {
        let mut g = m.lock();
        *g += 1;
        assert!(m.try_lock().is_none(), "no re-entrancy, no poisoning");
        m.assert_held(); // compiled to nothing
    }
    assert_eq!(*m.lock_nested(3), 2);

    let l = RwLock::new(5);
    {
        let _r = l.read();
        assert!(l.try_write().is_none());
        assert!(l.try_read().is_some());
    }
    *l.write() += 1;
    assert_eq!(l.into_inner(), 6);

    let r = RecursiveRwLock::new(0);
    let a = r.read();
    let b = r.read();
    assert_eq!(*a + *b, 0);
}

#[test]
fn plain_misuse_is_not_reported_it_is_just_a_lock() {
    // Checking is off here: an inversion passes silently (the checked build reports it).
    let a = lockdep::plain::Mutex::new(());
    let b = lockdep::plain::Mutex::new(());
    {
        let _a = a.lock();
        let _b = b.lock();
    }
    let _b = b.lock();
    let _a = a.lock();
}

#[cfg(all(feature = "check", feature = "serde"))]
#[test]
fn stats_serialize() {
    let m = lockdep::Mutex::with_class("serde.stats", 0);
    *m.lock() += 1;
    let json = serde_json::to_string(&lockdep::stats()).unwrap();
    assert!(json.contains("\"class\":\"serde.stats\""), "{json}");
    assert!(json.contains("\"acquisitions\":1"), "{json}");
}
