//! Client histories and their check (invariant `10-history`): what clients
//! saw while it happened, not only the end state.
//!
//! A harness records every client operation — hold, extend, release,
//! order, cancel, order status, seat-map read, seat-stream delivery — as a call
//! and, when the client learned it, a return, each stamped with its place
//! in one total order of events (`seq`) and the time on the store's clock
//! (`at_ms`). `crate::seat_model::check_history` then judges:
//!
//! - per seat, that the operations are linearizable against a sequential
//!   seat (`crate::seat_model`: AVAILABLE → HELD by one hold → SOLD to it,
//!   a hold freed by its expiry, its release or its failed order; SOLD
//!   becomes AVAILABLE only after its order's owner asked to cancel), with
//!   [`crate::linearize`]'s bounded search — a seat the bound cut short is
//!   reported unknown, never passed or failed;
//! - that seat-map versions never go back in real time (a read called
//!   after another returned shows a version at least as new), and that two
//!   observations of one version — maps and stream deliveries — agree.
//!
//! A violating seat comes with its minimal failing sub-history (delta
//! debugging over the seat's operations), which [`to_jsonl`] writes as JSON
//! lines, one event per line in the shape of a Jepsen history (`index`,
//! `type` invoke/ok/fail/info, `process`, `f`, `value`, `time` in ns).
//!
//! This module holds the history's types, its export and the version
//! checks; `seat_model` imports them and runs the whole check.
//!
//! Layer: pure; imports only `ticketing-domain`'s types.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use ticketing_domain::{HoldId, OrderId, OrderStatus, SeatId, SeatStatus};

/// A position in the history's total order and the store-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub seq: u64,
    pub at_ms: u64,
}

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Call {
    Hold {
        seats: Vec<SeatId>,
        hold_ms: u64,
    },
    Extend {
        hold: HoldId,
    },
    Release {
        hold: HoldId,
    },
    Order {
        hold: HoldId,
        key: String,
    },
    OrderStatus {
        order: OrderId,
        hold: HoldId,
    },
    /// Cancelling a confirmed order (the order of `hold`) with this key.
    Cancel {
        order: OrderId,
        hold: HoldId,
        key: String,
    },
    SeatMap,
    /// A delivery on a seat stream (called and returned at one point);
    /// `connection` counts the subscriber's connections.
    Stream {
        connection: u32,
    },
}

/// What the client was told (`Unknown`: nothing — a timeout, a lost answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    Unknown,
    Held {
        hold: HoldId,
        seats: Vec<SeatId>,
        expires_ms: u64,
    },
    Extended {
        expires_ms: u64,
    },
    Released,
    /// A hold refused because these seats were not available.
    Taken {
        seats: Vec<SeatId>,
    },
    /// Refused for another reason (limits, rate, a closed hold).
    Refused {
        status: u16,
        code: String,
    },
    Placed {
        order: OrderId,
    },
    /// A cancellation was taken (202): the order is CANCELLING.
    CancelTaken,
    Order {
        status: OrderStatus,
        seats: Vec<SeatId>,
    },
    Map {
        version: u64,
        seats: Vec<(SeatId, SeatStatus)>,
    },
    Snapshot {
        version: u64,
        seats: Vec<(SeatId, SeatStatus)>,
    },
    Change {
        version: u64,
        seat: SeatId,
        status: SeatStatus,
    },
}

impl Outcome {
    /// Jepsen's completion type.
    fn kind(&self) -> &'static str {
        match self {
            Outcome::Unknown => "info",
            Outcome::Taken { .. } | Outcome::Refused { .. } => "fail",
            _ => "ok",
        }
    }
}

/// One operation of one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub process: String,
    pub call: Stamp,
    /// `None`: the client never learned the outcome.
    pub ret: Option<Stamp>,
    pub f: Call,
    pub outcome: Outcome,
}

/// Every operation of a run, in call order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The clock when the run began: times are shown from here.
    #[serde(default)]
    pub origin_ms: u64,
    pub ops: Vec<Op>,
}

/// A violating seat's smallest failing sub-history found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witness {
    pub seat: SeatId,
    /// The history's `origin_ms`.
    #[serde(default)]
    pub origin_ms: u64,
    pub ops: Vec<Op>,
}

/// The history check's figures and findings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryReport {
    pub ops: usize,
    /// Seats with at least one operation on them.
    pub seats: usize,
    pub linearizable: usize,
    /// Seats the search bound cut short (neither passed nor failed).
    pub unknown: Vec<SeatId>,
    pub violations: Vec<String>,
    pub witnesses: Vec<Witness>,
}

impl HistoryReport {
    /// The verdict's passing line.
    pub fn observed(&self) -> String {
        format!(
            "{} operations; {} of {} seats linearizable, {} unknown (search bound){}; map versions monotonic",
            self.ops,
            self.linearizable,
            self.seats,
            self.unknown.len(),
            match self.unknown.first() {
                Some(s) => format!(", first {s}"),
                None => String::new(),
            }
        )
    }
}

fn map_version(o: &Op) -> Option<u64> {
    match (&o.f, &o.outcome, o.ret) {
        (Call::SeatMap, Outcome::Map { version, .. }, Some(_)) => Some(*version),
        _ => None,
    }
}

