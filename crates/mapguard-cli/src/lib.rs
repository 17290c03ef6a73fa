//! The `mapguard` command's engine: benchmarks of mapguard's maps against the Rust peers, and
//! the failure demos.
//!
//! The binary (`src/main.rs`) only parses flags, validates them into a
//! [`bench::BenchConfig`] (or picks a [`demo::Scenario`]), runs it and prints; everything else
//! lives here so that later front ends reuse it.
#![deny(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod demo;

/// The guide for Go programmers (`docs/from-go.md` of this crate, kept inside the crate so
/// that it is packaged with it), compiled as doctests so that every example in it, and every
/// `compile_fail` claim, is checked by `cargo test`.
#[cfg(doctest)]
#[doc = include_str!("../docs/from-go.md")]
pub struct FromGoGuide;
