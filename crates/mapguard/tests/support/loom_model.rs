//! The loom runner shared by the `loom_*` model files: a preemption bound and a printed count
//! of the executions each model explored (so that a model that explores almost nothing shows).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Runs `f` under loom with at most 3 preemptions (unless `LOOM_MAX_PREEMPTIONS` says
/// otherwise) and prints how many executions it explored.
pub(crate) fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(usize::MAX, f);
}

/// [`model`] with at most `most` preemptions, for models with three threads.
#[allow(dead_code)] // Only the model files with three-thread models use it.
pub(crate) fn model_bounded(most: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    let bound = builder.preemption_bound.unwrap_or(3).min(most);
    builder.preemption_bound = Some(bound);
    let executions = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&executions);
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "loom {}: {} executions (preemption bound {bound})",
        std::thread::current().name().unwrap_or("?"),
        executions.load(Ordering::Relaxed),
    );
}
