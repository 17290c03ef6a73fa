//! A `Ref` read-locks its shard through the current thread's reader record, so it must be
//! dropped on that thread: it cannot be moved to another one. (The map is leaked so that the
//! guard is `'static` and the only error left is the missing `Send`.)

fn main() {
    let map: &'static mapguard::ShardedMap<u32, u32> = Box::leak(Box::new(mapguard::ShardedMap::new()));
    map.insert(1, 1);
    let guard = map.get(&1).unwrap();
    let handle = std::thread::spawn(move || *guard);
    handle.join().unwrap();
}
