//! Each invariant shown to hold on a consistent snapshot and to fail on a
//! snapshot that breaks it (a checker that cannot fail proves nothing).

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use crate::*;
use std::collections::BTreeMap;
use ticketing_domain::{
    EventId, LedgerEntry, LedgerKind, MessageId, OrderStatus, SeatId, SeatStatus, SettlementBatch,
    Ticket,
};

fn seat(s: &str) -> SeatId {
    SeatId::from(s)
}

fn order(id: &str, status: OrderStatus, seats: &[&str]) -> OrderFact {
    OrderFact {
        order_id: id.into(),
        event_id: "e".into(),
        seat_ids: seats.iter().map(|s| seat(s)).collect(),
        status,
        progress: String::new(),
    }
}

fn ticket(s: &str, order: &str) -> Ticket {
    Ticket {
        event_id: "e".into(),
        seat_id: seat(s),
        order_id: order.into(),
    }
}

fn entry(order: &str, kind: LedgerKind) -> LedgerEntry {
    LedgerEntry {
        seq: 0,
        order_id: order.into(),
        event_id: "e".into(),
        kind,
        amount_cents: 100,
        at_ms: 0,
    }
}

fn told_final(client: &str, order: &str, status: OrderStatus, seats: &[&str]) -> Told {
    Told {
        client: client.into(),
        what: ToldWhat::OrderFinal {
            order_id: order.into(),
            event_id: "e".into(),
            status,
            seat_ids: seats.iter().map(|s| seat(s)).collect(),
        },
    }
}

/// Three seats: 1-1 sold to o1 (confirmed, captured), 1-2 held by a live
/// hold, 1-3 free; o2 was cancelled and its authorization voided.
/// Ledger seqs 1, 2, ... in order.
fn numbered(mut ledger: Vec<LedgerEntry>) -> Vec<LedgerEntry> {
    for (i, e) in ledger.iter_mut().enumerate() {
        e.seq = i as u64 + 1;
    }
    ledger
}

fn batch(id: u64, seqs: &[u64], captured_cents: i64, refunded_cents: i64) -> SettlementBatch {
    SettlementBatch {
        batch_id: id,
        event_id: "e".into(),
        closed_at_ms: 0,
        entry_seqs: seqs.to_vec(),
        captured_cents,
        refunded_cents,
    }
}

/// The settlement worker caught up: the ledger renumbered and one batch
/// taking every capture and refund (for a test about another invariant).
fn settle(s: &mut Snapshot) {
    s.ledger = numbered(std::mem::take(&mut s.ledger));
    let of = |kind| -> Vec<&LedgerEntry> { s.ledger.iter().filter(|e| e.kind == kind).collect() };
    let sum = |es: &[&LedgerEntry]| es.iter().map(|e| e.amount_cents).sum::<i64>();
    let (captures, refunds) = (of(LedgerKind::Capture), of(LedgerKind::Refund));
    let mut seqs: Vec<u64> = captures.iter().chain(&refunds).map(|e| e.seq).collect();
    seqs.sort_unstable();
    let all = batch(1, &seqs, sum(&captures), sum(&refunds));
    s.settlements = Some(vec![all]);
}

