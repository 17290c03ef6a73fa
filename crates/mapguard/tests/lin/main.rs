//! Linearizability of every map: threads run random single-key operations on a few keys at a
//! time, every call and return is stamped from one shared clock, and each key's history is
//! checked against the sequential specification of a map ([`spec::KeySpec`]) by the search in
//! [`checker`].
//!
//! Histories come in rounds: all threads meet at a barrier, then run operations on the round's
//! few keys (so they contend on them), and after the next barrier one thread reads each of the
//! round's keys alone; that read closes the key's history and gives the state the key's next
//! history starts from. Keys come back after `cycle` rounds (a short cycle keeps degraded
//! hashers' probe chains short) or never (the map grows during the whole run).
//!
//! `MAPGUARD_LIN_SCALE` multiplies the number of rounds (default 1).

#[path = "../support/hashers.rs"]
mod hashers;

mod checker;
mod spec;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};

use mapguard::{LockedMap, ReadMostlyMap, ShardedMap};

use checker::{Event, Violation};
use hashers::{ConstantHash, FourBitHash, Rng};
use spec::{KeySpec, LinMap, Op, Out, VALUES};

/// The shape of one run.
#[derive(Clone, Copy, Debug)]
struct Plan {
    threads: usize,
    keys_per_round: u64,
    ops_per_thread: usize,
    rounds: usize,
    /// Rounds after which keys are reused; `usize::MAX` for fresh keys every round.
    cycle: usize,
}

impl Plan {
    fn key(&self, round: usize, j: u64) -> u64 {
        (round % self.cycle) as u64 * self.keys_per_round + j
    }
}

/// What a run recorded.
struct Recorded {
    /// `(round, key)` to the events of that round on that key, the closing read last.
    histories: HashMap<(usize, u64), Vec<Event<Op, Out>>>,
    /// `(round, key)` to the value the closing read saw.
    finals: HashMap<(usize, u64), Option<u64>>,
}

/// An operation as recorded: its round, key, event, and whether it is a round's closing read.
type Record = (usize, u64, Event<Op, Out>, bool);

/// Runs `plan` on `map`, recording every operation.
fn record(map: &dyn LinMap, plan: Plan, seed: u64) -> Recorded {
    let clock = AtomicU64::new(0);
    let barrier = Barrier::new(plan.threads);
    let all: Mutex<Vec<Record>> = Mutex::new(Vec::new());
    // One operation in 16 yields between its call and its return stamp (as a preemption
    // there would): other threads' operations on the same keys then run inside its interval,
    // which gives the checker more orders to consider, even on a loaded machine.
    let timed = |key: u64, op: Op, widen: bool| {
        let call = clock.fetch_add(1, Ordering::SeqCst);
        let out = map.apply(key, op);
        if widen {
            std::thread::yield_now();
        }
        let ret = clock.fetch_add(1, Ordering::SeqCst);
        (key, Event { call, ret, op, out })
    };
    let closing_reads = |round: usize, mine: &mut Vec<Record>| {
        for j in 0..plan.keys_per_round {
            let (key, event) = timed(plan.key(round, j), Op::Get, false);
            mine.push((round, key, event, true));
        }
    };
    std::thread::scope(|scope| {
        for thread in 0..plan.threads {
            let (barrier, all) = (&barrier, &all);
            scope.spawn(move || {
                let mut rng = Rng(seed ^ (thread as u64).wrapping_mul(0x517c_c1b7_2722_0a95));
                let mut mine = Vec::with_capacity(plan.rounds * (plan.ops_per_thread + 4));
                for round in 0..plan.rounds {
                    barrier.wait();
                    if thread == 0 && round > 0 {
                        closing_reads(round - 1, &mut mine);
                    }
                    for _ in 0..plan.ops_per_thread {
                        let key = plan.key(round, rng.below(plan.keys_per_round));
                        let op = map.random_op(&mut rng);
                        let (key, event) = timed(key, op, rng.below(16) == 0);
                        mine.push((round, key, event, false));
                    }
                }
                barrier.wait();
                if thread == 0 {
                    closing_reads(plan.rounds - 1, &mut mine);
                }
                all.lock().unwrap().extend(mine);
            });
        }
    });
    let mut recorded = Recorded {
        histories: HashMap::new(),
        finals: HashMap::new(),
    };
    for (round, key, event, closing) in all.into_inner().unwrap() {
        if closing {
            let Out::Opt(seen) = event.out else {
                unreachable!("closing reads are gets")
            };
            recorded.finals.insert((round, key), seen);
        }
        recorded
            .histories
            .entry((round, key))
            .or_default()
            .push(event);
    }
    recorded
}

