//! The `lockdep` feature: every shard of every map is a lockdep class of its own, so a
//! lock-order inversion between two shards of one map (dashmap issue 369: get(A) + insert(B)
//! in one thread, get(B) + insert(A) in another) is reported before it can hang, while
//! consistent orders are not reported and same-thread self-deadlocks keep the map's own
//! "deadlock avoided" panic.

use std::sync::{Arc, Mutex};

use lockdep::{Reaction, Report, ReportKind};
use mapguard::{Action, ShardedMap};

use crate::common::{
    TestState, expect_panic, keys_by_shard, map_with_shards, site, within_timeout,
};

type Map = ShardedMap<u64, u64, TestState>;
/// A locking pattern run against a map and its keys by shard.
type Pattern = Box<dyn Fn(&Map, &[Vec<u64>]) + Send + Sync>;
/// A call that must panic.
type Case<'a> = Box<dyn Fn() + 'a>;

/// Records the lockdep reports raised on the calling thread (instead of panicking) until it
/// is dropped.
pub(crate) struct Recorder {
    reports: Arc<Mutex<Vec<Report>>>,
}

impl Recorder {
    pub(crate) fn install() -> Self {
        let reports = Arc::new(Mutex::new(Vec::new()));
        lockdep::set_thread_reaction(Some(record_into(&reports)));
        Self { reports }
    }

    pub(crate) fn reports(&self) -> Vec<Report> {
        self.reports.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        lockdep::set_thread_reaction(None);
    }
}

fn record_into(reports: &Arc<Mutex<Vec<Report>>>) -> Reaction {
    let sink = Arc::clone(reports);
    Reaction::Callback(Arc::new(move |report: &Report| {
        sink.lock().unwrap().push(report.clone());
    }))
}

/// Runs `body` on a new thread that records its reports, including those raised when it
/// exits (locks still registered as held), and returns them.
fn reports_of(what: &str, body: impl FnOnce() + Send + 'static) -> Vec<Report> {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let reaction = record_into(&reports);
    within_timeout(what, move || {
        lockdep::set_thread_reaction(Some(reaction));
        body();
    });
    // `within_timeout` joined the thread, so its exit checks have run.
    reports.lock().unwrap().clone()
}

/// `ShardedMap#<n>.shard[<index>]` of a class as reports print it: `(n, index)`.
fn shard_class(class: &str) -> (u64, usize) {
    let parse = || {
        let rest = class.strip_prefix("`ShardedMap#")?;
        let (map, rest) = rest.split_once(".shard[")?;
        let index = rest.strip_suffix("]`")?;
        Some((map.parse().ok()?, index.parse().ok()?))
    };
    parse().unwrap_or_else(|| panic!("not a shard class: {class}"))
}

/// Asserts that every report is a lock-order inversion between shards of one map, and that
/// there is at least one.
#[track_caller]
pub(crate) fn assert_inversions_within_one_map(reports: &[Report]) {
    assert!(!reports.is_empty(), "lockdep reported nothing");
    let mut maps = Vec::new();
    for report in reports {
        assert_eq!(
            report.kind(),
            ReportKind::LockOrderInversion,
            "unexpected report: {report}"
        );
        maps.extend(report.classes().iter().map(|class| shard_class(class).0));
    }
    maps.dedup();
    assert_eq!(maps.len(), 1, "the reports name several maps: {reports:?}");
}

/// A map with `shards` shards and one present key per shard (`keys[shard]`).
fn filled(shards: usize, per_shard: usize) -> (Arc<Map>, Vec<Vec<u64>>) {
    let map: Arc<Map> = Arc::new(map_with_shards(shards));
    let keys = keys_by_shard(&map, per_shard);
    for key in keys.iter().flatten() {
        map.insert(*key, *key);
    }
    (map, keys)
}

