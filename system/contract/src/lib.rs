//! # ticketing-contract
//!
//! The requests and answers of the contract (v1, and v2's customers: public `/api/...` and internal
//! `/internal/...`) as Rust types, declared once. The services serialize
//! them; the load harness, tests and tools deserialize the same types, so a
//! field renamed on one side breaks the other's build, not a run. Statuses
//! are the domain's enums (`SeatStatus`, `OrderStatus`, …), never strings.
//! docs/API.md describes each shape.
//!
//! The public types also derive utoipa's `ToSchema`: the published OpenAPI
//! document (`GET /api/openapi.json`, `docs/openapi.json`) is built from
//! them, so it cannot drift from what the services send.
//!
//! Layer: imports only `ticketing-domain` (ids, statuses), serde and
//! utoipa's derive; no server or client code.

use serde::{Deserialize, Serialize};
use std::time::{Duration, UNIX_EPOCH};
use ticketing_domain::saga::FailureReason;
use ticketing_domain::{
    Cents, EventId, Hold, HoldId, OrderId, OrderStatus, PaymentStatus, QueueTicket, SeatId,
    SeatStatus, UnixMs, VisitorId,
};
use utoipa::ToSchema;

/// RFC 3339 UTC text for a clock reading (no wall-clock read involved).
pub fn rfc3339(ms: UnixMs) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A clock reading for RFC 3339 UTC text (`2030-01-01T20:00:00Z`, with or
/// without fractional seconds): the inverse of [`rfc3339`]. `None` for
/// anything else, including offsets other than `Z` and times before 1970.
pub fn parse_rfc3339_ms(text: &str) -> Option<UnixMs> {
    let t = humantime::parse_rfc3339(text).ok()?;
    let ms = t.duration_since(UNIX_EPOCH).ok()?.as_millis();
    UnixMs::try_from(ms).ok()
}

/// Every error answer: `{"code","message","traceId"}`, plus, for some codes,
/// one of the optional fields below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    pub trace_id: String,
    /// `SEATS_UNAVAILABLE`, `SEAT_NOT_FOUND`: the seats concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat_ids: Option<Vec<SeatId>>,
    /// `HOLD_ORDERED` (to the hold's owner): the order it became.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    /// `CUSTOMER_LIMIT`: which limit, the customer's count and the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_limit: Option<CustomerLimitView>,
    /// `RATE_LIMITED`: when to try again (also the `Retry-After` header, in seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// `customerLimit` of a 409 `CUSTOMER_LIMIT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerLimitView {
    /// `SEATS_PER_EVENT` or `ACTIVE_HOLDS`.
    pub kind: String,
    pub count: u32,
    pub limit: u32,
}

/// `GET /api/events`, `GET /api/events/{id}`, `POST /internal/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub event_id: EventId,
    pub title: String,
    pub starts_at: String,
    pub seat_count: usize,
    pub available_count: usize,
    /// Whether a hold needs the event's waiting room's admission token.
    #[serde(default)]
    pub waiting_room: bool,
}

/// One seat of a seat map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatView {
    pub seat_id: SeatId,
    pub row: u32,
    pub col: u32,
    /// Price in cents.
    pub price: Cents,
    pub status: SeatStatus,
}

/// `GET /api/events/{id}/seats`, and the seat stream's `snapshot` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SeatMapView {
    pub version: u64,
    pub seats: Vec<SeatView>,
}

/// One seat of `GET /api/events/{id}/seats/layout`: what never changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LayoutSeatView {
    pub seat_id: SeatId,
    pub row: u32,
    pub col: u32,
    /// Price in cents.
    pub price: Cents,
}

/// `GET /api/events/{id}/seats/layout`: the event's seats in a fixed order
/// (the order of [`SeatStatusView::status`]), cacheable for the event's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatLayoutView {
    pub event_id: EventId,
    pub seats: Vec<LayoutSeatView>,
}

