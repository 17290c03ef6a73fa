#![cfg_attr(not(loom), allow(unreachable_pub))] // `pub` for the loom model (see lib.rs).
//! Epoch-based reclamation: when memory that readers reach without a lock may be freed.
//!
//! A [`Domain`] has a global epoch and one [`Record`] per thread that reads. A reader *pins*:
//! it copies the global epoch into its own record (marked as pinned; a release store, so that a
//! writer that sees this pin also sees the previous pin's reads as done) and runs a fence, then
//! reads shared pointers, then *unpins* by clearing its record (a release store too). Only the reader writes its
//! record, which sits alone on its cache line: pinning writes nothing another core reads.
//!
//! A writer that unlinks an object *retires* it with the epoch it read after a `SeqCst` fence
//! (a garbage list reads it for a batch of retirements at once: see [`Garbage`]).
//! The global epoch moves from `e` to `e + 1` only when every pinned record shows `e`; an object
//! retired at `g` is freed once the global epoch is `g + 2` or later: by then every reader that
//! was pinned when it was unlinked has unpinned.
//!
//! The reader's fence is the costly part of a pin. On Linux the global domain registers for
//! the `membarrier` system call and the advancing thread makes every running thread execute a
//! barrier, so a pin only needs a compiler fence (the asymmetric-fence technique of userspace
//! RCU). Advancing therefore costs a system call; writers try it once per batch of retired
//! objects, never on the read path.
//!
//! This module owns the domain, the per-thread records and their thread-local cache, and the
//! garbage lists; it does not know what the retired objects are. A garbage list can hand an
//! expired object's allocation back for reuse instead of freeing it (the maps refill value
//! cells this way): the allocation is emptied under the same condition that would free it.
//!
//! # Checking
//! Every atomic, fence and thread-local here comes from `primitive`, so under `--cfg loom` the
//! protocol runs on loom's. The global domain is then one per model execution (dropped with
//! it), its readers use `SeqCst` fences (loom cannot model `membarrier`, so the asymmetric path
//! is not checked: neither is the fast path of [`pin`], which only a thread of a light-fence
//! domain takes and which is `Domain::pin` with that choice made), and threads keep their
//! records until the execution ends.
//! `tests/loom_read_mostly.rs` models the bare domain and, through the global domain,
//! `ReadMostlyMap` itself.

use std::any::Any;
use std::cell::Cell;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::ptr;

use std::sync::atomic::Ordering;

use super::barrier;
use super::primitive::{AtomicBool, AtomicPtr, AtomicU64, fence, global, store_own, thread_local};

/// Record state of a thread that is not pinned. A pinned record holds `epoch << 1 | 1`.
const IDLE: u64 = 0;

/// How many retirements a garbage list takes between two collections (a stamp and a look at
/// what expired: one fence, no system call). Small, so that a list of a map with many shards
/// keeps few retired cells in flight: they are the memory the next writes go to. Two under
/// loom, so that the models see a value stamped a retirement after its own.
#[cfg(not(loom))]
const COLLECT_EVERY: usize = 32;
#[cfg(loom)]
const COLLECT_EVERY: usize = 2;

/// How much a garbage list may hold before a collection tries to advance the epoch whatever
/// this thread did lately: the bound on a list's memory.
const COLLECT_BATCH: usize = 512;

/// How many retirements (to any list) a thread makes between two attempts to advance the epoch
/// (each a system call where readers use light fences): one advance serves every list, so the
/// rate is per thread, not per list. The system call interrupts every other core that runs a
/// thread of the process, which costs far more than the call itself (most of all in virtual
/// machines), so attempts are rare; each list's bound ([`COLLECT_BATCH`]) still caps what it
/// holds. (The loom models never reach it: their advances are the lists' bound and the maps'
/// explicit collections, the same `try_advance`.)
const ADVANCE_EVERY: usize = 4096;

/// One thread's published pin, alone on its cache line.
#[repr(C, align(128))]
pub struct Record {
    /// `IDLE`, or the pinned epoch shifted left by one with bit 0 set.
    state: AtomicU64,
    /// Whether a thread owns this record.
    in_use: AtomicBool,
    /// The next record of the domain's list (records are only pushed at the head).
    next: AtomicPtr<Record>,
}

