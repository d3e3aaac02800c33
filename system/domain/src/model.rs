//! Domain types shared by every service.
//!
//! Ids are newtypes over `String` so they cannot be mixed up, serialize as
//! plain strings (contract v1 uses strings everywhere) and order
//! deterministically (`Ord`), which keeps `BTreeMap`-based state
//! reproducible in the simulator.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// An event (a show) whose seats are sold, e.g. `spring-gala`.
    EventId
);
string_id!(
    /// A seat within one event, e.g. `3-7` (row 3, column 7).
    SeatId
);
string_id!(
    /// A seat hold. In contract v1 the hold id is the holder's capability:
    /// it carries at least 128 random bits and is returned only to the holder.
    HoldId
);
string_id!(
    /// An order, a UUID built from the injected random source.
    OrderId
);
string_id!(
    /// A bus message id, used by consumers to drop duplicates.
    MessageId
);
string_id!(
    /// A W3C trace id (32 lowercase hex digits) carried across every hop.
    TraceId
);

string_id!(
    /// A waiting-room ticket: the visitor's secret handle on its place (128
    /// random bits, returned only to the visitor), like a hold id.
    QueueTicket
);
string_id!(
    /// A waiting-room visitor: named in the admission token and in the
    /// active set (64 random bits; not a secret on its own).
    VisitorId
);

/// Money is kept in integer cents: no float rounding in a ledger.
pub type Cents = i64;

/// Milliseconds since the Unix epoch, as read from the clock port.
pub type UnixMs = u64;

/// An event as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: EventId,
    pub title: String,
    /// RFC 3339 start time, kept as text: the catalog only displays it.
    pub starts_at: String,
    pub rows: u32,
    pub cols: u32,
}

impl Event {
    pub fn seat_count(&self) -> usize {
        (self.rows as usize) * (self.cols as usize)
    }
}

/// Static description of one seat: where it is and what it costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatSpec {
    pub seat_id: SeatId,
    pub row: u32,
    pub col: u32,
    pub price_cents: Cents,
}

/// The seat id for a row and column; one place so every adapter agrees.
pub fn seat_id_for(row: u32, col: u32) -> SeatId {
    SeatId(format!("{row}-{col}"))
}

/// The public status of a seat (contract v1: `AVAILABLE | HELD | SOLD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeatStatus {
    Available,
    Held,
    Sold,
}

/// Where a hold is in its life. Only `Active` holds block seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub hold_id: HoldId,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    /// Sum of the seat prices at the time the hold was taken.
    pub amount_cents: Cents,
    pub created_at_ms: UnixMs,
    pub expires_at_ms: UnixMs,
    /// The order this hold is pinned to during checkout, if any.
    pub pinned_order: Option<OrderId>,
    /// Optional `X-Customer-Id`, recorded for audit only (not an authorization).
    pub customer_id: Option<String>,
}

/// One entry of an event's seat change log. Versions are per event, start at
/// 1 and have no gaps: the SSE stream uses them as `id:` and for resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatChange {
    pub version: u64,
    pub seat_id: SeatId,
    pub status: SeatStatus,
    /// The W3C `traceparent` of the work that made the change, when it was
    /// given one (a confirm does: the order's trace), so the catalog's push
    /// of the change joins that trace. Not part of the SSE payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// The status of every seat of one event at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatMap {
    pub version: u64,
    pub seats: Vec<(SeatId, SeatStatus)>,
}

/// Public order status (contract v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Cancelled,
    Failed,
    /// A confirmed order being cancelled (tickets void, refund on its way).
    Cancelling,
    /// Cancelled after the sale: money back, seats back on sale.
    Refunded,
    /// The refund did not go through before its deadline: an operator's
    /// to retry (tickets void, seats still sold, money owed).
    RefundFailed,
}

impl OrderStatus {
    /// Whether nothing more happens without a new request: a client polling
    /// an order stops here. REFUND_FAILED is terminal in this sense (only
    /// an operator moves it on).
    pub fn is_terminal(self) -> bool {
        !matches!(self, OrderStatus::Pending | OrderStatus::Cancelling)
    }

    /// The contract's spelling (metrics labels, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Failed => "FAILED",
            OrderStatus::Cancelling => "CANCELLING",
            OrderStatus::Refunded => "REFUNDED",
            OrderStatus::RefundFailed => "REFUND_FAILED",
        }
    }
}

/// A durable ticket: the second line of defence against oversell. Storage
/// keeps at most one **valid** ticket per `(event_id, seat_id)`; a
/// cancelled order's tickets are voided (kept for the audit), after which
/// the seat may get a new one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ticket {
    pub event_id: EventId,
    pub seat_id: SeatId,
    pub order_id: OrderId,
}

/// Payment status of one order at the (mock) gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Authorized,
    Declined,
    Captured,
    Voided,
    Refunded,
}

/// The gateway's record for one order: payments are idempotent per order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub order_id: OrderId,
    /// The event the order is for: settlement is per event.
    pub event_id: EventId,
    pub amount_cents: Cents,
    pub status: PaymentStatus,
}

/// Ledger entry kinds; the ledger is append-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LedgerKind {
    Authorize,
    Decline,
    Capture,
    Void,
    Refund,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub seq: u64,
    pub order_id: OrderId,
    pub event_id: EventId,
    pub kind: LedgerKind,
    pub amount_cents: Cents,
    pub at_ms: UnixMs,
}

impl LedgerKind {
    /// Whether an entry of this kind moved money, and so goes into a
    /// settlement batch: a capture (paid in) or a refund (paid back).
    /// Authorizations, voids and declines move nothing.
    pub fn moves_money(self) -> bool {
        matches!(self, LedgerKind::Capture | LedgerKind::Refund)
    }
}

/// One closed settlement batch: an event's captures minus refunds over the
/// ledger entries it took. Every settled entry is in exactly one batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SettlementBatch {
    pub batch_id: u64,
    pub event_id: EventId,
    pub closed_at_ms: UnixMs,
    /// The ledger entries (by `seq`) this batch settled, ascending.
    pub entry_seqs: Vec<u64>,
    pub captured_cents: Cents,
    pub refunded_cents: Cents,
}

impl SettlementBatch {
    /// What the batch pays out to the event's organiser.
    pub fn net_cents(&self) -> Cents {
        self.captured_cents - self.refunded_cents
    }
}

/// Count and sum of one ledger kind for one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LedgerStat {
    pub event_id: EventId,
    pub kind: LedgerKind,
    pub count: u64,
    pub amount_cents: Cents,
    /// How many of these entries no settlement batch has taken yet.
    pub unsettled: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_has_rows_times_columns_seats() {
        let event = Event {
            event_id: EventId::from("e"),
            title: "t".into(),
            starts_at: "2030-01-01T00:00:00Z".into(),
            rows: 3,
            cols: 7,
        };
        assert_eq!(event.seat_count(), 21);
    }

    #[test]
    fn only_a_pending_order_is_not_terminal() {
        assert!(!OrderStatus::Pending.is_terminal());
        for s in [
            OrderStatus::Confirmed,
            OrderStatus::Cancelled,
            OrderStatus::Failed,
        ] {
            assert!(s.is_terminal(), "{s:?}");
        }
    }
}
