//! Tests of `ReadMostlyMap`: model tests against `std::collections::HashMap` over the whole
//! API, across shard counts, capacities and hashers (including one that gives every key the
//! same hash), plus the behaviour of references and errors.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use mapguard::sharded::Action;
use mapguard::{BuildError, ReadMostlyMap, ReserveError};
use proptest::prelude::*;

/// A hasher that gives every key the same hash: every key of the map collides.
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
        0x5555
    }
    fn write(&mut self, _: &[u8]) {}
}

/// A hasher that keeps only four bits of entropy, all in the low bits.
#[derive(Clone, Default)]
struct FewBits;

impl BuildHasher for FewBits {
    type Hasher = FewBitsHasher;
    fn build_hasher(&self) -> FewBitsHasher {
        FewBitsHasher(0)
    }
}

struct FewBitsHasher(u64);

impl Hasher for FewBitsHasher {
    fn finish(&self) -> u64 {
        self.0 & 0xF
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.wrapping_mul(31).wrapping_add(u64::from(b));
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u8),
    Swap(u8, u8),
    Get(u8),
    GetCloned(u8),
    Contains(u8),
    GetOrInsert(u8, u8),
    GetOrInsertWith(u8, u8),
    Remove(u8),
    RemoveIfEq(u8, u8),
    CompareExchange(u8, u8, u8),
    Len,
    Iter,
    Clear,
    Reclaim,
    HoldAndOverwrite(u8, u8),
    TryInsert(u8, u8),
    TryInsertWith(u8, u8),
    RemoveIf(u8, u8),
    Update(u8, u8),
    Compute(u8, u8),
    Retain(u8),
    Reserve(u16),
    ShrinkToFit,
    With(u8),
    Keys,
    CloneEq,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..24;
    let value = 0u8..4;
    prop_oneof![
        6 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::Swap(k, v)),
        3 => key.clone().prop_map(Op::Get),
        1 => key.clone().prop_map(Op::GetCloned),
        1 => key.clone().prop_map(Op::Contains),
        2 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        1 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::GetOrInsertWith(k, v)),
        4 => key.clone().prop_map(Op::Remove),
        2 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::RemoveIfEq(k, v)),
        2 => (key.clone(), value.clone(), value.clone())
            .prop_map(|(k, c, n)| Op::CompareExchange(k, c, n)),
        1 => Just(Op::Len),
        1 => Just(Op::Iter),
        1 => Just(Op::Clear),
        1 => Just(Op::Reclaim),
        1 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::HoldAndOverwrite(k, v)),
        2 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::TryInsert(k, v)),
        1 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::TryInsertWith(k, v)),
        2 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::RemoveIf(k, v)),
        2 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::Update(k, v)),
        2 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::Compute(k, v)),
        1 => value.clone().prop_map(Op::Retain),
        1 => (0u16..600).prop_map(Op::Reserve),
        1 => Just(Op::ShrinkToFit),
        1 => key.prop_map(Op::With),
        1 => Just(Op::Keys),
        1 => Just(Op::CloneEq),
    ]
}

