//! Contention statistics in the manner of lock_stat: per class and side, acquisitions,
//! contended acquisitions, wait and hold times, and the call sites that waited and that held
//! the lock while others waited.
//!
//! Counting must not add shared writes to the fast path: each thread counts locally and
//! merges into its own block every few hundred acquisitions (and at exit); contended
//! acquisitions, already slow, write their block directly. A snapshot sums all blocks.

use std::fmt;

/// Min / max / total of a set of durations, in nanoseconds.
///
/// # Examples
///
/// ```
/// let t = lockdep::TimeStats::default();
/// assert_eq!(t.avg_ns(), 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TimeStats {
    /// How many durations were measured.
    pub count: u64,
    /// The shortest, in ns (0 when `count` is 0).
    pub min_ns: u64,
    /// The longest, in ns.
    pub max_ns: u64,
    /// The sum, in ns.
    pub total_ns: u64,
}

impl TimeStats {
    /// The mean in ns (0 when nothing was measured).
    ///
    /// # Examples
    ///
    /// ```
    /// let t = lockdep::TimeStats { count: 2, min_ns: 1, max_ns: 3, total_ns: 4 };
    /// assert_eq!(t.avg_ns(), 2);
    /// ```
    pub fn avg_ns(&self) -> u64 {
        self.total_ns.checked_div(self.count).unwrap_or(0)
    }
}

/// A call site and how often it appeared.
///
/// # Examples
///
/// ```
/// let s = lockdep::SiteCount { site: "src/lib.rs:1:1".into(), count: 3 };
/// assert_eq!(s.count, 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SiteCount {
    /// `file:line:column`.
    pub site: String,
    /// Occurrences.
    pub count: u64,
}

/// Figures for one side (read or write) of one class.
///
/// # Examples
///
/// ```
/// let side = lockdep::SideStats::default();
/// assert_eq!(side.contentions, 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SideStats {
    /// Acquisitions, contended or not.
    pub acquisitions: u64,
    /// Acquisitions that found the lock busy and waited.
    pub contentions: u64,
    /// Time spent waiting, over contended acquisitions.
    pub wait: TimeStats,
    /// Time the lock was held (only with [`Config::hold_times`](crate::Config::hold_times)).
    pub hold: TimeStats,
    /// Sites that waited most often (up to 4): lock_stat's contention points.
    pub top_waiters: Vec<SiteCount>,
    /// Sites whose acquisition held the lock while others waited (up to 4): lock_stat's
    /// contending points.
    pub top_holders: Vec<SiteCount>,
}

/// Figures for one lock class.
///
/// # Examples
///
/// ```
/// fn busiest(stats: &lockdep::Stats) -> Option<&lockdep::ClassStats> {
///     stats.classes.iter().max_by_key(|c| c.write.contentions + c.read.contentions)
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ClassStats {
    /// The class name (creation site or given name).
    pub class: String,
    /// `Mutex`, `RwLock` or `RecursiveRwLock`.
    pub kind: String,
    /// Shared acquisitions.
    pub read: SideStats,
    /// Exclusive acquisitions.
    pub write: SideStats,
}

/// A snapshot of all classes' figures; `Display` prints a table.
///
/// # Examples
///
/// ```
/// let snapshot = lockdep::stats();
/// println!("{snapshot}");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Stats {
    /// One entry per class that was locked, most contended first.
    pub classes: Vec<ClassStats>,
}

impl Stats {
    /// The entry of the first class whose name contains `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(lockdep::Stats::default().class("nothing").is_none());
    /// ```
    pub fn class(&self, name: &str) -> Option<&ClassStats> {
        self.classes.iter().find(|c| c.class.contains(name))
    }
}

