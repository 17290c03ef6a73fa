//! Traced locks that turn lock misuse into clear reports before anything hangs.
//!
//! `lockdep` offers [`Mutex`], [`RwLock`], [`RecursiveRwLock`] and [`Condvar`] with the
//! parking_lot API (no poisoning, `!Send` guards). Without the `check` feature they *are*
//! parking_lot's locks behind a `#[repr(transparent)]` wrapper: same size, same code after
//! inlining. With `check` every acquisition is traced and the crate reports:
//!
//! - **lock-order inversions** of any length, across threads and across time, before they
//!   deadlock (lock *classes*, not instances: two instances created at the same site share a
//!   class, so an inversion between two instances of one struct is found);
//! - **self-deadlocks**: re-locking a lock this thread holds, `write` while holding `read`;
//! - **read re-entry** of a writer-preferring [`RwLock`] (hangs once a writer queues), while
//!   recursive reads of a [`RecursiveRwLock`] stay legal;
//! - **real deadlocks**: threads blocked on each other, found by the waiters themselves after
//!   [`Config::deadlock_timeout`];
//! - locks still held when a thread exits, and failed [`Mutex::assert_held`] /
//!   [`Mutex::assert_not_held`] checks.
//!
//! It also keeps lock_stat-style figures per class ([`stats`]) and can feed every acquire and
//! release to a subscriber ([`set_subscriber`]).
//!
//! Locks of other crates get the same order checks through [`foreign`]: a lock reports each
//! acquisition before it may wait, and its release.
//!
//! # Usage
//!
//! ```
//! use lockdep::Mutex;
//!
//! let accounts = Mutex::with_class("bank.accounts", vec![100, 50]);
//! accounts.lock()[0] -= 10;
//! assert_eq!(accounts.lock()[0], 90);
//! ```
//!
//! Enable checking in tests and debug builds:
//!
//! ```toml
//! [dev-dependencies]
//! lockdep = { version = "0.1", features = ["check"] }
//! ```
//!
//! # Classes
//!
//! A lock's class is the source location of its `new` call, or the name given to
//! `with_class`. Order is learned per class: once class `A` was held while class `B` was taken,
//! taking `A` while holding `B` is an inversion even for other instances. Locks of one class
//! nested on purpose (parent → child) say so with `lock_nested(subclass)`; each subclass
//! (`0..MAX_SUBCLASSES`) is ordered like a class of its own.
//!
//! # Timed tries
//!
//! A timed try (`try_lock_for`, `try_read_for`, `try_write_for`) with a timeout of at least
//! [`Config::deadlock_timeout`] (1 s by default, and 1 s while real-deadlock detection is
//! off) may wait as long as a hang, so it is checked like `lock`, `read` or `write`:
//! re-taking a lock this thread holds, or an inversion, is reported before it waits, its
//! order is learned, and a wait that is part of a real deadlock is found. So
//! `try_lock_for(Duration::MAX)` on a held lock is reported, not a silent hang. If it gives
//! up, it leaves nothing registered. A shorter timeout is treated like `try_lock`: it cannot
//! hang, so it is not checked (on a lock this thread holds it just fails after the timeout),
//! and it stays the way to take locks against the order on purpose (try, back off, retry).
//! Either way, locks taken while its guard lives are ordered after it.
//!
//! # What it costs
//!
//! With `check` on, an acquisition with no other lock held costs one relaxed load of the
//! global switch, one thread-local access and a push; a nested acquisition adds one probe of a
//! per-thread cache of validated held-lock chains. The global order graph is locked only the
//! first time a thread sees a chain, so threads locking their own locks in a known order do
//! not touch shared memory. Stacks are captured only when a new order edge is recorded and
//! symbolized only when a report is printed. [`set_enabled`]`(false)` turns checking off at
//! run time; the fast path then costs one relaxed load.
//!
//! # Reactions
//!
//! Every finding is a [`Report`]. What happens next is [`Reaction`]: panic (the default),
//! print and go on, call a callback, or abort. Each distinct problem is reported once.
#![deny(unsafe_code)]

mod config;
mod event;
pub mod foreign;
pub mod plain;
mod report;
mod stats;

#[cfg(feature = "check")]
mod checked;
#[cfg(feature = "check")]
mod class;
#[cfg(feature = "check")]
mod graph;
#[cfg(feature = "check")]
mod raw;
#[cfg(feature = "check")]
mod stack;
#[cfg(feature = "check")]
mod thread;
#[cfg(feature = "check")]
mod watchdog;

pub use config::{
    Config, ConfigError, Reaction, configure, is_enabled, set_enabled, set_thread_reaction,
};
pub use event::{Event, EventKind, Side, set_subscriber};
pub use report::{Report, ReportKind};
pub use stats::{ClassStats, SideStats, SiteCount, Stats, TimeStats, stats};

#[cfg(feature = "check")]
pub use checked::{
    Condvar, GenericRwLock, GenericRwLockReadGuard, GenericRwLockWriteGuard, Mutex, MutexGuard,
    RecursiveRwLock, RecursiveRwLockReadGuard, RecursiveRwLockWriteGuard, RwLock, RwLockReadGuard,
    RwLockWriteGuard,
};
#[cfg(not(feature = "check"))]
pub use plain::{
    Condvar, GenericRwLock, GenericRwLockReadGuard, GenericRwLockWriteGuard, Mutex, MutexGuard,
    RecursiveRwLock, RecursiveRwLockReadGuard, RecursiveRwLockWriteGuard, RwLock, RwLockReadGuard,
    RwLockWriteGuard,
};

pub use parking_lot::WaitTimeoutResult;

/// How many subclasses `lock_nested` accepts: `0..MAX_SUBCLASSES`.
///
/// # Examples
///
/// ```
/// let tree = lockdep::Mutex::new(0);
/// let _root = tree.lock_nested(lockdep::MAX_SUBCLASSES - 1);
/// ```
pub const MAX_SUBCLASSES: u32 = 8;

/// Whether this build checks locks (the `check` feature).
///
/// # Examples
///
/// ```
/// println!("lock checking compiled in: {}", lockdep::CHECKING_COMPILED);
/// ```
pub const CHECKING_COMPILED: bool = cfg!(feature = "check");

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
