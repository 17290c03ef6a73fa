//! Lock classes: the identity the order checker works with. A class is a creation site, a
//! name, or a unique class made for one foreign lock instance (`foreign::LockClass::unique`);
//! `lock_nested` subclasses make up to `MAX_SUBCLASSES` nodes per class. The registry is
//! written once per class, and each lock caches its class id after first use.
//!
//! Ids of site and name classes count up from 1; unique classes get ids from [`UNIQUE_BASE`]
//! up, never reused, so that a retired unique class (its lock was dropped) can never be
//! confused with a later one, and so that per-thread tables indexed by class id stay small.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::RwLock;

use crate::MAX_SUBCLASSES;

/// A node of the order graph: `class_id * MAX_SUBCLASSES + subclass`.
pub(crate) type Node = u32;

/// The first id of a unique class; site and name classes stay below it.
pub(crate) const UNIQUE_BASE: u32 = 1 << 20;
/// One past the largest class id a node can encode.
const ID_LIMIT: u32 = u32::MAX / MAX_SUBCLASSES;

/// What a class is keyed by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum ClassKey {
    /// The `new` call site.
    Site(&'static Location<'static>),
    /// A name given to `with_class`.
    Name(&'static str),
}

/// A lock's class key and, once resolved, its class id.
pub(crate) struct ClassCell {
    key: ClassKey,
    kind: &'static str,
    created: &'static Location<'static>,
    id: AtomicU32,
}

impl ClassCell {
    /// A cell for a lock of `kind` created at `created`.
    pub(crate) const fn new(
        key: ClassKey,
        kind: &'static str,
        created: &'static Location<'static>,
    ) -> Self {
        Self {
            key,
            kind,
            created,
            id: AtomicU32::new(0),
        }
    }

    /// The graph node for `subclass` of this lock's class.
    #[inline]
    pub(crate) fn node(&self, subclass: u32) -> Node {
        let id = match self.id.load(Ordering::Relaxed) {
            0 => self.resolve(),
            id => id,
        };
        id * MAX_SUBCLASSES + subclass
    }

    #[cold]
    #[inline(never)]
    fn resolve(&self) -> u32 {
        let id = intern(self.key, self.kind, self.created);
        self.id.store(id, Ordering::Relaxed);
        id
    }
}

/// What the registry knows about a class.
struct ClassInfo {
    label: String,
    kind: &'static str,
}

struct Registry {
    ids: HashMap<ClassKey, u32>,
    /// Site and name classes, index `id - 1`.
    infos: Vec<ClassInfo>,
    /// Unique classes by id (kept after retirement, so that statistics can still name them).
    unique: HashMap<u32, ClassInfo>,
    /// The id the next unique class gets.
    next_unique: u32,
}

impl Registry {
    fn info(&self, id: u32) -> Option<&ClassInfo> {
        if id >= UNIQUE_BASE {
            self.unique.get(&id)
        } else {
            self.infos.get(id.wrapping_sub(1) as usize)
        }
    }
}

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(|| {
    RwLock::new(Registry {
        ids: HashMap::new(),
        infos: Vec::new(),
        unique: HashMap::new(),
        next_unique: UNIQUE_BASE,
    })
});

fn intern(key: ClassKey, kind: &'static str, created: &'static Location<'static>) -> u32 {
    if let Some(&id) = REGISTRY.read().ids.get(&key) {
        return id;
    }
    let mut registry = REGISTRY.write();
    if let Some(&id) = registry.ids.get(&key) {
        return id;
    }
    let label = match key {
        ClassKey::Site(site) => format!("{kind}@{site}"),
        ClassKey::Name(name) => {
            let _ = created;
            name.to_owned()
        }
    };
    registry.infos.push(ClassInfo { label, kind });
    let id = u32::try_from(registry.infos.len()).unwrap_or(u32::MAX);
    assert!(
        id < UNIQUE_BASE,
        "lockdep: more than {UNIQUE_BASE} lock classes by site or name"
    );
    registry.ids.insert(key, id);
    id
}

/// Registers a class of its own, labelled `label`, and returns its id.
pub(crate) fn register_unique(label: String, kind: &'static str) -> u32 {
    let mut registry = REGISTRY.write();
    let id = registry.next_unique;
    assert!(
        id < ID_LIMIT,
        "lockdep: more than {} unique lock classes were made in this process",
        ID_LIMIT - UNIQUE_BASE
    );
    registry.next_unique += 1;
    registry.unique.insert(id, ClassInfo { label, kind });
    id
}

/// Forgets what the order graph learned about unique class `id`, whose lock is gone: no
/// future acquisition can take part in an order through it.
pub(crate) fn retire_unique(id: u32) {
    crate::graph::forget_class(id);
}

/// The printable name of `node`: its class label, with `/subclass` when nested.
pub(crate) fn describe(node: Node) -> String {
    let (id, sub) = (node / MAX_SUBCLASSES, node % MAX_SUBCLASSES);
    let registry = REGISTRY.read();
    let label = registry
        .info(id)
        .map_or("<unknown class>", |info| info.label.as_str());
    if sub == 0 {
        format!("`{label}`")
    } else {
        format!("`{label}`/{sub}")
    }
}

/// The class label and lock kind of a class id, for statistics and events.
pub(crate) fn class_label(id: u32) -> (String, &'static str) {
    let registry = REGISTRY.read();
    registry
        .info(id)
        .map_or(("<unknown class>".to_owned(), "?"), |info| {
            (info.label.clone(), info.kind)
        })
}
