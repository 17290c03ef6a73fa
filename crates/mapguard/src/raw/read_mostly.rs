//! The table behind [`ReadMostlyMap`](crate::ReadMostlyMap): shards of open-addressing slot
//! arrays whose slots point to immutable entries, read without locks under an epoch pin.
//!
//! # Layout
//! Each shard has one [`Table`]: a power-of-two array of [`Slot`]s, each a 64-bit tag (the key's
//! hash with the top bit set; 0 = never used) and a pointer to a boxed [`Entry`] `{key, value}`.
//! The low bit of the pointer marks a removed entry ([`DEAD`]) that still holds its key.
//!
//! # Invariants (all writes hold the shard's mutex; readers hold none)
//! 1. A slot, once tagged, keeps its tag and its key for the life of the table: a key lives in at
//!    most one slot of a table, overwrites and re-inserts reuse that slot, and removal only
//!    sets [`DEAD`]. So a scan of one table never meets a key twice, and a reader probing for a
//!    key present all along finds it.
//! 2. An entry is never written after it is published. Overwriting publishes a new entry
//!    (release store) and retires the old one; a reader sees either, whole.
//! 3. A table is never written after a rebuild has published its successor (release store of
//!    the shard pointer). Readers and iterators still on it see a frozen, consistent state.
//! 4. At most 5/8 of a table's slots are tagged, so every probe ends at an untagged slot.
//! 5. Entries and tables are freed only through [`Garbage::retire`] after they were unlinked,
//!    or with exclusive access (drop); readers that can reach them are pinned.
//!
//! This module owns every pointer of the map; the public wrapper hashes keys and shapes the
//! API, and never sees a raw pointer.

use std::alloc::{self, Layout};
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use super::epoch::{EpochGuard, Garbage, pin};
use crate::error::ReserveError;

/// Tag bit: set in every used slot's tag, so that 0 means "never used".
const TAG_BIT: u64 = 1 << 63;
/// Pointer bit marking a removed entry that keeps its slot (and key) until the next rebuild.
const DEAD: usize = 1;
/// The smallest table that is allocated.
const MIN_CAPACITY: usize = 8;

/// A key and its value, immutable once published.
#[repr(C, align(4))]
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
}

#[repr(C)]
struct Slot<K, V> {
    tag: AtomicU64,
    entry: AtomicPtr<Entry<K, V>>,
}

/// A shard's slot array: a 64-byte-aligned allocation of a power-of-two number of slots. It is
/// only ever handled through a *packed* pointer: the address with log2(capacity) in its low 6
/// bits, so a reader gets the slots and the mask from the one word it loads.
struct Table<K, V> {
    _slots: PhantomData<Slot<K, V>>,
}

/// Alignment of slot arrays (and so the number of low pointer bits free for log2(capacity)).
const TABLE_ALIGN: usize = 64;

/// The table every shard starts with when no capacity is asked for: one untagged slot, never
/// written. Laid out like the slot of any `K`, `V` (two words).
#[repr(C, align(64))]
struct EmptyTable {
    tag: AtomicU64,
    entry: AtomicPtr<()>,
}

static EMPTY: EmptyTable = EmptyTable {
    tag: AtomicU64::new(0),
    entry: AtomicPtr::new(ptr::null_mut()),
};

/// The packed pointer of the empty table (capacity 1, log2 = 0).
fn empty_table<K, V>() -> *mut Table<K, V> {
    (&raw const EMPTY).cast::<Table<K, V>>().cast_mut()
}

/// The slots and mask of a table, from its packed pointer.
struct View<K, V> {
    slots: *const Slot<K, V>,
    mask: usize,
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
        Self {
            slots: packed.map_addr(|addr| addr & !(TABLE_ALIGN - 1)).cast(),
            mask: (1usize << (packed.addr() & (TABLE_ALIGN - 1))) - 1,
        }
    }

    #[inline(always)]
    fn capacity(self) -> usize {
        self.mask + 1
    }

    /// Slot `index & mask`.
    ///
    /// # Safety
    /// The table is allocated for `'t` (it is current under the shard's lock, or the caller is
    /// pinned since loading it, or it is owned exclusively).
    #[inline(always)]
    unsafe fn slot<'t>(self, index: usize) -> &'t Slot<K, V> {
        // SAFETY: the allocation holds `mask + 1` slots (the empty table one) and the index is
        // masked; the caller keeps the allocation alive for `'t`.
        unsafe { &*self.slots.add(index & self.mask) }
    }
}

