//! The sequential specification of one key of a map, the operations the checker knows, and
//! adapters running them on each map.

use std::hash::BuildHasher;

use mapguard::{Action, Computed, LockedMap, ReadMostlyMap, ShardedMap};

use crate::checker::Spec;
use crate::hashers::Rng;

/// Values are drawn from `0..VALUES` so that compare-and-swap and conditional removals succeed
/// often.
pub(crate) const VALUES: u64 = 5;

/// A single-key operation with its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Get,
    GetCloned,
    Contains,
    /// `insert` returning the replaced value.
    Insert(u64),
    /// `insert` returning whether it replaced a value (`ReadMostlyMap`).
    InsertFlag(u64),
    Swap(u64),
    Remove,
    RemoveEntry,
    TryInsert(u64),
    /// `remove_if` with a condition "the value is this".
    RemoveIf(u64),
    RemoveIfEq(u64),
    GetOrInsert(u64),
    GetOrInsertWith(u64),
    EntryOrInsert(u64),
    /// `entry().and_modify(+d).or_insert(d)`.
    EntryUpsert(u64),
    /// `compute` with [`decide`].
    Compute(u64),
    /// `update` adding `d` modulo [`VALUES`].
    Update(u64),
    /// `get_mut` and a write through the guard.
    GetMutSet(u64),
    CompareExchange(u64, u64),
}

/// What an operation returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Out {
    Opt(Option<u64>),
    Bool(bool),
    /// `Ok(value now or value replaced)` / `Err(value present)`.
    Cx(Result<u64, Option<u64>>),
    Computed(Computed<u64>),
}

/// The `compute` closure of the tests: a function of the present value.
pub(crate) fn decide(d: u64, old: Option<u64>) -> Action<u64> {
    match old {
        None if d == 0 => Action::Keep,
        None => Action::Set(d),
        Some(v) => match (v + d) % VALUES {
            0 => Action::Remove,
            x if x == v => Action::Keep,
            x => Action::Set(x),
        },
    }
}

/// One key of a map: absent or a value.
pub(crate) struct KeySpec;

impl Spec for KeySpec {
    type State = Option<u64>;
    type Op = Op;
    type Out = Out;

    fn step(&self, state: &Option<u64>, op: &Op) -> (Option<u64>, Out) {
        let s = *state;
        match *op {
            Op::Get | Op::GetCloned => (s, Out::Opt(s)),
            Op::Contains => (s, Out::Bool(s.is_some())),
            Op::Insert(v) | Op::Swap(v) => (Some(v), Out::Opt(s)),
            Op::InsertFlag(v) => (Some(v), Out::Bool(s.is_some())),
            Op::Remove | Op::RemoveEntry => (None, Out::Opt(s)),
            Op::TryInsert(v) => match s {
                None => (Some(v), Out::Cx(Ok(v))),
                Some(cur) => (s, Out::Cx(Err(Some(cur)))),
            },
            Op::RemoveIf(x) => match s {
                Some(v) if v == x => (None, Out::Opt(s)),
                _ => (s, Out::Opt(None)),
            },
            Op::RemoveIfEq(x) => match s {
                Some(v) if v == x => (None, Out::Bool(true)),
                _ => (s, Out::Bool(false)),
            },
            Op::GetOrInsert(v) | Op::GetOrInsertWith(v) | Op::EntryOrInsert(v) => {
                let now = s.unwrap_or(v);
                (Some(now), Out::Opt(Some(now)))
            }
            Op::EntryUpsert(d) => {
                let now = s.map_or(d, |v| (v + d) % VALUES);
                (Some(now), Out::Opt(Some(now)))
            }
            Op::Compute(d) => match (decide(d, s), s) {
                (Action::Keep, _) | (Action::Remove, None) => {
                    (s, Out::Computed(Computed::Unchanged))
                }
                (Action::Set(x), None) => (Some(x), Out::Computed(Computed::Inserted)),
                (Action::Set(x), Some(v)) => (Some(x), Out::Computed(Computed::Replaced(v))),
                (Action::Remove, Some(v)) => (None, Out::Computed(Computed::Removed(v))),
            },
            Op::Update(d) => match s {
                Some(v) => (Some((v + d) % VALUES), Out::Opt(s)),
                None => (None, Out::Opt(None)),
            },
            Op::GetMutSet(x) => match s {
                Some(_) => (Some(x), Out::Opt(s)),
                None => (None, Out::Opt(None)),
            },
            Op::CompareExchange(current, new) => match s {
                Some(v) if v == current => (Some(new), Out::Cx(Ok(v))),
                _ => (s, Out::Cx(Err(s))),
            },
        }
    }
}