fn healthy() -> Snapshot {
    let seats = BTreeMap::from([
        (seat("1-1"), SeatStatus::Sold),
        (seat("1-2"), SeatStatus::Held),
        (seat("1-3"), SeatStatus::Available),
    ]);
    let changes = vec![
        (seat("1-1"), SeatStatus::Held),
        (seat("1-1"), SeatStatus::Sold),
        (seat("1-2"), SeatStatus::Held),
    ];
    Snapshot {
        events: vec![EventFact {
            event_id: "e".into(),
            capacity: 3,
            version: 3,
            seats: seats.clone(),
            owners: Some(vec![(seat("1-1"), "o1".into())]),
            changes: Some(changes),
            holds: Some(vec![HoldFact {
                seat_ids: vec![seat("1-2")],
                expires_at_ms: 2_000,
            }]),
        }],
        orders: vec![
            order("o1", OrderStatus::Confirmed, &["1-1"]),
            order("o2", OrderStatus::Cancelled, &["1-3"]),
        ],
        tickets: vec![ticket("1-1", "o1")],
        ledger: numbered(vec![
            entry("o1", LedgerKind::Authorize),
            entry("o1", LedgerKind::Capture),
            entry("o2", LedgerKind::Authorize),
            entry("o2", LedgerKind::Void),
        ]),
        settlements: Some(vec![batch(1, &[2], 100, 0)]),
        outbox: OutboxFact {
            backlog: 0,
            written: Some(vec![MessageId::from("m1")]),
            published: Some(vec![MessageId::from("m1")]),
        },
        told: Some(vec![
            Told {
                client: "1".into(),
                what: ToldWhat::OrderAccepted {
                    key: "k1".into(),
                    order_id: "o1".into(),
                },
            },
            told_final("1", "o1", OrderStatus::Confirmed, &["1-1"]),
        ]),
        streams: vec![StreamFact {
            name: "watcher 1".into(),
            event_id: "e".into(),
            version: 3,
            gaps: 0,
            seats,
        }],
        quiescence: Quiescence {
            reached: true,
            detail: String::new(),
        },
        unreadable: Vec::new(),
        now_ms: 1_000,
        hold_grace_ms: 0,
        queue: None,
        customers: None,
        history: None,
    }
}

/// The invariants that fail, each once.
fn failing(s: &Snapshot) -> Vec<String> {
    let mut ids: Vec<String> = check(s).into_iter().map(|v| v.invariant).collect();
    ids.dedup();
    ids
}

fn only(s: &Snapshot, invariant: &str) {
    assert_eq!(failing(s), vec![invariant.to_owned()], "{:#?}", check(s));
}

#[test]
fn a_consistent_snapshot_passes_every_invariant() {
    let s = healthy();
    assert_eq!(check(&s), Vec::new());
    assert_eq!(judge(&s).len(), INVARIANTS.len());
}

#[test]
fn a_failed_read_is_a_violation() {
    let mut s = healthy();
    assert_eq!(s.read(Err::<(), _>("connection refused"), "tickets"), None);
    only(&s, "0-truth-readable");
    assert!(check(&s)[0].detail.contains("tickets"));
}

#[test]
fn a_seat_in_two_confirmed_orders_is_oversold() {
    let mut s = healthy();
    s.orders.push(order("o3", OrderStatus::Confirmed, &["1-1"]));
    s.ledger.push(entry("o3", LedgerKind::Authorize));
    s.ledger.push(entry("o3", LedgerKind::Capture));
    let twice = oversold_seats(&s);
    assert_eq!(twice.len(), 1);
    assert!(twice.contains_key(&(EventId::from("e"), seat("1-1"))));
    assert!(failing(&s).contains(&"1-no-oversell".to_owned()));
}

#[test]
fn two_tickets_or_two_owners_for_one_seat_are_oversold() {
    let mut s = healthy();
    s.tickets.push(ticket("1-1", "o9"));
    assert!(failing(&s).contains(&"1-no-oversell".to_owned()));
    let mut s = healthy();
    s.events[0].owners = Some(vec![(seat("1-1"), "o1".into()), (seat("1-1"), "o9".into())]);
    assert!(failing(&s).contains(&"1-no-oversell".to_owned()));
}

#[test]
fn a_sold_seat_without_a_ticket_breaks_sold_equals_confirmed() {
    let mut s = healthy();
    s.tickets.clear();
    // The client was told CONFIRMED too, so client truth fails as well.
    assert!(failing(&s).contains(&"2-sold-seats-confirmed".to_owned()));
    s.told = None;
    only(&s, "2-sold-seats-confirmed");
}

#[test]
fn a_store_owner_other_than_the_ticket_breaks_sold_equals_confirmed() {
    let mut s = healthy();
    s.events[0].owners = Some(vec![(seat("1-1"), "o2".into())]);
    s.told = None;
    only(&s, "2-sold-seats-confirmed");
}