/// Applies `ops` to `map` and to a `HashMap`, checking every answer and the final contents.
fn check_against_model<S: BuildHasher + Clone>(map: ReadMostlyMap<u8, u8, S>, ops: &[Op]) {
    let mut model: HashMap<u8, u8> = HashMap::new();
    for (step, op) in ops.iter().enumerate() {
        let at = format!("step {step}: {op:?}");
        match *op {
            Op::Insert(k, v) => {
                assert_eq!(map.insert(k, v), model.insert(k, v).is_some(), "{at}");
            }
            Op::Swap(k, v) => {
                assert_eq!(map.swap(k, v).map(|r| *r), model.insert(k, v), "{at}");
            }
            Op::Get(k) => {
                let got = map.get(&k);
                assert_eq!(got.as_deref(), model.get(&k), "{at}");
                if let Some(entry) = got {
                    assert_eq!(*entry.key(), k, "{at}");
                }
            }
            Op::GetCloned(k) => assert_eq!(map.get_cloned(&k), model.get(&k).copied(), "{at}"),
            Op::Contains(k) => assert_eq!(map.contains_key(&k), model.contains_key(&k), "{at}"),
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
                assert_eq!(called, !model.contains_key(&k), "{at}: make called");
                assert_eq!(got, *model.entry(k).or_insert(v), "{at}");
            }
            Op::Remove(k) => assert_eq!(map.remove(&k).map(|r| *r), model.remove(&k), "{at}"),
            Op::RemoveIfEq(k, v) => {
                let expected = model.get(&k) == Some(&v);
                if expected {
                    model.remove(&k);
                }
                assert_eq!(map.remove_if_eq(&k, &v), expected, "{at}");
            }
            Op::CompareExchange(k, current, new) => {
                let result = map.compare_exchange(k, &current, new);
                match model.get(&k).copied() {
                    Some(present) if present == current => {
                        assert_eq!(result.map(|r| *r).ok(), Some(current), "{at}");
                        model.insert(k, new);
                    }
                    present => {
                        let actual = result.err().map(|r| r.map(|r| *r));
                        assert_eq!(actual, Some(present), "{at}");
                    }
                }
            }
            Op::Len => {
                assert_eq!(map.len(), model.len(), "{at}");
                assert_eq!(map.is_empty(), model.is_empty(), "{at}");
            }
            Op::Iter => {
                let mut seen: Vec<(u8, u8)> = map.iter().map(|e| (*e.key(), *e)).collect();
                seen.sort_unstable();
                let mut expected: Vec<(u8, u8)> = model.iter().map(|(k, v)| (*k, *v)).collect();
                expected.sort_unstable();
                assert_eq!(seen, expected, "{at}");
            }
            Op::Clear => {
                map.clear();
                model.clear();
            }
            Op::Reclaim => map.reclaim(),
            Op::HoldAndOverwrite(k, v) => {
                // A reference keeps showing the value it was taken with.
                let held = map.get(&k);
                let before = held.as_deref().copied();
                map.insert(k, v.wrapping_add(100));
                map.remove(&k);
                assert_eq!(held.as_deref().copied(), before, "{at}");
                drop(held);
                model.remove(&k);
                map.insert(k, v);
                model.insert(k, v);
            }
            Op::TryInsert(k, v) => match (map.try_insert(k, v), model.get(&k).copied()) {
                (Ok(stored), None) => {
                    assert_eq!(*stored, v, "{at}");
                    model.insert(k, v);
                }
                (Err(err), Some(present)) => {
                    assert_eq!((*err.current, err.value), (present, v), "{at}");
                }
                (result, present) => panic!("{at}: {:?} with {present:?} present", result.is_ok()),
            },
            Op::TryInsertWith(k, v) => {
                let mut called = false;
                let result = map.try_insert_with(k, || {
                    called = true;
                    v
                });
                assert_eq!(called, !model.contains_key(&k), "{at}: make called");
                assert_eq!(result.is_ok(), called, "{at}");
                let got = *result.unwrap_or_else(|present| present);
                assert_eq!(got, *model.entry(k).or_insert(v), "{at}");
            }
            Op::RemoveIf(k, v) => {
                let removed = map.remove_if(&k, |key, value| {
                    assert_eq!(*key, k);
                    *value >= v
                });
                let expected = match model.get(&k) {
                    Some(&present) if present >= v => model.remove(&k),
                    _ => None,
                };
                assert_eq!(removed.map(|r| *r), expected, "{at}");
            }
            Op::Update(k, v) => {
                let updated = map.update(&k, |old| old.wrapping_add(v));
                let expected = model.get_mut(&k).map(|old| {
                    *old = old.wrapping_add(v);
                    *old
                });
                assert_eq!(updated.map(|r| *r), expected, "{at}");
            }
            Op::Compute(k, v) => {
                // Absent: store v; present and equal to v: remove; else keep.
                let after = map.compute(k, |present| match present {
                    None => Action::Set(v),
                    Some(&p) if p == v => Action::Remove,
                    Some(_) => Action::Keep,
                });
                match model.get(&k).copied() {
                    None => {
                        model.insert(k, v);
                    }
                    Some(p) if p == v => {
                        model.remove(&k);
                    }
                    Some(_) => {}
                }
                assert_eq!(after.map(|r| *r), model.get(&k).copied(), "{at}");
            }
            Op::Retain(v) => {
                map.retain(|key, value| (key ^ value) % 4 != v);
                model.retain(|key, value| (*key ^ *value) % 4 != v);
                assert_eq!(map.len(), model.len(), "{at}");
            }
            Op::Reserve(additional) => {
                map.reserve(usize::from(additional));
                assert!(
                    map.capacity() >= model.len() + usize::from(additional),
                    "{at}"
                );
            }
            Op::ShrinkToFit => {
                map.shrink_to_fit();
                assert!(map.capacity() >= model.len(), "{at}");
            }
            Op::With(k) => {
                assert_eq!(
                    map.with(&k, |v| u32::from(*v) * 3),
                    model.get(&k).map(|v| u32::from(*v) * 3),
                    "{at}"
                );
            }
            Op::Keys => {
                let mut keys: Vec<u8> = map.keys().map(|k| *k).collect();
                keys.sort_unstable();
                let mut expected: Vec<u8> = model.keys().copied().collect();
                expected.sort_unstable();
                assert_eq!(keys, expected, "{at}");
                let sum: u32 = map.values().map(|v| u32::from(*v)).sum();
                assert_eq!(
                    sum,
                    model.values().map(|v| u32::from(*v)).sum::<u32>(),
                    "{at}"
                );
            }
            Op::CloneEq => {
                let copy = map.clone();
                assert!(copy == map, "{at}: a clone equals its original");
                assert_eq!(copy.len(), model.len(), "{at}");
                assert_eq!(copy.shard_count(), map.shard_count(), "{at}");
                copy.insert(200, 0);
                assert!(copy != map, "{at}: a key more makes them differ");
                copy.remove(&200);
                if let Some(k) = model.keys().next().copied() {
                    copy.insert(k, model[&k].wrapping_add(1));
                    assert!(copy != map, "{at}: a value changed makes them differ");
                }
            }
        }
    }
    assert_eq!(map.len(), model.len());
    for (k, v) in &model {
        assert_eq!(map.get_cloned(k), Some(*v));
    }
    let debug = format!("{map:?}");
    assert_eq!(debug.matches(':').count(), model.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn model_default(ops in prop::collection::vec(op(), 1..300)) {
        check_against_model(ReadMostlyMap::new(), &ops);
    }

    #[test]
    fn model_one_shard(ops in prop::collection::vec(op(), 1..300)) {
        check_against_model(ReadMostlyMap::builder().shards(1).build().unwrap(), &ops);
    }

    #[test]
    fn model_many_shards_presized(ops in prop::collection::vec(op(), 1..300)) {
        let map = ReadMostlyMap::builder().shards(64).capacity(100).build().unwrap();
        check_against_model(map, &ops);
    }

    #[test]
    fn model_same_hash(ops in prop::collection::vec(op(), 1..300)) {
        let map = ReadMostlyMap::builder().shards(4).hasher(SameHash).build().unwrap();
        check_against_model(map, &ops);
    }

    #[test]
    fn model_few_hash_bits(ops in prop::collection::vec(op(), 1..300)) {
        let map = ReadMostlyMap::builder().shards(2).hasher(FewBits).build().unwrap();
        check_against_model(map, &ops);
    }
}

