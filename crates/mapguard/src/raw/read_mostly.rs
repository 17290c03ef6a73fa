//! The table behind [`ReadMostlyMap`](crate::ReadMostlyMap): shards of open-addressing slot
//! arrays, each slot an atomic pointer to an entry (key and value), read without locks under
//! an epoch pin.
//!
//! # Layout
//! Each shard has one table, one allocation: a power-of-two number of slots split into groups
//! of eight. In front come the *control words*, one atomic `u64` per group holding one control
//! byte per slot: 0 for a never-used slot, [`TOMBSTONE`] for one emptied in a full group, else
//! `0x80` plus 7 bits of the key's hash (its top bits, which neither the shard nor the group
//! index uses). After them come the slots, each an atomic pointer to its entry, eight to a
//! cache line. Entries (the key and the value together) live in cells that the shard carves
//! from chunks of its own ([`Cells`]) and refills once an entry expired.
//!
//! A reader loads the control word of the key's first group (the hash's low bits pick it) and
//! matches all eight bytes against the key's control byte at once with word arithmetic; it
//! follows the pointers only of the slots that match (a false match is a 1-in-128 chance per
//! used slot), and stops at the first group that has a never-used slot. A hit therefore
//! touches the control words (dense: a 10 000-key map keeps about 16 KiB of them, which stay
//! in the L1 cache), one slot line and the entry's line.
//!
//! # Invariants (all writes hold the shard's mutex; readers hold none)
//! 1. A slot's entry pointer is stored (release) before its control byte says the key's hash
//!    (release store of the group's word); a removal nulls the pointer first. A key lives in
//!    at most one slot of a table at a time.
//! 2. An entry is never written after it is published, and never moved: an overwrite publishes
//!    a new entry (the caller's key and the new value) with one release store and retires the
//!    old one; a reader sees either, whole.
//! 3. A table is never written after a rebuild has published its successor (release store of
//!    the shard pointer). A rebuild moves the entry pointers (no key is cloned or moved),
//!    placing them by their hash (`K::hash` runs under the lock) and leaving tombstones behind.
//! 4. At most 7/8 of a table's slots are not never-used, so every probe ends at a group with a
//!    never-used slot. A control byte goes back to never-used only when its group has another
//!    never-used slot: such a group ends every probe that reaches it, so no key beyond it was
//!    placed by a probe through it. Else a removal leaves a tombstone, which probes go past. A
//!    new key takes the first tombstone of its probe sequence, or the never-used slot that
//!    ends it. So a key present all along is found by every probe of its hash. A shard
//!    without a table has a null pointer.
//! 5. Entries and tables are freed only through [`Garbage::retire`] after they were unlinked,
//!    or with exclusive access (drop); readers that can reach them are pinned. An entry's cell
//!    is reused for a later entry of its shard only under the same condition: once it could be
//!    freed, the garbage list drops the entry in it and keeps the cell as a spare, so a reader
//!    never sees a cell refilled.
//! 6. Entry cells are carved from chunks that the shard (`Cells`) frees only all together:
//!    when the shard has no entry and nothing retired, under its lock, or with the map.
//!
//! Values stay out of the slots on purpose: a `Ref` must keep showing the value it was made
//! with after an overwrite, and a value with interior mutability (an atomic counter) must be
//! the one in the map, not a copy, so an entry is never moved once published. Keys stay with
//! their values so that a hit reads one line past the slot, and so that no write needs
//! `K: Clone`: a rebuild moves pointers, never keys.
//!
//! This module owns every pointer of the map; the public wrapper hashes keys and shapes the
//! API, and never sees a raw pointer.
//!
//! # Checking
//! The control words, entry pointers, entries' cells, the shard mutex and the re-entrance
//! thread-local come from `primitive`: under `--cfg loom` this very code runs on loom's (with
//! control words and slots built one by one instead of zeroed memory), and loom tracks every
//! entry read against the write that made it and the drop that ends it.
//! `tests/loom_read_mostly.rs` drives the public map through growth, overwrite, removal,
//! tombstones and reused slots, a table freed by its last removal, two writers on one shard,
//! and reclamation.

use std::alloc::{self, Layout};
use std::marker::PhantomData;
use std::panic::Location;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering;

use crossbeam_utils::CachePadded;

use super::epoch::{Disposal, DropPanic, EpochGuard, Garbage, Recycle, advance_epoch, pin};
use super::lock_stats::{LockStats, WaitKind};
use super::primitive::{
    AtomicPtr, AtomicU64, AtomicUsize, Mutex, MutexGuard, TrackedCell, thread_local,
};
use crate::error::ReserveError;

/// Slots per group (control bytes per control word).
const GROUP: usize = 8;
/// The smallest table that is allocated: one group.
const MIN_CAPACITY: usize = GROUP;
/// Alignment of tables (and so the number of low pointer bits free for log2(capacity)).
const TABLE_ALIGN: usize = 64;
/// The lowest bit of each byte of a control word.
const LOW_BITS: u64 = 0x0101_0101_0101_0101;
/// The top bit of each byte: set in a used slot's control byte, clear in the others.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
/// The control byte of a slot whose entry was removed while its group had no never-used slot
/// (a *tombstone*): probes go on past it, and the next new key of the group may take it.
const TOMBSTONE: u64 = 0x01;

/// The control byte of a used slot whose key has this hash: the used bit and the hash's top
/// 7 bits.
#[inline(always)]
fn control_byte(hash: u64) -> u64 {
    0x80 | hash >> 57
}

/// The control bytes of one group, as loaded from its word.
#[derive(Clone, Copy)]
struct Group(u64);

impl Group {
    /// A bit set (the top bit of byte `j` for slot `j`) covering every used slot whose control
    /// byte is `byte`, and perhaps other used slots (the zero-byte test can carry a match into
    /// the byte above one), never a never-used slot.
    #[inline(always)]
    fn matching(self, byte: u64) -> u64 {
        let diff = self.0 ^ (LOW_BITS * byte);
        diff.wrapping_sub(LOW_BITS) & !diff & self.0 & HIGH_BITS
    }

    /// A bit set whose lowest bit is that of the group's first never-used slot (zero if it
    /// has none). Bits above the lowest may be wrong (the zero-byte test carries).
    #[inline(always)]
    fn never_used(self) -> u64 {
        self.0.wrapping_sub(LOW_BITS) & !self.0 & HIGH_BITS
    }

    /// The same for the group's first tombstone.
    #[inline(always)]
    fn tombstones(self) -> u64 {
        Group(self.0 ^ (LOW_BITS * TOMBSTONE)).never_used()
    }

    /// Whether slot `j` of the group holds a key's control byte (it may have been emptied since
    /// the word was loaded: its entry pointer says).
    #[inline(always)]
    fn is_used(self, j: usize) -> bool {
        self.0 >> (8 * j + 7) & 1 == 1
    }
}

/// The slot index within its group of the lowest bit of a bit set from [`Group`].
#[inline(always)]
fn lowest(bits: u64) -> usize {
    bits.trailing_zeros() as usize / 8
}

/// Asks the processor to bring the line of `at` into the cache (a hint: it reads nothing, and
/// does nothing off x86-64 or under loom).
#[inline(always)]
fn prefetch<T>(at: *const T) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is a hint that accesses no memory, valid for any address.
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(at.cast())
        };
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = at;
}

/// A key and its value, in a cell of its shard's chunks (see [`Cells`]): written whole before
/// a slot points at it and never written again until it is freed (invariant 2).
struct Entry<K, V> {
    key: K,
    value: V,
}

/// What a slot points at: an entry in a cell that loom can track the accesses of.
type EntryCell<K, V> = TrackedCell<Entry<K, V>>;

/// A slot of a table: the pointer to its entry (null: no entry).
struct Slot<K, V> {
    entry: AtomicPtr<EntryCell<K, V>>,
}

/// The entry `cell` points at.
///
/// # Safety
/// `cell` was loaded non-null from a slot with an acquire load (or by the shard's writer, or
/// from a table owned exclusively), and the caller is pinned since before that load (or holds
/// the shard's lock, or owns the table), for `'e`.
#[inline(always)]
unsafe fn entry<'e, K, V>(cell: *mut EntryCell<K, V>) -> &'e Entry<K, V> {
    // SAFETY: an entry is written whole before its pointer is published and not written again
    // while reachable (invariant 2); the caller keeps its cell alive (invariant 5).
    unsafe { &*(*cell).read_ptr() }
}

/// Drops the entry in `cell` (its memory stays).
///
/// # Safety
/// The entry is owned by the caller, no thread can reach it any more, and it is dropped once.
unsafe fn drop_entry_in<K, V>(cell: *mut EntryCell<K, V>) {
    // SAFETY: as the caller says. The write access first lets loom check that no read of the
    // entry can still happen.
    unsafe {
        let _ = (*cell).write_ptr();
        ptr::drop_in_place(cell);
    }
}

