//! `serde` support (feature `serde`): a [`ReadMostlyMap`] serializes as a map.

use std::hash::{BuildHasher, Hash};

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::ReadMostlyMap;
use crate::serde_map::FillMap;
use crate::{BuildError, ReserveError};

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
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
    S: BuildHasher + Default,
{
    /// Trusts the length the input announces only up to 1 MiB of presized entries.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::serde_map::deserialize(deserializer)
    }
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> FillMap<K, V> for ReadMostlyMap<K, V, S> {
    fn tables() -> usize {
        crate::sharded::default_shard_count()
    }

    fn with_room(entries: usize) -> Result<Self, BuildError> {
        super::ReadMostlyMapBuilder::new()
            .hasher(S::default())
            .capacity(entries)
            .build()
    }

    fn put(&self, key: K, value: V) -> Result<(), ReserveError> {
        self.insert(key, value);
        Ok(())
    }
}
