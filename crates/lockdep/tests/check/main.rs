//! Tests of the checking build: each detection has a test that fails without it, and legal
//! patterns have tests that they are not reported. Bodies that could hang run on a thread
//! with a timeout (or in a child process), so the suite itself never hangs.

mod common;

mod deadlock;
mod foreign;
mod legal;
mod misc;
mod order;
mod rwlock;
mod self_deadlock;
mod stats;
mod timed;
