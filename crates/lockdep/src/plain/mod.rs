//! The unchecked locks: what [`crate::Mutex`] and friends are when the `check` feature is off.
//!
//! Each type is a `#[repr(transparent)]` wrapper around the parking_lot lock of the same name,
//! with the full lockdep API (`with_class`, `lock_nested`, `assert_held`, …) compiled to
//! nothing, so code written against lockdep builds the same either way. They are public so
//! that a checked build can still use, and benchmark, the plain form.

mod condvar;
mod mutex;
mod rwlock;

pub use condvar::Condvar;
pub use mutex::{Mutex, MutexGuard};
pub use rwlock::{
    GenericRwLock, GenericRwLockReadGuard, GenericRwLockWriteGuard, RecursiveRwLock,
    RecursiveRwLockReadGuard, RecursiveRwLockWriteGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
