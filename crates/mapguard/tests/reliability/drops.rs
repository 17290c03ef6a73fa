//! Every key and value is dropped exactly once, after random sequences of every closure-taking
//! method with closures (and `PartialEq`s) that panic, on every map. Each key and value made gets
//! an id in a [`Ledger`] that counts its drops: a second drop fails at once, and at the end every
//! id must have been dropped once. `clear` and `retain` drop what they remove after the lock is
//! released: a value's `Drop` may write to the map, and one that panics stops no other drop.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use mapguard::{Action, Computed, LockedMap, ReadMostlyMap, ShardedMap};

use crate::hashers::{ConstantHash, FourBitHash, Rng};

/// Drop counts by id.
pub(crate) struct Ledger {
    drops: Vec<AtomicU8>,
    next: AtomicUsize,
}

impl Ledger {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            drops: (0..capacity).map(|_| AtomicU8::new(0)).collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// How many ids were handed out.
    pub(crate) fn made(&self) -> usize {
        self.next.load(Ordering::SeqCst)
    }

    /// Every id was dropped exactly once.
    pub(crate) fn assert_all_dropped_once(&self, what: &str) {
        for id in 0..self.made() {
            let drops = self.drops[id].load(Ordering::SeqCst);
            assert_eq!(
                drops,
                1,
                "{what}: object {id} of {} dropped {drops} times",
                self.made()
            );
        }
    }
}

/// A key or value that records its drop in a [`Ledger`]; equality and hashing use `n` only.
pub(crate) struct Tracked {
    pub(crate) n: u64,
    id: usize,
    ledger: Arc<Ledger>,
}

thread_local! {
    /// When set, `Tracked::eq` panics (a user `PartialEq` that fails).
    static PANIC_IN_EQ: Cell<bool> = const { Cell::new(false) };
}

/// The payload of every planned panic, so the panic hook can keep them quiet.
pub(crate) const PLANNED: &str = "planned panic";

/// Silences planned panics (there are thousands) and reports all others as usual.
pub(crate) fn quiet_planned_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&PLANNED) {
                default(info);
            }
        }));
    });
}

fn planned_panic() -> ! {
    std::panic::panic_any(PLANNED)
}

impl Tracked {
    pub(crate) fn new(n: u64, ledger: &Arc<Ledger>) -> Self {
        let id = ledger.next.fetch_add(1, Ordering::SeqCst);
        assert!(id < ledger.drops.len(), "ledger full");
        Self {
            n,
            id,
            ledger: Arc::clone(ledger),
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Self::new(self.n, &self.ledger)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let before = self.ledger.drops[self.id].fetch_add(1, Ordering::SeqCst);
        assert_eq!(
            before, 0,
            "object {} (n = {}) dropped twice",
            self.id, self.n
        );
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        if PANIC_IN_EQ.with(Cell::get) {
            planned_panic();
        }
        self.n == other.n
    }
}

impl Eq for Tracked {}

impl Hash for Tracked {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.n.hash(state);
    }
}

/// Runs `body`, which may panic (planned); returns `None` if it did.
fn attempt<R>(body: impl FnOnce() -> R) -> Option<R> {
    catch_unwind(AssertUnwindSafe(body)).ok()
}

type Model = BTreeMap<u64, u64>;

const KEYS: u64 = 24;
const STEPS: usize = 3_000;

