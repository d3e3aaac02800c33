//! Invariant 9, the per-customer limits: no customer ever has more than
//! `seats_per_event` seats (live holds, checkouts and sold seats together)
//! or more than `active_holds` live holds on one event.
//!
//! Judged two ways, each written once here:
//! - on the store's truth, sampled while the run goes on and at its end
//!   ([`store_breaches`] over what the seat store says is held and sold);
//! - on what clients were told ([`history_breaches`]): every hold a client
//!   was granted, over the interval it was **certainly** live — from the
//!   answer that granted it to the first of its known expiry, the client's
//!   own release or order request — and every seat a client was told was
//!   bought, from that answer on. Counting only certain intervals keeps
//!   the check sound (a correct system is never flagged); a breach means
//!   the system told some customer "yes" beyond the limit.
//!
//! Layer: imports `snapshot`'s neighbours' types and `ticketing-domain`.

use std::collections::{BTreeMap, BTreeSet};
use ticketing_domain::{EventId, SeatId};

/// The limits the system was configured with (0: that limit is off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsFact {
    pub seats_per_event: u32,
    pub active_holds: u32,
}

/// A customer's hold or sold seats, as the store tells them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub customer: String,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    /// A live hold (counts toward `active_holds`); else sold seats.
    pub is_hold: bool,
}

/// A hold a client was granted, over its certainly-live interval (store
/// clock, Unix ms): `[granted_at_ms, live_until_ms)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedHold {
    pub client: String,
    pub customer: String,
    pub hold_id: String,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    pub granted_at_ms: u64,
    pub live_until_ms: u64,
}

/// Seats a client was told it bought, owned from `told_at_ms` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoughtSeats {
    pub client: String,
    pub customer: String,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    pub told_at_ms: u64,
}

/// What invariant 9 judges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFact {
    pub limits: LimitsFact,
    /// Breaches [`store_breaches`] found in the store's truth, each with when.
    pub store_breaches: Vec<String>,
    /// How many times the store's truth was sampled.
    pub store_samples: u64,
    /// What clients were told (`None`: the harness kept no record).
    pub granted: Option<Vec<GrantedHold>>,
    pub bought: Option<Vec<BoughtSeats>>,
}

/// Every (event, customer) over a limit in one reading of the store.
pub fn store_breaches(at_ms: u64, holdings: &[Holding], limits: LimitsFact) -> Vec<String> {
    let mut per: BTreeMap<(&EventId, &str), (BTreeSet<&SeatId>, u32)> = BTreeMap::new();
    for h in holdings {
        let entry = per.entry((&h.event_id, h.customer.as_str())).or_default();
        entry.0.extend(h.seat_ids.iter());
        entry.1 += u32::from(h.is_hold);
    }
    let mut out = Vec::new();
    for ((event, customer), (seats, holds)) in per {
        let over = over(seats.len() as u32, holds, limits);
        if let Some(what) = over {
            out.push(format!(
                "at {at_ms} the store gave customer {customer} {what} on {event}"
            ));
        }
    }
    out
}

/// What is over the limits, said in words.
fn over(seats: u32, holds: u32, limits: LimitsFact) -> Option<String> {
    if limits.seats_per_event > 0 && seats > limits.seats_per_event {
        return Some(format!("{seats} seats (limit {})", limits.seats_per_event));
    }
    if limits.active_holds > 0 && holds > limits.active_holds {
        return Some(format!(
            "{holds} live holds (limit {})",
            limits.active_holds
        ));
    }
    None
}

/// Every moment a customer was certainly over a limit by what clients
/// were told (checked at each grant and each purchase: the only moments a
/// count can grow). One breach per (event, customer), the first.
pub fn history_breaches(
    granted: &[GrantedHold],
    bought: &[BoughtSeats],
    limits: LimitsFact,
) -> Vec<String> {
    let mut moments: Vec<(u64, &EventId, &str)> = granted
        .iter()
        .map(|g| (g.granted_at_ms, &g.event_id, g.customer.as_str()))
        .chain(
            bought
                .iter()
                .map(|b| (b.told_at_ms, &b.event_id, b.customer.as_str())),
        )
        .collect();
    moments.sort();
    let mut flagged: BTreeSet<(&EventId, &str)> = BTreeSet::new();
    let mut out = Vec::new();
    for (t, event, customer) in moments {
        if flagged.contains(&(event, customer)) {
            continue;
        }
        let live: Vec<&GrantedHold> = granted
            .iter()
            .filter(|g| g.customer == customer && &g.event_id == event)
            .filter(|g| g.granted_at_ms <= t && t < g.live_until_ms)
            .collect();
        let mut seats: BTreeSet<&SeatId> = live.iter().flat_map(|g| &g.seat_ids).collect();
        seats.extend(
            bought
                .iter()
                .filter(|b| b.customer == customer && &b.event_id == event && b.told_at_ms <= t)
                .flat_map(|b| &b.seat_ids),
        );
        if let Some(what) = over(seats.len() as u32, live.len() as u32, limits) {
            let holds: Vec<String> = live
                .iter()
                .map(|g| format!("{} by {}", g.hold_id, g.client))
                .collect();
            out.push(format!(
                "at {t} customer {customer} was told it had {what} on {event} (live holds: {})",
                holds.join(", ")
            ));
            flagged.insert((event, customer));
        }
    }
    out
}

/// Invariant 9's observation and breaches.
pub fn judge(fact: Option<&CustomerFact>) -> (String, Vec<String>) {
    let Some(f) = fact else {
        return (
            "not judged: no customer limits in this run".into(),
            Vec::new(),
        );
    };
    let mut violations = f.store_breaches.clone();
    let mut observed = format!(
        "limits {} seats / {} holds per customer and event; store sampled {} times",
        f.limits.seats_per_event, f.limits.active_holds, f.store_samples
    );
    match (&f.granted, &f.bought) {
        (Some(g), Some(b)) => {
            violations.extend(history_breaches(g, b, f.limits));
            let customers: BTreeSet<&str> = g.iter().map(|h| h.customer.as_str()).collect();
            observed.push_str(&format!(
                "; {} holds granted to {} customers, {} purchases told",
                g.len(),
                customers.len(),
                b.len()
            ));
        }
        _ => observed.push_str("; no client history"),
    }
    (observed, violations)
}