#[test]
fn growth_and_shrink_keep_every_entry() {
    for shards in [1, 8] {
        let map = ReadMostlyMap::builder().shards(shards).build().unwrap();
        for i in 0..20_000u32 {
            map.insert(i, i * 2);
        }
        assert_eq!(map.len(), 20_000);
        assert!(map.capacity() >= 20_000);
        for i in 0..20_000u32 {
            assert_eq!(map.get_cloned(&i), Some(i * 2), "key {i}");
        }
        let grown = map.capacity();
        for i in 0..19_990u32 {
            assert_eq!(map.remove(&i).map(|v| *v), Some(i * 2));
        }
        assert!(
            map.capacity() < grown / 8,
            "shrank from {grown} to {}",
            map.capacity()
        );
        let rest: Vec<u32> = {
            let mut keys: Vec<u32> = map.iter().map(|e| *e.key()).collect();
            keys.sort_unstable();
            keys
        };
        assert_eq!(rest, (19_990..20_000).collect::<Vec<_>>());
    }
}

#[test]
fn values_larger_than_a_chunk_are_stored_overwritten_and_dropped() {
    // Values of 8 KiB and 96 KiB: cells bigger than a chunk's share of cells, and bigger than
    // a whole chunk's byte bound.
    let small: ReadMostlyMap<u32, [u8; 8192]> = ReadMostlyMap::new();
    let big: ReadMostlyMap<u32, [u8; 96 << 10]> = ReadMostlyMap::new();
    for round in 0..3u8 {
        for key in 0..40u32 {
            small.insert(key, [round ^ key as u8; 8192]);
        }
        for key in 0..3u32 {
            big.insert(key, [round ^ key as u8; 96 << 10]);
        }
    }
    for key in 0..40u32 {
        let value = small.get(&key).expect("stored");
        assert!(value.iter().all(|&b| b == 2 ^ key as u8), "key {key}");
    }
    for key in 0..3u32 {
        let value = big.get(&key).expect("stored");
        assert!(value.iter().all(|&b| b == 2 ^ key as u8), "key {key}");
    }
    assert_eq!((small.len(), big.len()), (40, 3));
    small.clear();
    assert!(small.is_empty());
}

