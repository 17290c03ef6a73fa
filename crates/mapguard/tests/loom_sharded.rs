//! Loom models of `ShardedMap`'s shard lock: the reader/writer handshake through per-thread
//! records, recursive reads with a writer waiting, downgrade, and two writers.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p mapguard --test loom_sharded --release`.
//! Under loom every guard holds a tracked access to the shard's data, so a read that could
//! overlap a write fails the model as a data race. Without `--cfg loom` this file is empty.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use mapguard::ShardedMap;

fn one_shard() -> Arc<ShardedMap<u64, u64>> {
    Arc::new(ShardedMap::builder().shards(1).build().unwrap())
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

#[test]
fn reader_never_overlaps_writer() {
    model(|| {
        let map = one_shard();
        map.insert(1, 10);
        let writer = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                map.insert(1, 20);
                map.insert(2, 30);
            })
        };
        let seen = map.get(&1).map(|v| *v);
        assert!(matches!(seen, Some(10) | Some(20)), "read {seen:?}");
        let other = map.get_cloned(&2);
        assert!(matches!(other, None | Some(30)), "read {other:?}");
        writer.join().unwrap();
        assert_eq!(map.get_cloned(&1), Some(20));
        assert_eq!(map.get_cloned(&2), Some(30));
    });
}

#[test]
fn recursive_read_with_a_writer_waiting_does_not_hang() {
    model(|| {
        let map = one_shard();
        map.insert(1, 1);
        let writer = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                map.insert(1, 2);
            })
        };
        let first = map.get(&1).map(|v| *v);
        {
            let outer = map.get(&1).unwrap();
            // The writer may be waiting for `outer` now; a second read must not wait for it.
            let inner = map.get(&1).unwrap();
            assert_eq!(*outer, *inner);
        }
        assert!(matches!(first, Some(1) | Some(2)));
        writer.join().unwrap();
        assert_eq!(map.get_cloned(&1), Some(2));
    });
}

#[test]
fn two_writers_and_a_downgrade() {
    model(|| {
        let map = one_shard();
        let other = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                map.insert(2, 2);
            })
        };
        // `get_or_insert_with` writes, then downgrades to a read guard without letting the
        // other writer in between.
        let value = *map.get_or_insert_with(1, || 1);
        assert_eq!(value, 1);
        other.join().unwrap();
        assert_eq!(map.len(), 2);
    });
}
