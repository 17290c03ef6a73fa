//! Every builder rejects every invalid configuration with a typed error whose message says what
//! was wrong and what is allowed, and the map-level allocation methods do the same.

use mapguard::sharded::MAX_SHARDS;
use mapguard::{BuildError, LockedMap, ReadMostlyMap, ReserveError, ShardedMap};

/// Shard counts no builder may accept, with the error each must give.
fn bad_shard_counts() -> Vec<(usize, BuildError)> {
    let mut bad = vec![
        (0, BuildError::ZeroShards { max: MAX_SHARDS }),
        (3, BuildError::ShardsNotPowerOfTwo { shards: 3 }),
        (6, BuildError::ShardsNotPowerOfTwo { shards: 6 }),
        (1000, BuildError::ShardsNotPowerOfTwo { shards: 1000 }),
        (
            MAX_SHARDS - 1,
            BuildError::ShardsNotPowerOfTwo {
                shards: MAX_SHARDS - 1,
            },
        ),
    ];
    for shards in [
        MAX_SHARDS + 1,
        MAX_SHARDS * 2,
        usize::MAX / 2 + 1,
        usize::MAX,
    ] {
        bad.push((
            shards,
            BuildError::TooManyShards {
                shards,
                max: MAX_SHARDS,
            },
        ));
    }
    bad
}

/// The message names the value given (if any) and the allowed range.
fn assert_explains(err: &BuildError, shards: usize) {
    let text = err.to_string();
    assert!(text.contains(&shards.to_string()), "{text}");
    assert!(
        text.contains("power of two") && text.contains(&MAX_SHARDS.to_string()),
        "{text}"
    );
}

#[test]
fn sharded_builder_rejects_bad_shard_counts() {
    for (shards, want) in bad_shard_counts() {
        let err = ShardedMap::<u64, u64>::builder()
            .shards(shards)
            .build()
            .unwrap_err();
        assert_eq!(err, want);
        assert_explains(&err, shards);
        // The capacity does not hide the shard error.
        let err = ShardedMap::<u64, u64>::builder()
            .shards(shards)
            .capacity(8)
            .build()
            .unwrap_err();
        assert_eq!(err, want);
    }
}

#[test]
fn read_mostly_builder_rejects_bad_shard_counts() {
    for (shards, want) in bad_shard_counts() {
        let err = ReadMostlyMap::<u64, u64>::builder()
            .shards(shards)
            .build()
            .unwrap_err();
        assert_eq!(err, want);
        assert_explains(&err, shards);
    }
}

/// Capacities that cannot be allocated (they overflow `isize::MAX` bytes).
fn bad_capacities<T>() -> Vec<usize> {
    vec![
        usize::MAX,
        usize::MAX / 2,
        isize::MAX as usize / std::mem::size_of::<T>() + 1,
    ]
}

