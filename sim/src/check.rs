//! The simulator's picture of ground truth after quiescence, handed to the
//! invariants (`ticketing-invariants`, written once for every harness).
//!
//! Reads the in-memory stores through their ports, and adds what only the
//! simulator sees: every active hold, every message the outbox wrote and
//! the broker holds, what each user was told and what each SSE watcher
//! believes. A failed read is a violation (`0-truth-readable`).
//!
//! Layer: imports `world` (the truth), `users` and `watchers` (their
//! records) and `clock`.

use crate::users::Told as UserTold;
use crate::world::{EVENT, Truth, expired_holds, sync};
use std::collections::BTreeMap;
use ticketing_domain::messages::{Envelope, topics};
use ticketing_domain::{EventId, MessageId};
use ticketing_invariants::{
    BoughtSeats, CustomerFact, GrantedHold, HoldFact, QueueFact, Quiescence, Snapshot, Stores,
    StreamFact, Told, ToldWhat, read_ports,
};

pub use ticketing_invariants::{INVARIANTS, Violation};

/// Every breach of every invariant in the run's final truth.
pub fn check(t: &Truth) -> Vec<Violation> {
    ticketing_invariants::check(&snapshot(t))
}

/// Ground truth as the invariants read it.
pub fn snapshot(t: &Truth) -> Snapshot {
    let event = EventId::from(EVENT);
    let stores = Stores {
        seats: t.seats.as_ref(),
        orders: t.orders.as_ref(),
        payments: t.payments.as_ref(),
    };
    let mut s = sync(read_ports(stores, std::slice::from_ref(&event)));
    if let Some(e) = s.events.first_mut() {
        e.holds = Some(
            t.seats
                .active_holds()
                .into_iter()
                .filter(|h| h.event_id == event)
                .map(|h| HoldFact {
                    seat_ids: h.seat_ids,
                    expires_at_ms: h.expires_at_ms,
                })
                .collect(),
        );
    }
    s.outbox.written = Some(t.orders.outbox_written());
    s.outbox.published = Some(published(t));
    s.told = Some(told(t));
    s.streams = streams(t, &event);
    s.quiescence = Quiescence {
        reached: t.quiescent,
        detail: format!(
            "{} ms after healing: lag reservation {} saga {}, expired holds {}",
            t.now_ms
                .saturating_sub(crate::clock::EPOCH_MS + t.settled_at_ms),
            t.bus.lag(topics::RESERVATION_COMMANDS, "reservation"),
            t.bus.lag(topics::ORDER_SAGA, "order-saga"),
            expired_holds(&t.seats, t.now_ms),
        ),
    };
    s.now_ms = t.now_ms;
    s.queue = t.queue.as_ref().map(|q| queue_fact(t, q, &event));
    s.customers = Some(customer_fact(t, &event));
    s.history = Some(ticketing_invariants::check_history(
        &crate::lock(&t.log).history,
        ticketing_invariants::linearize::BUDGET_DEFAULT,
    ));
    s
}

/// The limits, the store's sampled truth and what each customer's clients
/// were told: holds over their certainly-live intervals, purchases from
/// the answer on (`ticketing_invariants::customers` judges).
fn customer_fact(t: &Truth, event: &EventId) -> CustomerFact {
    let h = crate::lock(&t.history);
    let mut customer: BTreeMap<usize, String> = BTreeMap::new();
    let mut granted: BTreeMap<(usize, String), GrantedHold> = BTreeMap::new();
    let mut bought = Vec::new();
    for ob in &h.observations {
        let at_ms = crate::clock::EPOCH_MS + ob.at_ms;
        let Some(who) = customer.get(&ob.user).cloned() else {
            if let UserTold::LoggedIn { customer: c } = &ob.told {
                customer.insert(ob.user, c.clone());
            }
            continue;
        };
        let key = |hold: &ticketing_domain::HoldId| (ob.user, hold.to_string());
        match &ob.told {
            UserTold::Held {
                hold_id,
                seats,
                expires_at_ms,
            } => {
                granted.insert(
                    key(hold_id),
                    GrantedHold {
                        client: format!("user {}", ob.user),
                        customer: who,
                        hold_id: hold_id.to_string(),
                        event_id: event.clone(),
                        seat_ids: seats.clone(),
                        granted_at_ms: at_ms,
                        live_until_ms: *expires_at_ms,
                    },
                );
            }
            UserTold::Extended {
                hold_id,
                expires_at_ms,
            } => {
                if let Some(g) = granted.get_mut(&key(hold_id)) {
                    g.live_until_ms = g.live_until_ms.max(*expires_at_ms);
                }
            }
            UserTold::LetGo { hold_id } => {
                if let Some(g) = granted.get_mut(&key(hold_id)) {
                    g.live_until_ms = g.live_until_ms.min(at_ms);
                }
            }
            UserTold::OrderFinal {
                status: ticketing_domain::OrderStatus::Confirmed,
                seats,
                ..
            } => bought.push(BoughtSeats {
                client: format!("user {}", ob.user),
                customer: who,
                event_id: event.clone(),
                seat_ids: seats.clone(),
                told_at_ms: at_ms,
            }),
            _ => {}
        }
    }
    CustomerFact {
        limits: t.limits,
        store_breaches: t.limit_samples.breaches.clone(),
        store_samples: t.limit_samples.samples,
        granted: Some(granted.into_values().collect()),
        bought: Some(bought),
    }
}