#[test]
fn borrowed_lookups() {
    let map: ReadMostlyMap<String, Vec<u8>> = ReadMostlyMap::new();
    map.insert("alpha".to_string(), vec![1]);
    assert!(map.get("alpha").is_some());
    assert!(map.contains_key("alpha"));
    assert_eq!(map.get_cloned("alpha"), Some(vec![1]));
    assert!(map.remove_if_eq("alpha", &vec![1]));
    assert!(map.remove("alpha").is_none());
}

#[test]
fn builder_errors_are_typed() {
    let err = ReadMostlyMap::<u8, u8>::builder()
        .shards(0)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::ZeroShards { .. }));
    let err = ReadMostlyMap::<u8, u8>::builder()
        .shards(12)
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::ShardsNotPowerOfTwo { shards: 12 });
    let err = ReadMostlyMap::<u8, u8>::builder()
        .shards(1 << 20)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::TooManyShards { .. }));
    let err = ReadMostlyMap::<u64, u64>::builder()
        .capacity(usize::MAX / 2)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BuildError::Capacity {
            capacity: usize::MAX / 2,
            source: ReserveError::CapacityOverflow
        }
    );
    assert!(err.to_string().contains("cannot be allocated"));
}

#[test]
#[should_panic(expected = "mapguard: capacity")]
fn with_capacity_overflow_panics_with_message() {
    let _ = ReadMostlyMap::<u64, u64>::with_capacity(usize::MAX);
}

#[test]
fn extend_from_iter_default_debug() {
    let mut map: ReadMostlyMap<u8, char> = [(1, 'a'), (2, 'b')].into_iter().collect();
    map.extend([(3, 'c')]);
    (&map).extend([(4, 'd')]);
    assert_eq!(map.len(), 4);
    let single: ReadMostlyMap<u8, char> = [(1, 'a')].into_iter().collect();
    assert_eq!(format!("{single:?}"), "{1: 'a'}");
    let empty: ReadMostlyMap<u8, u8> = ReadMostlyMap::default();
    assert!(empty.is_empty());
    assert_eq!(format!("{:?}", empty.get(&1)), "None");
    let r = single.get(&1).unwrap();
    assert_eq!(format!("{r:?}"), "Ref { key: 1, value: 'a' }");
}

#[cfg(feature = "serde")]
#[test]
fn serde_round_trip() {
    let map: ReadMostlyMap<String, u32> = [("a".to_string(), 1), ("b".to_string(), 2)]
        .into_iter()
        .collect();
    let json = serde_json::to_string(&map).unwrap();
    assert!(
        json == r#"{"a":1,"b":2}"# || json == r#"{"b":2,"a":1}"#,
        "{json}"
    );
    let back: ReadMostlyMap<String, u32> = serde_json::from_str(&json).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back.get_cloned("b"), Some(2));
}

/// A key that cannot be cloned and whose `hash` panics while `PANIC_ON_HASH` is set, except
/// for `FragileKey(u32::MAX)`.
#[derive(PartialEq, Eq, Debug)]
struct FragileKey(u32);

static PANIC_ON_HASH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl std::hash::Hash for FragileKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        if self.0 != u32::MAX && PANIC_ON_HASH.load(std::sync::atomic::Ordering::Relaxed) {
            panic!("hash refused");
        }
        self.0.hash(state);
    }
}

