//! One interface over the three maps (and their hasher variants), so that each workload runs on
//! every map.

use std::hash::BuildHasher;

use mapguard::{Action, LockedMap, ReadMostlyMap, ShardedMap};

use crate::hashers::{ConstantHash, FourBitHash};

/// The operations the workloads use, on `u64` keys and values.
pub(crate) trait TestMap: Send + Sync {
    fn insert(&self, key: u64, value: u64);
    fn get(&self, key: u64) -> Option<u64>;
    fn contains(&self, key: u64) -> bool;
    fn remove(&self, key: u64) -> Option<u64>;
    /// Inserts `value` if `key` is absent; returns the value present afterwards.
    fn get_or_insert(&self, key: u64, value: u64) -> u64;
    /// Adds `delta` to the value of `key` (0 if absent) in one atomic step.
    fn add(&self, key: u64, delta: u64);
    fn len(&self) -> usize;
    /// Every entry, by iteration.
    fn entries(&self) -> Vec<(u64, u64)>;
    /// Whether an iteration may see a key twice when it is removed and inserted again
    /// meanwhile (ReadMostlyMap's documented iteration guarantee: the old slot and the new).
    fn may_repeat_reinserted_keys(&self) -> bool {
        false
    }
    /// Gives memory back where the map does not do it by itself.
    fn shrink(&self);
    fn clear(&self);
}

impl<S: BuildHasher + Send + Sync> TestMap for ShardedMap<u64, u64, S> {
    fn insert(&self, key: u64, value: u64) {
        ShardedMap::insert(self, key, value);
    }
    fn get(&self, key: u64) -> Option<u64> {
        ShardedMap::get(self, &key).map(|r| *r)
    }
    fn contains(&self, key: u64) -> bool {
        self.contains_key(&key)
    }
    fn remove(&self, key: u64) -> Option<u64> {
        ShardedMap::remove(self, &key)
    }
    fn get_or_insert(&self, key: u64, value: u64) -> u64 {
        *ShardedMap::get_or_insert(self, key, value)
    }
    fn add(&self, key: u64, delta: u64) {
        self.compute(key, |_, old| Action::Set(old.copied().unwrap_or(0) + delta));
    }
    fn len(&self) -> usize {
        ShardedMap::len(self)
    }
    fn entries(&self) -> Vec<(u64, u64)> {
        self.iter().map(|r| (*r.key(), *r.value())).collect()
    }
    fn shrink(&self) {
        self.shrink_to_fit();
    }
    fn clear(&self) {
        ShardedMap::clear(self);
    }
}

impl<S: BuildHasher + Send + Sync> TestMap for ReadMostlyMap<u64, u64, S> {
    fn insert(&self, key: u64, value: u64) {
        ReadMostlyMap::insert(self, key, value);
    }
    fn get(&self, key: u64) -> Option<u64> {
        ReadMostlyMap::get(self, &key).map(|r| *r)
    }
    fn contains(&self, key: u64) -> bool {
        self.contains_key(&key)
    }
    fn remove(&self, key: u64) -> Option<u64> {
        ReadMostlyMap::remove(self, &key).map(|r| *r)
    }
    fn get_or_insert(&self, key: u64, value: u64) -> u64 {
        *ReadMostlyMap::get_or_insert(self, key, value)
    }
    fn add(&self, key: u64, delta: u64) {
        let mut seen = *ReadMostlyMap::get_or_insert(self, key, 0);
        loop {
            match self.compare_exchange(key, &seen, seen + delta) {
                Ok(_) => return,
                Err(Some(now)) => seen = *now,
                Err(None) => seen = *ReadMostlyMap::get_or_insert(self, key, 0),
            }
        }
    }
    fn len(&self) -> usize {
        ReadMostlyMap::len(self)
    }
    fn entries(&self) -> Vec<(u64, u64)> {
        self.iter().map(|r| (*r.key(), *r.value())).collect()
    }
    fn may_repeat_reinserted_keys(&self) -> bool {
        true
    }
    fn shrink(&self) {}
    fn clear(&self) {
        ReadMostlyMap::clear(self);
    }
}

impl<S: BuildHasher + Send + Sync> TestMap for LockedMap<u64, u64, S> {
    fn insert(&self, key: u64, value: u64) {
        LockedMap::insert(self, key, value);
    }
    fn get(&self, key: u64) -> Option<u64> {
        LockedMap::get(self, &key).map(|r| *r)
    }
    fn contains(&self, key: u64) -> bool {
        self.contains_key(&key)
    }
    fn remove(&self, key: u64) -> Option<u64> {
        LockedMap::remove(self, &key)
    }
    fn get_or_insert(&self, key: u64, value: u64) -> u64 {
        *LockedMap::get_or_insert(self, key, value)
    }
    fn add(&self, key: u64, delta: u64) {
        self.compute(key, |_, old| Action::Set(old.copied().unwrap_or(0) + delta));
    }
    fn len(&self) -> usize {
        LockedMap::len(self)
    }
    fn entries(&self) -> Vec<(u64, u64)> {
        self.iter().iter().map(|(k, v)| (*k, *v)).collect()
    }
    fn shrink(&self) {
        self.shrink_to_fit();
    }
    fn clear(&self) {
        LockedMap::clear(self);
    }
}

/// A named map under test.
pub(crate) struct Named {
    pub(crate) name: &'static str,
    pub(crate) map: Box<dyn TestMap>,
}

fn named(name: &'static str, map: impl TestMap + 'static) -> Named {
    Named {
        name,
        map: Box::new(map),
    }
}

/// Every map with its default hasher, and the sharded ones with one shard too.
pub(crate) fn every_map() -> Vec<Named> {
    vec![
        named("ShardedMap default", ShardedMap::<u64, u64>::new()),
        named(
            "ShardedMap 1 shard",
            ShardedMap::<u64, u64>::builder().shards(1).build().unwrap(),
        ),
        named("ReadMostlyMap default", ReadMostlyMap::<u64, u64>::new()),
        named(
            "ReadMostlyMap 1 shard",
            ReadMostlyMap::<u64, u64>::builder()
                .shards(1)
                .build()
                .unwrap(),
        ),
        named("LockedMap", LockedMap::<u64, u64>::new()),
    ]
}

/// Every map with a hasher keeping four bits, and with a constant hasher.
pub(crate) fn every_degraded_map() -> Vec<Named> {
    vec![
        named(
            "ShardedMap 4-bit hash",
            ShardedMap::builder()
                .shards(8)
                .hasher(FourBitHash)
                .build()
                .unwrap(),
        ),
        named(
            "ShardedMap constant hash",
            ShardedMap::builder()
                .shards(8)
                .hasher(ConstantHash)
                .build()
                .unwrap(),
        ),
        named(
            "ReadMostlyMap 4-bit hash",
            ReadMostlyMap::builder()
                .shards(4)
                .hasher(FourBitHash)
                .build()
                .unwrap(),
        ),
        named(
            "ReadMostlyMap constant hash",
            ReadMostlyMap::builder()
                .shards(4)
                .hasher(ConstantHash)
                .build()
                .unwrap(),
        ),
        named(
            "LockedMap 4-bit hash",
            LockedMap::builder().hasher(FourBitHash).build().unwrap(),
        ),
        named(
            "LockedMap constant hash",
            LockedMap::builder().hasher(ConstantHash).build().unwrap(),
        ),
    ]
}
