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

/// Slots of the index from hash to position: four times the capacity (a power of two), so
/// that the index is at most a quarter full and a lookup or a removal rarely probes a second
/// slot.
const INDEX: usize = 4 * CAPACITY;

#[derive(Clone, Debug)]
pub(crate) struct Monitored {
    pub(crate) hash: u64,
    pub(crate) count: u64,
    pub(crate) error: u64,
    pub(crate) key: Option<String>,
}

/// Everything updated under the sampling mutex. The sketch is kept as parallel arrays with
/// an index from hash to position (open addressing with linear probing over [`INDEX`]
/// one-byte slots, no allocation); a new hash replaces an entry with the smallest count,
/// found from a rotating cursor against a lower bound of the smallest count (counts only
/// grow), so that neither step scans every entry on a typical update.
pub(crate) struct Sampled {
    /// Position + 1 of the entry whose hash probes to this slot first (or later), 0: empty.
    index: [u8; INDEX],
    len: usize,
    hashes: [u64; CAPACITY],
    counts: [u64; CAPACITY],
    errors: [u64; CAPACITY],
    keys: Vec<Option<String>>,
    /// No count is below this.
    min: u64,
    cursor: usize,
    /// Sampled reads per shard (empty for maps without shards).
    pub(crate) shard_reads: Box<[u64]>,
}

/// The first index slot `hash` probes (key hashes are already mixed; their top bits, which
/// no map uses for its own placement, choose the slot).
fn home(hash: u64) -> usize {
    (hash >> (64 - INDEX.trailing_zeros())) as usize
}

impl Sampled {
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            index: [0; INDEX],
            len: 0,
            hashes: [0; CAPACITY],
            counts: [0; CAPACITY],
            errors: [0; CAPACITY],
            keys: vec![None; CAPACITY],
            min: 0,
            cursor: 0,
            shard_reads: vec![0; shards].into_boxed_slice(),
        }
    }

    /// The index slot holding `hash`, or the empty slot where it would go.
    fn probe(&self, hash: u64) -> (usize, Option<usize>) {
        let mut slot = home(hash);
        loop {
            match usize::from(self.index[slot]) {
                0 => return (slot, None),
                entry if self.hashes[entry - 1] == hash => return (slot, Some(entry - 1)),
                _ => slot = (slot + 1) % INDEX,
            }
        }
    }

    /// Empties index slot `slot`, moving back the entries after it that probed past it
    /// (deletion without tombstones).
    fn unindex(&mut self, mut slot: usize) {
        let mut next = slot;
        loop {
            next = (next + 1) % INDEX;
            let entry = usize::from(self.index[next]);
            if entry == 0 {
                break;
            }
            // The entry at `next` may move to `slot` unless its home lies cyclically in
            // `(slot, next]`.
            let from_home = next.wrapping_sub(home(self.hashes[entry - 1])) % INDEX;
            let from_slot = next.wrapping_sub(slot) % INDEX;
            if from_home >= from_slot {
                self.index[slot] = self.index[next];
                slot = next;
            }
        }
        self.index[slot] = 0;
    }

    /// Counts one sampled access of `hash`; `label` renders its key when asked for one.
    pub(crate) fn offer(&mut self, hash: u64, label: Option<&dyn Fn() -> String>) {
        let (slot, found) = self.probe(hash);
        if let Some(at) = found {
            self.counts[at] += 1;
            if self.keys[at].is_none() {
                self.keys[at] = label.map(|f| f());
            }
            return;
        }
        let key = label.map(|f| f());
        if self.len < CAPACITY {
            let at = self.len;
            self.len += 1;
            self.index[slot] = (at + 1) as u8;
            self.hashes[at] = hash;
            self.counts[at] = 1;
            self.errors[at] = 0;
            self.keys[at] = key;
            return;
        }
        let at = self.smallest();
        let min = self.counts[at];
        let (old, _) = self.probe(self.hashes[at]);
        self.unindex(old);
        self.hashes[at] = hash;
        // Probed again: the removal may have moved the empty slot `hash` would take.
        let (slot, _) = self.probe(hash);
        self.index[slot] = (at + 1) as u8;
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
            self.min = self.least_count();
        }
    }

    /// The smallest count, once every count has outgrown the bound (out of line: inlined, the
    /// compiler computes it before every search).
    #[inline(never)]
    fn least_count(&self) -> u64 {
        self.counts.iter().copied().min().unwrap_or(0)
    }

    /// The `k` hashes with the highest counts, highest first.
    pub(crate) fn top_k(&self, k: usize) -> Vec<Monitored> {
        let mut top: Vec<Monitored> = (0..self.len)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The Space-Saving guarantees against true counts, and an index that finds every
    /// monitored hash, over a skewed stream whose hashes often share a home slot.
    #[test]
    fn keeps_the_space_saving_bounds_and_its_index_whole() {
        let mut sketch = Sampled::new(0);
        let mut truth = std::collections::HashMap::new();
        let mut state = 7u64;
        let offers = 20_000u64;
        for round in 0..offers {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let n = (state >> 33) % 1000;
            let pick = if n < 500 { n % 7 } else { n % 300 };
            // Only a few distinct top bits: many hashes probe from the same home slot.
            let hash = ((pick % 9) << 60) | pick;
            sketch.offer(hash, None);
            *truth.entry(hash).or_insert(0u64) += 1;
            for at in 0..sketch.len {
                let (_, found) = sketch.probe(sketch.hashes[at]);
                assert_eq!(found, Some(at), "round {round}");
            }
            let indexed = sketch.index.iter().filter(|&&e| e != 0).count();
            assert_eq!(indexed, sketch.len, "round {round}");
        }
        assert_eq!(sketch.counts.iter().sum::<u64>(), offers);
        for at in 0..sketch.len {
            let real = truth[&sketch.hashes[at]];
            let (count, error) = (sketch.counts[at], sketch.errors[at]);
            assert!(
                count - error <= real && real <= count,
                "{real} vs {count} - {error}"
            );
        }
        for (hash, real) in &truth {
            if *real > offers / CAPACITY as u64 {
                assert!(
                    sketch.hashes[..sketch.len].contains(hash),
                    "{hash:x} ({real})"
                );
            }
        }
        assert_eq!(
            sketch.top_k(1)[0].count,
            *sketch.counts.iter().max().unwrap()
        );
    }
}
