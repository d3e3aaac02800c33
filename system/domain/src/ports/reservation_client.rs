use crate::model::{Hold, HoldId, OrderId, TraceId};
use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("hold not found")]
    NotFound,
    /// The hold is gone, and why (only its owner's order is told).
    #[error("hold is gone ({0:?})")]
    Gone(super::GoneReason),
    #[error("hold is pinned to another order")]
    PinnedToOther,
    /// No answer or 5xx: retryable, outcome unknown (pin is idempotent).
    #[error("reservation unavailable: {0}")]
    Unavailable(String),
}

/// What reservation answered to a confirm over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmReply {
    /// The hold's seats are sold to the order (also on a repeat).
    Confirmed,
    /// The fence refused: nothing changed.
    Rejected(crate::saga::FailureReason),
    /// No answer or 5xx: outcome unknown (the confirm is idempotent).
    Unavailable(String),
}

/// The order service's view of reservation, used while placing an order.
#[async_trait]
pub trait ReservationClient: Send + Sync + std::fmt::Debug {
    /// Pins the hold to the order for the checkout window and returns it.
    /// Idempotent for the same order. `customer` is the ordering customer:
    /// a hold someone else owns is `NotFound`.
    async fn pin(
        &self,
        hold_id: &HoldId,
        order_id: &OrderId,
        customer: Option<&str>,
        trace: Option<&TraceId>,
    ) -> Result<Hold, PinError>;

    /// The fenced confirm of the hold's seats for the order, answered at
    /// once: the saga's fast path (the `ConfirmSeats` command through the
    /// outbox is its retry path). Idempotent for the same order.
    async fn confirm(
        &self,
        hold_id: &HoldId,
        order_id: &OrderId,
        trace: Option<&TraceId>,
    ) -> ConfirmReply;
}
