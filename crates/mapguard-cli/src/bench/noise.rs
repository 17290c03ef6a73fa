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