/// A shard's table: a 64-byte-aligned allocation of the control words of a power-of-two
/// number of slots, then the slots. It is only ever handled through a *packed* pointer: the
/// address with log2(capacity) in its low 6 bits, so a reader gets the table and its size
/// from the one word it loads.
struct Table<K, V> {
    _slots: PhantomData<Slot<K, V>>,
}

/// The control words, slots and group mask of a table, from its packed pointer.
struct View<K, V> {
    control: *const AtomicU64,
    slots: *const Slot<K, V>,
    group_mask: usize,
}

impl<K, V> Clone for View<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for View<K, V> {}

impl<K, V> View<K, V> {
    #[inline(always)]
    fn of(packed: *mut Table<K, V>) -> Self {
        let base = packed.map_addr(|addr| addr & !(TABLE_ALIGN - 1));
        let groups = (1usize << (packed.addr() & (TABLE_ALIGN - 1))) / GROUP;
        Self {
            control: base.cast(),
            // SAFETY: the allocation holds the control words and then the slots, from this
            // offset (see `Table::layout`).
            slots: unsafe { base.cast::<u8>().add(slots_offset::<K, V>(groups)) }.cast(),
            group_mask: groups - 1,
        }
    }

    /// [`of`](Self::of) for a table pointer that may be null: then a view of nothing, which
    /// must not be used.
    #[inline(always)]
    fn of_nullable(packed: *mut Table<K, V>) -> Self {
        if packed.is_null() {
            Self {
                control: ptr::null(),
                slots: ptr::null(),
                group_mask: 0,
            }
        } else {
            Self::of(packed)
        }
    }

    #[inline(always)]
    fn capacity(self) -> usize {
        (self.group_mask + 1) * GROUP
    }

    /// Control word of group `group & group_mask`.
    ///
    /// # Safety
    /// As for [`slot`](Self::slot).
    #[inline(always)]
    unsafe fn control<'t>(self, group: usize) -> &'t AtomicU64 {
        // SAFETY: the allocation holds `group_mask + 1` control words and the index is masked;
        // the caller keeps the allocation alive for `'t`.
        unsafe { &*self.control.add(group & self.group_mask) }
    }

    /// Slot `index`, which is below the capacity.
    ///
    /// # Safety
    /// `index` is below the capacity, and the table is allocated for `'t` (it is current under
    /// the shard's lock, or the caller is pinned since loading it, or it is owned
    /// exclusively).
    #[inline(always)]
    unsafe fn slot<'t>(self, index: usize) -> &'t Slot<K, V> {
        debug_assert!(index < self.capacity());
        // SAFETY: the allocation holds `capacity` slots; the caller keeps it alive for `'t`.
        unsafe { &*self.slots.add(index) }
    }

    /// Slot `j` of group `group` (masked).
    ///
    /// # Safety
    /// As for [`slot`](Self::slot), with `j < GROUP`.
    #[inline(always)]
    unsafe fn slot_in<'t>(self, group: usize, j: usize) -> &'t Slot<K, V> {
        // SAFETY: `(group & group_mask) * GROUP + j` is below the capacity.
        unsafe { self.slot((group & self.group_mask) * GROUP + j) }
    }

    /// Asks the processor to bring the first and the last slot of group `group` (masked) into
    /// the cache: a probe that ends in its first group, as most do, then loads its slot while
    /// the control word is still on its way instead of after it.
    ///
    /// # Safety
    /// As for [`slot`](Self::slot).
    #[inline(always)]
    unsafe fn prefetch_group(self, group: usize) {
        let first = (group & self.group_mask) * GROUP;
        // SAFETY: both slots are in the table (see above).
        unsafe {
            prefetch(self.slots.add(first));
            prefetch(self.slots.add(first + GROUP - 1));
        }
    }

    /// Sets the control byte of slot `index` to `byte` with a release store of its group's
    /// word (which publishes an entry pointer stored before). Called with the shard's lock (or
    /// on an unpublished table), so no other thread writes the word.
    ///
    /// # Safety
    /// As for [`slot`](Self::slot).
    #[inline(always)]
    unsafe fn set_control(self, index: usize, byte: u64) {
        // SAFETY: `index / GROUP` is a group of the table, alive (see above).
        let word = unsafe { self.control(index / GROUP) };
        let shift = 8 * (index % GROUP);
        let old = word.load(Ordering::Relaxed);
        word.store(old & !(0xff << shift) | byte << shift, Ordering::Release);
    }
}

/// Byte offset of the slots in a table of `groups` groups: after the control words, aligned
/// for a slot.
#[inline(always)]
fn slots_offset<K, V>(groups: usize) -> usize {
    let align = std::mem::align_of::<Slot<K, V>>();
    (groups * std::mem::size_of::<AtomicU64>() + align - 1) & !(align - 1)
}

impl<K, V> Table<K, V> {
    fn layout(capacity: usize) -> Result<Layout, ReserveError> {
        let control = Layout::array::<AtomicU64>(capacity / GROUP)
            .map_err(|_| ReserveError::CapacityOverflow)?;
        let slots =
            Layout::array::<Slot<K, V>>(capacity).map_err(|_| ReserveError::CapacityOverflow)?;
        let (table, offset) = control
            .extend(slots)
            .map_err(|_| ReserveError::CapacityOverflow)?;
        debug_assert_eq!(offset, slots_offset::<K, V>(capacity / GROUP));
        table
            .align_to(TABLE_ALIGN)
            .map_err(|_| ReserveError::CapacityOverflow)
    }

    /// A zeroed (all never-used) table of `capacity` slots, a power of two; returns its packed
    /// pointer.
    fn allocate(capacity: usize) -> Result<*mut Self, ReserveError> {
        debug_assert!(capacity.is_power_of_two() && capacity >= MIN_CAPACITY);
        let layout = Self::layout(capacity)?;
        // SAFETY: the layout has a non-zero size (at least one control word).
        let table = unsafe { alloc::alloc_zeroed(layout) };
        if table.is_null() {
            return Err(ReserveError::AllocError {
                bytes: layout.size(),
            });
        }
        // Zeroed memory is all never-used slots: zero control words, null entry pointers. Loom's atomics and cells are handles to its model state: under loom
        // each word and slot is built for real.
        #[cfg(loom)]
        {
            let view = View::<K, V>::of(
                table
                    .map_addr(|addr| addr | capacity.trailing_zeros() as usize)
                    .cast(),
            );
            for group in 0..capacity / GROUP {
                // SAFETY: the allocation holds `capacity / GROUP` words and is not shared yet.
                unsafe { view.control.cast_mut().add(group).write(AtomicU64::new(0)) };
            }
            for index in 0..capacity {
                let never_used = Slot::<K, V> {
                    entry: AtomicPtr::new(ptr::null_mut()),
                };
                // SAFETY: the allocation holds `capacity` slots and is not shared yet.
                unsafe { view.slots.cast_mut().add(index).write(never_used) };
            }
        }
        let log2 = capacity.trailing_zeros() as usize;
        Ok(table.map_addr(|addr| addr | log2).cast())
    }

    /// Drops the entries its slots point at if `with_entries`, then frees the table (the
    /// entries' cells stay in their shard's chunks).
    ///
    /// # Safety
    /// - `packed` came from [`allocate`](Self::allocate) and is freed once.
    /// - No thread uses it any more.
    /// - With `with_entries`, the table owns its entries (nothing else drops them).
    unsafe fn deallocate(packed: *mut Self, with_entries: bool) {
        let view = View::of(packed);
        for index in 0..if with_entries { view.capacity() } else { 0 } {
            // SAFETY: the caller says the table is live and ours alone.
            let cell = unsafe { view.slot(index) }.entry.load(Ordering::Relaxed);
            if !cell.is_null() {
                // SAFETY: the table owns this entry, dropped once, here (its cell is its
                // shard's `Cells`').
                unsafe { drop_entry_in(cell) };
            }
        }
        let layout = Self::layout(view.capacity()).expect("the layout was valid when allocated");
        // SAFETY: allocated with this layout (see above), freed once.
        unsafe { alloc::dealloc(view.control.cast_mut().cast(), layout) };
    }

    /// Most slots a table of this capacity may have used (invariant 4).
    fn max_used(capacity: usize) -> usize {
        capacity - capacity / 8
    }
}

/// `retire` callbacks.
unsafe fn drop_entry<K, V>(cell: *mut ()) {
    // SAFETY: a retired entry that no reader holds any more (`Garbage::retire`), dropped once;
    // its cell stays, empty, in its shard's `Cells`.
    unsafe { drop_entry_in(cell.cast::<EntryCell<K, V>>()) };
}

unsafe fn free_table_only<K, V>(table: *mut ()) {
    // SAFETY: retired tables came from `Table::allocate` and are freed once; a table retired
    // by a rebuild has handed its entries to its successor.
    unsafe { Table::<K, V>::deallocate(table.cast(), false) };
}

