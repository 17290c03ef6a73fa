//! The event stream for tracing tools: each acquire, contention and release, delivered to one
//! optional subscriber. When none is installed the lock paths never look here beyond the
//! flag word they read anyway.

use std::panic::Location;
use std::sync::Arc;
use std::thread::ThreadId;

use parking_lot::RwLock;

/// What happened to a lock.
///
/// # Examples
///
/// ```
/// assert_ne!(lockdep::EventKind::Acquired, lockdep::EventKind::Released);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The lock was acquired.
    Acquired,
    /// The lock was busy; the thread is about to wait for it. `Acquired` follows, unless a
    /// timed try gives up.
    Contended,
    /// The lock was released.
    Released,
}

/// Which side of a lock an acquisition took.
///
/// # Examples
///
/// ```
/// assert_eq!(format!("{:?}", lockdep::Side::Read), "Read");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Side {
    /// Shared (`read`).
    Read,
    /// Exclusive (`lock`, `write`).
    Write,
}

/// One lock event, as handed to the subscriber.
///
/// # Examples
///
/// ```
/// fn show(event: &lockdep::Event<'_>) -> String {
///     format!("{:?} {} {:?} at {}", event.kind, event.class, event.side, event.site)
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// What happened.
    pub kind: EventKind,
    /// The lock's class name.
    pub class: &'a str,
    /// Read or write side.
    pub side: Side,
    /// The thread it happened on.
    pub thread: ThreadId,
    /// The acquisition's call site (for a release: the site that acquired).
    pub site: &'static Location<'static>,
}

/// The subscriber function type.
type Subscriber = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

static SUBSCRIBER: RwLock<Option<Subscriber>> = RwLock::new(None);

/// Installs (or with `None` removes) the function that receives every lock event.
///
/// It runs on the thread doing the locking, right after the acquisition or release; it may
/// take lockdep locks itself. Without the `check` feature no events are produced.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// static SEEN: AtomicUsize = AtomicUsize::new(0);
/// lockdep::set_subscriber(Some(Arc::new(|_event: &lockdep::Event<'_>| {
///     SEEN.fetch_add(1, Ordering::Relaxed);
/// })));
/// lockdep::set_subscriber(None);
/// ```
pub fn set_subscriber(subscriber: Option<Subscriber>) {
    let on = subscriber.is_some();
    *SUBSCRIBER.write() = subscriber;
    crate::config::set_flag(crate::config::SUBSCRIBER, on);
}

/// Hands `event` to the subscriber, if any.
#[cfg(feature = "check")]
pub(crate) fn emit(event: &Event<'_>) {
    let subscriber = SUBSCRIBER.read().clone();
    if let Some(subscriber) = subscriber {
        subscriber(event);
    }
}
