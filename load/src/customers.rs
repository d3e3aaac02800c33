//! What the load's customers were told, for invariant 9 (the per-customer
//! limits): every hold a customer was granted, extended and ended, and
//! every purchase it was told CONFIRMED, with wall-clock times; and the
//! store side of the check, read from the order service's audit (each
//! CONFIRMED order's seats, by the order's customer).
//!
//! The judging is `ticketing_invariants::customers`, shared with the
//! simulator: this module only records and converts. A hold counts as
//! live from the answer that granted it to the first of its known expiry
//! (less the audit's hold grace, which also covers clock skew between the
//! harness and a remote target) and the request that ended it (release or
//! order): an under-approximation, so a correct system is never flagged.
//!
//! Layer: imports `ticketing-invariants` and `ticketing-contract` only.

use std::collections::BTreeMap;
use ticketing_contract::AuditView;
use ticketing_domain::{EventId, OrderStatus, SeatId};
use ticketing_invariants::{BoughtSeats, CustomerFact, GrantedHold, Holding, LimitsFact};

/// Holds and purchases kept at most (a bound on the harness's memory; a
/// run past it stops recording and says so).
pub const RECORDS_MAX: usize = 1_000_000;

/// One granted hold as the harness saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    client: String,
    customer: String,
    event_id: String,
    seat_ids: Vec<String>,
    granted_at_ms: u64,
    expires_at_ms: u64,
    ended_at_ms: Option<u64>,
}

/// The customers' side of a run: the target's limits and what clients
/// were told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerHistory {
    pub limits: LimitsFact,
    grants: BTreeMap<String, Grant>,
    bought: Vec<BoughtSeats>,
    /// Records not kept once [`RECORDS_MAX`] was reached.
    pub dropped: u64,
    /// The run's scenario records what clients were told (the onsale
    /// does); else only the store's side is judged.
    pub recording: bool,
}

impl CustomerHistory {
    pub fn new(limits: LimitsFact) -> CustomerHistory {
        CustomerHistory {
            limits,
            recording: true,
            ..CustomerHistory::default()
        }
    }

    fn full(&mut self) -> bool {
        let full = self.grants.len() + self.bought.len() >= RECORDS_MAX;
        self.dropped += u64::from(full);
        full
    }

    /// `client` was granted hold `hold_id` for `customer` at `now_ms`.
    #[allow(clippy::too_many_arguments)]
    pub fn granted(
        &mut self,
        client: &str,
        customer: &str,
        hold_id: &str,
        event_id: &str,
        seat_ids: &[String],
        expires_at_ms: u64,
        now_ms: u64,
    ) {
        if self.full() {
            return;
        }
        self.grants.insert(
            hold_id.to_owned(),
            Grant {
                client: client.to_owned(),
                customer: customer.to_owned(),
                event_id: event_id.to_owned(),
                seat_ids: seat_ids.to_vec(),
                granted_at_ms: now_ms,
                expires_at_ms,
                ended_at_ms: None,
            },
        );
    }

    /// An extension answered with a new expiry.
    pub fn extended(&mut self, hold_id: &str, expires_at_ms: u64) {
        if let Some(g) = self.grants.get_mut(hold_id) {
            g.expires_at_ms = g.expires_at_ms.max(expires_at_ms);
        }
    }

    /// A request that ends the hold (release, order) was sent at `now_ms`.
    pub fn ended(&mut self, hold_id: &str, now_ms: u64) {
        if let Some(g) = self.grants.get_mut(hold_id) {
            g.ended_at_ms.get_or_insert(now_ms);
        }
    }

    /// `client` was told `customer` bought `seat_ids` (CONFIRMED) at `now_ms`.
    pub fn bought(
        &mut self,
        client: &str,
        customer: &str,
        event_id: &str,
        seat_ids: &[String],
        now_ms: u64,
    ) {
        if self.full() {
            return;
        }
        self.bought.push(BoughtSeats {
            client: client.to_owned(),
            customer: customer.to_owned(),
            event_id: EventId::from(event_id),
            seat_ids: ids(seat_ids),
            told_at_ms: now_ms,
        });
    }

    /// Invariant 9's fact: the history over the run's `events`, and the
    /// store's truth at `now_ms` from the order service's audit.
    pub fn fact(
        &self,
        events: &[&str],
        orders: &AuditView,
        now_ms: u64,
        hold_grace_ms: u64,
    ) -> CustomerFact {
        let granted = self
            .grants
            .iter()
            .filter(|(_, g)| events.contains(&g.event_id.as_str()))
            .map(|(id, g)| GrantedHold {
                client: g.client.clone(),
                customer: g.customer.clone(),
                hold_id: id.clone(),
                event_id: EventId::from(g.event_id.as_str()),
                seat_ids: ids(&g.seat_ids),
                granted_at_ms: g.granted_at_ms,
                live_until_ms: g
                    .expires_at_ms
                    .saturating_sub(hold_grace_ms)
                    .min(g.ended_at_ms.unwrap_or(u64::MAX)),
            })
            .collect();
        let bought = self
            .bought
            .iter()
            .filter(|b| events.contains(&b.event_id.as_str()))
            .cloned()
            .collect();
        CustomerFact {
            limits: self.limits,
            store_breaches: ticketing_invariants::customers::store_breaches(
                now_ms,
                &sold_holdings(events, orders),
                self.limits,
            ),
            store_samples: 1,
            granted: self.recording.then_some(granted),
            bought: self.recording.then_some(bought),
        }
    }
}