#[test]
fn more_sold_than_capacity_is_named() {
    let mut s = healthy();
    s.events[0].capacity = 0;
    let v = check(&s);
    assert!(
        v.iter()
            .any(|v| v.invariant == "2-sold-seats-confirmed"
                && v.detail.contains("1 seats sold of 0")),
        "{v:?}"
    );
}

#[test]
fn a_confirmed_order_without_capture_breaks_money() {
    let mut s = healthy();
    s.ledger
        .retain(|e| !(e.order_id.as_str() == "o1" && e.kind == LedgerKind::Capture));
    settle(&mut s);
    // o1's authorization is now also left open.
    only(&s, "3-money");
    assert_eq!(check(&s).len(), 2);
}

#[test]
fn a_capture_of_a_cancelled_order_breaks_money() {
    let mut s = healthy();
    s.ledger.push(entry("o2", LedgerKind::Capture));
    settle(&mut s);
    only(&s, "3-money");
}

#[test]
fn an_open_authorization_breaks_money() {
    let mut s = healthy();
    s.ledger.retain(|e| e.kind != LedgerKind::Void);
    only(&s, "3-money");
}

/// `healthy()` after the sale: o3 cancelled and REFUNDED (1-3 sold, then
/// returned), o4 REFUND_FAILED (1-4 still sold to it, its ticket void,
/// its capture owed back).
fn after_the_sale() -> Snapshot {
    let mut s = healthy();
    let e = &mut s.events[0];
    e.capacity = 4;
    e.seats.insert(seat("1-4"), SeatStatus::Sold);
    e.owners.as_mut().unwrap().push((seat("1-4"), "o4".into()));
    e.changes.as_mut().unwrap().extend([
        (seat("1-3"), SeatStatus::Held),
        (seat("1-3"), SeatStatus::Sold),
        (seat("1-3"), SeatStatus::Available),
        (seat("1-4"), SeatStatus::Held),
        (seat("1-4"), SeatStatus::Sold),
    ]);
    e.version = 8;
    s.streams[0].seats = e.seats.clone();
    s.streams[0].version = 8;
    s.orders.push(order("o3", OrderStatus::Refunded, &["1-3"]));
    s.orders
        .push(order("o4", OrderStatus::RefundFailed, &["1-4"]));
    for (o, kinds) in [
        (
            "o3",
            &[
                LedgerKind::Authorize,
                LedgerKind::Capture,
                LedgerKind::Refund,
            ][..],
        ),
        ("o4", &[LedgerKind::Authorize, LedgerKind::Capture][..]),
    ] {
        s.ledger.extend(kinds.iter().map(|k| entry(o, *k)));
    }
    settle(&mut s);
    s
}

#[test]
fn refunded_and_refund_owed_orders_pass_every_invariant() {
    let s = after_the_sale();
    assert_eq!(check(&s), Vec::new());
}

#[test]
fn a_second_refund_a_partial_one_or_one_of_a_confirmed_order_breaks_money() {
    let mut s = after_the_sale();
    s.ledger.push(entry("o3", LedgerKind::Refund));
    settle(&mut s);
    only(&s, "3-money");
    assert!(
        check(&s)[0].detail.contains("refunded 2 times"),
        "{:?}",
        check(&s)
    );
    let mut s = after_the_sale();
    s.ledger.last_mut().unwrap().kind = LedgerKind::Refund;
    s.ledger.last_mut().unwrap().amount_cents = 40;
    settle(&mut s);
    only(&s, "3-money");
    let mut s = after_the_sale();
    s.ledger.push(entry("o1", LedgerKind::Refund));
    settle(&mut s);
    only(&s, "3-money");
}

#[test]
fn a_valid_ticket_of_a_cancelled_order_or_its_seat_resold_unfenced_breaks_sold_equals_confirmed() {
    // The seat sold twice: returned before the tickets were voided.
    let mut s = after_the_sale();
    s.tickets.push(ticket("1-3", "o3"));
    only(&s, "2-sold-seats-confirmed");
    let mut s = after_the_sale();
    s.tickets.push(ticket("1-4", "o4"));
    only(&s, "2-sold-seats-confirmed");
    // 1-4 owned by another order while its first buyer is still owed.
    let mut s = after_the_sale();
    s.events[0].owners.as_mut().unwrap()[1].1 = "o9".into();
    only(&s, "2-sold-seats-confirmed");
}

