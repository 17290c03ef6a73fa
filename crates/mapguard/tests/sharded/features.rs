//! Optional features: serde round trips (feature `serde`) and rayon parallel iteration
//! (feature `rayon`), checked against the expected contents.

#[cfg(feature = "serde")]
mod serde {
    use std::collections::BTreeMap;

    use mapguard::ShardedMap;

    use crate::common::{TestState, configs};

    #[test]
    fn json_round_trip() {
        for config in configs() {
            let map: ShardedMap<String, Vec<u32>, TestState> = config.map();
            for i in 0..100u32 {
                map.insert(format!("k{i}"), vec![i, i * 2]);
            }
            let json = serde_json::to_string(&map).unwrap();
            // As a JSON object, with every entry.
            let as_std: BTreeMap<String, Vec<u32>> = serde_json::from_str(&json).unwrap();
            assert_eq!(as_std.len(), 100);
            for (key, value) in &as_std {
                assert_eq!(map.get_cloned(key.as_str()).as_ref(), Some(value));
            }
            let back: ShardedMap<String, Vec<u32>> = serde_json::from_str(&json).unwrap();
            assert_eq!(back.len(), 100);
            for i in 0..100u32 {
                assert_eq!(
                    back.get_cloned(format!("k{i}").as_str()),
                    Some(vec![i, i * 2])
                );
            }
        }
    }

    #[test]
    fn deserializes_std_maps_and_rejects_non_maps() {
        let json = r#"{"1": 10, "2": 20, "1": 11}"#;
        let map: ShardedMap<String, u32> = serde_json::from_str(json).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(
            map.get_cloned("1"),
            Some(11),
            "a later duplicate key wins, as with std"
        );
        let empty: ShardedMap<u32, u32> = serde_json::from_str("{}").unwrap();
        assert!(empty.is_empty());
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
        let err = serde_json::from_str::<ShardedMap<String, u32>>("[1, 2]").unwrap_err();
        assert!(err.to_string().contains("a map"), "{err}");
    }
}

#[cfg(feature = "rayon")]
mod rayon {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use mapguard::ShardedMap;
    use rayon::prelude::*;

    use crate::common::{TestState, configs};

    fn filled(config: &crate::common::Config) -> ShardedMap<u64, u64, TestState> {
        let map = config.map();
        for key in 0..2000 {
            map.insert(key, key * 7);
        }
        map
    }

    #[test]
    fn par_for_each_visits_every_entry_once() {
        for config in configs() {
            let map = filled(&config);
            let seen = Mutex::new(BTreeMap::new());
            map.par_for_each(|k, v| {
                assert!(
                    seen.lock().unwrap().insert(*k, *v).is_none(),
                    "{k} seen twice"
                );
            });
            let expected: BTreeMap<u64, u64> = (0..2000).map(|k| (k, k * 7)).collect();
            assert_eq!(seen.into_inner().unwrap(), expected);
        }
    }

    #[test]
    fn par_retain_keeps_exactly_the_chosen_entries() {
        for config in configs() {
            let map = filled(&config);
            map.par_retain(|k, v| {
                *v += 1;
                k % 3 == 0
            });
            let mut left: Vec<(u64, u64)> = map.iter().map(|e| (*e.key(), *e.value())).collect();
            left.sort_unstable();
            let expected: Vec<(u64, u64)> = (0..2000)
                .filter(|k| k % 3 == 0)
                .map(|k| (k, k * 7 + 1))
                .collect();
            assert_eq!(left, expected);
            // The map is unlocked afterwards.
            map.insert(1, 1);
            assert_eq!(map.len(), expected.len() + 1);
        }
    }

    #[test]
    fn into_par_iter_yields_every_entry_once() {
        for config in configs() {
            let map = filled(&config);
            let mut all: Vec<(u64, u64)> = map.into_par_iter().collect();
            all.sort_unstable();
            let expected: Vec<(u64, u64)> = (0..2000).map(|k| (k, k * 7)).collect();
            assert_eq!(all, expected);
        }
    }
}
