//! Cross-thread deadlock detection for shard locks: a wait-for graph, built only by a thread
//! that has waited for a shard longer than its map's threshold.
//!
//! # What each thread publishes (its [`ReaderRecord`])
//! - the shard locks it reads (the record's `held` slots, which readers publish anyway, in every
//!   mode: the reads of a write-heavy shard, counted in its shared reader count, publish their
//!   slot too) and the call site of each read (`sites`, next to the slot, on the line the read
//!   already writes);
//! - reads beyond its slots (the overflow list, mirrored here under a mutex: that path already
//!   writes the lock's shared count);
//! - while it waits, and only then: the lock, shard index, mode and call site of the wait, and,
//!   for a wait on a writer, the thread tag that holds the writer word and the site where that
//!   writer took it (refreshed every round of the wait, with a round counter);
//! - its thread tag (the writer word of a lock holds its writer's tag) and its `Thread`, for
//!   reports.
//!
//! None of this is on a fast path: the site store replaces a thread-local store of the read
//! path, everything else is written on paths that are about to wait.
//!
//! # Detection
//! A waiter that has waited `check_after` runs [`WaitPoint::pause`]'s check, then again every
//! `check_after`. It takes a snapshot of every waiting thread and looks for a path from itself
//! back to itself: a thread waiting for a writer word is blocked by the word's holder; a writer
//! waiting for readers (walking the records, or on the shared count of a write-heavy shard or
//! of overflow reads) is blocked by every thread whose record or overflow list names the lock. Only waiting
//! threads have outgoing edges, so a thread that merely holds a guard for long (and runs, or
//! sleeps, or waits on something else) never closes a cycle.
//!
//! A snapshot is taken while the threads run, so a cycle found in one is only a candidate. It
//! is confirmed by a second snapshot that finds a cycle whose every member is still in the
//! very wait it was in during the first one (same odd `seq`) and whose members waiting for a
//! writer have refreshed their blocker at least twice since. A thread keeps everything it
//! holds for the whole of one wait (it releases nothing while it waits; it may only get the
//! lock it waits for, and then it stops naming a blocker), so every edge read in the second
//! snapshot still holds at the end of it: the threads really wait for each other, forever.
//!
//! # Resolution
//! Several members may confirm the same cycle. A process-wide flag makes them take turns:
//! under it, a member re-checks that every member is still in the same wait, leaves its own
//! wait (a new `seq`), and drops the flag. The next member to look finds that wait gone and
//! does nothing. The member that leaves returns a [`Deadlock`]; its caller undoes what the
//! wait had taken (a writer word) and panics, which drops the guards it holds and lets the
//! other members go on.

// Under loom nothing is published or checked (loom has no clock, and the graph takes no part
// in the lock protocol): only the backoff of `WaitPoint` is used there.
#![cfg_attr(loom, allow(dead_code, unused_imports))]

use std::panic::Location;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Duration;

use super::readers::{LOCAL, ReaderRecord};

/// How long a waiter waits before it first looks for a deadlock, unless its map says otherwise.
pub(crate) const DEFAULT_CHECK_AFTER: Duration = Duration::from_millis(100);

/// A duration in nanoseconds for [`WaitPoint`]; `u64::MAX` means never.
pub(crate) fn check_after_ns(after: Duration) -> u64 {
    u64::try_from(after.as_nanos()).unwrap_or(u64::MAX)
}

/// The call site of a read or wait, as an atomic pointer (null when unknown). A plain `std`
/// atomic even under loom: sites are for reports only and take no part in the lock protocol.
pub(crate) struct SiteCell(AtomicPtr<Location<'static>>);

impl SiteCell {
    pub(crate) const fn new() -> Self {
        Self(AtomicPtr::new(std::ptr::null_mut()))
    }

    #[inline]
    pub(crate) fn set(&self, site: &'static Location<'static>) {
        self.0.store(
            site as *const Location<'static> as *mut Location<'static>,
            Ordering::Relaxed,
        );
    }

    pub(crate) fn get(&self) -> Option<&'static Location<'static>> {
        // SAFETY: the cell only ever holds null or a pointer made from a
        // `&'static Location<'static>` (in `set`).
        unsafe { self.0.load(Ordering::Relaxed).as_ref() }
    }
}

/// What a waiting thread waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum WaitMode {
    /// A writer waiting for the writer word.
    Write = 1,
    /// A writer that holds the writer word, waiting for readers to leave.
    Readers = 2,
    /// A reader waiting for a writer to leave.
    Read = 3,
}

