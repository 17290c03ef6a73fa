//! The calibration map: not a product, a measure of what two cores allow on each workload
//! (see `shared/research/calibration.md` of the project's notes). `u64` keys and values sit
//! inline in atomic words, in a table sized once for every key the workload can touch: a read
//! probes and loads, writing nothing; an overwrite, a removal and the insert of a key that
//! was there before are each one atomic access to the key's value word. A key, once placed,
//! keeps its slot for the map's life (a removal marks the value absent), so the table never
//! grows, never reuses a slot and never rehashes. A general map pays for what this one leaves
//! out (any key and value type, values that stay put while referenced, space given back,
//! growth), so its ratio to this map says how much of the hardware's speed the design keeps.
//!
//! On a workload that grows (`rapid-grow`) the table is sized for the end from the start, so
//! every insert lands in memory a growing map's small early table does not span: there it is
//! the cost of a table that never grows, not a bound.
//!
//! Written here rather than taken from a crate: it is a yardstick for this bench, not a map
//! anyone should use, and its point is to be the simplest thing that can be this fast.

use std::hash::BuildHasher;
use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::adapter::{BenchHasher, BenchMap, MapHandle};
use super::plan::Op;
use super::workload::Workload;

/// Shards of the table (a power of two): the inserts of new keys, which take a shard's
/// mutex, rarely meet.
const SHARDS: usize = 1024;

/// Slots per key asked for: the table stays at most a quarter full, so that probes are short.
const SLOTS_PER_KEY: usize = 4;

/// Fewest slots a shard has.
const MIN_SLOTS: usize = 16;

/// The value word of a key that is placed but not present (removed); no value the bench
/// stores is this one.
const ABSENT: u64 = u64::MAX;

/// One shard: `2 * slots` words, each slot a key word (the key plus one; 0 is an empty slot)
/// followed by its value word ([`ABSENT`] while the key is not in the map), probed linearly.
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
    /// The keys the map must be sized for to run `workload` with `plans`: every key of the
    /// key space when the workload is presized for it, else (`rapid-grow`) the most keys the
    /// prefill and the plans' inserts can place, as the map never grows and a removed key
    /// keeps its slot.
    pub fn keys_to_hold(workload: &Workload, plans: &[Vec<Op>]) -> usize {
        let space = usize::try_from(workload.key_space).unwrap_or(usize::MAX);
        if workload.presized {
            return space;
        }
        let placing = plans
            .iter()
            .flatten()
            .filter(|op| matches!(op, Op::Insert(_) | Op::Update(_)))
            .count();
        let prefill = usize::try_from(workload.prefill_len()).unwrap_or(usize::MAX);
        space.min(prefill.saturating_add(placing)).max(1)
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

    fn capacity_for(workload: &Workload, plans: &[Vec<Op>]) -> usize {
        Calibration::keys_to_hold(workload, plans)
    }

    /// # Panics
    /// If `capacity` is 0: the map never grows, so it must be sized for its keys.
    fn with_capacity(capacity: usize, hasher: BenchHasher) -> Self {
        assert!(
            capacity > 0,
            "the calibration map never grows: give it a capacity"
        );
        // At least MIN_SLOTS a shard: with few keys a shard, their spread over the shards
        // decides how full the fullest is, not their mean.
        let slots = (capacity * SLOTS_PER_KEY)
            .div_ceil(SHARDS)
            .next_power_of_two()
            .max(MIN_SLOTS);
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
                    .chunks_exact(2)
                    .filter(|slot| {
                        slot[0].load(Ordering::Relaxed) != 0
                            && slot[1].load(Ordering::Relaxed) != ABSENT
                    })
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
                black_box(shard.words[2 * slot + 1].load(Ordering::Relaxed)) != ABSENT
            }
            Probe::Empty(_) => false,
        }
    }

    /// # Panics
    /// If `key` is `u64::MAX` (its stored form would be the empty slot's 0) or `value` is
    /// `u64::MAX` (the absent value): the bench stores neither.
    #[inline(always)]
    fn insert(&mut self, key: u64, value: u64) {
        assert!(
            key != u64::MAX && value != ABSENT,
            "the calibration map cannot hold the key or the value u64::MAX"
        );
        let (shard, start) = self.place(key);
        if let Probe::Found(slot) = self.probe(shard, start, key) {
            // An overwrite, or the key's return after a removal: one store, no lock.
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

    /// Marks the key's value absent (one atomic swap); the key keeps its slot.
    #[inline(always)]
    fn remove(&mut self, key: &u64) -> bool {
        let (shard, start) = self.place(*key);
        match self.probe(shard, start, *key) {
            Probe::Found(slot) => {
                // A key not present reads ABSENT without writing, like the other maps' misses.
                let value = &shard.words[2 * slot + 1];
                value.load(Ordering::Relaxed) != ABSENT
                    && value.swap(ABSENT, Ordering::Relaxed) != ABSENT
            }
            Probe::Empty(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::adapter::bench_hasher;

    #[test]
    fn behaves_like_std_hashmap_over_random_operations() {
        use crate::bench::plan::Rng;
        use std::collections::HashMap;
        let map = Calibration::with_capacity(64, bench_hasher(3));
        let mut h = map.handle();
        let mut model = HashMap::new();
        let mut rng = Rng::new(7);
        for step in 0..20_000u64 {
            let key = rng.below(64);
            match rng.below(4) {
                0 => assert_eq!(h.get(&key), model.contains_key(&key), "get {key} at {step}"),
                1 => {
                    h.insert(key, step);
                    model.insert(key, step);
                }
                2 => assert_eq!(
                    h.remove(&key),
                    model.remove(&key).is_some(),
                    "remove {key} at {step}"
                ),
                _ => {
                    h.update(key, step + 1);
                    model.insert(key, step + 1);
                }
            }
        }
        assert_eq!(map.len(), model.len());
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
    fn concurrent_removes_take_each_present_key_once() {
        let map = Calibration::with_capacity(20_000, bench_hasher(6));
        {
            let mut h = map.handle();
            for key in 0..20_000 {
                h.insert(key, key);
            }
        }
        let taken: usize = std::thread::scope(|s| {
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let map = &map;
                    s.spawn(move || {
                        let mut h = map.handle();
                        (0..20_000).filter(|key| h.remove(key)).count()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert_eq!((taken, map.len()), (20_000, 0));
    }

    #[test]
    fn is_sized_for_every_key_a_workload_can_place() {
        use crate::bench::plan::plans;
        let exchange = crate::bench::Workload::by_name("exchange").unwrap();
        assert_eq!(Calibration::keys_to_hold(exchange, &[]), 1 << 20);
        let grow = crate::bench::Workload::by_name("rapid-grow").unwrap();
        // Plans that place more keys than the smallest table holds (16 slots in each of 1,024
        // shards), so that the size comes from the count.
        let plans = plans(grow, 1, 2, 20_000);
        let placing = plans
            .iter()
            .flatten()
            .filter(|op| matches!(op, Op::Insert(_) | Op::Update(_)))
            .count();
        assert_eq!(Calibration::keys_to_hold(grow, &plans), placing);
        // Every key those plans place fits: a full shard would panic.
        let map = Calibration::with_capacity(placing, bench_hasher(8));
        let mut h = map.handle();
        for op in plans.iter().flatten() {
            match *op {
                Op::Insert(key) | Op::Update(key) => h.insert(key, 1),
                Op::Remove(key) => {
                    black_box(h.remove(&key));
                }
                Op::Get(key) => {
                    black_box(h.get(&key));
                }
            }
        }
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
