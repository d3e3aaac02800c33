//! The sequential seat the history check holds each seat's operations to
//! (`crate::history`), and the projection of a history onto seats.
//!
//! A seat is AVAILABLE, HELD by one hold (with the earliest time it may
//! expire) or SOLD to one hold's order. Clients move it: a granted hold
//! takes an AVAILABLE seat, an extension moves a live hold's expiry, a
//! release frees it. The system moves it on its own, at any point: a hold
//! expires once its expiry is due (no earlier than the store said), an
//! ordered hold is sold to its order or freed by it (a failed order
//! releases its seats). SOLD stays SOLD until the order's owner asks to
//! cancel it: from that call on the seat is RETURNING (still SOLD to the
//! order) and may come back AVAILABLE at any later point — never before
//! the call. An order read REFUNDED no longer owns the seat; one read
//! REFUND_FAILED still does (its seats are not returned); CANCELLING says
//! nothing. An order told FAILED or CANCELLED does not own the seat at that
//! point (that nothing sells to it later is the end state's check,
//! invariants 2 and 6). Reads — seat maps, a hold refused for taken seats, an order's
//! final status — must match the state at some point of their interval.
//! A hold whose answer was lost may have taken the seat at any point after
//! its call, or never.
//!
//! Layer: pure; imports `ticketing-domain`'s types, `history`, `linearize`.

use crate::history::{Call, History, HistoryReport, Op, Outcome, Witness};
use crate::linearize::{self, Entry, Model, Verdict};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use ticketing_domain::{HoldId, OrderStatus, SeatId, SeatStatus};