/// A random sequence on a `ShardedMap`, mirrored in a model; returns the map's contents.
fn sharded_sequence<S: std::hash::BuildHasher>(
    map: &ShardedMap<Tracked, Tracked, S>,
    ledger: &Arc<Ledger>,
    seed: u64,
) {
    let t = |n| Tracked::new(n, ledger);
    let mut model = Model::new();
    let mut rng = Rng(seed);
    for _ in 0..STEPS {
        let (k, v) = (rng.below(KEYS), rng.below(100));
        let panics = rng.below(3) == 0;
        match rng.below(12) {
            0 => assert_eq!(map.insert(t(k), t(v)).map(|x| x.n), model.insert(k, v)),
            1 => assert_eq!(map.remove(&t(k)).map(|x| x.n), model.remove(&k)),
            2 => {
                let got = attempt(|| {
                    map.get_or_insert_with(t(k), || if panics { planned_panic() } else { t(v) })
                        .n
                });
                match (model.get(&k), got) {
                    (Some(&now), got) => assert_eq!(got, Some(now)),
                    (None, None) => assert!(panics),
                    (None, Some(got)) => {
                        assert_eq!(got, v);
                        model.insert(k, v);
                    }
                }
            }
            3 => {
                let got = attempt(|| {
                    map.compute(t(k), |_, old| {
                        if panics {
                            planned_panic()
                        }
                        match old {
                            Some(x) if x.n % 2 == 0 => Action::Remove,
                            _ => Action::Set(t(v)),
                        }
                    });
                });
                if got.is_some() {
                    match model.get(&k) {
                        Some(x) if x % 2 == 0 => {
                            model.remove(&k);
                        }
                        _ => {
                            model.insert(k, v);
                        }
                    }
                }
            }
            4 => {
                let got = attempt(|| {
                    map.update(&t(k), |x| {
                        if panics {
                            planned_panic()
                        }
                        *x = t(v);
                    })
                });
                if let (Some(_), Some(x)) = (got, model.get_mut(&k)) {
                    *x = v;
                }
            }
            5 => {
                let got = attempt(|| {
                    map.remove_if(
                        &t(k),
                        |_, x| if panics { planned_panic() } else { x.n < 50 },
                    )
                    .map(|(_, x)| x.n)
                });
                if let Some(removed) = got {
                    let want = model.get(&k).copied().filter(|x| *x < 50);
                    assert_eq!(removed, want);
                    if want.is_some() {
                        model.remove(&k);
                    }
                }
            }
            6 => {
                let got = attempt(|| {
                    map.entry(t(k))
                        .and_modify(|x| if panics { planned_panic() } else { *x = t(v) })
                        .or_insert_with(|| t(v + 1))
                        .n
                });
                if got.is_some() {
                    let now = model.get(&k).map_or(v + 1, |_| v);
                    model.insert(k, now);
                }
            }
            7 => {
                let got = attempt(|| {
                    map.entry(t(k))
                        .or_insert_with(|| if panics { planned_panic() } else { t(v) })
                        .n
                });
                if got.is_some() {
                    model.entry(k).or_insert(v);
                }
            }
            8 => {
                // Rejects odd values; may panic partway: only what it rejected is gone.
                let stop_after = if panics { rng.below(KEYS) } else { u64::MAX };
                let mut seen = 0;
                let mut rejected = Vec::new();
                let _ = attempt(|| {
                    map.retain(|key, x| {
                        seen += 1;
                        if seen > stop_after {
                            planned_panic()
                        }
                        let keep = x.n % 2 == 0;
                        if !keep {
                            rejected.push(key.n);
                        }
                        keep
                    })
                });
                for key in rejected {
                    model.remove(&key);
                }
            }
            9 => match map.try_insert(t(k), t(v)) {
                Ok(now) => {
                    assert_eq!(now.n, v);
                    assert!(model.insert(k, v).is_none());
                }
                Err(err) => assert_eq!(Some(&err.current.n), model.get(&k)),
            },
            10 if rng.below(20) == 0 => {
                map.clear();
                model.clear();
            }
            _ => assert_eq!(map.get(&t(k)).map(|x| x.n), model.get(&k).copied()),
        }
    }
    let contents: Model = map.iter().map(|r| (r.key().n, r.value().n)).collect();
    assert_eq!(contents, model);
    assert_eq!(map.len(), model.len());
}

