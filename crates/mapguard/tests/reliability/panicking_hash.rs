//! A `Hash` that panics while a table grows, rehashes or shrinks loses no entry: the call
//! panics, every entry stays with its value, `len` is right and the map works on.
//!
//! The table of each case (one shard) has 12 live entries and no room left, the rest of its
//! capacity taken by removed entries: the state where hashbrown grows by rehashing in place,
//! which drops every entry it has not re-placed when the hasher panics.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};

use mapguard::{Action, LockedMap, ShardedMap};

use crate::drops::{PLANNED, quiet_planned_panics};

/// Keys from here on are never made to panic: the growing calls insert them.
const NEW: u64 = 1 << 32;

/// Entries kept when the others are removed.
const KEPT: u64 = 12;

thread_local! {
    /// When set, hashing a key below [`NEW`] panics.
    static HASH_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// A key whose `Hash` panics on demand (see [`HASH_PANICS`]).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fragile(u64);

impl Hash for Fragile {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if self.0 < NEW && HASH_PANICS.with(Cell::get) {
            std::panic::panic_any(PLANNED);
        }
        self.0.hash(state);
    }
}

/// What the scenario needs of a map.
trait FragileMap {
    fn put(&self, key: u64);
    fn take(&self, key: u64);
    fn value(&self, key: u64) -> Option<u64>;
    fn count(&self) -> usize;
    fn room(&self) -> usize;
    fn entries(&self) -> usize;
}

impl FragileMap for ShardedMap<Fragile, u64> {
    fn put(&self, key: u64) {
        self.insert(Fragile(key), key);
    }
    fn take(&self, key: u64) {
        assert_eq!(self.remove(&Fragile(key)), Some(key));
    }
    fn value(&self, key: u64) -> Option<u64> {
        self.get_cloned(&Fragile(key))
    }
    fn count(&self) -> usize {
        self.len()
    }
    fn room(&self) -> usize {
        self.capacity()
    }
    fn entries(&self) -> usize {
        self.iter().count()
    }
}

impl FragileMap for LockedMap<Fragile, u64> {
    fn put(&self, key: u64) {
        self.insert(Fragile(key), key);
    }
    fn take(&self, key: u64) {
        assert_eq!(self.remove(&Fragile(key)), Some(key));
    }
    fn value(&self, key: u64) -> Option<u64> {
        self.get_cloned(&Fragile(key))
    }
    fn count(&self) -> usize {
        self.len()
    }
    fn room(&self) -> usize {
        self.capacity()
    }
    fn entries(&self) -> usize {
        self.iter().len()
    }
}

/// Calls of one kind made on fresh keys until one panics: enough for any table of the
/// scenario to have to grow.
const CALLS: u64 = 200;

/// Fills and empties `map` until it holds [`KEPT`] entries and its removed entries (tombstones)
/// take all its room, then makes `call` on the keys `NEW..` with hashing of the old keys
/// panicking, until a call panics, and checks that nothing was lost. `call` inserts its key if
/// `inserts`. Returns the number of keys the map held in all.
fn check<M: FragileMap>(name: &str, map: &M, inserts: bool, call: impl Fn(&M, u64)) -> u64 {
    // A removal next to a never-used slot gives its room back, one elsewhere leaves a
    // tombstone: fill and empty again until the tombstones take all the room.
    let mut next = KEPT;
    for key in 0..KEPT {
        map.put(key);
    }
    let mut rounds = 0;
    while map.room() > map.count() {
        rounds += 1;
        assert!(
            rounds <= 1000,
            "{name}: the removed entries keep leaving room"
        );
        let first = next;
        while map.count() < map.room() {
            map.put(next);
            next += 1;
        }
        for key in first..next {
            map.take(key);
        }
    }

    // An insert may reuse a tombstone without growing: the calls go on until one grows.
    HASH_PANICS.with(|on| on.set(true));
    let panicked =
        (NEW..NEW + CALLS).find(|&key| catch_unwind(AssertUnwindSafe(|| call(map, key))).is_err());
    HASH_PANICS.with(|on| on.set(false));
    let Some(panicked) = panicked else {
        panic!("{name}: {CALLS} calls never grew the table (the scenario is broken)");
    };

    let missing: Vec<u64> = (0..KEPT)
        .filter(|&key| map.value(key) != Some(key))
        .collect();
    assert!(
        missing.is_empty(),
        "{name}: entries lost: {missing:?} of 0..{KEPT}; len {}",
        map.count()
    );
    let returned = if inserts { panicked - NEW } else { 0 };
    for key in NEW..NEW + returned {
        assert_eq!(
            map.value(key),
            Some(key),
            "{name}: key {key} of a call that returned"
        );
    }
    assert_eq!(
        map.value(panicked),
        None,
        "{name}: the call that panicked inserted"
    );
    assert_eq!(map.count(), (KEPT + returned) as usize, "{name}: len");
    assert_eq!(
        map.entries(),
        map.count(),
        "{name}: iteration and len disagree"
    );

    // Usable: grows again (hashing the old keys), and every entry is there.
    let more = 2 * NEW..2 * NEW + 200;
    for key in more.clone() {
        map.put(key);
    }
    for key in (0..KEPT).chain(NEW..NEW + returned).chain(more) {
        assert_eq!(map.value(key), Some(key), "{name}: key {key} after growing");
    }
    next
}

