//! # mapguard
//!
//! Concurrent hash maps for Rust services that stay fast on many cores, never hang silently,
//! and show where they hurt.
//!
//! [`ShardedMap`] is the general-purpose map: std/dashmap-style API, any `K: Hash + Eq` and
//! `V`, lookups by `&Q` where `K: Borrow<Q>`.
//!
//! [`ReadMostlyMap`] takes Go's `sync.Map` role (keys written once and read many times, or
//! threads on disjoint keys): reads take no lock and write no shared memory, replaced values
//! are reclaimed with epochs (see [`read_mostly`]). [`LockedMap`] is one `RwLock` around one
//! table: the minimal fix, and the baseline the others are measured against.
//!
//! ```
//! use mapguard::{Action, ShardedMap};
//!
//! let sessions = ShardedMap::new();
//! sessions.insert("alice".to_string(), 1u32);
//! assert!(sessions.get("alice").is_some());
//! sessions.compute("alice".to_string(), |_, n| Action::Set(n.copied().unwrap_or(0) + 1));
//! assert_eq!(sessions.get_cloned("alice"), Some(2));
//! ```
//!
//! ## What blocks and what never does
//! - **Reads** (`get`, `get_cloned`, `contains_key`, iteration) write only to a per-thread
//!   record, never to memory another core reads: readers on different cores do not slow each
//!   other. A read waits only while a writer holds the key's shard.
//! - **Writes** lock one shard: they wait for that shard's readers and writers.
//! - Every single-key operation is atomic, closures included (`compute`, `update`,
//!   `remove_if`, `get_or_insert_with`, [`Entry`]).
//! - A call that would wait for a guard the same thread holds (an `insert` while a [`Ref`]
//!   into the same shard is alive, a `compute` closure that calls the map for the same shard)
//!   **panics with both call sites** instead of deadlocking; threads that wait for each
//!   other's guards panic in one of them (see below).
//! - User closures, and keys' `Hash` and `Eq`, that panic leave the map consistent and
//!   unlocked, with no entry lost (a table that grows or shrinks hashes every key it holds,
//!   and a panic there leaves it as it was); there is no poisoning. So every map is
//!   [`UnwindSafe`](std::panic::UnwindSafe) and [`RefUnwindSafe`](std::panic::RefUnwindSafe),
//!   as `std`'s locks are: `catch_unwind` around a call that uses the map needs no
//!   `AssertUnwindSafe`. (A value that a panicking closure had partly changed stays as the
//!   closure left it.)
//! - Guards are `!Send` (they must be dropped by the thread that took them, which also makes
//!   holding one across an `.await` in a spawned future a compile error) and `Sync` when the
//!   key and value are: a `&Ref` may be shared with scoped threads.
//! - Iteration sees every key that is present for the whole iteration exactly once.
//!
//! ## Deadlocks: never a silent hang
//! - **[`ShardedMap`], same thread: at once.** A call that would wait for a guard its own
//!   thread holds on that shard panics before waiting ("mapguard: deadlock avoided:", the
//!   shard, both call sites).
//! - **[`ShardedMap`], across threads: after a threshold.** Threads that each hold a guard
//!   and wait for another's shard in a cycle (dashmap issue 369; two threads or a longer ring;
//!   read or write guards; one map or several) are found once a call has waited the map's
//!   [`deadlock_check_after`](ShardedMapBuilder::deadlock_check_after) (100 ms by default),
//!   in every build: exactly one of them panics ("mapguard: deadlock detected:", every thread
//!   with the shard it holds and where it took it, the shard it waits for and the call that
//!   waits), its call has no effect, and the others complete. A guard held for long without
//!   a cycle never fails a call (it prints one stall line after ten times the threshold);
//!   a guard leaked by a thread that exited is reported to the writer waiting for it. See
//!   [`ShardedMap`'s Deadlocks section](ShardedMap#deadlocks).
//! - **Orders that have not deadlocked yet** (the two threads above, but at different times)
//!   are reported only with the `lockdep` feature (below).
//! - **[`ReadMostlyMap`] cannot deadlock through its API**: its references hold no lock
//!   (they pin an epoch), reads never wait, and a shard's write lock is held only inside one
//!   call, during which only the key's and value's own `Hash`, `Eq`, `Clone` and `Drop` run;
//!   a write from there to the same shard panics ("deadlock avoided"). (Such trait code that
//!   writes to other shards or maps while another thread does the reverse is the one way left,
//!   and it is not detected.)
//! - **[`LockedMap`]** is one `std` reader-writer lock per map (without poisoning), so within
//!   one map the only deadlock is a thread waiting for itself (a write while it holds a
//!   [`LockedRef`], or a read while it holds one and a writer is queued). Without the `lockdep` feature that
//!   hangs, as with `std`'s `RwLock`; with it, it is reported before it blocks, and so are
//!   two threads locking two `LockedMap`s in opposite orders.
//!
//! ## Async
//! - **No call awaits and none needs an executor.** Called from async code, a call blocks its
//!   thread only for the waits above: a read while a writer holds the key's shard, a write for
//!   the shard's current readers and writers, each for the length of one call elsewhere
//!   (`ReadMostlyMap`'s reads never wait).
//! - **Guards cannot cross an `.await` in a task that may move.** Every guard ([`Ref`],
//!   [`RefMut`], [`LockedRef`], `ReadMostlyMap`'s references) is `!Send`, so a future that holds
//!   one across an `.await` is `!Send` too, and `tokio::spawn` (or any executor that moves tasks
//!   between threads) refuses it at compile time. Held there, a `ShardedMap` or `LockedMap`
//!   guard would keep its lock while the task sleeps, and every writer of the shard would wait
//!   for a task nobody polls.
//! - **Instead**, take what the task needs before the `.await`: [`ShardedMap::get_cloned`], a
//!   closure-scoped read with [`ShardedMap::with`] (on every map) that returns a value and
//!   leaves no guard, or values stored as `Arc<V>` and cloned out.
//!
//! ```
//! # use std::future::{ready, Future};
//! # fn spawn<F: Future + Send + 'static>(task: F) -> F { task }
//! let map = std::sync::Arc::new(mapguard::ShardedMap::new());
//! map.insert(1, 10);
//! let task = spawn(async move {
//!     let n = map.with(&1, |v| *v); // no guard is held past this line
//!     ready(()).await;
//!     n
//! });
//! # drop(task);
//! ```
//!
//! The same task holding a guard across the `.await` does not compile (the guard is not
//! `Send`):
//!
//! ```compile_fail
//! # use std::future::{ready, Future};
//! # fn spawn<F: Future + Send + 'static>(task: F) -> F { task }
//! let map = std::sync::Arc::new(mapguard::ShardedMap::new());
//! map.insert(1, 10);
//! let task = spawn(async move {
//!     let guard = map.get(&1);
//!     ready(()).await;
//!     guard.map(|v| *v)
//! });
//! ```
//!
//! ## Design
//! See the [`sharded`] module docs and [`ShardedMap`] for the lock design: a reader-biased
//! reader-writer lock per shard whose readers announce themselves in per-thread records (the
//! "big reader" / BRAVO technique) instead of a shared reader counter, which is what makes
//! lock-based maps collapse at two cores.
//!
//! ## Statistics and observers
//! Each map can record statistics (`builder().stats(true)`, read with `stats()`), report its
//! hot keys (with their text under `builder().stats_keys(true)`), and call an
//! `stats::Observer` on every write with a `stats::WriteEvent`: the operation, key hash,
//! shard, the caller's [`Location`](std::panic::Location) and the map's name. What is exact
//! (every counter, per-shard entries, write locks, contended waits and their time), what is sampled (hot keys,
//! per-shard reads: one access in 128) and why a snapshot is not an atomic cut is
//! in the `stats` module docs. It needs the `stats` feature (opt-in); with it, a map built
//! without statistics costs one predictable branch per operation; on, a read still writes no cache line another core
//! reads, except once per sampled access.
//!
//! ## Features
//! - `serde`: `Serialize`/`Deserialize` for the maps, as maps.
//! - `rayon`: parallel iteration (`par_for_each`, `par_retain`; `into_par_iter` on ShardedMap,
//!   `par_extend` and parallel `collect` on ReadMostlyMap).
//! - `lockdep`: every shard lock reports its acquisitions and releases to the [`lockdep`]
//!   crate (with its `check` feature), so that two threads taking shards of one map in
//!   opposite orders — `get(a)` then `insert(b)` in one, `get(b)` then `insert(a)` in the
//!   other (dashmap issue 369) — are reported, with both call sites, the first time the second
//!   order happens, whether or not the threads ever overlap. Reads count too: a read guard
//!   holds its shard. A debugging feature: off, it adds no code to any lock path; on, each
//!   first read of a shard and each write costs a lockdep check (tens of nanoseconds once the
//!   order is known). See [`sharded`] for the lock classes and exactly what is reported.
//!
//! - `stats` (opt-in): statistics and observers. Without it the builders have no `stats`,
//!   `stats_keys`, `name` or `observer` settings, the maps no `stats()`, and the maps compile
//!   exactly as if the hooks were not there (not even the one branch).
//! - `tracing`: `stats::TracingObserver`, one TRACE event per write (implies `stats`).
//! - `metrics`: counters and gauges in the `metrics` facade, registered when a map with
//!   statistics is built and set by its `publish_metrics()` (see `stats`).
//! - `usdt`: static probes for bpftrace and perf on Linux (see `stats`).
//!
//! [`lockdep`]: https://docs.rs/lockdep
#![deny(unsafe_code)]

