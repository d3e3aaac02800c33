use super::RepoError;
use crate::model::{LedgerEntry, LedgerKind, OrderId, Payment, PaymentStatus, UnixMs};
use async_trait::async_trait;

/// The payment gateway's own storage: one payment per order plus an
/// append-only ledger.
#[async_trait]
pub trait PaymentRepository: Send + Sync + std::fmt::Debug {
    async fn get(&self, order_id: &OrderId) -> Result<Option<Payment>, RepoError>;

    /// One transaction: if the stored status equals `expected` (`None` = no
    /// payment yet), store `payment` and append a ledger entry of `kind`;
    /// otherwise `Conflict` and nothing is written. This compare-and-set is
    /// what makes concurrent retries of one call take effect once.
    async fn transition(
        &self,
        expected: Option<PaymentStatus>,
        payment: Payment,
        kind: LedgerKind,
        at_ms: UnixMs,
    ) -> Result<(), RepoError>;

    /// The ledger in append order.
    async fn ledger(&self) -> Result<Vec<LedgerEntry>, RepoError>;
}