impl<K, V> Table<K, V> {
    fn layout(capacity: usize) -> Result<Layout, ReserveError> {
        let slots =
            Layout::array::<Slot<K, V>>(capacity).map_err(|_| ReserveError::CapacityOverflow)?;
        slots
            .align_to(TABLE_ALIGN)
            .map_err(|_| ReserveError::CapacityOverflow)
    }

    /// A zeroed (all untagged) table of `capacity` slots, a power of two; returns its packed
    /// pointer.
    fn allocate(capacity: usize) -> Result<*mut Self, ReserveError> {
        debug_assert!(capacity.is_power_of_two() && capacity >= MIN_CAPACITY);
        let layout = Self::layout(capacity)?;
        // SAFETY: the layout has a non-zero size (at least `MIN_CAPACITY` slots).
        let table = unsafe { alloc::alloc_zeroed(layout) };
        if table.is_null() {
            return Err(ReserveError::AllocError {
                bytes: layout.size(),
            });
        }
        // Zeroed memory is a valid untagged slot (a zero `AtomicU64` and a null `AtomicPtr`).
        let log2 = capacity.trailing_zeros() as usize;
        Ok(table.map_addr(|addr| addr | log2).cast())
    }

    /// Frees the slot array only (not the entries).
    ///
    /// # Safety
    /// - `packed` came from [`allocate`](Self::allocate) (it is not the empty table).
    /// - No thread uses it any more, and it is freed once.
    unsafe fn deallocate(packed: *mut Self) {
        let view = View::of(packed);
        let layout = Self::layout(view.capacity()).expect("the layout was valid when allocated");
        // SAFETY: allocated with this layout (see above), freed once.
        unsafe { alloc::dealloc(view.slots.cast_mut().cast(), layout) };
    }

    /// Frees every entry the table points to, then the table.
    ///
    /// # Safety
    /// As for [`deallocate`](Self::deallocate), and no other table or garbage list still owns
    /// its entries.
    unsafe fn deallocate_with_entries(packed: *mut Self) {
        let view = View::of(packed);
        for index in 0..view.capacity() {
            // SAFETY: the caller says the table is live and ours alone.
            let entry = untag(unsafe { view.slot(index) }.entry.load(Ordering::Relaxed));
            if !entry.is_null() {
                // SAFETY: every entry was made by `Box::into_raw` and this table owns it now.
                drop(unsafe { Box::from_raw(entry) });
            }
        }
        // SAFETY: see the contract.
        unsafe { Self::deallocate(packed) };
    }

    /// Most slots a table of this capacity may have tagged (invariant 4).
    fn max_tagged(capacity: usize) -> usize {
        if capacity < MIN_CAPACITY {
            0
        } else {
            capacity / 8 * 5
        }
    }
}

/// `retire` callbacks.
unsafe fn free_entry<K, V>(entry: *mut ()) {
    // SAFETY: retired entries came from `Box::into_raw` and are freed once (`Garbage::retire`).
    drop(unsafe { Box::from_raw(entry.cast::<Entry<K, V>>()) });
}

unsafe fn free_table<K, V>(table: *mut ()) {
    // SAFETY: retired tables came from `Table::allocate` and are freed once.
    unsafe { Table::<K, V>::deallocate(table.cast()) };
}

unsafe fn free_table_with_entries<K, V>(table: *mut ()) {
    // SAFETY: as above, and a table retired this way owns its entries (it was cleared).
    unsafe { Table::<K, V>::deallocate_with_entries(table.cast()) };
}

#[inline(always)]
fn untag<K, V>(entry: *mut Entry<K, V>) -> *mut Entry<K, V> {
    entry.map_addr(|addr| addr & !DEAD)
}

