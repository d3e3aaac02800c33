//! The post-run audit: after the load stops and the system quiesces, read
//! the truth back and check the brief's invariants for the run's events.
//!
//! Truth comes from the internal listener (`GET /internal/audit/orders`:
//! orders, tickets, outbox backlog; `GET /internal/payments`: the payment
//! ledger) and the public seat maps; the harness adds its own client truth
//! (what each user was told). The invariants themselves are
//! `ticketing-invariants`, shared with the simulator and the stack test:
//! this module only builds their snapshot and reports their verdicts. The
//! checker is separate from the code it checks: it only reads.

use crate::client::Api;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use ticketing_contract::{AuditView, SeatMapView};
use ticketing_domain::{
    EventId, LedgerEntry, LedgerKind, OrderId, OrderStatus, SeatId, SeatStatus, SettlementBatch,
    Ticket,
};
use ticketing_invariants::{EventFact, HoldFact, OrderFact, Quiescence, Snapshot, Told, ToldWhat};

/// What the harness's users were told, and the run's events.
#[derive(Debug, Clone, Default)]
pub struct ClientTruth {
    /// (event id, seat count, created by this process).
    pub events: Vec<(String, u64, bool)>,
    /// Orders a client saw CONFIRMED: order id → (event, seats).
    pub confirmed: BTreeMap<String, (String, Vec<String>)>,
    /// Orders a client cancelled and then saw REFUNDED (or
    /// REFUND_FAILED): order id → (event, seats, status).
    pub after_sale: BTreeMap<String, (String, Vec<String>, OrderStatus)>,
    /// Holds a client won: (event, seats, expires at as wall-clock ms).
    pub holds: Vec<(String, Vec<String>, u64)>,
    /// The rush event and how many holds this process won on it.
    pub rush: Option<(String, u64)>,
    /// What the customers were told (runs with customer tokens; `None`:
    /// anonymous, invariant 9 not judged).
    pub customers: Option<crate::customers::CustomerHistory>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditCheck {
    pub name: String,
    pub observed: String,
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Seats sold more than once (tickets or CONFIRMED orders), over the run's events.
    pub oversold: u64,
    pub events: Vec<String>,
    pub orders: u64,
    pub confirmed: u64,
    pub sold_seats: u64,
    /// How long the system took to quiesce (no PENDING order, outbox empty).
    pub quiesce_ms: u64,
    pub quiesced: bool,
    pub checks: Vec<AuditCheck>,
    /// The run's money: sales, refunds and settlement.
    #[serde(default)]
    pub money: MoneyFigures,
}

/// The run's events' money as the ledger and the settlement batches tell it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyFigures {
    pub captured_cents: i64,
    pub refunded_cents: i64,
    /// Settlement batches of the run's events, and what they pay out;
    /// `None`: the target has no settlement routes.
    pub batches: Option<u64>,
    pub settled_net_cents: i64,
}

impl MoneyFigures {
    fn of(s: &Snapshot) -> MoneyFigures {
        let sum = |kind| -> i64 {
            s.ledger
                .iter()
                .filter(|e| e.kind == kind)
                .map(|e| e.amount_cents)
                .sum()
        };
        let batches = s.settlements.as_deref().unwrap_or_default();
        MoneyFigures {
            captured_cents: sum(LedgerKind::Capture),
            refunded_cents: sum(LedgerKind::Refund),
            batches: s.settlements.as_ref().map(|b| b.len() as u64),
            settled_net_cents: batches.iter().map(SettlementBatch::net_cents).sum(),
        }
    }
}

impl AuditReport {
    pub fn passed(&self) -> bool {
        self.oversold == 0 && self.checks.iter().all(|c| c.passed)
    }
}

/// Waits for quiescence (bounded), then reads the truth and checks it.
pub async fn run(
    api: &Api,
    truth: &ClientTruth,
    quiesce_timeout: Duration,
    hold_grace: Duration,
) -> anyhow::Result<AuditReport> {
    let events: BTreeSet<&str> = truth.events.iter().map(|(e, _, _)| e.as_str()).collect();
    let started = tokio::time::Instant::now();
    let mut orders;
    let mut quiesced = false;
    loop {
        orders = api.audit_orders().await?;
        let pending = orders
            .orders
            .iter()
            .filter(|o| events.contains(o.event_id.as_str()) && !o.status.is_terminal())
            .count();
        if pending == 0 && orders.outbox_backlog == 0 {
            quiesced = true;
            break;
        }
        if started.elapsed() >= quiesce_timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let quiesce_ms = started.elapsed().as_millis() as u64;
    let ledger = api.ledger().await?;
    let settlements = api.settle_and_read().await?;
    let mut maps = BTreeMap::new();
    for (event, _, _) in &truth.events {
        maps.insert(event.clone(), api.seat_map(event).await?);
    }
    let mut report = check(
        truth,
        &orders,
        Money {
            ledger: &ledger,
            settlements: settlements.as_deref(),
        },
        &maps,
        crate::client::wall_ms(),
        hold_grace,
    );
    report.quiesce_ms = quiesce_ms;
    report.quiesced = quiesced;
    Ok(report)
}

/// The payment side of the truth: the ledger, and the settlement batches
/// (`None`: the target has no settlement routes).
#[derive(Debug, Clone, Copy)]
pub struct Money<'a> {
    pub ledger: &'a [LedgerEntry],
    pub settlements: Option<&'a [SettlementBatch]>,
}