impl WaitMode {
    fn from_usize(mode: usize) -> Self {
        match mode {
            1 => Self::Write,
            2 => Self::Readers,
            _ => Self::Read,
        }
    }
}

/// The part of a thread's record that describes its current wait, for deadlock detection.
/// Its own cache lines: written only while the thread waits, read only by detectors.
#[repr(C, align(64))]
pub(crate) struct WaitRecord {
    /// Odd while the thread waits; incremented when a wait starts and when it ends.
    seq: AtomicU64,
    /// The lock waited for (its address), its shard index and the wait's mode and call site;
    /// written before `seq` turns odd.
    lock: AtomicUsize,
    shard: AtomicUsize,
    mode: AtomicUsize,
    site: SiteCell,
    /// For `Write` and `Read` waits: the tag of the thread that holds the writer word (0 if
    /// none), and where it took it; refreshed every round, then `rounds` is incremented.
    blocked_by: AtomicUsize,
    blocked_site: SiteCell,
    rounds: AtomicU64,
    /// The owning thread's tag (see `readers::thread_tag`), and the thread itself for reports.
    owner: AtomicUsize,
    thread: Mutex<Option<Thread>>,
    /// The reads this thread holds beyond its slots: (lock, site).
    overflow: Mutex<Vec<(usize, &'static Location<'static>)>>,
    /// Set when the owning thread exited while reads were still published in the record
    /// (guards leaked with `mem::forget`): the record stays claimed, and those reads are
    /// never released. A writer waiting for them reports it instead of waiting forever.
    exited: std::sync::atomic::AtomicBool,
}

impl WaitRecord {
    pub(crate) fn new() -> Self {
        Self {
            seq: AtomicU64::new(0),
            lock: AtomicUsize::new(0),
            shard: AtomicUsize::new(0),
            mode: AtomicUsize::new(0),
            site: SiteCell::new(),
            blocked_by: AtomicUsize::new(0),
            blocked_site: SiteCell::new(),
            rounds: AtomicU64::new(0),
            owner: AtomicUsize::new(0),
            thread: Mutex::new(None),
            overflow: Mutex::new(Vec::new()),
            exited: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Called by the thread that claims the record.
    pub(crate) fn claimed_by(&self, tag: usize) {
        self.exited.store(false, Ordering::Relaxed);
        self.owner.store(tag, Ordering::Relaxed);
        let current = std::thread::current();
        *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(current);
    }

    /// Publishes a read taken through the lock's shared count.
    pub(crate) fn add_overflow(&self, lock: usize, site: &'static Location<'static>) {
        self.overflow
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((lock, site));
    }

    /// Called as the owning thread exits with reads still published (leaked guards): the
    /// record stays claimed with them, and writers waiting for them report the leak.
    pub(crate) fn mark_exited(&self) {
        self.exited.store(true, Ordering::Release);
    }

    /// Whether the owning thread exited with reads still published (see `mark_exited`).
    pub(crate) fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// Withdraws every read of `lock` published with `add_overflow` (the lock goes away).
    pub(crate) fn remove_all_overflow(&self, lock: usize) {
        self.overflow
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&(held, _)| held != lock);
    }

    /// Withdraws a read published with `add_overflow`.
    pub(crate) fn remove_overflow(&self, lock: usize) {
        let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = overflow.iter().position(|&(held, _)| held == lock) {
            overflow.swap_remove(at);
        }
    }
}

/// A cycle of waiting threads, confirmed; the message names every member.
pub(crate) struct Deadlock {
    message: String,
}

impl Deadlock {
    /// Panics with the report. The caller has already undone what its wait had taken.
    #[cold]
    pub(crate) fn raise(self) -> ! {
        panic!("{}", self.message)
    }
}

/// One wait on a shard lock: the backoff (`primitive::pause`: spin, then yield, then sleep in
/// growing steps up to a millisecond) and, once `check_after_ns` has passed, deadlock checks. Nothing is published
/// until the first [`pause`](Self::pause), so a wait that never pauses costs nothing.
pub(crate) struct WaitPoint {
    lock: usize,
    shard: usize,
    mode: WaitMode,
    site: &'static Location<'static>,
    check_after_ns: u64,
    rounds: u32,
    /// The record this wait is published in and its odd `seq`, once published.
    published: Option<(&'static ReaderRecord, u64)>,
    #[cfg(not(loom))]
    started: Option<std::time::Instant>,
    #[cfg(not(loom))]
    next_check_ns: u64,
    /// Whether this wait has printed its stall warning (see `STALL_FACTOR`).
    #[cfg(not(loom))]
    stall_reported: bool,
}

impl WaitPoint {
    #[inline]
    pub(crate) fn new(
        lock: usize,
        shard: usize,
        mode: WaitMode,
        site: &'static Location<'static>,
        check_after_ns: u64,
    ) -> Self {
        Self {
            lock,
            shard,
            mode,
            site,
            check_after_ns,
            rounds: 0,
            published: None,
            #[cfg(not(loom))]
            started: None,
            #[cfg(not(loom))]
            next_check_ns: check_after_ns,
            #[cfg(not(loom))]
            stall_reported: false,
        }
    }

