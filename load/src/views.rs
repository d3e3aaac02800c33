//! The system's answers the harness reads outside the measured load (the
//! audit's ground truth): orders and tickets, the payment ledger, seat maps.
//!
//! Layer: bottom of the crate; imports nothing of it (`client` fetches these,
//! `audit` checks them).

use serde::Deserialize;

/// An order as `GET /internal/audit/orders` shows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditOrder {
    pub order_id: String,
    pub status: String,
    pub event_id: String,
    pub seat_ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditTicket {
    pub event_id: String,
    pub seat_id: String,
    pub order_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderTruth {
    pub orders: Vec<AuditOrder>,
    pub tickets: Vec<AuditTicket>,
    pub outbox_backlog: u64,
}

/// A payment ledger entry (`GET /internal/payments`).
#[derive(Debug, Clone, Deserialize)]
pub struct LedgerEntry {
    pub order_id: String,
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SeatMap {
    pub seats: Vec<SeatState>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatState {
    pub seat_id: String,
    pub status: String,
}