unsafe fn free_table_all<K, V>(table: *mut ()) {
    // SAFETY: as above; a table retired by `clear` still owns its entries.
    unsafe { Table::<K, V>::deallocate(table.cast(), true) };
}

/// A replaced or removed entry: its cell is reused for a later entry of the same shard once
/// no reader can reach it (every cell is kept: its memory is its shard's `Cells` chunk's).
fn entry_disposal<K, V>() -> &'static Disposal {
    const {
        &Disposal {
            free: drop_entry::<K, V>,
            recycle: Some(Recycle {
                drop_contents: if std::mem::needs_drop::<EntryCell<K, V>>() {
                    Some(drop_entry::<K, V>)
                } else {
                    None
                },
            }),
        }
    }
}

/// A table replaced by a rebuild (its entries moved on).
fn rebuilt_table_disposal<K, V>() -> &'static Disposal {
    const {
        &Disposal {
            free: free_table_only::<K, V>,
            recycle: None,
        }
    }
}

/// A table dropped by `clear` (with its entries).
fn cleared_table_disposal<K, V>() -> &'static Disposal {
    const {
        &Disposal {
            free: free_table_all::<K, V>,
            recycle: None,
        }
    }
}

/// A retired table's weight for its garbage list: its bytes in units of 64.
fn table_weight<K, V>(packed: *mut Table<K, V>) -> usize {
    View::of(packed).capacity() * (std::mem::size_of::<Slot<K, V>>() + 1) / 64
}

/// Puts an entry in a cell of the shard: a spare one if it has one, else a new one. Called
/// with the shard's lock.
#[inline]
fn new_entry<K, V>(state: &mut WriterState, key: K, value: V) -> *mut EntryCell<K, V> {
    let cell = match state.garbage.take_spare() {
        // A spare is an emptied entry cell of this shard (only entries are recyclable in a
        // shard's list) that no reader can reach and nothing else owns.
        Some(spare) => spare.cast::<EntryCell<K, V>>(),
        None => state
            .cells
            .take(Layout::new::<EntryCell<K, V>>())
            .cast::<EntryCell<K, V>>(),
    };
    // SAFETY: the cell is unused, sized and aligned for an entry.
    unsafe { cell.write(TrackedCell::new(Entry { key, value })) };
    cell
}

/// The value cells of one shard: carved from chunks allocated by the shard and freed only all
/// together, once no value lives in them. Values of a shard are so packed densely (8 bytes
/// for a `u64`, where a separate allocation takes 32 with the usual allocators), which keeps
/// more of them in the caches a read goes through. A cell whose value expired becomes a spare
/// of the shard's garbage list, refilled by a later store; the chunks are freed when the shard
/// is empty and has nothing retired (`collect_all`), or with the map.
struct Cells {
    chunks: Vec<(NonNull<u8>, Layout)>,
    /// The next unused cell of the last chunk, and how many are left there.
    next: *mut u8,
    left: usize,
    /// Cells in all chunks (the next chunk has half as many again, within bounds: at most a
    /// third of the cells are unused after a growth).
    made: usize,
}

// SAFETY: `Cells` owns its chunks (plain memory); the values in them are owned and dropped by
// the map, which is `Send` only if they are.
unsafe impl Send for Cells {}

/// Bounds of a chunk of cells: at least this many cells...
const MIN_CHUNK_CELLS: usize = 16;
/// ...and at most this many bytes (unless one cell is larger).
const MAX_CHUNK_BYTES: usize = 64 << 10;

impl Cells {
    const fn new() -> Self {
        Self {
            chunks: Vec::new(),
            next: ptr::null_mut(),
            left: 0,
            made: 0,
        }
    }

    /// An unused cell of layout `cell` (the same for every call), valid until
    /// [`free_all`](Self::free_all).
    #[inline]
    fn take(&mut self, cell: Layout) -> *mut u8 {
        if cell.size() == 0 {
            return ptr::without_provenance_mut(cell.align());
        }
        if self.left == 0 {
            self.grow(cell);
        }
        let taken = self.next;
        // SAFETY: the chunk has `left` more cells from `next` (`grow`); the pointer stays
        // within it or one past its end.
        self.next = unsafe { taken.add(cell.size()) };
        self.left -= 1;
        taken
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, cell: Layout) {
        // The byte bound wins over the cell bound: a cell above MAX_CHUNK_BYTES / MIN_CHUNK_CELLS
        // gets fewer cells per chunk (one, for a cell above MAX_CHUNK_BYTES).
        let count = (self.made / 2)
            .max(MIN_CHUNK_CELLS)
            .min((MAX_CHUNK_BYTES / cell.size()).max(1));
        let layout = Layout::from_size_align(cell.size() * count, cell.align())
            .unwrap_or_else(|_| panic!("mapguard: a chunk of {count} values cannot be addressed"));
        // SAFETY: the layout has a non-zero size (cells are not zero-sized here).
        let chunk = unsafe { alloc::alloc(layout) };
        let Some(chunk) = NonNull::new(chunk) else {
            alloc::handle_alloc_error(layout)
        };
        self.chunks.push((chunk, layout));
        self.next = chunk.as_ptr();
        self.left = count;
        self.made += count;
    }

    /// Frees every chunk. The caller makes sure that no value lives in any cell and that no
    /// spare cell is kept anywhere.
    fn free_all(&mut self) {
        for (chunk, layout) in self.chunks.drain(..) {
            // SAFETY: allocated by `grow` with this layout, freed once (drained).
            unsafe { alloc::dealloc(chunk.as_ptr(), layout) };
        }
        self.chunks = Vec::new();
        self.next = ptr::null_mut();
        self.left = 0;
        self.made = 0;
    }
}

impl Drop for Cells {
    fn drop(&mut self) {
        // Dropped with the map, after its tables and garbage list dropped every value.
        self.free_all();
    }
}

/// A key and value kept valid by an epoch pin of the calling thread.
///
/// `!Send`: the pin belongs to the thread that took it.
pub(crate) struct Pinned<'a, K, V> {
    key: NonNull<K>,
    value: NonNull<V>,
    _guard: EpochGuard,
    _borrow: PhantomData<&'a (K, V)>,
}

// SAFETY: a shared reference to a pinned entry gives out `&K` and `&V` only, valid while the
// pin (kept by the owning thread, `!Send`) lives: sharing it is sound when both may be shared.
unsafe impl<K: Sync, V: Sync> Sync for Pinned<'_, K, V> {}

impl<'a, K, V> Pinned<'a, K, V> {
    /// # Safety
    /// `guard` is alive since before `entry` was loaded from the map (or the shard's lock was
    /// held, with the entry in the map, when `guard` was taken), with the map borrowed for
    /// `'a`.
    #[inline(always)]
    unsafe fn new(entry: &Entry<K, V>, guard: EpochGuard) -> Self {
        Self {
            key: NonNull::from(&entry.key),
            value: NonNull::from(&entry.value),
            _guard: guard,
            _borrow: PhantomData,
        }
    }

    /// The key.
    #[inline(always)]
    pub(crate) fn key(&self) -> &K {
        // SAFETY: the entry was reachable from the map while the thread was pinned, and the
        // guard kept here keeps that pin: its cell is not freed or refilled before this
        // `Pinned` is dropped, and the entry is never written meanwhile (invariants 2, 5).
        unsafe { self.key.as_ref() }
    }

    /// The value.
    #[inline(always)]
    pub(crate) fn value(&self) -> &V {
        // SAFETY: as for the key.
        unsafe { self.value.as_ref() }
    }
}

/// What a [`RawReadMostly::write`] decision does to the key.
pub(crate) enum Decision<V> {
    /// Nothing.
    Keep,
    /// Publish this value for the looked-up key (which must then be owned).
    Store(V),
    /// Remove the value, if any.
    Remove,
}

/// The key a write looks up: owned (it can be stored) or borrowed (it cannot).
pub(crate) trait Lookup<K> {
    /// Whether a stored key is this one.
    fn matches(&self, stored: &K) -> bool;
    /// The key to store, if there is one: the caller's own, or a copy of `stored` (the key
    /// found in the map, if any) for a lookup that may clone it.
    fn into_owned(self, stored: Option<&K>) -> Option<K>;
}

/// The values a write saw and left.
pub(crate) struct Outcome<'a, K, V> {
    /// The value before the write, if any.
    pub(crate) previous: Option<Pinned<'a, K, V>>,
    /// The value after the write, if any.
    pub(crate) current: Option<Pinned<'a, K, V>>,
    /// Whether the key was present before the write (known with or without pins).
    pub(crate) existed: bool,
}