/// `GET /api/events/{id}/seats/status`: every seat's status at `version`,
/// one character per seat in the layout's order (`A` available, `H` held,
/// `S` sold) — a few bytes per seat instead of the full map's ~70.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SeatStatusView {
    pub version: u64,
    pub status: String,
}

impl SeatStatusView {
    /// The character a status is sent as.
    pub fn code(s: SeatStatus) -> char {
        match s {
            SeatStatus::Available => 'A',
            SeatStatus::Held => 'H',
            SeatStatus::Sold => 'S',
        }
    }

    /// The status a character stands for (`None`: not one of `A`, `H`, `S`).
    pub fn decode(c: char) -> Option<SeatStatus> {
        match c {
            'A' => Some(SeatStatus::Available),
            'H' => Some(SeatStatus::Held),
            'S' => Some(SeatStatus::Sold),
            _ => None,
        }
    }

    /// The statuses in layout order (`None` if a character is not a status).
    pub fn statuses(&self) -> Option<Vec<SeatStatus>> {
        self.status.chars().map(Self::decode).collect()
    }
}

/// The seat stream's `change` event (its SSE `id` is the version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeView {
    pub version: u64,
    pub seat_id: SeatId,
    pub status: SeatStatus,
}

/// One server-sent event of a stream, as the OpenAPI document describes
/// it: `event` names its kind, `data` is one JSON text (the seat stream:
/// `snapshot` → [`SeatMapView`], `change` → [`ChangeView`]; the queue's:
/// `place` → [`QueuePlaceView`]), `id` the seat map's version where it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SseEventView {
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub data: String,
}

/// A hold's state as its holder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldStatus {
    /// Live, not pinned by an order.
    Active,
    /// Pinned by an order (checkout).
    Checkout,
}

/// `POST /api/reservations` (201), `GET /api/reservations/{id}`, `…/extend`,
/// and `POST /internal/holds/{id}/pin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldView {
    pub hold_id: HoldId,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    pub expires_at: String,
    pub expires_at_ms: u64,
    pub amount_cents: Cents,
    pub status: HoldStatus,
}

impl From<Hold> for HoldView {
    fn from(h: Hold) -> Self {
        Self {
            status: if h.pinned_order.is_some() {
                HoldStatus::Checkout
            } else {
                HoldStatus::Active
            },
            expires_at: rfc3339(h.expires_at_ms),
            hold_id: h.hold_id,
            event_id: h.event_id,
            seat_ids: h.seat_ids,
            expires_at_ms: h.expires_at_ms,
            amount_cents: h.amount_cents,
        }
    }
}

/// `POST /api/orders` (202): the order id and its first status; also
/// `POST /api/orders/{id}/cancel` (202), with CANCELLING or later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacedView {
    pub order_id: OrderId,
    pub status: OrderStatus,
}

/// `GET /api/orders/{id}`, and each order of the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: OrderId,
    pub status: OrderStatus,
    /// Why it did not end CONFIRMED (`null` otherwise).
    pub reason: Option<FailureReason>,
    pub hold_id: HoldId,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    pub amount_cents: Cents,
    pub created_at: String,
    pub updated_at: String,
}

/// A durable ticket: one per sold (event, seat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    pub event_id: EventId,
    pub seat_id: SeatId,
    pub order_id: OrderId,
}

/// `GET /internal/audit/orders`: the order service's ground truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    pub orders: Vec<OrderView>,
    pub tickets: Vec<TicketView>,
    pub outbox_backlog: usize,
    /// Each order's customer (the token's subject), for invariant 9; orders
    /// placed anonymously are absent.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub order_customers: std::collections::BTreeMap<OrderId, String>,
}

/// `GET /internal/payments/{order_id}` and the payment operations' answers.
/// (`GET /internal/payments` answers the ledger: `ticketing_domain::LedgerEntry`.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub order_id: OrderId,
    pub status: PaymentStatus,
    pub amount_cents: Cents,
}