#[inline(always)]
fn is_dead<K, V>(entry: *mut Entry<K, V>) -> bool {
    entry.addr() & DEAD != 0
}

/// A reference kept valid by an epoch pin of the calling thread.
///
/// `!Send`: the pin belongs to the thread that took it.
pub(crate) struct Pinned<'a, T> {
    ptr: NonNull<T>,
    _guard: EpochGuard,
    _borrow: PhantomData<&'a T>,
}

impl<T> Deref for Pinned<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: `ptr` was reachable from the map while the thread was pinned, and the guard
        // kept here keeps that pin: the object is not freed before this `Pinned` is dropped
        // (invariant 5), and it is never written after publication (invariant 2).
        unsafe { self.ptr.as_ref() }
    }
}

impl<'a, T> Pinned<'a, T> {
    /// # Safety
    /// The calling thread is pinned (by a guard alive now) and `ptr` was reachable from the
    /// map during that pin, with the map borrowed for `'a`.
    #[inline(always)]
    unsafe fn new(ptr: *const T) -> Self {
        // SAFETY: the caller's contract, and a nested pin keeps the thread pinned.
        unsafe { Self::with_guard(ptr, pin()) }
    }

    /// As [`new`](Self::new), keeping the caller's own `guard`.
    ///
    /// # Safety
    /// `guard` is alive since before `ptr` was loaded from the map, with the map borrowed for
    /// `'a`.
    #[inline(always)]
    unsafe fn with_guard(ptr: *const T, guard: EpochGuard) -> Self {
        Self {
            // SAFETY: the caller gives a pointer to a live object.
            ptr: unsafe { NonNull::new_unchecked(ptr.cast_mut()) },
            _guard: guard,
            _borrow: PhantomData,
        }
    }
}

/// What a [`RawReadMostly::write`] decision does to the key.
pub(crate) enum Decision<V> {
    /// Nothing.
    Keep,
    /// Publish an entry of the looked-up key (which must then be owned) with this value.
    Store(V),
    /// Remove the live entry, if any.
    Remove,
}

/// The key a write looks up: owned (it can be stored) or borrowed (it cannot).
pub(crate) trait Lookup<K> {
    /// Whether a stored key is this one.
    fn matches(&self, stored: &K) -> bool;
    /// The key to store, if owned.
    fn into_owned(self) -> Option<K>;
}

/// The entries a write saw and left.
pub(crate) struct Outcome<'a, K, V> {
    /// The live entry before the write, if any.
    pub(crate) previous: Option<Pinned<'a, Entry<K, V>>>,
    /// The live entry after the write, if any.
    pub(crate) current: Option<Pinned<'a, Entry<K, V>>>,
}

/// The writer side of a shard: its lock, tagged-slot count and garbage. Padded so that
/// writers of different shards do not share a line, and readers never read it.
struct Writer {
    state: Mutex<WriterState>,
    len: AtomicUsize,
}

struct WriterState {
    tagged: usize,
    garbage: Garbage,
}

/// Where a key is, or would go, in a table.
enum Place<K, V> {
    Live(usize, *mut Entry<K, V>),
    Dead(usize, *mut Entry<K, V>),
    Vacant(usize),
}

/// The sharded slot tables of a read-mostly map. See the module docs.
pub(crate) struct RawReadMostly<K, V> {
    /// The current table of each shard: the only shared words readers load before the slots.
    tables: Box<[AtomicPtr<Table<K, V>>]>,
    writers: Box<[CachePadded<Writer>]>,
    /// Right shift that brings the shard bits (the top bits of the hash) down to bit 0.
    shift: u32,
    _owns: PhantomData<Box<Entry<K, V>>>,
}

// SAFETY: the map owns its keys and values; sending it sends them.
unsafe impl<K: Send, V: Send> Send for RawReadMostly<K, V> {}
// SAFETY: through `&RawReadMostly`, threads read `&K`/`&V` concurrently (needs `Sync`) and
// move keys and values in and drop them on any thread (needs `Send`).
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for RawReadMostly<K, V> {}

