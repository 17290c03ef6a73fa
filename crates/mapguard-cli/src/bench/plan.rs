//! Operation plans: each thread's sequence of operations, generated before timing and
//! deterministic from the seed, the workload and the thread index (not the thread count, so
//! thread `i` replays the same sequence at every thread count and every map sees the same
//! operations).
//!
//! Keys are the indices `0..key_space` passed through a bijective mixer, so the prefilled keys
//! (indices `0..prefill_len`) and the hottest Zipf ranks are spread over the hash space rather
//! than being small consecutive integers.

use super::workload::{KeyDistribution, Workload};

/// One operation of a plan, with the key it acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Look the key up.
    Get(u64),
    /// Insert the key (overwriting any value), key drawn from the whole space.
    Insert(u64),
    /// Remove the key, key drawn from the whole space.
    Remove(u64),
    /// Insert over a key drawn from the same distribution as gets.
    Update(u64),
}

/// The key stored for key index `index`: a bijection on `u64` (the splitmix64 finalizer), so
/// distinct indices never collide.
pub fn key_of(index: u64) -> u64 {
    let mut z = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small, fast, deterministic generator (splitmix64); plenty for drawing keys.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (multiply-shift; the bias is below 2^-40 for our bounds).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Draws ranks `0..n` with probability proportional to `1 / (rank + 1)^s`, by binary search
/// in a precomputed cumulative table (the hot-keys space is small).
#[derive(Clone, Debug)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    /// A sampler over `n` ranks with exponent `s`.
    pub fn new(n: u64, s: f64) -> Self {
        assert!(n > 0, "a Zipf distribution needs at least one rank");
        let mut total = 0.0;
        let mut cumulative: Vec<f64> = (1..=n)
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(s);
                total
            })
            .collect();
        for c in &mut cumulative {
            *c /= total;
        }
        Self { cumulative }
    }

    /// The next rank, in `0..n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        let rank = self.cumulative.partition_point(|&c| c <= u);
        rank.min(self.cumulative.len() - 1) as u64
    }
}

/// Draws key indices for gets and updates.
enum HotDraw {
    Uniform,
    Zipf(Zipf),
}

fn name_hash(name: &str) -> u64 {
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// The seed of thread `thread`'s plan for `workload`.
fn thread_seed(seed: u64, workload: &Workload, thread: usize) -> u64 {
    key_of(seed ^ name_hash(workload.name)) ^ key_of(thread as u64 + 1)
}

/// Generates the plan of thread `thread`: `len` operations of `workload`.
pub fn thread_plan(workload: &Workload, seed: u64, thread: usize, len: usize) -> Vec<Op> {
    let mut rng = Rng::new(thread_seed(seed, workload, thread));
    let hot = match workload.distribution {
        KeyDistribution::Uniform => HotDraw::Uniform,
        KeyDistribution::Zipf { s } => HotDraw::Zipf(Zipf::new(workload.key_space, s)),
    };
    let space = workload.key_space;
    let mix = workload.mix;
    let (get_end, insert_end, remove_end) = (
        u64::from(mix.get),
        u64::from(mix.get + mix.insert),
        u64::from(mix.get + mix.insert + mix.remove),
    );
    let hot_key = |rng: &mut Rng| match &hot {
        HotDraw::Uniform => key_of(rng.below(space)),
        HotDraw::Zipf(z) => key_of(z.sample(rng)),
    };
    (0..len)
        .map(|_| {
            let roll = rng.below(100);
            if roll < get_end {
                Op::Get(hot_key(&mut rng))
            } else if roll < insert_end {
                Op::Insert(key_of(rng.below(space)))
            } else if roll < remove_end {
                Op::Remove(key_of(rng.below(space)))
            } else {
                Op::Update(hot_key(&mut rng))
            }
        })
        .collect()
}

/// Generates the plans of threads `0..threads`, using all cores.
pub fn plans(workload: &Workload, seed: u64, threads: usize, len: usize) -> Vec<Vec<Op>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| s.spawn(move || thread_plan(workload, seed, t, len)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("plan generation does not panic"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn counts(plan: &[Op]) -> [usize; 4] {
        let mut c = [0; 4];
        for op in plan {
            c[match op {
                Op::Get(_) => 0,
                Op::Insert(_) => 1,
                Op::Remove(_) => 2,
                Op::Update(_) => 3,
            }] += 1;
        }
        c
    }

    #[test]
    fn mixes_match_the_brief_within_half_a_percent() {
        let len = 200_000;
        for w in super::super::workload::WORKLOADS {
            let plan = thread_plan(w, 7, 0, len);
            let c = counts(&plan);
            let want = [w.mix.get, w.mix.insert, w.mix.remove, w.mix.update];
            for (got, want) in c.iter().zip(want) {
                let pct = *got as f64 * 100.0 / len as f64;
                assert!(
                    (pct - f64::from(want)).abs() < 0.5,
                    "{}: got {c:?}, want {want:?} %",
                    w.name
                );
            }
        }
    }

    #[test]
    fn plans_are_deterministic_and_differ_per_thread() {
        let w = Workload::by_name("exchange").unwrap();
        assert_eq!(thread_plan(w, 1, 3, 1000), thread_plan(w, 1, 3, 1000));
        assert_ne!(thread_plan(w, 1, 3, 1000), thread_plan(w, 1, 4, 1000));
        assert_ne!(thread_plan(w, 1, 3, 1000), thread_plan(w, 2, 3, 1000));
        let all = plans(w, 1, 4, 1000);
        assert_eq!(all[3], thread_plan(w, 1, 3, 1000));
    }

    #[test]
    fn keys_stay_in_the_key_space() {
        let w = Workload::by_name("seed95").unwrap();
        let space: std::collections::HashSet<u64> = (0..w.key_space).map(key_of).collect();
        assert_eq!(space.len() as u64, w.key_space, "key_of is injective");
        for op in thread_plan(w, 9, 0, 50_000) {
            let (Op::Get(k) | Op::Insert(k) | Op::Remove(k) | Op::Update(k)) = op;
            assert!(space.contains(&k));
        }
    }

    #[test]
    fn hot_keys_are_zipf_skewed() {
        let w = Workload::by_name("hot-keys").unwrap();
        let plan = thread_plan(w, 3, 0, 400_000);
        let mut freq: HashMap<u64, usize> = HashMap::new();
        for op in &plan {
            if let Op::Get(k) | Op::Update(k) = op {
                *freq.entry(*k).or_default() += 1;
            }
        }
        let total = plan.len() as f64;
        // With s = 0.99 over 10,000 keys, rank 0 draws 1/H ≈ 10.3 % and rank 1 about half that.
        let top = freq[&key_of(0)] as f64 / total;
        let second = freq[&key_of(1)] as f64 / total;
        assert!((0.095..0.111).contains(&top), "top key share {top}");
        assert!(
            (1.8..2.2).contains(&(top / second)),
            "ratio {}",
            top / second
        );
        // The 100 hottest keys (1 % of the space) take roughly half the operations.
        let hot100: usize = (0..100)
            .map(|r| freq.get(&key_of(r)).copied().unwrap_or(0))
            .sum();
        let share = hot100 as f64 / total;
        assert!((0.50..0.58).contains(&share), "top-100 share {share}");
        // A uniform workload of the same size has no such skew.
        let uniform = thread_plan(Workload::by_name("seed95").unwrap(), 3, 0, 400_000);
        let top_uniform = uniform
            .iter()
            .filter(|op| **op == Op::Get(key_of(0)))
            .count();
        assert!(top_uniform < 100, "uniform top key drew {top_uniform}");
    }
}