/// The writer side of a shard: its lock, used-slot count and garbage. Padded so that
/// writers of different shards do not share a line; readers never read it. Laid out in this
/// order (with [`WriterState`] and [`Garbage`]) so that what a write touches, the count, the
/// lock, `used` and the garbage list's counts and heads, fills the first two cache lines of
/// the (128-byte aligned) writer: writes to a shard from alternating cores move two lines.
#[repr(C)]
struct Writer {
    len: AtomicUsize,
    /// Whether acquisitions are counted and timed (statistics on; set with `waits`' own flag,
    /// before the map is shared): read by every write, so kept here on the line of the lock.
    counted: bool,
    state: Mutex<WriterState>,
    /// Lock acquisitions (counted when statistics are on), added to with the lock held (like
    /// `len`).
    locks: AtomicU64,
    /// Contended acquisitions and their wait (counted when statistics are on).
    waits: LockStats,
    /// The shard's index (for the contention probe).
    index: usize,
    /// The lock's lockdep class (see `lock_class`).
    #[cfg(feature = "lockdep")]
    class: lockdep::foreign::LockClass,
}

#[repr(C)]
struct WriterState {
    /// Used slots (live and removed keys) of the current table.
    used: usize,
    /// Retired values and tables (dropped before `cells`, whose memory values use).
    garbage: Garbage,
    cells: Cells,
}

thread_local! {
    /// The shard writer lock this thread holds, if any (address of its `Writer`), and the
    /// call that took it.
    static HELD: std::cell::Cell<(usize, Option<&'static Location<'static>>)> =
        const { std::cell::Cell::new((0, None)) };
}

/// A shard's lock held by this thread; remembers it so that a re-entrant write panics.
struct WriterGuard<'a> {
    state: MutexGuard<'a, WriterState>,
    previous: (usize, Option<&'static Location<'static>>),
    /// The acquisition as lockdep knows it, released with the guard.
    #[cfg(feature = "lockdep")]
    _token: lockdep::foreign::Token,
}

impl Writer {
    /// Changes the entry count by `delta` and returns the new count. Only called with the lock
    /// held, so a plain load and store do (no locked instruction); readers of `len` only need
    /// some recent value.
    #[inline]
    fn add_len(&self, delta: isize) -> usize {
        let len = self.len.load(Ordering::Relaxed).wrapping_add_signed(delta);
        self.len.store(len, Ordering::Relaxed);
        len
    }

    /// Locks the shard for writing, for the call at `site`.
    ///
    /// # Panics
    /// If this thread already holds it: user code that runs under the lock (a closure of
    /// `compute`, `update`, `remove_if` or `retain`, `V::eq` in a compare, `K::hash` in a
    /// rebuild, a `Drop` of a freed value) called the map's writing side for the same shard,
    /// which would wait for itself forever. The report names both calls.
    #[inline]
    fn lock(&self, site: &'static Location<'static>) -> WriterGuard<'_> {
        let me = self as *const Self as usize;
        let previous = HELD.with(|held| held.replace((me, Some(site))));
        if previous.0 == me {
            HELD.with(|held| held.set(previous));
            self.reentered(site, previous.1);
        }
        // After the re-entrance check: this thread's own write gets the map's message, which
        // names the shard, not lockdep's.
        #[cfg(feature = "lockdep")]
        let token = self
            .class
            .acquire_at(self, lockdep::foreign::Access::Write, site);
        let state = if self.counted {
            self.lock_counted()
        } else {
            self.state.lock()
        };
        #[cfg(feature = "lockdep")]
        token.acquired();
        WriterGuard {
            state,
            previous,
            #[cfg(feature = "lockdep")]
            _token: token,
        }
    }

    #[cold]
    #[inline(never)]
    fn reentered(
        &self,
        site: &'static Location<'static>,
        holder: Option<&'static Location<'static>>,
    ) -> ! {
        let holder = holder.map_or_else(|| "an earlier call".to_owned(), |at| format!("{at}"));
        panic!(
            "mapguard: deadlock avoided: the ReadMostlyMap call at {site} writes shard {} while \
             this thread holds that shard's write lock for the call at {holder}: it was called \
             from code that runs under the lock (a closure of compute, update, remove_if or \
             retain, or `PartialEq`, `Hash` or `Drop` of a key or value), and would wait for \
             itself",
            self.index
        );
    }

    #[cfg(feature = "rayon")]
    /// Whether this thread holds the write lock of one of `writers`.
    fn held_among(writers: &[CachePadded<Writer>]) -> Option<&'static Location<'static>> {
        let (held, site) = HELD.with(std::cell::Cell::get);
        let range = writers.as_ptr_range();
        (range.start as usize <= held && held < range.end as usize).then_some(site)?
    }

    /// [`lock`](Self::lock) with statistics: counted, and tried first so that only an
    /// acquisition that finds the lock taken is timed.
    #[inline]
    fn lock_counted(&self) -> MutexGuard<'_, WriterState> {
        let state = match self.state.try_lock() {
            Some(state) => state,
            None => self.lock_waiting(),
        };
        self.locks
            .store(self.locks.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        state
    }

    /// A lock acquisition that found the lock taken: timed (and counted as contended).
    #[cold]
    #[inline(never)]
    fn lock_waiting(&self) -> MutexGuard<'_, WriterState> {
        let _wait = self.waits.wait(self.index, WaitKind::Write);
        self.state.lock()
    }
}

impl Drop for WriterGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let previous = self.previous;
        HELD.with(|held| held.set(previous));
    }
}

impl std::ops::Deref for WriterGuard<'_> {
    type Target = WriterState;
    fn deref(&self) -> &WriterState {
        &self.state
    }
}

impl std::ops::DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut WriterState {
        &mut self.state
    }
}

/// The pin of one write, taken when first needed: before a value is retired (so that it can
/// be returned), or for the first value returned, which then keeps it.
struct WritePin(Option<EpochGuard>);

impl WritePin {
    /// Pins now, unless already pinned.
    #[inline(always)]
    fn ensure(&mut self) {
        if self.0.is_none() {
            self.0 = Some(pin());
        }
    }

    /// The pin for a returned value: the write's own, or a nested one once that is handed out.
    #[inline(always)]
    fn take(&mut self) -> EpochGuard {
        self.0.take().unwrap_or_else(pin)
    }
}

/// Shards per [`TableLine`].
const LINE_SHARDS: usize = 8;

/// The packed table pointers of eight shards, one cache line: the table of the shard a read
/// goes to is one of few lines, which stay in the L1 cache. Only rebuilds of these shards
/// write the line (rare: a table grows by doubling); nothing else shares it.
#[repr(C, align(64))]
struct TableLine<K, V>([AtomicPtr<Table<K, V>>; LINE_SHARDS]);

/// The sharded slot tables of a read-mostly map. See the module docs.
pub(crate) struct RawReadMostly<K, V> {
    /// The packed pointer to the current table of each shard (null: no table), eight to a
    /// line: the only shared words readers load before the tables.
    tables: Box<[TableLine<K, V>]>,
    writers: Box<[CachePadded<Writer>]>,
    /// The shard count minus one (shards are chosen by `pow2::shard_of`).
    shard_mask: usize,
    _owns: PhantomData<(K, V)>,
}

// SAFETY: the map owns its keys and values; sending it sends them.
unsafe impl<K: Send, V: Send> Send for RawReadMostly<K, V> {}
// SAFETY: through `&RawReadMostly`, threads read `&K`/`&V` concurrently (needs `Sync`) and
// move keys and values in and drop them on any thread (needs `Send`).
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for RawReadMostly<K, V> {}

/// The capacity of a table for `live` entries: at most 3/4 full after a rebuild, so that at
/// least 1/8 of its slots are left for new keys before the next one (invariant 4's 7/8), and
/// insert/remove churn near a limit does not rebuild again at once. A probe tests eight slots
/// at a time, so a fuller table than one slot at a time allows still ends most lookups in
/// their first group.
fn capacity_for(live: usize) -> Option<usize> {
    live.checked_add(live.div_ceil(3))?
        .checked_next_power_of_two()
        .map(|capacity| capacity.max(MIN_CAPACITY))
}

impl<K, V> RawReadMostly<K, V> {
    /// `shards` shards (a power of two) with room for `capacity` entries spread over them.
    pub(crate) fn new(shards: usize, capacity: usize) -> Result<Self, ReserveError> {
        debug_assert!(shards.is_power_of_two());
        let per_shard = capacity.div_ceil(shards);
        let mut tables: Vec<*mut Table<K, V>> = Vec::with_capacity(shards);
        if per_shard > 0 {
            let table_capacity = capacity_for(per_shard).ok_or(ReserveError::CapacityOverflow)?;
            // Fail before allocating anything on a size that can never fit: one table, or
            // all of them together.
            let bytes = Table::<K, V>::layout(table_capacity)?.size();
            if bytes
                .checked_mul(shards)
                .is_none_or(|total| total > isize::MAX as usize)
            {
                return Err(ReserveError::CapacityOverflow);
            }
            for _ in 0..shards {
                match Table::allocate(table_capacity) {
                    Ok(table) => tables.push(table),
                    Err(err) => {
                        drop(Self::assemble(tables, shards));
                        return Err(err);
                    }
                }
            }
        }
        tables.resize(shards, ptr::null_mut());
        Ok(Self::assemble(tables, shards))
    }

