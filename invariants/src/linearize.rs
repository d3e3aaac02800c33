//! A linearizability checker for one object's history: Wing & Gong's
//! search with Lowe's memo of (operations linearized, state) pairs, the
//! algorithm of Porcupine and Knossos, over a sequential model whose steps
//! may be nondeterministic (an operation whose outcome is unknown, or a
//! transition the object makes on its own, such as a hold expiring).
//!
//! An operation is an interval `[call, ret]` of a total order of events
//! (`ret = None`: the caller never learned the outcome, so it may take
//! effect at any time after its call, or never). A history is linearizable
//! when every operation can be given a point inside its interval such that
//! the model, stepped through the operations in point order, allows every
//! outcome observed. The search is bounded: past `budget` search steps it
//! answers [`Verdict::Unknown`] instead of running on.
//!
//! One reduction keeps read-heavy histories cheap: an operation the model
//! calls a read (it never changes the state) that holds in the current
//! state is linearized at once without a branch: moving such a read to the
//! earliest point it may take never invalidates another operation.
//!
//! Layer: pure; imports nothing of the system.

use std::collections::{BTreeMap, BTreeSet};

/// A sequential specification.
pub trait Model {
    type State: Clone + Ord;
    type Op;
    /// The states the object may be in after `op` from `state` (with any
    /// transitions the object makes on its own before `op`); empty when the
    /// outcome `op` observed is impossible from `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Vec<Self::State>;
    /// Whether `op` holds in `state` without changing it and never changes
    /// any state (a pure read that may be linearized greedily).
    fn read_holds(&self, state: &Self::State, op: &Self::Op) -> bool;
}

/// One operation: its call and return positions in the history's total
/// order of events (`ret = None`: outcome unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<O> {
    pub call: u64,
    pub ret: Option<u64>,
    pub op: O,
}

/// The answer of a bounded search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order of the operations explains what was observed.
    Violation,
    /// The search bound was reached before either answer.
    Unknown,
}

/// Search steps one check may take before it answers `Unknown`.
pub const BUDGET_DEFAULT: u64 = 200_000;

#[derive(Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
}

/// One node of the search: what is linearized, the state, the branches
/// left to try.
struct Node<S> {
    done: Bits,
    /// Operations with a known return among `done`.
    done_returned: usize,
    /// Every operation before this one is in `done`.
    lo: usize,
    state: S,
    branches: Vec<(usize, S)>,
}

impl<S> Node<S> {
    fn mark<O>(&mut self, sorted: &[&Entry<O>], i: usize) {
        self.done.set(i);
        if sorted[i].ret.is_some() {
            self.done_returned += 1;
        }
    }
}

/// Checks `entries` against `model` from `init`, in at most `budget` steps.
pub fn check<M: Model>(
    model: &M,
    init: M::State,
    entries: &[Entry<M::Op>],
    budget: u64,
) -> Verdict {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (entries[i].call, i));
    let sorted: Vec<&Entry<M::Op>> = order.iter().map(|&i| &entries[i]).collect();
    let returned = sorted.iter().filter(|e| e.ret.is_some()).count();
    let mut seen: BTreeSet<(Vec<u64>, M::State)> = BTreeSet::new();
    let mut steps = 0u64;
    let mut root = Node {
        done: Bits::new(sorted.len()),
        done_returned: 0,
        lo: 0,
        state: init,
        branches: Vec::new(),
    };
    settle_reads(model, &sorted, &mut root);
    root.branches = branches(model, &sorted, &root);
    let mut stack = vec![root];
    while let Some(top) = stack.last_mut() {
        if top.done_returned == returned {
            return Verdict::Linearizable;
        }
        steps += 1;
        if steps > budget {
            return Verdict::Unknown;
        }
        let Some((i, state)) = top.branches.pop() else {
            stack.pop();
            continue;
        };
        let mut node = Node {
            done: top.done.clone(),
            done_returned: top.done_returned,
            lo: top.lo,
            state,
            branches: Vec::new(),
        };
        node.mark(&sorted, i);
        if !seen.insert((node.done.0.clone(), node.state.clone())) {
            continue;
        }
        settle_reads(model, &sorted, &mut node);
        node.branches = branches(model, &sorted, &node);
        stack.push(node);
    }
    Verdict::Violation
}

/// The operations that may come next: not linearized, called before every
/// pending operation returned. Scans from the first one not linearized and
/// stops at the first call after the smallest return seen so far: no
/// later-called operation can return earlier than it was called.
fn candidates<O>(sorted: &[&Entry<O>], done: &Bits, lo: usize) -> Vec<usize> {
    let mut first_ret = u64::MAX;
    let mut out = Vec::new();
    for (i, e) in sorted.iter().enumerate().skip(lo) {
        if e.call >= first_ret {
            break;
        }
        if !done.get(i) {
            out.push(i);
            first_ret = first_ret.min(e.ret.unwrap_or(u64::MAX));
        }
    }
    out
}

