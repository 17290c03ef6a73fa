//! The report type every detector produces, and how a report reaches the user (the
//! configured [`Reaction`](crate::Reaction)). Detectors build the text; this module only
//! carries and delivers it, and remembers which problems were already reported.

use std::fmt;

/// What kind of problem a [`Report`] describes.
///
/// # Examples
///
/// ```
/// let kind = lockdep::ReportKind::LockOrderInversion;
/// assert_eq!(kind.to_string(), "possible lock-order inversion");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReportKind {
    /// A new acquisition closes a cycle in the learned lock order.
    LockOrderInversion,
    /// The thread acquires a lock it already holds (or `write` while holding `read`).
    SelfDeadlock,
    /// A second `read` of a writer-preferring lock this thread already reads.
    RecursiveRead,
    /// Two locks of one class nested without `lock_nested`.
    SameClassNesting,
    /// Threads are blocked on each other right now.
    Deadlock,
    /// A thread ended while holding locks.
    HeldAtThreadExit,
    /// `assert_held` failed.
    NotHeld,
    /// `assert_not_held` failed.
    UnexpectedlyHeld,
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReportKind::LockOrderInversion => "possible lock-order inversion",
            ReportKind::SelfDeadlock => "self-deadlock",
            ReportKind::RecursiveRead => "recursive read of a writer-preferring lock",
            ReportKind::SameClassNesting => "possible recursive locking of one class",
            ReportKind::Deadlock => "deadlock",
            ReportKind::HeldAtThreadExit => "lock held at thread exit",
            ReportKind::NotHeld => "lock not held",
            ReportKind::UnexpectedlyHeld => "lock unexpectedly held",
        })
    }
}

/// A problem found by lockdep: its kind, a one-sentence summary, the lock classes and
/// source sites involved, and the full text (`Display`).
///
/// # Examples
///
/// ```
/// fn on_report(report: &lockdep::Report) {
///     eprintln!("{:?}: {} (classes {:?})", report.kind(), report.summary(), report.classes());
///     eprintln!("{report}");
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Report {
    kind: ReportKind,
    summary: String,
    classes: Vec<String>,
    sites: Vec<String>,
    text: String,
}

impl Report {
    #[cfg(feature = "check")]
    pub(crate) fn new(
        kind: ReportKind,
        summary: String,
        classes: Vec<String>,
        sites: Vec<String>,
        body: String,
    ) -> Self {
        let text = format!(
            "\n==================== lockdep: {kind} ====================\n{summary}\n\n{body}\
             ===========================================================\n"
        );
        Self {
            kind,
            summary,
            classes,
            sites,
            text,
        }
    }

    /// The kind of problem.
    ///
    /// # Examples
    ///
    /// ```
    /// fn is_inversion(r: &lockdep::Report) -> bool {
    ///     r.kind() == lockdep::ReportKind::LockOrderInversion
    /// }
    /// ```
    pub fn kind(&self) -> ReportKind {
        self.kind
    }

    /// One sentence: what would hang and why.
    ///
    /// # Examples
    ///
    /// ```
    /// fn headline(r: &lockdep::Report) -> &str {
    ///     r.summary()
    /// }
    /// ```
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The lock classes involved, as printed.
    ///
    /// # Examples
    ///
    /// ```
    /// fn mentions(r: &lockdep::Report, class: &str) -> bool {
    ///     r.classes().iter().any(|c| c.contains(class))
    /// }
    /// ```
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The source sites involved (`file:line:column`).
    ///
    /// # Examples
    ///
    /// ```
    /// fn first_site(r: &lockdep::Report) -> Option<&str> {
    ///     r.sites().first().map(String::as_str)
    /// }
    /// ```
    pub fn sites(&self) -> &[String] {
        &self.sites
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Report {}

#[cfg(feature = "check")]
pub(crate) use delivery::{first_time, raise, signature};

#[cfg(feature = "check")]
mod delivery {
    use std::collections::HashSet;
    use std::hash::{BuildHasher, Hash};
    use std::sync::LazyLock;

    use parking_lot::Mutex;

    use super::Report;
    use crate::Reaction;

    /// Signatures of problems already reported, so each is reported once.
    static REPORTED: LazyLock<Mutex<HashSet<u64>>> = LazyLock::new(Default::default);

    /// A stable 64-bit signature of a problem.
    pub(crate) fn signature(parts: impl Hash) -> u64 {
        // A fixed-key hasher: signatures must agree across threads.
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(parts)
    }

    /// Records `sig`; true the first time only.
    pub(crate) fn first_time(sig: u64) -> bool {
        REPORTED.lock().insert(sig)
    }

    /// Delivers `report` according to `reaction`. `at_exit`: panicking is not allowed.
    pub(crate) fn raise(report: Report, reaction: Reaction, at_exit: bool) {
        match reaction {
            Reaction::Panic if !at_exit => panic!("{report}"),
            Reaction::Panic | Reaction::Print => eprintln!("{report}"),
            Reaction::Callback(callback) => callback(&report),
            Reaction::Abort => {
                eprintln!("{report}");
                std::process::abort();
            }
        }
    }
}
