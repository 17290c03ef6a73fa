//! `with`, the closure-scoped read of every map: the same answers as `get_cloned` and as a
//! `std::collections::HashMap` model over random operations (with a degraded hasher too), the
//! lock released when the closure returns or panics, and a write from inside the closure to
//! the same shard of a `ShardedMap` reported instead of hanging.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mapguard::{LockedMap, ReadMostlyMap, ShardedMap};
use proptest::prelude::*;

#[path = "support/hashers.rs"]
mod hashers;

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u16),
    Remove(u8),
    With(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Insert(k % 32, v)),
        any::<u8>().prop_map(|k| Op::Remove(k % 32)),
        any::<u8>().prop_map(|k| Op::With(k % 32)),
    ]
}

/// Runs `ops` on a map through the three closures and on a std model, comparing every read.
fn against_model(
    ops: &[Op],
    insert: impl Fn(u8, u16),
    remove: impl Fn(u8),
    with: impl Fn(u8) -> (Option<u32>, Option<u16>),
) {
    let mut model: HashMap<u8, u16> = HashMap::new();
    for op in ops {
        match *op {
            Op::Insert(k, v) => {
                insert(k, v);
                model.insert(k, v);
            }
            Op::Remove(k) => {
                remove(k);
                model.remove(&k);
            }
            Op::With(k) => {
                let (read, cloned) = with(k);
                let expected = model.get(&k).copied();
                assert_eq!(read, expected.map(|v| u32::from(v) * 2), "with({k})");
                assert_eq!(cloned, expected, "get_cloned({k})");
            }
        }
    }
}

/// `fn $name(ops, hasher)`: [`against_model`] on a fresh `$map` (the three maps share the
/// method names but no trait).
macro_rules! model_run {
    ($name:ident, $map:ident) => {
        fn $name<S: BuildHasher + Clone>(ops: &[Op], hasher: S) {
            let map = $map::with_hasher(hasher);
            against_model(
                ops,
                |k, v| {
                    map.insert(k, v);
                },
                |k| {
                    map.remove(&k);
                },
                |k| (map.with(&k, |v| u32::from(*v) * 2), map.get_cloned(&k)),
            );
        }
    };
}

model_run!(sharded, ShardedMap);
model_run!(locked, LockedMap);
model_run!(read_mostly, ReadMostlyMap);

proptest! {
    #[test]
    fn with_agrees_with_std_on_every_map(ops in prop::collection::vec(op(), 1..200)) {
        sharded(&ops, std::collections::hash_map::RandomState::new());
        sharded(&ops, hashers::ConstantHash);
        locked(&ops, std::collections::hash_map::RandomState::new());
        locked(&ops, hashers::ConstantHash);
        read_mostly(&ops, std::collections::hash_map::RandomState::new());
        read_mostly(&ops, hashers::ConstantHash);
    }
}

#[test]
fn a_panicking_closure_leaves_every_map_unlocked() {
    let sharded = ShardedMap::new();
    sharded.insert(1, 1);
    let panicked = catch_unwind(AssertUnwindSafe(|| sharded.with(&1, |_| panic!("boom"))));
    assert!(panicked.is_err());
    sharded.insert(1, 2); // would report a deadlock if the read lock were still held
    assert_eq!(sharded.with(&1, |v| *v), Some(2));

    let locked = LockedMap::new();
    locked.insert(1, 1);
    let panicked = catch_unwind(AssertUnwindSafe(|| locked.with(&1, |_| panic!("boom"))));
    assert!(panicked.is_err());
    locked.insert(1, 2); // would hang if the read lock were still held
    assert_eq!(locked.with(&1, |v| *v), Some(2));
}

#[test]
fn a_write_to_the_same_shard_from_inside_with_panics_instead_of_deadlocking() {
    let map = ShardedMap::new();
    map.insert(1, 1);
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        map.with(&1, |_| {
            map.insert(1, 2);
        })
    }));
    let message = panicked.expect_err("a write under the key's read lock must panic");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(text.contains("deadlock avoided"), "{text}");
    assert!(
        text.contains("with.rs"),
        "both call sites are named: {text}"
    );
    // The read lock went with the panic; the write had no effect.
    assert_eq!(map.get_cloned(&1), Some(1));
    map.insert(1, 3);
    assert_eq!(map.get_cloned(&1), Some(3));
}

#[cfg(feature = "stats")]
#[test]
fn with_counts_a_hit_or_a_miss_like_get_cloned() {
    let sharded = ShardedMap::builder().stats(true).build().unwrap();
    sharded.insert(1, 1);
    assert_eq!(sharded.with(&1, |v| *v), Some(1));
    assert_eq!(sharded.with(&2, |v| *v), None);
    let s = sharded.stats().unwrap();
    assert_eq!((s.gets_hit, s.gets_miss), (1, 1));

    let locked = LockedMap::builder().stats(true).build().unwrap();
    locked.insert(1, 1);
    assert_eq!(locked.with(&1, |v| *v), Some(1));
    assert_eq!(locked.with(&2, |v| *v), None);
    let s = locked.stats().unwrap();
    assert_eq!((s.gets_hit, s.gets_miss), (1, 1));
}