fn read_mostly_sequence<S: std::hash::BuildHasher>(
    map: &ReadMostlyMap<Tracked, Tracked, S>,
    ledger: &Arc<Ledger>,
    seed: u64,
) {
    let t = |n| Tracked::new(n, ledger);
    let mut model = Model::new();
    let mut rng = Rng(seed);
    let eq_panics = |panics: bool| PANIC_IN_EQ.with(|flag| flag.set(panics));
    for _ in 0..STEPS {
        let (k, v) = (rng.below(KEYS), rng.below(4));
        let panics = rng.below(3) == 0;
        match rng.below(9) {
            0 => assert_eq!(map.insert(t(k), t(v)), model.insert(k, v).is_some()),
            1 => assert_eq!(map.swap(t(k), t(v)).map(|x| x.n), model.insert(k, v)),
            2 => assert_eq!(map.remove(&t(k)).map(|x| x.n), model.remove(&k)),
            3 => {
                let got = attempt(|| {
                    map.get_or_insert_with(t(k), || if panics { planned_panic() } else { t(v) })
                        .n
                });
                match (model.get(&k), got) {
                    (Some(&now), got) => assert_eq!(got, Some(now)),
                    (None, None) => assert!(panics),
                    (None, Some(got)) => {
                        assert_eq!(got, v);
                        model.insert(k, v);
                    }
                }
            }
            4 => {
                let current = t(v);
                let new = t(rng.below(4));
                let new_n = new.n;
                let key = t(k);
                // Keys compare with `eq` too; let only the values' comparison panic by
                // checking the key is present first (a present key compares its value).
                let present = model.get(&k).copied();
                eq_panics(panics && present.is_some());
                let got = attempt(|| {
                    map.compare_exchange(key, &current, new)
                        .map(|r| r.n)
                        .map_err(|now| now.map(|r| r.n))
                });
                eq_panics(false);
                if let Some(got) = got {
                    match present {
                        Some(x) if x == v => {
                            assert_eq!(got, Ok(x));
                            model.insert(k, new_n);
                        }
                        other => assert_eq!(got, Err(other)),
                    }
                }
            }
            5 => {
                let current = t(v);
                let key = t(k);
                let present = model.get(&k).copied();
                eq_panics(panics && present.is_some());
                let got = attempt(|| map.remove_if_eq(&key, &current));
                eq_panics(false);
                if let Some(got) = got {
                    assert_eq!(got, present == Some(v));
                    if got {
                        model.remove(&k);
                    }
                }
            }
            6 if rng.below(20) == 0 => {
                map.clear();
                model.clear();
            }
            7 => assert_eq!(
                map.get_or_insert(t(k), t(v)).n,
                *model.entry(k).or_insert(v)
            ),
            _ => assert_eq!(map.get(&t(k)).map(|x| x.n), model.get(&k).copied()),
        }
    }
    let contents: Model = map.iter().map(|r| (r.key().n, r.value().n)).collect();
    assert_eq!(contents, model);
    assert_eq!(map.len(), model.len());
}

