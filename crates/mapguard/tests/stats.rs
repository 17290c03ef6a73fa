//! Statistics, hot keys, observers and the Prometheus text of all three maps.
#![cfg(feature = "stats")]

use std::collections::HashMap;
use std::panic::Location;
use std::sync::{Arc, Barrier, Mutex};

use mapguard::stats::{Observer, StatsSnapshot, WriteEvent, WriteOp};
use mapguard::{Action, LockedMap, ReadMostlyMap, ShardedMap};

/// The counters of a snapshot, in a fixed order, for whole-set comparisons.
fn counters(s: &StatsSnapshot) -> [u64; 8] {
    [
        s.gets_hit,
        s.gets_miss,
        s.inserts,
        s.overwrites,
        s.removes_hit,
        s.removes_miss,
        s.computes,
        s.clears,
    ]
}

#[test]
fn sharded_counts_every_operation_exactly() {
    let map = ShardedMap::builder().shards(4).stats(true).build().unwrap();
    assert_eq!(counters(&map.stats().unwrap()), [0; 8]);
    map.insert(1, 10); // insert
    map.insert(2, 20); // insert
    map.insert(1, 11); // overwrite
    assert!(map.get(&1).is_some()); // hit
    assert_eq!(map.get_cloned(&2), Some(20)); // hit
    assert!(!map.contains_key(&3)); // miss
    assert!(map.get(&4).is_none()); // miss
    assert!(map.get_mut(&1).is_some()); // hit
    assert!(map.get_mut(&9).is_none()); // miss
    assert_eq!(map.remove(&2), Some(20)); // remove hit
    assert_eq!(map.remove(&2), None); // remove miss
    assert_eq!(map.remove_if(&1, |_, _| false), None); // remove miss
    map.compute(5, |_, _| Action::Set(50)); // compute
    map.update(&5, |v| *v += 1); // compute
    *map.entry(6).or_insert(0) += 1; // compute
    assert!(map.try_insert(7, 70).is_ok()); // insert
    assert!(map.try_insert(7, 71).is_err()); // nothing
    drop(map.get_or_insert(8, 80)); // miss + insert
    drop(map.get_or_insert(8, 81)); // hit
    let stats = map.stats().unwrap();
    // hits: get, get_cloned, get_mut, get_or_insert(8) second = 4; misses: contains, get,
    // get_mut, get_or_insert first look = 4.
    assert_eq!(counters(&stats), [4, 4, 4, 1, 1, 2, 3, 0]);
    assert_eq!(stats.len, 5);
    assert_eq!(stats.len, map.len());
    assert_eq!(stats.capacity, map.capacity());
    assert_eq!(stats.hit_rate(), 0.5);
    assert_eq!(stats.operations(), 19);
    // Every write-lock acquisition, exactly: 3 inserts, get_mut ×2, remove ×3, compute,
    // update, entry, try_insert ×2, get_or_insert's write.
    assert_eq!(stats.shards.iter().map(|s| s.write_locks).sum::<u64>(), 14);
    assert_eq!(stats.shards.iter().map(|s| s.entries).sum::<usize>(), 5);
    assert_eq!(stats.contended(), 0);
    map.clear();
    let stats = map.stats().unwrap();
    assert_eq!(stats.clears, 1);
    assert_eq!(stats.len, 0);
    assert_eq!(stats.shards.iter().map(|s| s.write_locks).sum::<u64>(), 18);
}

