//! The table behind [`ReadMostlyMap`](crate::ReadMostlyMap): shards of open-addressing slot
//! arrays with the keys inline and each value behind an atomic pointer, read without locks
//! under an epoch pin.
//!
//! # Layout
//! Each shard has one table: a power-of-two array of [`Slot`]s, each holding a 64-bit tag (the
//! key's hash with the top bit set; 0 = never used), the key itself, and an atomic pointer to
//! the boxed value (null = removed). A reader finds a key by comparing tags and keys in the slot
//! array alone; it follows the value pointer only when it reads the value.
//!
//! # Invariants (all writes hold the shard's mutex; readers hold none)
//! 1. A slot's key is written once, before its tag is published (release store), and then never
//!    written again for the life of the table: a key lives in at most one slot of a table,
//!    overwrites and re-inserts reuse that slot, and removal only nulls the value pointer. So a
//!    scan of one table never meets a key twice, and a probe for a key present all along finds
//!    it.
//! 2. A value is never written after it is published. Overwriting publishes a new box (release
//!    store) and retires the old one; a reader sees either, whole.
//! 3. A table is never written after a rebuild has published its successor (release store of
//!    the shard pointer). Readers and iterators still on it see a frozen, consistent state. A
//!    rebuild *clones* the live keys into the new table (readers may still be reading the old
//!    copies) and moves the value pointers.
//! 4. At most half of a table's slots are tagged, so every probe ends at an untagged slot. A
//!    shard without a table has a null pointer.
//! 5. Values and tables are freed only through [`Garbage::retire`] after they were unlinked, or
//!    with exclusive access (drop); readers that can reach them are pinned. A value's box is
//!    reused for a later value of its shard only under the same condition: once it could be
//!    freed, the garbage list drops the value in it and keeps the box as a spare, so a reader
//!    never sees a box refilled.
//!
//! This module owns every pointer of the map; the public wrapper hashes keys and shapes the
//! API, and never sees a raw pointer.
//!
//! # Checking
//! The slots' atomics, the keys' cells, the shard mutex and the re-entrance thread-local come
//! from `primitive`: under `--cfg loom` this very code runs on loom's (with slots built one by
//! one instead of zeroed memory), and loom tracks every key read against the write that
//! initialized it and the drop that frees its table. `tests/loom_read_mostly.rs` drives the
//! public map through growth, overwrite, removal, a table freed by its last removal, two
//! writers on one shard, and reclamation.

use std::alloc::{self, Layout};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering;

use crossbeam_utils::CachePadded;

use super::epoch::{Disposal, EpochGuard, Garbage, Recycle, pin};
use super::lock_stats::{LockStats, WaitKind};
use super::primitive::{
    AtomicPtr, AtomicU64, AtomicUsize, Mutex, MutexGuard, TrackedCell, thread_local,
};
use crate::error::ReserveError;

/// Tag bit: set in every used slot's tag, so that 0 means "never used".
const TAG_BIT: u64 = 1 << 63;
/// The smallest table that is allocated.
const MIN_CAPACITY: usize = 8;
/// Alignment of slot arrays (and so the number of low pointer bits free for log2(capacity)).
const TABLE_ALIGN: usize = 64;

struct Slot<K, V> {
    tag: AtomicU64,
    value: AtomicPtr<V>,
    key: TrackedCell<MaybeUninit<K>>,
}

/// A shard's slot array: a 64-byte-aligned allocation of a power-of-two number of slots. It is
/// only ever handled through a *packed* pointer: the address with log2(capacity) in its low 6
/// bits, so a reader gets the slots and the mask from the one word it loads.
struct Table<K, V> {
    _slots: PhantomData<Slot<K, V>>,
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
        // SAFETY: the allocation holds `mask + 1` slots and the index is masked; the caller
        // keeps the allocation alive for `'t`.
        unsafe { &*self.slots.add(index & self.mask) }
    }
}

