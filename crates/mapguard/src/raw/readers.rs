//! Per-thread reader records: where a thread announces the shard locks it reads.
//!
//! Each thread that reads a [`ShardLock`](super::ShardLock) owns one [`ReaderRecord`]: a
//! cache-line-aligned array of slots, each holding the address of a lock the thread reads, or 0.
//! A reader writes only its own record, so reads on two cores never write a shared cache line.
//! A writer reads every record (there is one per live reading thread) and waits until none of
//! them names its lock. A thread holding a single read publishes it in slot 0, and a word
//! beside the slots says whether any other slot is in use, so a writer reads two words of a
//! record (slot 0 and that word), and all slots only of a thread that holds several reads.
//!
//! Records are never freed: when a thread exits, its record is marked free and the next new
//! thread takes it over, so the list is as long as the largest number of threads that were
//! reading at once.
//!
//! The thread-local bookkeeping ([`LocalReader`]) mirrors the published slots without atomics
//! and counts recursive reads of the same lock, so that a thread reading a lock it already reads
//! never publishes twice and never waits for a writer (which would wait for it in turn).

use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{Ordering, compiler_fence};

use super::primitive::{AtomicBool, AtomicPtr, AtomicUsize, global, thread_local};
use super::waitfor::{SiteCell, WaitRecord};

/// Number of distinct locks a thread can read at once through its own record. Reads beyond
/// this many distinct locks fall back to the lock's shared reader count.
/// Four: most threads hold at most a couple of guards at a time. A writer reads slot 0 and the
/// record's [`high`](ReaderRecord::high) word of every record, and the other slots only of a
/// record whose thread holds more than one read (see [`ReaderRecord::may_name`]).
pub(crate) const SLOTS: usize = 4;

/// The `used` mask with every slot taken.
pub(crate) const ALL_SLOTS: u8 = (1 << SLOTS) - 1;

/// The `used` bits of every slot but slot 0 (what [`ReaderRecord::high`] mirrors).
pub(crate) const HIGH_SLOTS: u8 = ALL_SLOTS & !1;

/// One thread's published reads. Aligned to 128 bytes so that no two threads' records share a
/// cache line (or an adjacent-line prefetch pair).
#[repr(C, align(128))]
pub(crate) struct ReaderRecord {
    /// Address of the lock read through each slot, or 0 when the slot is free.
    pub(crate) held: [AtomicUsize; SLOTS],
    /// Where each slot's read was taken, on the slot's own line: deadlock reports (this
    /// thread's and other threads') name it.
    pub(crate) sites: [SiteCell; SLOTS],

    /// The slots other than slot 0 that may be in use, as a `used` mask (see
    /// [`HIGH_SLOTS`]): set before such a slot is published, cleared after it is released.
    /// Slot 0 is the only one a thread holding a single read uses, so a writer looks at slot
    /// 0 and at this word, and at the other slots only when this word says so (see
    /// `ShardLock::wait_for_records`).
    pub(crate) high: AtomicUsize,
    /// Whether a live thread owns this record.
    in_use: AtomicBool,
    /// The next record in the global list (records are only ever pushed at the head).
    next: AtomicPtr<ReaderRecord>,
    /// What the thread waits for, for cross-thread deadlock detection (its own lines).
    pub(crate) wait: WaitRecord,
}

global! {
    /// Head of the global list of records.
    fn records_head() -> &'static AtomicPtr<ReaderRecord> = AtomicPtr::new(ptr::null_mut());
}

/// The records that exist now. Records pushed during the walk may be missed; that is fine for
/// writers, which hold their lock's writer word before walking (see `ShardLock::write`): a
/// reader that registers later sees the word and backs off.
#[inline]
pub(crate) fn records() -> Records {
    // SeqCst: a writer walks after its SeqCst CAS of the writer word; a reader registers its
    // record (SeqCst) before it publishes a read (SeqCst). In the single order of SeqCst
    // operations, a reader whose read the writer must see registered before the walk starts.
    Records {
        cursor: records_head().load(Ordering::SeqCst),
    }
}

/// Iterator over the global list of records, from [`records`].
pub(crate) struct Records {
    cursor: *mut ReaderRecord,
}

impl Iterator for Records {
    type Item = &'static ReaderRecord;

    #[inline]
    fn next(&mut self) -> Option<&'static ReaderRecord> {
        // SAFETY: records are leaked `Box`es that are never freed, and `next` pointers are set
        // before a record is published with a SeqCst CAS, so every pointer reached here is
        // valid for the rest of the program.
        let record = unsafe { self.cursor.as_ref() }?;
        self.cursor = record.next.load(Ordering::Acquire);
        Some(record)
    }
}

