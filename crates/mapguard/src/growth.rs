//! Room in the `hashbrown` tables of [`ShardedMap`](crate::ShardedMap) and
//! [`LockedMap`](crate::LockedMap), made so that a panicking `Hash` loses no entry.
//!
//! hashbrown makes room in one of two ways. Into a new allocation (a resize): it hashes every
//! entry and copies it into the new table, and a panicking hash frees the new table and leaves
//! the old one as it was. Or, when the live entries fit in half the table and tombstones of
//! removed entries take the rest, in place: it re-places entries one by one, and a panicking
//! hash drops every entry not yet re-placed. The maps hash with the user's `K: Hash`, which may
//! panic, and promise to lose nothing, so hashbrown must never grow a table in place:
//!
//! - every call that may make room goes through this module ([`entry`], [`insert_unique`],
//!   [`reserve`], [`try_reserve`]), which checks the room left first, inline (the tables'
//!   hot paths pay that one branch), and makes room out of line when there is too little;
//! - room for more than half the buckets is left to hashbrown, which then always resizes
//!   (it rehashes in place only for at most half its capacity, which is below its bucket
//!   count);
//! - otherwise [`rebuild`] moves the entries into a new table of the same size, hashing every
//!   entry before it moves any, so that a panicking hash leaves the table as it was.
//!
//! Shrinking needs nothing from here: hashbrown's `shrink_to` only ever resizes.

use std::alloc::Layout;

use hashbrown::hash_table::{Entry, OccupiedEntry};
use hashbrown::{HashTable, TryReserveError};

use crate::ReserveError;

/// [`HashTable::entry`], with room for the entry made first.
#[inline(always)]
pub(crate) fn entry<'a, T>(
    table: &'a mut HashTable<T>,
    hash: u64,
    eq: impl FnMut(&T) -> bool,
    hasher: impl Fn(&T) -> u64,
) -> Entry<'a, T> {
    reserve(table, 1, &hasher);
    table.entry(hash, eq, hasher)
}

/// [`HashTable::insert_unique`], with room for the entry made first.
#[inline(always)]
pub(crate) fn insert_unique<T>(
    table: &mut HashTable<T>,
    hash: u64,
    value: T,
    hasher: impl Fn(&T) -> u64,
) -> OccupiedEntry<'_, T> {
    reserve(table, 1, &hasher);
    table.insert_unique(hash, value, hasher)
}

/// Makes room for `additional` more entries in `table`; panics on a capacity overflow and
/// aborts when the allocator fails, as hashbrown's own `reserve` does.
#[inline(always)]
pub(crate) fn reserve<T>(table: &mut HashTable<T>, additional: usize, hasher: impl Fn(&T) -> u64) {
    if additional > room(table) {
        grow(table, additional, hasher);
    }
}

/// Makes room for `additional` more entries in `table`, or says why it cannot (the table is
/// unchanged then).
pub(crate) fn try_reserve<T>(
    table: &mut HashTable<T>,
    additional: usize,
    hasher: impl Fn(&T) -> u64,
) -> Result<(), ReserveError> {
    if additional > room(table) {
        make_room(table, additional, hasher)?;
    }
    Ok(())
}

/// Entries that fit before the table must grow.
#[inline(always)]
fn room<T>(table: &HashTable<T>) -> usize {
    table.capacity() - table.len()
}

/// The slow path of [`reserve`].
#[cold]
#[inline(never)]
fn grow<T>(table: &mut HashTable<T>, additional: usize, hasher: impl Fn(&T) -> u64) {
    match make_room(table, additional, hasher) {
        Ok(()) => {}
        Err(TryReserveError::AllocError { layout }) => std::alloc::handle_alloc_error(layout),
        Err(TryReserveError::CapacityOverflow) => panic!(
            "mapguard: a table of {} entries cannot grow by {additional}: {}",
            table.len(),
            ReserveError::CapacityOverflow
        ),
    }
}

/// Room for `additional` more entries, without ever rehashing in place (see the module docs).
fn make_room<T>(
    table: &mut HashTable<T>,
    additional: usize,
    hasher: impl Fn(&T) -> u64,
) -> Result<(), TryReserveError> {
    let needed = (table.len())
        .checked_add(additional)
        .ok_or(TryReserveError::CapacityOverflow)?;
    let buckets = table.num_buckets();
    if needed > buckets / 2 {
        // More than hashbrown rehashes in place: it resizes.
        return table.try_reserve(additional, hasher);
    }
    // Where hashbrown would rehash in place. Half the buckets, asked of a new table, gives
    // as many buckets as now: the same size as an in-place rehash keeps.
    rebuild(table, buckets / 2, hasher)
}

/// Moves the entries of `table` into a new table with room for `capacity` entries (at least
/// `table.len()`). Every entry is hashed before any moves: a panicking `hasher`, like an
/// allocation that fails, leaves `table` as it was.
#[cold]
#[inline(never)]
fn rebuild<T>(
    table: &mut HashTable<T>,
    capacity: usize,
    hasher: impl Fn(&T) -> u64,
) -> Result<(), TryReserveError> {
    debug_assert!(capacity >= table.len());
    let mut rebuilt = HashTable::new();
    // An empty table: nothing to hash.
    rebuilt.try_reserve(capacity, &hasher)?;
    let mut moves: Vec<(usize, u64)> = Vec::new();
    moves.try_reserve_exact(table.len()).map_err(|_| {
        match Layout::array::<(usize, u64)>(table.len()) {
            Ok(layout) => TryReserveError::AllocError { layout },
            Err(_) => TryReserveError::CapacityOverflow,
        }
    })?;
    for index in table.iter_buckets() {
        if let Some(entry) = table.get_bucket(index) {
            moves.push((index, hasher(entry)));
        }
    }
    // From here on nothing hashes, allocates or panics: removing an entry moves no other
    // one, so each index still names its entry, and the new table has room for all of them.
    for (index, hash) in moves {
        if let Ok(entry) = table.get_bucket_entry(index) {
            let (value, _) = entry.remove();
            rebuilt.insert_unique(hash, value, &hasher);
        }
    }
    debug_assert!(table.is_empty());
    *table = rebuilt;
    Ok(())
}