impl<K, V> RawReadMostly<K, V> {
    /// `shards` shards (a power of two) with room for `capacity` entries spread over them.
    pub(crate) fn new(shards: usize, capacity: usize) -> Result<Self, ReserveError> {
        debug_assert!(shards.is_power_of_two());
        let per_shard = capacity.div_ceil(shards);
        let table_capacity = if per_shard == 0 {
            0
        } else {
            per_shard
                .checked_mul(2)
                .and_then(usize::checked_next_power_of_two)
                .ok_or(ReserveError::CapacityOverflow)?
                .max(MIN_CAPACITY)
        };
        if table_capacity > 0 {
            // Fail before allocating anything on a size that can never fit.
            Table::<K, V>::layout(table_capacity)?;
        }
        let mut tables = Vec::with_capacity(shards);
        for _ in 0..shards {
            let table = if table_capacity == 0 {
                empty_table()
            } else {
                match Table::allocate(table_capacity) {
                    Ok(table) => table,
                    Err(err) => {
                        let built = Self::assemble(tables, shards);
                        drop(built);
                        return Err(err);
                    }
                }
            };
            tables.push(AtomicPtr::new(table));
        }
        Ok(Self::assemble(tables, shards))
    }

    fn assemble(tables: Vec<AtomicPtr<Table<K, V>>>, shards: usize) -> Self {
        let writers = (0..tables.len())
            .map(|_| {
                CachePadded::new(Writer {
                    state: Mutex::new(WriterState {
                        tagged: 0,
                        garbage: Garbage::new(),
                    }),
                    len: AtomicUsize::new(0),
                })
            })
            .collect();
        Self {
            tables: tables.into_boxed_slice(),
            writers,
            shift: 64 - shards.trailing_zeros(),
            _owns: PhantomData,
        }
    }

    /// The number of shards.
    pub(crate) fn shard_count(&self) -> usize {
        self.tables.len()
    }

    #[inline(always)]
    fn shard_for(&self, hash: u64) -> usize {
        // `checked_shr` gives 0 for one shard (shift 64).
        hash.checked_shr(self.shift).unwrap_or(0) as usize
    }

    /// The number of live entries, summed over the shards without locking.
    pub(crate) fn len(&self) -> usize {
        self.writers
            .iter()
            .map(|writer| writer.len.load(Ordering::Relaxed))
            .sum()
    }

    /// Slots allocated over all shards (how many entries fit before some table is rebuilt is
    /// 5/8 of this).
    pub(crate) fn slot_count(&self) -> usize {
        self.tables
            .iter()
            .map(|table| View::of(table.load(Ordering::Acquire)).capacity())
            .filter(|&capacity| capacity >= MIN_CAPACITY)
            .sum()
    }