/// Linearizes, without branching, every read that may come next and holds
/// now. One sweep in call order: the state does not change meanwhile, so a
/// read that does not hold now will not later in the sweep, while each read
/// linearized may let later-called operations come next.
fn settle_reads<M: Model>(model: &M, sorted: &[&Entry<M::Op>], node: &mut Node<M::State>) {
    let mut first_ret = u64::MAX;
    for i in node.lo..sorted.len() {
        if sorted[i].call >= first_ret {
            break;
        }
        if node.done.get(i) {
            continue;
        }
        if model.read_holds(&node.state, &sorted[i].op) {
            node.mark(sorted, i);
        } else {
            first_ret = first_ret.min(sorted[i].ret.unwrap_or(u64::MAX));
        }
    }
    while node.lo < sorted.len() && node.done.get(node.lo) {
        node.lo += 1;
    }
}

fn branches<M: Model>(
    model: &M,
    sorted: &[&Entry<M::Op>],
    node: &Node<M::State>,
) -> Vec<(usize, M::State)> {
    let mut out = Vec::new();
    for i in candidates(sorted, &node.done, node.lo) {
        for s in model.step(&node.state, &sorted[i].op) {
            out.push((i, s));
        }
    }
    // Popped from the back: try the earliest-called operation first.
    out.reverse();
    out
}

/// The history up to the return of its `k`-th returned operation: what
/// was called before that moment, with later returns unknown.
fn prefix<O: Clone>(entries: &[Entry<O>], rets: &[u64], k: usize) -> Vec<(usize, Entry<O>)> {
    let at = rets[k];
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.call < at)
        .map(|(i, e)| {
            let mut e = e.clone();
            e.ret = e.ret.filter(|r| *r <= at);
            (i, e)
        })
        .collect()
}