    /// The map with the first tables of its `shards` shards (`tables` may be shorter: null).
    fn assemble(tables: Vec<*mut Table<K, V>>, shards: usize) -> Self {
        let lines = (0..shards.div_ceil(LINE_SHARDS))
            .map(|line| {
                TableLine(std::array::from_fn(|at| {
                    let table = tables.get(line * LINE_SHARDS + at).copied();
                    AtomicPtr::new(table.unwrap_or(ptr::null_mut()))
                }))
            })
            .collect();
        #[cfg(feature = "lockdep")]
        let map = super::MapId::next();
        let writers = (0..shards)
            .map(|index| {
                CachePadded::new(Writer {
                    state: Mutex::new(WriterState {
                        used: 0,
                        garbage: Garbage::new(),
                        cells: Cells::new(),
                    }),
                    len: AtomicUsize::new(0),
                    counted: false,
                    locks: AtomicU64::new(0),
                    waits: LockStats::default(),
                    index,
                    #[cfg(feature = "lockdep")]
                    class: map.shard_class("ReadMostlyMap", index),
                })
            })
            .collect();
        Self {
            tables: lines,
            writers,
            shard_mask: shards - 1,
            _owns: PhantomData,
        }
    }

    /// The number of shards.
    pub(crate) fn shard_count(&self) -> usize {
        self.shard_mask + 1
    }

    /// The packed table pointer of `shard`.
    ///
    /// # Safety
    /// `shard` is below the shard count (it comes from `shard_for`, which masks with
    /// `shard_mask`, or from counting the shards). Unchecked: a read pays no second mask.
    #[inline(always)]
    unsafe fn table(&self, shard: usize) -> &AtomicPtr<Table<K, V>> {
        debug_assert!(shard < self.shard_count());
        let line = std::mem::size_of::<TableLine<K, V>>();
        if line == LINE_SHARDS * std::mem::size_of::<AtomicPtr<Table<K, V>>>() {
            // SAFETY: the lines hold the shard count rounded up to whole lines, and have no
            // padding (checked above: always so with `std`'s atomics), so their pointers are
            // one array of them, indexed by shard, which the caller keeps below the count.
            unsafe {
                &*self
                    .tables
                    .as_ptr()
                    .cast::<AtomicPtr<Table<K, V>>>()
                    .add(shard)
            }
        } else {
            &self.tables[shard / LINE_SHARDS].0[shard % LINE_SHARDS]
        }
    }

    /// The packed table pointers of all shards.
    fn all_tables(&self) -> impl Iterator<Item = &AtomicPtr<Table<K, V>>> {
        self.tables
            .iter()
            .flat_map(|line| line.0.iter())
            .take(self.shard_count())
    }

    /// Turns on the shards' contention figures (before the map is shared).
    pub(crate) fn enable_stats(&mut self) {
        for writer in self.writers.iter_mut() {
            writer.waits.enable();
            writer.counted = true;
        }
    }

