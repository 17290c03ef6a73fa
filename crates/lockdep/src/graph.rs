//! The global lock-order graph: an edge `A -> B` means "B was taken while A was held", typed
//! by how A was held (exclusive or shared) and how B was taken (recursive read or not).
//! Only the slow path of an acquisition comes here, under one mutex; threads cache the chains
//! they validated, so known orders never reach it. A new edge that would close a *strong*
//! cycle is reported and not inserted, so the graph stays acyclic.
//!
//! A cycle is not a deadlock when some lock on it is taken as a recursive reader by one edge
//! and held shared by the next: recursive readers do not wait for readers (lockdep's
//! strong-cycle rule). The search below tracks that per step.

use std::backtrace::Backtrace;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write;
use std::panic::Location;
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

use crate::MAX_SUBCLASSES;
use crate::class::{Node, UNIQUE_BASE, describe};
use crate::report::{first_time, signature};
use crate::thread::{Held, Mode};
use crate::{Report, ReportKind};

/// Edge type bits: bit 1 = the earlier lock is held shared, bit 0 = the later lock is taken
/// as a recursive reader. A type set is a 4-bit mask over these.
type EdgeType = u8;

fn edge_type(held: Mode, taken: Mode) -> EdgeType {
    (u8::from(held.is_shared()) << 1) | u8::from(taken == Mode::RecursiveRead)
}

fn held_shared(t: EdgeType) -> bool {
    t & 2 != 0
}

fn taken_recursive(t: EdgeType) -> bool {
    t & 1 != 0
}

/// Where and by whom an edge was first seen.
#[derive(Clone)]
struct Witness {
    from_site: &'static Location<'static>,
    to_site: &'static Location<'static>,
    thread: Arc<str>,
    stack: Option<Arc<Backtrace>>,
}

#[derive(Default)]
struct Graph {
    out: HashMap<Node, Vec<(Node, u8)>>,
    witness: HashMap<(Node, Node), Witness>,
    /// Unique classes with at least one edge, so that retiring one without edges is cheap.
    unique_with_edges: HashSet<u32>,
}

static GRAPH: LazyLock<Mutex<Graph>> = LazyLock::new(Default::default);

impl Graph {
    fn has(&self, from: Node, to: Node, t: EdgeType) -> bool {
        self.out
            .get(&from)
            .and_then(|edges| edges.iter().find(|(n, _)| *n == to))
            .is_some_and(|(_, types)| types & (1 << t) != 0)
    }

    fn insert(&mut self, from: Node, to: Node, t: EdgeType, witness: Witness) {
        for node in [from, to] {
            let class = node / MAX_SUBCLASSES;
            if class >= UNIQUE_BASE {
                self.unique_with_edges.insert(class);
            }
        }
        let edges = self.out.entry(from).or_default();
        match edges.iter_mut().find(|(n, _)| *n == to) {
            Some((_, types)) => *types |= 1 << t,
            None => edges.push((to, 1 << t)),
        }
        self.witness.entry((from, to)).or_insert(witness);
    }

    /// The shortest strong path `start -> … -> goal`, given that `start` is entered by an
    /// edge of type `entry` and `goal` is left by that same edge (closing the cycle).
    fn strong_path(&self, start: Node, goal: Node, entry: EdgeType) -> Option<Vec<(Node, Node)>> {
        // State: (node, entered as recursive reader). Parent links rebuild the path.
        let first = (start, taken_recursive(entry));
        let mut parent: HashMap<(Node, bool), (Node, bool)> = HashMap::new();
        let mut queue = VecDeque::from([first]);
        parent.insert(first, first);
        while let Some((node, entered_recursive)) = queue.pop_front() {
            if node == goal && !(entered_recursive && held_shared(entry)) {
                let mut path = Vec::new();
                let mut at = (node, entered_recursive);
                while at != first {
                    let prev = parent[&at];
                    path.push((prev.0, at.0));
                    at = prev;
                }
                path.reverse();
                return Some(path);
            }
            for &(next, types) in self.out.get(&node).into_iter().flatten() {
                for t in 0..4u8 {
                    if types & (1 << t) == 0 || (entered_recursive && held_shared(t)) {
                        continue;
                    }
                    let state = (next, taken_recursive(t));
                    if let std::collections::hash_map::Entry::Vacant(v) = parent.entry(state) {
                        v.insert((node, entered_recursive));
                        queue.push_back(state);
                    }
                }
            }
        }
        None
    }
}

/// Removes every edge into or out of the nodes of class `id` (a retired unique class).
///
/// Without this, a path through a dropped lock (`A -> dropped -> B`) would still count, and
/// `B -> A` would be reported although the dropped lock can no longer be part of a deadlock.
pub(crate) fn forget_class(id: u32) {
    let mut graph = GRAPH.lock();
    if !graph.unique_with_edges.remove(&id) {
        return;
    }
    let nodes = id * MAX_SUBCLASSES..(id + 1) * MAX_SUBCLASSES;
    graph.out.retain(|from, edges| {
        if nodes.contains(from) {
            return false;
        }
        edges.retain(|(to, _)| !nodes.contains(to));
        !edges.is_empty()
    });
    graph
        .witness
        .retain(|(from, to), _| !nodes.contains(from) && !nodes.contains(to));
}