/// `GET /internal/ledger/stats`: the ledger by event and kind, and totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerStatsView {
    pub stats: Vec<ticketing_domain::LedgerStat>,
    pub captured_cents: Cents,
    pub refunded_cents: Cents,
    /// Captures and refunds no settlement batch has taken yet.
    pub unsettled_entries: u64,
}

/// `POST /internal/settlements/close`: the batches closed now, and whether
/// the ledger was left fully settled (`false`: entries kept arriving for
/// longer than one call's rounds; call again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleView {
    pub closed: Vec<ticketing_domain::SettlementBatch>,
    pub settled: bool,
}

// --- Request bodies. Ids are plain text here: the services validate them
// (length, alphabet) and answer 400 with the standard body, not a serde
// error. Unknown fields are refused.

/// `POST /internal/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateEventBody {
    pub event_id: String,
    pub title: String,
    pub starts_at: String,
    pub rows: u32,
    pub cols: u32,
    /// Protects the event with a waiting room (absent: no room).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_room: Option<WaitingRoomBody>,
}

/// `waitingRoom` of `POST /internal/events`: when the sale opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WaitingRoomBody {
    /// On-sale time, Unix milliseconds; absent: now (the room admits at once,
    /// first come first served).
    #[serde(default)]
    pub on_sale_at_ms: Option<u64>,
}

/// `POST /api/queue/{eventId}` (201): the visitor's place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueJoinView {
    pub event_id: EventId,
    /// The visitor's secret handle: `GET /api/queue/{eventId}/{ticket}`.
    pub ticket: QueueTicket,
    pub visitor_id: VisitorId,
    pub place: QueuePlaceView,
}

/// Where a visitor is: `GET /api/queue/{eventId}/{ticket}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuePlaceView {
    /// `WAITING`, `ADMITTED` or `EXPIRED`.
    pub status: QueueStatus,
    /// Joined before the on-sale time: the order is drawn then.
    pub prequeue: bool,
    /// 1-based place in line (`null` in the pre-queue and once admitted).
    pub position: Option<u64>,
    /// People before this visitor (`null` as `position`).
    pub ahead: Option<u64>,
    /// From the measured admission rate (`null` when nobody can be admitted).
    pub estimated_wait_ms: Option<u64>,
    /// The on-sale time (Unix ms).
    pub on_sale_at_ms: u64,
    /// Admitted: the token every hold on this event must carry
    /// (`X-Admission-Token`).
    pub admission_token: Option<String>,
    /// Admitted: the token's expiry (Unix ms).
    pub token_expires_at_ms: Option<u64>,
    /// Admitted: when the queue admitted this visitor (Unix ms, the queue's
    /// clock) — what a client checks the admission order against.
    #[serde(default)]
    pub admitted_at_ms: Option<u64>,
}

/// A place's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueueStatus {
    Waiting,
    Admitted,
    Expired,
}

/// `PUT /internal/queue/{eventId}`: the room's caps, changed at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QueueCapsBody {
    pub active_max: u32,
    pub admit_per_s: u32,
}

/// `GET /internal/queue/{eventId}`: the room's settings and figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueRoomView {
    pub event_id: EventId,
    pub opens_at_ms: u64,
    pub on_sale_at_ms: u64,
    pub active_max: u32,
    pub admit_per_s: u32,
    pub waiting: u64,
    pub active: u64,
    pub admitted_total: u64,
    /// Admissions per second over the last whole seconds (the wait estimate's rate).
    pub admitted_per_s: f64,
}

/// `POST /api/reservations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(example = json!({"eventId": "spring-gala", "seatIds": ["5-5", "5-6"], "holdSeconds": 120}))]
pub struct HoldBody {
    pub event_id: String,
    pub seat_ids: Vec<String>,
    pub hold_seconds: u64,
}