/// A duration in the unit that keeps it short: `850ns`, `12.5µs`, `3.20ms`, `1.50s`.
fn human(ns: u64) -> String {
    let ns_f = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}µs", ns_f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", ns_f / 1e6)
    } else {
        format!("{:.2}s", ns_f / 1e9)
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<48} {:>5} {:>12} {:>10} {:>30} {:>30}",
            "class",
            "side",
            "acquisitions",
            "contended",
            "wait min/avg/max/total",
            "hold min/avg/max/total"
        )?;
        for class in &self.classes {
            for (side, s) in [("write", &class.write), ("read", &class.read)] {
                if s.acquisitions == 0 && s.contentions == 0 {
                    continue;
                }
                let times = |t: &TimeStats| {
                    if t.count == 0 {
                        "-".to_owned()
                    } else {
                        format!(
                            "{}/{}/{}/{}",
                            human(t.min_ns),
                            human(t.avg_ns()),
                            human(t.max_ns),
                            human(t.total_ns)
                        )
                    }
                };
                writeln!(
                    f,
                    "{:<48} {:>5} {:>12} {:>10} {:>30} {:>30}",
                    class.class,
                    side,
                    s.acquisitions,
                    s.contentions,
                    times(&s.wait),
                    times(&s.hold)
                )?;
                for w in &s.top_waiters {
                    writeln!(f, "    waited at  {:>8}x {}", w.count, w.site)?;
                }
                for h in &s.top_holders {
                    writeln!(f, "    holder at  {:>8}x {}", h.count, h.site)?;
                }
            }
        }
        Ok(())
    }
}

/// A snapshot of the statistics of every lock class so far.
///
/// The calling thread's and exited threads' figures are exact; other running threads may
/// lag by up to 256 uncontended acquisitions each. Without the `check` feature the snapshot
/// is empty.
///
/// # Examples
///
/// ```
/// let m = lockdep::Mutex::with_class("doc.stats", 0);
/// *m.lock() += 1;
/// let snapshot = lockdep::stats();
/// if lockdep::CHECKING_COMPILED {
///     assert_eq!(snapshot.class("doc.stats").unwrap().write.acquisitions, 1);
/// }
/// ```
pub fn stats() -> Stats {
    #[cfg(feature = "check")]
    {
        acc::snapshot()
    }
    #[cfg(not(feature = "check"))]
    {
        Stats::default()
    }
}

#[cfg(feature = "check")]
pub(crate) use acc::{ThreadStats, TimeAcc, register, retire};

#[cfg(feature = "check")]
mod acc {
    use std::collections::HashMap;
    use std::panic::Location;
    use std::sync::{Arc, LazyLock};
    use std::time::Duration;

    use parking_lot::Mutex;

    use super::{ClassStats, SideStats, SiteCount, Stats, TimeStats};
    use crate::event::Side;
    use crate::thread::LocalSide;

    /// A running min / max / total.
    #[derive(Clone, Copy, Default, Debug)]
    pub(crate) struct TimeAcc {
        count: u64,
        min: u64,
        max: u64,
        total: u64,
    }

    impl TimeAcc {
        pub(crate) fn add(&mut self, d: Duration) {
            let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            self.min = if self.count == 0 {
                ns
            } else {
                self.min.min(ns)
            };
            self.max = self.max.max(ns);
            self.total = self.total.saturating_add(ns);
            self.count += 1;
        }

        fn merge(&mut self, other: &TimeAcc) {
            if other.count == 0 {
                return;
            }
            self.min = if self.count == 0 {
                other.min
            } else {
                self.min.min(other.min)
            };
            self.max = self.max.max(other.max);
            self.total = self.total.saturating_add(other.total);
            self.count += other.count;
        }

        fn public(&self) -> TimeStats {
            TimeStats {
                count: self.count,
                min_ns: self.min,
                max_ns: self.max,
                total_ns: self.total,
            }
        }
    }

    type Site = &'static Location<'static>;

    #[derive(Default, Clone)]
    struct SideAcc {
        acquisitions: u64,
        contentions: u64,
        wait: TimeAcc,
        hold: TimeAcc,
        waiters: HashMap<Site, u64>,
        holders: HashMap<Site, u64>,
    }

    impl SideAcc {
        fn merge(&mut self, other: &SideAcc) {
            self.acquisitions += other.acquisitions;
            self.contentions += other.contentions;
            self.wait.merge(&other.wait);
            self.hold.merge(&other.hold);
            for (site, n) in &other.waiters {
                *self.waiters.entry(site).or_default() += n;
            }
            for (site, n) in &other.holders {
                *self.holders.entry(site).or_default() += n;
            }
        }

        fn public(&self) -> SideStats {
            SideStats {
                acquisitions: self.acquisitions,
                contentions: self.contentions,
                wait: self.wait.public(),
                hold: self.hold.public(),
                top_waiters: top(&self.waiters),
                top_holders: top(&self.holders),
            }
        }
    }

