//! Loom model of the publish/retire protocol behind `ReadMostlyMap`: a writer swaps a shared
//! pointer, retires the old object with the epoch it reads, advances the epoch and frees the
//! object once expired, while readers pin, load the pointer and read the object. Loom reports
//! a read that overlaps the free as a data race.
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

#[test]
fn a_pinned_reader_never_reads_a_freed_object() {
    loom::model(|| {
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
    loom::model(|| {
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
