//! The post-run audit: after the load stops and the system quiesces, read
//! the truth back and check the brief's invariants for the run's events.
//!
//! Truth comes from the internal listener (`GET /internal/audit/orders`:
//! orders, tickets, outbox backlog; `GET /internal/payments`: the payment
//! ledger) and the public seat maps; the harness adds its own client truth
//! (what each user was told). The checker is separate from the code it
//! checks: it only reads.

use crate::client::Api;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use ticketing_contract::{AuditView, OrderView, SeatMapView, TicketView};
use ticketing_domain::{LedgerEntry, LedgerKind, OrderStatus, SeatId, SeatStatus};

/// What the harness's users were told, and the run's events.
#[derive(Debug, Clone, Default)]
pub struct ClientTruth {
    /// (event id, seat count, created by this process).
    pub events: Vec<(String, u64, bool)>,
    /// Orders a client saw CONFIRMED: order id → (event, seats).
    pub confirmed: BTreeMap<String, (String, Vec<String>)>,
    /// Holds a client won: (event, seats, expires at as wall-clock ms).
    pub holds: Vec<(String, Vec<String>, u64)>,
    /// The rush event and how many holds this process won on it.
    pub rush: Option<(String, u64)>,
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
            .filter(|o| events.contains(o.event_id.as_str()) && o.status == OrderStatus::Pending)
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
    let mut maps = BTreeMap::new();
    for (event, _, _) in &truth.events {
        maps.insert(event.clone(), api.seat_map(event).await?);
    }
    let mut report = check(
        truth,
        &orders,
        &ledger,
        &maps,
        crate::client::wall_ms(),
        hold_grace,
    );
    report.quiesce_ms = quiesce_ms;
    report.quiesced = quiesced;
    Ok(report)
}

