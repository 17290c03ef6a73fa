//! Tests of `LockedMap`: a model test against `std::collections::HashMap` over the whole API
//! (with the default hasher, a presized map, a hasher that gives every key the same hash and one
//! that keeps four bits),
//! a concurrent stress test, and errors.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mapguard::{Action, BuildError, Computed, LockedMap, ReserveError};
use proptest::prelude::*;

/// A hasher that gives every key the same hash.
#[derive(Clone, Default)]
struct SameHash;

impl BuildHasher for SameHash {
    type Hasher = SameHasher;
    fn build_hasher(&self) -> SameHasher {
        SameHasher
    }
}

struct SameHasher;

impl Hasher for SameHasher {
    fn finish(&self) -> u64 {
        42
    }
    fn write(&mut self, _: &[u8]) {}
}

/// A hasher that keeps only four bits of SipHash.
#[derive(Clone, Default)]
struct FourBits;

impl BuildHasher for FourBits {
    type Hasher = FourBitsHasher;
    fn build_hasher(&self) -> FourBitsHasher {
        FourBitsHasher(std::collections::hash_map::DefaultHasher::new())
    }
}

struct FourBitsHasher(std::collections::hash_map::DefaultHasher);

impl Hasher for FourBitsHasher {
    fn finish(&self) -> u64 {
        self.0.finish() & 0xF
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u8),
    Get(u8),
    GetCloned(u8),
    Contains(u8),
    Remove(u8),
    RemoveEntry(u8),
    RemoveIf(u8, u8),
    GetOrInsert(u8, u8),
    GetOrInsertWith(u8, u8),
    Compute(u8, u8),
    Update(u8, u8),
    Retain(u8),
    Iter,
    Len,
    Clear,
    Reserve(u8),
    ShrinkToFit,
    CloneEquals,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..24;
    let value = 0u8..4;
    prop_oneof![
        6 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => key.clone().prop_map(Op::Get),
        1 => key.clone().prop_map(Op::GetCloned),
        1 => key.clone().prop_map(Op::Contains),
        3 => key.clone().prop_map(Op::Remove),
        1 => key.clone().prop_map(Op::RemoveEntry),
        2 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::RemoveIf(k, v)),
        2 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        1 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::GetOrInsertWith(k, v)),
        3 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::Compute(k, v)),
        2 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::Update(k, v)),
        1 => value.clone().prop_map(Op::Retain),
        1 => Just(Op::Iter),
        1 => Just(Op::Len),
        1 => Just(Op::Clear),
        1 => key.prop_map(Op::Reserve),
        1 => Just(Op::ShrinkToFit),
        1 => Just(Op::CloneEquals),
    ]
}

fn contents<S>(map: &LockedMap<u8, u8, S>) -> Vec<(u8, u8)> {
    let mut pairs: Vec<(u8, u8)> = map.iter().iter().map(|(k, v)| (*k, *v)).collect();
    pairs.sort_unstable();
    pairs
}

fn sorted(model: &HashMap<u8, u8>) -> Vec<(u8, u8)> {
    let mut pairs: Vec<(u8, u8)> = model.iter().map(|(k, v)| (*k, *v)).collect();
    pairs.sort_unstable();
    pairs
}