/// The global epoch and the flags every pin reads, on a cache line that only advancing writes.
#[repr(C, align(128))]
struct EpochWord {
    epoch: AtomicU64,
    /// Whether readers may use a compiler fence (see the module docs). Set once, before any
    /// record of the domain is handed out.
    asymmetric: AtomicBool,
}

/// An epoch domain: a global epoch and the records of the threads that pin in it.
///
/// The maps share one process-wide domain reached through [`pin`] (under loom, one per model
/// execution); separate domains exist for the loom models of the bare protocol.
pub struct Domain {
    word: EpochWord,
    records: AtomicPtr<Record>,
}

impl Domain {
    /// A domain whose readers use `SeqCst` fences (no `membarrier`).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            word: EpochWord {
                epoch: AtomicU64::new(0),
                asymmetric: AtomicBool::new(false),
            },
            records: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The global domain's initial state (its fence choice is made by `init_global`).
    #[cfg(not(loom))]
    const fn new_global() -> Self {
        Self {
            word: EpochWord {
                epoch: AtomicU64::new(0),
                asymmetric: AtomicBool::new(false),
            },
            records: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The global domain of one loom execution: readers use `SeqCst` fences, which loom models
    /// (the `membarrier` path is not modelled).
    #[cfg(loom)]
    fn new_global() -> Self {
        Self::new()
    }

    #[inline(always)]
    fn asymmetric(&self) -> bool {
        self.word.asymmetric.load(Ordering::Relaxed)
    }

    /// Claims a free record of this domain, or adds one. The record stays claimed until
    /// [`release`](Self::release).
    pub fn register(&self) -> &Record {
        let mut cursor = self.records.load(Ordering::Acquire);
        // SAFETY: records are freed only by `Drop for Domain`, which has `&mut self`; they are
        // fully initialized before the release CAS that publishes them, so every pointer of the
        // list is valid for as long as `self` is borrowed.
        while let Some(record) = unsafe { cursor.as_ref() } {
            if !record.in_use.load(Ordering::Relaxed)
                && record
                    .in_use
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return record;
            }
            cursor = record.next.load(Ordering::Acquire);
        }
        let record = Box::into_raw(Box::new(Record {
            state: AtomicU64::new(IDLE),
            in_use: AtomicBool::new(true),
            next: AtomicPtr::new(ptr::null_mut()),
        }));
        let mut head = self.records.load(Ordering::Relaxed);
        loop {
            // SAFETY: `record` was just allocated and is not yet shared.
            unsafe { (*record).next.store(head, Ordering::Relaxed) };
            match self.records.compare_exchange_weak(
                head,
                record,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                // SAFETY: published records live as long as the domain (see above).
                Ok(_) => return unsafe { &*record },
                Err(current) => head = current,
            }
        }
    }

    /// Gives a record back for another thread to claim. It must not be pinned.
    pub fn release(&self, record: &Record) {
        debug_assert_eq!(record.state.load(Ordering::Relaxed), IDLE);
        record.in_use.store(false, Ordering::Release);
    }

    /// Publishes a pin of the current epoch in `record` (which the caller owns).
    #[inline(always)]
    pub fn pin(&self, record: &Record) {
        self.pin_fenced(record, self.asymmetric());
    }

    /// [`pin`](Self::pin) with the domain's fence choice already known (`asymmetric`: its
    /// readers use the light fence).
    #[inline(always)]
    fn pin_fenced(&self, record: &Record, asymmetric: bool) {
        let epoch = self.word.epoch.load(Ordering::Relaxed);
        // Release: a writer that sees this pin (and no unpin before it) must also see
        // everything this thread read under its previous pin as done. Without it, an advance
        // that reads this pin could follow one that read the previous pin, and neither would
        // be ordered after the previous pin's reads: the object they read could be freed under
        // them (the loom model of the map found this). A plain store on x86.
        store_own(&record.state, epoch << 1 | 1, Ordering::Release);
        // Orders the store above before the loads of shared pointers that follow the pin;
        // `try_advance` pairs with it (see the module docs).
        light_fence(asymmetric);
    }

    /// Clears the pin of `record`: everything read while pinned is no longer used.
    #[inline(always)]
    pub fn unpin(&self, record: &Record) {
        store_own(&record.state, IDLE, Ordering::Release);
    }

    /// The epoch to retire an object with; call it after the object was unlinked.
    pub fn retire_epoch(&self) -> u64 {
        fence(Ordering::SeqCst);
        self.word.epoch.load(Ordering::Relaxed)
    }

    /// Moves the global epoch forward by one if every pinned record shows the current epoch.
    /// Returns the global epoch as this call leaves it.
    pub fn try_advance(&self) -> u64 {
        // A writer that never pinned must still see whether readers use light fences.
        #[cfg(not(loom))]
        if ptr::eq(self, global()) {
            init_global();
        }
        let epoch = self.word.epoch.load(Ordering::Relaxed);
        heavy_fence(self.asymmetric());
        let mut cursor = self.records.load(Ordering::Acquire);
        // SAFETY: see `register`: list records live as long as the domain.
        while let Some(record) = unsafe { cursor.as_ref() } {
            let state = record.state.load(Ordering::Relaxed);
            if state & 1 == 1 && state >> 1 != epoch {
                return epoch;
            }
            cursor = record.next.load(Ordering::Acquire);
        }
        // Everything the readers did before unpinning happens before the advance.
        fence(Ordering::Acquire);
        match self.word.epoch.compare_exchange(
            epoch,
            epoch + 1,
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => epoch + 1,
            Err(current) => current,
        }
    }

    /// Whether an object retired at `retired_at` may be freed now.
    pub fn is_expired(&self, retired_at: u64) -> bool {
        self.word.epoch.load(Ordering::Acquire) >= retired_at + 2
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        let mut cursor = self.records.load(Ordering::Relaxed);
        while !cursor.is_null() {
            // SAFETY: with `&mut self` no thread uses the records any more; each was allocated
            // by `Box::new` in `register` and is freed once, here.
            let record = unsafe { Box::from_raw(cursor) };
            cursor = record.next.load(Ordering::Relaxed);
        }
    }
}