impl<K, V> Slot<K, V> {
    /// The slot's key.
    ///
    /// # Safety
    /// The slot's tag was seen non-zero with an acquire load (or by the writer that set it), and
    /// the table is alive for `'t`.
    #[inline(always)]
    unsafe fn key(&self) -> &K {
        // SAFETY: a tagged slot's key was initialized before the tag was published and is never
        // written while the table is reachable (invariant 1).
        unsafe { (*self.key.read_ptr()).assume_init_ref() }
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
        if layout.size() == 0 {
            // Only a zero-sized slot could get here, which a slot (two atomics) is not.
            return Err(ReserveError::CapacityOverflow);
        }
        // SAFETY: the layout has a non-zero size (checked above).
        let table = unsafe { alloc::alloc_zeroed(layout) };
        if table.is_null() {
            return Err(ReserveError::AllocError {
                bytes: layout.size(),
            });
        }
        // Zeroed memory is an untagged slot: zero tag, null value, key not yet initialized.
        // Loom's atomics and cells are handles to its model state: under loom each slot is
        // built for real.
        #[cfg(loom)]
        for index in 0..capacity {
            let untagged = Slot::<K, V> {
                tag: AtomicU64::new(0),
                value: AtomicPtr::new(ptr::null_mut()),
                key: TrackedCell::new(MaybeUninit::uninit()),
            };
            // SAFETY: the allocation holds `capacity` slots and is not shared yet.
            unsafe { table.cast::<Slot<K, V>>().add(index).write(untagged) };
        }
        let log2 = capacity.trailing_zeros() as usize;
        Ok(table.map_addr(|addr| addr | log2).cast())
    }

    /// Drops the keys of the tagged slots, and the values too if `with_values`, then frees the
    /// slot array.
    ///
    /// # Safety
    /// - `packed` came from [`allocate`](Self::allocate) and is freed once.
    /// - No thread uses it any more.
    /// - With `with_values`, the table owns its values (nothing else frees them).
    unsafe fn deallocate(packed: *mut Self, with_values: bool) {
        let view = View::of(packed);
        for index in 0..view.capacity() {
            // SAFETY: the caller says the table is live and ours alone.
            let slot = unsafe { view.slot(index) };
            if slot.tag.load(Ordering::Relaxed) == 0 {
                continue;
            }
            if with_values {
                let value = slot.value.load(Ordering::Relaxed);
                if !value.is_null() {
                    // SAFETY: values come from `Box::into_raw`; the table owns this one.
                    drop(unsafe { Box::from_raw(value) });
                }
            }
            // SAFETY: tagged slots hold an initialized key, dropped once, here.
            unsafe { (*slot.key.write_ptr()).assume_init_drop() };
        }
        let layout = Self::layout(view.capacity()).expect("the layout was valid when allocated");
        // SAFETY: allocated with this layout (see above), freed once.
        unsafe { alloc::dealloc(view.slots.cast_mut().cast(), layout) };
    }

    /// Most slots a table of this capacity may have tagged (invariant 4).
    fn max_tagged(capacity: usize) -> usize {
        capacity / 2
    }
}

/// `retire` callbacks.
unsafe fn free_value<V>(value: *mut ()) {
    // SAFETY: retired values came from `Box::into_raw` and are freed once (`Garbage::retire`).
    drop(unsafe { Box::from_raw(value.cast::<V>()) });
}

unsafe fn drop_value<V>(value: *mut ()) {
    // SAFETY: a retired value that no reader holds any more (`Garbage::retire`), dropped once;
    // its allocation stays, empty.
    unsafe { ptr::drop_in_place(value.cast::<V>()) };
}

unsafe fn free_spare_value<V>(value: *mut ()) {
    // SAFETY: an emptied value box (`drop_value`): freed as a box of uninitialized memory,
    // which has the same layout and runs no drop.
    drop(unsafe { Box::from_raw(value.cast::<MaybeUninit<V>>()) });
}

unsafe fn free_table_keys<K, V>(table: *mut ()) {
    // SAFETY: retired tables came from `Table::allocate` and are freed once; a table retired
    // by a rebuild has handed its values to its successor.
    unsafe { Table::<K, V>::deallocate(table.cast(), false) };
}

unsafe fn free_table_all<K, V>(table: *mut ()) {
    // SAFETY: as above; a table retired by `clear` still owns its values.
    unsafe { Table::<K, V>::deallocate(table.cast(), true) };
}

