//! In-memory payment repository: payments by order, an append-only ledger
//! and settlement batches (each ledger entry in at most one).

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use ticketing_domain::ports::{PaymentRepository, RepoError};
use ticketing_domain::{
    EventId, LedgerEntry, LedgerKind, LedgerStat, OrderId, Payment, PaymentStatus, SettlementBatch,
    UnixMs,
};

#[derive(Debug, Default)]
struct Inner {
    payments: BTreeMap<OrderId, Payment>,
    ledger: Vec<LedgerEntry>,
    batches: Vec<SettlementBatch>,
    /// Ledger seq → the batch that took it.
    settled: BTreeMap<u64, u64>,
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

impl Inner {
    /// The batch `seqs` would make, or why it may not be made.
    fn batch(&self, event_id: &EventId, seqs: &[u64]) -> Result<SettlementBatch, RepoError> {
        if seqs.is_empty() {
            return Err(RepoError::Invalid(
                "a batch takes at least one entry".into(),
            ));
        }
        let mut entry_seqs = seqs.to_vec();
        entry_seqs.sort_unstable();
        entry_seqs.dedup();
        let (mut captured_cents, mut refunded_cents) = (0, 0);
        for seq in &entry_seqs {
            if self.settled.contains_key(seq) {
                return Err(RepoError::Conflict);
            }
            // Seqs are 1-based positions in the ledger.
            let entry = usize::try_from(*seq)
                .ok()
                .and_then(|s| s.checked_sub(1))
                .and_then(|i| self.ledger.get(i))
                .filter(|e| &e.event_id == event_id && e.kind.moves_money())
                .ok_or_else(|| {
                    RepoError::Invalid(format!("entry {seq} is not settled in {event_id}"))
                })?;
            match entry.kind {
                LedgerKind::Capture => captured_cents += entry.amount_cents,
                _ => refunded_cents += entry.amount_cents,
            }
        }
        Ok(SettlementBatch {
            batch_id: self.batches.len() as u64 + 1,
            event_id: event_id.clone(),
            closed_at_ms: 0,
            entry_seqs,
            captured_cents,
            refunded_cents,
        })
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
            event_id: payment.event_id.clone(),
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

    async fn unsettled(&self, limit: usize) -> Result<Vec<LedgerEntry>, RepoError> {
        let inner = crate::lock(&self.inner);
        Ok(inner
            .ledger
            .iter()
            .filter(|e| e.kind.moves_money() && !inner.settled.contains_key(&e.seq))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn close_batch(
        &self,
        event_id: &EventId,
        seqs: &[u64],
        at_ms: UnixMs,
    ) -> Result<SettlementBatch, RepoError> {
        let mut inner = crate::lock(&self.inner);
        let mut batch = inner.batch(event_id, seqs)?;
        batch.closed_at_ms = at_ms;
        for seq in &batch.entry_seqs {
            inner.settled.insert(*seq, batch.batch_id);
        }
        inner.batches.push(batch.clone());
        Ok(batch)
    }

    async fn settlements(
        &self,
        event_id: Option<&EventId>,
    ) -> Result<Vec<SettlementBatch>, RepoError> {
        let inner = crate::lock(&self.inner);
        Ok(inner
            .batches
            .iter()
            .filter(|b| event_id.is_none_or(|e| &b.event_id == e))
            .cloned()
            .collect())
    }

    async fn ledger_stats(&self) -> Result<Vec<LedgerStat>, RepoError> {
        let inner = crate::lock(&self.inner);
        let mut stats: BTreeMap<(EventId, LedgerKind), LedgerStat> = BTreeMap::new();
        for e in &inner.ledger {
            let stat = stats
                .entry((e.event_id.clone(), e.kind))
                .or_insert_with(|| LedgerStat {
                    event_id: e.event_id.clone(),
                    kind: e.kind,
                    count: 0,
                    amount_cents: 0,
                    unsettled: 0,
                });
            stat.count += 1;
            stat.amount_cents += e.amount_cents;
            if e.kind.moves_money() && !inner.settled.contains_key(&e.seq) {
                stat.unsettled += 1;
            }
        }
        Ok(stats.into_values().collect())
    }
}
