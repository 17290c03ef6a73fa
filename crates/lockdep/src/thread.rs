//! Per-thread state: the stack of held locks, the cache of held-lock chains already
//! validated against the order graph, local statistics counters and the thread's reaction.
//!
//! The fast path of every acquisition and release touches only this state. It must not
//! call out (reports, callbacks, events) while the state is borrowed: whatever it finds is
//! returned to the caller and delivered after the borrow ends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write;
use std::num::NonZeroU64;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::MAX_SUBCLASSES;
use crate::Reaction;
use crate::Report;
use crate::ReportKind;
use crate::class::{Node, UNIQUE_BASE, describe};
use crate::config::SETTINGS;
use crate::event::Side;
use crate::graph;
use crate::report::{first_time, raise, signature};
use crate::stats::{ThreadStats, TimeAcc};

/// How a lock is being acquired or is held.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub(crate) enum Mode {
    /// `lock` / `write`.
    Write,
    /// `read` of a writer-preferring lock: waits behind a queued writer.
    Read,
    /// `read` of a reader-biased lock: only a held write lock blocks it.
    RecursiveRead,
}

impl Mode {
    pub(crate) fn is_shared(self) -> bool {
        self != Mode::Write
    }

    pub(crate) fn side(self) -> Side {
        if self.is_shared() {
            Side::Read
        } else {
            Side::Write
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Mode::Write => "exclusive",
            Mode::Read => "read",
            Mode::RecursiveRead => "recursive read",
        }
    }
}

/// Which lock instance an acquisition or a held entry is about.
///
/// lockdep's own locks are known by an id drawn on first use and never reused, so that a lock
/// dropped while a leaked guard still counts it as held is not confused with a later lock
/// at the same address. Of a foreign lock lockdep knows only the address it is given.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub(crate) enum LockId {
    /// A lockdep lock, by instance id.
    Instance(NonZeroU64),
    /// A foreign lock, by address.
    Address(usize),
}

/// One lock this thread holds (or is about to block on: the top entry while contended).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Held {
    /// The lock instance.
    pub(crate) lock: LockId,
    pub(crate) node: Node,
    pub(crate) mode: Mode,
    /// Where it was acquired.
    pub(crate) site: &'static Location<'static>,
    /// Key of the held-lock chain ending here.
    chain: u64,
    /// Hold-time start, ns since the hold clock's epoch; 0 when hold times are off.
    since_ns: u64,
}

impl Held {
    pub(crate) fn line(&self) -> String {
        format!(
            "{} ({}) acquired at {}",
            describe(self.node),
            self.mode.describe(),
            self.site
        )
    }
}

/// Direct-mapped cache of validated chain keys; a miss only costs a trip to the graph.
const CACHE_SLOTS: usize = 1024;
/// Local counters are merged into the shared per-thread statistics this often.
const FLUSH_EVERY: u32 = 256;

#[inline]
fn chain_next(prev: u64, node: Node, mode: Mode) -> u64 {
    let x = ((u64::from(node) << 2) | mode as u64).wrapping_add(1);
    let h = (prev ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h ^ (h >> 29)) | 1
}

#[inline]
fn slot(key: u64) -> usize {
    (key >> (64 - CACHE_SLOTS.trailing_zeros())) as usize
}

#[derive(Clone, Copy, Default)]
pub(crate) struct LocalSide {
    pub(crate) acquisitions: u64,
    pub(crate) hold: TimeAcc,
}

pub(crate) struct ThreadState {
    held: Vec<Held>,
    cache: Box<[u64]>,
    /// Per class id below `UNIQUE_BASE`: read and write side.
    local: Vec<[LocalSide; 2]>,
    /// The same for unique classes (foreign locks), whose ids are too large and too many to
    /// index densely; emptied at each flush.
    local_unique: HashMap<u32, [LocalSide; 2]>,
    flush_in: u32,
    stats: Arc<ThreadStats>,
    reaction: Option<Reaction>,
    name: Arc<str>,
}

thread_local! {
    static STATE: RefCell<ThreadState> = RefCell::new(ThreadState::new());
}

