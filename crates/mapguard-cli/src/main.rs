//! The `mapguard` command.
fn main() {}