/// A seat-map read called after another returned never shows an older
/// version.
pub fn versions_monotonic(h: &History) -> Vec<String> {
    let mut reads: Vec<(&Op, u64)> = h
        .ops
        .iter()
        .filter_map(|o| map_version(o).map(|v| (o, v)))
        .collect();
    let mut by_ret: Vec<(u64, u64, &Op)> = reads
        .iter()
        .filter_map(|(o, v)| o.ret.map(|r| (r.seq, *v, *o)))
        .collect();
    by_ret.sort_by_key(|r| r.0);
    reads.sort_by_key(|(o, _)| o.call.seq);
    let mut out = Vec::new();
    let (mut next, mut newest): (usize, Option<(u64, &Op)>) = (0, None);
    for (o, v) in reads {
        while next < by_ret.len() && by_ret[next].0 < o.call.seq {
            if newest.is_none_or(|(nv, _)| by_ret[next].1 > nv) {
                newest = Some((by_ret[next].1, by_ret[next].2));
            }
            next += 1;
        }
        if let Some((nv, seen)) = newest
            && v < nv
        {
            out.push(format!(
                "{} read seat-map version {v} at {} ms, after {} had been shown version {nv} (answered at {} ms)",
                o.process,
                o.call.at_ms.saturating_sub(h.origin_ms),
                seen.process,
                seen.ret.map_or(0, |r| r.at_ms.saturating_sub(h.origin_ms))
            ));
        }
    }
    out
}

type Rows<'h> = &'h [(SeatId, SeatStatus)];

/// Every observation of one version shows the same status of a seat: the
/// first full map seen per version is the reference (maps are in layout
/// order, so an identical one compares as one slice), a stream change is
/// looked up in it by the layout's positions.
pub fn versions_agree(h: &History) -> Vec<String> {
    let mut first: BTreeMap<u64, (Rows<'_>, &str)> = BTreeMap::new();
    let mut changes: BTreeMap<(u64, &SeatId), (SeatStatus, &str)> = BTreeMap::new();
    let mut out = Vec::new();
    let mut differ = |v: u64, seat: &SeatId, a: (SeatStatus, &str), b: (SeatStatus, &str)| {
        if a.0 != b.0 && out.len() < 20 {
            out.push(format!(
                "seat {seat} at version {v}: {} saw {:?}, {} saw {:?}",
                a.1, a.0, b.1, b.0
            ));
        }
    };
    for o in &h.ops {
        match &o.outcome {
            Outcome::Map { version, seats } | Outcome::Snapshot { version, seats } => {
                match first.get(version) {
                    None => {
                        first.insert(*version, (seats.as_slice(), o.process.as_str()));
                    }
                    Some((rows, _)) if *rows == seats.as_slice() => {}
                    Some((rows, who)) => {
                        let theirs: BTreeMap<&SeatId, SeatStatus> =
                            rows.iter().map(|(s, st)| (s, *st)).collect();
                        for (seat, st) in seats {
                            if let Some(t) = theirs.get(seat) {
                                differ(*version, seat, (*t, who), (*st, &o.process));
                            }
                        }
                    }
                }
            }
            Outcome::Change {
                version,
                seat,
                status,
            } => match changes.get(&(*version, seat)) {
                Some(c) => differ(*version, seat, *c, (*status, &o.process)),
                None => {
                    changes.insert((*version, seat), (*status, &o.process));
                }
            },
            _ => {}
        }
    }
    let Some((layout, _)) = first.values().next() else {
        return out;
    };
    let position: BTreeMap<&SeatId, usize> = layout
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s, i))
        .collect();
    for ((v, seat), c) in &changes {
        let Some((rows, who)) = first.get(v) else {
            continue;
        };
        let at = position
            .get(seat)
            .and_then(|&i| rows.get(i))
            .filter(|r| r.0 == **seat);
        let found = at.or_else(|| rows.iter().find(|r| r.0 == **seat));
        if let Some((_, st)) = found {
            differ(*v, seat, (*st, who), *c);
        }
    }
    out
}

/// `ops` as JSON lines: per operation an invoke line and, when it
/// returned, an ok/fail line (else an info line at the end), ordered by
/// position; `time` in ns since `origin_ms`.
pub fn to_jsonl(ops: &[Op], origin_ms: u64) -> String {
    let mut lines: Vec<(u64, Value)> = Vec::new();
    let end = ops
        .iter()
        .flat_map(|o| [Some(o.call.seq), o.ret.map(|r| r.seq)])
        .flatten()
        .max()
        .unwrap_or(0)
        + 1;
    for (i, o) in ops.iter().enumerate() {
        let call = serde_json::to_value(&o.f).unwrap_or(Value::Null);
        let f = call.get("f").cloned().unwrap_or(Value::Null);
        lines.push((
            o.call.seq,
            json!({"type": "invoke", "op": i, "process": o.process, "f": f,
                   "time": o.call.at_ms.saturating_sub(origin_ms) * 1_000_000, "value": call}),
        ));
        let value = serde_json::to_value(&o.outcome).unwrap_or(Value::Null);
        let (seq, at_ms) = o.ret.map_or((end, o.call.at_ms), |r| (r.seq, r.at_ms));
        lines.push((
            seq,
            json!({"type": o.outcome.kind(), "op": i, "process": o.process, "f": f,
                   "time": at_ms.saturating_sub(origin_ms) * 1_000_000, "value": value}),
        ));
    }
    lines.sort_by_key(|l| l.0);
    let mut out = String::new();
    for (index, (_, mut v)) in lines.into_iter().enumerate() {
        v["index"] = json!(index);
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}