impl ThreadState {
    fn new() -> Self {
        let current = std::thread::current();
        let name: Arc<str> = match current.name() {
            Some(name) => Arc::from(name),
            None => Arc::from(format!("{:?}", current.id())),
        };
        Self {
            held: Vec::with_capacity(8),
            cache: vec![0; CACHE_SLOTS].into_boxed_slice(),
            local: Vec::new(),
            local_unique: HashMap::new(),
            flush_in: FLUSH_EVERY,
            stats: crate::stats::register(),
            reaction: None,
            name,
        }
    }

    /// Pushes the acquisition if it needs no check: nothing held, or a chain already
    /// validated and no re-acquisition of a held instance. `None`: take the slow path.
    #[inline]
    fn push_if_known(
        &mut self,
        lock: LockId,
        node: Node,
        mode: Mode,
        site: &'static Location<'static>,
    ) -> Option<()> {
        let chain =
            match self.held.last() {
                None => chain_next(0, node, mode),
                Some(top) => {
                    let key = chain_next(top.chain, node, mode);
                    if self.cache[slot(key)] != key {
                        return None;
                    }
                    if self.held.iter().any(|h| {
                        h.lock == lock && !(h.mode.is_shared() && mode == Mode::RecursiveRead)
                    }) {
                        return None;
                    }
                    key
                }
            };
        self.push(lock, node, mode, site, chain);
        Some(())
    }

    #[inline]
    fn push(
        &mut self,
        lock: LockId,
        node: Node,
        mode: Mode,
        site: &'static Location<'static>,
        chain: u64,
    ) {
        self.count(node, mode);
        self.held.push(Held {
            lock,
            node,
            mode,
            site,
            chain,
            since_ns: 0,
        });
    }

    #[inline]
    fn count(&mut self, node: Node, mode: Mode) {
        let class = (node / MAX_SUBCLASSES) as usize;
        match self.local.get_mut(class) {
            Some(sides) => sides[mode.side() as usize].acquisitions += 1,
            None => self.grow_local(class, mode.side()),
        }
        self.flush_in -= 1;
        if self.flush_in == 0 {
            self.flush();
        }
    }

    #[cold]
    fn grow_local(&mut self, class: usize, side: Side) {
        self.local_sides(class)[side as usize].acquisitions += 1;
    }

    /// The local counters of `class`, made on first use.
    fn local_sides(&mut self, class: usize) -> &mut [LocalSide; 2] {
        match u32::try_from(class) {
            Ok(id) if id >= UNIQUE_BASE => self.local_unique.entry(id).or_default(),
            _ => {
                if class >= self.local.len() {
                    self.local.resize(class + 1, Default::default());
                }
                &mut self.local[class]
            }
        }
    }

    #[cold]
    fn flush(&mut self) {
        self.flush_in = FLUSH_EVERY;
        self.stats
            .merge_local(&mut self.local, &mut self.local_unique);
    }

    #[inline]
    fn pop(&mut self, lock: LockId) {
        match self.held.last() {
            Some(top) if top.lock == lock && top.since_ns == 0 => {
                self.held.pop();
            }
            _ => {
                self.pop_slow(lock);
            }
        }
    }

    /// Out of order, or with a hold time to record; returns the removed entry.
    #[cold]
    #[inline(never)]
    fn pop_slow(&mut self, lock: LockId) -> Option<Held> {
        let held = if self.held.last()?.lock == lock {
            self.held.pop()?
        } else {
            self.remove_inner(lock)?
        };
        if held.since_ns != 0 {
            let held_ns = now_ns().saturating_sub(held.since_ns);
            self.record_hold(&held, Duration::from_nanos(held_ns));
        }
        Some(held)
    }

    /// Out-of-order release (hand-over-hand): remove and re-key the chain above it.
    fn remove_inner(&mut self, lock: LockId) -> Option<Held> {
        let index = self.held.iter().rposition(|h| h.lock == lock)?;
        let held = self.held.remove(index);
        self.rekey_from(index);
        Some(held)
    }

    /// Recomputes the chain keys of the entries from `index` up.
    fn rekey_from(&mut self, index: usize) {
        let mut prev = if index == 0 {
            0
        } else {
            self.held[index - 1].chain
        };
        for h in &mut self.held[index..] {
            h.chain = chain_next(prev, h.node, h.mode);
            prev = h.chain;
        }
    }