/// A map under test: the operations it supports and how it runs them.
pub(crate) trait LinMap: Sync {
    /// A random operation among those this map supports.
    fn random_op(&self, rng: &mut Rng) -> Op;
    /// Runs `op` on `key`.
    fn apply(&self, key: u64, op: Op) -> Out;
}

fn pick<const N: usize>(rng: &mut Rng, ops: [Op; N]) -> Op {
    ops[rng.below(N as u64) as usize]
}

impl<S: BuildHasher + Sync + Send> LinMap for ShardedMap<u64, u64, S> {
    fn random_op(&self, rng: &mut Rng) -> Op {
        let (a, b) = (rng.below(VALUES), rng.below(VALUES));
        pick(
            rng,
            [
                Op::Get,
                Op::GetCloned,
                Op::Contains,
                Op::Insert(a),
                Op::Insert(b),
                Op::Remove,
                Op::RemoveEntry,
                Op::TryInsert(a),
                Op::RemoveIf(a),
                Op::GetOrInsert(a),
                Op::GetOrInsertWith(a),
                Op::EntryOrInsert(a),
                Op::EntryUpsert(a),
                Op::Compute(a),
                Op::Compute(b),
                Op::Update(a),
                Op::GetMutSet(a),
            ],
        )
    }

    fn apply(&self, key: u64, op: Op) -> Out {
        match op {
            Op::Get => Out::Opt(self.get(&key).map(|r| *r)),
            Op::GetCloned => Out::Opt(self.get_cloned(&key)),
            Op::Contains => Out::Bool(self.contains_key(&key)),
            Op::Insert(v) => Out::Opt(self.insert(key, v)),
            Op::Remove => Out::Opt(self.remove(&key)),
            Op::RemoveEntry => Out::Opt(self.remove_entry(&key).map(|(_, v)| v)),
            Op::TryInsert(v) => Out::Cx(match self.try_insert(key, v) {
                Ok(now) => Ok(*now),
                Err(err) => Err(Some(*err.current)),
            }),
            Op::RemoveIf(x) => Out::Opt(self.remove_if(&key, |_, v| *v == x).map(|(_, v)| v)),
            Op::GetOrInsert(v) => Out::Opt(Some(*self.get_or_insert(key, v))),
            Op::GetOrInsertWith(v) => Out::Opt(Some(*self.get_or_insert_with(key, || v))),
            Op::EntryOrInsert(v) => Out::Opt(Some(*self.entry(key).or_insert(v))),
            Op::EntryUpsert(d) => Out::Opt(Some(
                *self
                    .entry(key)
                    .and_modify(|v| *v = (*v + d) % VALUES)
                    .or_insert(d),
            )),
            Op::Compute(d) => Out::Computed(self.compute(key, |_, old| decide(d, old.copied()))),
            Op::Update(d) => Out::Opt(self.update(&key, |v| {
                let old = *v;
                *v = (old + d) % VALUES;
                old
            })),
            Op::GetMutSet(x) => Out::Opt(
                self.get_mut(&key)
                    .map(|mut r| std::mem::replace(&mut *r, x)),
            ),
            other => unreachable!("ShardedMap has no {other:?}"),
        }
    }
}