#[test]
fn a_panicking_key_hash_during_growth_leaves_the_map_intact() {
    // Growth moves entries without cloning keys (`FragileKey` is not `Clone`), but hashes
    // them again to place them.
    let map = ReadMostlyMap::builder().shards(1).build().unwrap();
    let mut inserted = 0u32;
    // Fill until the next insert of a new key must rebuild the table.
    let grown_at = loop {
        let before = map.capacity();
        map.insert(FragileKey(inserted), inserted);
        inserted += 1;
        if map.capacity() != before && inserted > 8 {
            break map.capacity();
        }
    };
    while map.capacity() == grown_at && map.len() < grown_at {
        map.insert(FragileKey(inserted), inserted);
        inserted += 1;
    }
    // `map.len() == capacity`: the next new key needs a rebuild.
    assert_eq!(map.len(), grown_at);
    PANIC_ON_HASH.store(true, std::sync::atomic::Ordering::Relaxed);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        map.insert(FragileKey(u32::MAX), 0);
    }));
    PANIC_ON_HASH.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(result.is_err());
    assert_eq!(map.len(), inserted as usize);
    assert!(!map.contains_key(&FragileKey(u32::MAX)));
    for i in 0..inserted {
        assert_eq!(map.get_cloned(&FragileKey(i)), Some(i));
    }
    map.insert(FragileKey(u32::MAX), 1);
    assert_eq!(map.get_cloned(&FragileKey(u32::MAX)), Some(1));
    assert!(map.capacity() > grown_at);
}

/// A value whose comparison writes to the map it lives in.
#[derive(Debug)]
struct Reentrant(u64);

static REENTRANT_MAP: std::sync::OnceLock<ReadMostlyMap<u64, Reentrant>> =
    std::sync::OnceLock::new();

impl PartialEq for Reentrant {
    fn eq(&self, other: &Self) -> bool {
        REENTRANT_MAP.get().unwrap().insert(1, Reentrant(99));
        self.0 == other.0
    }
}

#[test]
fn a_write_from_code_under_the_same_shard_lock_panics_instead_of_hanging() {
    let map = REENTRANT_MAP.get_or_init(|| ReadMostlyMap::builder().shards(1).build().unwrap());
    map.insert(1, Reentrant(5));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        map.compare_exchange(1, &Reentrant(5), Reentrant(6))
    }));
    let message = result.unwrap_err();
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap();
    assert!(message.contains("deadlock avoided"), "{message}");
    // The lock was released and the map is unchanged.
    assert_eq!(map.get(&1).map(|v| v.0), Some(5));
    assert!(map.remove(&1).is_some());
}

#[test]
fn maps_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ReadMostlyMap<String, Vec<u8>>>();
    send_sync::<mapguard::LockedMap<String, Vec<u8>>>();
}

/// Values made by [`a_panicking_drop_during_collection_is_contained_and_reported`], with a
/// count of drops per value and the one whose drop panics.
mod bomb {
    use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

    pub(crate) const VALUES: usize = 2_000;
    pub(crate) static DROPS: [AtomicU8; VALUES] = [const { AtomicU8::new(0) }; VALUES];
    pub(crate) static PANICS_AT: AtomicU64 = AtomicU64::new(u64::MAX);

    pub(crate) struct Bomb(pub(crate) u64);

    impl Drop for Bomb {
        fn drop(&mut self) {
            DROPS[self.0 as usize].fetch_add(1, Ordering::SeqCst);
            if self.0 == PANICS_AT.load(Ordering::SeqCst) {
                panic!("bomb {} went off", self.0);
            }
        }
    }
}

/// A ReadMostlyMap frees replaced values in batches, inside whichever later write collects
/// them. A value whose `Drop` panics there must cost neither the rest of its batch (they were
/// leaked) nor an unexplained panic out of an unrelated write: every other value is dropped
/// once, and the collecting write panics before it changes anything, naming itself, the
/// shard and the call that replaced the value, with the value's own panic message.
#[test]
fn a_panicking_drop_during_collection_is_contained_and_reported() {
    use bomb::{Bomb, DROPS, PANICS_AT, VALUES};
    use std::sync::atomic::Ordering;

    let map: ReadMostlyMap<u8, Bomb> = ReadMostlyMap::builder().shards(1).build().unwrap();
    PANICS_AT.store(5, Ordering::SeqCst);
    map.insert(0, Bomb(0));
    let replaced_at = line!() + 3;
    let mut reports = Vec::new();
    for id in 1..VALUES as u64 {
        let outcome = std::panic::catch_unwind(|| map.insert(0, Bomb(id)));
        match outcome {
            Ok(_) => {}
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default();
                // The write had no effect: the value before it is still there.
                assert_eq!(map.get(&0).map(|value| value.0), Some(id - 1), "{message}");
                reports.push((id, message));
            }
        }
    }
    map.reclaim();
    drop(map);
    assert_eq!(reports.len(), 1, "one report: {reports:?}");
    let (write, message) = &reports[0];
    let site = format!("{}:{replaced_at}:", file!());
    assert!(
        message.starts_with("mapguard: a value's Drop panicked while the write at ")
            && message.contains("shard 0 ")
            && message.contains("bomb 5 went off")
            && message.matches(&site).count() == 2,
        "write {write}: {message}"
    );
    for (id, drops) in DROPS.iter().enumerate() {
        assert_eq!(drops.load(Ordering::SeqCst), 1, "value {id} dropped once");
    }
}

