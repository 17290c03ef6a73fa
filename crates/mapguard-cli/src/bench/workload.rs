//! The workloads of the product brief: operation mixes, key spaces, prefill and key
//! distributions. This module only describes workloads; generating operations from them is
//! `plan.rs`'s job.

use std::fmt;

/// Percentages of each operation kind in a workload; they sum to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// Lookups of a key drawn from the workload's key distribution.
    pub get: u8,
    /// Inserts (or overwrites) of a key drawn uniformly from the whole key space.
    pub insert: u8,
    /// Removals of a key drawn uniformly from the whole key space.
    pub remove: u8,
    /// Inserts over a key drawn from the same distribution as gets.
    pub update: u8,
}

impl Mix {
    const fn new(get: u8, insert: u8, remove: u8, update: u8) -> Self {
        assert!(get as u32 + insert as u32 + remove as u32 + update as u32 == 100);
        Self {
            get,
            insert,
            remove,
            update,
        }
    }
}

/// How the keys of gets and updates are drawn from the key space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyDistribution {
    /// Every key of the space equally likely.
    Uniform,
    /// Key of rank `r` (0-based) drawn with probability proportional to `1 / (r + 1)^s`.
    Zipf {
        /// The skew exponent.
        s: f64,
    },
}

/// One named workload of the product brief.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Workload {
    /// The CLI name, e.g. `seed95`.
    pub name: &'static str,
    /// The operation mix.
    pub mix: Mix,
    /// Number of distinct keys all threads draw from.
    pub key_space: u64,
    /// Percentage of the key space inserted before timing starts.
    pub prefill_percent: u8,
    /// Distribution of the keys of gets and updates.
    pub distribution: KeyDistribution,
    /// Whether the map is created with capacity for the whole key space.
    pub presized: bool,
}

impl Workload {
    /// Number of keys inserted before timing starts.
    pub fn prefill_len(&self) -> u64 {
        self.key_space * u64::from(self.prefill_percent) / 100
    }

    /// The capacity the map is created with: the key space, or 0 when not presized.
    pub fn initial_capacity(&self) -> usize {
        if self.presized {
            usize::try_from(self.key_space).expect("key space fits in usize")
        } else {
            0
        }
    }

    /// Whether the set of present keys never changes (no inserts, no removes; updates only
    /// overwrite keys that prefill put there), so that replaying a plan is the same workload.
    pub fn key_set_is_stable(&self) -> bool {
        self.mix.insert == 0 && self.mix.remove == 0 && self.prefill_percent == 100
    }

    /// Whether every operation is a read (`read100`): its limit is every thread reading one
    /// immutable table.
    pub fn is_read_only(&self) -> bool {
        self.mix.get == 100
    }

    /// Whether replaying a worker's plan from the start keeps the workload what it is: the key
    /// set never changes, or inserts and removes of uniformly drawn keys balance, so that a
    /// second pass meets the table in the state the first left it in (`rapid-grow`, mostly
    /// inserts of new keys, is the exception: a second pass would overwrite them).
    pub fn is_replayable(&self) -> bool {
        self.key_set_is_stable() || (self.mix.insert == self.mix.remove && self.prefill_percent > 0)
    }

