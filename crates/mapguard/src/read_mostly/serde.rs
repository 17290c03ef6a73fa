//! `serde` support (feature `serde`): a [`ReadMostlyMap`] serializes as a map.

use std::hash::{BuildHasher, Hash};

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::ReadMostlyMap;
use crate::serde_map::FillMap;

impl<K: Serialize, V: Serialize, S> Serialize for ReadMostlyMap<K, V, S> {
    /// Serializes shard by shard, with the guarantees of [`ReadMostlyMap::iter`]. The length
    /// announced up front is not passed, since concurrent writers may change it.
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        let mut map = serializer.serialize_map(None)?;
        for entry in self.iter() {
            map.serialize_entry(entry.key(), entry.value())?;
        }
        map.end()
    }
}

impl<'de, K, V, S> Deserialize<'de> for ReadMostlyMap<K, V, S>
where
    K: Deserialize<'de> + Hash + Eq + Clone,
    V: Deserialize<'de>,
    S: BuildHasher + Default,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::serde_map::deserialize(deserializer)
    }
}

impl<K: Hash + Eq + Clone, V, S: BuildHasher + Default> FillMap<K, V> for ReadMostlyMap<K, V, S> {
    fn with_room(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, S::default())
    }

    fn put(&self, key: K, value: V) {
        self.insert(key, value);
    }
}