/// A ShardedMap call that can grow a table, on a key: its name, whether it inserts the key.
type ShardedCall = (&'static str, bool, fn(&ShardedMap<Fragile, u64>, u64));

fn sharded_calls() -> Vec<ShardedCall> {
    vec![
        ("insert", true, |m, k| {
            m.insert(Fragile(k), k);
        }),
        ("compute", true, |m, k| {
            m.compute(Fragile(k), |_, _| Action::Set(k));
        }),
        ("entry().or_insert", true, |m, k| {
            m.entry(Fragile(k)).or_insert(k);
        }),
        ("get_or_insert", true, |m, k| {
            m.get_or_insert(Fragile(k), k);
        }),
        ("get_or_insert_with", true, |m, k| {
            m.get_or_insert_with(Fragile(k), || k);
        }),
        ("try_insert", true, |m, k| {
            assert!(m.try_insert(Fragile(k), k).is_ok());
        }),
        ("extend", true, |mut m, k| m.extend([(Fragile(k), k)])),
        ("reserve", false, |m, _| m.reserve(1)),
        ("try_reserve", false, |m, _| m.try_reserve(1).unwrap()),
        ("shrink_to_fit", false, |m, _| m.shrink_to_fit()),
    ]
}

/// A LockedMap call that can grow its table, on a key: its name, whether it inserts the key.
type LockedCall = (&'static str, bool, fn(&LockedMap<Fragile, u64>, u64));

fn locked_calls() -> Vec<LockedCall> {
    vec![
        ("insert", true, |m, k| {
            m.insert(Fragile(k), k);
        }),
        ("compute", true, |m, k| {
            m.compute(Fragile(k), |_, _| Action::Set(k));
        }),
        ("get_or_insert", true, |m, k| {
            m.get_or_insert(Fragile(k), k);
        }),
        ("get_or_insert_with", true, |m, k| {
            m.get_or_insert_with(Fragile(k), || k);
        }),
        ("extend", true, |mut m, k| m.extend([(Fragile(k), k)])),
        ("reserve", false, |m, _| m.reserve(1)),
        ("try_reserve", false, |m, _| m.try_reserve(1).unwrap()),
        ("shrink_to_fit", false, |m, _| m.shrink_to_fit()),
    ]
}

/// Runs every case, then fails naming all that lost entries.
fn check_all<M: FragileMap, C: Fn(&M, u64)>(
    map_name: &str,
    make: impl Fn() -> M,
    calls: Vec<(&'static str, bool, C)>,
) {
    quiet_planned_panics();
    let mut failed = Vec::new();
    for (call_name, inserts, call) in calls {
        let name = format!("{map_name} {call_name}");
        let map = make();
        match catch_unwind(AssertUnwindSafe(|| check(&name, &map, inserts, call))) {
            Ok(made) => {
                println!("panicking-hash {name:<32} {made} keys made, {KEPT} kept: nothing lost");
            }
            Err(_) => failed.push(name),
        }
    }
    assert!(failed.is_empty(), "failed (see above): {failed:?}");
}

#[test]
fn sharded_map_loses_nothing_when_hash_panics_while_a_table_grows() {
    let make = || {
        ShardedMap::builder()
            .shards(1)
            .capacity(100)
            .build()
            .unwrap()
    };
    check_all("ShardedMap", make, sharded_calls());
}

#[test]
fn locked_map_loses_nothing_when_hash_panics_while_its_table_grows() {
    check_all(
        "LockedMap",
        || LockedMap::with_capacity(100),
        locked_calls(),
    );
}