fn check_against_model<S: BuildHasher + Clone>(map: LockedMap<u8, u8, S>, ops: &[Op]) {
    let mut model: HashMap<u8, u8> = HashMap::new();
    for (step, op) in ops.iter().enumerate() {
        let at = format!("step {step}: {op:?}");
        match *op {
            Op::Insert(k, v) => assert_eq!(map.insert(k, v), model.insert(k, v), "{at}"),
            Op::Get(k) => {
                let got = map.get(&k);
                assert_eq!(got.as_deref(), model.get(&k), "{at}");
                if let Some(entry) = got {
                    assert_eq!(*entry.key(), k, "{at}");
                }
            }
            Op::GetCloned(k) => assert_eq!(map.get_cloned(&k), model.get(&k).copied(), "{at}"),
            Op::Contains(k) => assert_eq!(map.contains_key(&k), model.contains_key(&k), "{at}"),
            Op::Remove(k) => assert_eq!(map.remove(&k), model.remove(&k), "{at}"),
            Op::RemoveEntry(k) => {
                assert_eq!(map.remove_entry(&k), model.remove_entry(&k), "{at}");
            }
            Op::RemoveIf(k, v) => {
                let expected = if model.get(&k) == Some(&v) {
                    model.remove_entry(&k)
                } else {
                    None
                };
                assert_eq!(
                    map.remove_if(&k, |_, present| *present == v),
                    expected,
                    "{at}"
                );
            }
            Op::GetOrInsert(k, v) => {
                assert_eq!(
                    *map.get_or_insert(k, v),
                    *model.entry(k).or_insert(v),
                    "{at}"
                );
            }
            Op::GetOrInsertWith(k, v) => {
                let mut called = false;
                let got = *map.get_or_insert_with(k, || {
                    called = true;
                    v
                });
                assert_eq!(called, !model.contains_key(&k), "{at}");
                assert_eq!(got, *model.entry(k).or_insert(v), "{at}");
            }
            Op::Compute(k, v) => {
                // Absent: insert v. Present and equal to v: remove. Present otherwise: keep if
                // odd, else replace with v.
                let computed = map.compute(k, |key, present| {
                    assert_eq!(*key, k);
                    match present {
                        None => Action::Set(v),
                        Some(&p) if p == v => Action::Remove,
                        Some(&p) if p % 2 == 1 => Action::Keep,
                        Some(_) => Action::Set(v),
                    }
                });
                let expected = match model.get(&k).copied() {
                    None => {
                        model.insert(k, v);
                        Computed::Inserted
                    }
                    Some(p) if p == v => {
                        model.remove(&k);
                        Computed::Removed(p)
                    }
                    Some(p) if p % 2 == 1 => Computed::Unchanged,
                    Some(p) => {
                        model.insert(k, v);
                        Computed::Replaced(p)
                    }
                };
                assert_eq!(computed, expected, "{at}");
            }
            Op::Update(k, v) => {
                let expected = model.get_mut(&k).map(|p| {
                    *p = p.wrapping_add(v);
                    *p
                });
                let got = map.update(&k, |p| {
                    *p = p.wrapping_add(v);
                    *p
                });
                assert_eq!(got, expected, "{at}");
            }
            Op::Retain(v) => {
                map.retain(|_, p| *p != v);
                model.retain(|_, p| *p != v);
            }
            Op::Iter => assert_eq!(contents(&map), sorted(&model), "{at}"),
            Op::Len => {
                assert_eq!(map.len(), model.len(), "{at}");
                assert_eq!(map.is_empty(), model.is_empty(), "{at}");
                assert_eq!(map.iter().len(), model.len(), "{at}");
            }
            Op::Clear => {
                map.clear();
                model.clear();
            }
            Op::Reserve(n) => {
                map.reserve(usize::from(n));
                assert!(map.capacity() >= map.len() + usize::from(n), "{at}");
            }
            Op::ShrinkToFit => {
                map.shrink_to_fit();
                assert!(map.capacity() >= map.len(), "{at}");
            }
            Op::CloneEquals => assert_eq!(contents(&map.clone()), sorted(&model), "{at}"),
        }
    }
    assert_eq!(contents(&map), sorted(&model));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn model_default(ops in prop::collection::vec(op(), 1..300)) {
        check_against_model(LockedMap::new(), &ops);
    }

    #[test]
    fn model_presized(ops in prop::collection::vec(op(), 1..300)) {
        check_against_model(LockedMap::with_capacity(64), &ops);
    }

    #[test]
    fn model_same_hash(ops in prop::collection::vec(op(), 1..300)) {
        check_against_model(LockedMap::builder().hasher(SameHash).build().unwrap(), &ops);
    }

    #[test]
    fn model_four_hash_bits(ops in prop::collection::vec(op(), 1..300)) {
        check_against_model(LockedMap::builder().hasher(FourBits).build().unwrap(), &ops);
    }
}

