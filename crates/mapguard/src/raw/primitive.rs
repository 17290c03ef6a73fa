//! The synchronization primitives the shard lock, the epoch domain and `ReadMostlyMap`'s slot
//! tables are built from: `std`'s (and parking_lot's mutex) normally, loom's under `cfg(loom)`,
//! so that the loom models in `tests/loom_*.rs` check the real code. Nothing else in the crate
//! names loom.

#[cfg(not(any(loom, mapguard_count_writes)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};

#[cfg(all(mapguard_count_writes, not(loom)))]
pub(crate) use counted::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(all(mapguard_count_writes, not(loom)))]
pub use counted::{fences_by_this_thread, reads_use_light_fences, shared_writes_by_this_thread};

/// Stores `value` to a word that only the calling thread writes and that it owns (its epoch
/// record): the one kind of store a read may make. The same as `store`, except that the
/// write-counting build (see [`counted`]) leaves it out of its count.
#[inline(always)]
pub(crate) fn store_own(word: &AtomicU64, value: u64, order: std::sync::atomic::Ordering) {
    #[cfg(all(mapguard_count_writes, not(loom)))]
    word.store_uncounted(value, order);
    #[cfg(not(all(mapguard_count_writes, not(loom))))]
    word.store(value, order);
}

/// The write-counting build (`--cfg mapguard_count_writes`): `std`'s atomics, wrapped so that
/// every store and read-modify-write (except [`store_own`]) and every fence adds one to a
/// count of the calling thread, and the mutex, whose acquisitions count too. It makes the
/// promise that a `ReadMostlyMap` read writes no memory another core reads, and runs no
/// fence, checkable on any machine: `tests/read_writes.rs` reads the counts around reads
/// made while other threads write. Never used in a normal build.
#[cfg(all(mapguard_count_writes, not(loom)))]
mod counted {
    use std::cell::Cell;
    use std::sync::atomic::{self, Ordering};

    std::thread_local! {
        static WRITES: Cell<u64> = const { Cell::new(0) };
        static FENCES: Cell<u64> = const { Cell::new(0) };
    }

    #[inline(always)]
    pub(super) fn count_write() {
        WRITES.with(|writes| writes.set(writes.get() + 1));
    }

    #[inline(always)]
    pub(super) fn count_fence() {
        FENCES.with(|fences| fences.set(fences.get() + 1));
    }

    /// Stores, read-modify-writes and lock acquisitions on shared memory made by this thread
    /// so far (write-counting build only; not part of the API).
    pub fn shared_writes_by_this_thread() -> u64 {
        WRITES.with(Cell::get)
    }

    /// Fences run by this thread so far, compiler fences excepted (write-counting build only;
    /// not part of the API).
    pub fn fences_by_this_thread() -> u64 {
        FENCES.with(Cell::get)
    }

    /// Whether readers pin with a compiler fence only, the system giving writers heavy
    /// barriers (`membarrier`); without them, every pin runs a `SeqCst` fence, by design
    /// (write-counting build only; not part of the API).
    pub fn reads_use_light_fences() -> bool {
        super::super::barrier::available()
    }

    macro_rules! counted_atomic {
        ($name:ident $(<$t:ident>)?, $value:ty) => {
            #[derive(Debug, Default)]
            #[repr(transparent)]
            pub(crate) struct $name$(<$t>)?(atomic::$name$(<$t>)?);

            #[allow(dead_code)]
            impl$(<$t>)? $name$(<$t>)? {
                pub(crate) const fn new(value: $value) -> Self {
                    Self(atomic::$name::new(value))
                }
                #[inline(always)]
                pub(crate) fn load(&self, order: Ordering) -> $value {
                    self.0.load(order)
                }
                #[inline(always)]
                pub(crate) fn store(&self, value: $value, order: Ordering) {
                    count_write();
                    self.0.store(value, order)
                }
                #[inline(always)]
                pub(crate) fn store_uncounted(&self, value: $value, order: Ordering) {
                    self.0.store(value, order)
                }
                #[inline(always)]
                pub(crate) fn swap(&self, value: $value, order: Ordering) -> $value {
                    count_write();
                    self.0.swap(value, order)
                }
                #[inline(always)]
                pub(crate) fn compare_exchange(
                    &self,
                    current: $value,
                    new: $value,
                    success: Ordering,
                    failure: Ordering,
                ) -> Result<$value, $value> {
                    count_write();
                    self.0.compare_exchange(current, new, success, failure)
                }
                #[inline(always)]
                pub(crate) fn compare_exchange_weak(
                    &self,
                    current: $value,
                    new: $value,
                    success: Ordering,
                    failure: Ordering,
                ) -> Result<$value, $value> {
                    count_write();
                    self.0.compare_exchange_weak(current, new, success, failure)
                }
                #[inline(always)]
                pub(crate) fn get_mut(&mut self) -> &mut $value {
                    self.0.get_mut()
                }
                #[inline(always)]
                pub(crate) fn into_inner(self) -> $value {
                    self.0.into_inner()
                }
                #[inline(always)]
                pub(crate) fn as_ptr(&self) -> *mut $value {
                    self.0.as_ptr()
                }
            }
        };
    }