    fn top(sites: &HashMap<Site, u64>) -> Vec<SiteCount> {
        let mut all: Vec<_> = sites.iter().collect();
        all.sort_by(|a, b| {
            b.1.cmp(a.1)
                .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
        });
        all.into_iter()
            .take(4)
            .map(|(site, count)| SiteCount {
                site: site.to_string(),
                count: *count,
            })
            .collect()
    }

    type ClassAcc = [SideAcc; 2];
    type Table = HashMap<u32, ClassAcc>;

    /// One thread's merged figures, readable by snapshots.
    #[derive(Default)]
    pub(crate) struct ThreadStats {
        table: Mutex<Table>,
    }

    impl ThreadStats {
        /// Moves the thread-local counters in (and zeroes them): the dense ones by class
        /// id, and the unique classes' ones (drained).
        pub(crate) fn merge_local(
            &self,
            local: &mut [[LocalSide; 2]],
            unique: &mut HashMap<u32, [LocalSide; 2]>,
        ) {
            let mut table = self.table.lock();
            let dense = local
                .iter_mut()
                .enumerate()
                .map(|(class, sides)| (u32::try_from(class).unwrap_or(u32::MAX), sides));
            for (class, sides) in dense.chain(unique.iter_mut().map(|(c, s)| (*c, s))) {
                for (i, side) in sides.iter_mut().enumerate() {
                    if side.acquisitions == 0 && side.hold.count == 0 {
                        continue;
                    }
                    let acc = &mut table.entry(class).or_default()[i];
                    acc.acquisitions += side.acquisitions;
                    acc.hold.merge(&side.hold);
                    *side = LocalSide::default();
                }
            }
            unique.clear();
        }

        /// Records one contended acquisition.
        pub(crate) fn contended(
            &self,
            class: u32,
            side: Side,
            waited: Duration,
            waiter: Site,
            holder: Option<Site>,
        ) {
            let mut table = self.table.lock();
            let acc = &mut table.entry(class).or_default()[side as usize];
            acc.contentions += 1;
            acc.wait.add(waited);
            *acc.waiters.entry(waiter).or_default() += 1;
            if let Some(holder) = holder {
                *acc.holders.entry(holder).or_default() += 1;
            }
        }
    }

    static THREADS: Mutex<Vec<Arc<ThreadStats>>> = Mutex::new(Vec::new());
    static RETIRED: LazyLock<Mutex<Table>> = LazyLock::new(Default::default);

    pub(crate) fn register() -> Arc<ThreadStats> {
        let block = Arc::new(ThreadStats::default());
        THREADS.lock().push(Arc::clone(&block));
        block
    }

    /// Folds an exiting thread's block into the retired totals.
    pub(crate) fn retire(block: &Arc<ThreadStats>) {
        THREADS.lock().retain(|b| !Arc::ptr_eq(b, block));
        let table = std::mem::take(&mut *block.table.lock());
        merge_into(&mut RETIRED.lock(), &table);
    }

    fn merge_into(into: &mut Table, from: &Table) {
        for (class, sides) in from {
            let acc = into.entry(*class).or_default();
            acc[0].merge(&sides[0]);
            acc[1].merge(&sides[1]);
        }
    }

    pub(crate) fn snapshot() -> Stats {
        crate::thread::flush_current();
        let mut total = RETIRED.lock().clone();
        for block in THREADS.lock().iter() {
            merge_into(&mut total, &block.table.lock());
        }
        let mut classes: Vec<ClassStats> = total
            .iter()
            .map(|(class, sides)| {
                let (label, kind) = crate::class::class_label(*class);
                ClassStats {
                    class: label,
                    kind: kind.to_owned(),
                    read: sides[Side::Read as usize].public(),
                    write: sides[Side::Write as usize].public(),
                }
            })
            .collect();
        classes.sort_by(|a, b| {
            let key = |c: &ClassStats| {
                (
                    c.read.contentions + c.write.contentions,
                    c.read.acquisitions + c.write.acquisitions,
                )
            };
            key(b).cmp(&key(a)).then_with(|| a.class.cmp(&b.class))
        });
        Stats { classes }
    }
}
