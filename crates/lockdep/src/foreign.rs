//! Checking locks that lockdep does not own ("foreign" locks): a lock type of another crate
//! reports its acquisitions and releases here and gets the same order checks as lockdep's
//! own locks.
//!
//! The lock keeps doing its own locking; lockdep only keeps book. The protocol, per
//! acquisition:
//!
//! 1. [`LockClass::acquire`] *before* anything that may wait. It checks the acquisition
//!    against the locks this thread holds, so an inversion or a self-deadlock is reported
//!    while nothing has blocked yet, and registers it as held. It returns a [`Token`].
//! 2. [`Token::acquired`] once the lock is taken (hold-time clock, `Acquired` event).
//! 3. Dropping the token (or [`Token::release`]) when the lock is released.
//!
//! A lock's **class** is a [`LockClass`]: shared by name ([`LockClass::named`], the same
//! class as `lockdep::Mutex::with_class` of that name), or a class of its own
//! ([`LockClass::unique`]) for locks whose instances must be told apart, such as the shards
//! of one map. A unique class gets an id that is never reused, so a lock dropped and a new
//! one created at the same address are different classes; dropping a unique `LockClass`
//! forgets the order edges learned about it.
//!
//! What lockdep cannot see of a foreign lock: its waits. Foreign locks are order-checked,
//! counted (acquisitions, hold times) and reported to the event subscriber, but they have no
//! contention figures and take no part in real-deadlock detection (the watchdog).
//!
//! Without the `check` feature every type here is zero-sized and every call does nothing.
//!
//! # Examples
//!
//! A spin lock of some other crate, made visible to lockdep:
//!
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use lockdep::foreign::{Access, LockClass, Token};
//!
//! struct SpinLock {
//!     locked: AtomicBool,
//!     class: LockClass,
//! }
//!
//! impl SpinLock {
//!     fn new(name: &str) -> Self {
//!         Self { locked: AtomicBool::new(false), class: LockClass::unique(name) }
//!     }
//!
//!     #[track_caller]
//!     fn lock(&self) -> Token {
//!         // Check first: a report must come before the spin below can hang.
//!         let token = self.class.acquire(self, Access::Write);
//!         while self.locked.swap(true, Ordering::Acquire) {
//!             std::hint::spin_loop();
//!         }
//!         token.acquired();
//!         token
//!     }
//!
//!     fn unlock(&self, token: Token) {
//!         token.release();
//!         self.locked.store(false, Ordering::Release);
//!     }
//! }
//!
//! let lock = SpinLock::new("example.spin");
//! let token = lock.lock();
//! lock.unlock(token);
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::panic::Location;

#[cfg(feature = "check")]
use crate::class::{ClassCell, ClassKey, Node};
#[cfg(feature = "check")]
use crate::thread::{LockId, Mode};

/// How a foreign lock is being acquired (or, for [`Token::downgrade`], will be held).
///
/// # Examples
///
/// ```
/// use lockdep::foreign::Access;
/// assert_ne!(Access::Read, Access::RecursiveRead);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Exclusive: waits for every other holder.
    Write,
    /// Shared, on a lock where a new reader waits while a writer holds *or waits*
    /// (writer-preferring). A second `Read` of a lock this thread already reads is reported
    /// (a writer queued in between hangs both), and a cycle of reads counts as a deadlock.
    /// A lock whose own re-reads never wait should not report them at all (only the first
    /// read of a span), as mapguard's shard locks do.
    Read,
    /// Shared, on a lock where only a held write lock blocks a reader (reader-preferring):
    /// re-reads are legal, and a cycle through a lock entered this way and held shared is
    /// not a deadlock (lockdep's recursive readers).
    RecursiveRead,
}

#[cfg(feature = "check")]
impl Access {
    fn mode(self) -> Mode {
        match self {
            Access::Write => Mode::Write,
            Access::Read => Mode::Read,
            Access::RecursiveRead => Mode::RecursiveRead,
        }
    }
}

/// The statistics and report label of foreign locks' kind.
#[cfg(feature = "check")]
const KIND: &str = "foreign";

/// The lock class of a foreign lock: by name, or one of its own. See the [module
/// docs](self).
///
/// # Examples
///
/// ```
/// use lockdep::foreign::LockClass;
///
/// static TABLE: LockClass = LockClass::named("app.table");
/// let shard = LockClass::unique(format_args!("app.cache#{}.shard[{}]", 1, 0));
/// # let _ = (&TABLE, shard);
/// ```
pub struct LockClass {
    #[cfg(feature = "check")]
    id: ClassId,
}