fn claim_record() -> &'static ReaderRecord {
    let reused = records().find(|record| {
        !record.in_use.load(Ordering::Relaxed)
            && record
                .in_use
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
    });
    if let Some(record) = reused {
        return record;
    }
    let record: &'static ReaderRecord = Box::leak(Box::new(ReaderRecord {
        held: std::array::from_fn(|_| AtomicUsize::new(0)),
        sites: std::array::from_fn(|_| SiteCell::new()),
        high: AtomicUsize::new(0),
        in_use: AtomicBool::new(true),
        next: AtomicPtr::new(ptr::null_mut()),
        wait: WaitRecord::new(),
    }));
    let mut head = records_head().load(Ordering::Relaxed);
    loop {
        record.next.store(head, Ordering::Relaxed);
        match records_head().compare_exchange_weak(
            head,
            record as *const ReaderRecord as *mut ReaderRecord,
            Ordering::SeqCst,
            Ordering::Relaxed,
        ) {
            Ok(_) => return record,
            Err(current) => head = current,
        }
    }
}

/// A read that went past the thread's slots: the lock, how many times this thread holds it
/// through the lock's shared count (always once; recursion is counted here), and the site.
pub(crate) struct OverflowHold {
    pub(crate) lock: usize,
    pub(crate) count: u32,
    pub(crate) site: &'static Location<'static>,
    /// The lockdep registration of this span of reads.
    #[cfg(feature = "lockdep")]
    pub(crate) token: lockdep::foreign::Token,
}

impl OverflowHold {
    /// The first read of `lock` through the overflow list, taken at `site`.
    pub(crate) fn new(lock: usize, site: &'static Location<'static>) -> Self {
        Self {
            lock,
            count: 1,
            site,
            #[cfg(feature = "lockdep")]
            token: Default::default(),
        }
    }
}

/// The calling thread's view of its record: everything the read fast path touches, with no
/// destructor, so that reaching it is a plain thread-local access (no lazy-initialization or
/// liveness check). What needs a destructor lives in [`COLD`], reached only off the fast path.
pub(crate) struct LocalReader {
    /// The claimed record; meaningful only while `used` has no [`UNCLAIMED`] bit.
    record: Cell<*const ReaderRecord>,
    /// Bit `n` is set while slot `n` is in use; [`UNCLAIMED`] while the thread has no record
    /// (before its first read, and after its thread-local destructors gave it back), so that
    /// the fast path's single `used == 0` test also rules that case out.
    pub(crate) used: Cell<u8>,
    /// Bit `n` is set while slot `n` holds a read of a write-heavy shard, counted in the
    /// shard's shared reader count (which the last release gives back).
    pub(crate) counted: Cell<u8>,
    /// Counts fenced reads, to look at the clock only once in a while.
    fenced_reads: Cell<u32>,
    /// Non-atomic mirror of `record.held` (meaningful for the slots marked in `used`).
    pub(crate) locks: [Cell<usize>; SLOTS],
    /// Recursion count per slot.
    pub(crate) counts: [Cell<u32>; SLOTS],
    /// Whether the overflow list in [`COLD`] is non-empty, readable without reaching it.
    pub(crate) overflowed: Cell<bool>,
    /// Set as the thread's reader state is destroyed with reads still published (leaked
    /// guards): from then on no read counts as a re-read of one of them (see
    /// [`forget_exited_reads`]).
    pub(crate) exited: Cell<bool>,
}

/// A fenced reader considers the shard's mode once in this many reads (see
/// [`LocalReader::tick`]); under loom every second read, so that the models reach the readers'
/// mode changes, which take the writer word for an instant.
#[cfg(not(loom))]
const TICK_READS: u32 = 256;
#[cfg(loom)]
const TICK_READS: u32 = 2;

/// The `used` bit of a thread that has no record.
pub(crate) const UNCLAIMED: u8 = 1 << 7;

/// The part of a thread's reader state that needs a destructor: the overflow list, lockdep
/// registrations, and giving the record back when the thread exits.
pub(crate) struct LocalCold {
    /// Reads beyond `SLOTS` distinct locks.
    pub(crate) overflow: RefCell<Vec<OverflowHold>>,
    /// The lockdep registration of each slot's span of reads (first read to last release).
    #[cfg(feature = "lockdep")]
    pub(crate) tokens: [Cell<lockdep::foreign::Token>; SLOTS],
}

