//! `serde` support (feature `serde`): a [`ReadMostlyMap`] serializes as a map.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::ReadMostlyMap;

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
        type Marker<K, V, S> = PhantomData<fn() -> (K, V, S)>;
        struct MapVisitor<K, V, S>(Marker<K, V, S>);

        impl<'de, K, V, S> Visitor<'de> for MapVisitor<K, V, S>
        where
            K: Deserialize<'de> + Hash + Eq + Clone,
            V: Deserialize<'de>,
            S: BuildHasher + Default,
        {
            type Value = ReadMostlyMap<K, V, S>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let map = ReadMostlyMap::with_capacity_and_hasher(
                    access.size_hint().unwrap_or(0).min(1 << 16),
                    S::default(),
                );
                while let Some((key, value)) = access.next_entry()? {
                    map.insert(key, value);
                }
                Ok(map)
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}