/// `POST /api/reservations/{id}/extend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(example = json!({"holdSeconds": 120}))]
pub struct ExtendBody {
    pub hold_seconds: u64,
}

/// `POST /internal/holds/{id}/pin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PinBody {
    pub order_id: String,
    /// The ordering customer (the token's); only the hold's owner may pin
    /// it. Absent: an anonymous order, which may pin only an anonymous hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
}

/// `POST /internal/holds/{id}/confirm`: the saga's fenced confirm over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfirmBody {
    pub order_id: String,
}

/// The answer to `POST /internal/holds/{id}/confirm`: the seats are the
/// order's (`confirmed`, also on a repeat), or the fence refused and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmView {
    pub confirmed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ticketing_domain::saga::FailureReason>,
}

/// `POST /api/orders` (with an `Idempotency-Key` header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OrderBody {
    pub hold_id: String,
}

/// `POST /api/users` (sign-up) and `POST /api/sessions` (login): an email
/// and a password. `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(example = json!({"email": "ann@example.org", "password": "correct horse battery staple"}))]
pub struct CredentialsBody {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for CredentialsBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsBody")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `POST /api/users` → 201: the new account (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    /// The customer id every token for this account names (`sub`).
    pub customer_id: String,
    pub email: String,
}

/// `POST /api/sessions` → 201: a bearer token for the hold and order routes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub customer_id: String,
    /// RFC 3339 UTC, and the same as Unix milliseconds.
    pub expires_at: String,
    pub expires_at_ms: UnixMs,
}

impl std::fmt::Debug for SessionView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionView")
            .field("access_token", &"<redacted>")
            .field("customer_id", &self.customer_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// `POST /internal/payments/{order_id}/authorize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizeBody {
    pub amount_cents: Cents,
    /// The event the order is for (settlement is per event).
    pub event_id: EventId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_text_reads_back_as_the_reading_it_was_written_from() {
        for ms in [0, 1_000, 1_893_528_000_123] {
            assert_eq!(parse_rfc3339_ms(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(
            parse_rfc3339_ms("2030-01-01T20:00:00Z"),
            Some(1_893_528_000_000)
        );
        for bad in ["", "tomorrow", "2030-01-01", "2030-01-01T20:00:00+02:00"] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn wire_names_are_the_contracts() {
        let hold = HoldView {
            hold_id: HoldId::from("h_1"),
            event_id: EventId::from("e"),
            seat_ids: vec![SeatId::from("1-1")],
            expires_at: rfc3339(0),
            expires_at_ms: 0,
            amount_cents: 100,
            status: HoldStatus::Checkout,
        };
        let v = serde_json::to_value(&hold).expect("serializes");
        assert_eq!(v["holdId"], "h_1");
        assert_eq!(v["seatIds"][0], "1-1");
        assert_eq!(v["expiresAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["status"], "CHECKOUT");
        let back: HoldView = serde_json::from_value(v).expect("deserializes");
        assert_eq!(back, hold);
        let change = serde_json::to_value(ChangeView {
            version: 3,
            seat_id: SeatId::from("2-2"),
            status: SeatStatus::Sold,
        })
        .expect("serializes");
        assert_eq!(
            change,
            serde_json::json!({"version": 3, "seatId": "2-2", "status": "SOLD"})
        );
    }

    #[test]
    fn request_bodies_are_camel_case_and_refuse_unknown_fields() {
        let body = HoldBody {
            event_id: "e".into(),
            seat_ids: vec!["1-1".into()],
            hold_seconds: 60,
        };
        assert_eq!(
            serde_json::to_value(&body).expect("serializes"),
            serde_json::json!({"eventId": "e", "seatIds": ["1-1"], "holdSeconds": 60})
        );
        let typo = serde_json::json!({"holdId": "h", "holdID": "h"});
        assert!(serde_json::from_value::<OrderBody>(typo).is_err());
    }
}