impl ReaderRecord {
    /// Whether a live thread owns this record. A free record has no read published (a thread
    /// gives its record up only with every slot empty). SeqCst on both sides: a thread claims
    /// its record (SeqCst CAS) before it publishes any read, so a look whose SeqCst load finds
    /// the record free comes before that claim in the single SeqCst order.
    #[inline]
    #[cfg_attr(loom, allow(dead_code))] // Deadlock detection, which loom models leave out.
    pub(crate) fn in_use(&self) -> bool {
        self.in_use.load(Ordering::SeqCst)
    }

    /// Whether slot 0 names `lock`, or another slot may (what a writer of `lock` must look
    /// at more closely): two loads, whatever the number of slots.
    ///
    /// SeqCst, as the reader's stores are: a reader sets [`high`](Self::high) before it
    /// publishes a slot other than 0 and checks the writer word after, so a writer whose
    /// load of `high` comes before that store in the single SeqCst order also comes before
    /// the reader's check, which then sees the writer.
    #[inline(always)]
    pub(crate) fn may_name(&self, lock: usize) -> bool {
        self.held[0].load(Ordering::SeqCst) == lock || self.high.load(Ordering::SeqCst) != 0
    }
}

impl LocalReader {
    /// The thread's record.
    ///
    /// Only meaningful while `used` has no [`UNCLAIMED`] bit (checked in debug builds).
    #[inline(always)]
    pub(crate) fn record(&self) -> &'static ReaderRecord {
        debug_assert_eq!(self.used.get() & UNCLAIMED, 0);
        // SAFETY: while `used` has no `UNCLAIMED` bit, `record` was set by `claim` to a
        // record leaked by `claim_record` (records are never freed).
        unsafe { &*self.record.get() }
    }

    /// Claims a record for this thread if it has none; false if it cannot (its thread-local
    /// destructors are running or have run).
    #[cold]
    #[inline(never)]
    pub(crate) fn claim(&self) -> bool {
        if self.used.get() & UNCLAIMED == 0 {
            return true;
        }
        // Registers the destructor that gives the record back; fails once it has run.
        if COLD.try_with(|_| ()).is_err() {
            return false;
        }
        let record = claim_record();
        // Named for deadlock reports before any read or wait is published in it.
        record.wait.claimed_by(thread_tag());
        self.record.set(record);
        self.used.set(self.used.get() & !UNCLAIMED);
        true
    }

    /// True once every [`TICK_READS`] calls: time for a fenced reader to check whether its shard may
    /// become reader-biased again.
    #[inline]
    pub(crate) fn tick(&self) -> bool {
        let n = self.fenced_reads.get().wrapping_add(1);
        self.fenced_reads.set(n);
        n.is_multiple_of(TICK_READS)
    }

    /// The site of a read this thread holds on `lock`, if it holds one.
    pub(crate) fn held_site(&self, lock: usize) -> Option<&'static Location<'static>> {
        let mut used = self.used.get() & ALL_SLOTS;
        while used != 0 {
            let slot = used.trailing_zeros() as usize;
            used &= used - 1;
            if self.locks[slot].get() == lock {
                return self.record().sites[slot].get();
            }
        }
        if !self.overflowed.get() {
            return None;
        }
        COLD.try_with(|cold| {
            cold.overflow
                .borrow()
                .iter()
                .find(|hold| hold.lock == lock)
                .map(|hold| hold.site)
        })
        .ok()
        .flatten()
    }

    /// Publishes in the record's [`high`](ReaderRecord::high) word that `slot` (not slot 0)
    /// is about to be used, before the slot itself is published.
    #[inline]
    pub(crate) fn announce_high(&self, slot: usize) {
        let high = (self.used.get() | (1 << slot)) & HIGH_SLOTS;
        self.record()
            .high
            .store(usize::from(high), Ordering::SeqCst);
        // The slot's own store may be relaxed (a reader-biased shard): keep it after this one.
        compiler_fence(Ordering::SeqCst);
    }

    /// Brings the record's [`high`](ReaderRecord::high) word back to the slots `used` marks
    /// (after a slot other than 0 was released, or a publish in one failed).
    #[inline]
    pub(crate) fn settle_high(&self) {
        let high = self.used.get() & HIGH_SLOTS;
        self.record()
            .high
            .store(usize::from(high), Ordering::Release);
    }

    /// Whether this thread holds any read at all (the write path's cheap pre-check).
    #[inline(always)]
    pub(crate) fn holds_reads(&self) -> bool {
        self.used.get() & ALL_SLOTS != 0 || self.overflowed.get()
    }

    /// Remembers a read of `lock` that went through the lock's shared count.
    pub(crate) fn push_overflow(&self, lock: usize, site: &'static Location<'static>) {
        let pushed = COLD.try_with(|cold| {
            cold.overflow
                .borrow_mut()
                .push(OverflowHold::new(lock, site));
        });
        if pushed.is_ok() {
            self.overflowed.set(true);
            // Such reads are anonymous in the lock's count: name them for deadlock detection
            // (the mirror follows the cold list: both or neither).
            self.record().wait.add_overflow(lock, site);
        }
    }
}