    /// Scans the current table of the hash's shard for the key. The caller is pinned.
    #[inline(always)]
    fn find<'g>(
        &self,
        hash: u64,
        mut eq: impl FnMut(&K) -> bool,
        _guard: &'g EpochGuard,
    ) -> Option<&'g Entry<K, V>> {
        let shard = self.shard_for(hash);
        // SAFETY (for the three dereferences below): the table and entries reached from the
        // shard pointer while pinned stay allocated until the guard drops (invariant 5); the
        // acquire loads pair with the release stores that published them.
        let table = View::of(self.tables[shard].load(Ordering::Acquire));
        let tag = hash | TAG_BIT;
        let mut index = hash as usize;
        loop {
            // SAFETY: see above.
            let slot = unsafe { table.slot(index) };
            let found = slot.tag.load(Ordering::Acquire);
            if found == tag {
                let entry = slot.entry.load(Ordering::Acquire);
                // SAFETY: see above; a tagged slot always points to an entry.
                let live = unsafe { &*untag(entry) };
                if eq(&live.key) {
                    return if is_dead(entry) { None } else { Some(live) };
                }
            } else if found == 0 {
                return None;
            }
            index = index.wrapping_add(1);
        }
    }

    /// A pinned reference to the live entry of the key.
    #[inline]
    pub(crate) fn get(
        &self,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
    ) -> Option<Pinned<'_, Entry<K, V>>> {
        let guard = pin();
        let entry: *const Entry<K, V> = self.find(hash, eq, &guard)?;
        // SAFETY: pinned by `guard` since before the entry was found in the map.
        Some(unsafe { Pinned::with_guard(entry, guard) })
    }

    /// Applies `read` to the live entry of the key, pinned only for the call.
    #[inline]
    pub(crate) fn read<R>(
        &self,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
        read: impl FnOnce(&Entry<K, V>) -> R,
    ) -> Option<R> {
        let guard = pin();
        self.find(hash, eq, &guard).map(read)
    }

    /// Looks up the key under the shard's lock and applies `decide`'s choice. `decide` runs
    /// under the lock; if it panics nothing changes.
    ///
    /// # Panics
    /// If `decide` stores with a borrowed `key`.
    pub(crate) fn write(
        &self,
        hash: u64,
        key: impl Lookup<K>,
        decide: impl FnOnce(Option<&Entry<K, V>>) -> Decision<V>,
    ) -> Outcome<'_, K, V> {
        // Pinned before anything is retired: the entries returned stay valid while pinned.
        let _guard = pin();
        let shard = self.shard_for(hash);
        let writer = &self.writers[shard];
        let mut state = writer.state.lock();
        let mut table = self.tables[shard].load(Ordering::Relaxed);
        // SAFETY: writers hold the lock, so this table is current and not retired.
        let mut place = unsafe { find_place(View::of(table), hash, &mut |k| key.matches(k)) };
        let live = match place {
            // SAFETY: a live entry of the current table is valid while the lock is held.
            Place::Live(_, entry) => Some(unsafe { &*entry }),
            _ => None,
        };
        let mut outcome = Outcome {
            previous: None,
            current: None,
        };
        match decide(live) {
            Decision::Keep => {
                // SAFETY: pinned, and the entry is in the map.
                outcome.current = live.map(|entry| unsafe { Pinned::new(entry) });
            }
            Decision::Store(value) => {
                let key = key.into_owned().expect("only an owned key can be stored");
                let new = Box::into_raw(Box::new(Entry { key, value }));
                match place {
                    Place::Live(index, old) => {
                        // SAFETY: `table` is current and locked; slot `index` holds `old`.
                        unsafe { View::of(table).slot(index) }
                            .entry
                            .store(new, Ordering::Release);
                        // SAFETY: `old` is unlinked by the store above; it came from a Box.
                        unsafe { state.garbage.retire(old.cast(), free_entry::<K, V>) };
                        // SAFETY: pinned since before `old` was retired.
                        outcome.previous = Some(unsafe { Pinned::new(old) });
                    }
                    Place::Dead(index, old) => {
                        // SAFETY: as above.
                        unsafe { View::of(table).slot(index) }
                            .entry
                            .store(new, Ordering::Release);
                        // SAFETY: as above.
                        unsafe { state.garbage.retire(old.cast(), free_entry::<K, V>) };
                        writer.len.fetch_add(1, Ordering::Relaxed);
                    }
                    Place::Vacant(_) => {
                        // SAFETY: `table` is current and locked.
                        let capacity = View::of(table).capacity();
                        if state.tagged + 1 > Table::<K, V>::max_tagged(capacity) {
                            let live = writer.len.load(Ordering::Relaxed);
                            table = self.rebuild(shard, &mut state, live + 1);
                            // The key was absent and a rebuild keeps the same keys: it goes to
                            // the end of its probe sequence in the new table.
                            // SAFETY: the new table is current and locked.
                            place = unsafe { find_place(View::of(table), hash, &mut |_| false) };
                        }
                        let Place::Vacant(index) = place else {
                            unreachable!("a rebuild keeps the same keys");
                        };
                        // SAFETY: current and locked.
                        let slot = unsafe { View::of(table).slot(index) };
                        // Entry before tag: a reader that sees the tag finds the entry.
                        slot.entry.store(new, Ordering::Release);
                        slot.tag.store(hash | TAG_BIT, Ordering::Release);
                        state.tagged += 1;
                        writer.len.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // SAFETY: pinned, and `new` was just published.
                outcome.current = Some(unsafe { Pinned::new(new) });
            }
            Decision::Remove => {
                if let Place::Live(index, old) = place {
                    // SAFETY: current and locked.
                    let slot = unsafe { View::of(table).slot(index) };
                    slot.entry
                        .store(old.map_addr(|addr| addr | DEAD), Ordering::Release);
                    let len = writer.len.fetch_sub(1, Ordering::Relaxed) - 1;
                    // SAFETY: pinned; `old` stays allocated as the dead entry of its slot.
                    outcome.previous = Some(unsafe { Pinned::new(old) });
                    // SAFETY: current and locked.
                    let capacity = View::of(table).capacity();
                    if capacity > MIN_CAPACITY && len * 8 < capacity {
                        self.rebuild(shard, &mut state, len);
                    }
                }
            }
        }
        outcome
    }

    /// Replaces the shard's table by a fresh one sized for `live` entries, copying the live
    /// entry pointers and retiring the dead entries and the old slot array. Returns the new
    /// table. Called with the shard's lock held (`state`).
    #[cold]
    fn rebuild(&self, shard: usize, state: &mut WriterState, live: usize) -> *mut Table<K, V> {
        let capacity = live
            .checked_mul(2)
            .and_then(usize::checked_next_power_of_two)
            .unwrap_or_else(|| panic!("mapguard: a shard of {live} entries cannot be addressed"))
            .max(MIN_CAPACITY);
        let new = match Table::<K, V>::allocate(capacity) {
            Ok(table) => table,
            Err(ReserveError::AllocError { bytes }) => alloc::handle_alloc_error(
                Layout::from_size_align(bytes, 8).unwrap_or(Layout::new::<u64>()),
            ),
            Err(err) => panic!("mapguard: cannot grow a shard to {capacity} slots: {err}"),
        };
        let old = self.tables[shard].load(Ordering::Relaxed);
        let mut dead = Vec::new();
        let mut tagged = 0;
        {
            // SAFETY: the old table is current and locked; the new one is not shared yet.
            let (from, to) = (View::of(old), View::of(new));
            for index in 0..from.capacity() {
                // SAFETY: the old table is current and locked.
                let slot = unsafe { from.slot(index) };
                let tag = slot.tag.load(Ordering::Relaxed);
                if tag == 0 {
                    continue;
                }
                let entry = slot.entry.load(Ordering::Relaxed);
                if is_dead(entry) {
                    dead.push(untag(entry));
                    continue;
                }
                let mut at = tag as usize;
                // SAFETY: the new table is ours until published.
                while unsafe { to.slot(at) }.tag.load(Ordering::Relaxed) != 0 {
                    at = at.wrapping_add(1);
                }
                // SAFETY: as above.
                let target = unsafe { to.slot(at) };
                target.entry.store(entry, Ordering::Relaxed);
                target.tag.store(tag, Ordering::Relaxed);
                tagged += 1;
            }
        }
        // Publishes the copied slots with the table (readers load it with acquire).
        self.tables[shard].store(new, Ordering::Release);
        state.tagged = tagged;
        if old != empty_table() {
            // SAFETY: the old table is unlinked by the store above and came from `allocate`.
            unsafe { state.garbage.retire(old.cast(), free_table::<K, V>) };
        }
        for entry in dead {
            // SAFETY: dead entries were reachable only from the old table, now unlinked.
            unsafe { state.garbage.retire(entry.cast(), free_entry::<K, V>) };
        }
        new
    }

    /// Removes every entry: each shard gets the empty table, and the old tables are retired
    /// with their entries. Frees them before returning unless a reader is pinned somewhere.
    pub(crate) fn clear(&self) {
        for (shard, writer) in self.writers.iter().enumerate() {
            let mut state = writer.state.lock();
            let old = self.tables[shard].swap(empty_table(), Ordering::Release);
            state.tagged = 0;
            writer.len.store(0, Ordering::Relaxed);
            if old != empty_table() {
                // SAFETY: unlinked by the swap above; the table owns its entries (live and
                // dead), and nothing else does.
                unsafe {
                    state
                        .garbage
                        .retire(old.cast(), free_table_with_entries::<K, V>)
                };
            }
        }
        self.collect();
    }

    /// Frees every retired object that no reader can reach any more, advancing the epoch as
    /// far as the pinned readers allow.
    pub(crate) fn collect(&self) {
        let mut first = true;
        for writer in self.writers.iter() {
            let mut state = writer.state.lock();
            if state.garbage.len() > 0 {
                // Two advances make everything retired so far expire; later shards find the
                // epoch already moved.
                state.garbage.collect(if first { 2 } else { 0 });
                first = false;
            }
        }
    }

    /// Objects waiting to be freed, over all shards.
    pub(crate) fn garbage_len(&self) -> usize {
        self.writers
            .iter()
            .map(|writer| writer.state.lock().garbage.len())
            .sum()
    }

    /// An iterator over live entries, shard by shard.
    pub(crate) fn iter(&self) -> RawIter<'_, K, V> {
        RawIter {
            raw: self,
            _guard: pin(),
            shard: 0,
            table: ptr::null_mut(),
            index: 0,
        }
    }
}

