//! Stack capture and printing. Stacks are captured (raw frames) only when a new order edge
//! is recorded, independent of `RUST_BACKTRACE`, and symbolized only when a report is
//! printed; printing drops lockdep's, the locks' and the runtime's own frames.

use std::backtrace::Backtrace;
use std::fmt::Write;
use std::sync::Arc;

use crate::config::SETTINGS;

/// Captures the current stack if stacks are configured on.
pub(crate) fn capture() -> Option<Arc<Backtrace>> {
    SETTINGS
        .read()
        .capture_stacks
        .then(|| Arc::new(Backtrace::force_capture()))
}

/// Frames that say nothing about the user's code.
const NOISE: &[&str] = &[
    "std::",
    "core::",
    "alloc::",
    "<std::",
    "<core::",
    "<alloc::",
    "lockdep::",
    "<lockdep::",
    "parking_lot",
    "<parking_lot",
    "lock_api",
    "<lock_api",
    "__rust",
    "<F as",
    "__libc",
    "start_thread",
    "clone",
    "_start",
    "test::",
    "<test::",
];

/// Where the interesting part of a stack ends.
const BOTTOM: &[&str] = &[
    "__rust_begin_short_backtrace",
    "std::rt::lang_start",
    "test::run_test",
];

/// The stack as indented lines: one `symbol (file:line)` per user frame, at most the
/// configured number.
pub(crate) fn render(stack: &Backtrace, indent: &str) -> String {
    let max = SETTINGS.read().max_frames;
    let text = stack.to_string();
    // (symbol, location) per frame, in order.
    let mut frames: Vec<(&str, Option<&str>)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(symbol) = frame_symbol(line) {
            frames.push((symbol, None));
        } else if let (Some(at), Some(last)) = (line.strip_prefix("at "), frames.last_mut()) {
            last.1.get_or_insert(at);
        }
    }
    let mut out = String::new();
    let user = frames
        .iter()
        .take_while(|(symbol, _)| !BOTTOM.iter().any(|b| symbol.contains(b)))
        .filter(|(symbol, _)| !NOISE.iter().any(|n| symbol.starts_with(n)));
    for (shown, (symbol, at)) in user.enumerate() {
        if shown == max {
            let _ = writeln!(out, "{indent}...");
            break;
        }
        match at {
            Some(at) => {
                let _ = writeln!(out, "{indent}{symbol} ({at})");
            }
            None => {
                let _ = writeln!(out, "{indent}{symbol}");
            }
        }
    }
    if out.is_empty() {
        let _ = writeln!(
            out,
            "{indent}(no user frames: build with debug info to see them)"
        );
    }
    out
}

/// `symbol` from a `N: symbol` frame line.
fn frame_symbol(line: &str) -> Option<&str> {
    let (index, rest) = line.split_once(": ")?;
    index
        .chars()
        .all(|c| c.is_ascii_digit())
        .then_some(rest.trim())
}

/// The calling thread's stack, rendered.
pub(crate) fn render_now(indent: &str) -> String {
    render(&Backtrace::force_capture(), indent)
}
