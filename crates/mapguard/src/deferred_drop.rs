//! Entries that `clear` and `retain` of [`ShardedMap`](crate::ShardedMap) and
//! [`LockedMap`](crate::LockedMap) remove, dropped after the table's lock is released.
//!
//! A key's or value's `Drop` is user code. Run under the lock, a `Drop` that writes to the
//! same shard would panic ("deadlock avoided") in a `ShardedMap` and hang a `LockedMap`; and
//! hashbrown stops dropping a table's entries at the first `Drop` that panics, leaking the
//! rest. So these calls take the entries out of a table while they hold its lock and drop them
//! once it is released, one table at a time, through a [`Dropper`]: it drops every entry even
//! when some panic, and keeps the first panic for the caller to resume when every table is done.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use hashbrown::HashTable;

/// Drops entries one by one, each on its own, and remembers the first that panicked.
pub(crate) struct Dropper {
    panic: Option<Box<dyn Any + Send>>,
}

impl Dropper {
    pub(crate) fn new() -> Self {
        Self { panic: None }
    }

    /// Drops every one of `entries`; a drop that panics does not stop the others.
    pub(crate) fn drop_all<T>(&mut self, entries: impl IntoIterator<Item = T>) {
        for entry in entries {
            // The entry is gone either way: nothing is left half-done to observe.
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| drop(entry))) {
                self.panic.get_or_insert(panic);
            }
        }
    }

    /// Resumes the first panic of a drop, if there was one.
    pub(crate) fn finish(self) {
        if let Some(panic) = self.panic {
            resume_unwind(panic);
        }
    }
}

/// Takes every entry out of `table`, leaving it empty with about the room it had (with none,
/// if the allocator refuses it), so that a `clear` keeps its memory as hashbrown's does.
pub(crate) fn take_all<T>(table: &mut HashTable<T>) -> HashTable<T> {
    let mut emptied = HashTable::new();
    if emptied
        .try_reserve(table.capacity(), |_| {
            unreachable!("an empty table has nothing to rehash")
        })
        .is_err()
    {
        emptied = HashTable::new();
    }
    std::mem::replace(table, emptied)
}
