//! How much of the machine other processes used while the bench ran. On a 2-core machine a
//! compile in the background halves what a two-thread cell can get, so the report says so.
//! Linux only (`/proc`); elsewhere nothing is measured.

use std::time::Instant;

/// CPU counters at one moment.
#[derive(Clone, Copy, Debug)]
pub struct CpuSnapshot {
    /// Busy ticks of all CPUs together (user, nice, system, irq, softirq, steal).
    busy_ticks: u64,
    /// Busy plus idle ticks of all CPUs together.
    total_ticks: u64,
    /// Ticks this process ran (user + system).
    own_ticks: u64,
    at: Instant,
}

impl CpuSnapshot {
    /// The counters now, or `None` where `/proc` is unavailable.
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        let (busy_ticks, total_ticks) = parse_cpu_line(stat.lines().next()?)?;
        Some(Self {
            busy_ticks,
            total_ticks,
            own_ticks: parse_own_ticks(&own)?,
            at: Instant::now(),
        })
    }

    /// The share (0..=1) of all CPU time between `self` and `later` that other processes used.
    pub fn foreign_share(&self, later: &CpuSnapshot) -> Option<f64> {
        let total = later.total_ticks.checked_sub(self.total_ticks)?;
        let busy = later.busy_ticks.checked_sub(self.busy_ticks)?;
        let own = later.own_ticks.checked_sub(self.own_ticks)?;
        if total == 0 || later.at <= self.at {
            return None;
        }
        Some(busy.saturating_sub(own) as f64 / total as f64)
    }
}

/// `cpu  user nice system idle iowait irq softirq steal …` → (busy, total).
fn parse_cpu_line(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = v[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq + steal;
    Some((busy, busy + idle + iowait))
}

/// utime + stime of `/proc/self/stat` (fields 14 and 15; the command name in field 2 may hold
/// spaces, so count from its closing parenthesis).
fn parse_own_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_lines() {
        assert_eq!(
            parse_cpu_line("cpu  100 5 50 800 20 3 2 0 0 0"),
            Some((160, 980))
        );
        assert_eq!(parse_cpu_line("cpu0 1 2 3 4 5 6 7 8"), None);
        let own = "42 (my (odd) cmd) R 1 2 3 4 5 6 7 8 9 10 70 30 0 0";
        assert_eq!(parse_own_ticks(own), Some(100));
    }

    #[test]
    fn foreign_share_excludes_our_own_work() {
        let Some(before) = CpuSnapshot::now() else {
            return; // no /proc here
        };
        let mut x = 0u64;
        let until = Instant::now() + std::time::Duration::from_millis(50);
        while Instant::now() < until {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = CpuSnapshot::now().unwrap();
        let share = before.foreign_share(&after).expect("50 ms of ticks passed");
        assert!((0.0..=1.0).contains(&share), "{share}");
    }
}

/// Round trips of one cache line between two threads per [`transfer_ns`] batch.
const ROUND_TRIPS: u32 = 2_000;

/// Batches of [`transfer_ns`]; the median is reported.
const BATCHES: usize = 5;

/// Longest a [`transfer_ns`] measurement runs: when the echo thread has to wait for a core
/// (other work on the cores, or both threads placed on one) every round trip waits for a time
/// slice; the measurement then stops early and gives no figure, since what it timed was the
/// scheduler and not the cache line.
const TRANSFER_BUDGET: std::time::Duration = std::time::Duration::from_millis(25);

/// The value that tells the echo thread of [`transfer_ns`] to stop.
const STOP: u32 = u32::MAX;

/// What moving a cache line from one core to another costs now: the median over a few
/// batches of one ping-pong round trip (ns) between two threads, each waiting for the other's
/// store to one shared word. The machines the bench runs on can alternate, over minutes,
/// between a state where this is cheap and one where it is several times dearer, and every
/// figure at two threads or more moves with it; measured around the workloads, it says which
/// state a cell ran in. `None` on a single-CPU machine, where the threads would take turns on
/// one core, and when the measurement ran out of its 25 ms budget (the threads did not both
/// have a core).
///
/// # Examples
/// ```
/// if let Some(ns) = mapguard_cli::bench::noise::transfer_ns() {
///     assert!(ns > 0.0);
/// }
/// ```
pub fn transfer_ns() -> Option<f64> {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return None;
    }
    round_trip_ns(ROUND_TRIPS, TRANSFER_BUDGET)
}