    /// `(entries, write-lock acquisitions, contended acquisitions, nanoseconds waited)` of
    /// each shard, read without locking.
    #[cfg_attr(not(feature = "stats"), allow(dead_code))]
    pub(crate) fn shard_figures(&self) -> impl Iterator<Item = (usize, u64, u64, u64)> + '_ {
        self.writers.iter().map(|writer| {
            let (contended, wait_ns) = writer.waits.figures();
            (
                writer.len.load(Ordering::Relaxed),
                writer.locks.load(Ordering::Relaxed),
                contended,
                wait_ns,
            )
        })
    }

    #[inline(always)]
    fn shard_for(&self, hash: u64) -> usize {
        // As `ShardedMap` does: independent of the bits a table probes and tags with.
        super::pow2::shard_of(hash, self.shard_mask)
    }

    /// The number of live entries, summed over the shards without locking.
    pub(crate) fn len(&self) -> usize {
        self.writers
            .iter()
            .map(|writer| writer.len.load(Ordering::Relaxed))
            .sum()
    }

    /// Keys the allocated tables take before a rebuild, over all shards.
    pub(crate) fn key_capacity(&self) -> usize {
        self.all_tables()
            .map(|table| table.load(Ordering::Acquire))
            .filter(|table| !table.is_null())
            .map(|table| Table::<K, V>::max_used(View::of(table).capacity()))
            .sum()
    }

    /// Scans the current table of the hash's shard for the key; returns its entry if the key
    /// is there. The caller is pinned for `'g`.
    #[inline(always)]
    fn find<'g>(
        &'g self,
        hash: u64,
        mut eq: impl FnMut(&K) -> bool,
        _guard: &'g EpochGuard,
    ) -> Option<&'g Entry<K, V>> {
        let shard = self.shard_for(hash);
        // SAFETY: `shard_for` masks with `shard_mask`, which is the shard count minus one.
        let packed = unsafe { self.table(shard) }.load(Ordering::Acquire);
        if packed.is_null() {
            return None;
        }
        let table = View::of(packed);
        let byte = control_byte(hash);
        let mut group = hash as usize;
        // SAFETY: the table is alive (see below).
        unsafe { table.prefetch_group(group) };
        loop {
            // SAFETY: the table was loaded while pinned, so it stays allocated for `'g`
            // (invariant 5); the acquire load pairs with the release store that published it.
            let control = Group(unsafe { table.control(group) }.load(Ordering::Acquire));
            let mut matches = control.matching(byte);
            while matches != 0 {
                // SAFETY: as above; `lowest` is below `GROUP`.
                let slot = unsafe { table.slot_in(group, lowest(matches)) };
                let cell = slot.entry.load(Ordering::Acquire);
                if !cell.is_null() {
                    // SAFETY: loaded non-null with an acquire load while pinned for `'g`.
                    let entry = unsafe { entry(cell) };
                    if eq(&entry.key) {
                        return Some(entry);
                    }
                }
                matches &= matches - 1;
            }
            if control.never_used() != 0 {
                return None;
            }
            group = group.wrapping_add(1);
        }
    }

    /// The key and value of `hash`/`eq`, kept pinned.
    #[inline]
    pub(crate) fn get(&self, hash: u64, eq: impl FnMut(&K) -> bool) -> Option<Pinned<'_, K, V>> {
        let guard = pin();
        let entry: *const Entry<K, V> = self.find(hash, eq, &guard)?;
        // SAFETY: pinned by `guard` since before the entry was found in the map.
        Some(unsafe { Pinned::new(&*entry, guard) })
    }

    /// Whether the key is present.
    #[inline]
    pub(crate) fn contains(&self, hash: u64, eq: impl FnMut(&K) -> bool) -> bool {
        let guard = pin();
        self.find(hash, eq, &guard).is_some()
    }

    /// Applies `read` to the value of the key, pinned only for the call.
    #[inline]
    pub(crate) fn read<R>(
        &self,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
        read: impl FnOnce(&V) -> R,
    ) -> Option<R> {
        let guard = pin();
        let entry = self.find(hash, eq, &guard)?;
        Some(read(&entry.value))
    }

    /// Looks up the key under the shard's lock and applies `decide`'s choice. `decide` runs
    /// under the lock; if it (or `rehash` in a rebuild) panics, the map is left as it was.
    /// `rehash` gives a stored key's hash (the one `hash` is for `key`): a rebuild places the
    /// entries it moves with it.
    ///
    /// # Panics
    /// If `decide` stores with a borrowed `key`; or, before it changes anything, if a value
    /// freed by the garbage collection that starts the write panicked in its `Drop` (every
    /// other value due was freed; the report names the call that retired it).
    ///
    /// With `PINS` false the outcome holds no value (only [`Outcome::existed`]), and the
    /// write takes no epoch pin at all: a retirement needs none (the lock orders it), only a
    /// value handed back does.
    #[track_caller]
    pub(crate) fn write<const PINS: bool>(
        &self,
        hash: u64,
        key: impl Lookup<K>,
        rehash: &dyn Fn(&K) -> u64,
        decide: impl FnOnce(Option<(&K, &V)>) -> Decision<V>,
    ) -> Outcome<'_, K, V> {
        let shard = self.shard_for(hash);
        debug_assert!(shard < self.writers.len());
        // SAFETY: masked with `shard_mask`, the number of writers minus one (`shard_for` has
        // masked already; the compiler folds the second mask).
        let writer = unsafe { self.writers.get_unchecked(shard & self.shard_mask) };
        let site = Location::caller();
        let mut state = writer.lock(site);
        // Every batch of retirements, the garbage list is collected: before this write pins, so
        // that its epoch advances do not wait for this thread.
        if let Err(panicked) = state.garbage.collect_if_due() {
            drop(state);
            panicked.raise(&format!(
                "the write at {site} to shard {shard} of a ReadMostlyMap freed the values \
                 replaced or removed before it (that write had no effect)"
            ));
        }
        // Pinned before anything is retired, and only then or when a value is returned: the
        // values returned stay valid while pinned. Not before the lock: a writer waiting for it
        // would hold back the epoch (and so every shard's reclamation) for as long as it waits.
        // Under the lock the current table and its entries need no pin.
        let mut guard = WritePin(None);
        // SAFETY: `shard` is from `shard_for` (masked to the shard count).
        let mut table = unsafe { self.table(shard) }.load(Ordering::Relaxed);
        // Worked out once (a rebuild replaces it); never used while `table` is null.
        let mut view = View::of_nullable(table);
        // The cell a stored entry will go to was last written long ago (it had to expire):
        // fetching it now overlaps its miss with the probe's instead of waiting for it when
        // the lock is released.
        if let Some(spare) = state.garbage.next_spare() {
            prefetch(spare);
        }
        let place = if table.is_null() {
            None
        } else {
            // SAFETY: writers hold the lock, so this table is current and not retired.
            Some(unsafe { find_place(view, hash, &mut |k| key.matches(k)) })
        };
        let found = match place {
            // SAFETY: a live entry of the current table stays allocated while the lock is held.
            Some(Place::Live(_, cell)) => Some(unsafe { entry(cell) }),
            _ => None,
        };
        let present = found.map(|found| (&found.key, &found.value));
        let mut outcome = Outcome {
            previous: None,
            current: None,
            existed: present.is_some(),
        };
        // Below, `table` is the shard's current table and the lock is held: it is allocated and
        // only this thread writes it.
        match decide(present) {
            Decision::Keep => {
                if let Some(Place::Live(_, cell)) = place
                    && PINS
                {
                    // SAFETY: pinned now, and the entry is in the map (the lock is held).
                    outcome.current = Some(unsafe { Pinned::new(entry(cell), guard.take()) });
                }
            }
            Decision::Store(value) => {
                let owned = key
                    .into_owned(found.map(|found| &found.key))
                    .expect("only an owned key can be stored");
                let new = new_entry(&mut state, owned, value);
                match place {
                    Some(Place::Live(index, old)) => {
                        // SAFETY: `table` is the current table and the lock is held (see above).
                        unsafe { view.slot(index) }
                            .entry
                            .store(new, Ordering::Release);
                        if PINS {
                            guard.ensure();
                        }
                        // SAFETY: `old` is unlinked by the store above; it is a cell of this
                        // shard.
                        unsafe {
                            state
                                .garbage
                                .retire(old.cast(), entry_disposal::<K, V>(), 1, site)
                        };
                        if PINS {
                            // SAFETY: pinned since before `old` was retired.
                            outcome.previous =
                                Some(unsafe { Pinned::new(entry(old), guard.take()) });
                        }
                    }
                    Some(Place::Vacant {
                        index,
                        fresh: false,
                    }) => {
                        // A tombstone: the slot takes the entry, then the key's control byte.
                        // SAFETY: `table` is the current table and the lock is held (see above).
                        unsafe { view.slot(index) }
                            .entry
                            .store(new, Ordering::Release);
                        // SAFETY: as above.
                        unsafe { view.set_control(index, control_byte(hash)) };
                        writer.add_len(1);
                    }
                    Some(Place::Vacant { fresh: true, .. }) | None => {
                        let mut index = match place {
                            Some(Place::Vacant { index, .. }) => index,
                            _ => 0,
                        };
                        let capacity = if table.is_null() { 0 } else { view.capacity() };
                        if state.used + 1 > Table::<K, V>::max_used(capacity) {
                            let live = writer.len.load(Ordering::Relaxed);
                            let rebuilt =
                                self.rebuild(shard, &mut state, live + 1, rehash, site, false);
                            table = match rebuilt {
                                Ok(table) => table,
                                Err(Rebuilt::Failed(_)) => unreachable!("an infallible rebuild"),
                                Err(Rebuilt::Panicked(panic)) => {
                                    // SAFETY: `new` was not published; its cell is left
                                    // unused (freed with the shard's chunks).
                                    unsafe { drop_entry_in(new) };
                                    std::panic::resume_unwind(panic)
                                }
                            };
                            view = View::of(table);
                            // The key was absent and a rebuild keeps the same keys (and no
                            // tombstone): it goes to the end of its probe sequence.
                            // SAFETY: `table` is the current table and the lock is held.
                            index = unsafe { vacant(view, hash) };
                        }
                        // SAFETY: `table` is the current table and the lock is held (see above).
                        unsafe { view.slot(index) }
                            .entry
                            .store(new, Ordering::Release);
                        // The entry before the control byte: a reader that sees the byte sees
                        // the entry.
                        // SAFETY: as above.
                        unsafe { view.set_control(index, control_byte(hash)) };
                        state.used += 1;
                        writer.add_len(1);
                    }
                }
                if PINS {
                    // SAFETY: pinned now, and `new` was just published (the lock is held).
                    outcome.current = Some(unsafe { Pinned::new(entry(new), guard.take()) });
                }
            }
            Decision::Remove => {
                if let Some(Place::Live(index, old)) = place {
                    if PINS {
                        guard.ensure();
                    }
                    // SAFETY: `table` is the current table and the lock is held (see above);
                    // `old` is the entry of slot `index`.
                    unsafe { unlink(view, &mut state, writer, index, old, site) };
                    if PINS {
                        // SAFETY: pinned since before `old` was retired.
                        outcome.previous = Some(unsafe { Pinned::new(entry(old), guard.take()) });
                    }
                    self.shrink_if_sparse(shard, &mut state, view, rehash, site);
                }
            }
        }
        outcome
    }

    /// Shrinks the shard's table (`view`, current) once a removal left it below 1/8 full, or
    /// frees it once it is empty. A failed shrink (a panicking `K::hash`) leaves the table as
    /// it is. Called with the shard's lock held (`state`).
    #[inline]
    fn shrink_if_sparse(
        &self,
        shard: usize,
        state: &mut WriterState,
        view: View<K, V>,
        rehash: &dyn Fn(&K) -> u64,
        site: &'static Location<'static>,
    ) {
        // SAFETY: one writer per shard; the caller holds this one's lock.
        let len = unsafe { self.writers.get_unchecked(shard) }
            .len
            .load(Ordering::Relaxed);
        let capacity = view.capacity();
        if capacity > MIN_CAPACITY && len * 8 < capacity || len == 0 {
            let _ = self.rebuild(shard, state, len, rehash, site, false);
        }
    }

    /// Removes every entry for which `keep` returns false, one shard at a time under its
    /// lock (`keep` runs under it). Readers see each removal as a single `remove` would be
    /// seen.
    ///
    /// # Panics
    /// If `keep` panics (the entries it rejected before stay removed, the rest stay), or
    /// before a shard is changed, if a value freed by that shard's collection panicked in its
    /// `Drop`.
    #[track_caller]
    pub(crate) fn retain(&self, keep: impl FnMut(&K, &V) -> bool, rehash: &dyn Fn(&K) -> u64) {
        self.retain_shards(0..self.shard_count(), keep, rehash, Location::caller());
    }

    /// [`retain`](Self::retain) over the shards of `shards` only (each below the shard
    /// count), for the call at `site`.
    pub(crate) fn retain_shards(
        &self,
        shards: std::ops::Range<usize>,
        mut keep: impl FnMut(&K, &V) -> bool,
        rehash: &dyn Fn(&K) -> u64,
        site: &'static Location<'static>,
    ) {
        for (shard, writer) in self.writers[shards.clone()].iter().enumerate() {
            let shard = shards.start + shard;
            let mut state = writer.lock(site);
            if let Err(panicked) = state.garbage.collect_if_due() {
                drop(state);
                panicked.raise(&format!(
                    "the retain at {site} reached shard {shard} of a ReadMostlyMap (that shard \
                     was not changed)"
                ));
            }
            // SAFETY: one writer per shard, so `shard` is below the shard count.
            let table = unsafe { self.table(shard) }.load(Ordering::Relaxed);
            if table.is_null() {
                continue;
            }
            let view = View::of(table);
            let mut removed = false;
            for index in 0..view.capacity() {
                // SAFETY: the table is current (the lock is held) and `index` is below its
                // capacity.
                let cell = unsafe { view.slot(index) }.entry.load(Ordering::Relaxed);
                if cell.is_null() {
                    continue;
                }
                // SAFETY: a live entry of the current table, under the lock.
                let found = unsafe { entry(cell) };
                if !keep(&found.key, &found.value) {
                    // SAFETY: as above; `cell` is slot `index`'s entry.
                    unsafe { unlink(view, &mut state, writer, index, cell, site) };
                    removed = true;
                }
            }
            if removed {
                self.shrink_if_sparse(shard, &mut state, view, rehash, site);
            }
        }
    }

    /// Makes room for `additional` more entries, spread evenly over the shards: each shard
    /// whose table would need to grow before is rebuilt now.
    ///
    /// # Errors
    /// If a shard's table cannot be addressed or allocated; the request is checked whole
    /// first, so only an allocation failure leaves some shards grown and others not.
    #[track_caller]
    pub(crate) fn reserve(
        &self,
        additional: usize,
        rehash: &dyn Fn(&K) -> u64,
    ) -> Result<(), ReserveError> {
        let site = Location::caller();
        let per_shard = additional.div_ceil(self.shard_count());
        // The whole request is checked first: an impossible one changes no shard.
        let largest = self
            .writers
            .iter()
            .map(|writer| writer.len.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        let capacity = largest
            .checked_add(per_shard)
            .and_then(capacity_for)
            .ok_or(ReserveError::CapacityOverflow)?;
        Table::<K, V>::layout(capacity)?;
        for (shard, writer) in self.writers.iter().enumerate() {
            let mut state = writer.lock(site);
            let live = writer.len.load(Ordering::Relaxed);
            let need = live.saturating_add(per_shard);
            // SAFETY: one writer per shard, so `shard` is below the shard count.
            let table = unsafe { self.table(shard) }.load(Ordering::Relaxed);
            let capacity = if table.is_null() {
                0
            } else {
                View::<K, V>::of(table).capacity()
            };
            if need == 0 || state.used + per_shard <= Table::<K, V>::max_used(capacity) {
                continue;
            }
            match self.rebuild(shard, &mut state, need, rehash, site, true) {
                Ok(_) => {}
                Err(Rebuilt::Failed(err)) => return Err(err),
                Err(Rebuilt::Panicked(panic)) => {
                    drop(state);
                    std::panic::resume_unwind(panic)
                }
            }
        }
        Ok(())
    }

    /// Rebuilds every shard whose table is larger than its entries need (and frees the
    /// tables of empty shards).
    #[track_caller]
    pub(crate) fn shrink_to_fit(&self, rehash: &dyn Fn(&K) -> u64) {
        let site = Location::caller();
        for (shard, writer) in self.writers.iter().enumerate() {
            let mut state = writer.lock(site);
            let live = writer.len.load(Ordering::Relaxed);
            // SAFETY: one writer per shard, so `shard` is below the shard count.
            let table = unsafe { self.table(shard) }.load(Ordering::Relaxed);
            if table.is_null() {
                continue;
            }
            let fits = capacity_for(live.max(1)).unwrap_or(usize::MAX);
            if live == 0 || View::<K, V>::of(table).capacity() > fits {
                // A panicking `K::hash` leaves that shard as it was, and is raised.
                if let Err(Rebuilt::Panicked(panic)) =
                    self.rebuild(shard, &mut state, live, rehash, site, false)
                {
                    drop(state);
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }

    /// Replaces the shard's table by a fresh one sized for `live` entries (none for 0), moving
    /// the entry pointers (placed by `rehash`; tombstones are left behind), and retires the
    /// old table. Returns the new table, or the panic of a `rehash` (then nothing changed).
    /// A table that cannot be allocated panics (or aborts, as the allocator says), unless
    /// `fallible`: then that is returned too. Called with the shard's lock held (`state`).
    #[cold]
    #[inline(never)]
    fn rebuild(
        &self,
        shard: usize,
        state: &mut WriterState,
        live: usize,
        rehash: &dyn Fn(&K) -> u64,
        site: &'static Location<'static>,
        fallible: bool,
    ) -> Result<*mut Table<K, V>, Rebuilt> {
        // SAFETY: the caller's `shard` is one it locked, below the shard count.
        let old = unsafe { self.table(shard) }.load(Ordering::Relaxed);
        let new = if live == 0 {
            ptr::null_mut()
        } else {
            let allocated = capacity_for(live)
                .ok_or(ReserveError::CapacityOverflow)
                .and_then(Table::<K, V>::allocate);
            let new = match allocated {
                Ok(table) => table,
                Err(err) if fallible => return Err(Rebuilt::Failed(err)),
                Err(ReserveError::AllocError { bytes }) => alloc::handle_alloc_error(
                    Layout::from_size_align(bytes, TABLE_ALIGN).unwrap_or(Layout::new::<u64>()),
                ),
                Err(err) => panic!("mapguard: cannot size a shard for {live} entries: {err}"),
            };
            // Until published, the new table owns nothing: a panicking hash frees its memory
            // (the entries are still the old table's).
            let filled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if old.is_null() {
                    0
                } else {
                    copy_live(View::of(old), View::of(new), rehash)
                }
            }));
            match filled {
                Ok(used) => state.used = used,
                Err(panic) => {
                    // SAFETY: the new table is unpublished and owns no entry.
                    unsafe { Table::deallocate(new, false) };
                    return Err(Rebuilt::Panicked(panic));
                }
            }
            new
        };
        if new.is_null() {
            state.used = 0;
        }
        // Publishes the copied slots with the table (readers load it with acquire).
        // SAFETY: as above.
        unsafe { self.table(shard) }.store(new, Ordering::Release);
        if !old.is_null() {
            // SAFETY: the old table is unlinked by the store above and came from `allocate`;
            // its entries now belong to the new table (removal retires entries), so it owns
            // only its memory.
            unsafe {
                state.garbage.retire(
                    old.cast(),
                    rebuilt_table_disposal::<K, V>(),
                    table_weight::<K, V>(old),
                    site,
                )
            };
        }
        Ok(new)
    }

    /// Removes every entry: each shard drops its table, and the old tables are retired with
    /// their keys and values. Frees them before returning unless a reader is pinned somewhere.
    #[track_caller]
    pub(crate) fn clear(&self) {
        let site = Location::caller();
        let mut retired = false;
        for (shard, writer) in self.writers.iter().enumerate() {
            let mut state = writer.lock(site);
            // SAFETY: one shard per writer, so `shard` is below the shard count.
            let old = unsafe { self.table(shard) }.swap(ptr::null_mut(), Ordering::Release);
            state.used = 0;
            writer.len.store(0, Ordering::Relaxed);
            if !old.is_null() {
                // SAFETY: unlinked by the swap above; the table owns its keys and values.
                unsafe {
                    state.garbage.retire(
                        old.cast(),
                        cleared_table_disposal::<K, V>(),
                        table_weight::<K, V>(old),
                        site,
                    )
                };
            }
            // For `collect_all`'s advances to count towards all of it.
            state.garbage.stamp_now();
            retired |= state.garbage.len() > 0;
        }
        // Nothing of the map is kept: the value cells go too (unless a reader or a writer
        // still uses some).
        self.collect_all(Some(retired), "a clear", site);
    }

    /// Frees every retired object that no reader can reach any more, advancing the epoch as
    /// far as the pinned readers allow.
    #[track_caller]
    pub(crate) fn collect(&self) {
        self.collect_all(None, "a reclaim", Location::caller());
    }

    /// [`collect`](Self::collect), and for each shard left with no entry and nothing retired,
    /// its value cells too (under the same lock of the shard). `stamped`: whether anything is
    /// retired, if the caller just stamped every shard's garbage; else (`None`) this stamps
    /// them first, under each shard's lock once more.
    ///
    /// # Panics
    /// After every shard is collected, if a value's `Drop` panicked meanwhile: the report
    /// names `what` the call at `site` was and the call that retired the value.
    fn collect_all(&self, stamped: Option<bool>, what: &str, site: &'static Location<'static>) {
        let mut panicked: Option<DropPanic> = None;
        // Every list stamps what it holds first (here, unless the caller just did); then two
        // advances, made here once for all the lists, make all of it expire (unless a reader
        // is pinned).
        let retired = stamped.unwrap_or_else(|| {
            let mut retired = false;
            for writer in self.writers.iter() {
                let mut state = writer.lock(site);
                state.garbage.stamp_now();
                retired |= state.garbage.len() > 0;
            }
            retired
        });
        if retired {
            advance_epoch(2);
        }
        for writer in self.writers.iter() {
            let mut state = writer.lock(site);
            // Also gives back the list's own memory once it is empty.
            if let Err(first) = state.garbage.collect() {
                panicked = Some(match panicked.take() {
                    None => first,
                    Some(earlier) => earlier.merge(first),
                });
            }
            // No value lives in a cell of an empty shard with nothing retired (entries are
            // counted under this lock): its spare cells and chunks go.
            if writer.len.load(Ordering::Relaxed) == 0 && state.garbage.len() == 0 {
                state.garbage.forget_spares();
                state.cells.free_all();
            }
        }
        if let Some(first) = panicked {
            first.raise(&format!(
                "{what} of a ReadMostlyMap at {site} freed the values replaced or removed before"
            ));
        }
    }

    /// Objects waiting to be freed, over all shards.
    #[track_caller]
    pub(crate) fn garbage_len(&self) -> usize {
        let site = Location::caller();
        self.writers
            .iter()
            .map(|writer| writer.lock(site).garbage.len())
            .sum()
    }

    #[cfg(feature = "rayon")]
    /// Panics, naming `what` at `site` and the call that holds the lock, if this thread holds
    /// the write lock of one of this map's shards: work handed to other threads that writes
    /// this map would wait for this thread, which waits for them.
    pub(crate) fn assert_no_write_lock_here(&self, what: &str, site: &'static Location<'static>) {
        if let Some(holder) = Writer::held_among(&self.writers) {
            panic!(
                "mapguard: deadlock avoided: the ReadMostlyMap {what} at {site} runs on other \
                 threads that write this map, while this thread holds a shard's write lock for \
                 the call at {holder}: it was called from code that runs under that lock (a \
                 closure of compute, update, remove_if or retain)"
            );
        }
    }

    /// An iterator over live entries, shard by shard.
    pub(crate) fn iter(&self) -> RawIter<'_, K, V> {
        self.iter_shards(0..self.shard_count())
    }

    /// An iterator over the live entries of the shards of `shards` (each below the shard
    /// count), shard by shard.
    pub(crate) fn iter_shards(&self, shards: std::ops::Range<usize>) -> RawIter<'_, K, V> {
        assert!(
            shards.end <= self.shard_count(),
            "shard range out of bounds"
        );
        RawIter {
            raw: self,
            _guard: pin(),
            shard: shards.start,
            end: shards.end,
            table: None,
            index: 0,
            control: Group(0),
        }
    }
}