/// The waiting room's log and what its visitors were told.
fn queue_fact(t: &Truth, q: &ticketing_mem::MemQueueStore, event: &EventId) -> QueueFact {
    let h = crate::lock(&t.history);
    let mut fact = QueueFact {
        event_id: event.clone(),
        log: q.log(event),
        unadmitted_holds: Vec::new(),
        lost_places: Vec::new(),
        positions: Vec::new(),
        undrained: t.queue_residue.clone(),
    };
    let mut positions: BTreeMap<usize, Vec<u64>> = Default::default();
    for ob in &h.observations {
        match &ob.told {
            UserTold::HeldWithoutAdmission { hold_id } => fact
                .unadmitted_holds
                .push(format!("user {} got {hold_id} at {} ms", ob.user, ob.at_ms)),
            UserTold::QueueLost => fact
                .lost_places
                .push(format!("user {} at {} ms", ob.user, ob.at_ms)),
            UserTold::QueuePosition { position } => {
                positions.entry(ob.user).or_default().push(*position);
            }
            _ => {}
        }
    }
    fact.positions = positions
        .into_iter()
        .map(|(u, p)| (format!("user {u}"), p))
        .collect();
    fact
}

/// Every message id the broker holds on the outbox's topics.
fn published(t: &Truth) -> Vec<MessageId> {
    [topics::ORDER_SAGA, topics::RESERVATION_COMMANDS]
        .into_iter()
        .flat_map(|topic| t.bus.payloads(topic))
        .filter_map(|p| Envelope::from_bytes(&p).ok())
        .map(|env| env.message_id)
        .collect()
}

/// What users were told about orders (holds are judged from the store).
fn told(t: &Truth) -> Vec<Told> {
    let h = crate::lock(&t.history);
    h.observations
        .iter()
        .filter_map(|ob| {
            let what = match &ob.told {
                UserTold::Held { .. }
                | UserTold::LoggedIn { .. }
                | UserTold::Extended { .. }
                | UserTold::LetGo { .. }
                | UserTold::Refused { .. }
                | UserTold::HeldWithoutAdmission { .. }
                | UserTold::QueuePosition { .. }
                | UserTold::QueueAdmitted
                | UserTold::QueueLost => return None,
                UserTold::OrderAccepted { key, order_id } => ToldWhat::OrderAccepted {
                    key: key.clone(),
                    order_id: order_id.clone(),
                },
                UserTold::OrderFinal {
                    order_id,
                    status,
                    seats,
                } => ToldWhat::OrderFinal {
                    order_id: order_id.clone(),
                    event_id: EventId::from(EVENT),
                    status: *status,
                    seat_ids: seats.clone(),
                },
            };
            Some(Told {
                client: format!("user {}", ob.user),
                what,
            })
        })
        .collect()
}

fn streams(t: &Truth, event: &EventId) -> Vec<StreamFact> {
    t.watchers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let view = crate::lock(w).clone();
            StreamFact {
                name: format!("watcher {}", i + 1),
                event_id: event.clone(),
                version: view.version,
                gaps: u64::from(view.gaps),
                seats: view.seats,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::History;
    use std::sync::{Arc, Mutex};
    use ticketing_domain::SeatId;
    use ticketing_domain::ports::SeatStore;
    use ticketing_mem::{MemEventBus, MemOrderRepository, MemPaymentRepository, MemSeatStore};

    /// A world after a run in which nobody bought anything.
    fn quiet_truth(seats: MemSeatStore) -> Truth {
        Truth {
            seats: Arc::new(seats),
            orders: Arc::new(MemOrderRepository::new()),
            payments: Arc::new(MemPaymentRepository::new()),
            bus: MemEventBus::new(1),
            history: Arc::new(Mutex::new(History::default())),
            log: crate::record::Log::shared(),
            watchers: Vec::new(),
            now_ms: crate::clock::EPOCH_MS,
            settled_at_ms: 0,
            quiescent: true,
            queue: None,
            queue_residue: None,
            limits: Default::default(),
            limit_samples: Default::default(),
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
        // The simulated event was never installed: reading its seats fails.
        let v = check(&quiet_truth(MemSeatStore::new(16, 1_000)));
        assert!(
            v.iter()
                .any(|x| x.invariant == "0-truth-readable" && x.detail.contains("sold seats")),
            "{v:?}"
        );
    }

    #[test]
    fn a_seat_the_store_sells_without_an_order_is_caught() {
        let seats = MemSeatStore::new(16, 1_000);
        let event = EventId::from(EVENT);
        let prices = vec![(SeatId::from("1-1"), 100)];
        sync(seats.create_event(&event, &prices)).expect("event installed");
        let ghost = ticketing_domain::OrderId::from("o-ghost");
        seats.overwrite_seats_unchecked(&event, &[SeatId::from("1-1")], Some(&ghost));
        let v = check(&quiet_truth(seats));
        assert!(
            v.iter().any(|x| x.invariant == "2-sold-seats-confirmed"),
            "{v:?}"
        );
    }
}