/// Where the key is in `table`, or the untagged slot that ends its probe sequence.
///
/// # Safety
/// The caller holds the shard's lock and `table` is its current table.
unsafe fn find_place<K, V>(
    table: View<K, V>,
    hash: u64,
    eq: &mut impl FnMut(&K) -> bool,
) -> Place<K, V> {
    let tag = hash | TAG_BIT;
    let mut index = hash as usize & table.mask;
    loop {
        // SAFETY: the caller holds the lock on the current table.
        let slot = unsafe { table.slot(index) };
        let found = slot.tag.load(Ordering::Relaxed);
        if found == 0 {
            return Place::Vacant(index);
        }
        if found == tag {
            let entry = slot.entry.load(Ordering::Relaxed);
            // SAFETY: tagged slots of the current table point to entries owned by it; the lock
            // keeps them from being retired.
            if eq(unsafe { &(*untag(entry)).key }) {
                return if is_dead(entry) {
                    Place::Dead(index, untag(entry))
                } else {
                    Place::Live(index, entry)
                };
            }
        }
        index = (index + 1) & table.mask;
    }
}

impl<K, V> Drop for RawReadMostly<K, V> {
    fn drop(&mut self) {
        for table in self.tables.iter_mut() {
            let table = *table.get_mut();
            if table != empty_table() {
                // SAFETY: with `&mut self` no reference into the map is alive, so no reader
                // uses the table; it owns its entries (retired ones are in the garbage lists,
                // dropped right after this).
                unsafe { Table::deallocate_with_entries(table) };
            }
        }
    }
}

/// Live entries of every shard, each shard's taken from one table (invariant 3).
pub(crate) struct RawIter<'a, K, V> {
    raw: &'a RawReadMostly<K, V>,
    /// Keeps every table and entry met during the iteration allocated.
    _guard: EpochGuard,
    shard: usize,
    table: *mut Table<K, V>,
    index: usize,
}

impl<'a, K, V> Iterator for RawIter<'a, K, V> {
    type Item = Pinned<'a, Entry<K, V>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.table.is_null() {
                let table = self.raw.tables.get(self.shard)?;
                self.table = table.load(Ordering::Acquire);
                self.index = 0;
            }
            let table = View::of(self.table);
            while self.index < table.capacity() {
                // SAFETY: loaded while pinned by `_guard`, which lives as long as the iterator.
                let slot = unsafe { table.slot(self.index) };
                self.index += 1;
                if slot.tag.load(Ordering::Acquire) != 0 {
                    let entry = slot.entry.load(Ordering::Acquire);
                    if !is_dead(entry) {
                        // SAFETY: pinned by `_guard`; the entry was reachable from the map.
                        return Some(unsafe { Pinned::new(entry) });
                    }
                }
            }
            self.table = ptr::null_mut();
            self.shard += 1;
        }
    }
}