mod deferred_drop;
mod error;
mod growth;
pub mod locked;
#[allow(unsafe_code)]
mod raw;
pub mod read_mostly;
#[cfg(feature = "serde")]
mod serde_map;
pub mod sharded;
#[cfg(feature = "stats")]
pub mod stats;
/// Without the `stats` feature the hooks are compiled but never reached.
#[cfg(not(feature = "stats"))]
#[allow(dead_code, unreachable_pub, unused_imports)]
mod stats;

/// The trait lookups take their key through: a `&Q` finds a stored `K` when
/// `Q: Equivalent<K>`, which every `Q` that `K` borrows as is (a blanket impl), and which a
/// caller may implement for a borrowed form `K` cannot give (a tuple of references for a
/// tuple key, say). The same trait as `hashbrown`'s and `indexmap`'s (the `equivalent`
/// crate), so one impl serves all of them. Equivalent keys must hash alike.
///
/// # Examples
/// ```
/// use mapguard::{Equivalent, ReadMostlyMap};
///
/// #[derive(Hash, PartialEq, Eq)]
/// struct Route(String, u16);
/// /// A borrowed view of a `Route`, hashed as a `Route` is.
/// #[derive(Hash)]
/// struct RouteRef<'a>(&'a str, u16);
/// impl Equivalent<Route> for RouteRef<'_> {
///     fn equivalent(&self, key: &Route) -> bool {
///         self.0 == key.0 && self.1 == key.1
///     }
/// }
///
/// let map = ReadMostlyMap::new();
/// map.insert(Route("/users".to_owned(), 443), 7);
/// assert_eq!(map.get_cloned(&RouteRef("/users", 443)), Some(7));
/// assert_eq!(map.get_cloned(&Route("/users".to_owned(), 443)), Some(7));
/// ```
pub use equivalent::Equivalent;
pub use error::{BuildError, ReserveError};
pub use locked::{LockedMap, LockedMapBuilder, LockedRef};
pub use read_mostly::{ReadMostlyMap, ReadMostlyMapBuilder};

