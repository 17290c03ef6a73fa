//! mapguard: concurrent maps (work in progress skeleton).
#![allow(missing_docs)]

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::RwLock;

/// The default hasher.
pub type DefaultHashBuilder = foldhash::fast::RandomState;

/// Temporary skeleton; replaced by the real sharded map.
pub struct ShardedMap<K, V, S = DefaultHashBuilder> {
    shards: Vec<RwLock<HashMap<K, V, S>>>,
    hasher: S,
}

impl<K: Hash + Eq, V, S: BuildHasher + Clone> ShardedMap<K, V, S> {
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        let shards = (0..64)
            .map(|_| {
                RwLock::new(HashMap::with_capacity_and_hasher(
                    capacity / 64,
                    hasher.clone(),
                ))
            })
            .collect();
        Self { shards, hasher }
    }
    fn shard<Q: Hash + ?Sized>(&self, k: &Q) -> &RwLock<HashMap<K, V, S>> {
        &self.shards[(self.hasher.hash_one(k) >> 58) as usize]
    }
    pub fn get_cloned<Q>(&self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.shard(k).read().unwrap().get(k).cloned()
    }
    pub fn contains_key<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(k).read().unwrap().contains_key(k)
    }
    pub fn insert(&self, k: K, v: V) -> Option<V> {
        self.shard(&k).write().unwrap().insert(k, v)
    }
    pub fn remove<Q>(&self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(k).write().unwrap().remove(k)
    }
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().unwrap().len()).sum()
    }
}
