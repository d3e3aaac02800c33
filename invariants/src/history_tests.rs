//! The history check (`crate::history`, `crate::seat_model`) on small
//! hand-written histories: each rule shown to pass a legal history and to
//! fail the broken one beside it.

use crate::history::{Call, History, Op, Outcome, Stamp, to_jsonl};
use crate::seat_model::check_history as check;
use ticketing_domain::{HoldId, OrderId, OrderStatus, SeatId, SeatStatus};

/// Builds a history; each operation's call and return take the next
/// positions, at the given times.
#[derive(Default)]
struct H {
    h: History,
    seq: u64,
}

impl H {
    fn op(
        &mut self,
        who: &str,
        call_ms: u64,
        ret_ms: Option<u64>,
        f: Call,
        outcome: Outcome,
    ) -> &mut Self {
        let call = Stamp {
            seq: self.seq,
            at_ms: call_ms,
        };
        let ret = ret_ms.map(|at_ms| Stamp {
            seq: self.seq + 1,
            at_ms,
        });
        self.seq += 2;
        self.h.ops.push(Op {
            process: who.into(),
            call,
            ret,
            f,
            outcome,
        });
        self
    }
    fn hold(&mut self, who: &str, at: u64, hold: &str, expires_ms: u64) -> &mut Self {
        self.op(
            who,
            at,
            Some(at + 5),
            Call::Hold {
                seats: vec![seat()],
                hold_ms: 1_000,
            },
            Outcome::Held {
                hold: HoldId::from(hold),
                seats: vec![seat()],
                expires_ms,
            },
        )
    }
    fn read(&mut self, who: &str, at: u64, version: u64, st: SeatStatus) -> &mut Self {
        self.op(
            who,
            at,
            Some(at + 5),
            Call::SeatMap,
            Outcome::Map {
                version,
                seats: vec![(seat(), st)],
            },
        )
    }
    fn order(&mut self, who: &str, at: u64, hold: &str, status: OrderStatus) -> &mut Self {
        let (h, o) = (
            HoldId::from(hold),
            OrderId::from(format!("o-{hold}").as_str()),
        );
        self.op(
            who,
            at,
            Some(at + 5),
            Call::Order {
                hold: h.clone(),
                key: format!("k-{hold}"),
            },
            Outcome::Placed { order: o.clone() },
        );
        self.op(
            who,
            at + 10,
            Some(at + 15),
            Call::OrderStatus { order: o, hold: h },
            Outcome::Order {
                status,
                seats: vec![seat()],
            },
        )
    }
}

impl H {
    /// The owner of `hold`'s order asks to cancel it (`taken`: 202; else
    /// the answer was lost).
    fn cancel(&mut self, who: &str, at: u64, hold: &str, taken: bool) -> &mut Self {
        let (h, o) = (
            HoldId::from(hold),
            OrderId::from(format!("o-{hold}").as_str()),
        );
        let call = Call::Cancel {
            order: o,
            hold: h,
            key: format!("c-{hold}"),
        };
        match taken {
            true => self.op(who, at, Some(at + 5), call, Outcome::CancelTaken),
            false => self.op(who, at, None, call, Outcome::Unknown),
        }
    }
    fn status(&mut self, who: &str, at: u64, hold: &str, status: OrderStatus) -> &mut Self {
        let (h, o) = (
            HoldId::from(hold),
            OrderId::from(format!("o-{hold}").as_str()),
        );
        let seats = vec![seat()];
        let outcome = Outcome::Order { status, seats };
        self.op(
            who,
            at,
            Some(at + 5),
            Call::OrderStatus { order: o, hold: h },
            outcome,
        )
    }
}

fn seat() -> SeatId {
    SeatId::from("1-1")
}

#[test]
fn a_sale_seen_in_order_is_linearizable() {
    let mut b = H::default();
    b.read("a", 0, 1, SeatStatus::Available)
        .hold("a", 10, "h1", 1_000)
        .read("b", 20, 2, SeatStatus::Held)
        .order("a", 30, "h1", OrderStatus::Confirmed)
        .read("b", 60, 3, SeatStatus::Sold);
    let r = check(&b.h, 10_000);
    assert_eq!(r.violations, Vec::<String>::new());
    assert_eq!((r.seats, r.linearizable), (1, 1));
}

