//! Lock classes: the identity the order checker works with. A class is a creation site or a
//! name; `lock_nested` subclasses make up to `MAX_SUBCLASSES` nodes per class. The registry
//! is written once per class, and each lock caches its class id after first use.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::RwLock;

use crate::MAX_SUBCLASSES;

/// A node of the order graph: `class_id * MAX_SUBCLASSES + subclass`.
pub(crate) type Node = u32;

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
    /// Index `id - 1`.
    infos: Vec<ClassInfo>,
}

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(|| {
    RwLock::new(Registry {
        ids: HashMap::new(),
        infos: Vec::new(),
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
    let id = u32::try_from(registry.infos.len()).expect("fewer than 2^29 lock classes");
    assert!(id < u32::MAX / MAX_SUBCLASSES, "too many lock classes");
    registry.ids.insert(key, id);
    id
}

/// The printable name of `node`: its class label, with `/subclass` when nested.
pub(crate) fn describe(node: Node) -> String {
    let (id, sub) = (node / MAX_SUBCLASSES, node % MAX_SUBCLASSES);
    let registry = REGISTRY.read();
    let label = registry
        .infos
        .get(id.wrapping_sub(1) as usize)
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
        .infos
        .get(id.wrapping_sub(1) as usize)
        .map_or(("<unknown class>".to_owned(), "?"), |info| {
            (info.label.clone(), info.kind)
        })
}