fn locked_sequence<S: std::hash::BuildHasher>(
    map: &LockedMap<Tracked, Tracked, S>,
    ledger: &Arc<Ledger>,
    seed: u64,
) {
    let t = |n| Tracked::new(n, ledger);
    let mut model = Model::new();
    let mut rng = Rng(seed);
    for _ in 0..STEPS {
        let (k, v) = (rng.below(KEYS), rng.below(100));
        let panics = rng.below(3) == 0;
        match rng.below(9) {
            0 => assert_eq!(map.insert(t(k), t(v)).map(|x| x.n), model.insert(k, v)),
            1 => assert_eq!(map.remove(&t(k)).map(|x| x.n), model.remove(&k)),
            2 => {
                let got = attempt(|| {
                    map.get_or_insert_with(t(k), || if panics { planned_panic() } else { t(v) })
                        .n
                });
                match (model.get(&k), got) {
                    (Some(&now), got) => assert_eq!(got, Some(now)),
                    (None, None) => assert!(panics),
                    (None, Some(got)) => {
                        assert_eq!(got, v);
                        model.insert(k, v);
                    }
                }
            }
            3 => {
                let got = attempt(|| {
                    map.compute(t(k), |_, old| {
                        if panics {
                            planned_panic()
                        }
                        match old {
                            Some(x) if x.n % 2 == 0 => Action::Remove,
                            _ => Action::Set(t(v)),
                        }
                    })
                });
                if let Some(done) = got {
                    match model.get(&k).copied() {
                        Some(x) if x % 2 == 0 => {
                            assert!(matches!(done, Computed::Removed(r) if r.n == x));
                            model.remove(&k);
                        }
                        _ => {
                            model.insert(k, v);
                        }
                    }
                }
            }
            4 => {
                let got = attempt(|| {
                    map.update(&t(k), |x| {
                        if panics {
                            planned_panic()
                        }
                        *x = t(v);
                    })
                });
                if let (Some(_), Some(x)) = (got, model.get_mut(&k)) {
                    *x = v;
                }
            }
            5 => {
                let got = attempt(|| {
                    map.remove_if(
                        &t(k),
                        |_, x| if panics { planned_panic() } else { x.n < 50 },
                    )
                    .map(|(_, x)| x.n)
                });
                if let Some(removed) = got {
                    let want = model.get(&k).copied().filter(|x| *x < 50);
                    assert_eq!(removed, want);
                    if want.is_some() {
                        model.remove(&k);
                    }
                }
            }
            6 => {
                let stop_after = if panics { rng.below(KEYS) } else { u64::MAX };
                let mut seen = 0;
                let mut rejected = Vec::new();
                let _ = attempt(|| {
                    map.retain(|key, x| {
                        seen += 1;
                        if seen > stop_after {
                            planned_panic()
                        }
                        let keep = x.n % 2 == 0;
                        if !keep {
                            rejected.push(key.n);
                        }
                        keep
                    })
                });
                for key in rejected {
                    model.remove(&key);
                }
            }
            7 if rng.below(20) == 0 => {
                map.clear();
                model.clear();
            }
            _ => assert_eq!(map.get(&t(k)).map(|x| x.n), model.get(&k).copied()),
        }
    }
    let contents: Model = map.iter().iter().map(|(k, v)| (k.n, v.n)).collect();
    assert_eq!(contents, model);
    assert_eq!(map.len(), model.len());
}

/// Runs `sequence` on a fresh map from `make` for a few seeds; checks the drops after each.
fn with_seeds<M>(name: &str, make: impl Fn() -> M, sequence: impl Fn(&M, &Arc<Ledger>, u64)) {
    quiet_planned_panics();
    for seed in 0..6 {
        let ledger = Ledger::new(1 << 16);
        let map = make();
        sequence(&map, &ledger, seed);
        drop(map);
        ledger.assert_all_dropped_once(&format!("{name}, seed {seed}"));
        println!(
            "drops {name:<28} seed {seed}: {} keys and values made, each dropped once",
            ledger.made()
        );
    }
}

#[test]
fn sharded_map_drops_everything_once_with_panicking_closures() {
    with_seeds("ShardedMap default", ShardedMap::new, sharded_sequence);
    with_seeds(
        "ShardedMap constant hash",
        || {
            ShardedMap::builder()
                .shards(4)
                .hasher(ConstantHash)
                .build()
                .unwrap()
        },
        sharded_sequence,
    );
    with_seeds(
        "ShardedMap 4-bit hash",
        || {
            ShardedMap::builder()
                .shards(4)
                .hasher(FourBitHash)
                .build()
                .unwrap()
        },
        sharded_sequence,
    );
}

#[test]
fn read_mostly_map_drops_everything_once_with_panicking_closures() {
    with_seeds(
        "ReadMostlyMap default",
        ReadMostlyMap::new,
        read_mostly_sequence,
    );
    with_seeds(
        "ReadMostlyMap constant hash",
        || {
            ReadMostlyMap::builder()
                .shards(2)
                .hasher(ConstantHash)
                .build()
                .unwrap()
        },
        read_mostly_sequence,
    );
    with_seeds(
        "ReadMostlyMap 4-bit hash",
        || {
            ReadMostlyMap::builder()
                .shards(2)
                .hasher(FourBitHash)
                .build()
                .unwrap()
        },
        read_mostly_sequence,
    );
}