#[test]
fn errors_are_typed() {
    let err = LockedMap::<u64, u64>::builder()
        .capacity(usize::MAX)
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        BuildError::Capacity {
            source: ReserveError::CapacityOverflow,
            ..
        }
    ));
    let map: LockedMap<u64, u64> = LockedMap::new();
    assert_eq!(
        map.try_reserve(usize::MAX),
        Err(ReserveError::CapacityOverflow)
    );
}

#[test]
fn extend_debug_default_borrowed() {
    let mut map: LockedMap<String, u8> = [("a".to_string(), 1)].into_iter().collect();
    map.extend([("b".to_string(), 2), ("a".to_string(), 3)]);
    assert_eq!(map.get_cloned("a"), Some(3));
    assert!(map.contains_key("b"));
    let one: LockedMap<u8, u8> = [(1, 2)].into_iter().collect();
    assert_eq!(format!("{one:?}"), "{1: 2}");
    assert_eq!(
        format!("{:?}", one.get(&1).unwrap()),
        "LockedRef { key: 1, value: 2 }"
    );
    assert!(LockedMap::<u8, u8>::default().is_empty());
}

#[cfg(feature = "serde")]
#[test]
fn serde_round_trip() {
    let map: LockedMap<String, u32> = [("a".to_string(), 1)].into_iter().collect();
    let json = serde_json::to_string(&map).unwrap();
    assert_eq!(json, r#"{"a":1}"#);
    let back: LockedMap<String, u32> = serde_json::from_str(&json).unwrap();
    assert_eq!(back.get_cloned("a"), Some(1));
}

fn f(key: u64) -> Box<u64> {
    Box::new(key.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
}

#[test]
fn concurrent_writers_readers_and_iterators_agree() {
    let map: LockedMap<u64, Box<u64>> = LockedMap::new();
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = round % 1_000;
                match round % 4 {
                    0 | 1 => {
                        map.insert(key, f(key));
                    }
                    2 => {
                        map.remove(&key);
                    }
                    _ => {
                        map.compute(key, |_, _| Action::Set(f(key)));
                    }
                }
                round += 1;
            }
        });
        s.spawn(|| {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = round.wrapping_mul(31) % 1_000;
                if let Some(value) = map.get(&key) {
                    assert_eq!(**value, *f(key));
                }
                if round.is_multiple_of(100) {
                    let mut seen = HashSet::new();
                    for (k, v) in &map.iter() {
                        assert_eq!(**v, *f(*k));
                        assert!(seen.insert(*k), "key {k} seen twice");
                    }
                }
                round += 1;
            }
        });
        // Fills and empties a range while another key must stay put.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                for key in 10_000..10_128 {
                    map.insert(key, f(key));
                }
                for key in 10_000..10_128 {
                    assert!(map.remove(&key).is_some());
                }
                map.shrink_to_fit();
            }
        });
        s.spawn(|| {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = 1_000_000 + round % 16;
                map.insert(key, f(key));
                thread::sleep(Duration::from_micros(round % 10));
                assert_eq!(
                    map.get_cloned(&key).as_deref(),
                    Some(&*f(key)),
                    "key {key} lost"
                );
                assert!(map.remove(&key).is_some());
                round += 1;
            }
        });
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(800) {
            thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
    });
}

/// With the `lockdep` feature each `LockedMap` is a lockdep class of its own: two threads
/// that lock two maps in opposite orders (one after the other, never overlapping) are
/// reported as an inversion; a consistent order is not.
#[cfg(feature = "lockdep")]
#[test]
fn lockdep_reports_an_inversion_between_two_maps() {
    use std::sync::{Arc, Mutex};

    fn reports_of(body: impl FnOnce() + Send + 'static) -> Vec<lockdep::Report> {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&reports);
        thread::spawn(move || {
            lockdep::set_thread_reaction(Some(lockdep::Reaction::Callback(Arc::new(
                move |report: &lockdep::Report| sink.lock().unwrap().push(report.clone()),
            ))));
            body();
        })
        .join()
        .unwrap();
        reports.lock().unwrap().clone()
    }

    let a: Arc<LockedMap<u64, u64>> = Arc::new(LockedMap::new());
    let b: Arc<LockedMap<u64, u64>> = Arc::new(LockedMap::new());
    a.insert(1, 1);
    b.insert(1, 1);

    // Consistent order (a, then b) twice: nothing to report.
    for _ in 0..2 {
        let (a, b) = (Arc::clone(&a), Arc::clone(&b));
        let reports = reports_of(move || {
            let guard = a.get(&1).unwrap();
            b.insert(2, *guard);
        });
        assert!(reports.is_empty(), "consistent order reported: {reports:?}");
    }

    // The opposite order: b held while a is written.
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    let reports = reports_of(move || {
        let guard = b2.get(&1).unwrap();
        a2.insert(3, *guard);
    });
    assert_eq!(reports.len(), 1, "expected one report, got {reports:?}");
    assert_eq!(reports[0].kind(), lockdep::ReportKind::LockOrderInversion);
    let text = reports[0].to_string();
    assert!(
        text.contains("LockedMap#"),
        "report names no map class: {text}"
    );
    // Both maps still work.
    assert_eq!(a.get_cloned(&3), Some(1));
    assert_eq!(b.get_cloned(&2), Some(1));
}