#[test]
fn a_pending_order_an_unsent_outbox_and_a_lost_message_break_liveness() {
    let mut s = healthy();
    s.orders.push(order("o4", OrderStatus::Pending, &[]));
    only(&s, "4-liveness");
    let mut s = healthy();
    s.outbox.backlog = 2;
    only(&s, "4-liveness");
    let mut s = healthy();
    s.outbox.written = Some(vec![MessageId::from("m1"), MessageId::from("m2")]);
    only(&s, "4-liveness");
    let mut s = healthy();
    s.quiescence = Quiescence {
        reached: false,
        detail: "lag 3".into(),
    };
    only(&s, "4-liveness");
}

#[test]
fn a_hold_past_its_expiry_and_grace_breaks_liveness() {
    let mut s = healthy();
    s.now_ms = 2_500;
    only(&s, "4-liveness");
    s.hold_grace_ms = 1_000;
    assert_eq!(check(&s), Vec::new());
    s.events[0].holds = Some(Vec::new());
    only(&s, "4-liveness");
    // Holds not known to the harness: not judged.
    s.events[0].holds = None;
    assert_eq!(check(&s), Vec::new());
}

#[test]
fn one_key_two_orders_and_a_double_capture_break_idempotency() {
    let mut s = healthy();
    s.told.as_mut().unwrap().push(Told {
        client: "2".into(),
        what: ToldWhat::OrderAccepted {
            key: "k1".into(),
            order_id: "o2".into(),
        },
    });
    only(&s, "5-idempotency");
    let mut s = healthy();
    s.ledger.push(entry("o1", LedgerKind::Capture));
    settle(&mut s);
    only(&s, "5-idempotency");
}

#[test]
fn a_client_told_a_wrong_status_or_a_seat_it_does_not_own_breaks_client_truth() {
    let mut s = healthy();
    s.told
        .as_mut()
        .unwrap()
        .push(told_final("2", "o2", OrderStatus::Confirmed, &["1-3"]));
    let v = check(&s);
    assert!(v.iter().all(|v| v.invariant == "6-client-truth"), "{v:?}");
    // Wrong status, and no ticket for 1-3.
    assert_eq!(v.len(), 2, "{v:?}");
}

#[test]
fn two_clients_told_confirmed_for_one_seat_break_client_truth() {
    let mut s = healthy();
    // The second claim names an order that does not exist at all.
    s.told
        .as_mut()
        .unwrap()
        .push(told_final("2", "o7", OrderStatus::Confirmed, &["1-1"]));
    let v = check(&s);
    assert!(
        v.iter()
            .any(|v| v.detail.contains("clients 1 and 2 both told CONFIRMED")),
        "{v:?}"
    );
    only(&s, "6-client-truth");
}

#[test]
fn a_stale_stream_a_gap_or_a_wrong_seat_break_convergence() {
    let mut s = healthy();
    s.streams[0].version = 2;
    only(&s, "7-convergence");
    let mut s = healthy();
    s.streams[0].gaps = 1;
    only(&s, "7-convergence");
    let mut s = healthy();
    s.streams[0].seats.insert(seat("1-3"), SeatStatus::Held);
    only(&s, "7-convergence");
}

#[test]
fn a_change_log_that_does_not_replay_to_the_map_breaks_convergence() {
    let mut s = healthy();
    s.events[0].changes.as_mut().unwrap().pop();
    only(&s, "7-convergence");
}

/// Polls a future the in-memory adapters complete at once.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("in-memory adapter did not complete at once"),
    }
}

