//! Shared helpers: the map configurations each test runs against, a hasher that can make every
//! key collide, drop-counting values, and helpers for timeouts and panic messages.

use std::any::Any;
use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use mapguard::ShardedMap;

/// How long a step that must not hang may take before the test fails instead.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The hasher of every test map: std's SipHash, or one that gives every key the same hash.
#[derive(Clone, Debug)]
pub(crate) enum TestState {
    /// std's randomly seeded SipHash.
    Sip(RandomState),
    /// Every key hashes to [`COLLIDING_HASH`]: one shard, one probe sequence, one tag.
    Collide,
    /// SipHash keeping only its low four bits: 16 hashes, all in one shard, one tag.
    FourBits(RandomState),
}

/// The hash of every key under [`TestState::Collide`].
pub(crate) const COLLIDING_HASH: u64 = 0x9e37_79b9_7f4a_7c15;

/// The hasher built by [`TestState`].
pub(crate) enum TestHasher {
    Sip(DefaultHasher),
    Collide,
    FourBits(DefaultHasher),
}

impl BuildHasher for TestState {
    type Hasher = TestHasher;

    fn build_hasher(&self) -> TestHasher {
        match self {
            Self::Sip(state) => TestHasher::Sip(state.build_hasher()),
            Self::Collide => TestHasher::Collide,
            Self::FourBits(state) => TestHasher::FourBits(state.build_hasher()),
        }
    }
}

impl Hasher for TestHasher {
    fn finish(&self) -> u64 {
        match self {
            Self::Sip(hasher) => hasher.finish(),
            Self::Collide => COLLIDING_HASH,
            Self::FourBits(hasher) => hasher.finish() & 0xF,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if let Self::Sip(hasher) | Self::FourBits(hasher) = self {
            hasher.write(bytes);
        }
    }
}

/// One map configuration: a shard count and a hasher.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) name: &'static str,
    pub(crate) shards: usize,
    pub(crate) collide: bool,
    /// Only four bits of hash (ignored if `collide`).
    pub(crate) four_bits: bool,
}

impl Config {
    /// A fresh empty map of this configuration.
    pub(crate) fn map<K: Hash + Eq, V>(&self) -> ShardedMap<K, V, TestState> {
        let hasher = if self.collide {
            TestState::Collide
        } else if self.four_bits {
            TestState::FourBits(RandomState::new())
        } else {
            TestState::Sip(RandomState::new())
        };
        let map = ShardedMap::builder()
            .shards(self.shards)
            .hasher(hasher)
            .build()
            .expect("test configurations are valid");
        assert_eq!(map.shard_count(), self.shards);
        map
    }
}

/// The configurations every behaviour test runs against: one shard (everything contends), two,
/// many, a hasher under which every key collides (one shard of many, one probe chain) and one
/// that keeps four bits of hash.
pub(crate) fn configs() -> Vec<Config> {
    vec![
        Config {
            name: "1 shard",
            shards: 1,
            collide: false,
            four_bits: false,
        },
        Config {
            name: "2 shards",
            shards: 2,
            collide: false,
            four_bits: false,
        },
        Config {
            name: "256 shards",
            shards: 256,
            collide: false,
            four_bits: false,
        },
        Config {
            name: "8 shards, all keys collide",
            shards: 8,
            collide: true,
            four_bits: false,
        },
        Config {
            name: "8 shards, 4-bit hash",
            shards: 8,
            collide: false,
            four_bits: true,
        },
    ]
}

/// Runs `test` once per configuration of [`configs`], naming the configuration if it panics.
pub(crate) fn with_each_config(mut test: impl FnMut(&Config)) {
    for config in configs() {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&config)));
        if let Err(payload) = outcome {
            panic!(
                "failed with configuration `{}`: {}",
                config.name,
                panic_message(&*payload)
            );
        }
    }
}

/// A map with `shards` shards and the SipHash hasher.
pub(crate) fn map_with_shards<K: Hash + Eq, V>(shards: usize) -> ShardedMap<K, V, TestState> {
    Config {
        name: "custom",
        shards,
        collide: false,
        four_bits: false,
    }
    .map()
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// Runs `body`, which must panic, and returns its panic message.
#[track_caller]
pub(crate) fn expect_panic<R>(body: impl FnOnce() -> R) -> String {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(_) => panic!("expected a panic, but the call returned"),
        Err(payload) => panic_message(&*payload),
    }
}

/// `file:line:` of a line of the calling test file, as a panic message names call sites.
pub(crate) fn site(file: &str, line: u32) -> String {
    format!("{file}:{line}:")
}

/// Runs `body` on a new thread and returns its result, failing the test if it takes longer
/// than [`TIMEOUT`] (the thread is left behind: a hang must fail the test, not the suite).
#[track_caller]
pub(crate) fn within_timeout<R: Send + 'static>(
    what: &str,
    body: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (done, result) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = done.send(body());
    });
    match result.recv_timeout(TIMEOUT) {
        Ok(value) => {
            worker.join().expect("the worker sent its result");
            value
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: did not finish within {TIMEOUT:?} (hang)")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(payload) => panic!("{what}: panicked: {}", panic_message(&*payload)),
            Ok(()) => unreachable!("the worker sends before it returns"),
        },
    }
}

/// Keys of `0..` grouped by the shard they land in: `keys[s]` holds `per_shard` keys of shard `s`.
pub(crate) fn keys_by_shard<S: BuildHasher>(
    map: &ShardedMap<u64, u64, S>,
    per_shard: usize,
) -> Vec<Vec<u64>> {
    let mut keys = vec![Vec::new(); map.shard_count()];
    let mut key = 0u64;
    while keys.iter().any(|k| k.len() < per_shard) {
        map.insert(key, key);
        let shard = map.get(&key).expect("just inserted").shard();
        map.remove(&key);
        if keys[shard].len() < per_shard {
            keys[shard].push(key);
        }
        key += 1;
        assert!(key < 10_000_000, "could not find keys for every shard");
    }
    keys
}

/// Counts of values made and dropped, to find leaks and double drops.
#[derive(Default, Debug)]
pub(crate) struct Counts {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

impl Counts {
    pub(crate) fn made(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }

    pub(crate) fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    /// How many tracked values are alive now.
    pub(crate) fn alive(&self) -> usize {
        self.made() - self.dropped()
    }
}

/// A value that counts its constructions (including clones) and drops.
#[derive(Debug)]
pub(crate) struct Tracked {
    pub(crate) value: u64,
    counts: Arc<Counts>,
}

impl Tracked {
    pub(crate) fn new(value: u64, counts: &Arc<Counts>) -> Self {
        counts.made.fetch_add(1, Ordering::SeqCst);
        Self {
            value,
            counts: Arc::clone(counts),
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Self::new(self.value, &self.counts)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let before = self.counts.dropped.fetch_add(1, Ordering::SeqCst);
        assert!(
            before < self.counts.made(),
            "more values dropped than made: a double drop"
        );
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
