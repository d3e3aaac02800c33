use crate::model::{Cents, EventId, Hold, HoldId, OrderId, SeatChange, SeatId, SeatMap, UnixMs};
use crate::saga::FailureReason;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Seat store errors. Everything but `Unavailable` is a definite answer:
/// nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SeatStoreError {
    #[error("unknown event")]
    UnknownEvent,
    /// Seats that do not exist in the event (listed).
    #[error("unknown seats")]
    UnknownSeats(Vec<SeatId>),
    /// Seats held or sold by someone else (listed). All-or-nothing: no seat was held.
    #[error("seats unavailable")]
    SeatsUnavailable(Vec<SeatId>),
    /// No such hold, and none remembered: the id is unknown (or long gone).
    #[error("hold not found")]
    HoldNotFound,
    /// The hold existed but expired, was released or was confirmed
    /// (`reason`); `customer_id` is whose it was (only its owner may be
    /// told more than "not found").
    #[error("hold is gone ({reason:?})")]
    HoldGone {
        reason: GoneReason,
        customer_id: Option<String>,
    },
    /// The hold is pinned to an order (checkout in progress, or another order).
    #[error("hold is pinned to an order")]
    HoldPinned,
    /// The hold is at its lifetime cap; extending would not move expiry.
    #[error("hold is at its lifetime cap")]
    ExtensionLimit,
    /// The customer would go over a limit of [`CustomerLimits`] on this
    /// event: `count` is what they have now, `limit` the bound. Nothing
    /// was held.
    #[error("customer limit: {count} of at most {limit} {kind}")]
    CustomerLimit {
        kind: LimitKind,
        count: u32,
        limit: u32,
    },
    /// The hold id is already in use (ids are random; a collision is a bug).
    #[error("duplicate hold id")]
    DuplicateHoldId,
    /// The store did not answer or failed; the outcome is unknown. Retryable.
    #[error("seat store unavailable: {0}")]
    Unavailable(String),
}

/// Why a hold is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GoneReason {
    Expired,
    Released,
    /// Confirmed: its seats are this order's.
    Ordered(OrderId),
}

/// Which per-customer limit refused a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitKind {
    /// Seats on one event: in live holds (pinned or not) and sold.
    SeatsPerEvent,
    /// Live holds on one event.
    ActiveHolds,
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitKind::SeatsPerEvent => "seats on this event",
            LimitKind::ActiveHolds => "live holds on this event",
        })
    }
}

/// Per-customer bounds on one event, checked inside the hold's atomic
/// step (never read first and written after). 0 means no bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CustomerLimits {
    /// Seats per customer per event, over live holds and sold seats.
    pub seats_per_event: u32,
    /// Live (unexpired, unreleased, unconfirmed) holds per customer per event.
    pub active_holds: u32,
}

/// A request to hold seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRequest {
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    pub hold_id: HoldId,
    pub ttl_ms: u64,
    pub customer_id: Option<String>,
    /// Applied only to a customer's hold (`customer_id` set).
    #[serde(default)]
    pub limits: CustomerLimits,
}

/// Who releases a hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Releaser {
    /// The holder, proving ownership with the hold id. Refused while pinned.
    Holder,
    /// The saga compensating for this order: releases only a hold pinned to it.
    Order(OrderId),
}

/// Result of a fenced confirm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfirmOutcome {
    /// The seats are sold to this order (also returned on a repeated confirm).
    Confirmed {
        event_id: EventId,
        seat_ids: Vec<SeatId>,
    },
    /// The fence refused: nothing changed.
    Rejected(FailureReason),
}

/// Answer to "what changed since version v".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangesSince {
    /// Every change after `v`, in version order (possibly empty).
    Changes(Vec<SeatChange>),
    /// `v` is older than the retained history: take a fresh snapshot.
    TooOld,
}

/// Seat state for every event: who holds what, what is sold, and a per-event
/// change log with gap-free versions.
///
/// Atomicity: every method is atomic (one Lua script in Redis, one lock in
/// memory). Every mutating method first expires the event's due holds (as
/// changes) so a hold past `expires_at` never blocks a seat, whether or not
/// the sweeper has run. `now_ms` comes from the caller's clock port.
#[async_trait]
pub trait SeatStore: Send + Sync + std::fmt::Debug {
    /// Registers an event's seats as AVAILABLE. Idempotent: re-registering an
    /// existing event changes nothing.
    async fn create_event(
        &self,
        event_id: &EventId,
        seats: &[(SeatId, Cents)],
    ) -> Result<(), SeatStoreError>;

