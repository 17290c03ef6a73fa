//! Integration tests of [`mapguard::ShardedMap`], one binary with a module per concern.
//!
//! - `common`: map configurations every behaviour test runs against, hashers, drop-counting
//!   values, timeouts and panic-message helpers.
//! - `model`: proptest model test of the whole API against `std::collections::HashMap`.
//! - `stress`: several threads with invariants that readers and iterators check.
//! - `deadlock`: self-deadlocks panic with both call sites; legal re-entrant patterns do not.
//! - `panic_safety`: panicking user closures leave the map consistent, unlocked and leak-free.
//! - `builder`: builder and allocation errors.
//! - `compile_fail`: trybuild tests of what the guards' types forbid.
//! - `features`: serde and rayon support.
//! - `lockdep`: with the `lockdep` feature, inversions between shards are reported, consistent
//!   orders are not, and self-deadlocks keep the map's own panic.

mod builder;
mod common;
mod compile_fail;
mod deadlock;
mod features;
#[cfg(feature = "lockdep")]
mod lockdep;
mod model;
mod panic_safety;
mod stress;
