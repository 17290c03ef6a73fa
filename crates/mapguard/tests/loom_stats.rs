//! Loom models of the statistics' striped counters: a stripe's owner adds with a relaxed load
//! and store, threads beyond the stripes share the overflow stripe with `fetch_add`, a
//! snapshot sums the stripes with relaxed loads, and an exiting thread's number (and so its
//! stripe) passes to a new thread through the pool's mutex.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p mapguard --test loom_stats --release`.
//! Without `--cfg loom` this file is empty.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use mapguard::loom_stats::{Pool, Stripes};
#[path = "support/loom_model.rs"]
mod loom_model;
use loom_model::model;

/// Lets the threads spawned so far run before the next step (loom schedules a new thread
/// only once the spawning thread yields or blocks); interleavings from there on are
/// explored up to the preemption bound.
fn let_others_run() {
    thread::yield_now();
}

/// A thread that claims a number from `pool` and counts `n` gets and `n` inserts as it,
/// as a map's thread does.
fn counter(stripes: &Arc<Stripes>, pool: &Arc<Pool>, n: u64) -> thread::JoinHandle<usize> {
    let (stripes, pool) = (stripes.clone(), pool.clone());
    thread::spawn(move || {
        let me = pool.claim();
        for _ in 0..n {
            stripes.add_as(me, false);
            stripes.add_as(me, true);
        }
        me
    })
}

#[test]
fn snapshots_are_monotone_and_exact_after_join() {
    model(|| {
        let stripes = Arc::new(Stripes::new(2));
        let pool = Arc::new(Pool::new());
        let a = counter(&stripes, &pool, 2);
        let b = counter(&stripes, &pool, 2);
        // Two snapshots while both count: each total only grows and never exceeds the count.
        let_others_run();
        let first = stripes.sum();
        let_others_run();
        let second = stripes.sum();
        assert!(
            first.0 <= second.0 && first.1 <= second.1,
            "{first:?} then {second:?}"
        );
        assert!(second.0 <= 4 && second.1 <= 4, "{second:?}");
        let numbers = (a.join().unwrap(), b.join().unwrap());
        assert_ne!(numbers.0, numbers.1, "two live threads share a stripe");
        assert_eq!(stripes.sum(), (4, 4));
    });
}

#[test]
fn overflow_stripe_loses_nothing() {
    model(|| {
        // No owned stripe: both threads count in the shared overflow stripe.
        let stripes = Arc::new(Stripes::new(0));
        let pool = Arc::new(Pool::new());
        let threads: Vec<_> = (0..2).map(|_| counter(&stripes, &pool, 1)).collect();
        let_others_run();
        let seen = stripes.sum();
        assert!(seen.0 <= 2, "{seen:?}");
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(stripes.sum(), (2, 2));
    });
}

#[test]
fn an_exiting_thread_hands_its_stripe_over_without_loss() {
    model(|| {
        let stripes = Arc::new(Stripes::new(1));
        let pool = Arc::new(Pool::new());
        // The first thread counts, then exits (gives its number back); the second claims
        // a number concurrently: the freed stripe if it comes after, the overflow stripe if
        // not. Either way its counts add to the first thread's.
        let first = {
            let (stripes, pool) = (stripes.clone(), pool.clone());
            thread::spawn(move || {
                let me = pool.claim();
                stripes.add_as(me, false);
                stripes.add_as(me, false);
                pool.release(me);
            })
        };
        let second = {
            let (stripes, pool) = (stripes.clone(), pool.clone());
            thread::spawn(move || {
                let me = pool.claim();
                stripes.add_as(me, false);
                me
            })
        };
        let_others_run();
        let seen = stripes.sum().0;
        first.join().unwrap();
        second.join().unwrap();
        let after = stripes.sum().0;
        assert!(seen <= after, "{seen} then {after}");
        assert_eq!(after, 3);
    });
}