#[test]
fn a_sold_seat_read_available_again_is_a_violation_with_a_small_witness() {
    let mut b = H::default();
    b.hold("a", 10, "h1", 1_000)
        .read("x", 12, 2, SeatStatus::Held)
        .read("y", 13, 2, SeatStatus::Held)
        .order("a", 30, "h1", OrderStatus::Confirmed)
        .read("b", 60, 3, SeatStatus::Sold)
        .read("c", 70, 4, SeatStatus::Available);
    let r = check(&b.h, 10_000);
    assert_eq!(r.linearizable, 0);
    assert_eq!(r.witnesses.len(), 1, "{:?}", r.violations);
    let w = &r.witnesses[0];
    // The hold, its order and its confirmation, and the read of AVAILABLE:
    // the two reads of HELD are not needed.
    assert!(
        w.ops.iter().all(|o| o.process != "x" && o.process != "y"),
        "{w:?}"
    );
    assert!(w.ops.iter().any(|o| o.process == "c"), "{w:?}");
    assert!(r.violations[0].contains("seat 1-1"), "{}", r.violations[0]);
}

#[test]
fn a_hold_frees_its_seat_only_once_its_expiry_is_due() {
    let mut ok = H::default();
    ok.hold("a", 10, "h1", 1_000)
        .read("b", 1_200, 2, SeatStatus::Available)
        .hold("b", 1_300, "h2", 2_300);
    assert!(check(&ok.h, 10_000).violations.is_empty());
    let mut early = H::default();
    early
        .hold("a", 10, "h1", 1_000)
        .read("b", 500, 2, SeatStatus::Available);
    assert_eq!(check(&early.h, 10_000).violations.len(), 1);
    let mut twice = H::default();
    twice.hold("a", 10, "h1", 1_000).hold("b", 500, "h2", 1_500);
    assert_eq!(
        check(&twice.h, 10_000).violations.len(),
        1,
        "two live holds on one seat"
    );
}

#[test]
fn a_hold_whose_answer_was_lost_may_have_taken_the_seat() {
    let mut b = H::default();
    b.op(
        "a",
        10,
        None,
        Call::Hold {
            seats: vec![seat()],
            hold_ms: 1_000,
        },
        Outcome::Unknown,
    )
    .read("b", 100, 2, SeatStatus::Held)
    .read("b", 2_000, 3, SeatStatus::Available);
    assert!(check(&b.h, 10_000).violations.is_empty());
    // Without the lost hold, nobody could have held the seat.
    b.h.ops.remove(0);
    assert_eq!(check(&b.h, 10_000).violations.len(), 1);
}

#[test]
fn an_order_told_failed_does_not_own_its_seats() {
    let mut b = H::default();
    b.hold("a", 10, "h1", 1_000)
        .order("a", 30, "h1", OrderStatus::Failed)
        .read("b", 100, 3, SeatStatus::Available);
    assert!(check(&b.h, 10_000).violations.is_empty());
    // The seat read SOLD (to the only hold that could buy it), then its
    // order told FAILED.
    let mut sold = H::default();
    sold.hold("a", 10, "h1", 1_000)
        .read("b", 20, 3, SeatStatus::Sold)
        .order("a", 30, "h1", OrderStatus::Failed);
    let r = check(&sold.h, 10_000);
    assert_eq!(r.violations.len(), 1);
    let w = &r.witnesses[0];
    assert!(
        w.ops.iter().any(|o| o.process == "b"),
        "the read of SOLD is in the witness: {w:?}"
    );
}

#[test]
fn seat_map_versions_never_go_back_and_agree() {
    let mut b = H::default();
    b.read("a", 0, 5, SeatStatus::Available)
        .read("b", 10, 4, SeatStatus::Available);
    let r = check(&b.h, 10_000);
    assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    assert!(r.violations[0].contains("version 4"), "{}", r.violations[0]);
    // Overlapping reads may return either order.
    let mut c = H::default();
    c.op(
        "a",
        0,
        Some(20),
        Call::SeatMap,
        Outcome::Map {
            version: 5,
            seats: vec![(seat(), SeatStatus::Available)],
        },
    )
    .op(
        "b",
        1,
        Some(30),
        Call::SeatMap,
        Outcome::Map {
            version: 4,
            seats: vec![(seat(), SeatStatus::Available)],
        },
    );
    // (their calls and returns interleave: 0 < 2, 3 < 1 does not hold)
    c.h.ops[0].ret = Some(Stamp { seq: 3, at_ms: 20 });
    c.h.ops[1].call = Stamp { seq: 1, at_ms: 1 };
    assert!(check(&c.h, 10_000).violations.is_empty());
    let mut d = H::default();
    d.read("a", 0, 5, SeatStatus::Available).op(
        "w",
        8,
        Some(8),
        Call::Stream { connection: 1 },
        Outcome::Change {
            version: 5,
            seat: seat(),
            status: SeatStatus::Held,
        },
    );
    let r = check(&d.h, 10_000);
    assert!(
        r.violations.iter().any(|v| v.contains("at version 5")),
        "{:?}",
        r.violations
    );
}

