//! A [`Snapshot`] read through the ports, for a harness that owns the whole
//! system (the simulator on the in-memory adapters, the stack test on
//! Redis and PostgreSQL): every order, ticket and ledger entry, and for
//! each named event its seat map, the store's owners and the change log.
//! Each failed read is recorded as unreadable, never taken as empty.
//!
//! The harness adds what only it knows: holds, what clients were told, the
//! streams it followed, the outbox's message ids and quiescence. It closes
//! what is left to settle before it reads (invariant 11 wants every capture
//! and refund in a batch).
//!
//! Layer: imports `snapshot` and `ticketing-domain`'s ports.

use crate::snapshot::{EventFact, OrderFact, Snapshot};
use ticketing_domain::EventId;
use ticketing_domain::ports::{ChangesSince, OrderRepository, PaymentRepository, SeatStore};

/// The stores a snapshot is read from.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    pub seats: &'a dyn SeatStore,
    pub orders: &'a dyn OrderRepository,
    pub payments: &'a dyn PaymentRepository,
}

impl std::fmt::Debug for Stores<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stores")
    }
}

/// Reads orders, tickets, ledger, outbox backlog and the named events.
pub async fn read_ports(stores: Stores<'_>, events: &[EventId]) -> Snapshot {
    let mut s = Snapshot::default();
    for event in events {
        let fact = read_event(&mut s, stores.seats, event).await;
        s.events.push(fact);
    }
    let orders = stores.orders.orders().await;
    s.orders = s
        .read(orders, "orders")
        .unwrap_or_default()
        .into_iter()
        .map(|o| OrderFact {
            status: o.status(),
            progress: match o.refund {
                Some(r) => format!("{:?}, after the sale {r:?}", o.saga),
                None => format!("{:?}", o.saga),
            },
            order_id: o.order_id,
            event_id: o.event_id,
            seat_ids: o.seat_ids,
        })
        .collect();
    let tickets = stores.orders.tickets().await;
    s.tickets = s.read(tickets, "tickets").unwrap_or_default();
    let ledger = stores.payments.ledger().await;
    s.ledger = s.read(ledger, "the payment ledger").unwrap_or_default();
    let batches = stores.payments.settlements(None).await;
    s.settlements = s.read(batches, "the settlement batches");
    let backlog = stores.orders.outbox_backlog().await;
    // Unreadable: recorded, and counted as not drained.
    s.outbox.backlog = s
        .read(backlog, "the outbox backlog")
        .map_or(u64::MAX, |b| b as u64);
    s
}

async fn read_event(s: &mut Snapshot, seats: &dyn SeatStore, event: &EventId) -> EventFact {
    let mut fact = EventFact::new(event.clone());
    let map = seats.seat_map(event).await;
    if let Some(map) = s.read(map, &format!("the seat map of {event}")) {
        fact.capacity = map.seats.len() as u64;
        fact.version = map.version;
        fact.seats = map.seats.into_iter().collect();
    }
    let owners = seats.sold_seats(event).await;
    fact.owners = s.read(owners, &format!("the sold seats of {event}"));
    let changes = seats.changes_since(event, 0, usize::MAX).await;
    fact.changes = match s.read(changes, &format!("the change log of {event}")) {
        Some(ChangesSince::Changes(cs)) => {
            Some(cs.into_iter().map(|c| (c.seat_id, c.status)).collect())
        }
        // History trimmed past version 0: the log cannot be replayed.
        Some(ChangesSince::TooOld) | None => None,
    };
    fact
}
