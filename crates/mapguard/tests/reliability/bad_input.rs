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
