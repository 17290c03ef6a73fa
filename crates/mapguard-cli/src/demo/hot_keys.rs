//! `hot-keys`: a Zipf workload (s = 0.99 over 10,000 keys) on a ShardedMap built with
//! `stats(true).stats_keys(true)`. Prints the top keys the statistics estimate, with their
//! error bounds, next to the true counts the demo kept itself, the hit rate, and the hottest
//! shard with its skew against the mean.

use std::sync::{Arc, Barrier};

use mapguard::ShardedMap;

use super::{Outcome, Scenario};
use crate::bench::plan::{Rng, Zipf};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "hot-keys",
    summary: "a Zipf workload: the top keys and the hottest shard that statistics report",
    run,
};

/// Worker threads.
const THREADS: usize = 2;
/// Distinct keys (Zipf ranks); key `r` is the rank-`r` key, so rank 0 is the hottest.
const KEYS: u64 = 10_000;
/// Keys present: the ranks beyond are looked up and missed.
const PRESENT: u64 = 9_500;
/// Operations per thread.
const OPS: u64 = 1_000_000;
/// The Zipf exponent.
const SKEW: f64 = 0.99;
/// How many top keys to print.
const TOP: usize = 8;

fn run() -> Outcome {
    let map: Arc<ShardedMap<u64, u64>> = Arc::new(
        ShardedMap::builder()
            .stats(true)
            .stats_keys(true)
            .name("demo.hot_keys")
            .build()
            .expect("valid demo settings"),
    );
    for k in 0..PRESENT {
        map.insert(k, k);
    }
    println!(
        "{THREADS} threads × {OPS} operations, keys drawn by Zipf (s = {SKEW}) over {KEYS} keys"
    );
    println!(
        "(key = rank, 0 the hottest; keys {PRESENT}.. are absent): 95 % gets, 5 % overwrites."
    );
    println!("The map: `ShardedMap::builder().stats(true).stats_keys(true)`.\n");
    let zipf = Arc::new(Zipf::new(KEYS, SKEW));
    let barrier = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (map, zipf, barrier) = (map.clone(), zipf.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(0x407_0000 + t as u64);
                let mut counts = vec![0u64; KEYS as usize];
                let (mut gets, mut hits) = (0u64, 0u64);
                barrier.wait();
                for _ in 0..OPS {
                    let key = zipf.sample(&mut rng);
                    counts[key as usize] += 1;
                    if rng.below(100) < 95 {
                        gets += 1;
                        hits += u64::from(map.get(&key).is_some());
                    } else {
                        map.insert(key, key);
                    }
                }
                (counts, gets, hits)
            })
        })
        .collect();
    let mut truth = vec![0u64; KEYS as usize];
    let (mut gets, mut hits) = (0u64, 0u64);
    for w in workers {
        let (counts, g, h) = w.join().expect("a demo worker does not panic");
        for (total, c) in truth.iter_mut().zip(counts) {
            *total += c;
        }
        gets += g;
        hits += h;
    }
    let Some(stats) = map.stats() else {
        println!("the map reported no statistics; no diagnosis");
        return Outcome::NotDiagnosed;
    };
    // The prefill's inserts are accesses too; the true counts include them.
    for t in truth.iter_mut().take(PRESENT as usize) {
        *t += 1;
    }

    println!("Diagnosis: the hot keys `stats()` reports (estimates from one access in");
    println!(
        "{} sampled, × {}), against the true counts the demo kept:\n",
        stats.sample_period, stats.sample_period
    );
    println!(
        "  {:<4} {:>6} {:>10} {:>10} {:>10} {:>10} {:>6}",
        "rank", "key", "≈count", "±error", "true", "est/true", "shard"
    );
    for (rank, hot) in stats.hot_keys.iter().take(TOP).enumerate() {
        let key: Option<u64> = hot.key.as_deref().and_then(|k| k.parse().ok());
        let true_count = key.map_or(0, |k| truth.get(k as usize).copied().unwrap_or(0));
        let shard = key
            .and_then(|k| map.get(&k).map(|r| r.shard().to_string()))
            .unwrap_or_else(|| "-".to_owned());
        let ratio = if true_count > 0 {
            format!("{:.2}", hot.count as f64 / true_count as f64)
        } else {
            "-".to_owned()
        };
        println!(
            "  {:<4} {:>6} {:>10} {:>10} {:>10} {:>10} {:>6}",
            rank + 1,
            hot.key
                .clone()
                .unwrap_or_else(|| format!("#{:x}", hot.hash)),
            hot.count,
            hot.error,
            true_count,
            ratio,
            shard
        );
    }
    let total: u64 = truth.iter().sum();
    let top_true: u64 = {
        let mut sorted = truth.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        sorted.iter().take(TOP).sum()
    };
    println!(
        "\n  the true top {TOP} keys had {:.1} % of all {total} accesses",
        100.0 * top_true as f64 / total as f64
    );
    println!(
        "  hit rate: {:.2} % (statistics, exact), {:.2} % (demo's own count)",
        100.0 * stats.hit_rate(),
        100.0 * hits as f64 / gets.max(1) as f64
    );
    let Some((hottest, skew)) = stats.hottest_shard() else {
        println!("  the statistics reported no per-shard operations; no diagnosis");
        return Outcome::NotDiagnosed;
    };
    let shard = &stats.shards[hottest];
    println!(
        "  hottest shard: #{hottest} of {}, {skew:.2}× the mean shard's operations \
         ({} estimated, {} writes, {} entries)\n",
        stats.shards.len(),
        shard.operations_estimate(),
        shard.write_locks,
        shard.entries
    );
    println!(
        "What it means: a few keys take a large share of the traffic, and the shard that holds"
    );
    println!("the hottest one takes more than its share; more shards do not spread one key.\n");
    println!("Fix: cache or batch the hottest keys' reads (or split a hot key, e.g. per-thread");
    println!("counters summed on read), and watch `stats().hot_keys` and `hottest_shard()`.");
    Outcome::Diagnosed
}
