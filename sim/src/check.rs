//! The checkers: the brief's invariants, verified after quiescence from
//! ground truth (seat store, tickets, orders, payment ledger, outbox, broker)
//! and from what users were told. They read state; they share no code with
//! the services they check.

use crate::users::Told;
use crate::world::{EVENT, Truth, expired_holds, sync};
use std::collections::{BTreeMap, BTreeSet};
use ticketing_domain::messages::{Envelope, topics};
use ticketing_domain::ports::{ChangesSince, OrderRepository, PaymentRepository, SeatStore};
use ticketing_domain::{EventId, LedgerKind, MessageId, OrderStatus, PaymentStatus, SeatStatus};

/// One broken invariant with the offending seat, order or message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Violation {
    pub invariant: String,
    pub detail: String,
}

/// The invariants, numbered as in the design brief.
pub const INVARIANTS: &[(&str, &str)] = &[
    (
        "0-truth-readable",
        "the checker could read every piece of ground truth (a failed read is never an empty set)",
    ),
    ("1-no-oversell", "each (event, seat) sold at most once"),
    (
        "2-sold-seats-confirmed",
        "every sold seat belongs to a CONFIRMED order with a captured payment",
    ),
    (
        "3-money",
        "captures match CONFIRMED orders one to one; every authorization ends captured or voided",
    ),
    (
        "4-liveness",
        "after healing every order is final, no hold outlives its expiry, the outbox drains into the broker",
    ),
    (
        "5-idempotency",
        "one Idempotency-Key, one order; one order, at most one capture",
    ),
    (
        "6-client-truth",
        "a client told CONFIRMED owns its seats; no two clients told CONFIRMED for one seat",
    ),
    (
        "7-convergence",
        "the seat map equals the replay of the change stream subscribers receive",
    ),
];

/// One read of ground truth: a failure is a violation (`0-truth-readable`),
/// so a store that cannot answer never looks like "nothing sold".
fn read<T: Default, E: std::fmt::Display>(
    r: Result<T, E>,
    what: &str,
    v: &mut Vec<Violation>,
) -> T {
    r.unwrap_or_else(|e| {
        v.push(Violation {
            invariant: "0-truth-readable".into(),
            detail: format!("could not read {what}: {e}"),
        });
        T::default()
    })
}

