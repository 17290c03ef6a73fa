//! Deserialization shared by the maps (feature `serde`): every map deserializes from a serde
//! map by inserting its entries one by one into a map presized for them.
//!
//! The length a format announces comes from the input (a binary format's length prefix is
//! whatever the sender wrote), so it is trusted only so far: a map is presized for at most
//! [`PREALLOCATION_BYTES`] of entries, and a table that cannot grow for the entries that do
//! come is a deserializer error, not a panic or an abort.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor};

use crate::{BuildError, ReserveError};

/// The most entry memory (`size_of::<(K, V)>()` per entry) a deserialized map is presized for,
/// whatever length the input announces: 1 MiB.
pub(crate) const PREALLOCATION_BYTES: usize = 1 << 20;

/// The fewest entries a table is presized for. hashbrown rounds a table up to a power of two
/// of buckets, which for a few entries can be several times what they need; from 16 entries
/// on, it is at most twice. Fewer entries than that per table (or per shard) are not presized:
/// growing to them is cheap.
const MIN_PRESIZED_PER_TABLE: usize = 16;

/// A map that deserialization can fill.
pub(crate) trait FillMap<K, V>: Sized {
    /// The tables `with_room` spreads its entries over.
    fn tables() -> usize;
    /// An empty map with room for about `entries` entries and a default hasher.
    fn with_room(entries: usize) -> Result<Self, BuildError>;
    /// Inserts one entry; a later duplicate key replaces the earlier value.
    fn put(&self, key: K, value: V) -> Result<(), ReserveError>;
}

/// How many entries to presize for, when the input announces `announced` (if anything), with
/// `tables` tables sharing them: at most [`PREALLOCATION_BYTES`] of entries, and none unless
/// each table gets [`MIN_PRESIZED_PER_TABLE`].
fn presized<K, V>(announced: Option<usize>, tables: usize) -> usize {
    let entries =
        (announced.unwrap_or(0)).min(PREALLOCATION_BYTES / std::mem::size_of::<(K, V)>().max(1));
    let per_table = entries / tables.max(1);
    if per_table < MIN_PRESIZED_PER_TABLE {
        0
    } else {
        per_table * tables
    }
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
            let entries = presized::<K, V>(access.size_hint(), M::tables());
            let map = M::with_room(entries)
                .map_err(|err| A::Error::custom(format_args!("deserializing a map: {err}")))?;
            let mut count = 0usize;
            while let Some((key, value)) = access.next_entry()? {
                map.put(key, value).map_err(|err| {
                    A::Error::custom(format_args!(
                        "deserializing a map: no room for entry {}: {err}",
                        count + 1
                    ))
                })?;
                count += 1;
            }
            Ok(map)
        }
    }

    deserializer.deserialize_map(MapVisitor(PhantomData))
}