/// The reader's fence of a pin: a compiler fence when writers use heavy barriers.
#[inline(always)]
fn light_fence(asymmetric: bool) {
    if asymmetric {
        barrier::light();
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The advancing writer's fence, pairing with [`light_fence`].
fn heavy_fence(asymmetric: bool) {
    fence(Ordering::SeqCst);
    if asymmetric {
        barrier::heavy();
    }
}

global! {
    /// The process-wide domain of the maps (under loom, one per model execution, dropped
    /// with it).
    #[inline(always)]
    fn global() -> &'static Domain = Domain::new_global();
}

/// The calling thread's record in the global domain and how many guards it holds.
struct Local {
    /// The record, once registered.
    record: Cell<*const Record>,
    /// The record too if its pins may use the light fence (the domain's readers do), else
    /// null: the one word the fast path of [`pin`] checks, so that it neither tests for a
    /// missing record nor reads the domain's fence choice.
    fast: Cell<*const Record>,
    depth: Cell<usize>,
}

/// Gives the thread's record back when the thread exits. Not under loom: loom drops a thread's
/// thread-locals after the model's statics (the model thread's, after the execution's domain),
/// so there every thread keeps its record until the execution's domain is dropped.
#[cfg(not(loom))]
struct RecordOwner;

#[cfg(not(loom))]
impl Drop for RecordOwner {
    fn drop(&mut self) {
        LOCAL.with(|local| {
            // A guard still alive now (kept in another thread-local) keeps the record pinned
            // and claimed forever, like any guard that is never dropped.
            if local.depth.get() == 0 {
                local.fast.set(ptr::null());
                let record = local.record.replace(ptr::null());
                // SAFETY: records of the global domain are never freed.
                if let Some(record) = unsafe { record.as_ref() } {
                    global().release(record);
                }
            }
        });
    }
}

thread_local! {
    // No destructor: usable while other thread-locals are destroyed, and cheap to reach.
    static LOCAL: Local = const {
        Local {
            record: Cell::new(ptr::null()),
            fast: Cell::new(ptr::null()),
            depth: Cell::new(0),
        }
    };
}

#[cfg(not(loom))]
std::thread_local! {
    static OWNER: RecordOwner = const { RecordOwner };
}

/// A pin of the calling thread in the global domain: while any guard of a thread lives,
/// nothing retired after the pin began is freed. Guards nest; only the outermost one publishes
/// and clears the pin. `!Send`: it must be dropped by the thread that pinned.
pub(crate) struct EpochGuard {
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared reference to a pin gives access to nothing; it only keeps the owning
// thread pinned until that thread drops it (it stays `!Send`).
unsafe impl Sync for EpochGuard {}

/// Pins the calling thread (see [`EpochGuard`]).
#[inline(always)]
pub(crate) fn pin() -> EpochGuard {
    LOCAL.with(|local| {
        let depth = local.depth.get();
        if depth == 0 {
            // SAFETY: a non-null record pointer in `LOCAL` points to a record of the global
            // domain, claimed by this thread; global records are never freed.
            match unsafe { local.fast.get().as_ref() } {
                // The fence choice is known: no load of the domain's flag.
                Some(record) => global().pin_fenced(record, true),
                // Readers that fence (no asymmetric barrier on this system): the record is
                // still reached inline; only a thread's first pin registers, out of line.
                // SAFETY: as above.
                None => match unsafe { local.record.get().as_ref() } {
                    Some(record) => global().pin(record),
                    None => pin_first(local),
                },
            }
        }
        local.depth.set(depth + 1);
    });
    EpochGuard {
        _not_send: PhantomData,
    }
}

/// Tries to move the global epoch forward `times` times (on Linux each attempt is a
/// `membarrier` system call); an attempt fails while a reader is pinned at an older epoch.
pub(crate) fn advance_epoch(times: usize) {
    for _ in 0..times {
        global().try_advance();
    }
}

/// Decides, once per process and before any record of the global domain is handed out, whether
/// its readers use light fences. Every thread that pins or advances passes here first, and the
/// `Once` orders the decision before what it does next.
#[cfg(not(loom))]
fn init_global() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        global()
            .word
            .asymmetric
            .store(barrier::available(), Ordering::Relaxed);
    });
}

