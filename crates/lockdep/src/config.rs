//! Run-time configuration: the global switch, the reaction to a report, the real-deadlock
//! timeout and what reports contain. Owns the global flag word read on every acquisition;
//! nothing else in the crate writes it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use crate::Report;

/// Checking is on (the run-time switch).
pub(crate) const ENABLED: u8 = 1;
/// An event subscriber is installed.
pub(crate) const SUBSCRIBER: u8 = 2;
/// Hold times are measured.
pub(crate) const HOLD_TIMES: u8 = 4;

/// The one word the fast path reads: written only by configuration calls, so the cache line
/// stays shared and clean across cores.
pub(crate) static FLAGS: AtomicU8 = AtomicU8::new(ENABLED);

/// The default [`Config::deadlock_timeout`]; also where a timed try becomes a long one
/// while real-deadlock detection is off.
pub(crate) const DEFAULT_DEADLOCK_TIMEOUT: Duration = Duration::from_secs(1);

/// The settings read on slow paths only.
#[cfg_attr(not(feature = "check"), allow(dead_code))]
pub(crate) struct Settings {
    pub(crate) reaction: Reaction,
    pub(crate) deadlock_timeout: Option<Duration>,
    pub(crate) capture_stacks: bool,
    pub(crate) max_frames: usize,
}

pub(crate) static SETTINGS: RwLock<Settings> = RwLock::new(Settings {
    reaction: Reaction::Panic,
    deadlock_timeout: Some(DEFAULT_DEADLOCK_TIMEOUT),
    capture_stacks: true,
    max_frames: 12,
});

/// What happens when lockdep finds a problem.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// let log_it = lockdep::Reaction::Callback(Arc::new(|report: &lockdep::Report| {
///     eprintln!("lock problem: {}", report.summary());
/// }));
/// lockdep::set_thread_reaction(Some(log_it));
/// lockdep::set_thread_reaction(None);
/// ```
#[derive(Clone, Default)]
pub enum Reaction {
    /// Panic with the report as the message, before the offending acquisition blocks. At
    /// thread exit, where a panic would abort, the report is printed instead.
    #[default]
    Panic,
    /// Print the report to standard error and carry on.
    Print,
    /// Hand the report to a function and carry on.
    Callback(Arc<dyn Fn(&Report) + Send + Sync>),
    /// Print the report and abort the process.
    Abort,
}

impl fmt::Debug for Reaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reaction::Panic => "Panic",
            Reaction::Print => "Print",
            Reaction::Callback(_) => "Callback(..)",
            Reaction::Abort => "Abort",
        })
    }
}

/// Settings for [`configure`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let config = lockdep::Config {
///     deadlock_timeout: Some(Duration::from_millis(500)),
///     ..lockdep::Config::default()
/// };
/// lockdep::configure(config).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// The reaction of threads that have no [`set_thread_reaction`] of their own.
    pub reaction: Reaction,
    /// How long a blocked acquisition waits before it looks for a real deadlock (and again
    /// after each further period). `None` turns real-deadlock detection off. A timed try
    /// with a timeout at least this long (at least the default, 1 s, with `None`) is checked
    /// like a blocking acquisition: see [Timed tries](crate#timed-tries).
    pub deadlock_timeout: Option<Duration>,
    /// Capture a stack for each new lock-order edge (once per edge, never on the fast path),
    /// regardless of `RUST_BACKTRACE`.
    pub capture_stacks: bool,
    /// Measure hold times for the statistics. Costs two clock reads per acquisition.
    pub hold_times: bool,
    /// The most stack frames a report prints per stack.
    pub max_frames: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            reaction: Reaction::Panic,
            deadlock_timeout: Some(DEFAULT_DEADLOCK_TIMEOUT),
            capture_stacks: true,
            hold_times: false,
            max_frames: 12,
        }
    }
}

/// Why [`configure`] refused a [`Config`].
///
/// # Examples
///
/// ```
/// let bad = lockdep::Config { deadlock_timeout: Some(std::time::Duration::ZERO), ..Default::default() };
/// assert_eq!(lockdep::configure(bad), Err(lockdep::ConfigError::ZeroDeadlockTimeout));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A zero timeout would make every contended acquisition scan for deadlocks.
    #[error("deadlock_timeout is zero; use a positive duration, or None to turn detection off")]
    ZeroDeadlockTimeout,
    /// Too many frames per stack.
    #[error("max_frames is {got}; it must be at most {max}")]
    TooManyFrames {
        /// The value given.
        got: usize,
        /// The largest value accepted.
        max: usize,
    },
}

/// The most frames a report prints per stack.
const MAX_FRAMES: usize = 256;

/// Applies `config` to the whole process.
///
/// # Errors
///
/// [`ConfigError`] if a field is out of range; nothing is changed then.
///
/// # Examples
///
/// ```
/// lockdep::configure(lockdep::Config { hold_times: true, ..Default::default() }).unwrap();
/// ```
pub fn configure(config: Config) -> Result<(), ConfigError> {
    if config.deadlock_timeout == Some(Duration::ZERO) {
        return Err(ConfigError::ZeroDeadlockTimeout);
    }
    if config.max_frames > MAX_FRAMES {
        return Err(ConfigError::TooManyFrames {
            got: config.max_frames,
            max: MAX_FRAMES,
        });
    }
    {
        let mut settings = SETTINGS.write();
        settings.reaction = config.reaction;
        settings.deadlock_timeout = config.deadlock_timeout;
        settings.capture_stacks = config.capture_stacks;
        settings.max_frames = config.max_frames;
    }
    set_flag(HOLD_TIMES, config.hold_times);
    Ok(())
}

pub(crate) fn set_flag(flag: u8, on: bool) {
    if on {
        FLAGS.fetch_or(flag, Ordering::Relaxed);
    } else {
        FLAGS.fetch_and(!flag, Ordering::Relaxed);
    }
}

/// Turns checking on or off for the whole process at run time (on by default).
///
/// With checking off an acquisition costs one relaxed load more than a plain lock; locks
/// taken while off are not tracked, even after checking is turned back on. Without the
/// `check` feature this does nothing.
///
/// # Examples
///
/// ```
/// lockdep::set_enabled(false);
/// assert!(!lockdep::is_enabled());
/// lockdep::set_enabled(true);
/// ```
pub fn set_enabled(on: bool) {
    set_flag(ENABLED, on);
}

/// Whether checking is on (see [`set_enabled`]).
///
/// # Examples
///
/// ```
/// lockdep::set_enabled(true);
/// assert!(lockdep::is_enabled());
/// ```
pub fn is_enabled() -> bool {
    FLAGS.load(Ordering::Relaxed) & ENABLED != 0
}

/// Sets the reaction for reports raised on the calling thread (`None`: use the global one).
///
/// Reports are raised on the thread that takes the offending lock, that finds the deadlock,
/// or that exits holding locks. Without the `check` feature this does nothing.
///
/// # Examples
///
/// ```
/// lockdep::set_thread_reaction(Some(lockdep::Reaction::Print));
/// lockdep::set_thread_reaction(None);
/// ```
pub fn set_thread_reaction(reaction: Option<Reaction>) {
    #[cfg(feature = "check")]
    crate::thread::set_reaction(reaction);
    #[cfg(not(feature = "check"))]
    drop(reaction);
}