    /// Changes how the topmost entry of `lock` is held (a downgrade), keeping its place.
    fn set_mode(&mut self, lock: LockId, mode: Mode) {
        if let Some(index) = self.held.iter().rposition(|h| h.lock == lock) {
            self.held[index].mode = mode;
            self.rekey_from(index);
        }
    }

    #[cold]
    fn record_hold(&mut self, held: &Held, hold: Duration) {
        let class = (held.node / MAX_SUBCLASSES) as usize;
        self.local_sides(class)[held.mode.side() as usize]
            .hold
            .add(hold);
    }

    fn reaction(&self) -> Reaction {
        self.reaction
            .clone()
            .unwrap_or_else(|| SETTINGS.read().reaction.clone())
    }
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        self.stats
            .merge_local(&mut self.local, &mut self.local_unique);
        crate::stats::retire(&self.stats);
        if self.held.is_empty() {
            return;
        }
        let sites: Vec<String> = self.held.iter().map(|h| h.site.to_string()).collect();
        if !first_time(signature(("exit", &sites))) {
            return;
        }
        let mut body = String::from("locks still held:\n");
        for (i, h) in self.held.iter().enumerate() {
            let _ = writeln!(body, "  #{i} {}", h.line());
        }
        body.push_str(
            "\nthe guards were leaked (mem::forget, a leaked Box or Rc cycle), so no thread can \
             ever take these locks again.\n",
        );
        let summary = format!(
            "Thread '{}' exited holding {} lock(s), first {} taken at {}; any thread that \
             later takes them will wait forever.",
            self.name,
            self.held.len(),
            describe(self.held[0].node),
            self.held[0].site
        );
        let classes = self.held.iter().map(|h| describe(h.node)).collect();
        let report = Report::new(ReportKind::HeldAtThreadExit, summary, classes, sites, body);
        raise(report, self.reaction(), true);
    }
}

/// Registers a blocking acquisition, checking it first. Returns whether it is tracked
/// (false when the thread's state is gone or busy, e.g. inside a thread-local destructor).
#[inline]
pub(crate) fn enter(
    lock: LockId,
    node: Node,
    mode: Mode,
    site: &'static Location<'static>,
) -> bool {
    let fast = STATE.try_with(|state| match state.try_borrow_mut() {
        Ok(mut state) => state.push_if_known(lock, node, mode, site).map(|()| true),
        Err(_) => Some(false),
    });
    match fast {
        Ok(Some(tracked)) => tracked,
        Ok(None) => enter_slow(lock, node, mode, site),
        Err(_) => false,
    }
}

#[cold]
#[inline(never)]
fn enter_slow(lock: LockId, node: Node, mode: Mode, site: &'static Location<'static>) -> bool {
    let Ok((reports, cacheable, reaction)) = STATE.try_with(|state| {
        let state = state.borrow();
        let (reports, cacheable) =
            check_acquisition(&state.held, lock, node, mode, site, &state.name);
        let reaction = if reports.is_empty() {
            Reaction::Print
        } else {
            state.reaction()
        };
        (reports, cacheable, reaction)
    }) else {
        return false;
    };
    for report in reports {
        raise(report, reaction.clone(), false);
    }
    STATE
        .try_with(|state| {
            let mut state = state.borrow_mut();
            let prev = state.held.last().map_or(0, |top| top.chain);
            let key = chain_next(prev, node, mode);
            if cacheable {
                state.cache[slot(key)] = key;
            }
            state.push(lock, node, mode, site, key);
        })
        .is_ok()
}