    /// One round of waiting. `blocker` returns the tag of the thread holding the writer word
    /// the wait depends on and where it took it (`(0, None)` for a wait on readers).
    ///
    /// # Errors
    /// A confirmed deadlock that includes this thread: this wait has been withdrawn from the
    /// graph; the caller must undo what it took and [`raise`](Deadlock::raise) it.
    #[cold]
    pub(crate) fn pause(
        &mut self,
        blocker: &dyn Fn() -> (usize, Option<&'static Location<'static>>),
    ) -> Result<(), Deadlock> {
        self.rounds = self.rounds.saturating_add(1);
        #[cfg(loom)]
        {
            // Loom has no clock and the graph is diagnostics only: just let others run, unless
            // the model asked this thread to give up its wait as a deadlock's resolution does.
            let _ = blocker;
            if loom_give_up::take(self.mode) {
                return Err(Deadlock {
                    message: "mapguard: deadlock detected (forced by the loom model)".to_owned(),
                });
            }
            super::primitive::pause(self.rounds);
            Ok(())
        }
        #[cfg(not(loom))]
        {
            if self.published.is_none() {
                self.publish();
            }
            if let Some((record, _)) = self.published {
                refresh_blocker(record, blocker);
            }
            super::primitive::pause(self.rounds);
            if self.rounds <= SPIN_ROUNDS {
                return Ok(());
            }
            let started = *self.started.get_or_insert_with(std::time::Instant::now);
            let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            if waited < self.next_check_ns {
                return Ok(());
            }
            self.next_check_ns = waited.saturating_add(self.check_after_ns.max(1_000_000));
            let Some((record, seq)) = self.published else {
                return Ok(());
            };
            if self.mode == WaitMode::Readers
                && let Some(message) = leaked_by_exited_thread(self.lock, self.shard, self.site)
            {
                self.published = None;
                record.wait.seq.store(seq + 1, Ordering::Release);
                return Err(Deadlock { message });
            }
            if let Some(message) = detect(record, seq, blocker) {
                // `detect` has ended the wait in the record (under the resolver flag).
                self.published = None;
                return Err(Deadlock { message });
            }
            let stall_ns = self
                .check_after_ns
                .saturating_mul(STALL_FACTOR)
                .max(MIN_STALL_NS);
            if !self.stall_reported && waited >= stall_ns {
                self.stall_reported = true;
                eprintln!("{}", stall_report(self, waited, record, blocker));
            }
            Ok(())
        }
    }