/// Totals of the checks of one or more runs.
#[derive(Clone, Copy, Debug, Default)]
struct Summary {
    /// Operations checked, the closing reads included.
    ops: u64,
    /// Per-key histories checked.
    histories: u64,
    /// Search states visited.
    nodes: u64,
    /// The longest history.
    longest: usize,
    /// Operations whose call-return interval overlaps another operation on the same key.
    overlapping: u64,
}

impl Summary {
    fn add(&mut self, other: Summary) {
        self.ops += other.ops;
        self.histories += other.histories;
        self.nodes += other.nodes;
        self.longest = self.longest.max(other.longest);
        self.overlapping += other.overlapping;
    }
}

/// Checks every key's history of a run; the first violation found is returned with its key.
fn check_run(plan: Plan, recorded: Recorded) -> Result<Summary, (usize, u64, Violation)> {
    let mut summary = Summary::default();
    let mut histories: Vec<_> = recorded.histories.into_iter().collect();
    histories.sort_by_key(|(at, _)| *at);
    for ((round, key), mut events) in histories {
        let initial = if round >= plan.cycle {
            recorded.finals[&(round - plan.cycle, key)]
        } else {
            None
        };
        summary.ops += events.len() as u64;
        summary.histories += 1;
        summary.longest = summary.longest.max(events.len());
        summary.overlapping += overlapping(&mut events);
        match checker::check(&KeySpec, &initial, &mut events) {
            Ok(explored) => summary.nodes += explored.nodes,
            Err(violation) => return Err((round, key, violation)),
        }
    }
    Ok(summary)
}

/// How many events overlap another one (sorts `events` by call).
fn overlapping(events: &mut [Event<Op, Out>]) -> u64 {
    events.sort_by_key(|event| event.call);
    let mut count = 0;
    let mut max_ret = 0;
    for i in 0..events.len() {
        let before = i > 0 && events[i].call < max_ret;
        let after = i + 1 < events.len() && events[i + 1].call < events[i].ret;
        count += u64::from(before || after);
        max_ret = max_ret.max(events[i].ret);
    }
    count
}

/// Records and checks `plan` on `map`, failing the test on a violation.
fn assert_linearizable(name: &str, map: &dyn LinMap, plan: Plan, seed: u64) -> Summary {
    let recorded = record(map, plan, seed);
    match check_run(plan, recorded) {
        Ok(summary) => {
            println!(
                "lin {name:<28} ops {:>8} overlapping {:>7} histories {:>6} longest {:>3} states {:>8}",
                summary.ops, summary.overlapping, summary.histories, summary.longest, summary.nodes
            );
            summary
        }
        Err((round, key, violation)) => panic!(
            "{name}: the history of key {key} in round {round} is not linearizable:\n{}",
            violation.history
        ),
    }
}

fn scale() -> usize {
    std::env::var("MAPGUARD_LIN_SCALE")
        .ok()
        .map(|s| s.parse().expect("MAPGUARD_LIN_SCALE is a whole number"))
        .unwrap_or(1)
}

/// Fresh keys every round: the map grows (and its tables are rebuilt) throughout.
fn growing(rounds: usize) -> Plan {
    Plan {
        threads: 4,
        keys_per_round: 3,
        ops_per_thread: 24,
        rounds: rounds * scale(),
        cycle: usize::MAX,
    }
}

/// 48 keys reused every 16 rounds, for degraded hashers.
fn cycling(rounds: usize) -> Plan {
    Plan {
        cycle: 16,
        ..growing(rounds)
    }
}