#[test]
fn locked_map_drops_everything_once_with_panicking_closures() {
    with_seeds("LockedMap default", LockedMap::new, locked_sequence);
    with_seeds(
        "LockedMap constant hash",
        || LockedMap::builder().hasher(ConstantHash).build().unwrap(),
        locked_sequence,
    );
    with_seeds(
        "LockedMap 4-bit hash",
        || LockedMap::builder().hasher(FourBitHash).build().unwrap(),
        locked_sequence,
    );
}

/// Threads insert, overwrite, swap and remove tracked values concurrently; after the drop every
/// value made was dropped once (no double drop of a replaced value, no leak of a retired one).
#[test]
fn concurrent_writes_drop_every_value_once() {
    fn run<M: Sync>(name: &str, map: M, ledger: &Arc<Ledger>, step: impl Fn(&M, u64, u64) + Sync) {
        std::thread::scope(|scope| {
            for thread in 0..4u64 {
                let (map, step) = (&map, &step);
                scope.spawn(move || {
                    let mut rng = Rng(thread);
                    for _ in 0..20_000 {
                        step(map, rng.below(64), rng.below(4));
                    }
                });
            }
        });
        drop(map);
        ledger.assert_all_dropped_once(name);
        println!(
            "drops {name:<28} concurrent: {} keys and values made, each dropped once",
            ledger.made()
        );
    }
    let ledger = Ledger::new(1 << 19);
    let l = &ledger;
    run("ShardedMap", ShardedMap::new(), l, |m, k, op| match op {
        0 => drop(m.insert(Tracked::new(k, l), Tracked::new(k, l))),
        1 => drop(m.remove(&Tracked::new(k, l))),
        2 => drop(m.get_or_insert_with(Tracked::new(k, l), || Tracked::new(k, l))),
        _ => drop(m.compute(Tracked::new(k, l), |_, _| Action::Set(Tracked::new(k, l)))),
    });
    let ledger = Ledger::new(1 << 19);
    let l = &ledger;
    run(
        "ReadMostlyMap",
        ReadMostlyMap::new(),
        l,
        |m, k, op| match op {
            0 => drop(m.insert(Tracked::new(k, l), Tracked::new(k, l))),
            1 => drop(m.remove(&Tracked::new(k, l))),
            2 => drop(m.get_or_insert_with(Tracked::new(k, l), || Tracked::new(k, l))),
            _ => drop(m.swap(Tracked::new(k, l), Tracked::new(k, l))),
        },
    );
    let ledger = Ledger::new(1 << 19);
    let l = &ledger;
    run("LockedMap", LockedMap::new(), l, |m, k, op| match op {
        0 => drop(m.insert(Tracked::new(k, l), Tracked::new(k, l))),
        1 => drop(m.remove(&Tracked::new(k, l))),
        2 => drop(m.get_or_insert_with(Tracked::new(k, l), || Tracked::new(k, l))),
        _ => drop(m.compute(Tracked::new(k, l), |_, _| Action::Set(Tracked::new(k, l)))),
    });
}

/// The ledger itself catches a leak and a double drop.
#[test]
fn the_ledger_catches_a_leak_and_a_double_drop() {
    quiet_planned_panics();
    let ledger = Ledger::new(4);
    let kept = Tracked::new(1, &ledger);
    drop(Tracked::new(2, &ledger));
    let leak = catch_unwind(AssertUnwindSafe(|| ledger.assert_all_dropped_once("leak")));
    assert!(leak.is_err(), "a value still alive passed as dropped");
    drop(kept);
    ledger.assert_all_dropped_once("all dropped");

    let copy = Tracked::new(3, &ledger);
    // A second handle on the same id, as a double drop would be.
    let twin = std::mem::ManuallyDrop::new(Tracked {
        n: copy.n,
        id: copy.id,
        ledger: Arc::clone(&copy.ledger),
    });
    drop(copy);
    let double = catch_unwind(AssertUnwindSafe(|| {
        drop(std::mem::ManuallyDrop::into_inner(twin))
    }));
    assert!(double.is_err(), "a second drop of the same object passed");
}

