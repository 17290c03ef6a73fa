//! Degraded hashers shared by the test binaries: one that gives every key the same hash and one
//! that keeps only four bits of a real hash. Included with `#[path]` where needed.

#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{BuildHasher, Hasher};

/// Every key hashes to the same value: one shard, one probe chain, one tag.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ConstantHash;

/// The hasher of [`ConstantHash`].
pub(crate) struct ConstantHasher;

impl BuildHasher for ConstantHash {
    type Hasher = ConstantHasher;
    fn build_hasher(&self) -> ConstantHasher {
        ConstantHasher
    }
}

impl Hasher for ConstantHasher {
    fn finish(&self) -> u64 {
        0x9e37_79b9_7f4a_7c15
    }
    fn write(&mut self, _: &[u8]) {}
}

/// SipHash reduced to four bits (16 distinct hashes), placed in the low bits.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FourBitHash;

/// The hasher of [`FourBitHash`].
pub(crate) struct FourBitHasher(DefaultHasher);

impl BuildHasher for FourBitHash {
    type Hasher = FourBitHasher;
    fn build_hasher(&self) -> FourBitHasher {
        FourBitHasher(DefaultHasher::new())
    }
}

impl Hasher for FourBitHasher {
    fn finish(&self) -> u64 {
        self.0.finish() & 0xF
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }
}

/// A small, fast, seedable generator (SplitMix64) for workloads.
#[derive(Clone, Debug)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
