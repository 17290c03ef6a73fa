//! The benchmark engine behind `mapguard bench`: workloads, per-thread operation plans,
//! one adapter per map, the timed runs, and the tables.
//!
//! The engine measures and returns [`BenchResult`]s; printing is separate ([`report`]), so
//! that other front ends (JSON, plots, progress bars) can reuse the same runs.

pub mod adapter;
pub mod alloc;
pub mod calibration;
pub mod charts;
pub mod compare;
pub mod config;
pub mod export;
pub mod html;
pub mod noise;
pub mod output;
pub mod plan;
pub mod report;
pub mod run;
pub mod workload;

pub use adapter::{BenchMap, Contention, MapHandle, MapKind};
pub use config::ConfigError;
pub use run::{BenchConfig, BenchResult, RunLength, run};
pub use workload::{WORKLOADS, Workload};