#[test]
fn locked_counts_every_operation_exactly() {
    let map = LockedMap::builder().stats(true).build().unwrap();
    map.insert(1, 10);
    map.insert(2, 20);
    map.insert(1, 11);
    assert!(map.get(&1).is_some());
    assert_eq!(map.get_cloned(&2), Some(20));
    assert!(!map.contains_key(&3));
    assert_eq!(map.remove(&2), Some(20));
    assert_eq!(map.remove_entry(&2), None);
    assert_eq!(map.remove_if(&1, |_, _| false), None);
    map.compute(5, |_, _| Action::Set(50));
    map.update(&5, |v| *v += 1);
    drop(map.get_or_insert(8, 80)); // miss + insert
    drop(map.get_or_insert_with(8, || 81)); // hit
    map.clear();
    let stats = map.stats().unwrap();
    assert_eq!(counters(&stats), [3, 2, 3, 1, 1, 2, 2, 1]);
    assert_eq!(stats.map_type, "LockedMap");
    // The one lock is one shard. Write locks: 3 inserts, remove, remove_entry, remove_if,
    // compute, update, get_or_insert's write, clear (get_or_insert_with found its key with
    // a read).
    assert_eq!(stats.shards.len(), 1);
    assert_eq!(stats.shards[0].index, 0);
    assert_eq!(stats.shards[0].write_locks, 10);
    assert_eq!(stats.shards[0].entries, 0);
    assert_eq!((stats.contended(), stats.wait_ns()), (0, 0));
    assert_eq!(stats.hottest_shard().map(|(index, _)| index), Some(0));
    // A write without a counter of its own still counts its lock.
    map.retain(|_, _| true);
    assert_eq!(map.stats().unwrap().shards[0].write_locks, 11);
}

#[test]
fn read_mostly_counts_every_operation_exactly() {
    let map = ReadMostlyMap::builder().stats(true).build().unwrap();
    assert!(!map.insert(1, 10));
    assert!(!map.insert(2, 20));
    assert!(map.insert(1, 11));
    assert!(map.swap(3, 30).is_none());
    assert!(map.get(&1).is_some());
    assert_eq!(map.get_cloned(&2), Some(20));
    assert!(!map.contains_key(&4));
    assert!(map.remove(&2).is_some());
    assert!(map.remove(&2).is_none());
    assert!(!map.remove_if_eq(&1, &99));
    assert!(map.compare_exchange(1, &11, 12).is_ok());
    drop(map.get_or_insert(8, 80)); // miss + insert
    drop(map.get_or_insert_with(8, || 81)); // hit
    map.clear();
    let stats = map.stats().unwrap();
    assert_eq!(counters(&stats), [3, 2, 4, 1, 1, 2, 1, 1]);
    assert_eq!(stats.map_type, "ReadMostlyMap");
    // Per shard, the write lock's figures (reads take no lock). Write locks: 3 inserts, swap,
    // 2 removes, remove_if_eq, compare_exchange, get_or_insert's write, and clear's two per
    // shard (one to empty it, one to free what it retired).
    assert_eq!(stats.shards.len(), map.shard_count());
    let locks: u64 = stats.shards.iter().map(|s| s.write_locks).sum();
    assert_eq!(locks, 9 + 2 * map.shard_count() as u64);
    assert!(stats.shards.iter().all(|s| s.read_locks_estimate == 0));
    assert_eq!((stats.contended(), stats.wait_ns()), (0, 0));
}

#[test]
fn statistics_off_means_no_snapshot() {
    assert!(ShardedMap::<u8, u8>::new().stats().is_none());
    assert!(LockedMap::<u8, u8>::new().stats().is_none());
    assert!(ReadMostlyMap::<u8, u8>::new().stats().is_none());
    // An observer alone records no statistics either.
    let map = ShardedMap::<u8, u8>::builder()
        .observer(Arc::new(Log::default()))
        .build()
        .unwrap();
    assert!(map.stats().is_none());
}

#[test]
fn empty_map_rates_are_defined() {
    let map = ShardedMap::<u8, u8>::builder().stats(true).build().unwrap();
    let stats = map.stats().unwrap();
    assert_eq!((stats.hit_rate(), stats.miss_rate()), (0.0, 0.0));
    assert_eq!(stats.hottest_shard(), None);
    let table = stats.to_string();
    assert!(table.contains("gets hit"), "{table}");
    assert!(table.contains("0.00%"), "{table}");
}