#[test]
fn reading_an_event_the_store_does_not_know_is_unreadable_not_empty() {
    use ticketing_mem::{MemOrderRepository, MemPaymentRepository, MemSeatStore};
    let (seats, orders, payments) = (
        MemSeatStore::new(16, 1_000),
        MemOrderRepository::new(),
        MemPaymentRepository::new(),
    );
    let stores = Stores {
        seats: &seats,
        orders: &orders,
        payments: &payments,
    };
    let s = ready(read_ports(stores, &[EventId::from("never-installed")]));
    let v = check(&s);
    assert!(
        v.iter()
            .any(|v| v.invariant == "0-truth-readable" && v.detail.contains("seat map")),
        "{v:?}"
    );
    // Installed, the same read is clean.
    ready(ticketing_domain::ports::SeatStore::create_event(
        &seats,
        &EventId::from("e"),
        &[(seat("1-1"), 100)],
    ))
    .unwrap();
    let mut s = ready(read_ports(stores, &[EventId::from("e")]));
    // Quiescence is the harness's to say; unsaid, it is not reached.
    assert_eq!(failing(&s), vec!["4-liveness".to_owned()]);
    s.quiescence.reached = true;
    assert_eq!(check(&s), Vec::new());
    assert_eq!(s.events[0].capacity, 1);
}

#[test]
fn a_part_a_harness_did_not_see_is_said_to_be_not_judged() {
    let mut s = healthy();
    s.told = None;
    s.streams.clear();
    s.events[0].changes = None;
    let v = judge(&s);
    let observed = |id: &str| {
        v.iter()
            .find(|x| x.invariant == id)
            .unwrap()
            .observed
            .clone()
    };
    assert!(observed("6-client-truth").starts_with("not judged"));
    assert!(observed("7-convergence").starts_with("not judged"));
    assert!(observed("5-idempotency").contains("no Idempotency-Key answers recorded"));
    s.settlements = None;
    let v = judge(&s);
    let settlement = v.iter().find(|x| x.invariant == "11-settlement").unwrap();
    assert!(settlement.observed.starts_with("not judged"));
    assert!(v.iter().all(Verdict::passed));
}

#[test]
fn an_entry_settled_twice_or_never_breaks_settlement() {
    let mut s = healthy();
    s.settlements.as_mut().unwrap().push(batch(2, &[2], 100, 0));
    only(&s, "11-settlement");
    let details: Vec<String> = check(&s).into_iter().map(|v| v.detail).collect();
    assert!(
        details[0].contains("Capture 2 of o1 settled 2 times (batches [1, 2])"),
        "{details:?}"
    );
    assert!(details[1].contains("settle 200 cents but the ledger's captures − refunds are 100"));
    let mut s = healthy();
    s.settlements = Some(Vec::new());
    only(&s, "11-settlement");
    assert!(
        check(&s)[0]
            .detail
            .contains("Capture 2 of o1 in no settlement batch")
    );
}

#[test]
fn a_batch_taking_what_it_may_not_or_misadding_breaks_settlement() {
    // An authorization moves no money: it is never settled.
    let mut s = healthy();
    s.settlements = Some(vec![batch(1, &[1, 2], 100, 0)]);
    only(&s, "11-settlement");
    assert!(check(&s)[0].detail.contains("takes Authorize 1 of e"));
    let mut s = healthy();
    s.settlements = Some(vec![batch(1, &[2], 100, 100)]);
    only(&s, "11-settlement");
    assert!(check(&s)[0].detail.contains("its entries come to 100 / 0"));
    let mut s = healthy();
    s.settlements = Some(vec![batch(1, &[2, 9], 100, 0)]);
    only(&s, "11-settlement");
    assert!(
        check(&s)[0]
            .detail
            .contains("takes entry 9, not in the ledger")
    );
}

#[test]
fn a_refund_is_settled_against_its_capture() {
    let mut s = healthy();
    s.orders[0].status = OrderStatus::Refunded;
    s.tickets.clear();
    s.events[0].seats.insert(seat("1-1"), SeatStatus::Available);
    s.events[0].owners = Some(Vec::new());
    s.events[0]
        .changes
        .as_mut()
        .unwrap()
        .push((seat("1-1"), SeatStatus::Available));
    s.events[0].version = 4;
    s.streams.clear();
    s.told = None;
    s.ledger.push(entry("o1", LedgerKind::Refund));
    s.ledger = numbered(std::mem::take(&mut s.ledger));
    s.settlements = Some(vec![batch(1, &[2], 100, 0), batch(2, &[5], 0, 100)]);
    assert_eq!(check(&s), Vec::new());
    let verdict = judge(&s)
        .into_iter()
        .find(|v| v.invariant == "11-settlement")
        .unwrap();
    assert_eq!(
        verdict.observed,
        "2 batches take each of 2 captures and refunds once (net 0 cents)"
    );
    // The refund left out: the batches still pay the organiser for o1.
    s.settlements = Some(vec![batch(1, &[2], 100, 0)]);
    only(&s, "11-settlement");
}