impl LocalCold {
    fn new() -> Self {
        Self {
            overflow: RefCell::new(Vec::new()),
            #[cfg(feature = "lockdep")]
            tokens: Default::default(),
        }
    }
}

impl Drop for LocalCold {
    fn drop(&mut self) {
        // Guards are `!Send` and borrow from thread-locals' owners only through the lock, so a
        // slot can only still be set here if a guard was leaked with `mem::forget`. Such a lock
        // stays read-locked forever, exactly as a leaked guard of any lock would; do not hand
        // the record to another thread with that read still published. (`LOCAL` has no
        // destructor with `std`; under loom, which destroys every thread-local, it may be gone
        // already, and the record then stays claimed, which loom's writers ignore anyway.)
        //
        // Such a record is marked as its thread's last word instead (a read leaked through
        // the overflow list too): a writer that waits for one of its reads reports the leak,
        // naming the thread and the read's site, instead of waiting forever.
        let leaked_overflow = !self.overflow.get_mut().is_empty();
        let _ = LOCAL.try_with(|local| {
            let used = local.used.get();
            if used & UNCLAIMED != 0 {
                return;
            }
            if used & ALL_SLOTS == 0 && !leaked_overflow {
                local.record().in_use.store(false, Ordering::SeqCst);
                local.used.set(UNCLAIMED);
            } else {
                local.exited.set(true);
                local.record().wait.mark_exited();
            }
        });
    }
}

thread_local! {
    /// This thread's reader state for the fast path (const-initialized, no destructor).
    pub(crate) static LOCAL: LocalReader = const {
        LocalReader {
            record: Cell::new(ptr::null()),
            used: Cell::new(UNCLAIMED),
            counted: Cell::new(0),
            fenced_reads: Cell::new(0),
            locks: [const { Cell::new(0) }; SLOTS],
            counts: [const { Cell::new(0) }; SLOTS],
            overflowed: Cell::new(false),
            exited: Cell::new(false),
        }
    };
}

/// Clears the reads of `lock` that threads which have exited left published (guards they
/// leaked), as `lock` goes away: a new lock at the same address must not inherit them.
///
/// Only records marked exited are touched. Their threads take no re-read through their
/// bookkeeping any more ([`LocalReader::exited`]), and a guard of theirs still alive (one kept
/// in a thread-local destroyed later) borrows its lock, which then is not going away.
pub(crate) fn forget_exited_reads(lock: usize) {
    for record in records() {
        if !record.wait.has_exited() {
            continue;
        }
        for held in &record.held {
            if held.load(Ordering::Relaxed) == lock {
                held.store(0, Ordering::Release);
            }
        }
        record.wait.remove_all_overflow(lock);
    }
}

/// The calling thread's [`LocalReader`], without a closure (so that the fast paths inline).
///
/// `LOCAL` has no destructor: its storage is valid from the thread's start to its very end,
/// so a reference to it is valid for as long as the thread can run code. `LocalReader` is
/// `!Sync`, so the reference cannot leave the thread.
#[inline(always)]
pub(crate) fn local() -> &'static LocalReader {
    let local: *const LocalReader = LOCAL.with(ptr::from_ref);
    // SAFETY: see above: the pointee lives as long as the calling thread, and the reference
    // cannot be sent to another thread.
    unsafe { &*local }
}

thread_local! {
    /// The rest of this thread's reader state, created with its record.
    pub(crate) static COLD: LocalCold = LocalCold::new();
}

/// A thread-local whose address identifies its thread; aligned so that the address has its
/// three low bits clear (a shard lock keeps its mode and a flag there, beside the writer's
/// tag).
#[repr(align(8))]
pub(crate) struct Tag(#[allow(dead_code)] u8);

thread_local! {
    /// A value whose address identifies this thread while it lives (no destructor, so it is
    /// usable even while other thread-locals are being destroyed).
    static THREAD_TAG: Tag = const { Tag(0) };
}

/// A non-zero number that identifies the calling thread among live threads; its three low
/// bits are clear.
#[inline]
pub(crate) fn thread_tag() -> usize {
    let tag = THREAD_TAG.with(|tag| ptr::from_ref(tag) as usize);
    debug_assert_eq!(tag & 0b111, 0);
    tag
}