/// The first pin of a thread: claims its record of the global domain, then pins.
#[cold]
#[inline(never)]
fn pin_first(local: &Local) {
    #[cfg(not(loom))]
    init_global();
    let record = global().register();
    local.record.set(record);
    if global().asymmetric() {
        local.fast.set(record);
    }
    // Registers the destructor that gives the record back. During thread exit (after that
    // destructor ran) the record simply stays claimed.
    #[cfg(not(loom))]
    let _ = OWNER.try_with(|_| ());
    global().pin(record);
}

impl Drop for EpochGuard {
    #[inline(always)]
    fn drop(&mut self) {
        LOCAL.with(|local| {
            let depth = local.depth.get() - 1;
            local.depth.set(depth);
            if depth == 0 {
                let record = local.record.get();
                debug_assert!(!record.is_null());
                // SAFETY: the pin this guard belongs to set the record (`pin`, `pin_first`);
                // only the thread-exit destructor clears it, and not while a guard lives.
                global().unpin(unsafe { &*record });
            }
        });
    }
}

/// What happens to a retired object once no reader can reach it.
pub(crate) struct Disposal {
    /// Frees the object.
    pub(crate) free: unsafe fn(*mut ()),
    /// For an object whose allocation may be reused: how its contents are dropped in place,
    /// leaving the allocation to the garbage list's spares.
    pub(crate) recycle: Option<Recycle>,
}

/// How a recyclable object is emptied. Its allocation is not the garbage list's to free: the
/// list hands it back through [`Garbage::take_spare`] and otherwise forgets it, and whoever
/// allocated it frees its memory (a map frees its value cells with their chunks).
pub(crate) struct Recycle {
    /// Drops the contents, leaving an allocation that holds nothing; `None` when the contents
    /// need no drop (the allocation then becomes a spare as it is, without a call).
    pub(crate) drop_contents: Option<unsafe fn(*mut ())>,
}