/// The invariants, on data already read (pure: tested with hand-made truths).
pub fn check(
    truth: &ClientTruth,
    orders: &AuditView,
    ledger: &[LedgerEntry],
    maps: &BTreeMap<String, SeatMapView>,
    now_wall_ms: u64,
    hold_grace: Duration,
) -> AuditReport {
    let events: BTreeSet<&str> = truth.events.iter().map(|(e, _, _)| e.as_str()).collect();
    let run_orders: Vec<&OrderView> = orders
        .orders
        .iter()
        .filter(|o| events.contains(o.event_id.as_str()))
        .collect();
    let run_order_ids: BTreeSet<&str> = run_orders.iter().map(|o| o.order_id.as_str()).collect();
    let confirmed: BTreeMap<&str, &OrderView> = run_orders
        .iter()
        .filter(|o| o.status == OrderStatus::Confirmed)
        .map(|o| (o.order_id.as_str(), *o))
        .collect();
    let tickets: Vec<&TicketView> = orders
        .tickets
        .iter()
        .filter(|t| events.contains(t.event_id.as_str()))
        .collect();
    let mut checks = Vec::new();
    let mut push = |name: &str, observed: String, passed: bool| {
        checks.push(AuditCheck {
            name: name.into(),
            observed,
            passed,
        })
    };

    // 1. No oversell: a seat in two tickets or two CONFIRMED orders.
    let mut ticket_count: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for t in &tickets {
        *ticket_count
            .entry((t.event_id.as_str(), t.seat_id.as_str()))
            .or_insert(0) += 1;
    }
    let mut confirmed_count: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for o in confirmed.values() {
        for s in &o.seat_ids {
            *confirmed_count
                .entry((o.event_id.as_str(), s.as_str()))
                .or_insert(0) += 1;
        }
    }
    let oversold_seats: BTreeSet<(&str, &str)> = ticket_count
        .iter()
        .chain(confirmed_count.iter())
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| *k)
        .collect();
    let oversold = oversold_seats.len() as u64;
    push(
        "no seat sold twice",
        format!("{oversold} seats in two tickets or two confirmed orders"),
        oversold == 0,
    );

    // 2. Sold <= capacity, and seat map SOLD = tickets = confirmed orders' seats.
    let mut sold_total = 0u64;
    let mut mismatches = Vec::new();
    for (event, capacity, _) in &truth.events {
        let sold: BTreeSet<&str> = maps
            .get(event)
            .map(|m| {
                m.seats
                    .iter()
                    .filter(|s| s.status == SeatStatus::Sold)
                    .map(|s| s.seat_id.as_str())
                    .collect()
            })
            .unwrap_or_default();
        sold_total += sold.len() as u64;
        if sold.len() as u64 > *capacity {
            mismatches.push(format!("{event}: {} sold > {capacity} seats", sold.len()));
        }
        let ticketed: BTreeSet<&str> = tickets
            .iter()
            .filter(|t| t.event_id.as_str() == event)
            .map(|t| t.seat_id.as_str())
            .collect();
        let ordered: BTreeSet<&str> = confirmed
            .values()
            .filter(|o| o.event_id.as_str() == event)
            .flat_map(|o| o.seat_ids.iter().map(SeatId::as_str))
            .collect();
        if sold != ticketed || ticketed != ordered {
            mismatches.push(format!(
                "{event}: {} sold in the seat map, {} tickets, {} seats in confirmed orders",
                sold.len(),
                ticketed.len(),
                ordered.len()
            ));
        }
    }
    push(
        "sold seats = tickets = confirmed orders' seats (<= capacity)",
        if mismatches.is_empty() {
            format!("{sold_total} sold seats agree")
        } else {
            mismatches.join("; ")
        },
        mismatches.is_empty(),
    );
    // Every ticket points at a CONFIRMED order of the same event.
    let stray = tickets
        .iter()
        .filter(|t| {
            confirmed
                .get(t.order_id.as_str())
                .is_none_or(|o| o.event_id != t.event_id || !o.seat_ids.contains(&t.seat_id))
        })
        .count();
    push(
        "every ticket belongs to a confirmed order",
        format!("{stray} tickets without one"),
        stray == 0,
    );

    // 3. Money.
    let mut kinds: BTreeMap<&str, Vec<LedgerKind>> = BTreeMap::new();
    for e in ledger {
        if run_order_ids.contains(e.order_id.as_str()) {
            kinds.entry(e.order_id.as_str()).or_default().push(e.kind);
        }
    }
    let count = |id: &str, kind: LedgerKind| {
        kinds
            .get(id)
            .map(|k| k.iter().filter(|x| **x == kind).count())
            .unwrap_or(0)
    };
    let uncaptured = confirmed
        .keys()
        .filter(|id| count(id, LedgerKind::Capture) != 1)
        .count();
    push(
        "every confirmed order captured exactly once",
        format!("{uncaptured} of {} confirmed orders not", confirmed.len()),
        uncaptured == 0,
    );
    let captured_unconfirmed = kinds
        .keys()
        .filter(|id| count(id, LedgerKind::Capture) > 0 && !confirmed.contains_key(*id))
        .count();
    push(
        "no capture without a confirmed order",
        format!("{captured_unconfirmed} captures"),
        captured_unconfirmed == 0,
    );
    let dangling = kinds
        .keys()
        .filter(|id| {
            count(id, LedgerKind::Authorize) > 0
                && count(id, LedgerKind::Capture) == 0
                && count(id, LedgerKind::Void) == 0
        })
        .count();
    push(
        "every authorization captured or voided",
        format!("{dangling} authorizations left open"),
        dangling == 0,
    );

    // 4. Liveness.
    let pending = run_orders
        .iter()
        .filter(|o| o.status == OrderStatus::Pending)
        .count();
    push(
        "no order stuck (none PENDING)",
        format!("{pending} of {} orders PENDING", run_orders.len()),
        pending == 0,
    );
    push(
        "outbox drained",
        format!("{} messages unsent", orders.outbox_backlog),
        orders.outbox_backlog == 0,
    );

    // 5. Client truth: told CONFIRMED → owns those seats.
    let mut wrong = Vec::new();
    for (order_id, (event, seats)) in &truth.confirmed {
        let owned = seats.iter().all(|s| {
            tickets.iter().any(|t| {
                t.event_id.as_str() == event
                    && t.seat_id.as_str() == s
                    && t.order_id.as_str() == order_id
            })
        });
        if !confirmed.contains_key(order_id.as_str()) || !owned {
            wrong.push(order_id.clone());
        }
    }
    push(
        "every client told CONFIRMED owns its seats",
        if wrong.is_empty() {
            format!("{} confirmations hold", truth.confirmed.len())
        } else {
            format!("{} do not: {}", wrong.len(), wrong.join(", "))
        },
        wrong.is_empty(),
    );

    // 6. No hold outlives its expiry (only where this process made every hold).
    let mut lingering = 0u64;
    let mut judged_events = 0;
    for (event, _, created_here) in &truth.events {
        if !*created_here {
            continue;
        }
        judged_events += 1;
        let Some(map) = maps.get(event) else { continue };
        for seat in map.seats.iter().filter(|s| s.status == SeatStatus::Held) {
            let covered = truth.holds.iter().any(|(e, seats, expires_ms)| {
                e == event
                    && seats.iter().any(|s| s == seat.seat_id.as_str())
                    && expires_ms + hold_grace.as_millis() as u64 > now_wall_ms
            });
            if !covered {
                lingering += 1;
            }
        }
    }
    if judged_events > 0 {
        push(
            "no hold outlives its expiry",
            format!("{lingering} HELD seats without a live hold"),
            lingering == 0,
        );
    }

    // 7. Rush: seats taken on the rush event = holds won.
    if let Some((event, won)) = &truth.rush {
        let created_here = truth.events.iter().any(|(e, _, c)| e == event && *c);
        if created_here && let Some(map) = maps.get(event) {
            let taken = map
                .seats
                .iter()
                .filter(|s| s.status == SeatStatus::Held || s.status == SeatStatus::Sold)
                .count() as u64;
            push(
                "rush: seats taken = holds won",
                format!("{taken} taken, {won} won"),
                taken == *won,
            );
        }
    }

    AuditReport {
        oversold,
        events: truth.events.iter().map(|(e, _, _)| e.clone()).collect(),
        orders: run_orders.len() as u64,
        confirmed: confirmed.len() as u64,
        sold_seats: sold_total,
        quiesce_ms: 0,
        quiesced: true,
        checks,
    }
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
    use ticketing_contract::SeatView;

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
            holds: vec![],
            rush: None,
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
    fn failing(r: &AuditReport) -> Vec<&str> {
        r.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect()
    }

    #[test]
    fn a_consistent_truth_passes() {
        let (o, l, m) = healthy();
        let r = check(&truth(), &o, &l, &m, 0, Duration::ZERO);
        assert!(r.passed(), "{:?}", failing(&r));
        assert_eq!((r.orders, r.confirmed, r.sold_seats), (2, 1, 1));
    }

    #[test]
    fn a_seat_in_two_confirmed_orders_is_oversold() {
        let (mut o, mut l, _) = healthy();
        o.orders.push(order("o3", "CONFIRMED", &["1-1"]));
        l.push(entry("o3", "AUTHORIZE"));
        l.push(entry("o3", "CAPTURE"));
        let m = map(&[("1-1", "SOLD")]);
        let r = check(&truth(), &o, &l, &m, 0, Duration::ZERO);
        assert_eq!(r.oversold, 1);
        assert!(failing(&r).contains(&"no seat sold twice"));
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
        let r = check(&t, &o, &l, &m, 0, Duration::ZERO);
        let f = failing(&r);
        for name in [
            "every confirmed order captured exactly once",
            "every authorization captured or voided",
            "no order stuck (none PENDING)",
            "outbox drained",
            "every client told CONFIRMED owns its seats",
        ] {
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
        let r = check(&t, &o, &l, &m, 1_500, Duration::from_secs(1));
        assert_eq!(
            failing(&r),
            vec!["sold seats = tickets = confirmed orders' seats (<= capacity)"]
        );
        let r = check(&t, &o, &l, &m, 5_000, Duration::from_secs(1));
        assert!(failing(&r).contains(&"no hold outlives its expiry"));
    }
}
