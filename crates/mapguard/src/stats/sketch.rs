//! The sampled figures of a map: a Space-Saving heavy-hitter sketch over key hashes and the
//! sampled reads of each shard, updated together under one mutex once per sampled access.
//!
//! Space-Saving (Metwally, Agrawal, El Abbadi, 2005) keeps `CAPACITY` monitored hashes with a
//! count and an error bound. A monitored hash adds one; an unmonitored one replaces the entry
//! with the smallest count `m` and starts at `m + 1` with error `m`. Every hash sampled more
//! than `samples / CAPACITY` times is monitored, and each count over-estimates the true
//! sampled count by at most its error.

/// How many hashes the sketch monitors; the top of these are reported.
pub(crate) const CAPACITY: usize = 64;

#[derive(Clone, Debug)]
pub(crate) struct Monitored {
    pub(crate) hash: u64,
    pub(crate) count: u64,
    pub(crate) error: u64,
    pub(crate) key: Option<String>,
}

/// Everything updated under the sampling mutex.
pub(crate) struct Sampled {
    entries: Vec<Monitored>,
    /// Sampled reads per shard (empty for maps without shards).
    pub(crate) shard_reads: Box<[u64]>,
    pub(crate) samples: u64,
}

impl Sampled {
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            entries: Vec::with_capacity(CAPACITY),
            shard_reads: vec![0; shards].into_boxed_slice(),
            samples: 0,
        }
    }

    /// Counts one sampled access of `hash`; `label` renders its key when asked for one.
    pub(crate) fn offer(&mut self, hash: u64, label: Option<&dyn Fn() -> String>) {
        self.samples += 1;
        if let Some(entry) = self.entries.iter_mut().find(|e| e.hash == hash) {
            entry.count += 1;
            if entry.key.is_none() {
                entry.key = label.map(|f| f());
            }
            return;
        }
        let fresh = |count: u64, error: u64| Monitored {
            hash,
            count,
            error,
            key: label.map(|f| f()),
        };
        if self.entries.len() < CAPACITY {
            self.entries.push(fresh(1, 0));
            return;
        }
        let (at, min) = self
            .entries
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.count)
            .map(|(at, e)| (at, e.count))
            .expect("a full sketch has entries");
        self.entries[at] = fresh(min + 1, min);
    }

    /// The `k` hashes with the highest counts, highest first.
    pub(crate) fn top_k(&self, k: usize) -> Vec<Monitored> {
        let mut top = self.entries.clone();
        top.sort_by(|a, b| b.count.cmp(&a.count).then(a.hash.cmp(&b.hash)));
        top.truncate(k);
        top
    }
}