/// Every map, with good and degraded hashers and one or many shards; more than 10^6 operations
/// in all at scale 1 (about 4.4 million).
#[test]
fn every_map_is_linearizable() {
    const ROUNDS: usize = 4_000;
    let mut total = Summary::default();
    let mut run = |name: &str, map: &dyn LinMap, plan: Plan| {
        let seed = 0x6d61_7067_7561_7264 ^ total.ops;
        total.add(assert_linearizable(name, map, plan, seed));
    };
    run(
        "ShardedMap default",
        &ShardedMap::<u64, u64>::new(),
        growing(ROUNDS),
    );
    let one: ShardedMap<u64, u64> = ShardedMap::builder().shards(1).build().unwrap();
    run("ShardedMap 1 shard", &one, growing(ROUNDS));
    let constant = ShardedMap::builder()
        .shards(4)
        .hasher(ConstantHash)
        .build()
        .unwrap();
    run("ShardedMap constant hash", &constant, cycling(ROUNDS));
    let four_bits = ShardedMap::builder()
        .shards(8)
        .hasher(FourBitHash)
        .build()
        .unwrap();
    run("ShardedMap 4-bit hash", &four_bits, cycling(ROUNDS));
    run(
        "ReadMostlyMap default",
        &ReadMostlyMap::<u64, u64>::new(),
        growing(ROUNDS),
    );
    let one: ReadMostlyMap<u64, u64> = ReadMostlyMap::builder().shards(1).build().unwrap();
    run("ReadMostlyMap 1 shard", &one, growing(ROUNDS));
    let constant = ReadMostlyMap::builder()
        .shards(2)
        .hasher(ConstantHash)
        .build()
        .unwrap();
    run("ReadMostlyMap constant hash", &constant, cycling(ROUNDS));
    let four_bits = ReadMostlyMap::builder()
        .shards(4)
        .hasher(FourBitHash)
        .build()
        .unwrap();
    run("ReadMostlyMap 4-bit hash", &four_bits, cycling(ROUNDS));
    run(
        "LockedMap default",
        &LockedMap::<u64, u64>::new(),
        growing(ROUNDS),
    );
    let constant = LockedMap::builder().hasher(ConstantHash).build().unwrap();
    run("LockedMap constant hash", &constant, cycling(ROUNDS));
    let four_bits = LockedMap::builder().hasher(FourBitHash).build().unwrap();
    run("LockedMap 4-bit hash", &four_bits, cycling(ROUNDS));
    println!(
        "lin TOTAL ops checked {} (overlapping another op on their key: {}) histories checked {} search states {} longest history {}",
        total.ops, total.overlapping, total.histories, total.nodes, total.longest
    );
    assert!(total.ops >= 1_000_000 * scale() as u64, "{total:?}");
}

// ---------------------------------------------------------------------------------------------
// The checker must reject wrong maps.

fn event(call: u64, ret: u64, op: Op, out: Out) -> Event<Op, Out> {
    Event { call, ret, op, out }
}

/// Hand-written histories with known answers.
#[test]
fn checker_accepts_and_rejects_known_histories() {
    let ok = |initial: Option<u64>, mut events: Vec<Event<Op, Out>>| {
        checker::check(&KeySpec, &initial, &mut events).is_ok()
    };
    // Sequential and correct.
    assert!(ok(
        None,
        vec![
            event(0, 1, Op::Insert(1), Out::Opt(None)),
            event(2, 3, Op::Get, Out::Opt(Some(1))),
        ]
    ));
    // Sequential, but the read misses a completed write.
    assert!(!ok(
        None,
        vec![
            event(0, 1, Op::Insert(1), Out::Opt(None)),
            event(2, 3, Op::Get, Out::Opt(None)),
        ]
    ));
    // Overlapping: the read may go before the write.
    assert!(ok(
        None,
        vec![
            event(0, 3, Op::Insert(1), Out::Opt(None)),
            event(1, 2, Op::Get, Out::Opt(None)),
        ]
    ));
    // Two overlapping get_or_insert on an absent key must agree on one value.
    assert!(!ok(
        None,
        vec![
            event(0, 3, Op::GetOrInsert(1), Out::Opt(Some(1))),
            event(1, 2, Op::GetOrInsert(2), Out::Opt(Some(2))),
        ]
    ));
    assert!(ok(
        None,
        vec![
            event(0, 3, Op::GetOrInsert(1), Out::Opt(Some(2))),
            event(1, 2, Op::GetOrInsert(2), Out::Opt(Some(2))),
        ]
    ));
    // A lost update: two increments from 1, both saw 1.
    assert!(!ok(
        Some(1),
        vec![
            event(0, 3, Op::Update(1), Out::Opt(Some(1))),
            event(1, 4, Op::Update(1), Out::Opt(Some(1))),
        ]
    ));
    // Two removes cannot both return the value.
    assert!(!ok(
        Some(3),
        vec![
            event(0, 3, Op::Remove, Out::Opt(Some(3))),
            event(1, 4, Op::Remove, Out::Opt(Some(3))),
        ]
    ));
    // A compare_exchange that failed seeing a value no linearization has.
    assert!(!ok(
        Some(0),
        vec![event(
            0,
            1,
            Op::CompareExchange(1, 2),
            Out::Cx(Err(Some(4)))
        )]
    ));
    // The value a read sees must be the state it started from, even with the read last.
    assert!(!ok(Some(2), vec![event(0, 1, Op::Get, Out::Opt(Some(3)))]));
    // Stale read after two sequential writes.
    assert!(!ok(
        None,
        vec![
            event(0, 1, Op::Insert(1), Out::Opt(None)),
            event(2, 3, Op::Insert(2), Out::Opt(Some(1))),
            event(4, 5, Op::Get, Out::Opt(Some(1))),
        ]
    ));
}