/// What a value does when it is dropped.
enum OnDrop {
    Nothing,
    /// Calls this (a write to the map the value was in).
    Call(Box<dyn FnOnce() + Send + Sync>),
    /// Panics (planned) while this is set.
    Panic(Arc<AtomicBool>),
}

/// A tracked value with something to do when dropped.
struct Acting {
    _tracked: Tracked,
    on_drop: OnDrop,
}

impl Drop for Acting {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.on_drop, OnDrop::Nothing) {
            OnDrop::Nothing => {}
            OnDrop::Call(call) => call(),
            OnDrop::Panic(armed) => {
                if armed.load(Ordering::SeqCst) {
                    planned_panic()
                }
            }
        }
    }
}

/// The maps whose `clear` and `retain` drop [`Acting`] values. (A `ReadMostlyMap` drops
/// values under the shard's lock by design: a write from a `Drop` panics, as documented.)
trait DropTarget: Send + Sync + 'static {
    fn put(&self, key: u64, value: Acting);
    /// The write a value's drop makes: removes `key`.
    fn delete(&self, key: u64);
    fn count(&self) -> usize;
    fn clear_all(&self);
    fn retain_even(&self);
}

impl DropTarget for ShardedMap<u64, Acting> {
    fn put(&self, key: u64, value: Acting) {
        self.insert(key, value);
    }
    fn delete(&self, key: u64) {
        self.remove(&key);
    }
    fn count(&self) -> usize {
        self.len()
    }
    fn clear_all(&self) {
        self.clear();
    }
    fn retain_even(&self) {
        self.retain(|k, _| k % 2 == 0);
    }
}

impl DropTarget for LockedMap<u64, Acting> {
    fn put(&self, key: u64, value: Acting) {
        self.insert(key, value);
    }
    fn delete(&self, key: u64) {
        self.remove(&key);
    }
    fn count(&self) -> usize {
        self.len()
    }
    fn clear_all(&self) {
        self.clear();
    }
    fn retain_even(&self) {
        self.retain(|k, _| k % 2 == 0);
    }
}

/// Keys of each map under test: spread over all its shards.
const DROP_KEYS: u64 = 256;

/// Runs `call` on `map` in a thread of its own; panics if it has not returned in 10 s (a
/// `LockedMap` that re-enters its lock hangs). Returns whether `call` panicked.
fn panicked_within_time<M: DropTarget>(map: &Arc<M>, call: fn(&M)) -> bool {
    let (done, finished) = std::sync::mpsc::channel();
    let map = Arc::clone(map);
    std::thread::spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(|| call(&map)));
        drop(map);
        let _ = done.send(outcome.is_err());
    });
    match finished.recv_timeout(std::time::Duration::from_secs(10)) {
        Ok(panicked) => panicked,
        Err(_) => panic!("the call hung: a value's drop waited for the lock it runs under"),
    }
}

/// Whether `retain_even` (else `clear_all`) drops the value of `key`.
fn rejected(retain: bool, key: u64) -> bool {
    !retain || key % 2 == 1
}