#[cfg(feature = "check")]
enum ClassId {
    /// Shared with every lock of that name, resolved on first use.
    Named(ClassCell),
    /// A class of its own.
    Unique(u32),
}

impl LockClass {
    /// The class called `name`, shared by every lock given that name (lockdep's own locks
    /// made with `with_class(name, ..)` included). Usable in a `static`.
    ///
    /// # Examples
    ///
    /// ```
    /// static REGISTRY: lockdep::foreign::LockClass = lockdep::foreign::LockClass::named("registry");
    /// # let _ = &REGISTRY;
    /// ```
    #[track_caller]
    #[inline]
    pub const fn named(name: &'static str) -> Self {
        #[cfg(not(feature = "check"))]
        let _ = name;
        Self {
            #[cfg(feature = "check")]
            id: ClassId::Named(ClassCell::new(
                ClassKey::Name(name),
                KIND,
                Location::caller(),
            )),
        }
    }

    /// A class of its own, printed as `label` in reports and statistics. Each call makes a
    /// new class, even with the same label; its id is never reused. Dropping it forgets
    /// the lock orders learned about it (its lock is gone, so it can no longer take part
    /// in a deadlock). Without the `check` feature `label` is not even formatted.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = lockdep::foreign::LockClass::unique("pool.slot[0]");
    /// let b = lockdep::foreign::LockClass::unique("pool.slot[0]");
    /// # let _ = (a, b);
    /// ```
    #[inline]
    pub fn unique(label: impl fmt::Display) -> Self {
        #[cfg(not(feature = "check"))]
        {
            let _ = label;
            Self {}
        }
        #[cfg(feature = "check")]
        Self {
            id: ClassId::Unique(crate::class::register_unique(label.to_string(), KIND)),
        }
    }

    #[cfg(feature = "check")]
    #[inline]
    fn node(&self) -> Node {
        match &self.id {
            ClassId::Named(cell) => cell.node(0),
            ClassId::Unique(id) => id * crate::MAX_SUBCLASSES,
        }
    }

    /// The class's name as reports print it (with backquotes); empty without the `check`
    /// feature.
    ///
    /// # Examples
    ///
    /// ```
    /// let class = lockdep::foreign::LockClass::unique("jobs.queue");
    /// if lockdep::CHECKING_COMPILED {
    ///     assert_eq!(class.label(), "`jobs.queue`");
    /// }
    /// ```
    pub fn label(&self) -> String {
        #[cfg(feature = "check")]
        {
            crate::class::describe(self.node())
        }
        #[cfg(not(feature = "check"))]
        String::new()
    }

    /// Checks and registers an acquisition of `lock` (an instance of this class) at the
    /// caller's site. Call it before the lock may wait: a lock-order inversion or a
    /// self-deadlock is reported here, before anything blocks. `lock` identifies the
    /// instance while it is held (by address), so pass the lock itself. A token that is
    /// leaked keeps that address registered as held, even for a new lock placed there.
    ///
    /// # Examples
    ///
    /// ```
    /// use lockdep::foreign::{Access, LockClass};
    /// let class = LockClass::unique("doc.acquire");
    /// let lock = std::sync::Mutex::new(());
    /// let token = class.acquire(&lock, Access::Write);
    /// let guard = lock.lock().unwrap();
    /// token.acquired();
    /// drop(token);
    /// drop(guard);
    /// ```
    #[track_caller]
    #[inline]
    pub fn acquire<L: ?Sized>(&self, lock: &L, access: Access) -> Token {
        self.acquire_at(lock, access, Location::caller())
    }