/// [`transfer_ns`] with `round_trips` per batch, giving up (`None`) once `budget` has passed.
fn round_trip_ns(round_trips: u32, budget: std::time::Duration) -> Option<f64> {
    use std::sync::atomic::{AtomicU32, Ordering};
    assert!(
        u64::from(round_trips) * BATCHES as u64 * 2 < u64::from(STOP),
        "the pings stay below STOP"
    );
    let line = crossbeam_utils::CachePadded::new(AtomicU32::new(0));
    let deadline = Instant::now() + budget;
    let mut batches: Vec<f64> = std::thread::scope(|s| {
        // The echo: answers every odd value with the next even one, until told to stop. It
        // answers with a compare-exchange, so that a STOP stored over an unanswered ping is
        // never overwritten.
        s.spawn(|| {
            for round in 0..round_trips * BATCHES as u32 {
                let ping = 2 * round + 1;
                loop {
                    match line.load(Ordering::Acquire) {
                        STOP => return,
                        seen if seen == ping => break,
                        _ => std::hint::spin_loop(),
                    }
                }
                if line
                    .compare_exchange(ping, ping + 1, Ordering::Release, Ordering::Acquire)
                    .is_err()
                {
                    return; // STOP
                }
            }
        });
        // Tells the echo to stop, whether or not it has answered the last ping.
        let stop = |ping: u32| {
            if line
                .compare_exchange(ping, STOP, Ordering::Release, Ordering::Relaxed)
                .is_err()
            {
                // Answered meanwhile: the echo now waits for the next ping, or sees this.
                line.store(STOP, Ordering::Release);
            }
        };
        let mut batches = Vec::with_capacity(BATCHES);
        for batch in 0..BATCHES as u32 {
            let start = Instant::now();
            for (done, round) in (batch * round_trips..(batch + 1) * round_trips).enumerate() {
                let ping = 2 * round + 1;
                line.store(ping, Ordering::Release);
                let mut spins = 0u32;
                while line.load(Ordering::Acquire) != ping + 1 {
                    spins = spins.wrapping_add(1);
                    // An echo without a core answers after a time slice or more: the budget
                    // is checked while waiting too.
                    if spins.is_multiple_of(1024) && Instant::now() >= deadline {
                        stop(ping);
                        return None;
                    }
                    std::hint::spin_loop();
                }
                if done % 16 == 15 && Instant::now() >= deadline {
                    // Answered: the echo waits for the next ping and sees this instead.
                    line.store(STOP, Ordering::Release);
                    return None;
                }
            }
            batches.push(start.elapsed().as_nanos() as f64 / f64::from(round_trips));
        }
        Some(batches)
    })?;
    batches.sort_by(f64::total_cmp);
    Some(batches[BATCHES / 2])
}

/// Transfer costs measured at points of a run (see [`transfer_ns`]), with what they say.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TransferLog {
    /// Each measurement: where in the run (e.g. `before seed95`) and its round trip, ns.
    pub points: Vec<(String, f64)>,
}

/// The ratio between the dearest and the cheapest measurement from which a run is said to
/// have changed machine state.
pub const STATE_CHANGE_RATIO: f64 = 1.5;

impl TransferLog {
    /// Measures now and records the figure under `label` (nothing where it cannot measure).
    pub fn measure(&mut self, label: impl Into<String>) -> Option<f64> {
        let ns = transfer_ns()?;
        self.points.push((label.into(), ns));
        Some(ns)
    }

