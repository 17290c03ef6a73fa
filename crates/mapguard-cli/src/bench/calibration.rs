//! The calibration map: not a product, a measure of what two cores allow on the workloads
//! whose set of keys never changes (see `shared/research/calibration.md` of the project's
//! notes). `u64` keys and values sit inline in atomic words; a read probes and loads, writing
//! nothing; an overwrite of a present key is one atomic store; there is no removal and no
//! growth. A general map pays for what this one leaves out (any key and value type, values
//! that stay put while referenced, removal, growth), so its ratio to this map says how much
//! of the hardware's speed the design keeps.
//!
//! Written here rather than taken from a crate: it is a yardstick for this bench, not a map
//! anyone should use, and its point is to be the simplest thing that can be this fast.

use std::hash::BuildHasher;
use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::adapter::{BenchHasher, BenchMap, MapHandle};
use super::workload::Workload;

/// Shards of the table (a power of two): the inserts of new keys, which take a shard's
/// mutex, rarely meet.
const SHARDS: usize = 1024;

/// Slots per key asked for: the table stays at most a quarter full, so that probes are short.
const SLOTS_PER_KEY: usize = 4;

/// One shard: `2 * slots` words, each slot a key word (the key plus one; 0 is an empty slot)
/// followed by its value word, probed linearly.
#[repr(align(64))]
struct Shard {
    words: Box<[AtomicU64]>,
    /// Held while a new key is placed, so that two inserts never claim one slot.
    insert: Mutex<()>,
}

/// The calibration map (see the module docs).
pub struct Calibration {
    shards: Box<[Shard]>,
    /// Slots per shard minus one (a power of two minus one).
    slot_mask: usize,
    hasher: BenchHasher,
}

/// Where a probe for a key ended.
enum Probe {
    /// The key's slot.
    Found(usize),
    /// The empty slot that ends the key's probe sequence.
    Empty(usize),
}

impl Calibration {
    /// Whether the map can run `workload`: only if its keys are all inserted before timing
    /// starts and none is removed, into a map sized for them.
    pub fn supports(workload: &Workload) -> bool {
        workload.key_set_is_stable() && workload.presized
    }

    /// The shard and the first slot of `key`'s probe sequence.
    #[inline(always)]
    fn place(&self, key: u64) -> (&Shard, usize) {
        let hash = self.hasher.hash_one(key);
        let shard = &self.shards[hash as usize & (SHARDS - 1)];
        (shard, (hash >> 32) as usize & self.slot_mask)
    }

    /// Probes `shard` for `key` from slot `start`.
    ///
    /// # Panics
    /// If the shard is full and the key is not in it (the map never grows).
    #[inline(always)]
    fn probe(&self, shard: &Shard, start: usize, key: u64) -> Probe {
        let stored = key.wrapping_add(1);
        let mut slot = start;
        for _ in 0..=self.slot_mask {
            // Acquire: a key word seen pairs with the release store that placed it after its
            // value (see `insert`).
            match shard.words[2 * slot].load(Ordering::Acquire) {
                0 => return Probe::Empty(slot),
                found if found == stored => return Probe::Found(slot),
                _ => slot = (slot + 1) & self.slot_mask,
            }
        }
        panic!("the calibration map is full: it is sized for its workload's keys and never grows")
    }
}

impl BenchMap for Calibration {
    type Handle<'m> = &'m Calibration;

    /// # Panics
    /// If `capacity` is 0: the map never grows, so it must be sized for its keys.
    fn with_capacity(capacity: usize, hasher: BenchHasher) -> Self {
        assert!(
            capacity > 0,
            "the calibration map never grows: give it a capacity"
        );
        let slots = (capacity * SLOTS_PER_KEY)
            .div_ceil(SHARDS)
            .next_power_of_two();
        let shards = (0..SHARDS)
            .map(|_| Shard {
                words: (0..2 * slots).map(|_| AtomicU64::new(0)).collect(),
                insert: Mutex::new(()),
            })
            .collect();
        Calibration {
            shards,
            slot_mask: slots - 1,
            hasher,
        }
    }

    fn handle(&self) -> &Calibration {
        self
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .words
                    .iter()
                    .step_by(2)
                    .filter(|word| word.load(Ordering::Relaxed) != 0)
                    .count()
            })
            .sum()
    }
}

impl MapHandle for &Calibration {
    #[inline(always)]
    fn get(&mut self, key: &u64) -> bool {
        let (shard, start) = self.place(*key);
        match self.probe(shard, start, *key) {
            Probe::Found(slot) => {
                black_box(shard.words[2 * slot + 1].load(Ordering::Relaxed));
                true
            }
            Probe::Empty(_) => false,
        }
    }

    /// # Panics
    /// If `key` is `u64::MAX` (its stored form would be the empty slot's 0).
    #[inline(always)]
    fn insert(&mut self, key: u64, value: u64) {
        assert_ne!(
            key,
            u64::MAX,
            "the calibration map cannot hold the key u64::MAX"
        );
        let (shard, start) = self.place(key);
        if let Probe::Found(slot) = self.probe(shard, start, key) {
            // An overwrite: one store, no lock.
            shard.words[2 * slot + 1].store(value, Ordering::Relaxed);
            return;
        }
        let _placing = shard
            .insert
            .lock()
            .expect("never poisoned: nothing panics under it");
        // Probed again under the mutex: another insert may have placed this key, or taken
        // the slot, meanwhile.
        match self.probe(shard, start, key) {
            Probe::Found(slot) => shard.words[2 * slot + 1].store(value, Ordering::Relaxed),
            Probe::Empty(slot) => {
                shard.words[2 * slot + 1].store(value, Ordering::Relaxed);
                // Release: a reader that sees the key sees its value.
                shard.words[2 * slot].store(key.wrapping_add(1), Ordering::Release);
            }
        }
    }

    /// # Panics
    /// Always: the map has no removal, and the bench runs it only on workloads without
    /// removes ([`Calibration::supports`]).
    fn remove(&mut self, _key: &u64) -> bool {
        panic!("the calibration map does not remove keys")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::adapter::bench_hasher;

    #[test]
    fn behaves_like_a_map_without_removal() {
        let map = Calibration::with_capacity(10_000, bench_hasher(3));
        let mut h = map.handle();
        for key in 0..10_000 {
            assert!(!h.get(&key));
            h.insert(key, key);
        }
        for key in 0..10_000 {
            h.update(key, key + 1);
            assert!(h.get(&key));
        }
        assert!(!h.get(&10_000));
        assert_eq!(map.len(), 10_000);
    }

    #[test]
    fn concurrent_inserts_place_each_key_once() {
        let map = Calibration::with_capacity(20_000, bench_hasher(4));
        std::thread::scope(|s| {
            for t in 0..2 {
                let map = &map;
                s.spawn(move || {
                    let mut h = map.handle();
                    for key in 0..20_000 {
                        h.insert(key, t);
                    }
                });
            }
        });
        assert_eq!(map.len(), 20_000);
    }

    #[test]
    fn runs_only_where_the_key_set_is_stable() {
        let names: Vec<&str> = crate::bench::WORKLOADS
            .iter()
            .filter(|w| Calibration::supports(w))
            .map(|w| w.name)
            .collect();
        assert_eq!(names, ["seed95", "seed99", "read100", "hot-keys"]);
    }

    #[test]
    #[should_panic(expected = "full")]
    fn a_full_shard_panics_instead_of_looping() {
        let map = Calibration::with_capacity(1, bench_hasher(5));
        let mut h = map.handle();
        for key in 0..1_000_000 {
            h.insert(key, key);
        }
    }
}