/// With the `lockdep` feature every method that takes the map's lock reports the caller's
/// line, not a line inside the map: re-entering a map while a `get` guard lives is reported
/// with the `get` line and the re-entering line.
#[cfg(feature = "lockdep")]
#[test]
fn lockdep_reports_name_the_callers_lines() {
    use std::sync::atomic::AtomicU32;
    use std::sync::mpsc::RecvTimeoutError;
    use std::sync::{Arc, Mutex};

    type Map = LockedMap<u64, u64>;

    /// Holds a `get` guard and calls `reenter` on the same map; returns what is wrong with
    /// the report, which must name the `get` line and `line`, both in this file. The callback
    /// panics, so a reported write does not block; an unreported one would, and is given up.
    fn check(method: &str, line: u32, reenter: fn(&Map)) -> Option<String> {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&reports);
        let get_line = Arc::new(AtomicU32::new(0));
        let get_line_out = Arc::clone(&get_line);
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        thread::spawn(move || {
            // Dropped when the body ends or unwinds: then the check may look.
            let _done = done_tx;
            lockdep::set_thread_reaction(Some(lockdep::Reaction::Callback(Arc::new(
                move |report: &lockdep::Report| {
                    sink.lock().unwrap().push(report.clone());
                    panic!("stop");
                },
            ))));
            let map = Map::new();
            map.insert(1, 1);
            let (_held, at) = (map.get(&1), line!());
            get_line_out.store(at, Ordering::Relaxed);
            reenter(&map);
        });
        if done_rx.recv_timeout(Duration::from_secs(10)) != Err(RecvTimeoutError::Disconnected) {
            return Some(format!("{method}: hung, nothing reported before blocking"));
        }
        let reports = reports.lock().unwrap();
        let [report] = reports.as_slice() else {
            return Some(format!("{method}: expected one report, got {reports:?}"));
        };
        let expected = [
            format!("{}:{}:", file!(), get_line.load(Ordering::Relaxed)),
            format!("{}:{line}:", file!()),
        ];
        let sites = report.sites();
        let named = sites.len() == 2 && sites.iter().zip(&expected).all(|(s, e)| s.starts_with(e));
        (!named).then(|| format!("{method}: sites {sites:?}, expected {expected:?}"))
    }

    let wrong: Vec<String> = [
        check("get", line!(), |m| _ = m.get(&1)),
        check("get_cloned", line!(), |m| _ = m.get_cloned(&1)),
        check("contains_key", line!(), |m| _ = m.contains_key(&1)),
        check("iter", line!(), |m| _ = m.iter()),
        check("len", line!(), |m| _ = m.len()),
        check("is_empty", line!(), |m| _ = m.is_empty()),
        check("capacity", line!(), |m| _ = m.capacity()),
        check("reserve", line!(), |m| m.reserve(1)),
        check("try_reserve", line!(), |m| _ = m.try_reserve(1)),
        check("shrink_to_fit", line!(), |m| m.shrink_to_fit()),
        check("clone", line!(), |m| _ = m.clone()),
        check("extend", line!(), |mut m| m.extend([(2, 2)])),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(
        wrong.is_empty(),
        "reports name the wrong lines:\n{}",
        wrong.join("\n")
    );
}