    /// Holds all requested seats or none. Errors: `UnknownEvent`,
    /// `UnknownSeats` (checked first), `CustomerLimit` (a customer's hold
    /// over `req.limits`, counting that customer's live holds and sold
    /// seats on the event; checked before availability), `SeatsUnavailable`
    /// listing every seat that is held or sold. On success each seat gets
    /// one change (HELD).
    async fn hold(&self, req: HoldRequest, now_ms: UnixMs) -> Result<Hold, SeatStoreError>;

    /// Reads an active hold. `HoldGone` if it expired/was released/confirmed
    /// (remembered for the tombstone period), else `HoldNotFound`.
    async fn get_hold(&self, hold_id: &HoldId, now_ms: UnixMs) -> Result<Hold, SeatStoreError>;

    /// Extends an unpinned hold to `min(now + hold_ms, created + max_lifetime_ms)`.
    /// `ExtensionLimit` if that does not move expiry forward.
    async fn extend(
        &self,
        hold_id: &HoldId,
        hold_ms: u64,
        max_lifetime_ms: u64,
        now_ms: UnixMs,
    ) -> Result<Hold, SeatStoreError>;

    /// Releases a hold; its seats become AVAILABLE (one change each).
    /// `Releaser::Holder` is refused with `HoldPinned` during checkout.
    /// `Releaser::Order` is idempotent: a gone hold, or one not pinned to this
    /// order, is left alone and returns `Ok`.
    async fn release(
        &self,
        hold_id: &HoldId,
        by: Releaser,
        now_ms: UnixMs,
    ) -> Result<(), SeatStoreError>;

    /// Pins an active hold to an order and keeps it alive for at least
    /// `checkout_ms`. Idempotent for the same order; `HoldPinned` if pinned to
    /// another order. No change record (the seats stay HELD).
    async fn pin(
        &self,
        hold_id: &HoldId,
        order_id: &OrderId,
        checkout_ms: u64,
        now_ms: UnixMs,
    ) -> Result<Hold, SeatStoreError>;

    /// The fenced confirm: only an active, unexpired hold pinned to
    /// `order_id` becomes SOLD (one change per seat; the hold is consumed).
    /// Idempotent: confirming again for the same order returns `Confirmed`.
    /// Anything else is `Rejected` and changes nothing. `traceparent` (the
    /// order's trace context, if any) is kept on the SOLD change records, so
    /// whoever reads the change log can join the order's trace.
    async fn confirm(
        &self,
        hold_id: &HoldId,
        order_id: &OrderId,
        traceparent: Option<&str>,
        now_ms: UnixMs,
    ) -> Result<ConfirmOutcome, SeatStoreError>;

    /// The fenced return of a cancelled order's seats (the after-sale
    /// saga's last step): each of `seat_ids` still SOLD to `order_id`
    /// becomes AVAILABLE (one change each) and stops counting for
    /// `customer_id`'s limits on the event; a seat sold to another order,
    /// held or available is left alone — so a late or repeated return never
    /// frees a seat already sold again. Idempotent: a repeat returns
    /// nothing more. Returns the seats it returned, in the order asked.
    /// `UnknownEvent` for an unknown event.
    async fn return_seats(
        &self,
        event_id: &EventId,
        seat_ids: &[SeatId],
        order_id: &OrderId,
        customer_id: Option<&str>,
        now_ms: UnixMs,
    ) -> Result<Vec<SeatId>, SeatStoreError>;

    /// Expires up to `limit` due holds across all events (one change per
    /// seat) and forgets old tombstones. Returns how many holds expired.
    async fn expire_due(&self, now_ms: UnixMs, limit: usize) -> Result<usize, SeatStoreError>;

    /// Every seat's status at the current version, in seat-id order.
    async fn seat_map(&self, event_id: &EventId) -> Result<SeatMap, SeatStoreError>;

    /// The event's current version and number of AVAILABLE seats.
    async fn availability(&self, event_id: &EventId) -> Result<(u64, usize), SeatStoreError>;

    /// Changes after `version`, at most `limit`, from a bounded history.
    async fn changes_since(
        &self,
        event_id: &EventId,
        version: u64,
        limit: usize,
    ) -> Result<ChangesSince, SeatStoreError>;

    /// Every sold seat of the event with the order that bought it (for audits).
    async fn sold_seats(
        &self,
        event_id: &EventId,
    ) -> Result<Vec<(SeatId, OrderId)>, SeatStoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_names_itself_for_the_client() {
        assert_eq!(LimitKind::SeatsPerEvent.to_string(), "seats on this event");
        assert_eq!(
            LimitKind::ActiveHolds.to_string(),
            "live holds on this event"
        );
    }
}