mod waiting_room {
    use crate::rules::check;
    use crate::snapshot::{QueueFact, Snapshot};
    use ticketing_domain::EventId;
    use ticketing_domain::queue::QueueLogEntry as L;

    fn joined(t: &str, at_ms: u64, prequeue: bool, seq: u64) -> L {
        L::Joined {
            ticket: t.into(),
            at_ms,
            prequeue,
            seq,
        }
    }
    fn admitted(t: &str, at_ms: u64) -> L {
        L::Admitted {
            ticket: t.into(),
            at_ms,
        }
    }
    fn step(at_ms: u64, active: u64) -> L {
        L::Step {
            at_ms,
            active,
            active_max: 2,
            admit_per_s: 2,
        }
    }

    fn judged(log: Vec<L>, positions: Vec<(String, Vec<u64>)>) -> Vec<String> {
        judged_with(log, positions, None)
    }

    fn judged_with(
        log: Vec<L>,
        positions: Vec<(String, Vec<u64>)>,
        undrained: Option<String>,
    ) -> Vec<String> {
        let s = Snapshot {
            queue: Some(QueueFact {
                event_id: EventId::from("e"),
                log,
                unadmitted_holds: Vec::new(),
                lost_places: Vec::new(),
                positions,
                undrained,
            }),
            ..Snapshot::default()
        };
        check(&s)
            .into_iter()
            .filter(|v| v.invariant == "8-waiting-room")
            .map(|v| v.detail)
            .collect()
    }

    fn fair_log() -> Vec<L> {
        vec![
            joined("p1", 10, true, 1),
            joined("p2", 20, true, 2),
            joined("f3", 1_000, false, 3),
            admitted("p2", 1_100),
            admitted("p1", 1_100),
            step(1_100, 2),
            L::Dropped {
                ticket: "p1".into(),
                at_ms: 1_500,
            },
            step(2_000, 1),
            admitted("f3", 2_100),
            step(2_100, 2),
        ]
    }

    #[test]
    fn a_fair_log_within_the_caps_passes() {
        assert_eq!(
            judged(fair_log(), vec![("v".into(), vec![3, 2, 2, 1])]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn over_a_cap_out_of_order_or_a_position_going_back_fails() {
        let mut log = fair_log();
        log.push(joined("f4", 2_200, false, 4));
        log.push(joined("f5", 2_300, false, 5));
        log.push(admitted("f5", 2_400)); // f4 still waits: out of order, third in second 2
        log.push(step(2_400, 3)); // over active_max
        log.push(admitted("f4", 2_450)); // the third in second 2
        let v = judged(log, vec![("v".into(), vec![3, 4])]);
        assert!(
            v.iter().any(|d| d.contains("f5") && d.contains("f4")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|d| d.contains("3 admissions in second 2")),
            "{v:?}"
        );
        assert!(v.iter().any(|d| d.contains("over active_max")), "{v:?}");
        assert!(v.iter().any(|d| d.contains("position 4 after 3")), "{v:?}");
    }

    #[test]
    fn a_room_that_does_not_drain_after_its_visitors_fell_silent_fails() {
        let left = "3 waiting and 2 active 17000 ms after the users were done".to_owned();
        let v = judged_with(fair_log(), Vec::new(), Some(left));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].contains("did not drain") && v[0].contains("3 waiting"),
            "{v:?}"
        );
    }

    #[test]
    fn a_place_admitted_twice_or_after_its_drop_fails() {
        let mut log = fair_log();
        // p2 admitted again; p1 (dropped at 1.5 s) admitted after its drop.
        log.push(admitted("p2", 2_200));
        log.push(admitted("p1", 2_300));
        let v = judged(log, Vec::new());
        assert!(
            v.iter().any(|d| d.contains("p2 was admitted 2 times")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|d| d.contains("p1 was admitted 2 times")),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|d| d.contains("p1 was admitted after its place was dropped")),
            "{v:?}"
        );
    }
}

