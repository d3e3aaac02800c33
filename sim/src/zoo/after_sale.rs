//! The after-sale part of the bug zoo: settlement, refunds and returned
//! seats done the broken ways real systems do them.
//!
//! Layer: test code of the simulator; imports the domain's ports and the
//! in-memory adapters it wraps.

use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use ticketing_domain::ports::{Clock, PaymentRepository, RepoError};
use ticketing_domain::{
    EventId, LedgerEntry, LedgerKind, LedgerStat, OrderId, Payment, PaymentStatus, SettlementBatch,
    UnixMs,
};
use ticketing_mem::MemPaymentRepository;
use ticketing_services::worker;
use tokio_util::sync::CancellationToken;

/// Rounds between two checkpoints of the broken worker's cursor.
pub const CHECKPOINT_EVERY_ROUNDS: u64 = 8;

/// BUG (with [`settlement_from_memory`]): settlement batches kept in a
/// table without a unique key on the ledger entry, so nothing stops an
/// entry from being taken twice. Everything else is the in-memory model.
#[derive(Debug)]
pub struct UnkeyedSettlements {
    inner: Arc<MemPaymentRepository>,
    batches: Mutex<Vec<SettlementBatch>>,
    /// The worker's persisted cursor: the last ledger seq it settled.
    checkpoint: Mutex<u64>,
}

impl UnkeyedSettlements {
    pub fn new(inner: Arc<MemPaymentRepository>) -> Self {
        Self {
            inner,
            batches: Mutex::new(Vec::new()),
            checkpoint: Mutex::new(0),
        }
    }

    fn taken(&self) -> BTreeSet<u64> {
        let batches = crate::lock(&self.batches);
        batches
            .iter()
            .flat_map(|b| b.entry_seqs.iter().copied())
            .collect()
    }
}

#[async_trait]
impl PaymentRepository for UnkeyedSettlements {
    async fn get(&self, order_id: &OrderId) -> Result<Option<Payment>, RepoError> {
        self.inner.get(order_id).await
    }
    async fn transition(
        &self,
        expected: Option<PaymentStatus>,
        payment: Payment,
        kind: LedgerKind,
        at_ms: UnixMs,
    ) -> Result<(), RepoError> {
        self.inner.transition(expected, payment, kind, at_ms).await
    }
    async fn ledger(&self) -> Result<Vec<LedgerEntry>, RepoError> {
        self.inner.ledger().await
    }
    async fn unsettled(&self, limit: usize) -> Result<Vec<LedgerEntry>, RepoError> {
        let taken = self.taken();
        let ledger = self.inner.ledger().await?;
        let open = ledger
            .into_iter()
            .filter(|e| e.kind.is_settled() && !taken.contains(&e.seq));
        Ok(open.take(limit).collect())
    }
    /// BUG: records the batch whatever other batches took.
    async fn close_batch(
        &self,
        event_id: &EventId,
        seqs: &[u64],
        at_ms: UnixMs,
    ) -> Result<SettlementBatch, RepoError> {
        let ledger = self.inner.ledger().await?;
        let mut batches = crate::lock(&self.batches);
        let mut batch = SettlementBatch {
            batch_id: batches.len() as u64 + 1,
            event_id: event_id.clone(),
            closed_at_ms: at_ms,
            entry_seqs: seqs.to_vec(),
            captured_cents: 0,
            refunded_cents: 0,
        };
        for e in ledger.iter().filter(|e| seqs.contains(&e.seq)) {
            match e.kind {
                LedgerKind::Capture => batch.captured_cents += e.amount_cents,
                _ => batch.refunded_cents += e.amount_cents,
            }
        }
        batches.push(batch.clone());
        Ok(batch)
    }
    async fn settlements(
        &self,
        event_id: Option<&EventId>,
    ) -> Result<Vec<SettlementBatch>, RepoError> {
        let batches = crate::lock(&self.batches);
        let of = |b: &&SettlementBatch| event_id.is_none_or(|e| &b.event_id == e);
        Ok(batches.iter().filter(of).cloned().collect())
    }
    async fn ledger_stats(&self) -> Result<Vec<LedgerStat>, RepoError> {
        self.inner.ledger_stats().await
    }
}

/// BUG: a settlement worker that remembers how far it got in memory and
/// writes that cursor down only every [`CHECKPOINT_EVERY_ROUNDS`] rounds.
/// After a crash it starts again from the last checkpoint and settles
/// again every entry it settled since.
pub async fn settlement_from_memory(
    repo: Arc<UnkeyedSettlements>,
    clock: Arc<dyn Clock>,
    interval_ms: u64,
    shutdown: CancellationToken,
) {
    let mut cursor = *crate::lock(&repo.checkpoint);
    let mut round = 0u64;
    while worker::pause(interval_ms, &shutdown).await {
        let Ok(ledger) = repo.inner.ledger().await else {
            continue;
        };
        let mut by_event: BTreeMap<EventId, Vec<u64>> = BTreeMap::new();
        for e in ledger
            .iter()
            .filter(|e| e.seq > cursor && e.kind.is_settled())
        {
            by_event.entry(e.event_id.clone()).or_default().push(e.seq);
        }
        for (event_id, seqs) in by_event {
            let _ = repo.close_batch(&event_id, &seqs, clock.now_ms()).await;
        }
        cursor = ledger.last().map_or(cursor, |e| e.seq);
        round += 1;
        if round.is_multiple_of(CHECKPOINT_EVERY_ROUNDS) {
            *crate::lock(&repo.checkpoint) = cursor;
        }
    }
}