/// A hold, by its index in the run's table of holds.
type Who = usize;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seat {
    Available,
    Held {
        who: Who,
        expires_ms: u64,
    },
    Sold {
        who: Who,
    },
    /// Sold, and its order's owner asked to cancel: it may come back.
    Returning {
        who: Who,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatOp {
    Grant {
        who: Who,
        expires_ms: u64,
    },
    /// A hold whose answer was lost.
    MaybeGrant {
        who: Who,
        expires_ms: u64,
    },
    Extend {
        who: Who,
        expires_ms: u64,
    },
    Release {
        who: Who,
        answered: bool,
    },
    Read(SeatStatus),
    /// A hold refused: this seat was not available.
    Taken,
    SoldTo(Who),
    NotSoldTo(Who),
    /// The owner of `who`'s order asked to cancel it (`answered`: it was
    /// taken; else the answer was lost and it may not have been).
    Cancel {
        who: Who,
        answered: bool,
    },
}

/// One projected operation: what it does and when it returned (store
/// clock; `u64::MAX` when it never did), which bounds the expiries that
/// may happen before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projected {
    pub op: SeatOp,
    pub ret_ms: u64,
    /// Its operation in the history.
    pub source: usize,
}

#[derive(Debug, Clone, Default)]
struct HoldInfo {
    /// An order was placed for it: the system may sell or free it.
    ordered: bool,
}

#[derive(Debug)]
pub struct SeatModel {
    holds: Vec<HoldInfo>,
}

impl SeatModel {
    /// Where `s` may be just before an operation that returned at `ret_ms`.
    fn drift(&self, s: &Seat, ret_ms: u64) -> Vec<Seat> {
        let mut out = vec![s.clone()];
        if let Seat::Returning { .. } = s {
            out.push(Seat::Available);
        }
        if let Seat::Held { who, expires_ms } = s {
            let info = &self.holds[*who];
            if ret_ms >= *expires_ms || info.ordered {
                out.push(Seat::Available);
            }
            if info.ordered {
                out.push(Seat::Sold { who: *who });
            }
        }
        out
    }

    fn apply(s: &Seat, op: &SeatOp) -> Vec<Seat> {
        let held_by = |w: Who| matches!(s, Seat::Held { who, .. } if *who == w);
        match op {
            SeatOp::Grant { who, expires_ms } if *s == Seat::Available => vec![Seat::Held {
                who: *who,
                expires_ms: *expires_ms,
            }],
            SeatOp::MaybeGrant { who, expires_ms } if *s == Seat::Available => vec![
                Seat::Held {
                    who: *who,
                    expires_ms: *expires_ms,
                },
                Seat::Available,
            ],
            SeatOp::MaybeGrant { .. } => vec![s.clone()],
            SeatOp::Extend { who, expires_ms } if held_by(*who) => vec![Seat::Held {
                who: *who,
                expires_ms: *expires_ms,
            }],
            SeatOp::Release { who, answered } if held_by(*who) => {
                let mut v = vec![Seat::Available];
                if !answered {
                    v.push(s.clone());
                }
                v
            }
            SeatOp::Release {
                answered: false, ..
            } => vec![s.clone()],
            SeatOp::Cancel { who, answered } if *s == Seat::Sold { who: *who } => {
                let mut v = vec![Seat::Returning { who: *who }];
                if !answered {
                    v.push(s.clone());
                }
                v
            }
            // A repeated cancel, or one of a seat already back: no change.
            SeatOp::Cancel { .. } => vec![s.clone()],
            _ if Self::read_ok(s, op) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    fn read_ok(s: &Seat, op: &SeatOp) -> bool {
        match op {
            SeatOp::Read(st) => status(s) == *st,
            SeatOp::Taken => *s != Seat::Available,
            SeatOp::SoldTo(w) => sold_to(s) == Some(*w),
            SeatOp::NotSoldTo(w) => sold_to(s) != Some(*w),
            _ => false,
        }
    }
}

fn status(s: &Seat) -> SeatStatus {
    match s {
        Seat::Available => SeatStatus::Available,
        Seat::Held { .. } => SeatStatus::Held,
        Seat::Sold { .. } | Seat::Returning { .. } => SeatStatus::Sold,
    }
}

/// Whose order the seat is sold to, cancelling or not.
fn sold_to(s: &Seat) -> Option<Who> {
    match s {
        Seat::Sold { who } | Seat::Returning { who } => Some(*who),
        _ => None,
    }
}

impl Model for SeatModel {
    type State = Seat;
    type Op = Projected;

    fn step(&self, s: &Seat, op: &Projected) -> Vec<Seat> {
        let mut out: Vec<Seat> = self
            .drift(s, op.ret_ms)
            .iter()
            .flat_map(|d| Self::apply(d, &op.op))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn read_holds(&self, s: &Seat, op: &Projected) -> bool {
        Self::read_ok(s, &op.op)
    }
}

/// The run's holds and, per seat, its operations.
struct Projection {
    model: SeatModel,
    seats: BTreeMap<SeatId, Vec<Entry<Projected>>>,
}

#[derive(Default)]
struct Holds {
    ids: BTreeMap<HoldId, Who>,
    seats: BTreeMap<Who, Vec<SeatId>>,
    info: Vec<HoldInfo>,
}

impl Holds {
    fn who(&mut self, id: &HoldId) -> Who {
        if let Some(w) = self.ids.get(id) {
            return *w;
        }
        self.info.push(HoldInfo::default());
        self.ids.insert(id.clone(), self.info.len() - 1);
        self.info.len() - 1
    }
    fn anonymous(&mut self) -> Who {
        self.info.push(HoldInfo::default());
        self.info.len() - 1
    }
}

/// The shortest hold granted (expiry minus the answer's time): a lower
/// bound on the time-to-live of a hold whose answer was lost.
fn hold_ms_min(h: &History) -> u64 {
    h.ops
        .iter()
        .filter_map(|o| match (&o.outcome, o.ret) {
            (Outcome::Held { expires_ms, .. }, Some(r)) => Some(expires_ms.saturating_sub(r.at_ms)),
            _ => None,
        })
        .min()
        .unwrap_or(0)
}

fn holds_of(h: &History) -> Holds {
    let mut holds = Holds::default();
    for o in &h.ops {
        match (&o.f, &o.outcome) {
            (Call::Hold { .. }, Outcome::Held { hold, seats, .. }) => {
                let w = holds.who(hold);
                holds.seats.insert(w, seats.clone());
            }
            (Call::Order { hold, .. }, _) => {
                let w = holds.who(hold);
                holds.info[w].ordered = true;
            }
            _ => {}
        }
    }
    holds
}

/// The seat operations one history operation stands for.
fn project_op<'h>(o: &'h Op, holds: &mut Holds, ttl_ms: u64) -> Vec<(Cow<'h, SeatId>, SeatOp)> {
    let known = |holds: &mut Holds, id: &HoldId| {
        let w = holds.who(id);
        (w, holds.seats.get(&w).cloned().unwrap_or_default())
    };
    match (&o.f, &o.outcome) {
        (
            Call::Hold { .. },
            Outcome::Held {
                hold,
                seats,
                expires_ms,
            },
        ) => {
            let w = holds.who(hold);
            let expires_ms = *expires_ms;
            seats
                .iter()
                .map(|s| (Cow::Borrowed(s), SeatOp::Grant { who: w, expires_ms }))
                .collect()
        }
        (Call::Hold { seats, .. }, Outcome::Unknown) => {
            let w = holds.anonymous();
            let expires_ms = o.call.at_ms + ttl_ms;
            seats
                .iter()
                .map(|s| (Cow::Borrowed(s), SeatOp::MaybeGrant { who: w, expires_ms }))
                .collect()
        }
        (Call::Hold { .. }, Outcome::Taken { seats }) => seats
            .iter()
            .map(|s| (Cow::Borrowed(s), SeatOp::Taken))
            .collect(),
        (Call::Extend { hold }, Outcome::Extended { expires_ms }) => {
            let (w, seats) = known(holds, hold);
            let expires_ms = *expires_ms;
            seats
                .into_iter()
                .map(|s| (Cow::Owned(s), SeatOp::Extend { who: w, expires_ms }))
                .collect()
        }
        (Call::Release { hold }, Outcome::Released | Outcome::Unknown) => {
            let (w, seats) = known(holds, hold);
            let answered = o.outcome == Outcome::Released;
            seats
                .into_iter()
                .map(|s| (Cow::Owned(s), SeatOp::Release { who: w, answered }))
                .collect()
        }
        (Call::OrderStatus { hold, .. }, Outcome::Order { status, seats }) => {
            let w = holds.who(hold);
            let op = match status {
                OrderStatus::Pending | OrderStatus::Cancelling => return Vec::new(),
                OrderStatus::Confirmed | OrderStatus::RefundFailed => SeatOp::SoldTo(w),
                OrderStatus::Cancelled | OrderStatus::Failed | OrderStatus::Refunded => {
                    SeatOp::NotSoldTo(w)
                }
            };
            seats
                .iter()
                .map(|s| (Cow::Borrowed(s), op.clone()))
                .collect()
        }
        (Call::Cancel { hold, .. }, Outcome::CancelTaken | Outcome::Unknown) => {
            let (w, seats) = known(holds, hold);
            let answered = o.outcome == Outcome::CancelTaken;
            seats
                .into_iter()
                .map(|s| (Cow::Owned(s), SeatOp::Cancel { who: w, answered }))
                .collect()
        }
        (Call::SeatMap, Outcome::Map { seats, .. }) => seats
            .iter()
            .map(|(s, st)| (Cow::Borrowed(s), SeatOp::Read(*st)))
            .collect(),
        _ => Vec::new(),
    }
}

fn project(h: &History) -> Projection {
    let mut holds = holds_of(h);
    let ttl_ms = hold_ms_min(h);
    // Seats by first appearance, found through a hash index: a history of
    // seat-map reads names every seat at every read, and a hash lookup is
    // several times cheaper than a walk down a tree of string keys. Only
    // looked up, never iterated: the result is ordered by seat below.
    let mut index: HashMap<SeatId, usize> = HashMap::new();
    let mut found: Vec<(SeatId, Vec<Entry<Projected>>)> = Vec::new();
    for (source, o) in h.ops.iter().enumerate() {
        for (seat, op) in project_op(o, &mut holds, ttl_ms) {
            let e = Entry {
                call: o.call.seq,
                ret: o.ret.map(|r| r.seq),
                op: Projected {
                    op,
                    ret_ms: o.ret.map_or(u64::MAX, |r| r.at_ms),
                    source,
                },
            };
            match index.get(seat.as_ref()) {
                Some(&i) => found[i].1.push(e),
                None => {
                    index.insert(seat.as_ref().clone(), found.len());
                    found.push((seat.into_owned(), vec![e]));
                }
            }
        }
    }
    Projection {
        model: SeatModel { holds: holds.info },
        seats: found.into_iter().collect(),
    }
}

/// Units of the minimization: a granted hold with every operation on it
/// (they make no sense without it), every other operation alone.
fn units(entries: &[Entry<Projected>]) -> Vec<Vec<usize>> {
    let mut by_hold: BTreeMap<Who, Vec<usize>> = BTreeMap::new();
    let mut alone = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match &e.op.op {
            SeatOp::Grant { who, .. }
            | SeatOp::Extend { who, .. }
            | SeatOp::Release { who, .. }
            | SeatOp::SoldTo(who) => by_hold.entry(*who).or_default().push(i),
            _ => alone.push(vec![i]),
        }
    }
    by_hold.into_values().chain(alone).collect()
}

/// The history's operations behind `kept`, with the order placed for
/// each hold among them (the seat model reads it from the whole history).
fn witness_ops(h: &History, entries: &[Entry<Projected>], kept: &[usize]) -> Vec<Op> {
    let mut sources: BTreeSet<usize> = kept.iter().map(|&i| entries[i].op.source).collect();
    let holds: BTreeSet<&HoldId> = sources
        .iter()
        .filter_map(|&i| match &h.ops[i].outcome {
            Outcome::Held { hold, .. } => Some(hold),
            _ => match &h.ops[i].f {
                Call::OrderStatus { hold, .. } | Call::Extend { hold } | Call::Release { hold } => {
                    Some(hold)
                }
                _ => None,
            },
        })
        .collect();
    for (i, o) in h.ops.iter().enumerate() {
        if let Call::Order { hold, .. } = &o.f
            && holds.contains(hold)
        {
            sources.insert(i);
        }
    }
    sources.into_iter().map(|i| h.ops[i].clone()).collect()
}

/// Judges `h` (invariant 10): every seat's operations against the seat
/// model, each search bounded by `budget` steps, and the map versions.
pub fn check_history(h: &History, budget: u64) -> HistoryReport {
    let mut report = check_seats(h, budget);
    report.ops = h.ops.len();
    report
        .violations
        .extend(crate::history::versions_monotonic(h));
    report.violations.extend(crate::history::versions_agree(h));
    report
}

/// Every seat's operations checked against the seat model.
pub fn check_seats(h: &History, budget: u64) -> HistoryReport {
    let p = project(h);
    let mut report = HistoryReport {
        seats: p.seats.len(),
        ..HistoryReport::default()
    };
    for (seat, entries) in &p.seats {
        match linearize::check(&p.model, Seat::Available, entries, budget) {
            Verdict::Linearizable => report.linearizable += 1,
            Verdict::Unknown => report.unknown.push(seat.clone()),
            Verdict::Violation => {
                let kept = linearize::minimize(
                    &p.model,
                    &Seat::Available,
                    entries,
                    units(entries),
                    budget,
                );
                let ops = witness_ops(h, entries, &kept);
                report.violations.push(format!(
                    "seat {seat}: no order of its {} operations explains what clients saw; smallest failing sub-history: {}",
                    entries.len(),
                    describe(seat, &ops, h.origin_ms)
                ));
                report.witnesses.push(Witness {
                    seat: seat.clone(),
                    origin_ms: h.origin_ms,
                    ops,
                });
            }
        }
    }
    report
}

/// A sub-history in one line: who did what, when, and what they were
/// told of `seat` (times in ms since `origin_ms`).
pub fn describe(seat: &SeatId, ops: &[Op], origin_ms: u64) -> String {
    ops.iter()
        .map(|o| {
            let ms = |at: u64| at.saturating_sub(origin_ms);
            let f = match &o.f {
                Call::Hold { .. } => "hold".to_owned(),
                Call::Extend { hold } => format!("extend {hold}"),
                Call::Release { hold } => format!("release {hold}"),
                Call::Order { hold, .. } => format!("order {hold}"),
                Call::OrderStatus { order, .. } => format!("status of {order}"),
                Call::Cancel { order, .. } => format!("cancel {order}"),
                Call::SeatMap => "seat map".to_owned(),
                Call::Stream { .. } => "stream".to_owned(),
            };
            let told = match &o.outcome {
                Outcome::Unknown => "no answer".to_owned(),
                Outcome::Held {
                    hold, expires_ms, ..
                } => format!("held {hold} until {} ms", ms(*expires_ms)),
                Outcome::Extended { expires_ms } => format!("extended to {} ms", ms(*expires_ms)),
                Outcome::Released => "released".to_owned(),
                Outcome::Taken { .. } => "taken".to_owned(),
                Outcome::Refused { code, .. } => code.clone(),
                Outcome::Placed { order } => format!("placed {order}"),
                Outcome::CancelTaken => "cancelling".to_owned(),
                Outcome::Order { status, .. } => format!("{status:?}"),
                Outcome::Map { version, seats } | Outcome::Snapshot { version, seats } => {
                    let st = seats.iter().find(|(s, _)| s == seat).map(|(_, st)| *st);
                    format!("v{version} {st:?}")
                }
                Outcome::Change {
                    version, status, ..
                } => format!("v{version} {status:?}"),
            };
            let ret = o.ret.map_or("?".to_owned(), |r| ms(r.at_ms).to_string());
            format!("{} {f} [{}..{ret} ms] {told}", o.process, ms(o.call.at_ms))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
