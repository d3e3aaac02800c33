//! The contract's response types that more than one module reads: a
//! service writes them, an HTTP client of that service parses them.
//!
//! Layer: shared types (bottom); imports only the domain and the crate root.

use serde::{Deserialize, Serialize};
use ticketing_domain::{EventId, Hold, HoldId, SeatId};

/// A hold as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldView {
    pub hold_id: HoldId,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    pub expires_at: String,
    pub expires_at_ms: u64,
    pub amount_cents: i64,
    /// `ACTIVE`, or `CHECKOUT` once an order pinned it.
    pub status: String,
}

impl From<Hold> for HoldView {
    fn from(h: Hold) -> Self {
        Self {
            status: if h.pinned_order.is_some() {
                "CHECKOUT"
            } else {
                "ACTIVE"
            }
            .to_owned(),
            hold_id: h.hold_id,
            event_id: h.event_id,
            seat_ids: h.seat_ids,
            expires_at: crate::rfc3339(h.expires_at_ms),
            expires_at_ms: h.expires_at_ms,
            amount_cents: h.amount_cents,
        }
    }
}