#[test]
fn references_held_across_every_kind_of_write_never_block_it() {
    // One shard: every write goes to the shard of every held reference.
    let map: ReadMostlyMap<u32, u32> = ReadMostlyMap::builder().shards(1).build().unwrap();
    for k in 0..64 {
        map.insert(k, k);
    }
    let held: Vec<_> = (0..64).map(|k| map.get(&k).unwrap()).collect();
    let mut keys = map.keys();
    let first_key = keys.next().map(|k| *k);
    map.insert(1, 100);
    map.swap(2, 200);
    assert!(map.update(&3, |v| v + 300).is_some());
    map.compute(4, |_| Action::Remove);
    map.remove_if(&5, |_, _| true);
    map.retain(|k, _| k % 2 == 0);
    map.reserve(10_000);
    map.shrink_to_fit();
    assert!(map.try_insert(1_000, 1).is_ok());
    map.clear();
    map.reclaim();
    // Every reference still shows the value it was taken with.
    for (k, r) in held.iter().enumerate() {
        assert_eq!(**r, k as u32);
    }
    assert!(first_key.is_some());
    drop(keys);
    drop(held);
    assert!(map.is_empty());
}

#[test]
fn a_write_to_its_own_shard_from_a_closure_under_the_lock_panics_naming_it() {
    let map: ReadMostlyMap<u32, u32> = ReadMostlyMap::builder().shards(1).build().unwrap();
    map.insert(1, 1);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        map.retain(|_, _| {
            map.insert(2, 2);
            true
        })
    }));
    let message = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("deadlock avoided"), "{message}");
    // Both calls are named: the insert (inner) and the retain (outer), lines of this file.
    assert_eq!(message.matches(file!()).count(), 2, "{message}");
    // The map is usable afterwards.
    map.insert(3, 3);
    assert_eq!(map.get_cloned(&3), Some(3));
}

#[cfg(feature = "rayon")]
mod parallel {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use mapguard::ReadMostlyMap;
    use mapguard::sharded::Action;
    use rayon::prelude::*;

    #[test]
    fn par_for_each_visits_every_entry_once() {
        let map: ReadMostlyMap<u32, u32> = (0..5000).map(|i| (i, i * 3)).collect();
        let seen = Mutex::new(HashMap::new());
        map.par_for_each(|k, v| {
            assert!(
                seen.lock().unwrap().insert(*k, *v).is_none(),
                "{k} visited twice"
            );
        });
        let expected: HashMap<u32, u32> = (0..5000).map(|i| (i, i * 3)).collect();
        assert_eq!(seen.into_inner().unwrap(), expected);
    }

    #[test]
    fn par_retain_keeps_exactly_the_chosen_entries_and_shrinks() {
        let map: ReadMostlyMap<u32, u32> = (0..5000).map(|i| (i, i)).collect();
        map.par_retain(|k, v| {
            assert_eq!(k, v);
            k % 7 == 0
        });
        let mut kept: Vec<u32> = map.keys().map(|k| *k).collect();
        kept.sort_unstable();
        assert_eq!(kept, (0..5000).filter(|k| k % 7 == 0).collect::<Vec<_>>());
        map.par_retain(|_, _| false);
        assert!(map.is_empty());
        map.insert(1, 1);
        assert_eq!(map.get_cloned(&1), Some(1));
    }