    macro_rules! counted_arithmetic {
        ($name:ident, $value:ty) => {
            #[allow(dead_code)]
            impl $name {
                #[inline(always)]
                pub(crate) fn fetch_add(&self, value: $value, order: Ordering) -> $value {
                    count_write();
                    self.0.fetch_add(value, order)
                }
                #[inline(always)]
                pub(crate) fn fetch_sub(&self, value: $value, order: Ordering) -> $value {
                    count_write();
                    self.0.fetch_sub(value, order)
                }
                #[inline(always)]
                pub(crate) fn fetch_or(&self, value: $value, order: Ordering) -> $value {
                    count_write();
                    self.0.fetch_or(value, order)
                }
                #[inline(always)]
                pub(crate) fn fetch_and(&self, value: $value, order: Ordering) -> $value {
                    count_write();
                    self.0.fetch_and(value, order)
                }
                #[inline(always)]
                pub(crate) fn fetch_max(&self, value: $value, order: Ordering) -> $value {
                    count_write();
                    self.0.fetch_max(value, order)
                }
            }
        };
    }

    counted_atomic!(AtomicBool, bool);
    counted_atomic!(AtomicU64, u64);
    counted_atomic!(AtomicUsize, usize);
    counted_atomic!(AtomicPtr<T>, *mut T);
    counted_arithmetic!(AtomicU64, u64);
    counted_arithmetic!(AtomicUsize, usize);

    /// `std`'s fence, counted.
    #[inline(always)]
    pub(crate) fn fence(order: Ordering) {
        count_fence();
        atomic::fence(order)
    }

    /// parking_lot's mutex, whose acquisitions count as shared writes.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    #[allow(dead_code)]
    impl<T> Mutex<T> {
        pub(crate) const fn new(data: T) -> Self {
            Self(parking_lot::Mutex::new(data))
        }
        #[inline(always)]
        pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, T> {
            count_write();
            self.0.lock()
        }
        #[inline(always)]
        pub(crate) fn try_lock(&self) -> Option<parking_lot::MutexGuard<'_, T>> {
            count_write();
            self.0.try_lock()
        }
        #[inline(always)]
        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut()
        }
        #[inline(always)]
        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }
}

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};