#[test]
fn histories_export_as_jepsen_style_json_lines() {
    let mut b = H::default();
    b.hold("a", 10, "h1", 1_000)
        .op("b", 20, None, Call::SeatMap, Outcome::Unknown);
    let text = to_jsonl(&b.h.ops, 0);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["invoke", "ok", "invoke", "info"]);
    assert_eq!(lines[0]["f"], "hold");
    assert_eq!(lines[1]["value"]["hold"], "h1");
    assert_eq!(lines[3]["index"], 3);
}

/// A sold seat, then its owner cancels: the seat may come back and be sold
/// to someone else, but only after the cancel was asked for.
fn sold_then(b: &mut H) -> &mut H {
    b.hold("a", 10, "h1", 1_000)
        .order("a", 30, "h1", OrderStatus::Confirmed)
        .read("b", 60, 3, SeatStatus::Sold)
}

#[test]
fn a_cancelled_sale_may_come_back_and_be_sold_again() {
    let mut b = H::default();
    sold_then(&mut b)
        .cancel("a", 100, "h1", true)
        .read("b", 110, 3, SeatStatus::Sold)
        .read("b", 300, 5, SeatStatus::Available)
        .hold("b", 400, "h2", 2_000)
        .order("b", 420, "h2", OrderStatus::Confirmed)
        .status("a", 500, "h1", OrderStatus::Refunded);
    let r = check(&b.h, 10_000);
    assert_eq!(r.violations, Vec::<String>::new());
    // A cancel whose answer was lost may have been taken.
    let mut lost = H::default();
    sold_then(&mut lost)
        .cancel("a", 100, "h1", false)
        .read("b", 300, 5, SeatStatus::Available);
    assert!(check(&lost.h, 10_000).violations.is_empty());
}

#[test]
fn a_seat_back_before_its_cancel_was_asked_for_is_a_violation() {
    let mut b = H::default();
    sold_then(&mut b)
        .read("b", 80, 5, SeatStatus::Available)
        .cancel("a", 100, "h1", true);
    assert_eq!(check(&b.h, 10_000).violations.len(), 1);
    // Without any cancel it is the plain "sold seat read available".
    let mut none = H::default();
    sold_then(&mut none).read("b", 300, 5, SeatStatus::Available);
    assert_eq!(check(&none.h, 10_000).violations.len(), 1);
}

#[test]
fn refund_failed_still_owns_its_seat_and_refunded_does_not() {
    // REFUND_FAILED: the seats are not returned; a second buyer is a violation.
    let mut b = H::default();
    sold_then(&mut b)
        .cancel("a", 100, "h1", true)
        .status("a", 200, "h1", OrderStatus::RefundFailed)
        .read("b", 300, 5, SeatStatus::Sold);
    assert!(check(&b.h, 10_000).violations.is_empty());
    let mut resold = H::default();
    sold_then(&mut resold)
        .cancel("a", 100, "h1", true)
        .hold("b", 150, "h2", 2_000)
        .status("a", 200, "h1", OrderStatus::RefundFailed);
    assert_eq!(check(&resold.h, 10_000).violations.len(), 1);
    // REFUNDED read while the seat is still read SOLD to it afterwards:
    // the order does not own it once REFUNDED.
    let mut wrong = H::default();
    sold_then(&mut wrong)
        .cancel("a", 100, "h1", true)
        .status("a", 200, "h1", OrderStatus::Refunded)
        .status("a", 300, "h1", OrderStatus::Confirmed);
    assert_eq!(check(&wrong.h, 10_000).violations.len(), 1);
}
