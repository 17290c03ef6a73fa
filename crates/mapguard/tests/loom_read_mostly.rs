//! Loom models of the publish/retire protocol behind `ReadMostlyMap`: a writer swaps a shared
//! pointer, retires the old object with the epoch it reads, advances the epoch and frees the
//! object once expired, while readers pin, load the pointer and read the object. Loom reports
//! a read that overlaps the free as a data race.
//!
//! The last model has the map's two levels: a reader goes through the shard's table pointer to
//! a slot's value pointer while the writer rebuilds the table (moving the value pointer into a
//! new table and retiring the old table) and then overwrites the value (retiring the old
//! value), each retired at its own epoch. It runs the real `Domain`; the table and values are
//! stand-ins with the same pointer protocol (the slot code itself uses `std` atomics).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p mapguard --test loom_read_mostly --release`.
//! Without `--cfg loom` this file compiles to nothing.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicPtr, Ordering};
use loom::thread;
use mapguard::LoomDomain as Domain;

/// A published object; its value is written once before publication and once more (a poison
/// value) right before it is freed, so that loom sees the free as a write.
struct Object {
    value: UnsafeCell<u64>,
}

fn object(value: u64) -> *mut Object {
    Box::into_raw(Box::new(Object {
        value: UnsafeCell::new(value),
    }))
}

/// Frees an object as the garbage list does, with a tracked write first.
///
/// # Safety
/// `ptr` came from `object` and no thread reads it any more.
unsafe fn free(ptr: *mut Object) {
    // SAFETY: the caller's contract.
    let boxed = unsafe { Box::from_raw(ptr) };
    boxed.value.with_mut(|value| {
        // SAFETY: the tracked access is exclusive, which loom checks.
        unsafe { *value = u64::MAX };
    });
}

/// Pins, reads the current object, checks it is one that was published, unpins.
fn read_once(domain: &Domain, slot: &AtomicPtr<Object>, record: &mapguard::LoomRecord) {
    domain.pin(record);
    let current = slot.load(Ordering::Acquire);
    // SAFETY: the object was reachable while pinned: the protocol keeps it allocated until the
    // pin ends. A violation is the data race loom reports on the `with_mut` in `free`.
    let value = unsafe { (*current).value.with(|value| *value) };
    assert!(value == 1 || value == 2, "read a freed object ({value})");
    domain.unpin(record);
}

/// The writer's side: publish a new object, retire the old, advance, free once expired.
/// Returns the old object if it could not be freed yet.
fn replace_and_reclaim(domain: &Domain, slot: &AtomicPtr<Object>) -> Option<*mut Object> {
    let old = slot.swap(object(2), Ordering::AcqRel);
    let retired_at = domain.retire_epoch();
    for _ in 0..2 {
        domain.try_advance();
    }
    if domain.is_expired(retired_at) {
        // SAFETY: expired: every reader that could hold it has unpinned.
        unsafe { free(old) };
        None
    } else {
        Some(old)
    }
}

/// Runs `f` under loom with at most 3 preemptions (unless `LOOM_MAX_PREEMPTIONS` says
/// otherwise) and prints how many executions it explored.
fn model(f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let iterations = std::sync::Arc::new(AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&iterations);
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "loom {}: {} iterations (preemption bound {:?})",
        std::thread::current().name().unwrap_or("?"),
        iterations.load(Ordering::Relaxed),
        builder.preemption_bound
    );
}

#[test]
fn a_pinned_reader_never_reads_a_freed_object() {
    model(|| {
        let domain = Arc::new(Domain::new());
        let slot = Arc::new(AtomicPtr::new(object(1)));

        let reader = {
            let (domain, slot) = (Arc::clone(&domain), Arc::clone(&slot));
            thread::spawn(move || {
                let record = domain.register();
                read_once(&domain, &slot, record);
                domain.release(record);
            })
        };
        let pending = replace_and_reclaim(&domain, &slot);
        reader.join().unwrap();

        if let Some(old) = pending {
            // SAFETY: the reader has finished.
            unsafe { free(old) };
        }
        // SAFETY: no thread is left.
        unsafe { free(slot.load(Ordering::Relaxed)) };
    });
}