mod customer_limits {
    use super::*;
    use crate::customers::{BoughtSeats, CustomerFact, GrantedHold, Holding, LimitsFact};

    const LIMITS: LimitsFact = LimitsFact {
        seats_per_event: 4,
        active_holds: 2,
    };

    fn granted(id: &str, customer: &str, seats: &[&str], from: u64, until: u64) -> GrantedHold {
        GrantedHold {
            client: format!("user-{id}"),
            customer: customer.into(),
            hold_id: id.into(),
            event_id: "e".into(),
            seat_ids: seats.iter().map(|s| SeatId::from(*s)).collect(),
            granted_at_ms: from,
            live_until_ms: until,
        }
    }

    fn with(granted: Vec<GrantedHold>, bought: Vec<BoughtSeats>) -> Snapshot {
        let mut s = healthy();
        s.customers = Some(CustomerFact {
            limits: LIMITS,
            store_breaches: Vec::new(),
            store_samples: 10,
            granted: Some(granted),
            bought: Some(bought),
        });
        s
    }

    #[test]
    fn holds_within_the_limits_or_one_after_another_pass() {
        // Four seats at once, then four more after the first hold ended.
        let s = with(
            vec![
                granted("h1", "c", &["1-1", "1-2"], 0, 100),
                granted("h2", "c", &["1-3", "1-4"], 10, 100),
                granted("h3", "c", &["2-1", "2-2", "2-3"], 100, 200),
                granted("h4", "d", &["3-1", "3-2", "3-3", "3-4"], 10, 100),
            ],
            Vec::new(),
        );
        assert_eq!(check(&s), Vec::new());
    }

    #[test]
    fn overlapping_grants_over_the_seat_limit_fail_with_the_holds() {
        let s = with(
            vec![
                granted("h1", "c", &["1-1", "1-2", "1-3"], 0, 100),
                granted("h2", "c", &["1-4", "1-5"], 50, 150),
            ],
            Vec::new(),
        );
        only(&s, "9-customer-limits");
        let d = &check(&s)[0].detail;
        assert!(
            d.contains("at 50") && d.contains("5 seats (limit 4)") && d.contains("h1 by user-h1"),
            "{d}"
        );
    }

    #[test]
    fn a_third_live_hold_fails_even_within_the_seats() {
        let s = with(
            vec![
                granted("h1", "c", &["1-1"], 0, 100),
                granted("h2", "c", &["1-2"], 0, 100),
                granted("h3", "c", &["1-3"], 20, 100),
            ],
            Vec::new(),
        );
        only(&s, "9-customer-limits");
        assert!(check(&s)[0].detail.contains("3 live holds (limit 2)"));
    }

    #[test]
    fn bought_seats_count_from_when_they_were_told() {
        let bought = BoughtSeats {
            client: "user-b".into(),
            customer: "c".into(),
            event_id: "e".into(),
            seat_ids: vec!["5-1".into(), "5-2".into(), "5-3".into()],
            told_at_ms: 100,
        };
        // Before the purchase was told, two held seats are fine.
        let early = with(
            vec![granted("h1", "c", &["1-1", "1-2"], 0, 90)],
            vec![bought.clone()],
        );
        assert_eq!(check(&early), Vec::new());
        let late = with(
            vec![granted("h1", "c", &["1-1", "1-2"], 150, 300)],
            vec![bought],
        );
        only(&late, "9-customer-limits");
    }

