//! Deserialization shared by the maps (feature `serde`): every map deserializes from a serde
//! map by inserting its entries one by one into a map presized for them.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

/// A map that deserialization can fill.
pub(crate) trait FillMap<K, V>: Sized {
    /// An empty map with room for about `capacity` entries and a default hasher.
    fn with_room(capacity: usize) -> Self;
    /// Inserts one entry; a later duplicate key replaces the earlier value.
    fn put(&self, key: K, value: V);
}

/// Deserializes a map of type `M` from a serde map.
pub(crate) fn deserialize<'de, D, K, V, M>(deserializer: D) -> Result<M, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de>,
    V: Deserialize<'de>,
    M: FillMap<K, V>,
{
    type Marker<K, V, M> = PhantomData<fn() -> (K, V, M)>;
    struct MapVisitor<K, V, M>(Marker<K, V, M>);

    impl<'de, K, V, M> Visitor<'de> for MapVisitor<K, V, M>
    where
        K: Deserialize<'de>,
        V: Deserialize<'de>,
        M: FillMap<K, V>,
    {
        type Value = M;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<M, A::Error> {
            // The size hint comes from the input: trust it only up to a modest preallocation.
            let map = M::with_room(access.size_hint().unwrap_or(0).min(1 << 16));
            while let Some((key, value)) = access.next_entry()? {
                map.put(key, value);
            }
            Ok(map)
        }
    }

    deserializer.deserialize_map(MapVisitor(PhantomData))
}