/// An object waiting to be freed.
struct Retired {
    ptr: *mut (),
    disposal: &'static Disposal,
    /// The call that retired it, for the report of a drop that panics.
    site: &'static Location<'static>,
    /// The epoch read after it was unlinked ([`UNSTAMPED`] until the list stamps it).
    epoch: u64,
}

/// The epoch of a retired object whose epoch is not read yet: it never expires.
const UNSTAMPED: u64 = u64::MAX - 2;

/// Objects retired by one writer side (one shard of a map, under its lock), freed once no
/// reader can reach them any more; and the spare allocations of recyclable ones.
///
/// Retiring only appends the object to the list: the epoch it expires by is read later, for
/// all objects retired since the last reading at once (*stamping*, behind one `SeqCst` fence),
/// whenever the list collects. An epoch read after the unlink and its fence is all that expiry
/// needs; a later one only makes the object wait longer, so a stamp is as safe as a reading at
/// each retirement, which paid a fence every time.
///
/// Recyclable objects (a map's values) have a lane of their own, `cells`, oldest first: the
/// stamped batches, then the unstamped ones. A batch that expires moves to the *spares*
/// (emptied allocations, a stack handed out most recently expired first: those were touched
/// last, so a write into one finds its line in a cache more often), its contents dropped only
/// if they need it: a value is visited one by one neither when it is retired nor, if it needs
/// no drop, when it expires. Other objects (tables) go to `items`,
/// each with its epoch.
///
/// Every [`COLLECT_EVERY`] of weight retired, the owner's
/// [`collect_if_due`](Self::collect_if_due) stamps and frees what has expired. It also tries
/// to advance the epoch (a system call where readers use light fences, so not on every
/// retirement) once the thread made [`ADVANCE_EVERY`] retirements to any list since its last
/// attempt, or when the list holds more than half of [`COLLECT_BATCH`]: the list is bounded
/// whatever other threads do. Objects expire in the order they were retired: the epochs they
/// are stamped with only grow.
///
/// The fields are laid out in this order, those every retirement and every spare taken touch
/// first, so that with its owner's lock and counts (see the map's `Writer`) they take two
/// cache lines: a write from another core then moves two lines, not five.
#[repr(C)]
pub(crate) struct Garbage {
    /// The weight retired since the last collection plus what that collection left (one per
    /// object), compared with `collect_at`.
    weight: usize,
    collect_at: usize,
    /// Unstamped allocations at the back of `cells`.
    unstamped: usize,
    /// The disposal of every recyclable object of the list (set with the first one).
    recyclable: Option<&'static Disposal>,
    /// Emptied allocations of expired recyclable objects, the most recently expired last.
    spares: Vec<*mut ()>,
    /// Recyclable objects: the retired ones of `batches`, then the unstamped rest.
    cells: VecDeque<*mut ()>,
    /// `weight` as the last collection left it.
    collected: usize,
    /// The call that retired each of `cells`, in the same order, kept only
    /// for contents whose drop can run user code (and so panic, which the report names it
    /// for). Contents that need no drop leave it empty: their batches then become spares
    /// without a visit.
    cell_sites: VecDeque<&'static Location<'static>>,
    /// Stamped batches at the front of `cells`, oldest first: how many, and their epoch.
    batches: VecDeque<(usize, u64)>,
    /// Non-recyclable objects, oldest first; expired ones leave from the front.
    items: VecDeque<Retired>,
}