    #[test]
    fn par_extend_and_collect_insert_every_item() {
        let map: ReadMostlyMap<u64, u64> =
            (0..20_000u64).into_par_iter().map(|i| (i, !i)).collect();
        assert_eq!(map.len(), 20_000);
        assert!((0..20_000u64).all(|i| map.get_cloned(&i) == Some(!i)));
        let mut map = map;
        map.par_extend((10_000..30_000u64).into_par_iter().map(|i| (i, i)));
        assert_eq!(map.len(), 30_000);
        assert_eq!(map.get_cloned(&5), Some(!5));
        assert_eq!(map.get_cloned(&15_000), Some(15_000));
    }

    #[test]
    fn parallel_calls_from_under_a_shard_lock_panic_before_any_work() {
        let map: ReadMostlyMap<u32, u32> = (0..100).map(|i| (i, i)).collect();
        for what in ["par_for_each", "par_retain"] {
            let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                map.compute(1, |_| {
                    if what == "par_for_each" {
                        map.par_for_each(|_, _| {});
                    } else {
                        map.par_retain(|_, _| false);
                    }
                    Action::Keep
                });
            }))
            .expect_err("a parallel call under the lock must panic");
            let message = panic
                .downcast_ref::<String>()
                .expect("a formatted message")
                .clone();
            assert!(message.contains("deadlock avoided"), "{message}");
            assert!(message.contains(what), "{message}");
            assert!(
                message.contains("read_mostly.rs"),
                "names the holder: {message}"
            );
        }
        assert_eq!(map.len(), 100, "nothing was removed");
    }
}

#[cfg(feature = "lockdep")]
mod lock_order {
    use std::sync::{Arc, Mutex};

    use lockdep::{Reaction, Report, ReportKind};
    use mapguard::ReadMostlyMap;
    use mapguard::sharded::Action;

    /// Runs `body` on a new thread whose lockdep reports are recorded, and returns them.
    fn reports_of(body: impl FnOnce() + Send + 'static) -> Vec<Report> {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&reports);
        std::thread::spawn(move || {
            lockdep::set_thread_reaction(Some(Reaction::Callback(Arc::new(
                move |report: &Report| sink.lock().unwrap().push(report.clone()),
            ))));
            body();
        })
        .join()
        .unwrap();
        reports.lock().unwrap().clone()
    }

    #[test]
    fn writes_nested_in_opposite_orders_are_reported_naming_both_shards() {
        let map: Arc<ReadMostlyMap<u64, u64>> = Arc::new((0..64).map(|i| (i, i)).collect());
        let a = 0;
        // A key of another shard than `a`'s: writing it under `a`'s lock is no re-entrance.
        let b = (1..64)
            .find(|&b| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    map.compute(a, |_| {
                        map.insert(b, b);
                        Action::Keep
                    })
                }))
                .is_ok()
            })
            .expect("64 keys are not all in one shard");
        // That probe took a's shard then b's: lockdep knows the order. Now the other one, on
        // another thread (the two never overlap, so nothing hangs; at once, they could).
        let other = Arc::clone(&map);
        let reports = reports_of(move || {
            other.compute(b, |_| {
                other.insert(a, 100);
                Action::Keep
            });
        });
        assert_eq!(reports.len(), 1, "expected one report: {reports:?}");
        let report = &reports[0];
        assert_eq!(report.kind(), ReportKind::LockOrderInversion, "{report}");
        assert_eq!(report.classes().len(), 2, "{report}");
        for class in report.classes() {
            assert!(class.contains("ReadMostlyMap#"), "{class}");
            assert!(class.contains(".shard["), "{class}");
        }
        assert_ne!(report.classes()[0], report.classes()[1], "{report}");
        assert!(
            report.sites().iter().any(|s| s.contains("read_mostly.rs")),
            "the sites {:?} name this file",
            report.sites()
        );
        // Reported, then carried on.
        assert_eq!(map.get_cloned(&a), Some(100));
    }

    #[test]
    fn plain_writes_and_one_order_are_not_reported() {
        let map: Arc<ReadMostlyMap<u64, u64>> = Arc::new(ReadMostlyMap::new());
        let other = Arc::clone(&map);
        let reports = reports_of(move || {
            for i in 0..1000 {
                other.insert(i, i);
                other.compute(i, |_| Action::Keep);
            }
            other.retain(|k, _| k % 2 == 0);
            other.clear();
        });
        assert!(reports.is_empty(), "{reports:?}");
    }
}