    /// The cheapest and dearest round trips measured.
    pub fn range(&self) -> Option<(f64, f64)> {
        let mut it = self.points.iter().map(|(_, ns)| *ns);
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), ns| (lo.min(ns), hi.max(ns))))
    }

    /// Whether the machine changed state during the run: the dearest measurement is
    /// [`STATE_CHANGE_RATIO`] times the cheapest or more.
    pub fn changed(&self) -> bool {
        self.range()
            .is_some_and(|(lo, hi)| lo > 0.0 && hi / lo >= STATE_CHANGE_RATIO)
    }

    /// `cheap` or `dear` for a round trip of `ns` in this run: nearer the cheapest or the
    /// dearest measurement (by ratio); `None` unless the run changed state.
    pub fn state_of(&self, ns: f64) -> Option<&'static str> {
        let (lo, hi) = self.range().filter(|_| self.changed())?;
        Some(if ns * ns < lo * hi { "cheap" } else { "dear" })
    }

    /// One line for the footer.
    ///
    /// # Examples
    /// ```
    /// use mapguard_cli::bench::noise::TransferLog;
    /// let log = TransferLog { points: vec![("before seed95".into(), 100.0), ("after".into(), 310.0)] };
    /// assert!(log.summary().unwrap().contains("changed state"));
    /// ```
    pub fn summary(&self) -> Option<String> {
        let (lo, hi) = self.range()?;
        let n = self.points.len();
        Some(if self.changed() {
            let mut dear: Vec<&str> = Vec::new();
            let mut dear_count = 0;
            for (label, ns) in &self.points {
                if self.state_of(*ns) == Some("dear") {
                    dear_count += 1;
                    // Each label once: a group is measured before each of its samples.
                    if !dear.contains(&label.as_str()) {
                        dear.push(label);
                    }
                }
            }
            format!(
                "Core-to-core transfer (a cache line's round trip, {n} measurements): {lo:.0} to \
                 {hi:.0} ns. The machine changed state during the run, dear {} of {n} times ({}): \
                 figures at 2 threads or more move with it, so compare cells of one state (the \
                 verdict's `transfers` column, `transfer_state` in the JSON).",
                dear_count,
                dear.join(", ")
            )
        } else {
            format!(
                "Core-to-core transfer (a cache line's round trip, {n} measurements): {lo:.0} to \
                 {hi:.0} ns, one machine state throughout."
            )
        })
    }
}

#[cfg(test)]
mod transfer_tests {
    use super::*;

    #[test]
    fn a_round_trip_is_measured_where_there_are_two_cpus() {
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            assert_eq!(transfer_ns(), None);
            return;
        }
        // Other tests' threads may hold the cores (no figure then): a few tries.
        let ns = (0..20)
            .find_map(|_| transfer_ns())
            .expect("a round trip measured in 20 tries");
        // A measurement that finished within its budget averaged at most budget / trips.
        let most = TRANSFER_BUDGET.as_nanos() as f64 / f64::from(ROUND_TRIPS * BATCHES as u32);
        assert!(ns > 1.0 && ns <= most * BATCHES as f64, "{ns}");
    }

    #[test]
    fn state_changes_are_called_by_ratio() {
        let steady = TransferLog {
            points: vec![("a".into(), 100.0), ("b".into(), 130.0)],
        };
        assert!(!steady.changed());
        assert_eq!(steady.state_of(100.0), None);
        let changed = TransferLog {
            points: vec![("a".into(), 100.0), ("b".into(), 300.0)],
        };
        assert!(changed.changed());
        assert_eq!(changed.state_of(110.0), Some("cheap"));
        assert_eq!(changed.state_of(290.0), Some("dear"));
        assert_eq!(TransferLog::default().summary(), None);
    }

    #[test]
    fn a_measurement_stops_at_its_budget() {
        // 50 million round trips take more than a second on any machine (a line moves between
        // two cores in tens of nanoseconds at best); with a 1 ms budget the measurement gives
        // up at once, with no figure.
        let start = Instant::now();
        assert_eq!(
            round_trip_ns(10_000_000, std::time::Duration::from_millis(1)),
            None
        );
        let took = start.elapsed();
        assert!(
            took < std::time::Duration::from_secs(1),
            "a measurement with a 1 ms budget took {took:?}"
        );
    }
}