thread_local! {
    /// Retirements (their weight) by this thread since its last attempt to advance the epoch.
    static RETIRED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: a `Garbage` only holds pointers to objects that no thread uses any more except
// pinned readers, which only read them, and emptied allocations that nothing uses; the owner
// (a map) requires its keys and values to be `Send` to be `Send` itself, so freeing them on
// another thread is allowed.
unsafe impl Send for Garbage {}

impl Garbage {
    pub(crate) fn new() -> Self {
        Self {
            items: VecDeque::new(),
            cells: VecDeque::new(),
            cell_sites: VecDeque::new(),
            spares: Vec::new(),
            batches: VecDeque::new(),
            unstamped: 0,
            recyclable: None,
            weight: 0,
            collected: 0,
            collect_at: COLLECT_EVERY,
        }
    }

    /// How many objects wait to be freed.
    pub(crate) fn len(&self) -> usize {
        self.items.len() + self.cells.len()
    }

    /// Retires `ptr`, to be disposed of by `disposal` once no reader can hold it. `weight` is
    /// its size in units of about 64 bytes (at least 1), so that large objects such as tables
    /// are collected sooner: see [`collect_if_due`](Self::collect_if_due). `site` is the call
    /// that retired it, named if its drop panics.
    ///
    /// # Safety
    /// - `ptr` is no longer reachable from the shared structure: a reader that pins from now on
    ///   cannot find it.
    /// - `(disposal.free)(ptr)` is sound once no reader holds it, and nothing else frees `ptr`;
    ///   with `disposal.recycle`, so is its `drop_contents(ptr)`, after which the allocation
    ///   must stay valid (a spare, which [`take_spare`] may hand out) until this list is
    ///   dropped or [`forget_spares`](Self::forget_spares) is called: only then may its owner
    ///   free it.
    /// - Every recyclable object retired to this list has the same `disposal` and allocation
    ///   layout (the list hands spares out by [`take_spare`]).
    ///
    /// [`take_spare`]: Self::take_spare
    #[inline]
    pub(crate) unsafe fn retire(
        &mut self,
        ptr: *mut (),
        disposal: &'static Disposal,
        weight: usize,
        site: &'static Location<'static>,
    ) {
        self.weight += weight.max(1);
        if disposal.recycle.is_some() {
            debug_assert!(self.recyclable.is_none_or(|known| ptr::eq(known, disposal)));
            self.recyclable = Some(disposal);
            if self.cells.len() == self.cells.capacity() {
                self.grow_cells();
            }
            self.cells.push_back(ptr);
            if disposal
                .recycle
                .as_ref()
                .is_some_and(|r| r.drop_contents.is_some())
            {
                self.cell_sites.push_back(site);
            }
            self.unstamped += 1;
        } else {
            self.items.push_back(Retired {
                ptr,
                disposal,
                site,
                epoch: UNSTAMPED,
            });
        }
    }

    /// Makes room for a batch more at once (a list that gets retirements gets many).
    #[cold]
    #[inline(never)]
    fn grow_cells(&mut self) {
        let more = COLLECT_BATCH.max(self.cells.len());
        self.cells.reserve(more);
        if self
            .recyclable
            .and_then(|d| d.recycle.as_ref())
            .is_some_and(|r| r.drop_contents.is_some())
        {
            self.cell_sites.reserve(more);
        }
    }

    /// Collects (stamps, frees what expired, advances the epoch if much is left) once a batch
    /// of weight was retired since the last collection. The owner calls it before it pins, if
    /// it can: an advance has to wait for every pinned thread, this one too.
    ///
    /// # Errors
    /// The first of the drops that panicked meanwhile (see [`DropPanic`]).
    #[inline(always)]
    pub(crate) fn collect_if_due(&mut self) -> Result<(), DropPanic> {
        if self.weight >= self.collect_at {
            return self.collect_some();
        }
        Ok(())
    }

    /// An emptied allocation of a recyclable object that no reader can reach any more, of the
    /// layout every recyclable object of this list has. The caller owns it: it writes new
    /// contents into it, or leaves it to the allocation's owner.
    #[inline]
    pub(crate) fn take_spare(&mut self) -> Option<*mut ()> {
        self.spares.pop()
    }

    /// The allocation [`take_spare`](Self::take_spare) would hand out next, without taking it
    /// (for a prefetch: the caller must not access it).
    #[inline]
    pub(crate) fn next_spare(&self) -> Option<*mut ()> {
        self.spares.last().copied()
    }

    /// The periodic collection of [`collect_if_due`](Self::collect_if_due): stamps, frees what
    /// expired, and advances the epoch only if that left more than half a batch (another
    /// list's advance often did the work already).
    #[cold]
    #[inline(never)]
    fn collect_some(&mut self) -> Result<(), DropPanic> {
        let domain = global();
        let mut panicked = DropPanics::default();
        let retired = self.weight - self.collected;
        self.stamp(domain);
        self.free_expired(domain, &mut panicked);
        // An object expires two advances after its retirement. This thread tries them once
        // it retired enough anywhere, or when this list holds too much.
        let due = RETIRED.with(|count| {
            let total = count.get() + retired;
            let due = total >= ADVANCE_EVERY;
            count.set(if due { 0 } else { total });
            due
        });
        if due || self.len() > COLLECT_BATCH / 2 {
            for _ in 0..2 {
                domain.try_advance();
                self.free_expired(domain, &mut panicked);
                if self.len() <= COLLECT_BATCH / 2 && !due {
                    break;
                }
            }
        }
        self.weight = self.len();
        self.collected = self.len();
        self.collect_at = self.len() + COLLECT_EVERY;
        panicked.into_result()
    }

    /// Stamps what is unstamped and frees what has expired (it does not advance the epoch:
    /// the caller does, once for all its lists), then gives the list's memory back if it
    /// holds nothing.
    ///
    /// # Errors
    /// The first of the drops that panicked meanwhile (see [`DropPanic`]).
    pub(crate) fn collect(&mut self) -> Result<(), DropPanic> {
        let domain = global();
        let mut panicked = DropPanics::default();
        self.stamp(domain);
        self.free_expired(domain, &mut panicked);
        if self.items.is_empty() {
            // Give the list's memory back too: after a `clear`, nothing of the map is left.
            self.items = VecDeque::new();
        }
        self.weight = self.len();
        self.collected = self.len();
        self.collect_at = self.len() + COLLECT_EVERY;
        panicked.into_result()
    }

    /// Stamps what was retired since the last stamp (see [`Garbage`]): advances made after
    /// this call count towards its expiry.
    pub(crate) fn stamp_now(&mut self) {
        self.stamp(global());
    }

    /// Forgets the spare allocations, whose owner is about to free their memory (see
    /// [`Recycle`]), and gives the lists' own memory back if no retired cell is left.
    pub(crate) fn forget_spares(&mut self) {
        self.spares = Vec::new();
        if self.cells.is_empty() {
            self.cells = VecDeque::new();
            self.cell_sites = VecDeque::new();
            self.batches = VecDeque::new();
        }
    }

    /// Gives every object retired since the last stamp the epoch read now, after a `SeqCst`
    /// fence: every one of them was unlinked before it was retired, so before this fence.
    #[inline(never)]
    fn stamp(&mut self, domain: &Domain) {
        let items = self
            .items
            .iter()
            .rev()
            .take_while(|item| item.epoch == UNSTAMPED);
        let unstamped_items = items.count();
        if unstamped_items == 0 && self.unstamped == 0 {
            return;
        }
        let epoch = domain.retire_epoch();
        let len = self.items.len();
        for item in self.items.range_mut(len - unstamped_items..) {
            item.epoch = epoch;
        }
        if self.unstamped > 0 {
            self.batches.push_back((self.unstamped, epoch));
            self.unstamped = 0;
        }
    }

    /// Frees (or empties into spares) the objects that expired: a prefix of the stamped ones
    /// of each lane, since they were retired under the owner's lock and stamped in turn with
    /// epochs read from the global epoch, which only grows. A drop that panics is caught and
    /// noted in `panicked`, and the rest are freed all the same: an object's drop runs once,
    /// whether it returns or panics.
    fn free_expired(&mut self, domain: &Domain, panicked: &mut DropPanics) {
        let drop_contents = self
            .recyclable
            .and_then(|disposal| disposal.recycle.as_ref())
            .and_then(|recycle| recycle.drop_contents);
        while let Some(&(count, epoch)) = self.batches.front() {
            if !domain.is_expired(epoch) {
                break;
            }
            self.batches.pop_front();
            if let Some(drop_contents) = drop_contents {
                let sites = self.cell_sites.drain(..count);
                for (&cell, site) in self.cells.range(..count).zip(sites) {
                    // SAFETY: expired (see below), so no reader holds it; `retire`'s contract
                    // allows emptying it and keeping the allocation, which is then only
                    // reachable from the spares.
                    panicked.run(site, || unsafe { drop_contents(cell) });
                }
            }
            // The batch becomes spares, whether its contents' drops returned or panicked.
            self.spares.extend(self.cells.drain(..count));
        }
        // Unstamped items (the back) never count as expired.
        let expired = self
            .items
            .partition_point(|item| domain.is_expired(item.epoch));
        for item in self.items.drain(..expired) {
            // SAFETY: the epoch moved twice since the object was unlinked, so every reader
            // that could have found it has unpinned (module docs); `retire`'s contract says
            // `free` is sound then and nothing else frees it.
            panicked.run(item.site, || unsafe { (item.disposal.free)(item.ptr) });
        }
    }
}

/// A drop (of a retired object's contents) that panicked while a garbage list freed what had
/// expired: the list freed everything else all the same, and hands the first such panic to
/// its owner, which reports it with the call that was collecting.
pub(crate) struct DropPanic {
    /// The call that retired the object whose drop panicked first.
    pub(crate) retired_at: &'static Location<'static>,
    /// What that drop panicked with.
    pub(crate) payload: Box<dyn Any + Send>,
    /// How many drops panicked in all.
    pub(crate) count: usize,
}

impl DropPanic {
    /// What the first drop panicked with, if it was a message.
    pub(crate) fn message(&self) -> &str {
        if let Some(text) = self.payload.downcast_ref::<&str>() {
            text
        } else if let Some(text) = self.payload.downcast_ref::<String>() {
            text
        } else {
            "a non-string payload"
        }
    }

    /// The first of `self` and a later `other`, counting both.
    pub(crate) fn merge(mut self, other: Self) -> Self {
        self.count += other.count;
        self
    }
}

/// The drops of one collection that panicked (see [`DropPanic`]).
#[derive(Default)]
struct DropPanics(Option<DropPanic>);

impl DropPanics {
    /// Runs one drop, catching its panic.
    #[inline]
    fn run(&mut self, site: &'static Location<'static>, drop: impl FnOnce()) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(drop)) {
            self.note(site, payload);
        }
    }

    #[cold]
    fn note(&mut self, site: &'static Location<'static>, payload: Box<dyn Any + Send>) {
        match &mut self.0 {
            Some(first) => first.count += 1,
            None => {
                self.0 = Some(DropPanic {
                    retired_at: site,
                    payload,
                    count: 1,
                })
            }
        }
    }

    fn into_result(self) -> Result<(), DropPanic> {
        self.0.map_or(Ok(()), Err)
    }
}

