//! Memory reclamation of `ReadMostlyMap`, measured with a counting global allocator: after
//! `clear` and after drop every byte and every value comes back. One test per binary keeps
//! other tests' allocations out of the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use mapguard::ReadMostlyMap;

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

static CREATED: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// A value that counts its drops and owns heap memory.
#[derive(PartialEq)]
struct Counted(Box<u64>);

impl Counted {
    fn new(n: u64) -> Self {
        CREATED.fetch_add(1, Ordering::Relaxed);
        Self(Box::new(n))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

fn live() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

fn alive() -> usize {
    CREATED.load(Ordering::Relaxed) - DROPPED.load(Ordering::Relaxed)
}

/// Inserts, overwrites, removes and re-inserts enough to grow, shrink and retire a lot.
fn churn(map: &ReadMostlyMap<String, Counted>) {
    for i in 0..20_000u64 {
        map.insert(format!("key{i}"), Counted::new(i));
    }
    for i in 0..20_000u64 {
        map.insert(format!("key{i}"), Counted::new(i + 1));
    }
    for i in (0..20_000u64).step_by(3) {
        assert!(map.remove(&format!("key{i}")).is_some());
    }
    for i in (0..20_000u64).step_by(6) {
        map.get_or_insert_with(format!("key{i}"), || Counted::new(i));
        let _ = map.compare_exchange(format!("key{i}"), &Counted::new(i), Counted::new(7));
    }
    assert!(map.remove_if_eq("key6", &Counted::new(7)));
}

#[test]
#[cfg_attr(
    feature = "lockdep",
    ignore = "lockdep keeps the lock classes of every map it saw, for its statistics; CI runs this \
              test without features"
)]
fn clear_and_drop_return_every_byte_and_value() {
    // Claim this thread's epoch record (allocated once per thread, kept for reuse) first.
    drop(ReadMostlyMap::<u8, u8>::new().get(&0));
    let before_map = live();

    let map: ReadMostlyMap<String, Counted> = ReadMostlyMap::new();
    let empty_map = live();
    churn(&map);
    assert!(alive() > 10_000);
    map.clear();
    assert_eq!(alive(), 0, "values still alive after clear");
    assert_eq!(
        map.pending_reclamation(),
        0,
        "nothing waits to be freed after clear"
    );
    assert_eq!(live(), empty_map, "bytes still allocated after clear");

    // A reference alive during `clear` delays the freeing; `reclaim` finishes it.
    map.insert("held".to_string(), Counted::new(1));
    let held = map.get("held").unwrap();
    map.clear();
    assert_eq!(*held.0, 1, "the held value is still readable");
    assert_eq!(alive(), 1);
    drop(held);
    map.reclaim();
    assert_eq!(alive(), 0);
    assert_eq!(live(), empty_map);

    // Drop frees everything, retired or not.
    churn(&map);
    drop(map);
    assert_eq!(alive(), 0, "values still alive after drop");
    assert_eq!(live(), before_map, "bytes still allocated after drop");

    // The same with a presized map whose garbage is never collected before the drop.
    let map: ReadMostlyMap<String, Counted> = ReadMostlyMap::with_capacity(50_000);
    churn(&map);
    drop(map);
    assert_eq!(alive(), 0);
    assert_eq!(live(), before_map);
}
