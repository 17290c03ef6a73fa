//! Iterators of a [`ReadMostlyMap`](super::ReadMostlyMap).

use std::fmt;

use super::Ref;
use crate::raw::read_mostly::RawIter;

/// An iterator over the entries of a [`ReadMostlyMap`](super::ReadMostlyMap), yielding
/// [`Ref`]s. Keeps the thread pinned while it lives; see
/// [`iter`](super::ReadMostlyMap::iter) for what it sees under concurrent writes.
///
/// # Examples
/// ```
/// let map: mapguard::ReadMostlyMap<u8, u8> = (0..4).map(|i| (i, i)).collect();
/// let mut keys: Vec<u8> = map.iter().map(|entry| *entry.key()).collect();
/// keys.sort();
/// assert_eq!(keys, [0, 1, 2, 3]);
/// ```
pub struct Iter<'a, K, V> {
    raw: RawIter<'a, K, V>,
}

impl<'a, K, V> Iter<'a, K, V> {
    pub(super) fn new(raw: RawIter<'a, K, V>) -> Self {
        Self { raw }
    }
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = Ref<'a, K, V>;

    fn next(&mut self) -> Option<Ref<'a, K, V>> {
        self.raw.next().map(Ref::new)
    }
}

impl<K, V> fmt::Debug for Iter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}
