//! A `RefMut` borrows its map: it cannot be kept after the map is dropped.

fn main() {
    let map: mapguard::ShardedMap<u32, u32> = mapguard::ShardedMap::new();
    map.insert(1, 1);
    let guard = map.get_mut(&1).unwrap();
    drop(map);
    println!("{}", *guard);
}