/// The invariants (`ticketing-invariants`) on data already read, plus the
/// rush scenario's own count (pure: tested with hand-made truths).
pub fn check(
    truth: &ClientTruth,
    orders: &AuditView,
    money: Money<'_>,
    maps: &BTreeMap<String, SeatMapView>,
    now_wall_ms: u64,
    hold_grace: Duration,
) -> AuditReport {
    let snap = snapshot(truth, orders, money, maps, now_wall_ms, hold_grace);
    let mut checks: Vec<AuditCheck> = ticketing_invariants::judge(&snap)
        .into_iter()
        .map(|v| AuditCheck {
            name: format!("{}: {}", v.invariant, v.summary),
            passed: v.passed(),
            observed: if v.passed() {
                v.observed
            } else {
                let shown: Vec<&str> = v.violations.iter().take(5).map(String::as_str).collect();
                format!("{} breaches: {}", v.violations.len(), shown.join("; "))
            },
        })
        .collect();
    checks.extend(rush_check(truth, maps, now_wall_ms, hold_grace));
    AuditReport {
        oversold: ticketing_invariants::oversold_seats(&snap).len() as u64,
        events: truth.events.iter().map(|(e, _, _)| e.clone()).collect(),
        orders: snap.orders.len() as u64,
        confirmed: snap.confirmed().count() as u64,
        sold_seats: snap
            .events
            .iter()
            .flat_map(|e| e.seats.values())
            .filter(|s| **s == SeatStatus::Sold)
            .count() as u64,
        quiesce_ms: 0,
        quiesced: true,
        checks,
        money: MoneyFigures::of(&snap),
    }
}

/// Ground truth of the run's events as the invariants read it. Holds are
/// judged only on events this process created (it made every hold there);
/// client truth is what the harness's users saw CONFIRMED. Quiescence is
/// judged by [`run`] (it waited for it): here it is taken as reached.
pub fn snapshot(
    truth: &ClientTruth,
    orders: &AuditView,
    money: Money<'_>,
    maps: &BTreeMap<String, SeatMapView>,
    now_wall_ms: u64,
    hold_grace: Duration,
) -> Snapshot {
    let events: BTreeSet<&str> = truth.events.iter().map(|(e, _, _)| e.as_str()).collect();
    let mut s = Snapshot {
        now_ms: now_wall_ms,
        hold_grace_ms: hold_grace.as_millis() as u64,
        quiescence: Quiescence {
            reached: true,
            detail: String::new(),
        },
        ..Snapshot::default()
    };
    for (event, capacity, created_here) in &truth.events {
        let mut fact = EventFact::new(EventId::from(event.as_str()));
        fact.capacity = *capacity;
        match maps.get(event) {
            Some(m) => {
                fact.version = m.version;
                fact.seats = m
                    .seats
                    .iter()
                    .map(|v| (v.seat_id.clone(), v.status))
                    .collect();
            }
            None => s
                .unreadable
                .push(format!("could not read the seat map of {event}")),
        }
        fact.holds = created_here.then(|| {
            truth
                .holds
                .iter()
                .filter(|(e, _, _)| e == event)
                .map(|(_, seats, expires_ms)| HoldFact {
                    seat_ids: seats.iter().map(|x| SeatId::from(x.as_str())).collect(),
                    expires_at_ms: *expires_ms,
                })
                .collect()
        });
        s.events.push(fact);
    }
    s.orders = orders
        .orders
        .iter()
        .filter(|o| events.contains(o.event_id.as_str()))
        .map(|o| OrderFact {
            order_id: o.order_id.clone(),
            event_id: o.event_id.clone(),
            seat_ids: o.seat_ids.clone(),
            status: o.status,
            progress: format!("{:?} since {}", o.status, o.updated_at),
        })
        .collect();
    let run_orders: BTreeSet<&OrderId> = s.orders.iter().map(|o| &o.order_id).collect();
    s.ledger = money
        .ledger
        .iter()
        .filter(|e| run_orders.contains(&e.order_id))
        .cloned()
        .collect();
    s.settlements = money.settlements.map(|batches| {
        let events: BTreeSet<&EventId> = s.ledger.iter().map(|e| &e.event_id).collect();
        batches
            .iter()
            .filter(|b| events.contains(&b.event_id))
            .cloned()
            .collect()
    });
    s.tickets = orders
        .tickets
        .iter()
        .filter(|t| events.contains(t.event_id.as_str()))
        .map(|t| Ticket {
            event_id: t.event_id.clone(),
            seat_id: t.seat_id.clone(),
            order_id: t.order_id.clone(),
        })
        .collect();
    s.outbox.backlog = orders.outbox_backlog as u64;
    s.told = Some(told(truth));
    let run_events: Vec<&str> = events.iter().copied().collect();
    s.customers = truth
        .customers
        .as_ref()
        .map(|h| h.fact(&run_events, orders, now_wall_ms, s.hold_grace_ms));
    s
}

