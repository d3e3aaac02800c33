use crate::model::{Cents, EventId, OrderId, PaymentStatus, TraceId};
use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// No answer within the call's timeout: the effect may or may not have
    /// happened. Retry with the same order id (the idempotency key).
    #[error("payment gateway timed out")]
    Timeout,
    /// Transport error or 5xx: retryable.
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
    /// A definite refusal (4xx), e.g. capture of a voided payment.
    #[error("payment gateway refused: {code}")]
    Refused { code: String, message: String },
}

/// The order service's view of the payment gateway. Every call is idempotent
/// per order id: repeating a call returns the payment's current status and
/// never moves money twice.
#[async_trait]
pub trait PaymentGateway: Send + Sync + std::fmt::Debug {
    /// Returns `Authorized` or `Declined` (or a later status if already past).
    /// The payment is recorded against `event_id`, which settlement is by.
    async fn authorize(
        &self,
        order_id: &OrderId,
        event_id: &EventId,
        amount_cents: Cents,
        trace: Option<&TraceId>,
    ) -> Result<PaymentStatus, GatewayError>;

    /// Captures an authorization. Returns `Captured`.
    async fn capture(
        &self,
        order_id: &OrderId,
        trace: Option<&TraceId>,
    ) -> Result<PaymentStatus, GatewayError>;

    /// Voids an authorization; voiding an unknown payment records a void so a
    /// late authorization cannot take effect. Returns `Voided` (or `Declined`).
    async fn void(
        &self,
        order_id: &OrderId,
        trace: Option<&TraceId>,
    ) -> Result<PaymentStatus, GatewayError>;

    /// Refunds a capture. Returns `Refunded`.
    async fn refund(
        &self,
        order_id: &OrderId,
        trace: Option<&TraceId>,
    ) -> Result<PaymentStatus, GatewayError>;
}
