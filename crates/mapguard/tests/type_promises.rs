//! What the maps' and guards' types promise the compiler, checked at compile time (a missing
//! impl fails the build of this file) and, for `catch_unwind`, by using it:
//! - every map is `UnwindSafe` and `RefUnwindSafe` (a panic leaves it consistent), as
//!   `std::sync::RwLock<HashMap>` is;
//! - every guard is `Sync` when its key and value are (a `&Ref` may go to scoped threads),
//!   while staying `!Send` (checked by the compile-fail cases in `tests/ui/`).

use std::panic::{RefUnwindSafe, UnwindSafe, catch_unwind};

use mapguard::{
    Entry, KeyRef, LockedMap, LockedRef, OccupiedEntry, ReadMostlyMap, Ref, RefMut, ShardedMap,
    VacantEntry,
};

fn unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}
fn sync<T: Sync>() {}
fn send_sync<T: Send + Sync>() {}

#[test]
fn maps_are_unwind_safe() {
    unwind_safe::<ShardedMap<u64, String>>();
    unwind_safe::<ReadMostlyMap<u64, String>>();
    unwind_safe::<LockedMap<u64, String>>();
    // Values that are not unwind-safe themselves: the maps keep their own consistency.
    unwind_safe::<ShardedMap<u64, std::cell::Cell<u8>>>();
    unwind_safe::<ReadMostlyMap<u64, std::sync::Mutex<u8>>>();
    send_sync::<ShardedMap<u64, String>>();
    send_sync::<ReadMostlyMap<u64, String>>();
}

#[test]
fn catch_unwind_around_a_map_needs_no_assertion() {
    let sharded = ShardedMap::new();
    let read_mostly = ReadMostlyMap::new();
    let locked = LockedMap::new();
    let caught = catch_unwind(|| {
        sharded.insert(1, 1);
        read_mostly.insert(1, 1);
        locked.insert(1, 1);
        sharded.compute(2, |_, _| -> mapguard::Action<i32> {
            panic!("in a closure")
        });
    });
    assert!(caught.is_err());
    assert!(catch_unwind(|| sharded.insert(2, 2)).is_ok());
    assert!(catch_unwind(|| read_mostly.insert(2, 2)).is_ok());
    assert!(catch_unwind(|| locked.insert(2, 2)).is_ok());
    assert_eq!((sharded.len(), read_mostly.len(), locked.len()), (2, 2, 2));
}

#[test]
fn guards_are_sync() {
    sync::<Ref<'static, u64, String>>();
    sync::<KeyRef<'static, u64, String>>();
    sync::<RefMut<'static, u64, String>>();
    sync::<Entry<'static, u64, String, mapguard::DefaultHashBuilder>>();
    sync::<OccupiedEntry<'static, u64, String>>();
    sync::<VacantEntry<'static, u64, String, mapguard::DefaultHashBuilder>>();
    sync::<mapguard::read_mostly::Ref<'static, u64, String>>();
    sync::<LockedRef<'static, u64, String>>();
}

#[test]
fn a_shared_read_guard_reads_from_scoped_threads() {
    let map = ShardedMap::new();
    map.insert(1, String::from("one"));
    let guard = map.get(&1).unwrap();
    let lengths = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| guard.value().len()))
            .collect();
        readers
            .into_iter()
            .map(|reader| reader.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(lengths, [3, 3]);
    drop(guard);
    map.insert(1, String::new());
}