/// The final answers the harness's users saw: CONFIRMED, or after their
/// own cancellation REFUNDED / REFUND_FAILED.
fn told(truth: &ClientTruth) -> Vec<Told> {
    let confirmed = truth
        .confirmed
        .iter()
        .map(|(o, (e, seats))| (o, e, seats, OrderStatus::Confirmed));
    let after = truth
        .after_sale
        .iter()
        .map(|(o, (e, seats, status))| (o, e, seats, *status));
    confirmed
        .chain(after)
        .map(|(order_id, event, seats, status)| Told {
            client: "a load user".to_owned(),
            what: ToldWhat::OrderFinal {
                order_id: OrderId::from(order_id.as_str()),
                event_id: EventId::from(event.as_str()),
                status,
                seat_ids: seats.iter().map(|x| SeatId::from(x.as_str())).collect(),
            },
        })
        .collect()
}

/// The rush scenario's own count, not a brief invariant: on a rush event
/// this process created, the seats taken (HELD or SOLD) equal the holds
/// its users won. A run longer than the rush's hold lifetime (a soak) sees
/// some of them expire first: then the seats taken lie between the holds
/// still surely live (expiry past now + `hold_grace`) and the holds won.
fn rush_check(
    truth: &ClientTruth,
    maps: &BTreeMap<String, SeatMapView>,
    now_wall_ms: u64,
    hold_grace: Duration,
) -> Option<AuditCheck> {
    let (event, won) = truth.rush.as_ref()?;
    let created_here = truth.events.iter().any(|(e, _, c)| e == event && *c);
    let map = maps.get(event).filter(|_| created_here)?;
    let taken = map
        .seats
        .iter()
        .filter(|s| s.status == SeatStatus::Held || s.status == SeatStatus::Sold)
        .count() as u64;
    let sure_after = now_wall_ms + hold_grace.as_millis() as u64;
    let gone = truth
        .holds
        .iter()
        .filter(|(e, _, expires)| e == event && *expires <= sure_after)
        .count() as u64;
    let live = won.saturating_sub(gone);
    let observed = if gone == 0 {
        format!("{taken} taken, {won} won")
    } else {
        format!(
            "{taken} taken, {won} won, {gone} of them expired (or about to) by the audit: \
             {live}..={won} expected"
        )
    };
    Some(AuditCheck {
        name: "rush: seats taken = holds won".into(),
        observed,
        passed: (live..=*won).contains(&taken),
    })
}

