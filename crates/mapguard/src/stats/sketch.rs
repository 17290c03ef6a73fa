//! The sampled figures of a map: a Space-Saving heavy-hitter sketch over key hashes and the
//! sampled reads of each shard, updated together under one mutex once per sampled access.
//!
//! Space-Saving (Metwally, Agrawal, El Abbadi, 2005) keeps `CAPACITY` monitored hashes with a
//! count and an error bound. A monitored hash adds one; an unmonitored one replaces the entry
//! with the smallest count `m` and starts at `m + 1` with error `m`. Every hash sampled more
//! than `samples / CAPACITY` times is monitored, and each count over-estimates the true
//! sampled count by at most its error.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// How many hashes the sketch monitors; the top of these are reported.
pub(crate) const CAPACITY: usize = 64;

#[derive(Clone, Debug)]
pub(crate) struct Monitored {
    pub(crate) hash: u64,
    pub(crate) count: u64,
    pub(crate) error: u64,
    pub(crate) key: Option<String>,
}

/// Everything updated under the sampling mutex. The sketch is kept as parallel arrays with
/// an index from hash to position; a new hash replaces an entry with the smallest count,
/// found from a rotating cursor against a lower bound of the smallest count (counts only
/// grow), so that neither step scans every entry on a typical update.
pub(crate) struct Sampled {
    index: HashMap<u64, usize, BuildHasherDefault<PassThrough>>,
    hashes: Vec<u64>,
    counts: Vec<u64>,
    errors: Vec<u64>,
    keys: Vec<Option<String>>,
    /// No count is below this.
    min: u64,
    cursor: usize,
    /// Sampled reads per shard (empty for maps without shards).
    pub(crate) shard_reads: Box<[u64]>,
}

/// Key hashes are already hashes: the index uses them as they are.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Sampled {
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            index: HashMap::with_capacity_and_hasher(CAPACITY, Default::default()),
            hashes: Vec::with_capacity(CAPACITY),
            counts: Vec::with_capacity(CAPACITY),
            errors: Vec::with_capacity(CAPACITY),
            keys: Vec::with_capacity(CAPACITY),
            min: 0,
            cursor: 0,
            shard_reads: vec![0; shards].into_boxed_slice(),
        }
    }

    /// Counts one sampled access of `hash`; `label` renders its key when asked for one.
    pub(crate) fn offer(&mut self, hash: u64, label: Option<&dyn Fn() -> String>) {
        if let Some(&at) = self.index.get(&hash) {
            self.counts[at] += 1;
            if self.keys[at].is_none() {
                self.keys[at] = label.map(|f| f());
            }
            return;
        }
        let key = label.map(|f| f());
        if self.hashes.len() < CAPACITY {
            self.index.insert(hash, self.hashes.len());
            self.hashes.push(hash);
            self.counts.push(1);
            self.errors.push(0);
            self.keys.push(key);
            return;
        }
        let at = self.smallest();
        let min = self.counts[at];
        self.index.remove(&self.hashes[at]);
        self.index.insert(hash, at);
        self.hashes[at] = hash;
        self.counts[at] = min + 1;
        self.errors[at] = min;
        self.keys[at] = key;
    }

    /// The position of an entry with the smallest count.
    fn smallest(&mut self) -> usize {
        loop {
            for step in 0..CAPACITY {
                let at = (self.cursor + step) % CAPACITY;
                if self.counts[at] == self.min {
                    self.cursor = (at + 1) % CAPACITY;
                    return at;
                }
            }
            self.min = self.counts.iter().copied().min().unwrap_or(0);
        }
    }

    /// The `k` hashes with the highest counts, highest first.
    pub(crate) fn top_k(&self, k: usize) -> Vec<Monitored> {
        let mut top: Vec<Monitored> = (0..self.hashes.len())
            .map(|i| Monitored {
                hash: self.hashes[i],
                count: self.counts[i],
                error: self.errors[i],
                key: self.keys[i].clone(),
            })
            .collect();
        top.sort_by(|a, b| b.count.cmp(&a.count).then(a.hash.cmp(&b.hash)));
        top.truncate(k);
        top
    }
}