    /// The mix in a line, as the charts print it under their titles.
    ///
    /// # Examples
    /// ```
    /// use mapguard_cli::bench::Workload;
    /// assert_eq!(
    ///     Workload::by_name("exchange").unwrap().summary(),
    ///     "10 % get, 40 % insert, 40 % remove, 10 % update; 1,048,576 keys, 75 % prefilled"
    /// );
    /// ```
    pub fn summary(&self) -> String {
        let mix = self.mix;
        let parts: Vec<String> = [
            (mix.get, "get"),
            (mix.insert, "insert"),
            (mix.remove, "remove"),
            (mix.update, "update"),
        ]
        .into_iter()
        .filter(|(share, _)| *share > 0)
        .map(|(share, op)| format!("{share} % {op}"))
        .collect();
        let digits = self.key_space.to_string();
        let mut keys = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                keys.push(',');
            }
            keys.push(digit);
        }
        let distribution = match self.distribution {
            KeyDistribution::Uniform => String::new(),
            KeyDistribution::Zipf { s } => format!(", Zipf s = {s}"),
        };
        format!(
            "{}; {keys} keys, {} % prefilled{distribution}",
            parts.join(", "),
            self.prefill_percent
        )
    }

    /// Looks a workload up by its CLI name.
    pub fn by_name(name: &str) -> Option<&'static Workload> {
        WORKLOADS.iter().find(|w| w.name == name)
    }

    /// The CLI names of all workloads, comma-separated, for error messages.
    pub fn valid_names() -> String {
        WORKLOADS
            .iter()
            .map(|w| w.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

const SMALL_KEY_SPACE: u64 = 10_000;

/// All workloads, in the order of the product brief.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "seed95",
        mix: Mix::new(95, 0, 0, 5),
        key_space: SMALL_KEY_SPACE,
        prefill_percent: 100,
        distribution: KeyDistribution::Uniform,
        presized: true,
    },
    Workload {
        name: "seed99",
        mix: Mix::new(99, 0, 0, 1),
        key_space: SMALL_KEY_SPACE,
        prefill_percent: 100,
        distribution: KeyDistribution::Uniform,
        presized: true,
    },
    Workload {
        name: "read100",
        mix: Mix::new(100, 0, 0, 0),
        key_space: SMALL_KEY_SPACE,
        prefill_percent: 100,
        distribution: KeyDistribution::Uniform,
        presized: true,
    },
    Workload {
        name: "read-heavy",
        mix: Mix::new(98, 1, 1, 0),
        key_space: 1 << 20,
        prefill_percent: 75,
        distribution: KeyDistribution::Uniform,
        presized: true,
    },
    Workload {
        name: "exchange",
        mix: Mix::new(10, 40, 40, 10),
        key_space: 1 << 20,
        prefill_percent: 75,
        distribution: KeyDistribution::Uniform,
        presized: true,
    },
    Workload {
        name: "write-heavy",
        mix: Mix::new(50, 25, 25, 0),
        key_space: 1 << 16,
        prefill_percent: 50,
        distribution: KeyDistribution::Uniform,
        presized: true,
    },
    Workload {
        name: "rapid-grow",
        mix: Mix::new(5, 80, 5, 10),
        key_space: 1 << 24,
        prefill_percent: 0,
        distribution: KeyDistribution::Uniform,
        presized: false,
    },
    Workload {
        name: "hot-keys",
        mix: Mix::new(95, 0, 0, 5),
        key_space: SMALL_KEY_SPACE,
        prefill_percent: 100,
        distribution: KeyDistribution::Zipf { s: 0.99 },
        presized: true,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for w in WORKLOADS {
            assert_eq!(Workload::by_name(w.name), Some(w));
        }
        assert_eq!(Workload::by_name("seed-95"), None);
        assert_eq!(
            Workload::valid_names(),
            "seed95, seed99, read100, read-heavy, exchange, write-heavy, rapid-grow, hot-keys"
        );
    }

    #[test]
    fn prefill_and_capacity_follow_the_brief() {
        let exchange = Workload::by_name("exchange").unwrap();
        assert_eq!(exchange.prefill_len(), 786_432);
        assert_eq!(exchange.initial_capacity(), 1 << 20);
        let grow = Workload::by_name("rapid-grow").unwrap();
        assert_eq!(grow.prefill_len(), 0);
        assert_eq!(grow.initial_capacity(), 0);
        let stable: Vec<&str> = WORKLOADS
            .iter()
            .filter(|w| w.key_set_is_stable())
            .map(|w| w.name)
            .collect();
        assert_eq!(stable, ["seed95", "seed99", "read100", "hot-keys"]);
        let replayable: Vec<&str> = WORKLOADS
            .iter()
            .filter(|w| w.is_replayable())
            .map(|w| w.name)
            .collect();
        assert_eq!(
            replayable,
            [
                "seed95",
                "seed99",
                "read100",
                "read-heavy",
                "exchange",
                "write-heavy",
                "hot-keys"
            ]
        );
    }
}