#[test]
fn totals_add_up_after_a_multi_threaded_run() {
    const THREADS: u64 = 6; // more than the stripes on a small machine: overflow is used too
    const OPS: u64 = 20_000;
    let sharded = Arc::new(ShardedMap::builder().stats(true).build().unwrap());
    let locked = Arc::new(LockedMap::builder().stats(true).build().unwrap());
    let read_mostly = Arc::new(ReadMostlyMap::builder().stats(true).build().unwrap());
    let start = Arc::new(Barrier::new(THREADS as usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (sharded, locked, read_mostly) =
                (sharded.clone(), locked.clone(), read_mostly.clone());
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for i in 0..OPS {
                    // Each thread owns its keys: every outcome is known in advance.
                    let key = t * OPS + i;
                    sharded.insert(key, i);
                    locked.insert(key, i);
                    read_mostly.insert(key, i);
                    assert!(sharded.get(&key).is_some());
                    assert!(locked.get(&key).is_some());
                    assert!(read_mostly.get(&key).is_some());
                    if i % 2 == 0 {
                        sharded.remove(&key);
                        locked.remove(&key);
                        read_mostly.remove(&key);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let total = THREADS * OPS;
    let expected = [total, 0, total, 0, total / 2, 0, 0, 0];
    let stats = sharded.stats().unwrap();
    assert_eq!(counters(&stats), expected);
    assert_eq!(stats.len as u64, total / 2);
    assert_eq!(
        stats.shards.iter().map(|s| s.write_locks).sum::<u64>(),
        total * 3 / 2
    );
    // Sampled reads: about one in 64, so within a wide margin of the true count.
    let reads: u64 = stats.shards.iter().map(|s| s.read_locks_estimate).sum();
    assert!(
        reads > total / 2 && reads < total * 2,
        "estimated {reads} of {total} reads"
    );
    assert_eq!(counters(&locked.stats().unwrap()), expected);
    assert_eq!(counters(&read_mostly.stats().unwrap()), expected);
}

/// A Zipf(s = 1) sampler over `0..n` by inverse transform on the precomputed CDF.
struct Zipf {
    cdf: Vec<f64>,
    state: u64,
}

impl Zipf {
    fn new(n: usize, seed: u64) -> Self {
        let weights: Vec<f64> = (1..=n).map(|rank| 1.0 / rank as f64).collect();
        let sum: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights
            .iter()
            .map(|w| {
                acc += w / sum;
                acc
            })
            .collect();
        Self { cdf, state: seed }
    }

    fn next(&mut self) -> usize {
        // splitmix64
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let u = (z ^ (z >> 31)) as f64 / u64::MAX as f64;
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

#[test]
fn zipf_top_keys_contain_the_truly_hottest() {
    const KEYS: usize = 10_000;
    let map = Arc::new(
        ShardedMap::builder()
            .stats(true)
            .stats_keys(true)
            .build()
            .unwrap(),
    );
    for key in 0..KEYS as u64 {
        map.insert(key, key);
    }
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let map = map.clone();
            std::thread::spawn(move || {
                let mut zipf = Zipf::new(KEYS, 42 + t);
                let mut truth = vec![0u64; KEYS];
                for _ in 0..200_000 {
                    let key = zipf.next();
                    truth[key] += 1;
                    assert!(map.get(&(key as u64)).is_some());
                }
                truth
            })
        })
        .collect();
    let mut truth = vec![0u64; KEYS];
    for thread in threads {
        for (sum, n) in truth.iter_mut().zip(thread.join().unwrap()) {
            *sum += n;
        }
    }
    let mut ranked: Vec<usize> = (0..KEYS).collect();
    ranked.sort_by_key(|&k| std::cmp::Reverse(truth[k]));
    let stats = map.stats().unwrap();
    let reported: Vec<String> = stats
        .hot_keys
        .iter()
        .filter_map(|h| h.key.clone())
        .collect();
    assert_eq!(stats.hot_keys.len(), mapguard::stats::HOT_KEYS);
    for key in &ranked[..5] {
        assert!(
            reported.contains(&key.to_string()),
            "true top key {key} ({} accesses) missing from {reported:?}",
            truth[*key]
        );
    }
    // The hottest key's estimate is within a factor of two of the truth, and its bound holds.
    let top = &stats.hot_keys[0];
    let true_top = truth[ranked[0]];
    assert!(
        top.count > true_top / 2 && top.count < true_top * 2,
        "{top:?} vs {true_top}"
    );
    assert!(top.guaranteed() <= top.count);
}

#[test]
fn hot_keys_without_stats_keys_report_hashes_only() {
    let map = ShardedMap::builder().stats(true).build().unwrap();
    map.insert("k", 1);
    for _ in 0..2_000 {
        map.get("k");
    }
    let stats = map.stats().unwrap();
    assert_eq!(stats.hot_keys[0].key, None);
    use std::hash::BuildHasher;
    assert_eq!(stats.hot_keys[0].hash, map.hasher().hash_one("k"));
}

/// Parses Prometheus text: `(name, labels, value)` per sample; checks HELP/TYPE come first.
fn parse_prometheus(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    let mut typed = std::collections::HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let (name, labels) = series.split_once('{').expect("samples carry labels");
        assert!(typed.contains(name), "sample before its TYPE: {line}");
        let labels = labels.strip_suffix('}').expect("labels close");
        let mut map = HashMap::new();
        let mut rest = labels;
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().expect("label value closes") {
                    (_, '\\') => match chars.next().unwrap().1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (at, '"') => break at,
                    (_, c) => value.push(c),
                }
            };
            map.insert(key.to_owned(), value);
            rest = after[end + 1..]
                .strip_prefix(',')
                .unwrap_or(&after[end + 1..]);
        }
        samples.push((name.to_owned(), map, value.parse().expect("a number")));
    }
    samples
}

#[test]
fn prometheus_text_parses_back() {
    let map = ShardedMap::builder()
        .shards(2)
        .name("odd \"name\"\\x")
        .stats(true)
        .stats_keys(true)
        .build()
        .unwrap();
    for i in 0..10 {
        map.insert(i, i);
    }
    map.insert(0, 1);
    for _ in 0..500 {
        map.get(&3);
    }
    map.get(&99);
    map.remove(&1);
    let stats = map.stats().unwrap();
    let samples = parse_prometheus(&stats.to_prometheus());
    let find = |name: &str, label: Option<(&str, &str)>| -> f64 {
        let hits: Vec<_> = samples
            .iter()
            .filter(|(n, l, _)| {
                n == name && label.is_none_or(|(k, v)| l.get(k).map(String::as_str) == Some(v))
            })
            .collect();
        assert_eq!(hits.len(), 1, "{name} {label:?}");
        assert_eq!(hits[0].1["map"], "odd \"name\"\\x");
        hits[0].2
    };
    assert_eq!(find("mapguard_gets_total", Some(("result", "hit"))), 500.0);
    assert_eq!(find("mapguard_gets_total", Some(("result", "miss"))), 1.0);
    assert_eq!(find("mapguard_inserts_total", None), 10.0);
    assert_eq!(find("mapguard_overwrites_total", None), 1.0);
    assert_eq!(find("mapguard_removes_total", Some(("result", "hit"))), 1.0);
    assert_eq!(find("mapguard_entries", None), 9.0);
    assert_eq!(find("mapguard_capacity", None), stats.capacity as f64);
    assert_eq!(find("mapguard_hit_ratio", None), stats.hit_rate());
    let shard_entries: f64 = samples
        .iter()
        .filter(|(n, _, _)| n == "mapguard_shard_entries")
        .map(|(_, _, v)| v)
        .sum();
    assert_eq!(shard_entries, 9.0);
    assert_eq!(
        find("mapguard_shard_write_locks_total", Some(("shard", "0")))
            + find("mapguard_shard_write_locks_total", Some(("shard", "1"))),
        12.0
    );
    let hottest = find("mapguard_hot_key_accesses_estimate", Some(("rank", "1")));
    assert_eq!(hottest, stats.hot_keys[0].count as f64);
    let top = samples
        .iter()
        .find(|(n, l, _)| n == "mapguard_hot_key_accesses_estimate" && l["rank"] == "1")
        .unwrap();
    assert_eq!(top.1["key"], "3");
}

#[cfg(feature = "serde")]
#[test]
fn snapshot_round_trips_through_serde() {
    let map = ShardedMap::builder().stats(true).build().unwrap();
    map.insert(1, 1);
    let stats = map.stats().unwrap();
    let json = serde_json::to_string(&stats).unwrap();
    let back: StatsSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, stats);
}

