//! Model test: random operation sequences over the whole single-threaded API of `ShardedMap`,
//! each run against `std::collections::HashMap` as the model. Every return value is compared,
//! and after every operation the length, emptiness and full contents (through `iter`, `keys` and
//! `values`) are compared too. Keys come from a small space so that hits are frequent. Runs
//! under each configuration of `common::configs`.

use std::collections::HashMap;

use mapguard::{Action, Computed, Entry, ShardedMap};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

use crate::common::{TestState, configs};

type Key = u8;
type Value = u32;
type Map = ShardedMap<Key, Value, TestState>;
type Model = HashMap<Key, Value>;

/// The key space: small, so that most operations hit.
const KEY_SPACE: Key = 24;

#[derive(Debug, Clone, Copy)]
enum Decision {
    Keep,
    Set(Value),
    Remove,
}

#[derive(Debug, Clone)]
enum Op {
    Insert(Key, Value),
    Get(Key),
    GetCloned(Key),
    ContainsKey(Key),
    GetMutAdd(Key, Value),
    Remove(Key),
    RemoveEntry(Key),
    /// Removes the entry if its value is odd (or even, per the flag).
    RemoveIf(Key, bool),
    GetOrInsertWith(Key, Value),
    GetOrInsert(Key, Value),
    TryInsert(Key, Value),
    Compute(Key, Decision),
    Update(Key, Value),
    EntryOrInsert(Key, Value),
    EntryOrDefault(Key),
    EntryAndModifyOrInsert(Key, Value, Value),
    EntryInsertEntry(Key, Value),
    /// Matches on the entry: removes an occupied one, or inserts into a vacant one.
    EntryMatch(Key, Value),
    /// Keeps entries whose `(key + value) % modulus != 0`.
    Retain(u8),
    Clear,
    Extend(Vec<(Key, Value)>),
    Reserve(u16),
    ShrinkToFit,
    /// Replaces the map by a clone of itself (and checks the clone is independent).
    Clone,
}

fn key() -> impl Strategy<Value = Key> {
    0..KEY_SPACE
}

fn value() -> impl Strategy<Value = Value> {
    // Small values make value-dependent decisions go both ways; `any` finds overflow paths.
    prop_oneof![4 => 0..100u32, 1 => any::<u32>()]
}