#[test]
fn a_reader_pinning_twice_and_an_advancing_reader() {
    model(|| {
        let domain = Arc::new(Domain::new());
        let slot = Arc::new(AtomicPtr::new(object(1)));

        let reader = {
            let (domain, slot) = (Arc::clone(&domain), Arc::clone(&slot));
            thread::spawn(move || {
                let record = domain.register();
                read_once(&domain, &slot, record);
                // Readers also advance the epoch in the real map (through their writes).
                domain.try_advance();
                read_once(&domain, &slot, record);
                domain.release(record);
            })
        };
        let pending = replace_and_reclaim(&domain, &slot);
        reader.join().unwrap();

        if let Some(old) = pending {
            // SAFETY: the reader has finished.
            unsafe { free(old) };
        }
        // SAFETY: no thread is left.
        unsafe { free(slot.load(Ordering::Relaxed)) };
    });
}

/// A stand-in for a shard's table: one slot's value pointer, and a field written when the
/// table is freed (so that loom sees the free as a write).
struct Table {
    value: AtomicPtr<Object>,
    freed: UnsafeCell<bool>,
}

fn table(value: *mut Object) -> *mut Table {
    Box::into_raw(Box::new(Table {
        value: AtomicPtr::new(value),
        freed: UnsafeCell::new(false),
    }))
}

/// Frees a table (not its value, which moved on).
///
/// # Safety
/// `ptr` came from `table` and no thread reads it any more.
unsafe fn free_table(ptr: *mut Table) {
    // SAFETY: the caller's contract.
    let boxed = unsafe { Box::from_raw(ptr) };
    boxed.freed.with_mut(|freed| {
        // SAFETY: the tracked access is exclusive, which loom checks.
        unsafe { *freed = true };
    });
}

#[test]
fn a_reader_through_table_and_value_while_the_table_is_rebuilt_and_the_value_replaced() {
    model(|| {
        let domain = Arc::new(Domain::new());
        let shard = Arc::new(AtomicPtr::new(table(object(1))));

        let reader = {
            let (domain, shard) = (Arc::clone(&domain), Arc::clone(&shard));
            thread::spawn(move || {
                let record = domain.register();
                domain.pin(record);
                let table = shard.load(Ordering::Acquire);
                // SAFETY: reachable while pinned; a violation is the race loom reports.
                let freed = unsafe { (*table).freed.with(|freed| *freed) };
                assert!(!freed, "read a freed table");
                // SAFETY: as above.
                let value = unsafe { (*table).value.load(Ordering::Acquire) };
                // SAFETY: as above.
                let seen = unsafe { (*value).value.with(|value| *value) };
                assert!(seen == 1 || seen == 2, "read a freed value ({seen})");
                domain.unpin(record);
                domain.release(record);
            })
        };

        // Rebuild: a new table gets the value pointer, then replaces the old one.
        let old_table = shard.load(Ordering::Relaxed);
        // SAFETY: only this thread writes tables; the old one is alive until retired.
        let moved = unsafe { (*old_table).value.load(Ordering::Relaxed) };
        let new_table = table(moved);
        shard.store(new_table, Ordering::Release);
        let table_retired_at = domain.retire_epoch();
        // Overwrite: publish a new value, retire the old one.
        // SAFETY: the new table is alive (only this thread frees tables).
        let old_value = unsafe { (*new_table).value.swap(object(2), Ordering::AcqRel) };
        let value_retired_at = domain.retire_epoch();
        for _ in 0..2 {
            domain.try_advance();
        }
        let mut pending_table = Some(old_table);
        let mut pending_value = Some(old_value);
        if domain.is_expired(table_retired_at) {
            // SAFETY: expired: every reader that could reach it has unpinned.
            unsafe { free_table(old_table) };
            pending_table = None;
        }
        if domain.is_expired(value_retired_at) {
            // SAFETY: as above.
            unsafe { free(old_value) };
            pending_value = None;
        }
        reader.join().unwrap();

        if let Some(old) = pending_table {
            // SAFETY: the reader has finished.
            unsafe { free_table(old) };
        }
        if let Some(old) = pending_value {
            // SAFETY: the reader has finished.
            unsafe { free(old) };
        }
        let last = shard.load(Ordering::Relaxed);
        // SAFETY: no thread is left.
        unsafe {
            free((*last).value.load(Ordering::Relaxed));
            free_table(last);
        }
    });
}