#[test]
fn get_and_insert_in_opposite_orders_is_reported_naming_both_threads_sites() {
    let (map, keys) = filled(8, 1);
    let (a, b) = (keys[3][0], keys[5][0]);

    let first = Arc::clone(&map);
    let first_get = line!() + 3;
    let first_insert = first_get + 1;
    let reports = reports_of("get(a) + insert(b)", move || {
        let guard = first.get(&a).unwrap();
        first.insert(b, 1);
        drop(guard);
    });
    assert!(
        reports.is_empty(),
        "one order alone was reported: {reports:?}"
    );

    // Later, another thread takes the same two shards the other way round. The threads never
    // overlap, so nothing hangs; run at once, they could.
    let second = Arc::clone(&map);
    let second_get = line!() + 3;
    let second_insert = second_get + 1;
    let reports = reports_of("get(b) + insert(a)", move || {
        let guard = second.get(&b).unwrap();
        second.insert(a, 2);
        drop(guard);
    });
    assert_eq!(reports.len(), 1, "expected one report: {reports:?}");
    let report = &reports[0];
    assert_eq!(report.kind(), ReportKind::LockOrderInversion, "{report}");
    // Held: shard 5 (get(b)); taken: shard 3 (insert(a)); both of this one map.
    let classes: Vec<_> = report.classes().iter().map(|c| shard_class(c)).collect();
    assert_eq!(classes.len(), 2, "{report}");
    assert_eq!(classes[0].0, classes[1].0, "{report}");
    assert_eq!((classes[0].1, classes[1].1), (5, 3), "{report}");
    for line in [second_get, second_insert, first_insert] {
        let at = site(file!(), line);
        assert!(
            report.sites().iter().any(|s| s.starts_with(&at)),
            "the report's sites {:?} do not include {at}",
            report.sites()
        );
    }
    // The first thread's get is in the text, as the edge's held lock.
    let text = report.to_string();
    assert!(text.contains(&site(file!(), first_get)), "{text}");
    assert!(text.contains("*** DEADLOCK ***"), "{text}");
    // Reported, then (with a recording reaction) carried on: both inserts happened.
    assert_eq!(map.get_cloned(&a), Some(2));
    assert_eq!(map.get_cloned(&b), Some(1));
}

#[test]
fn inversion_panics_before_the_write_waits_and_leaves_the_map_usable() {
    let (map, keys) = filled(4, 1);
    let (a, b) = (keys[0][0], keys[1][0]);
    {
        let guard = map.get(&a).unwrap();
        map.insert(b, 10);
        drop(guard);
    }
    let other = Arc::clone(&map);
    let message = within_timeout("get(b) + insert(a), lockdep reaction: panic", move || {
        lockdep::set_thread_reaction(Some(Reaction::Panic));
        let message = expect_panic(|| {
            let _guard = other.get(&b).unwrap();
            other.insert(a, 20);
        });
        // The panic unwound out of the insert before it locked anything: this thread holds
        // nothing, so writing both shards works.
        other.insert(a, 30);
        other.insert(b, 31);
        message
    });
    assert!(
        message.contains("lockdep: possible lock-order inversion"),
        "{message}"
    );
    assert_eq!(map.get_cloned(&a), Some(30));
    assert_eq!(map.get_cloned(&b), Some(31));
}