/// A map whose reads lag one write behind: every write also stores the value it replaced in a
/// side map, which reads consult.
struct StaleReads {
    map: LockedMap<u64, u64>,
    previous: LockedMap<u64, Option<u64>>,
}

impl LinMap for StaleReads {
    fn random_op(&self, rng: &mut Rng) -> Op {
        match rng.below(3) {
            0 => Op::Insert(rng.below(VALUES)),
            1 => Op::Remove,
            _ => Op::Get,
        }
    }

    fn apply(&self, key: u64, op: Op) -> Out {
        match op {
            Op::Insert(v) => {
                let old = self.map.insert(key, v);
                self.previous.insert(key, old);
                Out::Opt(old)
            }
            Op::Remove => {
                let old = self.map.remove(&key);
                self.previous.insert(key, old);
                Out::Opt(old)
            }
            Op::Get => Out::Opt(match self.previous.get_cloned(&key) {
                Some(stale) => stale,
                None => self.map.get_cloned(&key),
            }),
            other => unreachable!("{other:?}"),
        }
    }
}

/// A map whose read-modify-writes are a read and a separate write, with a yield between.
struct RacyReadModifyWrite {
    map: LockedMap<u64, u64>,
}

impl LinMap for RacyReadModifyWrite {
    fn random_op(&self, rng: &mut Rng) -> Op {
        match rng.below(4) {
            0 => Op::GetOrInsertWith(rng.below(VALUES)),
            1 => Op::Update(1),
            2 => Op::Insert(rng.below(VALUES)),
            _ => Op::Get,
        }
    }

    fn apply(&self, key: u64, op: Op) -> Out {
        match op {
            Op::GetOrInsertWith(v) => {
                if let Some(now) = self.map.get_cloned(&key) {
                    return Out::Opt(Some(now));
                }
                std::thread::yield_now();
                self.map.insert(key, v);
                Out::Opt(Some(v))
            }
            Op::Update(d) => {
                let Some(old) = self.map.get_cloned(&key) else {
                    return Out::Opt(None);
                };
                std::thread::yield_now();
                self.map.insert(key, (old + d) % VALUES);
                Out::Opt(Some(old))
            }
            Op::Insert(v) => Out::Opt(self.map.insert(key, v)),
            Op::Get => Out::Opt(self.map.get_cloned(&key)),
            other => unreachable!("{other:?}"),
        }
    }
}

/// Runs `map` until the checker reports a violation; fails if none is found in many rounds.
fn assert_rejected(name: &str, map: &dyn LinMap) {
    for attempt in 0..200u64 {
        let plan = Plan {
            threads: 4,
            keys_per_round: 2,
            ops_per_thread: 16,
            rounds: 50,
            cycle: usize::MAX,
        };
        if let Err((round, key, violation)) = check_run(plan, record(map, plan, attempt)) {
            println!(
                "lin {name}: rejected (attempt {attempt}, key {key}, round {round}):\n{}",
                violation.history
            );
            return;
        }
    }
    panic!("the checker accepted every history of the broken map `{name}`");
}

#[test]
fn checker_rejects_a_map_with_stale_reads() {
    assert_rejected(
        "stale reads",
        &StaleReads {
            map: LockedMap::new(),
            previous: LockedMap::new(),
        },
    );
}

#[test]
fn checker_rejects_a_map_with_non_atomic_read_modify_write() {
    assert_rejected(
        "racy read-modify-write",
        &RacyReadModifyWrite {
            map: LockedMap::new(),
        },
    );
}
