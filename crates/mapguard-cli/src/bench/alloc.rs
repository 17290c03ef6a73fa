//! A counting global allocator, for the bytes-per-entry figure.
//!
//! Counting is off except inside [`measure`], which the engine calls around building and
//! prefilling a map on one thread; during timed runs the allocator only reads a flag that no
//! one writes, so it adds no shared writes to maps that allocate per operation (papaya, scc).
//! The binary installs it with `#[global_allocator]`; without that, [`measure`] reports `None`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// The system allocator, counting net allocated bytes while [`measure`] runs.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

// Written only while a measurement runs; kept apart from the flag every allocation reads.
#[repr(align(128))]
struct Padded<T>(T);

static COUNTING: Padded<AtomicBool> = Padded(AtomicBool::new(false));
static NET_BYTES: Padded<AtomicIsize> = Padded(AtomicIsize::new(0));

#[inline]
fn count(delta: isize) {
    if COUNTING.0.load(Ordering::Relaxed) {
        NET_BYTES.0.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; counting touches no memory
// that is allocated.
unsafe impl GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: our caller upholds `alloc`'s contract (non-zero size layout).
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`, per our caller.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr`/`layout` come from `System` through us and `new_size` is valid, per
        // our caller.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        new
    }
}

/// Runs `f` on this thread and returns its result with the net bytes allocated meanwhile
/// (allocated minus freed, by any thread), or `None` when [`CountingAlloc`] is not the
/// global allocator. Measurements must not overlap.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Option<isize>) {
    let before = NET_BYTES.0.load(Ordering::Relaxed);
    COUNTING.0.store(true, Ordering::SeqCst);
    let probe = black_box(Box::new([0u8; 64]));
    let installed = NET_BYTES.0.load(Ordering::Relaxed) != before;
    drop(probe);
    let start = NET_BYTES.0.load(Ordering::Relaxed);
    let value = f();
    let end = NET_BYTES.0.load(Ordering::Relaxed);
    COUNTING.0.store(false, Ordering::SeqCst);
    (value, installed.then_some(end - start))
}

/// The size from which glibc's `malloc` maps memory of its own for an allocation, fixed for
/// the whole run: 32 MiB, the highest value glibc itself moves it to.
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory above this at the top of the heap goes back to the system: twice the above,
/// as glibc sets it whenever it moves the mmap threshold.
const TRIM_THRESHOLD: i32 = 64 << 20;

/// Makes every sample start with the same allocator behaviour, whatever ran before it.
///
/// By default glibc serves allocations of 128 KiB or more with fresh mappings, and raises
/// that threshold to the size of any such block freed (up to 32 MiB), for the rest of the
/// process. So whether a map's table of, say, 140 KiB costs page faults and a `munmap` at
/// every growth or is carved from the heap depended on which map an earlier sample had
/// freed: one `rapid-grow` cell moved by 20-25 % with the order the maps ran in. Setting
/// both thresholds explicitly turns the adjustment off; the values are the ones a
/// long-running process converges to once it has freed a large table, so every map is
/// measured in that steady state. Once per process; a no-op outside Linux with glibc.
pub fn steady_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: `mallopt` only sets a tuning parameter of glibc's allocator, under its
            // own lock; any value is valid for these two, and allocations already made are
            // unaffected.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
                libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            }
        });
    }
}
