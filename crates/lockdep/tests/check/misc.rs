//! Locks held at thread exit, `assert_held` / `assert_not_held`, the run-time switch, events,
//! configuration errors.

use std::sync::{Arc, Mutex as StdMutex};

use lockdep::{EventKind, Mutex, ReportKind, RwLock};

use crate::common::{Collected, init, is_child, reports_of, run_in_child};

#[test]
fn lock_held_at_thread_exit_is_reported() {
    init();
    let collected = Collected::default();
    let sink = collected.clone();
    let m: &'static Mutex<()> = Box::leak(Box::new(Mutex::with_class("exit.leaked", ())));
    std::thread::Builder::new()
        .name("leaker".into())
        .spawn(move || {
            sink.install(&[]);
            std::mem::forget(m.lock());
        })
        .unwrap()
        .join()
        .unwrap();
    let report = collected.only(ReportKind::HeldAtThreadExit);
    assert!(report.summary().contains("leaker"), "{}", report.summary());
    assert!(report.to_string().contains("exit.leaked"));
    assert!(report.sites()[0].contains("tests/check/misc.rs"));
}

#[test]
fn assert_held_and_assert_not_held() {
    init();
    let reports = reports_of(|| {
        let m = Mutex::new(());
        let l = RwLock::new(());
        let g = m.lock();
        m.assert_held();
        l.assert_not_held();
        let r = l.read();
        l.assert_held();
        drop((g, r));
        m.assert_not_held();
    });
    assert!(reports.is_empty(), "{reports:?}");

    let not_held = reports_of(|| Mutex::new(()).assert_held());
    assert_eq!(not_held.len(), 1);
    assert_eq!(not_held[0].kind(), ReportKind::NotHeld);
    assert!(not_held[0].sites()[0].contains("tests/check/misc.rs"));

    let held = reports_of(|| {
        let m = RwLock::new(());
        let _w = m.write();
        m.assert_not_held();
    });
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].kind(), ReportKind::UnexpectedlyHeld);
}

#[test]
fn runtime_switch_off_stops_checking() {
    if !is_child() {
        let (ok, out) = run_in_child("misc::runtime_switch_off_stops_checking", 30);
        assert!(ok, "child failed:\n{out}");
        return;
    }
    init();
    let collected = Collected::default();
    collected.install(&[]);
    let a = Mutex::with_class("switch.a", ());
    let b = Mutex::with_class("switch.b", ());
    lockdep::set_enabled(false);
    {
        let _a = a.lock();
        let _b = b.lock();
    }
    {
        let _b = b.lock();
        let _a = a.lock();
    }
    assert!(collected.all().is_empty(), "checking was off");
    lockdep::set_enabled(true);
    // Nothing was learned while off, and checking works again when on.
    {
        let _a = a.lock();
        let _b = b.lock();
    }
    assert!(collected.all().is_empty());
    {
        let _b = b.lock();
        let _a = a.lock();
    }
    assert_eq!(collected.kinds(), vec![ReportKind::LockOrderInversion]);
}

#[test]
fn subscriber_sees_acquire_contend_release_with_class_thread_and_site() {
    init();
    type Seen = (EventKind, String, std::thread::ThreadId, String);
    let seen: Arc<StdMutex<Vec<Seen>>> = Arc::default();
    let sink = Arc::clone(&seen);
    lockdep::set_subscriber(Some(Arc::new(move |e: &lockdep::Event<'_>| {
        if e.class.contains("events.lock") {
            sink.lock()
                .unwrap()
                .push((e.kind, e.class.to_owned(), e.thread, e.site.to_string()));
        }
    })));
    let m = Arc::new(Mutex::with_class("events.lock", ()));
    let guard = m.lock();
    let m2 = Arc::clone(&m);
    let other = std::thread::spawn(move || drop(m2.lock()));
    std::thread::sleep(std::time::Duration::from_millis(50));
    drop(guard);
    let other_id = other.thread().id();
    other.join().unwrap();
    lockdep::set_subscriber(None);

    let events = seen.lock().unwrap().clone();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.0).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Acquired,
            EventKind::Contended,
            EventKind::Released,
            EventKind::Acquired,
            EventKind::Released
        ],
        "{events:?}"
    );
    assert_eq!(events[0].2, std::thread::current().id());
    assert_eq!(events[1].2, other_id);
    assert!(events.iter().all(|e| e.3.contains("tests/check/misc.rs")));
}

#[test]
fn config_errors_are_typed() {
    let zero = lockdep::Config {
        deadlock_timeout: Some(std::time::Duration::ZERO),
        ..lockdep::Config::default()
    };
    assert_eq!(
        lockdep::configure(zero),
        Err(lockdep::ConfigError::ZeroDeadlockTimeout)
    );
    let frames = lockdep::Config {
        max_frames: 100_000,
        ..lockdep::Config::default()
    };
    let err = lockdep::configure(frames).unwrap_err();
    assert!(matches!(
        err,
        lockdep::ConfigError::TooManyFrames { got: 100_000, .. }
    ));
    assert!(err.to_string().contains("at most"));
    init();
}

#[test]
#[should_panic(expected = "subclass 8 is out of range")]
fn subclass_out_of_range_panics() {
    let _ = Mutex::new(()).lock_nested(lockdep::MAX_SUBCLASSES);
}