    /// [`acquire`](Self::acquire) at an explicit `site`, for locks whose public entry points
    /// already captured their caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use lockdep::foreign::{Access, LockClass};
    /// let class = LockClass::unique("doc.acquire_at");
    /// let lock = 0u8;
    /// let token = class.acquire_at(&lock, Access::Read, std::panic::Location::caller());
    /// token.acquired();
    /// ```
    #[inline]
    pub fn acquire_at<L: ?Sized>(
        &self,
        lock: &L,
        access: Access,
        site: &'static Location<'static>,
    ) -> Token {
        #[cfg(not(feature = "check"))]
        {
            let _ = (lock, access, site);
            Token::default()
        }
        #[cfg(feature = "check")]
        {
            use std::sync::atomic::Ordering;
            if crate::config::FLAGS.load(Ordering::Relaxed) & crate::config::ENABLED == 0 {
                return Token::default();
            }
            let instance = LockId::Address(std::ptr::from_ref(lock).cast::<()>().addr());
            let node = self.node();
            let mode = access.mode();
            let tracked = crate::thread::enter(instance, node, mode, site);
            Token {
                held: tracked.then_some(HeldLock {
                    lock: instance,
                    node,
                    mode,
                    site,
                }),
                _not_send: PhantomData,
            }
        }
    }
}

impl Drop for LockClass {
    fn drop(&mut self) {
        #[cfg(feature = "check")]
        if let ClassId::Unique(id) = self.id {
            crate::class::retire_unique(id);
        }
    }
}

impl fmt::Debug for LockClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LockClass").field(&self.label()).finish()
    }
}

/// One registered acquisition of a foreign lock; dropping it registers the release. `!Send`:
/// the registration belongs to the thread that acquired. `Token::default()` is a token that
/// registers nothing (what [`LockClass::acquire`] returns while checking is off).
///
/// # Examples
///
/// ```
/// use lockdep::foreign::{Access, LockClass};
/// let class = LockClass::unique("doc.token");
/// let lock = ();
/// let token = class.acquire(&lock, Access::Write);
/// token.acquired();
/// token.release();
/// ```
#[must_use = "dropping the token registers the release at once"]
#[derive(Default)]
pub struct Token {
    #[cfg(feature = "check")]
    held: Option<HeldLock>,
    _not_send: PhantomData<*const ()>,
}

#[cfg(feature = "check")]
#[derive(Clone, Copy)]
struct HeldLock {
    lock: LockId,
    node: Node,
    mode: Mode,
    site: &'static Location<'static>,
}

impl Token {
    /// Registers that the lock is now taken: starts its hold-time clock and sends the
    /// `Acquired` event, when those are on.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = lockdep::foreign::Token::default();
    /// token.acquired();
    /// ```
    #[inline]
    pub fn acquired(&self) {
        #[cfg(feature = "check")]
        if let Some(h) = &self.held {
            use crate::config::{FLAGS, HOLD_TIMES, SUBSCRIBER};
            use std::sync::atomic::Ordering;
            if FLAGS.load(Ordering::Relaxed) & (SUBSCRIBER | HOLD_TIMES) != 0 {
                crate::checked::after_acquire(h.lock, h.node, h.mode, h.site, true);
            }
        }
    }

    /// Registers that a write lock became a read lock of the given kind without being
    /// released (it keeps its place among the held locks; nothing is checked, since a
    /// downgrade never waits).
    ///
    /// # Examples
    ///
    /// ```
    /// use lockdep::foreign::{Access, LockClass};
    /// let class = LockClass::unique("doc.downgrade");
    /// let lock = ();
    /// let mut token = class.acquire(&lock, Access::Write);
    /// token.downgrade(Access::Read);
    /// ```
    #[inline]
    pub fn downgrade(&mut self, to: Access) {
        #[cfg(not(feature = "check"))]
        let _ = to;
        #[cfg(feature = "check")]
        if let Some(h) = &mut self.held {
            h.mode = to.mode();
            crate::thread::downgrade(h.lock, h.mode);
        }
    }

    /// Registers the release (the same as dropping the token).
    ///
    /// # Examples
    ///
    /// ```
    /// lockdep::foreign::Token::default().release();
    /// ```
    #[inline]
    pub fn release(self) {
        drop(self);
    }

    /// Whether this token registered anything (false while checking is off, without the
    /// `check` feature, or on a thread that is exiting).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!lockdep::foreign::Token::default().is_tracked());
    /// ```
    #[inline]
    pub fn is_tracked(&self) -> bool {
        #[cfg(feature = "check")]
        {
            self.held.is_some()
        }
        #[cfg(not(feature = "check"))]
        false
    }
}

impl Drop for Token {
    #[inline]
    fn drop(&mut self) {
        #[cfg(feature = "check")]
        if let Some(h) = self.held.take() {
            crate::checked::release_tracked(h.lock);
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("tracked", &self.is_tracked())
            .finish()
    }
}