#[test]
fn consistent_orders_are_not_reported() {
    // Each pattern on a map of its own, done by two threads one after the other.
    let patterns: Vec<(&str, Pattern)> = vec![
        (
            "64 read guards in shard order (8 in the thread's slots, 56 overflowing)",
            Box::new(|map, keys| {
                let guards: Vec<_> = keys.iter().map(|k| map.get(&k[0]).unwrap()).collect();
                assert_eq!(guards.len(), 64);
            }),
        ),
        (
            "a guard on one shard while iterating, counting and cloning",
            Box::new(|map, keys| {
                let guard = map.get(&keys[10][0]).unwrap();
                assert_eq!(map.iter().count(), 128);
                assert_eq!(map.len(), 128);
                assert_eq!(map.clone().len(), 128);
                drop(guard);
            }),
        ),
        (
            "a guard on shard A while writing shard B",
            Box::new(|map, keys| {
                let guard = map.get(&keys[7][0]).unwrap();
                map.insert(keys[40][1], 1);
                map.compute(keys[40][1], |_, _| Action::Set(2));
                *map.entry(keys[40][1]).or_insert(0) += 1;
                drop(guard);
            }),
        ),
        (
            "a downgraded write guard on shard A while writing shard B",
            Box::new(|map, keys| {
                let guard = map.entry(keys[3][0]).or_insert(0).downgrade();
                map.insert(keys[4][0], 1);
                drop(guard);
            }),
        ),
        (
            "re-reads of a shard taken after another shard (never wait, so no order)",
            Box::new(|map, keys| {
                let first = map.get(&keys[1][0]).unwrap();
                let other = map.get(&keys[2][0]).unwrap();
                let again = map.get(&keys[1][1]).unwrap();
                drop(first);
                // Shard 1 is still read through `again`: writing shard 3 orders 1 -> 3.
                map.insert(keys[3][0], 0);
                drop((other, again));
            }),
        ),
    ];
    let patterns = Arc::new(patterns);
    for index in 0..patterns.len() {
        let (map, keys) = filled(64, 2);
        for thread in 0..2 {
            let (map, keys, patterns) = (Arc::clone(&map), keys.clone(), Arc::clone(&patterns));
            let (name, _) = &patterns[index];
            let what = format!("{name} (thread {thread})");
            let reports = reports_of(&what, move || (patterns[index].1)(&map, &keys));
            assert!(reports.is_empty(), "{what}: reported {reports:?}");
        }
        // The patterns leave every shard unlocked and unregistered.
        for key in keys.iter().flatten() {
            map.insert(*key, 0);
        }
    }
}

#[test]
fn a_dropped_maps_orders_do_not_apply_to_a_new_map() {
    // Maps dropped and made again often reuse the address; their classes must not.
    for round in 0..4 {
        let (map, keys) = filled(8, 1);
        let (a, b) = (keys[2][0], keys[6][0]);
        let reports = reports_of("one order per map", move || {
            let (x, y) = if round % 2 == 0 { (a, b) } else { (b, a) };
            let guard = map.get(&x).unwrap();
            map.insert(y, 0);
            drop(guard);
        });
        assert!(reports.is_empty(), "round {round}: {reports:?}");
    }
}

#[test]
fn self_deadlocks_still_panic_with_the_maps_message() {
    let reports = reports_of("self-deadlocks", || {
        let (map, keys) = filled(4, 2);
        let (a, a2) = (keys[1][0], keys[1][1]);
        let cases: [(&str, Case<'_>); 4] = [
            (
                "insert while holding get",
                Box::new(|| {
                    let _guard = map.get(&a).unwrap();
                    map.insert(a2, 0);
                }),
            ),
            (
                "get inside compute",
                Box::new(|| {
                    map.compute(a, |_, _| {
                        let _ = map.get_cloned(&a2);
                        Action::Keep
                    });
                }),
            ),
            (
                "insert inside compute",
                Box::new(|| {
                    map.compute(a, |_, _| {
                        map.insert(a2, 0);
                        Action::Keep
                    });
                }),
            ),
            (
                "insert while holding a downgraded guard",
                Box::new(|| {
                    let _guard = map.get_mut(&a).unwrap().downgrade();
                    map.insert(a2, 0);
                }),
            ),
        ];
        for (name, case) in cases {
            let message = expect_panic(case);
            assert!(message.contains("deadlock avoided"), "{name}: {message}");
            assert!(message.contains("shard 1 "), "{name}: {message}");
            assert!(!message.contains("lockdep: "), "{name}: {message}");
        }
        // Nothing is left registered or locked.
        map.insert(a, 1);
        map.insert(a2, 2);
    });
    // No report at all: not during the cases, and no lock registered at thread exit.
    assert!(reports.is_empty(), "{reports:?}");
}