    #[cfg(not(loom))]
    fn publish(&mut self) {
        // A writer that never read has no record yet: claim one (off the fast path).
        let record = LOCAL.try_with(|local| local.claim().then(|| local.record()));
        let Ok(Some(record)) = record else {
            return; // Thread-locals are being destroyed: this wait stays out of the graph.
        };
        let wait = &record.wait;
        wait.lock.store(self.lock, Ordering::Relaxed);
        wait.shard.store(self.shard, Ordering::Relaxed);
        wait.mode.store(self.mode as usize, Ordering::Relaxed);
        wait.site.set(self.site);
        wait.blocked_by.store(0, Ordering::Relaxed);
        // Only this thread writes `seq`: a plain increment, released so that a detector that
        // sees the odd value sees the fields above.
        let seq = wait.seq.load(Ordering::Relaxed) + 1;
        wait.seq.store(seq, Ordering::Release);
        self.published = Some((record, seq));
    }
}

impl Drop for WaitPoint {
    fn drop(&mut self) {
        if let Some((record, seq)) = self.published {
            record.wait.seq.store(seq + 1, Ordering::Release);
        }
    }
}

/// Rounds spent spinning before a wait yields (see `primitive::pause`) and starts looking at
/// the clock.
#[cfg(not(loom))]
const SPIN_ROUNDS: u32 = 6;

#[cfg(not(loom))]
fn refresh_blocker(
    record: &ReaderRecord,
    blocker: &dyn Fn() -> (usize, Option<&'static Location<'static>>),
) {
    let (tag, site) = blocker();
    let wait = &record.wait;
    wait.blocked_by.store(tag, Ordering::Relaxed);
    if let Some(site) = site {
        wait.blocked_site.set(site);
    }
    let rounds = wait.rounds.load(Ordering::Relaxed) + 1;
    wait.rounds.store(rounds, Ordering::Release);
}

/// A wait that lasts this many times its map's deadlock threshold (and at least
/// [`MIN_STALL_NS`]) without being part of a deadlock prints one line to stderr naming what
/// it waits for: a guard held that long, or one leaked with `mem::forget` by a thread that is
/// still running (which no detection can tell apart), would otherwise hang silently.
#[cfg(not(loom))]
const STALL_FACTOR: u64 = 10;
#[cfg(not(loom))]
const MIN_STALL_NS: u64 = 1_000_000_000;

/// A description of a thread for reports: its name (if any) and id.
#[cfg(not(loom))]
fn describe_thread(record: &ReaderRecord) -> String {
    format!("{})", thread_label_open(record))
}

/// [`describe_thread`] without its closing parenthesis, for a report that adds to it
/// ("thread 'main' (ThreadId(1)", or "a thread (unknown" if the record names none).
#[cfg(not(loom))]
fn thread_label_open(record: &ReaderRecord) -> String {
    let thread = record
        .wait
        .thread
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    match thread {
        Some(thread) => match thread.name() {
            Some(name) => format!("thread '{name}' ({:?}", thread.id()),
            None => format!("thread ({:?}", thread.id()),
        },
        None => "a thread (unknown".to_owned(),
    }
}

/// `Some(at file:line)` or "at an unknown site".
#[cfg(not(loom))]
fn at(site: Option<&'static Location<'static>>) -> String {
    match site {
        Some(site) => format!("at {site}"),
        None => "at an unknown site".to_owned(),
    }
}

/// The reads of `lock` published in `record` (slots and overflow), with their sites.
#[cfg(not(loom))]
fn reads_of(record: &ReaderRecord, lock: usize) -> Vec<Option<&'static Location<'static>>> {
    let mut sites: Vec<_> = record
        .held
        .iter()
        .zip(&record.sites)
        .filter(|(held, _)| held.load(Ordering::SeqCst) == lock)
        .map(|(_, site)| site.get())
        .collect();
    sites.extend(
        record
            .wait
            .overflow
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|&&(held, _)| held == lock)
            .map(|&(_, site)| Some(site)),
    );
    sites
}

/// The report of a writer (at `site`, waiting for the readers of shard `shard`, lock `lock`)
/// that one of them is a read leaked by a thread that has exited, if one is.
#[cfg(not(loom))]
#[cold]
fn leaked_by_exited_thread(
    lock: usize,
    shard: usize,
    site: &'static Location<'static>,
) -> Option<String> {
    super::readers::records()
        .filter(|record| record.in_use() && record.wait.has_exited())
        .find_map(|record| {
            let read_site = *reads_of(record, lock).first()?;
            Some(format!(
                "mapguard: leaked guard: {site} needs shard {shard} of this map for writing, but \
                 {} exited holding a read guard on that shard, taken {}: the guard was never \
                 dropped (leaked with `mem::forget` or in a reference cycle), so the shard stays \
                 read-locked and no write to it can ever proceed. This write gives up and panics.",
                describe_thread(record),
                at(read_site),
            ))
        })
}

/// The stall warning of a wait (see [`STALL_FACTOR`]): what it waits for and who holds it.
#[cfg(not(loom))]
#[cold]
fn stall_report(
    wait: &WaitPoint,
    waited_ns: u64,
    own: &ReaderRecord,
    blocker: &dyn Fn() -> (usize, Option<&'static Location<'static>>),
) -> String {
    let action = if wait.mode == WaitMode::Read {
        "read"
    } else {
        "write"
    };
    let mut holders = Vec::new();
    if wait.mode == WaitMode::Readers {
        for record in super::readers::records().filter(|record| record.in_use()) {
            // A reader waiting for this very writer publishes the lock for an instant on each
            // try: that is no hold.
            let trying = record.wait.seq.load(Ordering::Acquire) % 2 == 1
                && record.wait.lock.load(Ordering::Relaxed) == wait.lock
                && WaitMode::from_usize(record.wait.mode.load(Ordering::Relaxed)) == WaitMode::Read;
            if std::ptr::eq(record, own) || trying {
                continue;
            }
            for read_site in reads_of(record, wait.lock) {
                holders.push(format!(
                    "{} holds a read guard on it, taken {}",
                    describe_thread(record),
                    at(read_site)
                ));
            }
        }
    } else {
        let (tag, write_site) = blocker();
        let holder = super::readers::records()
            .find(|record| record.in_use() && record.wait.owner.load(Ordering::Relaxed) == tag)
            .map_or_else(|| "a thread".to_owned(), describe_thread);
        if tag != 0 {
            holders.push(format!(
                "{holder} holds its write lock, taken {}",
                at(write_site)
            ));
        }
    }
    if holders.is_empty() {
        holders.push("readers that are not named (past their threads' records)".to_owned());
    }
    format!(
        "mapguard: stalled: the {action} at {} has waited {} ms for shard {} of a ShardedMap: \
         {}. This is no deadlock (no thread waits for this one); the wait goes on until the \
         guard is dropped, which never happens if it was leaked with `mem::forget`.",
        wait.site,
        waited_ns / 1_000_000,
        wait.shard,
        holders.join("; "),
    )
}

/// One waiting thread, as seen in a snapshot.
#[cfg(not(loom))]
struct Node {
    record: &'static ReaderRecord,
    tag: usize,
    seq: u64,
    lock: usize,
    shard: usize,
    mode: WaitMode,
    site: Option<&'static Location<'static>>,
    blocked_by: usize,
    blocked_site: Option<&'static Location<'static>>,
    rounds: u64,
}

/// What a thread holds that another waits for.
#[cfg(not(loom))]
#[derive(Clone, Copy)]
struct Hold {
    /// Index of the holder in the snapshot.
    holder: usize,
    write: bool,
    site: Option<&'static Location<'static>>,
}

/// Every waiting thread, each read consistently with its `seq`.
#[cfg(not(loom))]
fn snapshot() -> Vec<Node> {
    super::readers::records()
        .filter(|record| record.in_use())
        .filter_map(|record| {
            let wait = &record.wait;
            let seq = wait.seq.load(Ordering::Acquire);
            if seq % 2 == 0 {
                return None;
            }
            let rounds = wait.rounds.load(Ordering::Acquire);
            let node = Node {
                record,
                tag: wait.owner.load(Ordering::Relaxed),
                seq,
                lock: wait.lock.load(Ordering::Relaxed),
                shard: wait.shard.load(Ordering::Relaxed),
                mode: WaitMode::from_usize(wait.mode.load(Ordering::Relaxed)),
                site: wait.site.get(),
                blocked_by: wait.blocked_by.load(Ordering::Relaxed),
                blocked_site: wait.blocked_site.get(),
                rounds,
            };
            std::sync::atomic::fence(Ordering::Acquire);
            (wait.seq.load(Ordering::Relaxed) == seq).then_some(node)
        })
        .collect()
}

/// The waiting threads that `nodes[n]` waits for.
#[cfg(not(loom))]
fn blockers(nodes: &[Node], n: usize) -> Vec<Hold> {
    let node = &nodes[n];
    match node.mode {
        WaitMode::Write | WaitMode::Read => {
            if node.blocked_by == 0 || node.blocked_by == node.tag {
                return Vec::new();
            }
            nodes
                .iter()
                .position(|other| other.tag == node.blocked_by)
                .map(|holder| Hold {
                    holder,
                    write: true,
                    site: node.blocked_site,
                })
                .into_iter()
                .collect()
        }
        WaitMode::Readers => {
            let mut holds = Vec::new();
            for (m, other) in nodes.iter().enumerate() {
                // A reader waiting for this very lock publishes it for an instant on each
                // try and takes it back: that is no hold.
                if m == n || (other.mode == WaitMode::Read && other.lock == node.lock) {
                    continue;
                }
                let record = other.record;
                let slot = record
                    .held
                    .iter()
                    .position(|held| held.load(Ordering::SeqCst) == node.lock);
                let site = match slot {
                    Some(slot) => Some(record.sites[slot].get()),
                    None => record
                        .wait
                        .overflow
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .iter()
                        .find(|&&(lock, _)| lock == node.lock)
                        .map(|&(_, site)| Some(site)),
                };
                if let Some(site) = site {
                    holds.push(Hold {
                        holder: m,
                        write: false,
                        site,
                    });
                }
            }
            holds
        }
    }
}

/// A shortest cycle through `nodes[start]`: for each member in order, the hold of the next
/// member that it waits for (the last one's is held by `start`).
#[cfg(not(loom))]
fn find_cycle(nodes: &[Node], start: usize) -> Option<Vec<(usize, Hold)>> {
    let mut came_from: Vec<Option<(usize, Hold)>> = vec![None; nodes.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    let mut seen = vec![false; nodes.len()];
    seen[start] = true;
    while let Some(n) = queue.pop_front() {
        for hold in blockers(nodes, n) {
            if hold.holder == start {
                // Walk back from `n` to `start`.
                let mut cycle = vec![(n, hold)];
                let mut at = n;
                while let Some((prev, prev_hold)) = came_from[at] {
                    cycle.push((prev, prev_hold));
                    at = prev;
                }
                cycle.reverse();
                return Some(cycle);
            }
            if !seen[hold.holder] {
                seen[hold.holder] = true;
                came_from[hold.holder] = Some((n, hold));
                queue.push_back(hold.holder);
            }
        }
    }
    None
}

#[cfg(not(loom))]
fn position_of(nodes: &[Node], record: &ReaderRecord, seq: u64) -> Option<usize> {
    nodes
        .iter()
        .position(|node| std::ptr::eq(node.record, record) && node.seq == seq)
}

/// Lets one confirmed member at a time end its wait (see the module docs).
#[cfg(not(loom))]
static RESOLVING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Looks for a deadlock through this thread's wait (`record`, `seq`); on one, ends the wait in
/// the record and returns the report.
#[cfg(not(loom))]
#[cold]
fn detect(
    record: &'static ReaderRecord,
    seq: u64,
    blocker: &dyn Fn() -> (usize, Option<&'static Location<'static>>),
) -> Option<String> {
    let first = snapshot();
    find_cycle(&first, position_of(&first, record, seq)?)?;
    // Give every member time for two more rounds (a round sleeps at most 1 ms), and refresh
    // this thread's own blocker after the first snapshot.
    std::thread::sleep(Duration::from_millis(3));
    refresh_blocker(record, blocker);
    let second = snapshot();
    let cycle = find_cycle(&second, position_of(&second, record, seq)?)?;
    for &(n, _) in &cycle {
        let node = &second[n];
        let before = &first[position_of(&first, node.record, node.seq)?];
        let refreshed = node.mode == WaitMode::Readers
            || std::ptr::eq(node.record, record)
            || node.rounds >= before.rounds + 2;
        if !refreshed {
            return None; // A member has not run since; look again at the next check.
        }
    }
    if RESOLVING
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return None; // Another member is resolving, maybe this very cycle.
    }
    let still = cycle
        .iter()
        .all(|&(n, _)| second[n].record.wait.seq.load(Ordering::Acquire) == second[n].seq);
    if still {
        record.wait.seq.store(seq + 1, Ordering::Release);
    }
    RESOLVING.store(false, Ordering::Release);
    still.then(|| report(&second, &cycle))
}

#[cfg(not(loom))]
fn report(nodes: &[Node], cycle: &[(usize, Hold)]) -> String {
    let at = |site: Option<&'static Location<'static>>| match site {
        Some(site) => site.to_string(),
        None => "an unknown site".to_owned(),
    };
    let thread = |node: &Node| thread_label_open(node.record);
    let mut message = format!(
        "mapguard: deadlock detected: {} threads wait for each other's ShardedMap shard locks \
         and would hang forever:",
        cycle.len()
    );
    for (i, &(n, _)) in cycle.iter().enumerate() {
        let node = &nodes[n];
        // What this member holds is what the previous member waits for.
        let (prev, hold) = cycle[(i + cycle.len() - 1) % cycle.len()];
        let held = &nodes[prev];
        let held_what = if hold.write {
            "the write lock of"
        } else {
            "a read guard on"
        };
        let waits = match node.mode {
            WaitMode::Write => format!("waits to write shard {}", node.shard),
            WaitMode::Readers => format!("waits to write shard {}", node.shard),
            WaitMode::Read => format!("waits to read shard {}", node.shard),
        };
        message.push_str(&format!(
            "\n  {}{}) holds {held_what} shard {} (taken at {}) and {waits} (call at {}{})",
            thread(node),
            if i == 0 { ", this thread" } else { "" },
            held.shard,
            at(hold.site),
            at(node.site),
            if node.mode == WaitMode::Readers {
                "; it has that shard's write lock and waits for its readers to leave"
            } else {
                ""
            },
        ));
    }
    message.push_str(
        "\nThis thread gives up its wait and panics, dropping its guards so that the others \
         can go on. Take guards on several shards in one order in every thread, or drop a \
         guard (copy the value out) before calling the map again.",
    );
    message
}

/// Under `--cfg loom`, which has no clock for the detector: a model makes a thread's next wait
/// of a given kind end as a confirmed deadlock would, so that the paths that undo a wait (a
/// writer giving its word back while readers are inside) are explored.
#[cfg(loom)]
pub mod loom_give_up {
    use std::cell::Cell;

    use super::WaitMode;

    loom::thread_local! {
        static NEXT_READERS_WAIT: Cell<bool> = Cell::new(false);
    }

    /// This thread's next wait of a writer for the readers of a shard gives up at its first
    /// pause, as a deadlock's resolution makes it do.
    pub fn give_up_next_wait_for_readers() {
        NEXT_READERS_WAIT.with(|next| next.set(true));
    }

    /// Whether the wait in `mode` must give up now (once per request).
    pub(super) fn take(mode: WaitMode) -> bool {
        matches!(mode, WaitMode::Readers) && NEXT_READERS_WAIT.with(|next| next.replace(false))
    }
}