/// The operation whose return first made the history a violation: the
/// history up to it is a violation and up to the return before it is not
/// (binary search; `None` when no prefix is found violating).
pub fn first_violation<M: Model>(
    model: &M,
    init: &M::State,
    entries: &[Entry<M::Op>],
    budget: u64,
) -> Option<usize>
where
    M::Op: Clone,
{
    let mut rets: Vec<u64> = entries.iter().filter_map(|e| e.ret).collect();
    rets.sort_unstable();
    let violates = |k: usize| {
        let p: Vec<Entry<M::Op>> = prefix(entries, &rets, k)
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        check(model, init.clone(), &p, budget) == Verdict::Violation
    };
    let (mut lo, mut hi) = (0usize, rets.len().checked_sub(1)?);
    if !violates(hi) {
        return None;
    }
    if violates(lo) {
        hi = lo;
    }
    // Invariant: `lo` passes (or is `hi`), `hi` violates.
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if violates(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let at = rets[hi];
    entries.iter().position(|e| e.ret == Some(at))
}

/// A smallest-found failing sub-history, by index into `entries`. It
/// holds the operation `first_violation` names (the pin), with the rest of
/// its unit; then a *support*: the most recent other unit with which the
/// pin alone is explained (a read of SOLD without the hold that could have
/// sold the seat fails for no interesting reason); then as few other units
/// as keep the whole failing while it is linearizable without the pin — so
/// what is left fails for the pin's reason. Units (groups of indices that
/// only make sense together) are removed in halves, then one by one (delta
/// debugging). Operations returned after the pin are left out.
pub fn minimize<M: Model>(
    model: &M,
    init: &M::State,
    entries: &[Entry<M::Op>],
    units: Vec<Vec<usize>>,
    budget: u64,
) -> Vec<usize>
where
    M::Op: Clone,
{
    let Some(pin) = first_violation(model, init, entries, budget) else {
        return (0..entries.len()).collect();
    };
    let mut rets: Vec<u64> = entries.iter().filter_map(|e| e.ret).collect();
    rets.sort_unstable();
    let k = rets
        .iter()
        .position(|r| Some(*r) == entries[pin].ret)
        .unwrap_or(0);
    let before: BTreeMap<usize, Entry<M::Op>> = prefix(entries, &rets, k).into_iter().collect();
    let verdict = |idx: &[usize]| {
        let mut idx = idx.to_vec();
        idx.sort_unstable();
        idx.dedup();
        let sub: Vec<Entry<M::Op>> = idx.iter().map(|i| before[i].clone()).collect();
        check(model, init.clone(), &sub, budget)
    };
    let mut others: Vec<Vec<usize>> = Vec::new();
    let mut fixed: Vec<usize> = vec![pin];
    for u in units {
        let u: Vec<usize> = u.into_iter().filter(|i| before.contains_key(i)).collect();
        if u.contains(&pin) {
            fixed.extend(u.into_iter().filter(|i| *i != pin));
        } else if !u.is_empty() {
            others.push(u);
        }
    }
    if verdict(&fixed) != Verdict::Linearizable
        && let Some(at) = others.iter().rposition(|u| {
            let trial: Vec<usize> = fixed.iter().chain(u).copied().collect();
            verdict(&trial) == Verdict::Linearizable
        })
    {
        fixed.extend(others.remove(at));
    }
    let fails_for_pin = |keep: &[Vec<usize>]| {
        let with: Vec<usize> = keep.iter().flatten().chain(&fixed).copied().collect();
        let without: Vec<usize> = with.iter().copied().filter(|i| *i != pin).collect();
        verdict(&without) == Verdict::Linearizable && verdict(&with) == Verdict::Violation
    };
    let keep = crate::ddmin::ddmin(others, fails_for_pin);
    let mut idx: Vec<usize> = keep.into_iter().flatten().chain(fixed).collect();
    idx.sort_unstable();
    idx.dedup();
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register: writes, and reads that saw a value.
    struct Register;
    #[derive(Clone)]
    enum RegOp {
        Write(u8),
        Read(u8),
    }
    impl Model for Register {
        type State = u8;
        type Op = RegOp;
        fn step(&self, s: &u8, op: &RegOp) -> Vec<u8> {
            match op {
                RegOp::Write(v) => vec![*v],
                RegOp::Read(v) if v == s => vec![*s],
                RegOp::Read(_) => vec![],
            }
        }
        fn read_holds(&self, s: &u8, op: &RegOp) -> bool {
            matches!(op, RegOp::Read(v) if v == s)
        }
    }

    fn e(call: u64, ret: Option<u64>, op: RegOp) -> Entry<RegOp> {
        Entry { call, ret, op }
    }

    #[test]
    fn overlapping_write_explains_a_read_of_either_value() {
        let h = [
            e(0, Some(3), RegOp::Write(1)),
            e(1, Some(2), RegOp::Read(1)),
        ];
        assert_eq!(check(&Register, 0, &h, 1_000), Verdict::Linearizable);
        let h = [
            e(0, Some(3), RegOp::Write(1)),
            e(1, Some(2), RegOp::Read(0)),
        ];
        assert_eq!(check(&Register, 0, &h, 1_000), Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_a_violation() {
        let h = [
            e(0, Some(1), RegOp::Write(1)),
            e(2, Some(3), RegOp::Read(0)),
        ];
        assert_eq!(check(&Register, 0, &h, 1_000), Verdict::Violation);
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_or_never() {
        let late = [e(0, None, RegOp::Write(1)), e(5, Some(6), RegOp::Read(1))];
        assert_eq!(check(&Register, 0, &late, 1_000), Verdict::Linearizable);
        let never = [e(0, None, RegOp::Write(1)), e(5, Some(6), RegOp::Read(0))];
        assert_eq!(check(&Register, 0, &never, 1_000), Verdict::Linearizable);
        // But not both: 1 was seen, then 0 again with no write of 0.
        let both = [
            e(0, None, RegOp::Write(1)),
            e(5, Some(6), RegOp::Read(1)),
            e(7, Some(8), RegOp::Read(0)),
        ];
        assert_eq!(check(&Register, 0, &both, 1_000), Verdict::Violation);
    }

    #[test]
    fn the_bound_answers_unknown() {
        // Many concurrent writes and a read no order explains: the search
        // must try every order before it can say so.
        let mut h: Vec<Entry<RegOp>> = (0..12).map(|v| e(0, Some(100), RegOp::Write(v))).collect();
        h.push(e(101, Some(102), RegOp::Read(99)));
        assert_eq!(check(&Register, 0, &h, 50), Verdict::Unknown);
        assert_eq!(check(&Register, 0, &h, 10_000_000), Verdict::Violation);
    }

    #[test]
    fn minimize_keeps_only_what_the_violation_needs() {
        let h = [
            e(0, Some(1), RegOp::Write(1)),
            e(2, Some(3), RegOp::Read(0)),
            e(4, Some(5), RegOp::Write(0)),
            e(6, Some(7), RegOp::Read(0)),
            e(8, Some(9), RegOp::Write(1)),
            e(10, Some(11), RegOp::Read(1)),
        ];
        assert_eq!(check(&Register, 0, &h, 1_000), Verdict::Violation);
        // The last read only makes sense with its write: one unit.
        let units = vec![vec![0], vec![1], vec![2], vec![3], vec![4, 5]];
        let kept = minimize(&Register, &0, &h, units, 1_000);
        assert_eq!(kept, vec![0, 1], "the write of 1 and the stale read of 0");
        assert_eq!(first_violation(&Register, &0, &h, 1_000), Some(1));
    }
}
