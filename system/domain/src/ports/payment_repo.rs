use super::RepoError;
use crate::model::{
    EventId, LedgerEntry, LedgerKind, LedgerStat, OrderId, Payment, PaymentStatus, SettlementBatch,
    UnixMs,
};
use async_trait::async_trait;

/// The payment gateway's own storage: one payment per order, an
/// append-only ledger, and the settlement batches that take its entries.
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

    /// Up to `limit` entries that move money ([`LedgerKind::moves_money`])
    /// and that no batch has taken yet, in append order.
    async fn unsettled(&self, limit: usize) -> Result<Vec<LedgerEntry>, RepoError>;

    /// One transaction: a new batch for `event_id` taking exactly the
    /// entries `seqs` (non-empty), its sums computed from those entries.
    /// `Conflict` and nothing written if any of them is already in a batch
    /// (a concurrent or repeated close); `Invalid` if one is not a settled
    /// kind's entry of that event. A crash leaves either the whole batch or
    /// nothing, so an entry is never lost nor counted twice.
    async fn close_batch(
        &self,
        event_id: &EventId,
        seqs: &[u64],
        at_ms: UnixMs,
    ) -> Result<SettlementBatch, RepoError>;

    /// Closed batches in the order they were closed, of one event or all.
    async fn settlements(
        &self,
        event_id: Option<&EventId>,
    ) -> Result<Vec<SettlementBatch>, RepoError>;

    /// Count, sum and unsettled count per (event, kind), ordered by both.
    async fn ledger_stats(&self) -> Result<Vec<LedgerStat>, RepoError>;
}