/// Registers an acquisition that did not block (`try_*`): no order check, since it cannot
/// wait, but later acquisitions are ordered after it.
#[inline]
pub(crate) fn enter_acquired(
    lock: LockId,
    node: Node,
    mode: Mode,
    site: &'static Location<'static>,
) -> bool {
    STATE
        .try_with(|state| match state.try_borrow_mut() {
            Ok(mut state) => {
                let prev = state.held.last().map_or(0, |top| top.chain);
                state.push(lock, node, mode, site, chain_next(prev, node, mode));
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false)
}

/// Removes the held entry of `lock` (topmost if held twice).
#[inline]
pub(crate) fn exit(lock: LockId) {
    let _ = STATE.try_with(|state| {
        if let Ok(mut state) = state.try_borrow_mut() {
            state.pop(lock);
        }
    });
}

/// Changes how this thread holds `lock` without releasing it (write to read: cannot wait,
/// so nothing to check).
pub(crate) fn downgrade(lock: LockId, mode: Mode) {
    let _ = STATE.try_with(|state| {
        if let Ok(mut state) = state.try_borrow_mut() {
            state.set_mode(lock, mode);
        }
    });
}

/// Like [`exit`], returning the removed entry.
pub(crate) fn exit_with_info(lock: LockId) -> Option<Held> {
    STATE
        .try_with(|state| state.try_borrow_mut().ok()?.pop_slow(lock))
        .ok()
        .flatten()
}

/// The clock for hold times: ns since its first use, never 0.
fn now_ns() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Starts the hold-time clock of `lock` (hold times configured on).
pub(crate) fn mark_acquired(lock: LockId) {
    let _ = STATE.try_with(|state| {
        if let Ok(mut state) = state.try_borrow_mut()
            && let Some(h) = state.held.iter_mut().rev().find(|h| h.lock == lock)
        {
            h.since_ns = now_ns();
        }
    });
}

/// Whether this thread holds `lock`; `None` if that cannot be known.
pub(crate) fn holds(lock: LockId) -> Option<bool> {
    STATE
        .try_with(|state| Some(state.try_borrow().ok()?.held.iter().any(|h| h.lock == lock)))
        .ok()?
}

/// The held locks below the top entry (the one being waited for) and the thread's name.
pub(crate) fn held_while_waiting() -> (Vec<Held>, Arc<str>) {
    STATE
        .try_with(|state| {
            let state = state.borrow();
            let below = state.held.len().saturating_sub(1);
            (state.held[..below].to_vec(), Arc::clone(&state.name))
        })
        .unwrap_or_else(|_| (Vec::new(), Arc::from("<exiting thread>")))
}

/// All held locks and the thread's name.
pub(crate) fn held_all() -> (Vec<Held>, Arc<str>) {
    STATE
        .try_with(|state| {
            let state = state.borrow();
            (state.held.clone(), Arc::clone(&state.name))
        })
        .unwrap_or_else(|_| (Vec::new(), Arc::from("<exiting thread>")))
}

/// The reaction for reports raised on this thread.
pub(crate) fn reaction() -> Reaction {
    STATE
        .try_with(|state| state.borrow().reaction())
        .unwrap_or_else(|_| SETTINGS.read().reaction.clone())
}

pub(crate) fn set_reaction(reaction: Option<Reaction>) {
    let _ = STATE.try_with(|state| state.borrow_mut().reaction = reaction);
}

/// This thread's shared statistics block.
pub(crate) fn stats_block() -> Option<Arc<ThreadStats>> {
    STATE
        .try_with(|state| Arc::clone(&state.borrow().stats))
        .ok()
}

/// Merges this thread's local counters so a snapshot sees them.
pub(crate) fn flush_current() {
    let _ = STATE.try_with(|state| {
        if let Ok(mut state) = state.try_borrow_mut() {
            state.flush();
        }
    });
}

/// Checks an acquisition against the held locks. Returns the reports and whether the
/// resulting chain may be cached as valid.
fn check_acquisition(
    held: &[Held],
    lock: LockId,
    node: Node,
    mode: Mode,
    site: &'static Location<'static>,
    thread: &Arc<str>,
) -> (Vec<Report>, bool) {
    let mut reports = Vec::new();
    let mut cacheable = true;
    let mut priors = Vec::new();
    for h in held {
        let shared_again = h.mode.is_shared() && mode == Mode::RecursiveRead;
        if h.lock == lock {
            if !shared_again {
                cacheable = false;
                reports.extend(self_deadlock(h, node, mode, site, thread));
            }
        } else if h.node == node {
            if !shared_again {
                cacheable = false;
                reports.extend(same_class(h, node, mode, site, thread));
            }
        } else {
            priors.push(*h);
        }
    }
    // A re-lock of a held instance hangs whatever the order says; its report is enough.
    let relock = held.iter().any(|h| h.lock == lock) && !cacheable;
    if !priors.is_empty() && !relock {
        reports.extend(graph::check_and_record(
            &priors, held, node, mode, site, thread,
        ));
    }
    (reports, cacheable)
}

fn held_list(held: &[Held]) -> String {
    let mut out = String::new();
    for (i, h) in held.iter().enumerate() {
        let _ = writeln!(out, "  #{i} {}", h.line());
    }
    out
}

fn self_deadlock(
    held: &Held,
    node: Node,
    mode: Mode,
    site: &'static Location<'static>,
    thread: &str,
) -> Option<Report> {
    let class = describe(node);
    let (kind, summary) = if held.mode.is_shared() && mode == Mode::Read {
        (
            ReportKind::RecursiveRead,
            format!(
                "Thread '{thread}' takes a second read lock on {class} at {site} while its first \
                 (taken at {}) is still held; if a writer queues in between, the writer waits \
                 for the first read and this read waits behind the writer, so both hang.",
                held.site
            ),
        )
    } else {
        (
            ReportKind::SelfDeadlock,
            format!(
                "Thread '{thread}' takes {class} ({}) at {site} while it already holds it ({}, \
                 taken at {}); it would wait forever for itself to release it.",
                mode.describe(),
                held.mode.describe(),
                held.site
            ),
        )
    };
    if !first_time(signature((kind as u8, held.site, site))) {
        return None;
    }
    let mut body = format!(
        "thread '{thread}' is acquiring {class} ({}) at {site}\nbut already holds the same lock:\n  {}\n",
        mode.describe(),
        held.line()
    );
    if kind == ReportKind::RecursiveRead {
        body.push_str(
            "\nthis lock is writer-preferring: use RecursiveRwLock for re-entrant reads, or keep\n\
             the first guard and pass the data down instead of locking again.\n",
        );
    }
    let (all, _) = held_all();
    let _ = write!(body, "\nheld locks:\n{}", held_list(&all));
    let _ = write!(body, "\ncurrent stack:\n{}", crate::stack::render_now("  "));
    Some(Report::new(
        kind,
        summary,
        vec![class],
        vec![held.site.to_string(), site.to_string()],
        body,
    ))
}

fn same_class(
    held: &Held,
    node: Node,
    mode: Mode,
    site: &'static Location<'static>,
    thread: &str,
) -> Option<Report> {
    if !first_time(signature(("class", node, held.site, site))) {
        return None;
    }
    let class = describe(node);
    let summary = format!(
        "Thread '{thread}' takes a second lock of class {class} at {site} while holding another \
         one (taken at {}); if another thread takes the two in the opposite order, each waits \
         forever for the other.",
        held.site
    );
    let mut body = format!(
        "thread '{thread}' is acquiring {class} ({}) at {site}\nwhile holding another instance of \
         the same class:\n  {}\n\nif the nesting is a real hierarchy (parent -> child), say so \
         with lock_nested(subclass) / read_nested / write_nested.\n",
        mode.describe(),
        held.line()
    );
    let (all, _) = held_all();
    let _ = write!(body, "\nheld locks:\n{}", held_list(&all));
    let _ = write!(body, "\ncurrent stack:\n{}", crate::stack::render_now("  "));
    Some(Report::new(
        ReportKind::SameClassNesting,
        summary,
        vec![class],
        vec![held.site.to_string(), site.to_string()],
        body,
    ))
}

/// Reports a failed `assert_held` / `assert_not_held`.
#[cold]
pub(crate) fn assert_failed(
    expected_held: bool,
    node: Node,
    lock_site: &'static Location<'static>,
) {
    let (held, thread) = held_all();
    let class = describe(node);
    let (kind, summary) = if expected_held {
        (
            ReportKind::NotHeld,
            format!(
                "assert_held at {lock_site} failed: thread '{thread}' does not hold {class}, so \
                 the data it guards may be changing under this code."
            ),
        )
    } else {
        (
            ReportKind::UnexpectedlyHeld,
            format!(
                "assert_not_held at {lock_site} failed: thread '{thread}' holds {class}; taking \
                 it again here would deadlock."
            ),
        )
    };
    let body = format!(
        "held locks of thread '{thread}':\n{}\ncurrent stack:\n{}",
        held_list(&held),
        crate::stack::render_now("  ")
    );
    let report = Report::new(
        kind,
        summary,
        vec![class],
        vec![lock_site.to_string()],
        body,
    );
    raise(report, reaction(), false);
}
