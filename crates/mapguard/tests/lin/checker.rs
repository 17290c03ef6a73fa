//! A linearizability checker for one object's history, in the style of Wing & Gong with the
//! memoization of Lowe and Porcupine: a depth-first search for an order of the operations that
//! respects real time and that the sequential specification accepts, skipping any
//! (linearized set, state) pair it has already explored.
//!
//! Single-key map operations are checked per key (P-compositionality: a history of operations
//! that each touch one key is linearizable iff every key's sub-history is), which keeps each
//! search small.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification: the state of the object and what each operation does to it.
pub(crate) trait Spec {
    type State: Clone + Eq + Hash + Debug;
    type Op: Debug;
    type Out: PartialEq + Debug;

    /// The state after `op` and what `op` returns, run alone on `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> (Self::State, Self::Out);
}

/// One completed operation: when it was called and when it returned (on one clock shared by all
/// threads, so `a.ret < b.call` means `a` finished before `b` started), what it was and what it
/// returned.
#[derive(Clone, Debug)]
pub(crate) struct Event<Op, Out> {
    pub(crate) call: u64,
    pub(crate) ret: u64,
    pub(crate) op: Op,
    pub(crate) out: Out,
}

/// Why a history is not linearizable, with the history for the report.
#[derive(Debug)]
pub(crate) struct Violation {
    pub(crate) history: String,
}

/// Figures of one successful check.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Explored {
    /// Search states visited.
    pub(crate) nodes: u64,
}

struct Search<'a, S: Spec> {
    spec: &'a S,
    events: &'a [Event<S::Op, S::Out>],
    memo: HashSet<(Vec<u64>, S::State)>,
    nodes: u64,
}

impl<S: Spec> Search<'_, S> {
    fn run(&mut self, done: &mut Vec<u64>, state: &S::State, remaining: usize) -> bool {
        if remaining == 0 {
            return true;
        }
        self.nodes += 1;
        if !self.memo.insert((done.clone(), state.clone())) {
            return false;
        }
        let pending = |done: &[u64], i: usize| done[i / 64] & (1 << (i % 64)) == 0;
        // An operation can come next only if no pending operation returned before it was called.
        let min_ret = (0..self.events.len())
            .filter(|&i| pending(done, i))
            .map(|i| self.events[i].ret)
            .min()
            .expect("remaining > 0");
        for i in 0..self.events.len() {
            let event = &self.events[i];
            if event.call > min_ret {
                break; // sorted by call
            }
            if !pending(done, i) {
                continue;
            }
            let (next, out) = self.spec.step(state, &event.op);
            if out != event.out {
                continue;
            }
            done[i / 64] |= 1 << (i % 64);
            if self.run(done, &next, remaining - 1) {
                return true;
            }
            done[i / 64] &= !(1 << (i % 64));
        }
        false
    }
}

/// Checks that `events` (completed operations on one object that starts in `initial`) have a
/// linearization the specification accepts.
pub(crate) fn check<S: Spec>(
    spec: &S,
    initial: &S::State,
    events: &mut [Event<S::Op, S::Out>],
) -> Result<Explored, Violation> {
    for event in events.iter() {
        assert!(
            event.call < event.ret,
            "an event returned before it was called"
        );
    }
    events.sort_by_key(|event| event.call);
    let mut search = Search {
        spec,
        events,
        memo: HashSet::new(),
        nodes: 0,
    };
    let mut done = vec![0u64; events.len().div_ceil(64)];
    if search.run(&mut done, initial, events.len()) {
        Ok(Explored {
            nodes: search.nodes,
        })
    } else {
        let mut history = format!("initial state {initial:?}\n");
        for event in events.iter() {
            history.push_str(&format!(
                "  [{:>6}, {:>6}] {:?} -> {:?}\n",
                event.call, event.ret, event.op, event.out
            ));
        }
        Err(Violation { history })
    }
}