impl Drop for Garbage {
    fn drop(&mut self) {
        // A `Garbage` is owned by a map shard and dropped only with the map, that is with
        // exclusive access: no reference into the map, hence no reader of these objects, is
        // left.
        let mut panicked = DropPanics::default();
        for item in self.items.drain(..) {
            // SAFETY: see above; each object is freed once, as `retire` allows.
            panicked.run(item.site, || unsafe { (item.disposal.free)(item.ptr) });
        }
        if let Some(disposal) = self.recyclable {
            // Without sites, the contents need no drop: freeing them cannot panic, and the
            // site is never reported.
            let mut sites = self.cell_sites.drain(..);
            // Spares (emptied already) are not in `cells`.
            for cell in self.cells.drain(..) {
                let site = sites.next().unwrap_or(Location::caller());
                // SAFETY: as above; not a spare, so its contents were not dropped.
                panicked.run(site, || unsafe { (disposal.free)(cell) });
            }
            self.batches.clear();
            self.unstamped = 0;
        }
        self.forget_spares();
        // Everything is freed; a drop that panicked is reported now, unless the map is being
        // dropped by a panic already (a second panic would abort).
        if let Err(first) = panicked.into_result()
            && !std::thread::panicking()
        {
            first.raise("a ReadMostlyMap was dropped");
        }
    }
}

impl DropPanic {
    /// Panics with the report: what was going on (`during`), the call that retired the
    /// object, and what its drop panicked with.
    #[cold]
    pub(crate) fn raise(self, during: &str) -> ! {
        let others = match self.count {
            1 => String::new(),
            n => format!(" ({} more drops panicked too)", n - 1),
        };
        panic!(
            "mapguard: a value's Drop panicked while {during}: the value had been replaced or \
             removed by the call at {}, and its drop panicked with: {}{others}. Every other \
             value due to be freed was freed.",
            self.retired_at,
            self.message(),
        )
    }
}
