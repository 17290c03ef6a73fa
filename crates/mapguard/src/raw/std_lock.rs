//! `std`'s reader-writer lock without poisoning, with the one thing its stable API lacks for
//! [`LockedMap`](crate::LockedMap): a read guard narrowed to one entry of the locked table.
//!
//! `LockedMap` is the baseline that shows what `std::sync::RwLock<HashMap>` costs, so it sits on
//! that very lock: the same futex word, the same writer preference, the same fast paths. `std`'s
//! `MappedRwLockReadGuard` is not stable, so [`ReadGuard::map`] builds its own: the table's read
//! guard kept alive beside a pointer into the table. Poisoning is dropped: a panic inside a
//! closure of `LockedMap` leaves the table consistent (its methods never leave a half-made
//! change behind a user closure), so the next caller just takes the lock.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::{self, PoisonError, TryLockError};

/// A reader-writer lock that ignores poisoning. See the [module docs](self).
pub(crate) struct RwLock<T> {
    inner: sync::RwLock<T>,
}

impl<T> RwLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self {
            inner: sync::RwLock::new(value),
        }
    }

    /// Takes the lock shared, blocking while a writer holds it or waits for it.
    #[inline(always)]
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        ReadGuard {
            guard: self.inner.read().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Takes the lock exclusively, blocking while anyone holds it.
    #[inline(always)]
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        WriteGuard {
            guard: self.inner.write().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// [`read`](Self::read) if it would not block.
    #[inline(always)]
    pub(crate) fn try_read(&self) -> Option<ReadGuard<'_, T>> {
        match self.inner.try_read() {
            Ok(guard) => Some(ReadGuard { guard }),
            Err(TryLockError::Poisoned(poisoned)) => Some(ReadGuard {
                guard: poisoned.into_inner(),
            }),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// [`write`](Self::write) if it would not block.
    #[inline(always)]
    pub(crate) fn try_write(&self) -> Option<WriteGuard<'_, T>> {
        match self.inner.try_write() {
            Ok(guard) => Some(WriteGuard { guard }),
            Err(TryLockError::Poisoned(poisoned)) => Some(WriteGuard {
                guard: poisoned.into_inner(),
            }),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// The lock held shared.
pub(crate) struct ReadGuard<'a, T> {
    guard: sync::RwLockReadGuard<'a, T>,
}

impl<'a, T> ReadGuard<'a, T> {
    /// Narrows the guard to a part of the locked value; the lock stays held shared.
    #[inline(always)]
    pub(crate) fn map<U: ?Sized>(
        this: Self,
        part: impl FnOnce(&T) -> &U,
    ) -> MappedReadGuard<'a, T, U> {
        let value = NonNull::from(part(&this.guard));
        MappedReadGuard {
            _guard: this.guard,
            value,
        }
    }

    /// [`map`](Self::map) if `part` finds something, else the guard back.
    #[inline(always)]
    pub(crate) fn try_map<U: ?Sized>(
        this: Self,
        part: impl FnOnce(&T) -> Option<&U>,
    ) -> Result<MappedReadGuard<'a, T, U>, Self> {
        match part(&this.guard).map(NonNull::from) {
            Some(value) => Ok(MappedReadGuard {
                _guard: this.guard,
                value,
            }),
            None => Err(this),
        }
    }
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.guard
    }
}

/// The lock held exclusively.
pub(crate) struct WriteGuard<'a, T> {
    guard: sync::RwLockWriteGuard<'a, T>,
}

impl<'a, T> WriteGuard<'a, T> {
    /// Turns exclusive access into shared access without letting a writer in between.
    #[inline(always)]
    pub(crate) fn downgrade(this: Self) -> ReadGuard<'a, T> {
        ReadGuard {
            guard: sync::RwLockWriteGuard::downgrade(this.guard),
        }
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

/// A read guard narrowed to a part `U` of the locked `T`: the whole lock stays held shared
/// while it lives.
pub(crate) struct MappedReadGuard<'a, T, U: ?Sized> {
    /// Keeps the lock held shared, so nothing writes `T` (outside `T`'s own interior
    /// mutability, which `&U` already allows) and `T` is not freed.
    _guard: sync::RwLockReadGuard<'a, T>,
    /// A part of the `T` behind `_guard`.
    value: NonNull<U>,
}

// SAFETY: the guard hands out only `&U` (sending `&U` to another thread needs `U: Sync`) and
// holds the lock through a `RwLockReadGuard<T>`, which may be shared when `T: Sync`.
unsafe impl<T: Sync, U: ?Sized + Sync> Sync for MappedReadGuard<'_, T, U> {}

impl<T, U: ?Sized> Deref for MappedReadGuard<'_, T, U> {
    type Target = U;

    #[inline(always)]
    fn deref(&self) -> &U {
        // SAFETY: `value` was made from a shared borrow of the `T` behind `_guard`. The guard is
        // alive as long as `self` and keeps the lock held shared, so no one has `&mut T` and `T`
        // stays where it is (moving a guard does not move what it locks); `&self` bounds the
        // returned borrow by the guard's life.
        unsafe { self.value.as_ref() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_mapped_guard_keeps_the_lock_held_shared() {
        let lock = RwLock::new(vec![1, 2, 3]);
        let second = ReadGuard::map(lock.read(), |v| &v[1]);
        assert_eq!(*second, 2);
        assert!(
            lock.try_write().is_none(),
            "a writer got in under a mapped guard"
        );
        assert!(lock.try_read().is_some(), "readers share the lock");
        drop(second);
        lock.write().push(4);
        assert_eq!(*lock.read(), [1, 2, 3, 4]);
    }

    #[test]
    fn try_map_returns_the_guard_when_nothing_is_found() {
        let lock = RwLock::new(vec![1, 2, 3]);
        let guard = match ReadGuard::try_map(lock.read(), |v| v.get(7)) {
            Ok(_) => panic!("found an element past the end"),
            Err(guard) => guard,
        };
        assert_eq!(guard.len(), 3);
        assert!(
            lock.try_write().is_none(),
            "the returned guard no longer holds the lock"
        );
        drop(guard);
        assert!(lock.try_write().is_some());
    }

    #[test]
    fn a_downgraded_guard_admits_readers_but_no_writer() {
        let lock = RwLock::new(0);
        let mut writer = lock.write();
        *writer = 5;
        assert!(lock.try_read().is_none());
        let reader = WriteGuard::downgrade(writer);
        assert_eq!(
            (*reader, *lock.try_read().expect("a second reader")),
            (5, 5)
        );
        assert!(lock.try_write().is_none());
    }

    #[test]
    fn a_panic_under_the_write_lock_does_not_poison_it() {
        let lock = Arc::new(RwLock::new(1));
        let held = Arc::clone(&lock);
        let panicked = std::thread::spawn(move || {
            let _guard = held.write();
            panic!("a user closure panicked");
        })
        .join();
        assert!(panicked.is_err());
        *lock.write() += 1;
        assert_eq!(*lock.read(), 2);
        assert_eq!(*lock.try_read().expect("unlocked"), 2);
        assert_eq!(*lock.try_write().expect("unlocked"), 2);
    }
}
