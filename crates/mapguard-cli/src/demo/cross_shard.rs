//! `cross-shard`: thread 1 holds a read guard on key A and inserts key B; thread 2 holds a
//! guard on B and inserts A, with A and B on different shards. Each insert waits for the
//! shard the other thread reads: a real deadlock across two threads. ShardedMap's writer
//! that has waited too long walks the wait-for graph and panics with a message starting
//! "mapguard: deadlock detected:"; this demo prints it, and gives up after a deadline if no
//! report comes.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use mapguard::ShardedMap;

use super::{Outcome, Scenario, panic_text, print_indented, with_deadline};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "cross-shard",
    summary: "two threads each hold a guard on one key and insert the other's (a real deadlock)",
    run,
};

/// How long the demo waits for a report before it declares that detection did not fire.
const DEADLINE: Duration = Duration::from_secs(10);

/// Two keys on different shards of `map`.
fn keys_on_two_shards(map: &ShardedMap<u64, u64>) -> (u64, u64, usize, usize) {
    let a = 1;
    let shard_a = map.get(&a).expect("prefilled").shard();
    let b = (2..)
        .find(|k| map.get(k).expect("prefilled").shard() != shard_a)
        .expect("a map with more than one shard has keys on two shards");
    let shard_b = map.get(&b).expect("prefilled").shard();
    (a, b, shard_a, shard_b)
}

fn run() -> Outcome {
    let map: Arc<ShardedMap<u64, u64>> = Arc::new(ShardedMap::new());
    for k in 0..1024 {
        map.insert(k, k);
    }
    let (a, b, shard_a, shard_b) = keys_on_two_shards(&map);
    println!(
        "Keys {a} (shard {shard_a}) and {b} (shard {shard_b}). Thread `one` reads key {a} and,"
    );
    println!(
        "still holding the guard, inserts key {b}; thread `two` reads key {b} and inserts key {a}:\n"
    );
    println!("    let seen = map.get(&a);  map.insert(b, ..);   // thread one");
    println!("    let seen = map.get(&b);  map.insert(a, ..);   // thread two\n");
    println!("Each insert needs the write lock of the shard the other thread is reading.\n");
    let panics = with_deadline(DEADLINE, "deadlock detection did not fire", move || {
        let barrier = Arc::new(Barrier::new(2));
        let spawn = |name: &str, read: u64, write: u64| {
            let (map, barrier) = (map.clone(), barrier.clone());
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || {
                    let seen = map.get(&read).expect("prefilled");
                    barrier.wait();
                    // The guard `seen` is still alive during the insert.
                    map.insert(write, *seen);
                    drop(seen);
                })
                .expect("spawn a demo thread")
        };
        let threads = [spawn("one", a, b), spawn("two", b, a)];
        threads
            .into_iter()
            .filter_map(|t| {
                let name = t.thread().name().unwrap_or("?").to_owned();
                t.join().err().map(|p| {
                    format!(
                        "thread `{name}` panicked: {}",
                        panic_text(p.as_ref()).trim()
                    )
                })
            })
            .collect::<Vec<_>>()
    });
    if panics.is_empty() {
        println!("both inserts finished; the threads did not meet, no diagnosis");
        return Outcome::NotDiagnosed;
    }
    println!("Diagnosis (the panic that broke the cycle):\n");
    for p in &panics {
        print_indented(p);
    }
    println!();
    println!("What it means: the two threads wait for each other through two shards; neither can");
    println!("go on. One waiter found the cycle and panicked, dropping its guard, so the other");
    println!("finished. With dashmap or RwLock<HashMap> shards this hangs forever, silently.\n");
    println!("Fix: do not call the map while holding a guard; copy the value out first:\n");
    println!("    let seen = map.get_cloned(&a);   // no guard kept");
    println!("    map.insert(b, seen.unwrap_or(0));");
    Outcome::Diagnosed
}