pub fn check(t: &Truth) -> Vec<Violation> {
    let mut v = Vec::new();
    let event = EventId::from(EVENT);
    let sold: BTreeMap<String, String> =
        read(sync(t.seats.sold_seats(&event)), "sold seats", &mut v)
            .into_iter()
            .map(|(s, o)| (s.0, o.0))
            .collect();
    let tickets = read(sync(t.orders.tickets()), "tickets", &mut v);
    let orders: BTreeMap<String, _> = read(sync(t.orders.orders()), "orders", &mut v)
        .into_iter()
        .map(|o| (o.order_id.0.clone(), o))
        .collect();
    let ledger = read(sync(t.payments.ledger()), "the payment ledger", &mut v);
    let backlog = read(
        sync(t.orders.outbox_backlog()),
        "the outbox backlog",
        &mut v,
    );
    let mut fail = |invariant: &str, detail: String| {
        v.push(Violation {
            invariant: invariant.to_owned(),
            detail,
        })
    };
    let status_of = |id: &str| orders.get(id).map(|o| o.saga.order_status());

    // 1. No oversell.
    let mut seat_owner: BTreeMap<&str, &str> = BTreeMap::new();
    for o in orders
        .values()
        .filter(|o| o.saga.order_status() == OrderStatus::Confirmed)
    {
        for s in &o.seat_ids {
            if let Some(prev) = seat_owner.insert(s.as_str(), o.order_id.as_str()) {
                fail(
                    "1-no-oversell",
                    format!("seat {s} is in CONFIRMED orders {prev} and {}", o.order_id),
                );
            }
        }
    }
    for tk in &tickets {
        match sold.get(tk.seat_id.as_str()) {
            Some(o) if *o == tk.order_id.0 => {}
            other => fail(
                "1-no-oversell",
                format!(
                    "ticket {} -> order {} but the seat store says {:?}",
                    tk.seat_id, tk.order_id, other
                ),
            ),
        }
    }

    // 2. Every sold seat belongs to a CONFIRMED, captured order.
    let payment_status = |order: &str| {
        sync(t.payments.get(&ticketing_domain::OrderId::from(order)))
            .ok()
            .flatten()
            .map(|p| p.status)
    };
    for (seat, order) in &sold {
        if status_of(order) != Some(OrderStatus::Confirmed) {
            fail(
                "2-sold-seats-confirmed",
                format!(
                    "seat {seat} sold to order {order} which is {:?}",
                    status_of(order)
                ),
            );
        } else if payment_status(order) != Some(PaymentStatus::Captured) {
            fail(
                "2-sold-seats-confirmed",
                format!(
                    "seat {seat} sold to order {order} whose payment is {:?}",
                    payment_status(order)
                ),
            );
        }
    }
    for o in orders
        .values()
        .filter(|o| o.saga.order_status() == OrderStatus::Confirmed)
    {
        for s in &o.seat_ids {
            if sold.get(s.as_str()) != Some(&o.order_id.0) {
                fail(
                    "2-sold-seats-confirmed",
                    format!(
                        "CONFIRMED order {} has seat {s} which the seat store gives to {:?}",
                        o.order_id,
                        sold.get(s.as_str())
                    ),
                );
            }
        }
    }

    // 3. Money.
    let mut captures: BTreeMap<&str, usize> = BTreeMap::new();
    let paid_ids: BTreeSet<&str> = ledger.iter().map(|e| e.order_id.as_str()).collect();
    for e in ledger.iter().filter(|e| e.kind == LedgerKind::Capture) {
        *captures.entry(e.order_id.as_str()).or_default() += 1;
    }
    for id in &paid_ids {
        let status = payment_status(id);
        match status {
            Some(PaymentStatus::Authorized) => {
                fail(
                    "3-money",
                    format!("authorization for {id} was never captured or voided"),
                );
            }
            Some(PaymentStatus::Captured) if status_of(id) != Some(OrderStatus::Confirmed) => {
                fail(
                    "3-money",
                    format!("payment {id} captured but the order is {:?}", status_of(id)),
                );
            }
            _ => {}
        }
    }
    for o in orders
        .values()
        .filter(|o| o.saga.order_status() == OrderStatus::Confirmed)
    {
        if payment_status(o.order_id.as_str()) != Some(PaymentStatus::Captured) {
            fail(
                "3-money",
                format!(
                    "CONFIRMED order {} has payment {:?}",
                    o.order_id,
                    payment_status(o.order_id.as_str())
                ),
            );
        }
    }

    // 4. Liveness.
    if !t.quiescent {
        let stuck: Vec<String> = orders
            .values()
            .filter(|o| !o.saga.is_done())
            .map(|o| format!("{} {:?}", o.order_id, o.saga))
            .take(5)
            .collect();
        fail(
            "4-liveness",
            format!(
                "not quiescent {} ms after healing: {} orders not final (e.g. {stuck:?}), outbox backlog {backlog}, lag reservation {} saga {}, expired holds {}",
                t.now_ms
                    .saturating_sub(crate::clock::EPOCH_MS + t.settled_at_ms),
                orders.values().filter(|o| !o.saga.is_done()).count(),
                t.bus.lag(topics::RESERVATION_COMMANDS, "reservation"),
                t.bus.lag(topics::ORDER_SAGA, "order-saga"),
                expired_holds(&t.seats, t.now_ms),
            ),
        );
    }
    let mut published: BTreeSet<MessageId> = BTreeSet::new();
    for topic in [topics::ORDER_SAGA, topics::RESERVATION_COMMANDS] {
        for p in t.bus.payloads(topic) {
            if let Ok(env) = Envelope::from_bytes(&p) {
                published.insert(env.message_id);
            }
        }
    }
    let lost: Vec<MessageId> = t
        .orders
        .outbox_written()
        .into_iter()
        .filter(|m| !published.contains(m))
        .collect();
    if !lost.is_empty() {
        fail(
            "4-liveness",
            format!(
                "{} outbox messages never reached the broker, e.g. {}",
                lost.len(),
                lost[0]
            ),
        );
    }

    // 5. Idempotency.
    let h = crate::lock(&t.history);
    let mut by_key: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for ob in &h.observations {
        if let Told::OrderAccepted { key, order_id } = &ob.told {
            by_key.entry(key).or_default().insert(order_id);
        }
    }
    for (key, ids) in by_key.iter().filter(|(_, ids)| ids.len() > 1) {
        fail(
            "5-idempotency",
            format!("key {key} answered with orders {ids:?}"),
        );
    }
    for (id, n) in captures.iter().filter(|(_, n)| **n > 1) {
        fail("5-idempotency", format!("order {id} captured {n} times"));
    }

    // 6. Client truth.
    let mut told_confirmed: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for ob in &h.observations {
        if let Told::OrderFinal {
            order_id,
            status,
            seats,
        } = &ob.told
        {
            let fin = status_of(order_id).map(|s| format!("{s:?}").to_uppercase());
            if fin.as_deref() != Some(status.as_str()) {
                fail(
                    "6-client-truth",
                    format!(
                        "user {} told {status} for {order_id}, which ended {fin:?}",
                        ob.user
                    ),
                );
            }
            if status == "CONFIRMED" {
                for s in seats {
                    if sold.get(s) != Some(order_id) {
                        fail(
                            "6-client-truth",
                            format!(
                                "user {} told CONFIRMED for seat {s} (order {order_id}) but it is sold to {:?}",
                                ob.user,
                                sold.get(s)
                            ),
                        );
                    }
                    if let Some((other, prev)) =
                        told_confirmed.insert(s.clone(), (ob.user, order_id.clone()))
                        && prev != *order_id
                    {
                        fail(
                            "6-client-truth",
                            format!(
                                "users {other} and {} both told CONFIRMED for seat {s}",
                                ob.user
                            ),
                        );
                    }
                }
            }
        }
    }
    drop(h);

    // 7. Convergence: every SSE watcher's view equals the seat map...
    if let Ok(map) = sync(t.seats.seat_map(&event)) {
        for (i, w) in t.watchers.iter().enumerate() {
            let view = crate::lock(w).clone();
            if view.version != map.version {
                fail(
                    "7-convergence",
                    format!(
                        "watcher {} is at version {} of {}",
                        i + 1,
                        view.version,
                        map.version
                    ),
                );
            }
            if view.gaps > 0 {
                fail(
                    "7-convergence",
                    format!("watcher {} saw {} version gaps", i + 1, view.gaps),
                );
            }
            for (seat, status) in &map.seats {
                let want = serde_json::to_value(status).ok();
                let got = view
                    .seats
                    .get(seat.as_str())
                    .map(|s| serde_json::Value::String(s.clone()));
                if got != want {
                    fail(
                        "7-convergence",
                        format!(
                            "watcher {} sees seat {seat} as {got:?}, truth {status:?}",
                            i + 1
                        ),
                    );
                    break;
                }
            }
        }
    }
    // ...and the change log, replayed from version 0, gives the seat map.
    let map = sync(t.seats.seat_map(&event));
    let changes = sync(t.seats.changes_since(&event, 0, usize::MAX));
    if let (Ok(map), Ok(ChangesSince::Changes(cs))) = (map, changes) {
        let mut replay: BTreeMap<_, SeatStatus> = map
            .seats
            .iter()
            .map(|(s, _)| (s.clone(), SeatStatus::Available))
            .collect();
        for c in cs {
            replay.insert(c.seat_id, c.status);
        }
        for (seat, status) in &map.seats {
            if replay.get(seat) != Some(status) {
                fail(
                    "7-convergence",
                    format!(
                        "seat {seat} is {status:?} but the stream says {:?}",
                        replay.get(seat)
                    ),
                );
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::History;
    use std::sync::{Arc, Mutex};
    use ticketing_domain::SeatId;
    use ticketing_mem::{MemEventBus, MemOrderRepository, MemPaymentRepository, MemSeatStore};

    /// A world after a run in which nobody bought anything.
    fn quiet_truth(seats: MemSeatStore) -> Truth {
        Truth {
            seats: Arc::new(seats),
            orders: Arc::new(MemOrderRepository::new()),
            payments: Arc::new(MemPaymentRepository::new()),
            bus: MemEventBus::new(1),
            history: Arc::new(Mutex::new(History::default())),
            watchers: Vec::new(),
            now_ms: crate::clock::EPOCH_MS,
            settled_at_ms: 0,
            quiescent: true,
        }
    }

    #[test]
    fn a_quiet_world_passes() {
        let seats = MemSeatStore::new(16, 1_000);
        let prices = vec![(SeatId::from("1-1"), 100)];
        sync(seats.create_event(&EventId::from(EVENT), &prices)).expect("event installed");
        assert_eq!(check(&quiet_truth(seats)), Vec::new());
    }

    #[test]
    fn a_failed_read_is_a_violation_not_an_empty_set() {
        // The simulated event was never installed: reading its sold seats fails.
        let v = check(&quiet_truth(MemSeatStore::new(16, 1_000)));
        assert!(
            v.iter()
                .any(|x| x.invariant == "0-truth-readable" && x.detail.contains("sold seats")),
            "{v:?}"
        );
    }
}