    #[test]
    fn the_store_reading_counts_distinct_seats_and_live_holds() {
        let h = |customer: &str, seats: &[&str], is_hold| Holding {
            customer: customer.into(),
            event_id: "e".into(),
            seat_ids: seats.iter().map(|s| SeatId::from(*s)).collect(),
            is_hold,
        };
        let fine = [
            h("c", &["1-1", "1-2"], true),
            h("c", &["1-3", "1-4"], false),
            h("d", &["2-1"], true),
        ];
        assert_eq!(store_breaches(7, &fine, LIMITS), Vec::<String>::new());
        let over = [
            h("c", &["1-1", "1-2", "1-3"], true),
            h("c", &["1-4", "1-5"], false),
        ];
        let b = store_breaches(7, &over, LIMITS);
        assert_eq!(b.len(), 1);
        assert!(
            b[0].contains("at 7") && b[0].contains("customer c 5 seats"),
            "{b:?}"
        );
        // A store breach is a violation of invariant 9.
        let mut s = with(Vec::new(), Vec::new());
        s.customers.as_mut().unwrap().store_breaches = b;
        only(&s, "9-customer-limits");
    }

    #[test]
    fn a_run_without_customers_is_not_judged() {
        let v = judge(&healthy());
        let nine = v
            .iter()
            .find(|v| v.invariant == "9-customer-limits")
            .unwrap();
        assert!(nine.passed() && nine.observed.starts_with("not judged"));
    }

    use crate::customers::store_breaches;
}

#[test]
fn a_client_told_confirmed_then_refunded_was_told_the_truth() {
    let mut s = after_the_sale();
    let told = s.told.as_mut().unwrap();
    told.push(told_final("3", "o3", OrderStatus::Confirmed, &["1-3"]));
    told.push(told_final("3", "o3", OrderStatus::Refunded, &["1-3"]));
    assert_eq!(check(&s), Vec::new());
    // CONFIRMED never followed by the cancellation's end: a stale answer.
    let mut stale = after_the_sale();
    let told = stale.told.as_mut().unwrap();
    told.push(told_final("3", "o3", OrderStatus::Confirmed, &["1-3"]));
    only(&stale, "6-client-truth");
    // CONFIRMED then FAILED is no cancellation: both answers are judged.
    let mut odd = after_the_sale();
    let told = odd.told.as_mut().unwrap();
    told.push(told_final("3", "o3", OrderStatus::Confirmed, &["1-3"]));
    told.push(told_final("3", "o3", OrderStatus::Failed, &["1-3"]));
    only(&odd, "6-client-truth");
    assert_eq!(check(&odd).len(), 3, "{:#?}", check(&odd));
}

#[test]
fn many_unsettled_entries_are_listed_up_to_a_bound_and_counted_in_all() {
    let mut s = healthy();
    // Twelve more captures (amounts 1..=12 cents), one settled twice and
    // the rest in no batch.
    for i in 0..12 {
        let mut e = entry(&format!("o{}", 10 + i), LedgerKind::Capture);
        e.amount_cents = i + 1;
        s.ledger.push(e);
    }
    s.ledger = numbered(std::mem::take(&mut s.ledger));
    s.settlements = Some(vec![batch(1, &[2, 5], 101, 0), batch(2, &[5], 1, 0)]);
    // (The orders are not in the snapshot: only invariant 11 is read here.)
    let verdict = judge(&s)
        .into_iter()
        .find(|v| v.invariant == "11-settlement")
        .unwrap();
    let details = verdict.violations;
    let listed = details.iter().filter(|d| d.contains(" of o")).count();
    assert_eq!(listed, 10, "{details:?}");
    assert!(
        details.contains(&"in all: 11 entries in no batch, 1 in more than one".to_owned()),
        "{details:?}"
    );
    // Settled: 100 + 1 (+1 again); owed: 100 + 1 + … + 12 = 178.
    assert!(
        details.contains(
            &"the batches settle 102 cents but the ledger's captures − refunds are 178".to_owned()
        ),
        "{details:?}"
    ); // Only lost entries: still counted in all.
    s.settlements = Some(vec![batch(1, &[2], 100, 0)]);
    let verdict = judge(&s)
        .into_iter()
        .find(|v| v.invariant == "11-settlement")
        .unwrap();
    let all = "in all: 12 entries in no batch, 0 in more than one".to_owned();
    assert!(
        verdict.violations.contains(&all),
        "{:?}",
        verdict.violations
    );
}
