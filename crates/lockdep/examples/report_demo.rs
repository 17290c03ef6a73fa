//! Prints one report of each kind, to show what lockdep says. Needs `--features check`.
//!
//! `cargo run -p lockdep --features check --example report_demo`

use std::sync::{Arc, Barrier};
use std::time::Duration;

use lockdep::{Config, Mutex, Reaction, RwLock};

struct Bank {
    accounts: Mutex<Vec<u64>>,
    audit_log: Mutex<Vec<String>>,
}

fn main() {
    lockdep::configure(Config {
        reaction: Reaction::Print,
        deadlock_timeout: Some(Duration::from_millis(300)),
        ..Config::default()
    })
    .expect("valid config");

    let bank = Arc::new(Bank {
        accounts: Mutex::with_class("bank.accounts", vec![100, 50]),
        audit_log: Mutex::with_class("bank.audit_log", Vec::new()),
    });

    // 1. Lock-order inversion: the transfer path takes accounts -> audit_log ...
    {
        let bank = Arc::clone(&bank);
        std::thread::Builder::new()
            .name("transfer".into())
            .spawn(move || {
                let mut accounts = bank.accounts.lock();
                accounts[0] -= 10;
                bank.audit_log.lock().push("transfer 10".into());
            })
            .unwrap()
            .join()
            .unwrap();
    }
    // ... and later the audit path takes audit_log -> accounts.
    {
        let log = bank.audit_log.lock();
        let total: u64 = bank.accounts.lock().iter().sum();
        println!("audit: {} entries, total {total}", log.len());
    }

    // 2. Recursive read of a writer-preferring RwLock.
    let config = RwLock::with_class("service.config", 1);
    {
        let outer = config.read();
        let inner = config.read();
        println!("config {}", *outer + *inner);
    }

    // 3. A real deadlock (the inversion warning above was only printed, so it happens).
    let a = Arc::new(Mutex::with_class("cache.shard", ()));
    let b = Arc::new(Mutex::with_class("cache.index", ()));
    let barrier = Arc::new(Barrier::new(2));
    let mut handles = Vec::new();
    for (name, first, second) in [
        ("worker-1", Arc::clone(&a), Arc::clone(&b)),
        ("worker-2", Arc::clone(&b), Arc::clone(&a)),
    ] {
        let barrier = Arc::clone(&barrier);
        handles.push(
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    // Panic on the deadlock report so the demo ends.
                    lockdep::set_thread_reaction(Some(Reaction::Callback(Arc::new(|r| {
                        println!("{r}");
                        if r.kind() == lockdep::ReportKind::Deadlock {
                            panic!("deadlock found; unwinding to break it");
                        }
                    }))));
                    let _first = first.lock();
                    barrier.wait();
                    let _second = second.lock();
                })
                .unwrap(),
        );
    }
    for h in handles {
        let _ = h.join();
    }
    println!("{}", lockdep::stats());
}
