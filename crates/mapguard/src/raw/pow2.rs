//! `Pow2Slice<T>`: a boxed slice whose length is a power of two, indexed without a bounds
//! check by masking the index to the length.
//!
//! A map picks its shard from hash bits masked to the shard count; the compiler cannot see
//! that the masked index is in bounds (the count is a run-time value), so a plain slice
//! would check it on every operation. Here the mask is established once, when the slice is
//! built, and every index is masked with it, which keeps each access in bounds.

use std::ops::{Deref, DerefMut, Index};

/// The shard, among `mask + 1` (a power of two, at most 2^16), of keys with this hash: bits
/// 48.. of `hash * ODD`, masked.
///
/// Both maps' tables probe with the low bits of the hash and tag slots with the top 7.
/// Multiplying by an odd constant is a bijection of `u64` whose low 48 bits depend only on the
/// low 48 bits of `hash`, so for a uniform hash the shard is independent of the bits a table
/// probes with, and (for up to 2^9 shards) of the tag bits. The bits it takes depend on every
/// hash bit below them, so a weak run of hash bits is mixed with all the bits under it. Taking
/// hash bits directly, as an earlier fold of bits 32..57 did, left up to 26 of 256 shards empty
/// for keys 0..4096 under about one in fifteen process seeds of foldhash's fast hasher; the
/// product used every shard under each of 300 seeds (`tests/sharded/builder.rs`). Three
/// instructions and the mask load.
#[inline(always)]
pub(crate) fn shard_of(hash: u64, mask: usize) -> usize {
    const ODD: u64 = 0x9e37_79b9_7f4a_7c15;
    debug_assert!(mask < 1 << 16);
    (hash.wrapping_mul(ODD) >> 48) as usize & mask
}

/// A non-empty boxed slice whose length is a power of two. Indexing masks the index to the
/// length (`index & (len - 1)`): an index already below the length is unchanged, a larger
/// one wraps around instead of panicking.
pub(crate) struct Pow2Slice<T> {
    items: Box<[T]>,
    /// `items.len() - 1`.
    mask: usize,
}

impl<T> Pow2Slice<T> {
    /// Wraps `items`.
    ///
    /// # Panics
    /// If the length of `items` is not a power of two (0 is not one).
    pub(crate) fn new(items: Box<[T]>) -> Self {
        assert!(
            items.len().is_power_of_two(),
            "a Pow2Slice needs a power-of-two length, not {}",
            items.len()
        );
        let mask = items.len() - 1;
        Self { items, mask }
    }

    /// `len() - 1`: the mask that indexing applies.
    #[inline(always)]
    pub(crate) fn mask(&self) -> usize {
        self.mask
    }

    /// The boxed slice itself.
    pub(crate) fn into_boxed(self) -> Box<[T]> {
        self.items
    }
}

impl<T> Index<usize> for Pow2Slice<T> {
    type Output = T;

    /// The item at `index & (len - 1)`.
    #[inline(always)]
    fn index(&self, index: usize) -> &T {
        // SAFETY: `mask` is `items.len() - 1` for a non-zero length (checked in `new`, and
        // `items` is never replaced), so `index & mask <= mask < items.len()`.
        unsafe { self.items.get_unchecked(index & self.mask) }
    }
}

impl<T> Deref for Pow2Slice<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<T> DerefMut for Pow2Slice<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.items
    }
}

impl<T> FromIterator<T> for Pow2Slice<T> {
    /// Collects the items; panics unless there is a power-of-two number of them.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self::new(iter.into_iter().collect())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Pow2Slice;

    #[test]
    fn indexes_mask_to_the_length() {
        let slice: Pow2Slice<u32> = (0..8).collect();
        assert_eq!(slice.mask(), 7);
        assert_eq!(slice[3], 3);
        assert_eq!(slice[8 + 5], 5);
        assert_eq!(slice.len(), 8);
        assert_eq!(slice.into_boxed().len(), 8);
    }

    #[test]
    #[should_panic(expected = "power-of-two length, not 6")]
    fn other_lengths_are_refused() {
        let _: Pow2Slice<u32> = (0..6).collect();
    }

    #[test]
    #[should_panic(expected = "power-of-two length, not 0")]
    fn empty_is_refused() {
        let _: Pow2Slice<u32> = std::iter::empty().collect();
    }
}
