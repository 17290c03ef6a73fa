//! Real-deadlock detection. A thread that has waited `deadlock_timeout` for a lock publishes
//! what it waits for and what it holds, and looks for a cycle among the published waiters:
//! each waiter is blocked by the threads that hold its lock in a conflicting mode (and, for a
//! writer-preferring read, by queued writers). Threads that are not waiting cannot be in a
//! deadlock cycle, so the published waiters are all it needs. Waiters that are still blocked
//! after a full timeout are not a passing race; the first one to see the cycle reports it.

use std::collections::HashMap;
use std::fmt::Write;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::class::{Node, describe};
use crate::report::{first_time, signature};
use crate::thread::{Held, LockId, Mode};
use crate::{Report, ReportKind};

struct Waiter {
    thread: Arc<str>,
    since: Instant,
    lock: LockId,
    node: Node,
    mode: Mode,
    site: &'static Location<'static>,
    held: Vec<Held>,
}

static WAITERS: LazyLock<Mutex<HashMap<u64, Waiter>>> = LazyLock::new(Default::default);
static NEXT_SEQ: AtomicU64 = AtomicU64::new(1);

/// A published wait; withdrawn on drop (acquired, or unwinding from a report).
pub(crate) struct Registration {
    seq: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        WAITERS.lock().remove(&self.seq);
    }
}

/// Publishes that this thread waits for `lock` (its top held entry) since `since`.
pub(crate) fn register(
    lock: LockId,
    node: Node,
    mode: Mode,
    site: &'static Location<'static>,
    since: Instant,
) -> Registration {
    let (held, thread) = crate::thread::held_while_waiting();
    let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
    WAITERS.lock().insert(
        seq,
        Waiter {
            thread,
            since,
            lock,
            node,
            mode,
            site,
            held,
        },
    );
    Registration { seq }
}

fn conflicts(held: Mode, wanted: Mode) -> bool {
    !(held.is_shared() && wanted.is_shared())
}

/// The waiters that block `w`.
fn blockers(waiters: &HashMap<u64, Waiter>, w: &Waiter, w_seq: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for (&seq, v) in waiters {
        let holds = v
            .held
            .iter()
            .any(|h| h.lock == w.lock && conflicts(h.mode, w.mode));
        let queued_writer =
            seq != w_seq && w.mode == Mode::Read && v.lock == w.lock && v.mode == Mode::Write;
        if holds || queued_writer {
            out.push(seq);
        }
    }
    out.sort_unstable();
    out
}

/// Looks for a cycle of long-blocked waiters through `me`; a report the first time one is
/// found.
pub(crate) fn scan(me: &Registration, timeout: Duration) -> Option<Report> {
    let waiters = WAITERS.lock();
    let old_enough = |seq: &u64| {
        waiters
            .get(seq)
            .is_some_and(|w| w.since.elapsed() >= timeout)
    };
    // Depth-first search for a path of blockers from `me` back to `me`.
    let mut path = vec![me.seq];
    let mut next: Vec<Vec<u64>> = vec![
        waiters
            .get(&me.seq)
            .map(|w| blockers(&waiters, w, me.seq))
            .unwrap_or_default(),
    ];
    let mut visited = vec![me.seq];
    let cycle = loop {
        let Some(candidates) = next.last_mut() else {
            break None;
        };
        match candidates.pop() {
            None => {
                next.pop();
                path.pop();
            }
            Some(seq) if seq == me.seq => break Some(path.clone()),
            Some(seq) if visited.contains(&seq) || !old_enough(&seq) => {}
            Some(seq) => {
                visited.push(seq);
                path.push(seq);
                next.push(blockers(&waiters, &waiters[&seq], seq));
            }
        }
    }?;
    let mut sorted = cycle.clone();
    sorted.sort_unstable();
    if !first_time(signature(("deadlock", sorted))) {
        return None;
    }
    Some(render(&waiters, &cycle))
}

fn render(waiters: &HashMap<u64, Waiter>, cycle: &[u64]) -> Report {
    let names: Vec<String> = cycle
        .iter()
        .map(|s| format!("'{}'", waiters[s].thread))
        .collect();
    let summary = if cycle.len() == 1 {
        let w = &waiters[&cycle[0]];
        format!(
            "Thread '{}' is blocked forever at {} waiting for {}, which it holds itself.",
            w.thread,
            w.site,
            describe(w.node)
        )
    } else {
        format!(
            "Threads {} are blocked in a cycle, each waiting for a lock the next one holds, so \
             none of them can ever proceed.",
            names.join(", ")
        )
    };
    let mut classes = Vec::new();
    let mut sites = Vec::new();
    let mut body = String::from("blocked threads:\n");
    for (i, seq) in cycle.iter().enumerate() {
        let w = &waiters[seq];
        let blocker = &waiters[&cycle[(i + 1) % cycle.len()]];
        let _ = writeln!(
            body,
            "\n  thread '{}' has waited {:.0?} for {} ({}) at {}\n  blocked by thread '{}'; it holds:",
            w.thread,
            w.since.elapsed(),
            describe(w.node),
            w.mode.describe(),
            w.site,
            blocker.thread
        );
        for h in &w.held {
            let _ = writeln!(body, "    {}", h.line());
            sites.push(h.site.to_string());
        }
        if w.held.is_empty() {
            body.push_str("    (nothing)\n");
        }
        let class = describe(w.node);
        if !classes.contains(&class) {
            classes.push(class);
        }
        sites.push(w.site.to_string());
    }
    let _ = write!(
        body,
        "\nstack of the reporting thread:\n{}",
        crate::stack::render_now("  ")
    );
    Report::new(ReportKind::Deadlock, summary, classes, sites, body)
}
