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
}
