//! `self-deadlock`: a `compute` closure calls back into the same map. With a plain
//! `RwLock<HashMap>` or dashmap the thread waits for a lock it holds itself, forever and
//! silently; ShardedMap sees that the lock is this thread's own and panics instead.

use std::panic::{self, AssertUnwindSafe};

use mapguard::{Action, ShardedMap};

use super::{Outcome, Scenario, panic_text, print_indented};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "self-deadlock",
    summary: "a compute closure calls back into the same map (a hang with most maps)",
    run,
};

fn run() -> Outcome {
    let balances: ShardedMap<String, u64> = ShardedMap::new();
    balances.insert("alice".to_owned(), 100);
    println!("A service credits interest inside `compute`, reading the rate from the same map:\n");
    println!("    balances.compute(\"alice\", |_, v| {{");
    println!("        let rate = balances.get(\"alice\")...;   // calls the map again");
    println!("        Action::Set(v + rate)");
    println!("    }});\n");
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        balances.compute("alice".to_owned(), |_, value| {
            let rate = balances.get("alice").map_or(0, |r| *r / 100);
            Action::Set(value.copied().unwrap_or(0) + rate)
        })
    }));
    let Err(payload) = result else {
        println!("the nested call returned; no diagnosis");
        return Outcome::NotDiagnosed;
    };
    let message = panic_text(payload.as_ref());
    println!("Diagnosis (the panic message, raised instead of hanging):\n");
    print_indented(&message);
    println!();
    println!(
        "What it means: `compute` holds the write lock of the shard that owns \"alice\" while"
    );
    println!("its closure runs. The closure asked the same shard again, on the same thread: with");
    println!("std's RwLock or dashmap that waits for a lock this thread itself holds, forever.");
    println!("The sites named above are the nested call and the guard it would wait for.\n");
    let after = balances.get_cloned("alice");
    println!(
        "The map is not poisoned: the closure's panic left the entry as it was (alice = {after:?}).\n"
    );
    println!("Fix: read what the closure needs before calling `compute`, or use the value it is");
    println!("given; keep closures and guards free of calls to the same map:\n");
    println!("    let rate = balances.get_cloned(\"alice\").map_or(0, |b| b / 100);");
    println!("    balances.compute(\"alice\", |_, v| Action::Set(v.unwrap_or(0) + rate));");
    if message.contains("deadlock avoided") {
        Outcome::Diagnosed
    } else {
        Outcome::NotDiagnosed
    }
}