/// Why a rebuild left the table as it was.
enum Rebuilt {
    /// A `K::hash` panicked, with this.
    Panicked(Box<dyn std::any::Any + Send>),
    /// The new table could not be addressed or allocated (a fallible rebuild only).
    Failed(ReserveError),
}

/// Removes the entry `old` of slot `index` of `view` (the shard's current table): nulls the
/// slot, makes it never-used again or a tombstone (invariant 4), retires the entry and counts
/// it out. Returns the shard's new entry count.
///
/// # Safety
/// The caller holds the shard's lock (`state`, `writer`), `view` is its current table, and
/// `old` is the non-null entry of slot `index`.
unsafe fn unlink<K, V>(
    view: View<K, V>,
    state: &mut WriterState,
    writer: &Writer,
    index: usize,
    old: *mut EntryCell<K, V>,
    site: &'static Location<'static>,
) -> usize {
    // SAFETY: the caller's table is current and locked, `index` one of its slots.
    unsafe { view.slot(index) }
        .entry
        .store(ptr::null_mut(), Ordering::Release);
    // SAFETY: as above.
    let control = Group(unsafe { view.control(index / GROUP) }.load(Ordering::Relaxed));
    // A group with a never-used slot ends every probe that reaches it, so no key lies beyond
    // it on a probe through it (invariant 4): the slot can be never-used again. Else probes
    // must go on past it: a tombstone.
    if control.never_used() != 0 {
        // SAFETY: as above.
        unsafe { view.set_control(index, 0) };
        state.used -= 1;
    } else {
        // SAFETY: as above.
        unsafe { view.set_control(index, TOMBSTONE) };
    }
    // SAFETY: `old` is unlinked by the store above; it is a cell of this shard.
    unsafe {
        state
            .garbage
            .retire(old.cast(), entry_disposal::<K, V>(), 1, site)
    };
    writer.add_len(-1)
}