/// The epoch-reclamation protocol, public only under `--cfg loom` for its model
/// (`tests/loom_read_mostly.rs`); not part of the API.
#[cfg(loom)]
#[doc(hidden)]
pub use raw::epoch::{Domain as LoomDomain, Record as LoomRecord};
/// This thread's counts of shared writes and fences, public only under
/// `--cfg mapguard_count_writes` for `tests/read_writes.rs`; not part of the API.
#[cfg(all(mapguard_count_writes, not(loom)))]
#[doc(hidden)]
pub use raw::primitive::{
    fences_by_this_thread, reads_use_light_fences, shared_writes_by_this_thread,
};
/// A model's way to make a wait give up as a resolved deadlock does, public only under
/// `--cfg loom` for the shard lock's model (`tests/loom_sharded.rs`); not part of the API.
#[cfg(loom)]
#[doc(hidden)]
pub use raw::waitfor::loom_give_up;
pub use sharded::{
    Action, Computed, DefaultHashBuilder, Entry, KeyRef, OccupiedEntry, OccupiedError, Ref, RefMut,
    ShardedMap, ShardedMapBuilder, VacantEntry,
};
/// The statistics' striped counters with explicit thread numbers, public only under
/// `--cfg loom` for their model (`tests/loom_stats.rs`); not part of the API.
#[cfg(loom)]
#[doc(hidden)]
pub use stats::counters::model as loom_stats;