/// `clear` (or `retain`) of a map from `make` whose values' drop removes their own key from
/// the map, a write to the shard the value was in: the call does not panic, every value is
/// dropped once, every shard is cleared (or filtered), and the map works on.
fn drops_that_write<M: DropTarget>(name: &str, make: &dyn Fn() -> M, retain: bool) {
    let ledger = Ledger::new(1 << 12);
    let map = Arc::new(make());
    let writes = Arc::new(AtomicUsize::new(0));
    for key in 0..DROP_KEYS {
        let (weak, writes) = (Arc::downgrade(&map), Arc::clone(&writes));
        let write = move || {
            if let Some(map) = weak.upgrade() {
                map.delete(key);
                writes.fetch_add(1, Ordering::SeqCst);
            }
        };
        let value = Acting {
            _tracked: Tracked::new(key, &ledger),
            on_drop: OnDrop::Call(Box::new(write)),
        };
        map.put(key, value);
    }
    let panicked = panicked_within_time(&map, run(retain));
    assert!(
        !panicked,
        "{name}: a value's drop that writes to the map panicked"
    );
    assert_eq!(map.count() as u64, kept(retain), "{name}: len after");
    let dropped = (0..DROP_KEYS).filter(|&k| rejected(retain, k)).count();
    assert_eq!(
        writes.load(Ordering::SeqCst),
        dropped,
        "{name}: writes made by the dropped values"
    );
    let value = Acting {
        _tracked: Tracked::new(DROP_KEYS, &ledger),
        on_drop: OnDrop::Nothing,
    };
    map.put(DROP_KEYS, value);
    assert_eq!(map.count() as u64, kept(retain) + 1, "{name}: usable after");
    drop(map);
    ledger.assert_all_dropped_once(name);
}

/// `clear` (or `retain`) of a map from `make` where one value in 8 of those dropped panics as
/// it drops: the call panics, and still every other value is dropped once and every shard is
/// cleared (or filtered).
fn drops_that_panic<M: DropTarget>(name: &str, make: &dyn Fn() -> M, retain: bool) {
    let ledger = Ledger::new(1 << 12);
    let map = Arc::new(make());
    let armed = Arc::new(AtomicBool::new(true));
    for key in 0..DROP_KEYS {
        let on_drop = if rejected(retain, key) && key % 16 < 2 {
            OnDrop::Panic(Arc::clone(&armed))
        } else {
            OnDrop::Nothing
        };
        let value = Acting {
            _tracked: Tracked::new(key, &ledger),
            on_drop,
        };
        map.put(key, value);
    }
    let panicked = panicked_within_time(&map, run(retain));
    let left = map.count() as u64;
    // Values left behind (and leaked ones) must not panic as the map drops: two panics in one
    // drop abort.
    armed.store(false, Ordering::SeqCst);
    drop(map);
    assert!(panicked, "{name}: the panic of a value's drop was lost");
    assert_eq!(left, kept(retain), "{name}: len after");
    ledger.assert_all_dropped_once(name);
}

/// The call under test.
fn run<M: DropTarget>(retain: bool) -> fn(&M) {
    if retain {
        |m| m.retain_even()
    } else {
        |m| m.clear_all()
    }
}

/// Entries left after the call.
fn kept(retain: bool) -> u64 {
    if retain { DROP_KEYS / 2 } else { 0 }
}

/// One case: the name of the run, the map maker, whether the call is `retain`.
type Case<M> = fn(&str, &dyn Fn() -> M, bool);

/// Every case of [`drops_that_write`] and [`drops_that_panic`]; fails naming all that failed.
fn drops_outside_the_lock<M: DropTarget>(map_name: &str, make: impl Fn() -> M) {
    quiet_planned_panics();
    let mut failed = Vec::new();
    for retain in [false, true] {
        let call = if retain { "retain" } else { "clear" };
        let cases: [(&str, Case<M>); 2] = [
            ("drops that write", drops_that_write),
            ("drops that panic", drops_that_panic),
        ];
        for (what, case) in cases {
            let name = format!("{map_name} {call}, {what}");
            match catch_unwind(AssertUnwindSafe(|| case(&name, &make, retain))) {
                Ok(()) => println!("drops {name:<44}: dropped outside the lock, each once"),
                Err(_) => failed.push(name),
            }
        }
    }
    assert!(failed.is_empty(), "failed (see above): {failed:?}");
}

#[test]
fn sharded_map_clear_and_retain_drop_values_outside_the_lock() {
    drops_outside_the_lock("ShardedMap 8 shards", || {
        ShardedMap::builder().shards(8).build().unwrap()
    });
}

#[test]
fn locked_map_clear_and_retain_drop_values_outside_the_lock() {
    drops_outside_the_lock("LockedMap", LockedMap::new);
}
