//! `mapguard demo`: each scenario replays one failure class of the original incident in a
//! controlled way, stops by itself within seconds, and prints the diagnosis a user would get
//! in their own service, with what it means and the fix.
//!
//! Adding a scenario is one module with a `pub(crate) const SCENARIO: Scenario` and one line
//! in [`SCENARIOS`].

use std::io::Write as _;
use std::sync::mpsc;
use std::time::Duration;

mod contention;
mod cross_shard;
mod hot_keys;
mod lock_order;
mod self_deadlock;

/// One demo scenario.
#[derive(Debug)]
pub struct Scenario {
    /// The CLI name.
    pub name: &'static str,
    /// One line saying what it replays.
    pub summary: &'static str,
    /// Runs the scenario, printing to stdout; returns whether the diagnosis was produced.
    pub run: fn() -> Outcome,
}

/// How a scenario ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The failure was diagnosed and the demo stopped by itself.
    Diagnosed,
    /// The expected diagnosis did not come.
    NotDiagnosed,
}

/// Every scenario, in the order `mapguard demo` lists them.
pub const SCENARIOS: &[Scenario] = &[
    self_deadlock::SCENARIO,
    lock_order::SCENARIO,
    cross_shard::SCENARIO,
    contention::SCENARIO,
    hot_keys::SCENARIO,
];

impl Scenario {
    /// Looks a scenario up by its CLI name.
    ///
    /// # Examples
    /// ```
    /// use mapguard_cli::demo::Scenario;
    /// assert!(Scenario::by_name("lock-order").is_some());
    /// assert!(Scenario::by_name("lock_order").is_none());
    /// ```
    pub fn by_name(name: &str) -> Option<&'static Scenario> {
        SCENARIOS.iter().find(|s| s.name == name)
    }

    /// The CLI names of all scenarios, comma-separated, for error messages.
    pub fn valid_names() -> String {
        SCENARIOS
            .iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The listing printed by `mapguard demo` without a scenario.
pub fn listing() -> String {
    let width = SCENARIOS.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = String::from("Scenarios (run one with `mapguard demo <scenario>`):\n");
    for s in SCENARIOS {
        out.push_str(&format!("  {:<width$}  {}\n", s.name, s.summary));
    }
    out
}

/// Runs `scenario` with panic messages kept off stderr (each scenario prints the panics it
/// provokes as its diagnosis).
pub fn run(scenario: &Scenario) -> Outcome {
    std::panic::set_hook(Box::new(|_| {}));
    println!("== mapguard demo {}: {}\n", scenario.name, scenario.summary);
    let outcome = (scenario.run)();
    let _ = std::io::stdout().flush();
    outcome
}

/// The text of a panic payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    crate::bench::run::panic_message(payload)
}

/// Runs `work` on its own thread and waits at most `limit` for it. On time, returns its
/// result; past it, prints `what` did not happen and ends the process with code 1, since a
/// thread stuck in a deadlock cannot be stopped any other way.
pub(crate) fn with_deadline<T: Send + 'static>(
    limit: Duration,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(_) => {
            println!(
                "no diagnosis within {} s: {what}; the threads are still blocked, so the demo \
                 stops here",
                limit.as_secs()
            );
            let _ = std::io::stdout().flush();
            std::process::exit(1);
        }
    }
}

/// Prints `text` indented by two spaces.
pub(crate) fn print_indented(text: &str) {
    for line in text.lines() {
        println!("  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_listed_one_per_line() {
        let listing = listing();
        for s in SCENARIOS {
            assert_eq!(Scenario::by_name(s.name).map(|f| f.name), Some(s.name));
            assert_eq!(
                listing.lines().filter(|l| l.contains(s.summary)).count(),
                1,
                "{listing}"
            );
        }
        assert_eq!(listing.lines().count(), SCENARIOS.len() + 1);
        assert_eq!(
            Scenario::valid_names(),
            "self-deadlock, lock-order, cross-shard, contention, hot-keys"
        );
    }
}
