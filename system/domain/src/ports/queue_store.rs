//! The waiting-room store port: every event's queue, active set and
//! admission counters. Each method is one atomic step of the store (one
//! Lua script on Redis; one lock on the in-memory model): counters are
//! read and written inside it, so concurrent callers — several queue
//! processes admitting, thousands of visitors joining — cannot over-admit.
//! The rules it applies are `crate::queue`'s.

use crate::queue::{PlaceState, RoomConfig};
use crate::{EventId, HoldId, QueueTicket, UnixMs, VisitorId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Errors of the waiting-room store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum QueueError {
    /// The event has no waiting room.
    #[error("no waiting room for this event")]
    UnknownRoom,
    /// The room does not take visitors yet (before `opens_at_ms`).
    #[error("the waiting room is not open yet")]
    NotOpen,
    /// The ticket is already in use (a random-source collision).
    #[error("duplicate ticket")]
    DuplicateTicket,
    /// The store could not be reached; the outcome is unknown. Retryable.
    #[error("queue store unavailable: {0}")]
    Unavailable(String),
}

/// A visitor's place, as `place` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub visitor_id: VisitorId,
    /// The customer who joined (`None`: an anonymous visitor).
    pub customer_id: Option<String>,
    pub state: PlaceState,
}

/// The place a join holds: the new one, or — when the customer already
/// had a live place in this room — that one (`rejoined`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub ticket: QueueTicket,
    pub visitor_id: VisitorId,
    pub rejoined: bool,
}

/// What one admission step did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmitReport {
    /// Admitted in this step, in queue order.
    pub admitted: Vec<(QueueTicket, VisitorId)>,
    /// How long each of `admitted` waited, join to admission (same order).
    pub waited_ms: Vec<u64>,
    /// Active slots freed because they expired (idle or token).
    pub expired: u64,
    /// Waiting places dropped because their visitor stopped asking.
    pub abandoned: u64,
    /// Still waiting after the step.
    pub waiting: u64,
    /// Active after the step.
    pub active: u64,
}

/// A room's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomStats {
    pub room: RoomConfig,
    pub waiting: u64,
    pub active: u64,
    pub admitted_total: u64,
    /// Admissions over the last `queue::RATE_WINDOW_S` whole seconds.
    pub admitted_in_window: u64,
}

#[async_trait]
pub trait QueueStore: Send + Sync + std::fmt::Debug {
    /// Creates the room, or replaces its settings (places are kept).
    async fn open_room(&self, event_id: &EventId, room: &RoomConfig) -> Result<(), QueueError>;

    /// The room's settings, `None` for an event without one.
    async fn room(&self, event_id: &EventId) -> Result<Option<RoomConfig>, QueueError>;

    /// Changes the caps at run time; answers the new settings.
    async fn set_caps(
        &self,
        event_id: &EventId,
        active_max: u32,
        admit_per_s: u32,
    ) -> Result<RoomConfig, QueueError>;

    /// Takes a place for `visitor_id` under `ticket`: a pre-queue place with
    /// `shuffle_key`'s random order before the on-sale time, the back of the
    /// FIFO queue after it (`crate::queue::place_score`).
    ///
    /// One live place per customer: when `customer_id` already holds a
    /// place that is still live (pre-queue, waiting, or admitted with its
    /// slot held), the join takes nothing and answers that place
    /// (`rejoined`; a waiting visitor's join counts as a sign of life).
    /// Once that place is gone (abandoned, expired, left, bought) the next
    /// join takes a new one at the back. Anonymous joins (`None`) always
    /// take a new place.
    async fn join(
        &self,
        event_id: &EventId,
        ticket: &QueueTicket,
        visitor_id: &VisitorId,
        customer_id: Option<&str>,
        shuffle_key: u64,
        now_ms: UnixMs,
    ) -> Result<Joined, QueueError>;

    /// The place of `ticket` (`None`: no such ticket in this room); a
    /// waiting visitor's ask counts as a sign of life (see `abandon_ms`).
    async fn place(
        &self,
        event_id: &EventId,
        ticket: &QueueTicket,
        now_ms: UnixMs,
    ) -> Result<Option<Place>, QueueError>;

    /// One admission step: frees expired slots, drops abandoned places, then
    /// admits from the front within both caps. Nothing before the on-sale
    /// time.
    async fn admit(&self, event_id: &EventId, now_ms: UnixMs) -> Result<AdmitReport, QueueError>;

    /// An admitted shopper's request: true (and the idle time restarts,
    /// never past the token's expiry) while the slot is held; false once it
    /// freed.
    async fn touch(
        &self,
        event_id: &EventId,
        visitor_id: &VisitorId,
        now_ms: UnixMs,
    ) -> Result<bool, QueueError>;

    /// The shopper is done (bought, or gave up): the slot frees now.
    async fn leave(&self, event_id: &EventId, visitor_id: &VisitorId) -> Result<(), QueueError>;

    /// Records that `hold_id` was made under `visitor_id`'s admission, so
    /// that buying it frees the slot ([`QueueStore::bought`]). Nothing when
    /// the visitor holds no slot. The record goes when the slot frees.
    async fn bind_hold(
        &self,
        event_id: &EventId,
        visitor_id: &VisitorId,
        hold_id: &HoldId,
    ) -> Result<(), QueueError>;

    /// `hold_id` was bought: the slot of the visitor it was made under frees
    /// now (the shopper is done). Nothing for a hold no admission made.
    async fn bought(&self, event_id: &EventId, hold_id: &HoldId) -> Result<(), QueueError>;

    /// The room's figures.
    async fn stats(&self, event_id: &EventId, now_ms: UnixMs) -> Result<RoomStats, QueueError>;

    /// Every event with a room, in id order.
    async fn rooms(&self) -> Result<Vec<EventId>, QueueError>;
}
