//! Reliability tests run on every map (`ShardedMap`, `ReadMostlyMap`, `LockedMap`), with good and
//! degraded hashers.
//!
//! - `lost_entries`: keys present all along are never missed while another thread fills and
//!   empties the map; a MapLoops-style random walk keeps every value equal to its key.
//! - `drops`: every key and value is dropped exactly once, with panicking closures and
//!   `PartialEq`s in every closure-taking method, under concurrent writes, and by `clear` and
//!   `retain` when values' `Drop`s write to the map or panic.
//! - `panicking_hash`: a `Hash` that panics while a table grows, rehashes or shrinks loses no
//!   entry.
//! - `soak`: (ignored) all maps under a mixed workload with invariants, for a set duration.
//! - `bad_input`: typed errors for every invalid builder setting and allocation request.
//!
//! Memory (a counting global allocator) is measured in its own binary, `tests/memory.rs`.

#[path = "../support/hashers.rs"]
mod hashers;

mod bad_input;
mod drops;
mod lost_entries;
mod maps;
mod panicking_hash;
mod soak;