fn assert_capacity_error(err: BuildError, capacity: usize) {
    match &err {
        BuildError::Capacity {
            capacity: c,
            source,
        } => {
            assert_eq!(*c, capacity);
            // Too large to address, or (just below that) refused by the allocator.
            assert!(
                matches!(
                    source,
                    ReserveError::CapacityOverflow | ReserveError::AllocError { .. }
                ),
                "{source:?}"
            );
            if capacity == usize::MAX {
                assert_eq!(*source, ReserveError::CapacityOverflow);
            }
        }
        other => panic!("capacity {capacity}: expected a capacity error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&capacity.to_string()) && text.contains("capacity"),
        "{text}"
    );
}

#[test]
fn every_builder_rejects_capacities_that_overflow() {
    for capacity in bad_capacities::<(u64, u64)>() {
        let err = ShardedMap::<u64, u64>::builder()
            .capacity(capacity)
            .build()
            .unwrap_err();
        assert_capacity_error(err, capacity);
        let err = ShardedMap::<u64, u64>::builder()
            .shards(1)
            .capacity(capacity)
            .build()
            .unwrap_err();
        assert_capacity_error(err, capacity);
        let err = ReadMostlyMap::<u64, u64>::builder()
            .capacity(capacity)
            .build()
            .unwrap_err();
        assert_capacity_error(err, capacity);
        let err = LockedMap::<u64, u64>::builder()
            .capacity(capacity)
            .build()
            .unwrap_err();
        assert_capacity_error(err, capacity);
    }
}

#[test]
fn try_reserve_rejects_overflow_and_the_maps_stay_usable() {
    let sharded: ShardedMap<u64, u64> = ShardedMap::new();
    let locked: LockedMap<u64, u64> = LockedMap::new();
    sharded.insert(1, 1);
    locked.insert(1, 1);
    for additional in bad_capacities::<(u64, u64)>() {
        assert_eq!(
            sharded.try_reserve(additional),
            Err(ReserveError::CapacityOverflow)
        );
        assert_eq!(
            locked.try_reserve(additional),
            Err(ReserveError::CapacityOverflow)
        );
    }
    let text = ReserveError::CapacityOverflow.to_string();
    assert!(
        text.contains("exceeds") && text.contains("isize::MAX"),
        "{text}"
    );
    // Valid requests still work and nothing was lost.
    assert_eq!(sharded.try_reserve(100), Ok(()));
    assert_eq!(locked.try_reserve(100), Ok(()));
    assert!(sharded.capacity() >= 101 && locked.capacity() >= 101);
    assert_eq!(
        (sharded.get_cloned(&1), locked.get_cloned(&1)),
        (Some(1), Some(1))
    );
}

#[test]
fn every_valid_shard_count_builds() {
    let mut shards = 1;
    while shards <= MAX_SHARDS {
        if shards <= 1024 || shards == MAX_SHARDS {
            let map = ShardedMap::<u64, u64>::builder()
                .shards(shards)
                .build()
                .unwrap();
            assert_eq!(map.shard_count(), shards);
            let map = ReadMostlyMap::<u64, u64>::builder()
                .shards(shards)
                .build()
                .unwrap();
            assert_eq!(map.shard_count(), shards);
        }
        shards *= 2;
    }
}

/// Deserializing from input that announces more entries than it holds (a length prefix of a
/// binary format is whatever the sender wrote): the maps presize for at most 1 MiB of entries,
/// whatever the announced length, and come out empty and usable.
#[cfg(feature = "serde")]
mod lying_input {
    use std::mem::size_of;

    use serde::Deserialize;
    use serde::de::value::Error;
    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

    use mapguard::{LockedMap, ReadMostlyMap, ShardedMap};

    /// The entry memory the maps' `Deserialize` impls document as their presizing limit.
    const PREALLOCATION_BYTES: usize = 1 << 20;

    /// Announces `entries` entries and holds none.
    struct Lying {
        entries: usize,
    }

    impl<'de> MapAccess<'de> for Lying {
        type Error = Error;

        fn next_key_seed<T: DeserializeSeed<'de>>(
            &mut self,
            _: T,
        ) -> Result<Option<T::Value>, Error> {
            Ok(None)
        }

        fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, _: T) -> Result<T::Value, Error> {
            Err(de::Error::custom("no value: there was no key"))
        }

        fn size_hint(&self) -> Option<usize> {
            Some(self.entries)
        }
    }

    impl<'de> Deserializer<'de> for Lying {
        type Error = Error;

        fn deserialize_any<W: Visitor<'de>>(self, visitor: W) -> Result<W::Value, Error> {
            visitor.visit_map(self)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
            identifier ignored_any
        }
    }

    /// A value as big as `N` bytes in memory, from one byte of input (like a large inline
    /// buffer with a compact encoding).
    struct Big<const N: usize>([u8; N]);

    impl<'de, const N: usize> Deserialize<'de> for Big<N> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            u8::deserialize(deserializer).map(Self::from)
        }
    }

    impl<const N: usize> From<u8> for Big<N> {
        fn from(byte: u8) -> Self {
            Self([byte; N])
        }
    }

    /// Announced lengths: a 16-bit and a 32-bit length prefix at their maximum, and more.
    const ANNOUNCED: [usize; 3] = [u16::MAX as usize + 1, u32::MAX as usize, usize::MAX];

    /// Deserializes every map from [`Lying`] input for `V` values and checks what it presized.
    fn check<V>(value: &str)
    where
        V: for<'de> Deserialize<'de> + From<u8>,
    {
        let entry = size_of::<(u64, V)>();
        for entries in ANNOUNCED {
            let what = format!("{entries} announced entries of {entry} bytes ({value})");
            let limit = 2 * PREALLOCATION_BYTES;
            let sharded: ShardedMap<u64, V> = Deserialize::deserialize(Lying { entries })
                .unwrap_or_else(|err| panic!("ShardedMap, {what}: {err}"));
            let locked: LockedMap<u64, V> = Deserialize::deserialize(Lying { entries })
                .unwrap_or_else(|err| panic!("LockedMap, {what}: {err}"));
            let read_mostly: ReadMostlyMap<u64, V> = Deserialize::deserialize(Lying { entries })
                .unwrap_or_else(|err| panic!("ReadMostlyMap, {what}: {err}"));
            for (name, len, capacity) in [
                ("ShardedMap", sharded.len(), sharded.capacity()),
                ("LockedMap", locked.len(), locked.capacity()),
                ("ReadMostlyMap", read_mostly.len(), read_mostly.capacity()),
            ] {
                assert_eq!(len, 0, "{name}, {what}: entries from nowhere");
                assert!(
                    capacity * entry <= limit,
                    "{name}, {what}: presized for {capacity} entries ({} bytes), over {limit}",
                    capacity * entry
                );
                println!("lying-input {name:<13} {what}: presized {capacity} entries");
            }
            // Usable.
            sharded.insert(1, V::from(7));
            locked.insert(1, V::from(7));
            read_mostly.insert(1, V::from(7));
            assert_eq!(
                (sharded.len(), locked.len(), read_mostly.len()),
                (1, 1, 1),
                "{what}"
            );
        }
    }

    #[test]
    fn announced_lengths_presize_at_most_a_mebibyte_of_entries() {
        check::<Big<1024>>("1 KiB values");
        check::<Big<{ 64 << 10 }>>("64 KiB values");
    }

    #[test]
    fn small_entries_are_still_presized_up_to_the_limit() {
        let entries = 100_000;
        let limit = PREALLOCATION_BYTES / size_of::<(u64, u64)>();
        let sharded: ShardedMap<u64, u64> = Deserialize::deserialize(Lying { entries }).unwrap();
        let locked: LockedMap<u64, u64> = Deserialize::deserialize(Lying { entries }).unwrap();
        let read_mostly: ReadMostlyMap<u64, u64> =
            Deserialize::deserialize(Lying { entries }).unwrap();
        for (name, capacity) in [
            ("ShardedMap", sharded.capacity()),
            ("LockedMap", locked.capacity()),
            ("ReadMostlyMap", read_mostly.capacity()),
        ] {
            println!("lying-input {name:<13} {entries} announced (u64, u64): presized {capacity}");
            assert!(
                (limit..=2 * limit).contains(&capacity),
                "{name}: presized for {capacity} entries of 16 bytes, not {limit} to {}",
                2 * limit
            );
        }
    }
}
