//! The one picture of ground truth every invariant judges: seat maps and
//! seat owners, holds, orders, tickets, the payment ledger, the outbox,
//! what clients were told and what subscribers saw, and whether the system
//! quiesced.
//!
//! Plain data, built by whoever can read the truth: the simulator and the
//! stack test through [`crate::read`] (the ports), the load audit from the
//! internal HTTP API. A part a harness cannot observe is `None` (its rule
//! is not judged and says so); a part it tried to read and could not is an
//! entry in [`Snapshot::unreadable`] — a violation, never an empty set.
//!
//! Layer: imports only `ticketing-domain`'s types.

use std::collections::BTreeMap;
use ticketing_domain::queue::QueueLogEntry;
use ticketing_domain::{
    EventId, LedgerEntry, MessageId, OrderId, OrderStatus, SeatId, SeatStatus, SettlementBatch,
    Ticket,
};

/// Ground truth after a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The events the run sold seats of.
    pub events: Vec<EventFact>,
    /// Every order of those events.
    pub orders: Vec<OrderFact>,
    /// Every ticket of those events.
    pub tickets: Vec<Ticket>,
    /// The payment ledger entries of those orders.
    pub ledger: Vec<LedgerEntry>,
    /// Every settlement batch, read after the harness closed what was
    /// left to settle; `None`: not read (invariant 11 not judged).
    pub settlements: Option<Vec<SettlementBatch>>,
    pub outbox: OutboxFact,
    /// What clients were told, in the order they were told it; `None` when
    /// the harness kept no client record.
    pub told: Option<Vec<Told>>,
    /// What each subscriber of a seat stream believes at the end.
    pub streams: Vec<StreamFact>,
    pub quiescence: Quiescence,
    /// Reads of ground truth that failed: each one is a violation.
    pub unreadable: Vec<String>,
    /// Now, on the clock hold expiries are written in.
    pub now_ms: u64,
    /// How long past its expiry a hold may still block seats before it
    /// counts as outliving it (the sweeper's period plus clock skew).
    pub hold_grace_ms: u64,
    /// The waiting room of the run's protected event; `None`: no room.
    pub queue: Option<QueueFact>,
    /// The per-customer limits and what the store and clients said of
    /// them; `None`: the run had no customers with limits.
    pub customers: Option<crate::customers::CustomerFact>,
    /// The client history's check (`crate::check_history`); `None`: the
    /// harness recorded no history.
    pub history: Option<crate::history::HistoryReport>,
}

/// A waiting room's log and what its visitors were told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFact {
    pub event_id: EventId,
    /// The room's admission log (joins, admissions, drops, steps with caps).
    pub log: Vec<QueueLogEntry>,
    /// Holds on the protected event granted to clients that showed no
    /// admission (each described).
    pub unadmitted_holds: Vec<String>,
    /// Visitors told their place was gone while they kept asking.
    pub lost_places: Vec<String>,
    /// Each visitor's positions, in the order it was told them.
    pub positions: Vec<(String, Vec<u64>)>,
    /// What the room still held after its clients had been silent for its
    /// abandon and idle times together (`None`: it drained, or this was not checked).
    pub undrained: Option<String>,
}

/// One event's seats as the seat store tells them.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFact {
    pub event_id: EventId,
    /// How many seats the event has.
    pub capacity: u64,
    /// The seat map's version and each seat's public status.
    pub version: u64,
    pub seats: BTreeMap<SeatId, SeatStatus>,
    /// Who each sold seat is sold to, as the store records it (a seat
    /// listed twice is a seat sold twice); `None` where only the public
    /// seat map could be read.
    pub owners: Option<Vec<(SeatId, OrderId)>>,
    /// The change log from version 0, in order; `None` when not read.
    pub changes: Option<Vec<(SeatId, SeatStatus)>>,
    /// Every hold that may cover a HELD seat of this event (the store's
    /// active holds, or every hold the harness's clients won when they made
    /// all of them); `None` when the harness cannot know all of them.
    pub holds: Option<Vec<HoldFact>>,
}

impl EventFact {
    /// An event with nothing read yet.
    pub fn new(event_id: EventId) -> EventFact {
        EventFact {
            event_id,
            capacity: 0,
            version: 0,
            seats: BTreeMap::new(),
            owners: None,
            changes: None,
            holds: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldFact {
    pub seat_ids: Vec<SeatId>,
    pub expires_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFact {
    pub order_id: OrderId,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    pub status: OrderStatus,
    /// Where its saga is, for the reader of a liveness violation.
    pub progress: String,
}

/// The transactional outbox and the broker behind it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxFact {
    /// Rows not yet marked sent.
    pub backlog: u64,
    /// Every message id the outbox ever wrote and every id the broker
    /// holds; `None` when the harness cannot list them.
    pub written: Option<Vec<MessageId>>,
    pub published: Option<Vec<MessageId>>,
}

/// One thing one client was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    /// Which client (a user number, a goose user).
    pub client: String,
    pub what: ToldWhat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToldWhat {
    /// Placing an order with this Idempotency-Key was answered with this order.
    OrderAccepted { key: String, order_id: OrderId },
    /// The order's final status, and the seats it was for.
    OrderFinal {
        order_id: OrderId,
        event_id: EventId,
        status: OrderStatus,
        seat_ids: Vec<SeatId>,
    },
}

/// What a subscriber of one event's seat stream believes.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamFact {
    pub name: String,
    pub event_id: EventId,
    pub version: u64,
    /// Changes that skipped a version.
    pub gaps: u64,
    pub seats: BTreeMap<SeatId, SeatStatus>,
}

/// Whether the system came to rest after the load stopped and faults healed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quiescence {
    pub reached: bool,
    /// What was still moving when it was not (lags, backlog, how long waited).
    pub detail: String,
}

impl Snapshot {
    /// A read of ground truth: `Some` on success; on failure `None` and the
    /// failure recorded as unreadable.
    pub fn read<T, E: std::fmt::Display>(&mut self, r: Result<T, E>, what: &str) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.unreadable.push(format!("could not read {what}: {e}"));
                None
            }
        }
    }

    pub fn event(&self, id: &EventId) -> Option<&EventFact> {
        self.events.iter().find(|e| &e.event_id == id)
    }

    pub fn order(&self, id: &OrderId) -> Option<&OrderFact> {
        self.orders.iter().find(|o| &o.order_id == id)
    }

    /// Orders by id (the last wins if an id repeats).
    pub fn orders_by_id(&self) -> BTreeMap<&OrderId, &OrderFact> {
        self.orders.iter().map(|o| (&o.order_id, o)).collect()
    }

    pub fn confirmed(&self) -> impl Iterator<Item = &OrderFact> {
        self.orders
            .iter()
            .filter(|o| o.status == OrderStatus::Confirmed)
    }
}
