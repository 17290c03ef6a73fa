//! Smoke tests of ShardedMap basics.
use mapguard::ShardedMap;
use std::sync::Arc;

#[test]
fn basic() {
    let m: ShardedMap<u64, u64> = ShardedMap::new();
    for i in 0..10_000 {
        assert_eq!(m.insert(i, i * 2), None);
    }
    assert_eq!(m.len(), 10_000);
    for i in 0..10_000 {
        assert_eq!(*m.get(&i).unwrap(), i * 2);
    }
    assert_eq!(m.iter().count(), 10_000);
    let a = m.get(&1).unwrap();
    let b = m.get(&1).unwrap();
    let c = m.get(&2).unwrap();
    assert_eq!(*a + *b + *c, 8);
}

#[test]
fn threads() {
    let m: Arc<ShardedMap<u64, u64>> = Arc::new(ShardedMap::new());
    let hs: Vec<_> = (0..4)
        .map(|t| {
            let m = m.clone();
            std::thread::spawn(move || {
                for r in 0..20 {
                    for i in 0..1000u64 {
                        let k = i * 4 + t;
                        m.insert(k, k + r);
                        let v = *m.get(&k).unwrap();
                        assert!(v >= k && v <= k + 19);
                        for j in 0..4 {
                            if let Some(v) = m.get(&(i * 4 + j)) {
                                assert!(*v >= i * 4 + j);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(m.len(), 4000);
}

#[test]
#[should_panic(expected = "deadlock avoided")]
fn insert_while_holding() {
    let m: ShardedMap<u64, u64> = ShardedMap::builder().shards(1).build().unwrap();
    m.insert(1, 1);
    let _g = m.get(&1);
    m.insert(2, 2);
}