/// A replaced or removed value: its box is reused for a later value of the same shard once no
/// reader can reach it (up to the garbage list's spare count), or freed.
fn value_disposal<V>() -> &'static Disposal {
    const {
        &Disposal {
            free: free_value::<V>,
            recycle: Some(Recycle {
                drop_contents: drop_value::<V>,
                free_spare: free_spare_value::<V>,
            }),
        }
    }
}

/// A table replaced by a rebuild (its values moved on).
fn rebuilt_table_disposal<K, V>() -> &'static Disposal {
    const {
        &Disposal {
            free: free_table_keys::<K, V>,
            recycle: None,
        }
    }
}

/// A table dropped by `clear` (with its values).
fn cleared_table_disposal<K, V>() -> &'static Disposal {
    const {
        &Disposal {
            free: free_table_all::<K, V>,
            recycle: None,
        }
    }
}

/// A retired table's weight for its garbage list: its slot bytes in units of 64.
fn table_weight<K, V>(packed: *mut Table<K, V>) -> usize {
    View::of(packed).capacity() * std::mem::size_of::<Slot<K, V>>() / 64
}

/// Boxes `value`, in a spare box of the shard if it has one. Called with the shard's lock.
#[inline]
fn new_box<V>(garbage: &mut Garbage, value: V) -> *mut V {
    match garbage.take_spare() {
        Some(spare) => {
            let spare = spare.cast::<V>();
            // SAFETY: a spare is an emptied box of a `V` of this shard (only values are
            // recyclable in a shard's list) that no reader can reach and nothing else owns.
            unsafe { spare.write(value) };
            spare
        }
        None => Box::into_raw(Box::new(value)),
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

impl<'a, K, V> Pinned<'a, K, V> {
    /// # Safety
    /// `guard` is alive since before `key` and `value` were loaded from the map, with the map
    /// borrowed for `'a`.
    #[inline(always)]
    unsafe fn new(key: &K, value: *const V, guard: EpochGuard) -> Self {
        Self {
            key: NonNull::from(key),
            // SAFETY: callers pass values they found non-null.
            value: unsafe { NonNull::new_unchecked(value.cast_mut()) },
            _guard: guard,
            _borrow: PhantomData,
        }
    }

    /// The key.
    #[inline(always)]
    pub(crate) fn key(&self) -> &K {
        // SAFETY: the key was reachable from the map while the thread was pinned, and the guard
        // kept here keeps that pin: its table is not freed before this `Pinned` is dropped, and
        // the key is never written meanwhile (invariants 1, 3, 5).
        unsafe { self.key.as_ref() }
    }

    /// The value.
    #[inline(always)]
    pub(crate) fn value(&self) -> &V {
        // SAFETY: as for the key (invariants 2 and 5).
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
    /// The key to store, if owned.
    fn into_owned(self) -> Option<K>;
}

/// The values a write saw and left.
pub(crate) struct Outcome<'a, K, V> {
    /// The value before the write, if any.
    pub(crate) previous: Option<Pinned<'a, K, V>>,
    /// The value after the write, if any.
    pub(crate) current: Option<Pinned<'a, K, V>>,
}

/// The writer side of a shard: its lock, tagged-slot count and garbage. Padded so that
/// writers of different shards do not share a line; readers never read it.
struct Writer {
    state: Mutex<WriterState>,
    len: AtomicUsize,
    /// Lock acquisitions (counted when statistics are on), added to with the lock held (like
    /// `len`).
    locks: AtomicU64,
    /// Contended acquisitions and their wait (counted when statistics are on).
    waits: LockStats,
    /// The shard's index (for the contention probe).
    index: usize,
}

struct WriterState {
    tagged: usize,
    garbage: Garbage,
}

thread_local! {
    /// The shard writer lock this thread holds, if any (address of its `Writer`).
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A shard's lock held by this thread; remembers it so that a re-entrant write panics.
struct WriterGuard<'a> {
    state: MutexGuard<'a, WriterState>,
    previous: usize,
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

    /// Locks the shard for writing.
    ///
    /// # Panics
    /// If this thread already holds it: user code that runs under the lock (`V::eq` in a
    /// compare, `K::clone`/`K::eq` in a rebuild, a `Drop` of a freed value) called the map's
    /// writing side for the same shard, which would wait for itself forever.
    #[inline]
    fn lock(&self) -> WriterGuard<'_> {
        let me = self as *const Self as usize;
        let previous = HELD.with(|held| held.replace(me));
        if previous == me {
            HELD.with(|held| held.set(previous));
            panic!(
                "mapguard: deadlock avoided: a ReadMostlyMap write was called from code that runs \
                 under the same shard's write lock (`PartialEq`, `Hash`, `Clone` or `Drop` of a key \
                 or value); it would wait for itself"
            );
        }
        let state = if self.waits.enabled() {
            self.lock_counted()
        } else {
            self.state.lock()
        };
        WriterGuard { state, previous }
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

/// Where a key is, or would go, in a table.
enum Place<V> {
    Live(usize, *mut V),
    Dead(usize),
    Vacant(usize),
}

/// A shard's packed table pointer, alone on its cache line.
type ShardTable<K, V> = CachePadded<AtomicPtr<Table<K, V>>>;

/// The sharded slot tables of a read-mostly map. See the module docs.
pub(crate) struct RawReadMostly<K, V> {
    /// The packed pointer to the current table of each shard (null: no table): the only shared
    /// words readers load before the slots.
    /// Each on its own cache line, so that neither a rebuild of another shard nor whatever the
    /// allocator puts next to this array makes readers miss.
    tables: Box<[ShardTable<K, V>]>,
    writers: Box<[CachePadded<Writer>]>,
    /// The shard count minus one (shards are chosen from folded middle bits of the hash).
    shard_mask: usize,
    _owns: PhantomData<(K, Box<V>)>,
}

// SAFETY: the map owns its keys and values; sending it sends them.
unsafe impl<K: Send, V: Send> Send for RawReadMostly<K, V> {}
// SAFETY: through `&RawReadMostly`, threads read `&K`/`&V` concurrently (needs `Sync`) and
// move keys and values in and drop them on any thread (needs `Send`).
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for RawReadMostly<K, V> {}

/// The capacity of a table for `live` entries: a third full or less after a rebuild. Short
/// probe sequences matter more than memory here: a lookup that stops at its first or second
/// slot is one predictable branch, and mispredicted probe loops are what cost the most.
fn capacity_for(live: usize) -> Option<usize> {
    live.checked_mul(3)?
        .checked_next_power_of_two()
        .map(|capacity| capacity.max(MIN_CAPACITY))
}

impl<K, V> RawReadMostly<K, V> {
    /// `shards` shards (a power of two) with room for `capacity` entries spread over them.
    pub(crate) fn new(shards: usize, capacity: usize) -> Result<Self, ReserveError> {
        debug_assert!(shards.is_power_of_two());
        let per_shard = capacity.div_ceil(shards);
        let mut tables = Vec::with_capacity(shards);
        if per_shard > 0 {
            let table_capacity = capacity_for(per_shard).ok_or(ReserveError::CapacityOverflow)?;
            // Fail before allocating anything on a size that can never fit.
            Table::<K, V>::layout(table_capacity)?;
            for _ in 0..shards {
                match Table::allocate(table_capacity) {
                    Ok(table) => tables.push(CachePadded::new(AtomicPtr::new(table))),
                    Err(err) => {
                        drop(Self::assemble(tables, shards));
                        return Err(err);
                    }
                }
            }
        }
        tables.resize_with(shards, || CachePadded::new(AtomicPtr::new(ptr::null_mut())));
        Ok(Self::assemble(tables, shards))
    }

    fn assemble(tables: Vec<ShardTable<K, V>>, shards: usize) -> Self {
        let writers = (0..tables.len())
            .map(|index| {
                CachePadded::new(Writer {
                    state: Mutex::new(WriterState {
                        tagged: 0,
                        garbage: Garbage::new(),
                    }),
                    len: AtomicUsize::new(0),
                    locks: AtomicU64::new(0),
                    waits: LockStats::default(),
                    index,
                })
            })
            .collect();
        Self {
            tables: tables.into_boxed_slice(),
            writers,
            shard_mask: shards - 1,
            _owns: PhantomData,
        }
    }

    /// The number of shards.
    pub(crate) fn shard_count(&self) -> usize {
        self.tables.len()
    }

    /// Turns on the shards' contention figures (before the map is shared).
    pub(crate) fn enable_stats(&mut self) {
        for writer in self.writers.iter_mut() {
            writer.waits.enable();
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
        // Bits 32..57, folded, as `ShardedMap` does: the tables probe with the low bits and
        // compare whole hashes, and a fast hasher can leave one run of top bits weak for some
        // seeds (which the top bits alone, used before, made every shard's load depend on).
        let mid = (hash >> 32) & ((1 << 25) - 1);
        (mid ^ (mid >> 9) ^ (mid >> 17)) as usize & self.shard_mask
    }

    /// The number of live entries, summed over the shards without locking.
    pub(crate) fn len(&self) -> usize {
        self.writers
            .iter()
            .map(|writer| writer.len.load(Ordering::Relaxed))
            .sum()
    }

    /// Slots allocated over all shards.
    pub(crate) fn slot_count(&self) -> usize {
        self.tables
            .iter()
            .map(|table| table.load(Ordering::Acquire))
            .filter(|table| !table.is_null())
            .map(|table| View::of(table).capacity())
            .sum()
    }

    /// Scans the current table of the hash's shard for the key; returns its slot if the key is
    /// there with a value. The caller is pinned for `'g`.
    #[inline(always)]
    fn find<'g>(
        &'g self,
        hash: u64,
        mut eq: impl FnMut(&K) -> bool,
        _guard: &'g EpochGuard,
    ) -> Option<(&'g K, *mut V)> {
        let shard = self.shard_for(hash);
        debug_assert!(shard < self.tables.len());
        // SAFETY: `shard_for` masks with `shard_mask`, which is the shard count minus one.
        let packed = unsafe { self.tables.get_unchecked(shard) }.load(Ordering::Acquire);
        if packed.is_null() {
            return None;
        }
        let table = View::of(packed);
        let tag = hash | TAG_BIT;
        let mut index = hash as usize;
        loop {
            // SAFETY: the table was loaded while pinned, so it stays allocated for `'g`
            // (invariant 5); the acquire load pairs with the release store that published it.
            let slot = unsafe { table.slot(index) };
            let found = slot.tag.load(Ordering::Acquire);
            if found == tag {
                // SAFETY: the tag was seen non-zero with an acquire load.
                let key = unsafe { slot.key() };
                if eq(key) {
                    let value = slot.value.load(Ordering::Acquire);
                    return if value.is_null() {
                        None
                    } else {
                        Some((key, value))
                    };
                }
            } else if found == 0 {
                return None;
            }
            index = index.wrapping_add(1);
        }
    }

    /// The key and value of `hash`/`eq`, kept pinned.
    #[inline]
    pub(crate) fn get(&self, hash: u64, eq: impl FnMut(&K) -> bool) -> Option<Pinned<'_, K, V>> {
        let guard = pin();
        let (key, value) = self.find(hash, eq, &guard)?;
        let key: *const K = key;
        // SAFETY: pinned by `guard` since before the slot was found in the map.
        Some(unsafe { Pinned::new(&*key, value, guard) })
    }

    /// Whether the key is present (the value is not touched).
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
        let (_, value) = self.find(hash, eq, &guard)?;
        // SAFETY: found while pinned by `guard`, which is still alive (invariants 2, 5).
        Some(read(unsafe { &*value }))
    }

    /// Looks up the key under the shard's lock and applies `decide`'s choice. `decide` runs
    /// under the lock; if it (or `K::clone` in a rebuild) panics, the map is left as it was.
    ///
    /// # Panics
    /// If `decide` stores with a borrowed `key`.
    pub(crate) fn write(
        &self,
        hash: u64,
        key: impl Lookup<K>,
        decide: impl FnOnce(Option<&V>) -> Decision<V>,
    ) -> Outcome<'_, K, V>
    where
        K: Clone,
    {
        let shard = self.shard_for(hash);
        let writer = &self.writers[shard];
        let mut state = writer.lock();
        // Pinned before anything is retired: the values returned stay valid while pinned. Not
        // before the lock: a writer waiting for it would hold back the epoch (and so every
        // shard's reclamation) for as long as it waits. Under the lock the current table and
        // its values need no pin.
        let _guard = pin();
        let mut table = self.tables[shard].load(Ordering::Relaxed);
        let mut place = if table.is_null() {
            None
        } else {
            // SAFETY: writers hold the lock, so this table is current and not retired.
            Some(unsafe { find_place(View::of(table), hash, &mut |k| key.matches(k)) })
        };
        let present = match place {
            // SAFETY: a live value of the current table stays allocated while the lock is held.
            Some(Place::Live(_, value)) => Some(unsafe { &*value }),
            _ => None,
        };
        let mut outcome = Outcome {
            previous: None,
            current: None,
        };
        // Below, `table` is the shard's current table and the lock is held: it is allocated and
        // only this thread writes it.
        match decide(present) {
            Decision::Keep => {
                if let Some(Place::Live(index, value)) = place {
                    // SAFETY: `table` is the current table and the lock is held (see above).
                    let key = unsafe { View::of(table).slot(index).key() };
                    // SAFETY: pinned, and the value is in the map.
                    outcome.current = Some(unsafe { Pinned::new(key, value, pin()) });
                }
            }
            Decision::Store(value) => {
                let new = new_box(&mut state.garbage, value);
                let index = match place {
                    Some(Place::Live(index, old)) => {
                        // SAFETY: `table` is the current table and the lock is held (see above).
                        let slot = unsafe { View::of(table).slot(index) };
                        slot.value.store(new, Ordering::Release);
                        // SAFETY: `old` is unlinked by the store above; it came from a Box.
                        unsafe { state.garbage.retire(old.cast(), value_disposal::<V>(), 1) };
                        // SAFETY: pinned since before `old` was retired.
                        outcome.previous = Some(unsafe { Pinned::new(slot.key(), old, pin()) });
                        index
                    }
                    Some(Place::Dead(index)) => {
                        // SAFETY: `table` is the current table and the lock is held (see above).
                        unsafe { View::of(table).slot(index) }
                            .value
                            .store(new, Ordering::Release);
                        writer.add_len(1);
                        index
                    }
                    Some(Place::Vacant(_)) | None => {
                        let owned = key.into_owned().expect("only an owned key can be stored");
                        let capacity = if table.is_null() {
                            0
                        } else {
                            View::of(table).capacity()
                        };
                        if state.tagged + 1 > Table::<K, V>::max_tagged(capacity) {
                            let live = writer.len.load(Ordering::Relaxed);
                            table = match self.rebuild(shard, &mut state, live + 1) {
                                Ok(table) => table,
                                Err(panic) => {
                                    // SAFETY: `new` was not published.
                                    drop(unsafe { Box::from_raw(new) });
                                    std::panic::resume_unwind(panic)
                                }
                            };
                            // The key was absent and a rebuild keeps the same keys: it goes to
                            // the end of its probe sequence in the new table.
                            place =
                                // SAFETY: `table` is the current table and the lock is held (see above).
                                Some(unsafe { find_place(View::of(table), hash, &mut |_| false) });
                        }
                        let Some(Place::Vacant(index)) = place else {
                            unreachable!("a rebuild keeps the same keys");
                        };
                        // SAFETY: `table` is the current table and the lock is held (see above).
                        let slot = unsafe { View::of(table).slot(index) };
                        // Key and value before the tag: a reader that sees the tag sees both.
                        // SAFETY: the slot is untagged, so no reader reads its key.
                        unsafe { (*slot.key.write_ptr()).write(owned) };
                        slot.value.store(new, Ordering::Release);
                        slot.tag.store(hash | TAG_BIT, Ordering::Release);
                        state.tagged += 1;
                        writer.add_len(1);
                        index
                    }
                };
                // SAFETY: `table` is the current table and the lock is held (see above).
                let key = unsafe { View::of(table).slot(index).key() };
                // SAFETY: pinned, and `new` was just published.
                outcome.current = Some(unsafe { Pinned::new(key, new, pin()) });
            }
            Decision::Remove => {
                if let Some(Place::Live(index, old)) = place {
                    // SAFETY: `table` is the current table and the lock is held (see above).
                    let slot = unsafe { View::of(table).slot(index) };
                    slot.value.store(ptr::null_mut(), Ordering::Release);
                    // SAFETY: `old` is unlinked by the store above; it came from a Box.
                    unsafe { state.garbage.retire(old.cast(), value_disposal::<V>(), 1) };
                    // SAFETY: pinned since before `old` was retired.
                    outcome.previous = Some(unsafe { Pinned::new(slot.key(), old, pin()) });
                    let len = writer.add_len(-1);
                    let capacity = View::of(table).capacity();
                    if capacity > MIN_CAPACITY && len * 8 < capacity || len == 0 {
                        // A failed shrink (a panicking `K::clone`) leaves the table as it is.
                        let _ = self.rebuild(shard, &mut state, len);
                    }
                }
            }
        }
        outcome
    }

    /// Replaces the shard's table by a fresh one sized for `live` entries (none for 0), cloning
    /// the live keys and moving the value pointers, and retires the old slot array (with its
    /// keys). Returns the new table, or the panic of a `K::clone` (then nothing changed).
    /// Called with the shard's lock held (`state`).
    #[cold]
    #[inline(never)]
    fn rebuild(
        &self,
        shard: usize,
        state: &mut WriterState,
        live: usize,
    ) -> Result<*mut Table<K, V>, Box<dyn std::any::Any + Send>>
    where
        K: Clone,
    {
        let old = self.tables[shard].load(Ordering::Relaxed);
        let new = if live == 0 {
            ptr::null_mut()
        } else {
            let capacity = capacity_for(live).unwrap_or_else(|| {
                panic!("mapguard: a shard of {live} entries cannot be addressed")
            });
            let new = match Table::<K, V>::allocate(capacity) {
                Ok(table) => table,
                Err(ReserveError::AllocError { bytes }) => alloc::handle_alloc_error(
                    Layout::from_size_align(bytes, TABLE_ALIGN).unwrap_or(Layout::new::<u64>()),
                ),
                Err(err) => panic!("mapguard: cannot grow a shard to {capacity} slots: {err}"),
            };
            // Until published, the new table owns only the keys cloned into it: a panicking
            // clone frees it with those keys (and not the values, still owned by the old one).
            let filled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if old.is_null() {
                    0
                } else {
                    copy_live(View::of(old), View::of(new))
                }
            }));
            match filled {
                Ok(tagged) => state.tagged = tagged,
                Err(panic) => {
                    // SAFETY: the new table is unpublished and owns only its keys.
                    unsafe { Table::deallocate(new, false) };
                    return Err(panic);
                }
            }
            new
        };
        if new.is_null() {
            state.tagged = 0;
        }
        // Publishes the copied slots with the table (readers load it with acquire).
        self.tables[shard].store(new, Ordering::Release);
        if !old.is_null() {
            // SAFETY: the old table is unlinked by the store above and came from `allocate`;
            // its live values now belong to the new table and it has no dead ones (removal
            // retires values), so it owns only its keys.
            unsafe {
                state.garbage.retire(
                    old.cast(),
                    rebuilt_table_disposal::<K, V>(),
                    table_weight::<K, V>(old),
                )
            };
        }
        Ok(new)
    }

    /// Removes every entry: each shard drops its table, and the old tables are retired with
    /// their keys and values. Frees them before returning unless a reader is pinned somewhere.
    pub(crate) fn clear(&self) {
        for (shard, writer) in self.writers.iter().enumerate() {
            let mut state = writer.lock();
            let old = self.tables[shard].swap(ptr::null_mut(), Ordering::Release);
            state.tagged = 0;
            writer.len.store(0, Ordering::Relaxed);
            if !old.is_null() {
                // SAFETY: unlinked by the swap above; the table owns its keys and values.
                unsafe {
                    state.garbage.retire(
                        old.cast(),
                        cleared_table_disposal::<K, V>(),
                        table_weight::<K, V>(old),
                    )
                };
            }
        }
        // Nothing of the map is kept: the spare value boxes go too.
        self.collect_all(true);
    }

    /// Frees every retired object that no reader can reach any more, advancing the epoch as
    /// far as the pinned readers allow.
    pub(crate) fn collect(&self) {
        self.collect_all(false);
    }

    /// [`collect`](Self::collect), and with `free_spares` the spare value boxes too, under
    /// the same lock of each shard.
    fn collect_all(&self, free_spares: bool) {
        let mut first = true;
        for writer in self.writers.iter() {
            let mut state = writer.lock();
            if state.garbage.len() > 0 {
                // Two advances make everything retired so far expire; later shards find the
                // epoch already moved.
                state.garbage.collect(if first { 2 } else { 0 });
                first = false;
            }
            if free_spares {
                state.garbage.free_spares();
            }
        }
    }

    /// Objects waiting to be freed, over all shards.
    pub(crate) fn garbage_len(&self) -> usize {
        self.writers
            .iter()
            .map(|writer| writer.lock().garbage.len())
            .sum()
    }

    /// An iterator over live entries, shard by shard.
    pub(crate) fn iter(&self) -> RawIter<'_, K, V> {
        RawIter {
            raw: self,
            _guard: pin(),
            shard: 0,
            table: None,
            index: 0,
        }
    }
}