impl<S: BuildHasher + Sync + Send> LinMap for ReadMostlyMap<u64, u64, S> {
    fn random_op(&self, rng: &mut Rng) -> Op {
        let (a, b) = (rng.below(VALUES), rng.below(VALUES));
        pick(
            rng,
            [
                Op::Get,
                Op::GetCloned,
                Op::Contains,
                Op::InsertFlag(a),
                Op::Swap(a),
                Op::Swap(b),
                Op::Remove,
                Op::RemoveIfEq(a),
                Op::GetOrInsert(a),
                Op::GetOrInsertWith(a),
                Op::CompareExchange(a, b),
                Op::CompareExchange(b, a),
            ],
        )
    }

    fn apply(&self, key: u64, op: Op) -> Out {
        match op {
            Op::Get => Out::Opt(self.get(&key).map(|r| *r)),
            Op::GetCloned => Out::Opt(self.get_cloned(&key)),
            Op::Contains => Out::Bool(self.contains_key(&key)),
            Op::InsertFlag(v) => Out::Bool(self.insert(key, v)),
            Op::Swap(v) => Out::Opt(self.swap(key, v).map(|r| *r)),
            Op::Remove => Out::Opt(self.remove(&key).map(|r| *r)),
            Op::RemoveIfEq(x) => Out::Bool(self.remove_if_eq(&key, &x)),
            Op::GetOrInsert(v) => Out::Opt(Some(*self.get_or_insert(key, v))),
            Op::GetOrInsertWith(v) => Out::Opt(Some(*self.get_or_insert_with(key, || v))),
            Op::CompareExchange(current, new) => Out::Cx(
                self.compare_exchange(key, &current, new)
                    .map(|r| *r)
                    .map_err(|present| present.map(|r| *r)),
            ),
            other => unreachable!("ReadMostlyMap has no {other:?}"),
        }
    }
}

impl<S: BuildHasher + Sync + Send> LinMap for LockedMap<u64, u64, S> {
    fn random_op(&self, rng: &mut Rng) -> Op {
        let (a, b) = (rng.below(VALUES), rng.below(VALUES));
        pick(
            rng,
            [
                Op::Get,
                Op::GetCloned,
                Op::Contains,
                Op::Insert(a),
                Op::Insert(b),
                Op::Remove,
                Op::RemoveEntry,
                Op::RemoveIf(a),
                Op::GetOrInsert(a),
                Op::GetOrInsertWith(a),
                Op::Compute(a),
                Op::Compute(b),
                Op::Update(a),
            ],
        )
    }

    fn apply(&self, key: u64, op: Op) -> Out {
        match op {
            Op::Get => Out::Opt(self.get(&key).map(|r| *r)),
            Op::GetCloned => Out::Opt(self.get_cloned(&key)),
            Op::Contains => Out::Bool(self.contains_key(&key)),
            Op::Insert(v) => Out::Opt(self.insert(key, v)),
            Op::Remove => Out::Opt(self.remove(&key)),
            Op::RemoveEntry => Out::Opt(self.remove_entry(&key).map(|(_, v)| v)),
            Op::RemoveIf(x) => Out::Opt(self.remove_if(&key, |_, v| *v == x).map(|(_, v)| v)),
            Op::GetOrInsert(v) => Out::Opt(Some(*self.get_or_insert(key, v))),
            Op::GetOrInsertWith(v) => Out::Opt(Some(*self.get_or_insert_with(key, || v))),
            Op::Compute(d) => Out::Computed(self.compute(key, |_, old| decide(d, old.copied()))),
            Op::Update(d) => Out::Opt(self.update(&key, |v| {
                let old = *v;
                *v = (old + d) % VALUES;
                old
            })),
            other => unreachable!("LockedMap has no {other:?}"),
        }
    }
}
