//! The `mapguard` command's engine: benchmarks of mapguard's maps against the Rust peers.
//!
//! The binary (`src/main.rs`) only parses flags, validates them into a
//! [`bench::BenchConfig`], runs it and prints; everything else lives here so that later front
//! ends reuse it.
#![deny(unsafe_code)]

pub mod bench;
pub mod cli;