/// Every customer's sold and checking-out seats on `events`, as the order
/// service's audit says (a live hold is not in it: the history judges those).
pub fn sold_holdings(events: &[&str], orders: &AuditView) -> Vec<Holding> {
    orders
        .orders
        .iter()
        .filter(|o| events.contains(&o.event_id.as_str()))
        // A cancelled order's seats count until they are returned.
        .filter(|o| {
            matches!(
                o.status,
                OrderStatus::Confirmed
                    | OrderStatus::Pending
                    | OrderStatus::Cancelling
                    | OrderStatus::RefundFailed
            )
        })
        .filter_map(|o| {
            Some(Holding {
                customer: orders.order_customers.get(&o.order_id)?.clone(),
                event_id: o.event_id.clone(),
                seat_ids: o.seat_ids.clone(),
                is_hold: false,
            })
        })
        .collect()
}

fn ids(seats: &[String]) -> Vec<SeatId> {
    seats.iter().map(|s| SeatId::from(s.as_str())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LimitsFact {
        LimitsFact {
            seats_per_event: 4,
            active_holds: 2,
        }
    }
    fn seats(n: usize, from: usize) -> Vec<String> {
        (from..from + n).map(|i| format!("1-{i}")).collect()
    }
    fn empty_audit() -> AuditView {
        AuditView {
            orders: vec![],
            tickets: vec![],
            outbox_backlog: 0,
            order_customers: BTreeMap::new(),
        }
    }

    #[test]
    fn overlapping_grants_over_the_limit_are_a_breach_and_ended_ones_are_not() {
        let mut h = CustomerHistory::new(limits());
        h.granted("u1", "c", "h1", "e", &seats(3, 1), 10_000, 1_000);
        h.granted("u2", "c", "h2", "e", &seats(2, 4), 10_000, 1_500);
        let (_, v) = ticketing_invariants::customers::judge(Some(&h.fact(
            &["e"],
            &empty_audit(),
            20_000,
            0,
        )));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("5 seats (limit 4)"), "{v:?}");

        // The first hold was ordered before the second was granted: fine.
        h.ended("h1", 1_200);
        let fact = h.fact(&["e"], &empty_audit(), 20_000, 0);
        assert_eq!(
            ticketing_invariants::customers::judge(Some(&fact)).1,
            Vec::<String>::new()
        );
        // An extension after the end does not revive it; the grace shortens it.
        h.extended("h1", 50_000);
        h.ended("h2", 9_000);
        h.granted("u3", "c", "h3", "e", &seats(3, 7), 10_000, 8_000);
        let strict = h.fact(&["e"], &empty_audit(), 20_000, 0);
        assert_eq!(
            ticketing_invariants::customers::judge(Some(&strict))
                .1
                .len(),
            1
        );
        let graced = h.fact(&["e"], &empty_audit(), 20_000, 2_500);
        assert!(
            ticketing_invariants::customers::judge(Some(&graced))
                .1
                .is_empty()
        );
    }

    #[test]
    fn the_store_side_counts_confirmed_orders_by_their_customer() {
        let order = |id: &str, status: &str, n: usize, from: usize| ticketing_contract::OrderView {
            order_id: id.into(),
            status: serde_json::from_value(serde_json::Value::from(status)).unwrap(),
            reason: None,
            hold_id: "h".into(),
            event_id: "e".into(),
            seat_ids: ids(&seats(n, from)),
            amount_cents: 1,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let mut audit = empty_audit();
        audit.orders = vec![
            order("o1", "CONFIRMED", 3, 1),
            order("o2", "CONFIRMED", 2, 4),
            order("o3", "CANCELLED", 4, 6),
        ];
        for o in ["o1", "o2", "o3"] {
            audit.order_customers.insert(o.into(), "c".into());
        }
        let h = CustomerHistory::new(limits());
        let (_, v) = ticketing_invariants::customers::judge(Some(&h.fact(&["e"], &audit, 1, 0)));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("customer c 5 seats (limit 4)"), "{v:?}");
        audit
            .order_customers
            .remove(&ticketing_domain::OrderId::from("o2"));
        let (_, v) = ticketing_invariants::customers::judge(Some(&h.fact(&["e"], &audit, 1, 0)));
        assert!(v.is_empty(), "{v:?}");
    }
}
