//! Construction and allocation errors: the builder's typed errors for bad shard counts (with
//! messages that say what would be right), capacity overflow, and capacities that are honoured.

use mapguard::sharded::{MAX_SHARDS, default_shard_count};
use mapguard::{BuildError, ReserveError, ShardedMap};

use crate::common::configs;

type Map = ShardedMap<u64, u64>;

#[test]
fn zero_shards_is_an_error_naming_the_allowed_values() {
    let err = Map::builder().shards(0).build().unwrap_err();
    assert_eq!(err, BuildError::ZeroShards { max: MAX_SHARDS });
    let message = err.to_string();
    assert!(message.contains("shard count 0"), "{message}");
    assert!(message.contains("power of two"), "{message}");
    assert!(message.contains(&format!("1 to {MAX_SHARDS}")), "{message}");
}

#[test]
fn shard_counts_that_are_not_powers_of_two_are_errors() {
    for shards in [3, 5, 6, 7, 12, 100, 1000, MAX_SHARDS - 1] {
        let err = Map::builder().shards(shards).build().unwrap_err();
        assert_eq!(err, BuildError::ShardsNotPowerOfTwo { shards });
        let message = err.to_string();
        assert!(
            message.contains(&format!("shard count {shards} ")),
            "{message}"
        );
        assert!(message.contains("not a power of two"), "{message}");
        assert!(message.contains(&MAX_SHARDS.to_string()), "{message}");
    }
}

#[test]
fn shard_counts_above_the_maximum_are_errors() {
    for shards in [MAX_SHARDS + 1, MAX_SHARDS * 2, MAX_SHARDS * 3, usize::MAX] {
        let err = Map::builder().shards(shards).build().unwrap_err();
        assert_eq!(
            err,
            BuildError::TooManyShards {
                shards,
                max: MAX_SHARDS
            }
        );
        let message = err.to_string();
        assert!(message.contains(&shards.to_string()), "{message}");
        assert!(
            message.contains(&format!("maximum of {MAX_SHARDS}")),
            "{message}"
        );
        assert!(message.contains("power of two"), "{message}");
    }
}

#[test]
fn every_power_of_two_up_to_the_maximum_builds() {
    let mut shards = 1;
    while shards <= MAX_SHARDS {
        let map = Map::builder().shards(shards).build().unwrap();
        assert_eq!(map.shard_count(), shards);
        // Keys must spread over the shards and stay findable.
        for key in 0..64 {
            map.insert(key, key);
        }
        for key in 0..64 {
            assert_eq!(map.get_cloned(&key), Some(key));
            assert!(map.get(&key).unwrap().shard() < shards);
        }
        shards *= 4;
    }
    assert_eq!(Map::new().shard_count(), default_shard_count());
    assert!(default_shard_count().is_power_of_two());
}

#[test]
fn many_shards_spread_keys() {
    // foldhash's shared seed is drawn once per process, so one run of a test sees one of
    // them; take 300 shared seeds here. 4096 keys over 256 shards: a shard choice that leans on
    // a few hash bits leaves shards empty for some seeds (a fold of hash bits 32..57 left up
    // to 26 empty for about one process seed in fifteen).
    let mut worst = (usize::MAX, 0);
    for seed in 0..300u64 {
        let shared: &'static foldhash::SharedSeed =
            Box::leak(Box::new(foldhash::SharedSeed::from_u64(seed)));
        let hasher = foldhash::fast::SeedableRandomState::with_seed(seed, shared);
        let map = mapguard::ShardedMap::<u64, u64, _>::builder()
            .shards(256)
            .hasher(hasher)
            .build()
            .unwrap();
        let mut per_shard = [0usize; 256];
        for key in 0..4096 {
            map.insert(key, key);
            per_shard[map.get(&key).unwrap().shard()] += 1;
        }
        let used = per_shard.iter().filter(|&&n| n > 0).count();
        let fullest = *per_shard.iter().max().unwrap();
        assert!(used > 240, "seed {seed}: only {used} of 256 shards used");
        // A mean of 16 keys per shard; a uniform choice puts at most about 35 in one.
        assert!(fullest <= 40, "seed {seed}: {fullest} keys in one shard");
        worst = (worst.0.min(used), worst.1.max(fullest));
    }
    println!(
        "fewest shards used {}, most keys in a shard {}",
        worst.0, worst.1
    );
}

#[test]
fn try_reserve_overflow_is_an_error_and_the_map_stays_usable() {
    for config in configs() {
        let map = config.map::<u64, u64>();
        map.insert(1, 1);
        assert_eq!(
            map.try_reserve(usize::MAX),
            Err(ReserveError::CapacityOverflow),
            "{} shards",
            map.shard_count()
        );
        // Half of the address space may pass the size check per shard and then be refused by
        // the allocator: either error is right, a success or an abort is not.
        assert!(matches!(
            map.try_reserve(usize::MAX / 2),
            Err(ReserveError::CapacityOverflow | ReserveError::AllocError { .. })
        ));
        assert_eq!(map.get_cloned(&1), Some(1));
        for key in 0..100 {
            map.insert(key, key);
        }
        assert_eq!(map.len(), 100);
        assert!(map.try_reserve(1000).is_ok());
        assert!(map.capacity() >= 1100);
    }
}

#[test]
fn reserve_overflow_panics_with_the_reason() {
    let map = Map::new();
    let message = crate::common::expect_panic(|| map.reserve(usize::MAX));
    assert!(message.contains("cannot reserve"), "{message}");
    map.insert(1, 1);
    assert_eq!(map.len(), 1);
}

#[test]
fn builder_capacity_overflow_is_an_error() {
    // With many shards each shard's share of `usize::MAX` entries is small enough to pass a
    // per-shard size check; the whole request still cannot be addressed.
    for shards in [1, 16, 256, MAX_SHARDS] {
        let err = Map::builder()
            .shards(shards)
            .capacity(usize::MAX)
            .build()
            .unwrap_err();
        assert!(
            matches!(
                err,
                BuildError::Capacity {
                    capacity: usize::MAX,
                    source: ReserveError::CapacityOverflow
                }
            ),
            "{shards} shards: {err:?}"
        );
        assert!(err.to_string().contains(&usize::MAX.to_string()));
    }
}

#[test]
fn with_capacity_holds_at_least_that_many() {
    for n in [0, 1, 7, 100, 1000, 12_345] {
        let map = Map::with_capacity(n);
        assert!(
            map.capacity() >= n,
            "with_capacity({n}) gave {}",
            map.capacity()
        );
        for shards in [1, 2, 64, 1024] {
            let map = Map::builder().shards(shards).capacity(n).build().unwrap();
            assert!(
                map.capacity() >= n,
                "{shards} shards, capacity {n}: got {}",
                map.capacity()
            );
        }
    }
    // Filling up to the capacity asked for does not need more room in any shard... at least
    // the total stays above what was asked and the entries are all there.
    let map = Map::with_capacity(5000);
    for key in 0..5000 {
        map.insert(key, key);
    }
    assert_eq!(map.len(), 5000);
    assert!(map.capacity() >= 5000);
}