/// Clones the keys of `from`'s live slots into `to` (fresh, unpublished) and copies their value
/// pointers. Returns how many slots it tagged.
fn copy_live<K: Clone, V>(from: View<K, V>, to: View<K, V>) -> usize {
    let mut tagged = 0;
    for index in 0..from.capacity() {
        // SAFETY: `from` is current and locked by the caller.
        let slot = unsafe { from.slot(index) };
        let tag = slot.tag.load(Ordering::Relaxed);
        let value = slot.value.load(Ordering::Relaxed);
        if tag == 0 || value.is_null() {
            continue;
        }
        let mut at = tag as usize;
        // SAFETY: `to` is owned by the caller until published.
        while unsafe { to.slot(at) }.tag.load(Ordering::Relaxed) != 0 {
            at = at.wrapping_add(1);
        }
        // SAFETY: as above; the slot is tagged in `from`, so its key is initialized.
        let (target, key) = unsafe { (to.slot(at), slot.key()) };
        // SAFETY: `target` is untagged and unpublished: nothing reads its key.
        unsafe { (*target.key.write_ptr()).write(key.clone()) };
        target.value.store(value, Ordering::Relaxed);
        target.tag.store(tag, Ordering::Relaxed);
        tagged += 1;
    }
    tagged
}

/// Where the key is in `table`, or the untagged slot that ends its probe sequence.
///
/// # Safety
/// The caller holds the shard's lock and `table` is its current table.
unsafe fn find_place<K, V>(
    table: View<K, V>,
    hash: u64,
    eq: &mut impl FnMut(&K) -> bool,
) -> Place<V> {
    let tag = hash | TAG_BIT;
    let mut index = hash as usize & table.mask;
    loop {
        // SAFETY: the caller holds the lock on the current table.
        let slot = unsafe { table.slot(index) };
        let found = slot.tag.load(Ordering::Relaxed);
        if found == 0 {
            return Place::Vacant(index);
        }
        // SAFETY: tagged (this thread is the only writer).
        if found == tag && eq(unsafe { slot.key() }) {
            let value = slot.value.load(Ordering::Relaxed);
            return if value.is_null() {
                Place::Dead(index)
            } else {
                Place::Live(index, value)
            };
        }
        index = (index + 1) & table.mask;
    }
}

impl<K, V> Drop for RawReadMostly<K, V> {
    fn drop(&mut self) {
        for table in self.tables.iter() {
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
    shard: usize,
    table: Option<View<K, V>>,
    index: usize,
}

impl<'a, K, V> Iterator for RawIter<'a, K, V> {
    type Item = Pinned<'a, K, V>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let table = match self.table {
                Some(table) => table,
                None => {
                    let packed = self.raw.tables.get(self.shard)?.load(Ordering::Acquire);
                    self.shard += 1;
                    if packed.is_null() {
                        continue;
                    }
                    self.index = 0;
                    *self.table.insert(View::of(packed))
                }
            };
            while self.index < table.capacity() {
                // SAFETY: loaded while pinned by `_guard`, which lives as long as the iterator.
                let slot = unsafe { table.slot(self.index) };
                self.index += 1;
                if slot.tag.load(Ordering::Acquire) != 0 {
                    let value = slot.value.load(Ordering::Acquire);
                    if !value.is_null() {
                        // SAFETY: pinned by `_guard` (and now by a nested pin too) since before
                        // the slot was read; the tag was seen non-zero.
                        return Some(unsafe { Pinned::new(slot.key(), value, pin()) });
                    }
                }
            }
            self.table = None;
        }
    }
}