/// What an inversion report needs, collected under the graph lock and rendered after it.
struct Inversion {
    prior: Held,
    chain: Vec<(Node, Node, Option<Witness>)>,
}

/// Checks the edges `prior -> node` for every held lock `prior` of another class, records the
/// new ones, and returns a report for each that would close a cycle.
pub(crate) fn check_and_record(
    priors: &[Held],
    held: &[Held],
    node: Node,
    mode: Mode,
    site: &'static Location<'static>,
    thread: &Arc<str>,
) -> Vec<Report> {
    let mut inversions = Vec::new();
    {
        let mut graph = GRAPH.lock();
        let mut stack: Option<Option<Arc<Backtrace>>> = None;
        for prior in priors {
            let t = edge_type(prior.mode, mode);
            if graph.has(prior.node, node, t) {
                continue;
            }
            if let Some(path) = graph.strong_path(node, prior.node, t) {
                let mut cycle: Vec<(Node, Node)> = path.clone();
                cycle.push((prior.node, node));
                cycle.sort_unstable();
                if first_time(signature(("cycle", cycle))) {
                    let chain = path
                        .into_iter()
                        .map(|(a, b)| (a, b, graph.witness.get(&(a, b)).cloned()))
                        .collect();
                    inversions.push(Inversion {
                        prior: *prior,
                        chain,
                    });
                }
                continue;
            }
            let stack = stack.get_or_insert_with(crate::stack::capture).clone();
            let witness = Witness {
                from_site: prior.site,
                to_site: site,
                thread: Arc::clone(thread),
                stack,
            };
            graph.insert(prior.node, node, t, witness);
        }
    }
    inversions
        .into_iter()
        .map(|inv| render(&inv, held, node, mode, site, thread))
        .collect()
}

fn render(
    inv: &Inversion,
    held: &[Held],
    node: Node,
    mode: Mode,
    site: &'static Location<'static>,
    thread: &str,
) -> Report {
    let new_class = describe(node);
    let prior_class = describe(inv.prior.node);
    let mut classes = vec![prior_class.clone(), new_class.clone()];
    let mut sites = vec![inv.prior.site.to_string(), site.to_string()];
    let via: Vec<String> = inv
        .chain
        .iter()
        .skip(1)
        .map(|(from, _, _)| describe(*from))
        .collect::<Vec<_>>();
    let summary = format!(
        "Thread '{thread}' takes {new_class} at {site} while holding {prior_class}, but \
         {prior_class} has been taken while holding {new_class}{} before; two threads doing \
         both at once would each wait forever for the lock the other holds.",
        if via.is_empty() {
            String::new()
        } else {
            format!(" (via {})", via.join(" -> "))
        }
    );

    let mut body = format!(
        "thread '{thread}' is acquiring:\n  {new_class} ({}) at {site}\nwhile holding:\n  {}\n\n\
         which closes a cycle with the existing dependency chain (each line: a lock taken while \
         holding the previous one):\n",
        mode.describe(),
        inv.prior.line()
    );
    for (i, (from, to, witness)) in inv.chain.iter().enumerate() {
        let (from_class, to_class) = (describe(*from), describe(*to));
        match witness {
            Some(w) => {
                let _ = writeln!(
                    body,
                    "  #{} {from_class} -> {to_class}: {to_class} taken at {} while holding \
                     {from_class} (taken at {}), thread '{}'",
                    i + 1,
                    w.to_site,
                    w.from_site,
                    w.thread
                );
                sites.push(w.to_site.to_string());
                if let Some(stack) = &w.stack {
                    let _ = write!(body, "{}", crate::stack::render(stack, "        "));
                }
            }
            None => {
                let _ = writeln!(body, "  #{} {from_class} -> {to_class}", i + 1);
            }
        }
        if !classes.contains(&to_class) {
            classes.push(to_class);
        }
    }
    let _ = writeln!(
        body,
        "  #{} {prior_class} -> {new_class}: the acquisition above (new)",
        inv.chain.len() + 1
    );

    // Two-thread scenario: thread 1 is this acquisition, thread 2 walks the old chain.
    let col = 36;
    let mut scenario = String::new();
    let _ = writeln!(
        scenario,
        "\npossible scenario:\n\n  {:<col$}thread 2",
        "thread 1"
    );
    let _ = writeln!(scenario, "  {:<col$}--------", "--------");
    let _ = writeln!(scenario, "  lock({prior_class})");
    let _ = writeln!(scenario, "  {:<col$}lock({new_class})", "");
    for (_, to, _) in &inv.chain {
        let _ = writeln!(scenario, "  {:<col$}lock({})", "", describe(*to));
    }
    let _ = writeln!(scenario, "  lock({new_class})");
    let _ = writeln!(scenario, "\n  *** DEADLOCK ***\n");
    body.push_str(&scenario);

    let _ = writeln!(body, "held locks of thread '{thread}':");
    for (i, h) in held.iter().enumerate() {
        let _ = writeln!(body, "  #{i} {}", h.line());
    }
    let _ = write!(body, "\ncurrent stack:\n{}", crate::stack::render_now("  "));
    Report::new(
        ReportKind::LockOrderInversion,
        summary,
        classes,
        sites,
        body,
    )
}
