//! The after-sale part of the bug zoo: settlement, refunds and returned
//! seats done the broken ways real systems do them.
//!
//! Layer: test code of the simulator; imports the domain's ports and the
//! in-memory adapters it wraps.

use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use ticketing_domain::ports::{
    ApplyOutcome, ClaimedOutbox, Clock, IdempotencyBegin, OrderRecord, OrderRepository,
    OutboxMessage, PaymentRepository, RepoError, SagaUpdate, SeatStore, StatusFeed, StoredResponse,
};
use ticketing_domain::{
    EventId, LedgerEntry, LedgerKind, LedgerStat, MessageId, OrderId, Payment, PaymentStatus,
    SettlementBatch, Ticket, UnixMs,
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
            .filter(|e| e.kind.moves_money() && !taken.contains(&e.seq));
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
            .filter(|e| e.seq > cursor && e.kind.moves_money())
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

/// BUG: the cancel saga returns the seats first and then voids only the
/// tickets of seats the order still holds — none by then. The seats go
/// back on sale while the order keeps a valid ticket: its cancellation ends
/// REFUNDED with a valid ticket, and a second buyer of the seat meets the
/// first ticket. An order repository that, asked to void an order's
/// tickets, returns its seats in the seat store instead.
#[derive(Debug)]
pub struct ReturnBeforeVoid {
    inner: Arc<dyn OrderRepository>,
    seats: Arc<dyn SeatStore>,
    clock: Arc<dyn Clock>,
}

impl ReturnBeforeVoid {
    pub fn new(
        inner: Arc<dyn OrderRepository>,
        seats: Arc<dyn SeatStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner,
            seats,
            clock,
        }
    }
}

#[async_trait]
impl OrderRepository for ReturnBeforeVoid {
    async fn begin_idempotent(
        &self,
        key: &str,
        request_hash: &str,
        candidate: &OrderId,
        now_ms: UnixMs,
    ) -> Result<IdempotencyBegin, RepoError> {
        self.inner
            .begin_idempotent(key, request_hash, candidate, now_ms)
            .await
    }
    async fn complete_idempotent(&self, key: &str, r: StoredResponse) -> Result<(), RepoError> {
        self.inner.complete_idempotent(key, r).await
    }
    async fn place_order(
        &self,
        order: OrderRecord,
        outbox: Vec<OutboxMessage>,
        key: &str,
        response: StoredResponse,
    ) -> Result<(), RepoError> {
        self.inner.place_order(order, outbox, key, response).await
    }
    async fn get_order(&self, order_id: &OrderId) -> Result<Option<OrderRecord>, RepoError> {
        self.inner.get_order(order_id).await
    }
    async fn apply(&self, mut update: SagaUpdate) -> Result<ApplyOutcome, RepoError> {
        if update.void_tickets {
            // BUG: the seats first; then "its" tickets — of seats it no
            // longer holds, so none.
            let o = &update.order;
            let customer = o.customer_id.as_deref();
            let now = self.clock.now_ms();
            let returned =
                self.seats
                    .return_seats(&o.event_id, &o.seat_ids, &o.order_id, customer, now);
            returned
                .await
                .map_err(|e| RepoError::Unavailable(e.to_string()))?;
            update.void_tickets = false;
        }
        self.inner.apply(update).await
    }
    async fn status_feed(&self) -> Result<Box<dyn StatusFeed>, RepoError> {
        self.inner.status_feed().await
    }
    async fn mark_processed(&self, message_id: &MessageId) -> Result<(), RepoError> {
        self.inner.mark_processed(message_id).await
    }
    async fn due_orders(&self, now_ms: UnixMs, limit: usize) -> Result<Vec<OrderId>, RepoError> {
        self.inner.due_orders(now_ms, limit).await
    }
    async fn claim_outbox(
        &self,
        limit: usize,
        lease_ms: u64,
        now_ms: UnixMs,
    ) -> Result<Vec<ClaimedOutbox>, RepoError> {
        self.inner.claim_outbox(limit, lease_ms, now_ms).await
    }
    async fn mark_sent(&self, seqs: &[u64]) -> Result<(), RepoError> {
        self.inner.mark_sent(seqs).await
    }
    async fn outbox_backlog(&self) -> Result<usize, RepoError> {
        self.inner.outbox_backlog().await
    }
    async fn tickets(&self) -> Result<Vec<Ticket>, RepoError> {
        self.inner.tickets().await
    }
    async fn voided_tickets(&self) -> Result<Vec<Ticket>, RepoError> {
        self.inner.voided_tickets().await
    }
    async fn orders(&self) -> Result<Vec<OrderRecord>, RepoError> {
        self.inner.orders().await
    }
}

/// BUG: the refund is retried without its idempotency key, so the gateway
/// cannot tell the retry from a new refund and pays it again. A gateway
/// repository that answers a refunded payment as still CAPTURED to the
/// refund path (it has no key to find the first refund by) and books the
/// second refund.
#[derive(Debug)]
pub struct KeylessRefunds {
    inner: Arc<MemPaymentRepository>,
}

impl KeylessRefunds {
    pub fn new(inner: Arc<MemPaymentRepository>) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl PaymentRepository for KeylessRefunds {
    async fn get(&self, order_id: &OrderId) -> Result<Option<Payment>, RepoError> {
        let mut p = self.inner.get(order_id).await?;
        if let Some(p) = p.as_mut().filter(|p| p.status == PaymentStatus::Refunded) {
            p.status = PaymentStatus::Captured;
        }
        Ok(p)
    }
    async fn transition(
        &self,
        expected: Option<PaymentStatus>,
        payment: Payment,
        kind: LedgerKind,
        at_ms: UnixMs,
    ) -> Result<(), RepoError> {
        let actual = self.inner.get(&payment.order_id).await?.map(|p| p.status);
        let expected = match (kind, actual) {
            // BUG: a second refund of the same payment is booked.
            (LedgerKind::Refund, Some(PaymentStatus::Refunded)) => actual,
            _ => expected,
        };
        self.inner.transition(expected, payment, kind, at_ms).await
    }
    async fn ledger(&self) -> Result<Vec<LedgerEntry>, RepoError> {
        self.inner.ledger().await
    }
    async fn unsettled(&self, limit: usize) -> Result<Vec<LedgerEntry>, RepoError> {
        self.inner.unsettled(limit).await
    }
    async fn close_batch(
        &self,
        event_id: &EventId,
        seqs: &[u64],
        at_ms: UnixMs,
    ) -> Result<SettlementBatch, RepoError> {
        self.inner.close_batch(event_id, seqs, at_ms).await
    }
    async fn settlements(&self, e: Option<&EventId>) -> Result<Vec<SettlementBatch>, RepoError> {
        self.inner.settlements(e).await
    }
    async fn ledger_stats(&self) -> Result<Vec<LedgerStat>, RepoError> {
        self.inner.ledger_stats().await
    }
}
