//! In-memory payment repository: payments by order plus an append-only ledger.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use ticketing_domain::ports::{PaymentRepository, RepoError};
use ticketing_domain::{LedgerEntry, LedgerKind, OrderId, Payment, PaymentStatus, UnixMs};

#[derive(Debug, Default)]
struct Inner {
    payments: BTreeMap<OrderId, Payment>,
    ledger: Vec<LedgerEntry>,
}

#[derive(Debug, Default)]
pub struct MemPaymentRepository {
    inner: Mutex<Inner>,
}

impl MemPaymentRepository {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl PaymentRepository for MemPaymentRepository {
    async fn get(&self, order_id: &OrderId) -> Result<Option<Payment>, RepoError> {
        Ok(crate::lock(&self.inner).payments.get(order_id).cloned())
    }

    async fn transition(
        &self,
        expected: Option<PaymentStatus>,
        payment: Payment,
        kind: LedgerKind,
        at_ms: UnixMs,
    ) -> Result<(), RepoError> {
        let mut inner = crate::lock(&self.inner);
        let current = inner.payments.get(&payment.order_id).map(|p| p.status);
        if current != expected {
            return Err(RepoError::Conflict);
        }
        let seq = inner.ledger.len() as u64 + 1;
        inner.ledger.push(LedgerEntry {
            seq,
            order_id: payment.order_id.clone(),
            kind,
            amount_cents: payment.amount_cents,
            at_ms,
        });
        inner.payments.insert(payment.order_id.clone(), payment);
        Ok(())
    }

    async fn ledger(&self) -> Result<Vec<LedgerEntry>, RepoError> {
        Ok(crate::lock(&self.inner).ledger.clone())
    }
}