fn decision() -> impl Strategy<Value = Decision> {
    prop_oneof![
        Just(Decision::Keep),
        value().prop_map(Decision::Set),
        Just(Decision::Remove),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (key(), value()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => key().prop_map(Op::Get),
        2 => key().prop_map(Op::GetCloned),
        2 => key().prop_map(Op::ContainsKey),
        2 => (key(), value()).prop_map(|(k, v)| Op::GetMutAdd(k, v)),
        3 => key().prop_map(Op::Remove),
        2 => key().prop_map(Op::RemoveEntry),
        2 => (key(), any::<bool>()).prop_map(|(k, odd)| Op::RemoveIf(k, odd)),
        2 => (key(), value()).prop_map(|(k, v)| Op::GetOrInsertWith(k, v)),
        1 => (key(), value()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        2 => (key(), value()).prop_map(|(k, v)| Op::TryInsert(k, v)),
        4 => (key(), decision()).prop_map(|(k, d)| Op::Compute(k, d)),
        2 => (key(), value()).prop_map(|(k, v)| Op::Update(k, v)),
        2 => (key(), value()).prop_map(|(k, v)| Op::EntryOrInsert(k, v)),
        1 => key().prop_map(Op::EntryOrDefault),
        2 => (key(), value(), value()).prop_map(|(k, d, v)| Op::EntryAndModifyOrInsert(k, d, v)),
        1 => (key(), value()).prop_map(|(k, v)| Op::EntryInsertEntry(k, v)),
        2 => (key(), value()).prop_map(|(k, v)| Op::EntryMatch(k, v)),
        1 => (2..6u8).prop_map(Op::Retain),
        1 => Just(Op::Clear),
        1 => prop::collection::vec((key(), value()), 0..6).prop_map(Op::Extend),
        1 => (0..300u16).prop_map(Op::Reserve),
        1 => Just(Op::ShrinkToFit),
        1 => Just(Op::Clone),
    ]
}

/// Applies `op` to the map and the model, comparing every result.
fn apply(map: &mut Map, model: &mut Model, op: &Op) {
    match *op {
        Op::Insert(k, v) => assert_eq!(map.insert(k, v), model.insert(k, v)),
        Op::Get(k) => {
            let got = map.get(&k);
            assert_eq!(got.as_ref().map(|r| r.pair()), model.get_key_value(&k));
            if let Some(r) = got {
                assert_eq!((*r.key(), *r.value(), *r), (k, model[&k], model[&k]));
                assert!(r.shard() < map.shard_count());
            }
        }
        Op::GetCloned(k) => assert_eq!(map.get_cloned(&k), model.get(&k).copied()),
        Op::ContainsKey(k) => assert_eq!(map.contains_key(&k), model.contains_key(&k)),
        Op::GetMutAdd(k, d) => {
            let got = map.get_mut(&k).map(|mut r| {
                assert_eq!(*r.key(), k);
                *r = r.wrapping_add(d);
                *r.value()
            });
            let want = model.get_mut(&k).map(|v| {
                *v = v.wrapping_add(d);
                *v
            });
            assert_eq!(got, want);
        }
        Op::Remove(k) => assert_eq!(map.remove(&k), model.remove(&k)),
        Op::RemoveEntry(k) => assert_eq!(map.remove_entry(&k), model.remove_entry(&k)),
        Op::RemoveIf(k, odd) => {
            let mut called_with = None;
            let got = map.remove_if(&k, |key, v| {
                called_with = Some((*key, *v));
                (v % 2 == 1) == odd
            });
            assert_eq!(called_with, model.get(&k).map(|v| (k, *v)));
            let want = match model.get(&k) {
                Some(v) if (v % 2 == 1) == odd => model.remove_entry(&k),
                _ => None,
            };
            assert_eq!(got, want);
        }
        Op::GetOrInsertWith(k, v) => {
            let mut made = false;
            let got = *map.get_or_insert_with(k, || {
                made = true;
                v
            });
            assert_eq!(made, !model.contains_key(&k), "make called iff absent");
            assert_eq!(got, *model.entry(k).or_insert(v));
        }
        Op::GetOrInsert(k, v) => {
            let got = map.get_or_insert(k, v);
            assert_eq!(*got.key(), k);
            assert_eq!(*got, *model.entry(k).or_insert(v));
        }
        Op::TryInsert(k, v) => match map.try_insert(k, v) {
            Ok(r) => {
                assert!(!model.contains_key(&k), "try_insert replaced key {k}");
                assert_eq!(*r, v);
                model.insert(k, v);
            }
            Err(err) => {
                assert_eq!(err.value, v);
                assert_eq!(*err.current.key(), k);
                assert_eq!(Some(&*err.current), model.get(&k));
            }
        },
        Op::Compute(k, decision) => {
            let mut saw = None;
            let got = map.compute(k, |key, old| {
                saw = Some((*key, old.copied()));
                match decision {
                    Decision::Keep => Action::Keep,
                    Decision::Set(v) => Action::Set(v),
                    Decision::Remove => Action::Remove,
                }
            });
            assert_eq!(saw, Some((k, model.get(&k).copied())));
            let want = match (decision, model.get(&k).copied()) {
                (Decision::Keep, _) | (Decision::Remove, None) => Computed::Unchanged,
                (Decision::Set(v), None) => {
                    model.insert(k, v);
                    Computed::Inserted
                }
                (Decision::Set(v), Some(old)) => {
                    model.insert(k, v);
                    Computed::Replaced(old)
                }
                (Decision::Remove, Some(old)) => {
                    model.remove(&k);
                    Computed::Removed(old)
                }
            };
            assert_eq!(got, want);
        }
        Op::Update(k, d) => {
            let got = map.update(&k, |v| {
                *v = v.wrapping_mul(3).wrapping_add(d);
                *v
            });
            let want = model.get_mut(&k).map(|v| {
                *v = v.wrapping_mul(3).wrapping_add(d);
                *v
            });
            assert_eq!(got, want);
        }
        Op::EntryOrInsert(k, v) => {
            let entry = map.entry(k);
            assert_eq!(*entry.key(), k);
            let got = entry.or_insert(v);
            assert_eq!(*got.key(), k);
            assert_eq!(*got, *model.entry(k).or_insert(v));
        }
        Op::EntryOrDefault(k) => {
            assert_eq!(*map.entry(k).or_default(), *model.entry(k).or_default());
        }
        Op::EntryAndModifyOrInsert(k, d, v) => {
            let got = *map
                .entry(k)
                .and_modify(|x| *x = x.wrapping_add(d))
                .or_insert(v);
            let want = *model
                .entry(k)
                .and_modify(|x| *x = x.wrapping_add(d))
                .or_insert(v);
            assert_eq!(got, want);
        }
        Op::EntryInsertEntry(k, v) => {
            let got = map.entry(k).insert_entry(v);
            assert_eq!((*got.key(), *got), (k, v));
            model.insert(k, v);
        }
        Op::EntryMatch(k, v) => match map.entry(k) {
            Entry::Occupied(mut occupied) => {
                let present = model.remove(&k).expect("map has a key the model lacks");
                assert_eq!((*occupied.key(), *occupied.get()), (k, present));
                *occupied.get_mut() = present.wrapping_add(1);
                assert_eq!(occupied.insert(v), present.wrapping_add(1));
                assert_eq!(occupied.remove_entry(), (k, v));
            }
            Entry::Vacant(vacant) => {
                assert!(!model.contains_key(&k), "map lacks a key the model has");
                assert_eq!(*vacant.key(), k);
                let mut inserted = vacant.insert(v);
                *inserted.value_mut() = v ^ 1;
                assert_eq!(inserted.pair_mut(), (&k, &mut (v ^ 1)));
                model.insert(k, v ^ 1);
            }
        },
        Op::Retain(modulus) => {
            let keep = |k: &Key, v: &mut Value| {
                !u32::from(*k)
                    .wrapping_add(*v)
                    .is_multiple_of(u32::from(modulus))
            };
            let mut visited = Vec::new();
            map.retain(|k, v| {
                visited.push((*k, *v));
                keep(k, v)
            });
            visited.sort_unstable();
            let mut want_visited: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
            want_visited.sort_unstable();
            assert_eq!(visited, want_visited, "retain must visit each entry once");
            model.retain(|k, v| keep(k, v));
        }
        Op::Clear => {
            map.clear();
            model.clear();
        }
        Op::Extend(ref pairs) => {
            let mut shared: &Map = map;
            shared.extend(pairs.iter().copied());
            model.extend(pairs.iter().copied());
        }
        Op::Reserve(n) => {
            let additional = usize::from(n);
            map.reserve(additional);
            assert!(map.capacity() >= map.len() + additional);
            assert!(map.try_reserve(additional).is_ok());
        }
        Op::ShrinkToFit => {
            map.shrink_to_fit();
            assert!(map.capacity() >= map.len());
        }
        Op::Clone => {
            let copy = map.clone();
            assert_eq!(copy.shard_count(), map.shard_count());
            // The copy is independent of the original.
            map.insert(200, 1);
            assert!(!copy.contains_key(&200));
            assert_eq!(map.remove(&200), Some(1));
            *map = copy;
        }
    }
}

/// Compares everything the map shows about its contents with the model.
fn check_contents(map: &Map, model: &Model) {
    assert_eq!(map.len(), model.len());
    assert_eq!(map.is_empty(), model.is_empty());
    assert!(map.capacity() >= map.len());
    let mut pairs: Vec<(Key, Value)> = map.iter().map(|r| (*r.key(), *r.value())).collect();
    pairs.sort_unstable();
    let mut want: Vec<(Key, Value)> = model.iter().map(|(k, v)| (*k, *v)).collect();
    want.sort_unstable();
    assert_eq!(pairs, want, "iter() contents");
    let mut keys: Vec<Key> = map.keys().map(|k| *k).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        want.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        "keys()"
    );
    let mut values: Vec<Value> = map.values().map(|v| *v).collect();
    values.sort_unstable();
    let mut want_values: Vec<Value> = model.values().copied().collect();
    want_values.sort_unstable();
    assert_eq!(values, want_values, "values()");
    for key in 0..KEY_SPACE {
        assert_eq!(map.get_cloned(&key), model.get(&key).copied(), "key {key}");
    }
}

#[test]
fn matches_std_hashmap() {
    for config in configs() {
        let mut runner = TestRunner::new(RunnerConfig {
            cases: 256,
            failure_persistence: None,
            ..RunnerConfig::default()
        });
        let result = runner.run(&prop::collection::vec(op(), 1..80), |ops| {
            let mut map: Map = config.map();
            let mut model = Model::new();
            for op in &ops {
                apply(&mut map, &mut model, op);
                check_contents(&map, &model);
            }
            let mut owned: Vec<(Key, Value)> = map.into_iter().collect();
            owned.sort_unstable();
            let mut want: Vec<(Key, Value)> = model.into_iter().collect();
            want.sort_unstable();
            prop_assert_eq!(owned, want, "into_iter() contents");
            Ok(())
        });
        if let Err(failure) = result {
            panic!("configuration `{}`: {failure}", config.name);
        }
    }
}

/// Lookups by a borrowed form of the key, as with std: `String` keys looked up by `&str`.
#[test]
fn lookups_by_borrowed_key() {
    for config in configs() {
        let map: ShardedMap<String, u32, TestState> = config.map();
        let mut model: HashMap<String, u32> = HashMap::new();
        for i in 0..50u32 {
            let key = format!("key-{}", i % 20);
            assert_eq!(map.insert(key.clone(), i), model.insert(key, i));
        }
        for i in 0..25u32 {
            let key = format!("key-{i}");
            let key = key.as_str();
            assert_eq!(map.get(key).map(|r| *r), model.get(key).copied());
            assert_eq!(map.contains_key(key), model.contains_key(key));
            assert_eq!(map.get_cloned(key), model.get(key).copied());
            assert_eq!(map.update(key, |v| *v + 1), model.get(key).map(|v| v + 1));
            assert_eq!(map.get_mut(key).map(|r| *r), model.get(key).copied());
            if i % 3 == 0 {
                assert_eq!(map.remove(key), model.remove(key));
            } else if i % 3 == 1 {
                assert_eq!(map.remove_entry(key), model.remove_entry(key));
            } else {
                assert_eq!(map.remove_if(key, |_, _| true), model.remove_entry(key));
            }
        }
        assert!(map.is_empty() && model.is_empty());
    }
}