/// Several processes' audits as one: oversell is the worst seen, and every
/// check of every part is kept (prefixed by its part when there are several).
pub fn merge_reports<'a>(
    parts: impl Iterator<Item = Option<&'a AuditReport>>,
) -> Option<AuditReport> {
    let parts: Vec<&AuditReport> = parts.flatten().collect();
    let first = *parts.first()?;
    if parts.len() == 1 {
        return Some(first.clone());
    }
    let mut out = first.clone();
    out.oversold = parts.iter().map(|p| p.oversold).max().unwrap_or(0);
    out.quiesced = parts.iter().all(|p| p.quiesced);
    out.quiesce_ms = parts.iter().map(|p| p.quiesce_ms).max().unwrap_or(0);
    out.checks = parts
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            p.checks.iter().map(move |c| AuditCheck {
                name: format!("part {}: {}", i + 1, c.name),
                ..c.clone()
            })
        })
        .collect();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_contract::{OrderView, SeatView, TicketView};
    use ticketing_domain::LedgerKind;

    /// A status, kind or seat state by its wire name ("CONFIRMED", "VOID", "SOLD").
    fn wire<T: serde::de::DeserializeOwned>(name: &str) -> T {
        serde_json::from_value(serde_json::Value::from(name)).unwrap()
    }
    fn order(id: &str, status: &str, seats: &[&str]) -> OrderView {
        OrderView {
            order_id: id.into(),
            status: wire(status),
            reason: None,
            hold_id: format!("h_{id}").as_str().into(),
            event_id: "e".into(),
            seat_ids: seats.iter().map(|s| SeatId::from(*s)).collect(),
            amount_cents: 100,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }
    fn ticket(seat: &str, order: &str) -> TicketView {
        TicketView {
            event_id: "e".into(),
            seat_id: seat.into(),
            order_id: order.into(),
        }
    }
    fn entry(order: &str, kind: &str) -> LedgerEntry {
        LedgerEntry {
            seq: 0,
            order_id: order.into(),
            event_id: "e".into(),
            kind: wire(kind),
            amount_cents: 100,
            at_ms: 0,
        }
    }
    fn map(states: &[(&str, &str)]) -> BTreeMap<String, SeatMapView> {
        let seats = states
            .iter()
            .map(|(s, st)| SeatView {
                seat_id: SeatId::from(*s),
                row: 1,
                col: 1,
                price: 100,
                status: wire(st),
            })
            .collect();
        BTreeMap::from([("e".to_string(), SeatMapView { version: 1, seats })])
    }
    fn truth() -> ClientTruth {
        ClientTruth {
            events: vec![("e".into(), 3, true)],
            confirmed: BTreeMap::from([("o1".into(), ("e".into(), vec!["1-1".into()]))]),
            after_sale: BTreeMap::new(),
            holds: vec![],
            rush: None,
            customers: None,
        }
    }
    fn healthy() -> (AuditView, Vec<LedgerEntry>, BTreeMap<String, SeatMapView>) {
        (
            AuditView {
                orders: vec![
                    order("o1", "CONFIRMED", &["1-1"]),
                    order("o2", "CANCELLED", &["1-2"]),
                ],
                tickets: vec![ticket("1-1", "o1")],
                outbox_backlog: 0,
                order_customers: BTreeMap::new(),
            },
            vec![
                entry("o1", "AUTHORIZE"),
                entry("o1", "CAPTURE"),
                entry("o2", "AUTHORIZE"),
                entry("o2", "VOID"),
            ],
            map(&[("1-1", "SOLD"), ("1-2", "AVAILABLE"), ("1-3", "AVAILABLE")]),
        )
    }
    /// A ledger from a target without settlement routes.
    fn money(l: &[LedgerEntry]) -> Money<'_> {
        Money {
            ledger: l,
            settlements: None,
        }
    }

    /// The failing checks by invariant id (or the rush check's name).
    fn failing(r: &AuditReport) -> Vec<&str> {
        r.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.split(':').next().unwrap_or_default())
            .collect()
    }

    #[test]
    fn a_consistent_truth_passes() {
        let (o, l, m) = healthy();
        let r = check(&truth(), &o, money(&l), &m, 0, Duration::ZERO);
        assert!(r.passed(), "{:?}", failing(&r));
        assert_eq!((r.orders, r.confirmed, r.sold_seats), (2, 1, 1));
    }

    #[test]
    fn settlement_batches_are_judged_against_the_runs_ledger() {
        let (o, mut l, m) = healthy();
        for (i, e) in l.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        let capture = l
            .iter()
            .find(|e| e.kind == LedgerKind::Capture)
            .map(|e| e.seq);
        let batch = |id, event: &str| SettlementBatch {
            batch_id: id,
            event_id: event.into(),
            closed_at_ms: 0,
            entry_seqs: capture.into_iter().collect(),
            captured_cents: 100,
            refunded_cents: 0,
        };
        // Another event's batch is not this run's business.
        let once = [batch(1, "e"), batch(2, "other")];
        let settled = |b| Money {
            ledger: &l,
            settlements: Some(b),
        };
        let r = check(&truth(), &o, settled(&once), &m, 0, Duration::ZERO);
        assert!(r.passed(), "{:?}", failing(&r));
        let twice = [batch(1, "e"), batch(2, "e")];
        let r = check(&truth(), &o, settled(&twice), &m, 0, Duration::ZERO);
        assert_eq!(failing(&r), ["11-settlement"]);
    }

    #[test]
    fn a_seat_in_two_confirmed_orders_is_oversold() {
        let (mut o, mut l, _) = healthy();
        o.orders.push(order("o3", "CONFIRMED", &["1-1"]));
        l.push(entry("o3", "AUTHORIZE"));
        l.push(entry("o3", "CAPTURE"));
        let m = map(&[("1-1", "SOLD")]);
        let r = check(&truth(), &o, money(&l), &m, 0, Duration::ZERO);
        assert_eq!(r.oversold, 1);
        assert!(failing(&r).contains(&"1-no-oversell"));
    }

    #[test]
    fn money_liveness_and_client_truth_breaches_are_named() {
        let (mut o, mut l, m) = healthy();
        l.retain(|e| !(e.order_id.as_str() == "o2" && e.kind == LedgerKind::Void));
        l.retain(|e| !(e.order_id.as_str() == "o1" && e.kind == LedgerKind::Capture));
        o.orders.push(order("o4", "PENDING", &["1-3"]));
        o.outbox_backlog = 2;
        let mut t = truth();
        t.confirmed
            .insert("o2".into(), ("e".into(), vec!["1-2".into()]));
        let r = check(&t, &o, money(&l), &m, 0, Duration::ZERO);
        let f = failing(&r);
        for name in ["3-money", "4-liveness", "6-client-truth"] {
            assert!(f.contains(&name), "{name} not failed: {f:?}");
        }
    }

    #[test]
    fn a_sold_seat_without_a_ticket_and_a_lingering_hold_fail() {
        let (o, l, _) = healthy();
        let m = map(&[("1-1", "SOLD"), ("1-2", "SOLD"), ("1-3", "HELD")]);
        let mut t = truth();
        t.holds.push(("e".into(), vec!["1-3".into()], 1_000));
        // The hold expired at 1,000; at 1,500 with 1 s grace it is still covered.
        let r = check(&t, &o, money(&l), &m, 1_500, Duration::from_secs(1));
        assert_eq!(failing(&r), vec!["2-sold-seats-confirmed"]);
        let r = check(&t, &o, money(&l), &m, 5_000, Duration::from_secs(1));
        assert!(failing(&r).contains(&"4-liveness"));
    }

    #[test]
    fn other_events_are_left_out_and_holds_judged_only_where_this_process_made_them() {
        let (mut o, l, _) = healthy();
        let mut stranger = order("x1", "PENDING", &["9-9"]);
        stranger.event_id = "someone-elses".into();
        o.orders.push(stranger);
        let m = map(&[("1-1", "SOLD"), ("1-2", "HELD"), ("1-3", "AVAILABLE")]);
        let mut t = truth();
        let r = check(&t, &o, money(&l), &m, 0, Duration::ZERO);
        assert_eq!(
            failing(&r),
            vec!["4-liveness"],
            "a HELD seat without a hold"
        );
        assert_eq!(r.orders, 2, "the other event's order is not the run's");
        t.events[0].2 = false;
        let r = check(&t, &o, money(&l), &m, 0, Duration::ZERO);
        assert!(r.passed(), "{:?}", failing(&r));
    }

    #[test]
    fn the_rush_count_compares_seats_taken_with_holds_won() {
        let (o, l, m) = healthy();
        let mut t = truth();
        t.rush = Some(("e".into(), 1));
        assert!(check(&t, &o, money(&l), &m, 0, Duration::ZERO).passed());
        t.rush = Some(("e".into(), 2));
        let r = check(&t, &o, money(&l), &m, 0, Duration::ZERO);
        assert_eq!(failing(&r), vec!["rush"]);
    }

    #[test]
    fn rush_holds_that_expired_before_the_audit_are_not_counted_as_taken() {
        let (o, l, m) = healthy();
        // Two rush holds won on e, one seat taken (1-1): one hold expired
        // at 1,000, the other lives to 9,000.
        let mut t = truth();
        t.rush = Some(("e".into(), 2));
        t.holds = vec![
            ("e".into(), vec!["1-2".into()], 1_000),
            ("e".into(), vec!["1-3".into()], 9_000),
        ];
        // At 5,000 one seat taken is right.
        let at = |now| {
            rush_row(&check(
                &t,
                &o,
                money(&l),
                &m,
                now,
                Duration::from_millis(500),
            ))
        };
        let row = at(5_000);
        assert!(row.passed, "{row:?}");
        assert!(row.observed.contains("1 of them expired"), "{row:?}");
        // Before either expired, one seat taken for two holds is a loss.
        assert!(!at(100).passed);
    }

    fn rush_row(r: &AuditReport) -> AuditCheck {
        r.checks
            .iter()
            .find(|c| c.name.starts_with("rush"))
            .unwrap()
            .clone()
    }
}
