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

    /// A parallel operation called while this thread holds a guard into the map hands that
    /// guard's shard to rayon's threads, which would wait for the guard while this thread waits
    /// for them (before the check this hung forever). It must panic before any work, naming
    /// the operation and both lines, and leave the map usable.
    #[test]
    fn parallel_operations_while_holding_a_guard_panic() {
        use std::cell::Cell;
        type Case = fn(&ShardedMap<u64, u64>, &Cell<(u32, u32)>);
        let cases: [(&str, Case); 3] = [
            ("par_retain", |map, lines| {
                let _guard = map.get(&7).unwrap();
                lines.set((line!() - 1, line!() + 1));
                map.par_retain(|_, _| false);
            }),
            ("par_retain", |map, lines| {
                let _guard = map.get_mut(&7).unwrap();
                lines.set((line!() - 1, line!() + 1));
                map.par_retain(|_, _| true);
            }),
            ("par_for_each", |map, lines| {
                let _guard = map.get_mut(&7).unwrap();
                lines.set((line!() - 1, line!() + 1));
                map.par_for_each(|_, _| {});
            }),
        ];
        for (what, case) in cases {
            let (message, (held, call)) = crate::common::within_timeout(what, move || {
                let map: ShardedMap<u64, u64> = (0..100).map(|i| (i, i)).collect();
                let lines = Cell::new((0, 0));
                let message = crate::common::expect_panic(|| case(&map, &lines));
                assert_eq!(map.len(), 100, "{what} did work before panicking");
                map.par_retain(|k, _| k % 2 == 0);
                assert_eq!(map.len(), 50);
                (message, lines.get())
            });
            assert!(
                message.starts_with("mapguard: deadlock avoided:") && message.contains(what),
                "{message}"
            );
            for line in [held, call] {
                let at = crate::common::site(file!(), line);
                assert!(
                    message.contains(&at),
                    "{what}: {at} not named in: {message}"
                );
            }
        }
    }
}
