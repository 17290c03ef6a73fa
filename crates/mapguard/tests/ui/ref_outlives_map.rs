//! A `Ref` borrows its map: it cannot be kept after the map is dropped.

fn main() {
    let guard = {
        let map: mapguard::ShardedMap<u32, u32> = mapguard::ShardedMap::new();
        map.insert(1, 1);
        map.get(&1).unwrap()
    };
    println!("{}", *guard);
}