/// Moves the entry pointers of `from`'s slots into `to` (fresh, unpublished), each at the end
/// of the probe sequence of its key's hash by `rehash`. Returns how many slots it used.
fn copy_live<K, V>(from: View<K, V>, to: View<K, V>, rehash: &dyn Fn(&K) -> u64) -> usize {
    let mut used = 0;
    for index in 0..from.capacity() {
        // SAFETY: `from` is current and locked by the caller.
        let cell = unsafe { from.slot(index) }.entry.load(Ordering::Relaxed);
        if cell.is_null() {
            continue;
        }
        // SAFETY: a live entry of the locked current table.
        let hash = rehash(&unsafe { entry(cell) }.key);
        // SAFETY: `to` is owned by the caller until published; it has room (`capacity_for`).
        let at = unsafe { vacant(to, hash) };
        // SAFETY: as above.
        unsafe { to.slot(at) }.entry.store(cell, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { to.set_control(at, control_byte(hash)) };
        used += 1;
    }
    used
}

/// The first never-used slot of the probe sequence of `hash` in `table`.
///
/// # Safety
/// The caller holds the shard's lock and `table` is its current table, or owns `table`.
unsafe fn vacant<K, V>(table: View<K, V>, hash: u64) -> usize {
    let mut group = hash as usize;
    loop {
        // SAFETY: the caller keeps the table alive.
        let never_used =
            Group(unsafe { table.control(group) }.load(Ordering::Relaxed)).never_used();
        if never_used != 0 {
            return (group & table.group_mask) * GROUP + lowest(never_used);
        }
        group = group.wrapping_add(1);
    }
}

/// Where a key is, or would go, in a table.
enum Place<K, V> {
    /// In this slot, with this entry.
    Live(usize, *mut EntryCell<K, V>),
    /// Absent: a new entry would go to this slot, the probe sequence's first tombstone
    /// (`fresh: false`) or else the never-used slot that ends it.
    Vacant { index: usize, fresh: bool },
}

/// Where the key is in `table`, or where it would go.
///
/// # Safety
/// The caller holds the shard's lock and `table` is its current table.
unsafe fn find_place<K, V>(
    table: View<K, V>,
    hash: u64,
    eq: &mut impl FnMut(&K) -> bool,
) -> Place<K, V> {
    let byte = control_byte(hash);
    let mut group = hash as usize;
    let mut tombstone = None;
    // SAFETY: the table is allocated (the lock is held).
    unsafe { table.prefetch_group(group) };
    loop {
        // SAFETY: the caller holds the lock on the current table.
        let control = Group(unsafe { table.control(group) }.load(Ordering::Relaxed));
        let first = (group & table.group_mask) * GROUP;
        let mut matches = control.matching(byte);
        while matches != 0 {
            let index = first + lowest(matches);
            // SAFETY: as above.
            let cell = unsafe { table.slot(index) }.entry.load(Ordering::Relaxed);
            // A used control byte has an entry (this thread is the only writer); a match may
            // be another key's byte.
            // SAFETY: a live entry of the locked current table.
            if !cell.is_null() && eq(&unsafe { entry(cell) }.key) {
                return Place::Live(index, cell);
            }
            matches &= matches - 1;
        }
        if tombstone.is_none() {
            let tombstones = control.tombstones();
            if tombstones != 0 {
                tombstone = Some(first + lowest(tombstones));
            }
        }
        let never_used = control.never_used();
        if never_used != 0 {
            return match tombstone {
                Some(index) => Place::Vacant {
                    index,
                    fresh: false,
                },
                None => Place::Vacant {
                    index: first + lowest(never_used),
                    fresh: true,
                },
            };
        }
        group = group.wrapping_add(1);
    }
}

impl<K, V> Drop for RawReadMostly<K, V> {
    fn drop(&mut self) {
        for table in self.all_tables() {
            let table = table.load(Ordering::Relaxed);
            if !table.is_null() {
                // SAFETY: with `&mut self` no reference into the map is alive, so no reader
                // uses the table; it owns its keys and values (retired ones are in the garbage
                // lists, dropped right after this).
                unsafe { Table::deallocate(table, true) };
            }
        }
    }
}

/// Live entries of every shard, each shard's taken from one table (invariant 3).
pub(crate) struct RawIter<'a, K, V> {
    raw: &'a RawReadMostly<K, V>,
    /// Keeps every table and value met during the iteration allocated.
    _guard: EpochGuard,
    /// The next shard to enter, and the end of the range.
    shard: usize,
    end: usize,
    table: Option<View<K, V>>,
    index: usize,
    /// The control word of `index`'s group, loaded when the iteration entered the group.
    control: Group,
}

impl<'a, K, V> Iterator for RawIter<'a, K, V> {
    type Item = Pinned<'a, K, V>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let table = match self.table {
                Some(table) => table,
                None => {
                    if self.shard >= self.end {
                        return None;
                    }
                    // SAFETY: `end` is at most the shard count (`iter_shards`).
                    let packed = unsafe { self.raw.table(self.shard) }.load(Ordering::Acquire);
                    self.shard += 1;
                    if packed.is_null() {
                        continue;
                    }
                    self.index = 0;
                    *self.table.insert(View::of(packed))
                }
            };
            while self.index < table.capacity() {
                let index = self.index;
                self.index += 1;
                if index.is_multiple_of(GROUP) {
                    // SAFETY: loaded while pinned by `_guard`, which lives as long as the
                    // iterator.
                    let word = unsafe { table.control(index / GROUP) };
                    self.control = Group(word.load(Ordering::Acquire));
                }
                if self.control.is_used(index % GROUP) {
                    // SAFETY: as above; the index is below the capacity.
                    let cell = unsafe { table.slot(index) }.entry.load(Ordering::Acquire);
                    if !cell.is_null() {
                        // SAFETY: pinned by `_guard` (and now by a nested pin too) since before
                        // the entry pointer was loaded, non-null, with an acquire load.
                        return Some(unsafe { Pinned::new(entry(cell), pin()) });
                    }
                }
            }
            self.table = None;
        }
    }
}