#[test]
fn contended_waits_are_counted_and_timed() {
    let map = Arc::new(ShardedMap::builder().shards(1).stats(true).build().unwrap());
    map.insert(1, 1);
    let guard = map.get(&1).unwrap();
    let writer = {
        let map = map.clone();
        std::thread::spawn(move || {
            map.insert(1, 2);
        })
    };
    // The writer waits for this read guard: give it time to get there.
    std::thread::sleep(std::time::Duration::from_millis(50));
    drop(guard);
    writer.join().unwrap();
    let stats = map.stats().unwrap();
    assert!(stats.shards[0].contended >= 1, "{stats:?}");
    assert!(stats.shards[0].wait_ns >= 10_000_000, "{stats:?}");
    // Stats off: nothing is recorded.
    let quiet = ShardedMap::builder().shards(1).build().unwrap();
    quiet.insert(1, 1);
    assert!(quiet.stats().is_none());
}

#[test]
fn locked_contended_waits_are_counted_and_timed() {
    let map = Arc::new(LockedMap::builder().stats(true).build().unwrap());
    map.insert(1, 1);
    // A read guard holds the map's lock: the writer's try fails and it waits, timed.
    let guard = map.get(&1).unwrap();
    let writer = {
        let map = map.clone();
        std::thread::spawn(move || {
            map.insert(1, 2);
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    drop(guard);
    writer.join().unwrap();
    let stats = map.stats().unwrap();
    assert_eq!(stats.shards.len(), 1);
    println!("LockedMap: {:?}", stats.shards[0]);
    assert!(stats.shards[0].contended >= 1, "{stats:?}");
    assert!(stats.shards[0].wait_ns >= 10_000_000, "{stats:?}");
    assert_eq!(stats.shards[0].write_locks, 2);
    assert!(stats.to_string().contains("contended"), "{stats}");
}

/// A value whose comparison (which `ReadMostlyMap` runs under the shard's write lock)
/// tells the test it started and then takes 50 ms.
#[derive(Clone, Debug)]
struct SlowEq(u64, Arc<Barrier>);

impl PartialEq for SlowEq {
    fn eq(&self, other: &Self) -> bool {
        self.1.wait();
        std::thread::sleep(std::time::Duration::from_millis(50));
        self.0 == other.0
    }
}

#[test]
fn read_mostly_contended_waits_are_counted_and_timed() {
    let map = Arc::new(
        ReadMostlyMap::builder()
            .shards(1)
            .stats(true)
            .build()
            .unwrap(),
    );
    let started = Arc::new(Barrier::new(2));
    map.insert(1, SlowEq(1, started.clone()));
    let holder = {
        let map = map.clone();
        let probe = SlowEq(1, Arc::new(Barrier::new(1)));
        // Compares under the shard's write lock; the stored value's `eq` waits for the
        // other thread and then holds the lock for 50 ms.
        std::thread::spawn(move || map.remove_if_eq(&1, &probe))
    };
    started.wait();
    // The holder is inside the comparison now, with the lock held: this write waits.
    map.insert(2, SlowEq(2, Arc::new(Barrier::new(1))));
    assert!(holder.join().unwrap());
    let stats = map.stats().unwrap();
    println!("ReadMostlyMap: {:?}", stats.shards[0]);
    assert!(stats.shards[0].contended >= 1, "{stats:?}");
    assert!(stats.shards[0].wait_ns >= 10_000_000, "{stats:?}");
    assert_eq!(stats.shards[0].write_locks, 3);
    // Statistics off: no snapshot, and the lock is the same.
    let quiet = ReadMostlyMap::builder().shards(1).build().unwrap();
    quiet.insert(1, 1);
    assert!(quiet.stats().is_none());
}

#[test]
fn hottest_shard_skew() {
    let map = ShardedMap::builder().shards(4).stats(true).build().unwrap();
    for _ in 0..3 {
        map.insert(1, 1);
    }
    let (index, skew) = map.stats().unwrap().hottest_shard().unwrap();
    assert_eq!(skew, 4.0);
    assert_eq!(map.stats().unwrap().shards[index].write_locks, 3);
}

/// What the test observer keeps of each write.
type Seen = (
    WriteOp,
    Option<u64>,
    Option<usize>,
    &'static Location<'static>,
);

#[derive(Default)]
struct Log(Mutex<Vec<Seen>>);

impl Observer for Log {
    fn on_write(&self, event: &WriteEvent<'_>) {
        self.0.lock().unwrap().push((
            event.op(),
            event.key_hash(),
            event.shard(),
            event.location(),
        ));
    }
}

impl Log {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// Runs `$call` on one line and checks the observer saw `$op` from that very line.
macro_rules! observed_at {
    ($log:expr, $op:expr, $call:expr) => {{
        let line = line!();
        $call;
        let seen = $log.take();
        assert_eq!(seen.len(), 1, "{:?}: {seen:?}", $op);
        assert_eq!(seen[0].0, $op);
        assert_eq!(seen[0].3.file(), file!());
        assert_eq!(seen[0].3.line(), line, "{:?}", $op);
        seen[0]
    }};
}

#[test]
#[rustfmt::skip] // one call per line: the observer must report that line
fn observer_sees_each_sharded_write_and_its_call_site() {
    use std::hash::BuildHasher;
    let log = Arc::new(Log::default());
    let map = ShardedMap::builder()
        .shards(8)
        .observer(log.clone())
        .build()
        .unwrap();
    let event = observed_at!(log, WriteOp::Insert, map.insert(5u64, 1u64));
    assert_eq!(event.1, Some(map.hasher().hash_one(5u64)));
    assert!(event.2.unwrap() < 8);
    observed_at!(log, WriteOp::TryInsert, drop(map.try_insert(6, 1)));
    observed_at!(log, WriteOp::Remove, map.remove(&6));
    observed_at!(log, WriteOp::Remove, map.remove_entry(&6));
    observed_at!(log, WriteOp::RemoveIf, map.remove_if(&5, |_, _| false));
    observed_at!(log, WriteOp::Compute, map.compute(7, |_, _| Action::Set(1)));
    observed_at!(log, WriteOp::Update, map.update(&7, |v| *v += 1));
    observed_at!(log, WriteOp::Entry, drop(map.entry(8)));
    observed_at!(log, WriteOp::GetMut, drop(map.get_mut(&7)));
    observed_at!(log, WriteOp::GetOrInsert, drop(map.get_or_insert(9, 1)));
    observed_at!(log, WriteOp::GetOrInsert, drop(map.get_or_insert_with(10, || 1)));
    let event = observed_at!(log, WriteOp::Retain, map.retain(|_, _| true));
    assert_eq!((event.1, event.2), (None, None));
    observed_at!(log, WriteOp::Clear, map.clear());
    // Reads are not writes.
    map.get(&1);
    map.get_or_insert(11, 1);
    log.take();
    drop(map.get_or_insert(11, 2)); // present at first look: a read
    assert!(log.take().is_empty());
}

#[test]
fn observer_events_name_the_map_and_the_shard_each_key_went_to() {
    #[derive(Default)]
    struct PerShard(Mutex<Vec<(Option<String>, usize)>>);
    impl Observer for PerShard {
        fn on_write(&self, event: &WriteEvent<'_>) {
            let shard = event
                .shard()
                .expect("a ShardedMap write of a key has a shard");
            let name = event.map().map(str::to_owned);
            self.0.lock().unwrap().push((name, shard));
        }
    }
    let seen = Arc::new(PerShard::default());
    let map = ShardedMap::builder()
        .shards(8)
        .name("orders")
        .stats(true)
        .observer(seen.clone())
        .build()
        .unwrap();
    for key in 0..200u64 {
        map.insert(key, key);
    }
    let mut inserted = [0u64; 8];
    for (name, shard) in seen.0.lock().unwrap().iter() {
        assert_eq!(name.as_deref(), Some("orders"));
        inserted[*shard] += 1;
    }
    // Each shard holds exactly the keys whose events named it.
    let entries: Vec<u64> = map
        .stats()
        .unwrap()
        .shards
        .iter()
        .map(|s| s.entries as u64)
        .collect();
    assert_eq!(entries, inserted);
    assert!(
        inserted.iter().filter(|&&n| n > 0).count() > 4,
        "{inserted:?}"
    );
}

#[test]
#[rustfmt::skip] // one call per line: the observer must report that line
fn observer_sees_each_locked_write_and_its_call_site() {
    let log = Arc::new(Log::default());
    let map = LockedMap::builder().observer(log.clone()).build().unwrap();
    let event = observed_at!(log, WriteOp::Insert, map.insert(5u64, 1u64));
    assert_eq!(event.2, None);
    observed_at!(log, WriteOp::Remove, map.remove(&6));
    observed_at!(log, WriteOp::Remove, map.remove_entry(&6));
    observed_at!(log, WriteOp::RemoveIf, map.remove_if(&5, |_, _| false));
    observed_at!(log, WriteOp::Compute, map.compute(7, |_, _| Action::Set(1)));
    observed_at!(log, WriteOp::Update, map.update(&7, |v| *v += 1));
    observed_at!(log, WriteOp::GetOrInsert, drop(map.get_or_insert(9, 1)));
    observed_at!(log, WriteOp::GetOrInsert, drop(map.get_or_insert_with(10, || 1)));
    observed_at!(log, WriteOp::Retain, map.retain(|_, _| true));
    observed_at!(log, WriteOp::Clear, map.clear());
}

#[test]
#[rustfmt::skip] // one call per line: the observer must report that line
fn observer_sees_each_read_mostly_write_and_its_call_site() {
    let log = Arc::new(Log::default());
    let map = ReadMostlyMap::builder()
        .observer(log.clone())
        .build()
        .unwrap();
    observed_at!(log, WriteOp::Insert, map.insert(5u64, 1u64));
    observed_at!(log, WriteOp::Swap, drop(map.swap(5, 2)));
    observed_at!(log, WriteOp::Remove, drop(map.remove(&6)));
    observed_at!(log, WriteOp::RemoveIfEq, map.remove_if_eq(&5, &7));
    observed_at!(log, WriteOp::CompareExchange, drop(map.compare_exchange(5, &2, 3)));
    observed_at!(log, WriteOp::GetOrInsert, drop(map.get_or_insert(9, 1)));
    observed_at!(log, WriteOp::GetOrInsert, drop(map.get_or_insert_with(10, || 1)));
    observed_at!(log, WriteOp::Clear, map.clear());
}

#[test]
fn observer_may_use_the_map_after_an_unguarded_write() {
    struct Reader(std::sync::OnceLock<std::sync::Weak<ShardedMap<u32, u32>>>);
    impl Observer for Reader {
        fn on_write(&self, event: &WriteEvent<'_>) {
            if let (WriteOp::Insert, Some(map)) =
                (event.op(), self.0.get().and_then(|m| m.upgrade()))
            {
                // The shard is unlocked: reading it does not deadlock.
                assert!(map.get(&1).is_some());
            }
        }
    }
    let reader = Arc::new(Reader(std::sync::OnceLock::new()));
    let map = Arc::new(
        ShardedMap::builder()
            .observer(reader.clone())
            .build()
            .unwrap(),
    );
    reader.0.set(Arc::downgrade(&map)).unwrap();
    map.insert(1, 1);
}

#[test]
fn a_clone_counts_from_zero_with_the_same_settings() {
    let map = ShardedMap::builder().name("a").stats(true).build().unwrap();
    map.insert(1, 1);
    let copy = map.clone();
    let stats = copy.stats().unwrap();
    assert_eq!((stats.inserts, stats.len), (0, 1));
    assert_eq!(stats.name.as_deref(), Some("a"));
}