/// Orders a store before the load that follows it, between a reader publishing a slot and
/// checking the writer word (and a writer setting the word and reading the slots).
///
/// With `std` the operations on both sides are `SeqCst`, which already orders them (the single
/// total order of `SeqCst` operations), so this is a no-op. Loom models `SeqCst` loads and
/// stores as acquire/release only, which would report this correct handshake as a race; a
/// `SeqCst` fence, which loom does model, restores the guarantee there.
#[inline(always)]
pub(crate) fn store_load_fence() {
    #[cfg(loom)]
    loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

/// Declares a thread-local, with `std` or loom.
macro_rules! thread_local_shim {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const { $init:expr };) => {
        #[cfg(not(loom))]
        ::std::thread_local! { $(#[$attr])* $vis static $name: $t = const { $init }; }
        #[cfg(loom)]
        ::loom::thread_local! { $(#[$attr])* $vis static $name: $t = $init; }
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr;) => {
        #[cfg(not(loom))]
        ::std::thread_local! { $(#[$attr])* $vis static $name: $t = $init; }
        #[cfg(loom)]
        ::loom::thread_local! { $(#[$attr])* $vis static $name: $t = $init; }
    };
}
pub(crate) use thread_local_shim as thread_local;

/// Gives the scheduler a chance to run another thread, for round `rounds` of a wait: spin
/// (rounds 1 to 6), then yield (up to round 200), then sleep: 50 µs at first, doubling every
/// 20 sleeps up to 1 ms, so that a wait on a guard held for long costs about a thousand
/// wake-ups a second, not a core.
pub(crate) fn pause(rounds: u32) {
    #[cfg(loom)]
    {
        let _ = rounds;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        if rounds <= 6 {
            for _ in 0..(1u32 << rounds) {
                std::hint::spin_loop();
            }
        } else if rounds <= 200 {
            std::thread::yield_now();
        } else {
            let doublings = ((rounds - 200) / 20).min(5);
            let micros = (50u64 << doublings).min(1000);
            std::thread::sleep(std::time::Duration::from_micros(micros));
        }
    }
}

/// A cell for the lock's data. Under loom every guard holds a tracked access, so loom reports
/// a read overlapping a write as the data race it would be.
pub(crate) struct DataCell<T> {
    #[cfg(not(loom))]
    inner: std::cell::UnsafeCell<T>,
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
}

/// A shared access to a [`DataCell`], held by read guards (loom tracks it; `std` needs nothing).
/// A guard [`end`](Self::end)s it before it releases its read, so that under loom the access
/// never outlives the read lock: a writer let in by the release must not find it still open.
pub(crate) struct ReadAccess<T> {
    #[cfg(not(loom))]
    _marker: std::marker::PhantomData<*const T>,
    #[cfg(loom)]
    access: Option<loom::cell::ConstPtr<T>>,
}

impl<T> ReadAccess<T> {
    /// Ends the tracked access (under loom; nothing otherwise).
    #[inline(always)]
    pub(crate) fn end(&mut self) {
        #[cfg(loom)]
        {
            self.access = None;
        }
    }
}

/// An exclusive access to a [`DataCell`], held by write guards.
#[cfg(not(loom))]
pub(crate) type WriteAccess<T> = std::marker::PhantomData<*mut T>;
#[cfg(loom)]
pub(crate) type WriteAccess<T> = loom::cell::MutPtr<T>;

impl<T> DataCell<T> {
    pub(crate) fn new(data: T) -> Self {
        Self {
            inner: <_>::from(data),
        }
    }

    /// The data's address, with a tracked shared access. The caller must hold a read lock.
    pub(crate) fn read_access(&self) -> (*mut T, ReadAccess<T>) {
        #[cfg(not(loom))]
        {
            let access = ReadAccess {
                _marker: std::marker::PhantomData,
            };
            (self.inner.get(), access)
        }
        #[cfg(loom)]
        {
            let access = self.inner.get();
            let data = access.with(|ptr| ptr as *mut T);
            (
                data,
                ReadAccess {
                    access: Some(access),
                },
            )
        }
    }

    /// The data's address, with a tracked exclusive access. The caller must hold the write lock.
    pub(crate) fn write_access(&self) -> (*mut T, WriteAccess<T>) {
        #[cfg(not(loom))]
        {
            (self.inner.get(), std::marker::PhantomData)
        }
        #[cfg(loom)]
        {
            let access = self.inner.get_mut();
            (access.with(|ptr| ptr), access)
        }
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        #[cfg(not(loom))]
        {
            self.inner.get_mut()
        }
        #[cfg(loom)]
        {
            // SAFETY: `&mut self` rules out every other access.
            self.inner.with_mut(|ptr| unsafe { &mut *ptr })
        }
    }
}

/// Defines `fn $name() -> &'static $t`: a process-wide value with `std`, one per model
/// execution with loom.
macro_rules! global {
    ($(#[$attr:meta])* $vis:vis fn $name:ident() -> &'static $t:ty = $init:expr;) => {
        $(#[$attr])*
        #[cfg(not(loom))]
        $vis fn $name() -> &'static $t {
            static GLOBAL: $t = $init;
            &GLOBAL
        }
        $(#[$attr])*
        #[cfg(loom)]
        $vis fn $name() -> &'static $t {
            ::loom::lazy_static! {
                static ref GLOBAL: $t = $init;
            }
            &GLOBAL
        }
    };
}
pub(crate) use global;

#[cfg(not(any(loom, mapguard_count_writes)))]
pub(crate) use std::sync::atomic::fence;

#[cfg(all(mapguard_count_writes, not(loom)))]
pub(crate) use counted::fence;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::fence;

/// A mutex: parking_lot's with `std`, loom's under `cfg(loom)` (which loom schedules and
/// checks). Only `new`, `lock` and `try_lock` are used.
#[cfg(not(any(loom, mapguard_count_writes)))]
pub(crate) use parking_lot::{Mutex, MutexGuard};

#[cfg(all(mapguard_count_writes, not(loom)))]
pub(crate) use counted::Mutex;
#[cfg(all(mapguard_count_writes, not(loom)))]
pub(crate) use parking_lot::MutexGuard;

/// A mutex: parking_lot's with `std`, loom's under `cfg(loom)`.
#[cfg(loom)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

/// The guard of a [`Mutex`].
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

#[cfg(loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(data: T) -> Self {
        Self(loom::sync::Mutex::new(data))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        // Like parking_lot's, without poisoning.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.0.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// A cell whose contents are written by one thread and then only read, or read under an
/// exclusive access: the key of a map slot. With `std` it is an `UnsafeCell`; under loom
/// each call records a read or a write at that moment, so loom reports a write (the
/// initialization, or the drop when the slot's table is freed) that is not ordered with a
/// read as the data race it would be.
pub(crate) struct TrackedCell<T> {
    #[cfg(not(loom))]
    inner: std::cell::UnsafeCell<T>,
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
}

impl<T> TrackedCell<T> {
    #[inline(always)]
    #[cfg_attr(not(loom), allow(dead_code))] // With `std` the slots are zeroed memory.
    pub(crate) fn new(data: T) -> Self {
        Self {
            inner: <_>::from(data),
        }
    }

    /// The contents' address, to read through; under loom a read happens now.
    #[inline(always)]
    pub(crate) fn read_ptr(&self) -> *const T {
        #[cfg(not(loom))]
        {
            self.inner.get()
        }
        #[cfg(loom)]
        {
            self.inner.with(|ptr| ptr)
        }
    }

    /// The contents' address, to write through; under loom a write happens now.
    #[inline(always)]
    pub(crate) fn write_ptr(&self) -> *mut T {
        #[cfg(not(loom))]
        {
            self.inner.get()
        }
        #[cfg(loom)]
        {
            self.inner.with_mut(|ptr| ptr)
        }
    }
}
