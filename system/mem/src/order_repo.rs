//! In-memory order repository: orders, idempotency records, processed
//! messages, tickets (unique per event and seat) and the outbox, under one
//! lock so each method is one transaction.

use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use ticketing_domain::ports::{
    ApplyOutcome, ClaimedOutbox, IdempotencyBegin, OrderRecord, OrderRepository, OutboxMessage,
    RepoError, STATUS_CHANGES_MAX, SagaUpdate, StatusFeed, StoredResponse,
};
use ticketing_domain::{EventId, MessageId, OrderId, SeatId, Ticket, UnixMs};
use tokio::sync::broadcast;

#[derive(Debug)]
struct IdemRecord {
    request_hash: String,
    order_id: OrderId,
    response: Option<StoredResponse>,
}

#[derive(Debug)]
struct OutboxRow {
    message: OutboxMessage,
    leased_until_ms: UnixMs,
}

#[derive(Debug, Default)]
struct Inner {
    orders: BTreeMap<OrderId, OrderRecord>,
    idempotency: BTreeMap<String, IdemRecord>,
    processed: BTreeSet<MessageId>,
    tickets: BTreeMap<(EventId, SeatId), OrderId>,
    /// Voided tickets, kept for the audit.
    voided: BTreeSet<Ticket>,
    outbox: BTreeMap<u64, OutboxRow>,
    next_seq: u64,
    /// When true every call fails with `Unavailable` (a database outage, for tests).
    down: bool,
    /// Ids of every outbox row ever written, if auditing is on.
    outbox_audit: Option<Vec<MessageId>>,
}

impl Inner {
    fn push_outbox(&mut self, msgs: Vec<OutboxMessage>) {
        for message in msgs {
            if let Some(audit) = self.outbox_audit.as_mut() {
                audit.push(message.message_id.clone());
            }
            self.next_seq += 1;
            self.outbox.insert(
                self.next_seq,
                OutboxRow {
                    message,
                    leased_until_ms: 0,
                },
            );
        }
    }

    fn check_up(&self) -> Result<(), RepoError> {
        if self.down {
            Err(RepoError::Unavailable("database down".into()))
        } else {
            Ok(())
        }
    }
}

#[derive(Debug)]
pub struct MemOrderRepository {
    inner: Mutex<Inner>,
    /// Orders that reached a terminal status, to every status feed (each
    /// keeps up to `STATUS_CHANGES_MAX` unread).
    status_tx: broadcast::Sender<OrderId>,
}

impl Default for MemOrderRepository {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            status_tx: broadcast::channel(STATUS_CHANGES_MAX).0,
        }
    }
}

/// A status feed of the in-memory repository: its own receiver.
struct MemStatusFeed {
    rx: broadcast::Receiver<OrderId>,
}

#[async_trait]
impl StatusFeed for MemStatusFeed {
    async fn next(&mut self) -> Result<Vec<OrderId>, RepoError> {
        use broadcast::error::{RecvError, TryRecvError};
        let first = loop {
            match self.rx.recv().await {
                Ok(id) => break id,
                // Fell behind: the dropped ones are not named (the
                // receiver skips to the oldest kept, so this ends).
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => {
                    return Err(RepoError::Unavailable("repository dropped".into()));
                }
            }
        };
        let mut ids = vec![first];
        while ids.len() < STATUS_CHANGES_MAX {
            match self.rx.try_recv() {
                Ok(id) => ids.push(id),
                Err(TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        Ok(ids)
    }
}

impl MemOrderRepository {
    pub fn new() -> Self {
        Self::default()
    }

    /// A repository that also remembers the id of every outbox row it ever
    /// wrote, so an audit can check each one reached the broker.
    pub fn with_outbox_audit() -> Self {
        let repo = Self::default();
        crate::lock(&repo.inner).outbox_audit = Some(Vec::new());
        repo
    }

    /// The ids of every outbox row written so far (empty unless auditing).
    pub fn outbox_written(&self) -> Vec<MessageId> {
        crate::lock(&self.inner)
            .outbox_audit
            .clone()
            .unwrap_or_default()
    }

    /// Simulates a database outage (for tests of the services' error paths).
    pub fn set_down(&self, down: bool) {
        crate::lock(&self.inner).down = down;
    }
}

#[async_trait]
impl OrderRepository for MemOrderRepository {
    async fn begin_idempotent(
        &self,
        key: &str,
        request_hash: &str,
        candidate: &OrderId,
        _now_ms: UnixMs,
    ) -> Result<IdempotencyBegin, RepoError> {
        let mut inner = crate::lock(&self.inner);
        inner.check_up()?;
        if let Some(rec) = inner.idempotency.get(key) {
            if rec.request_hash != request_hash {
                return Ok(IdempotencyBegin::Mismatch);
            }
            return Ok(match &rec.response {
                Some(r) => IdempotencyBegin::Completed(r.clone()),
                None => IdempotencyBegin::InProgress {
                    order_id: rec.order_id.clone(),
                },
            });
        }
        inner.idempotency.insert(
            key.to_owned(),
            IdemRecord {
                request_hash: request_hash.to_owned(),
                order_id: candidate.clone(),
                response: None,
            },
        );
        Ok(IdempotencyBegin::Started {
            order_id: candidate.clone(),
        })
    }

    async fn complete_idempotent(
        &self,
        key: &str,
        response: StoredResponse,
    ) -> Result<(), RepoError> {
        let mut inner = crate::lock(&self.inner);
        inner.check_up()?;
        if let Some(rec) = inner.idempotency.get_mut(key) {
            rec.response.get_or_insert(response);
        }
        Ok(())
    }

    async fn place_order(
        &self,
        order: OrderRecord,
        outbox: Vec<OutboxMessage>,
        idempotency_key: &str,
        response: StoredResponse,
    ) -> Result<(), RepoError> {
        let mut inner = crate::lock(&self.inner);
        inner.check_up()?;
        if !inner.orders.contains_key(&order.order_id) {
            inner.orders.insert(order.order_id.clone(), order);
            inner.push_outbox(outbox);
        }
        if let Some(rec) = inner.idempotency.get_mut(idempotency_key) {
            rec.response.get_or_insert(response);
        }
        Ok(())
    }

    async fn get_order(&self, order_id: &OrderId) -> Result<Option<OrderRecord>, RepoError> {
        let inner = crate::lock(&self.inner);
        inner.check_up()?;
        Ok(inner.orders.get(order_id).cloned())
    }

    async fn apply(&self, update: SagaUpdate) -> Result<ApplyOutcome, RepoError> {
        let mut inner = crate::lock(&self.inner);
        inner.check_up()?;
        if let Some(m) = &update.processed
            && inner.processed.contains(m)
        {
            return Ok(ApplyOutcome::Duplicate);
        }
        let stored = inner.orders.get(&update.order.order_id).map(|o| o.version);
        if stored != Some(update.order.version) {
            return Err(RepoError::Conflict);
        }
        for t in &update.tickets {
            if let Some(owner) = inner.tickets.get(&(t.event_id.clone(), t.seat_id.clone()))
                && *owner != t.order_id
            {
                return Err(RepoError::TicketConflict {
                    event_id: t.event_id.clone(),
                    seat_id: t.seat_id.clone(),
                });
            }
        }
        if update.void_tickets {
            let order = &update.order.order_id;
            let mine: Vec<(EventId, SeatId)> = inner
                .tickets
                .iter()
                .filter(|(_, o)| *o == order)
                .map(|(k, _)| k.clone())
                .collect();
            for key in mine {
                inner.tickets.remove(&key);
                let (event_id, seat_id) = key;
                inner.voided.insert(Ticket {
                    event_id,
                    seat_id,
                    order_id: order.clone(),
                });
            }
        }
        for t in update.tickets {
            inner.tickets.insert((t.event_id, t.seat_id), t.order_id);
        }
        if let Some(m) = update.processed {
            inner.processed.insert(m);
        }
        inner.push_outbox(update.outbox);
        let mut order = update.order;
        order.version += 1;
        if order.status().is_terminal() {
            // No feed listening is fine: nobody waits.
            let _ = self.status_tx.send(order.order_id.clone());
        }
        inner.orders.insert(order.order_id.clone(), order);
        Ok(ApplyOutcome::Applied)
    }

    async fn status_feed(&self) -> Result<Box<dyn StatusFeed>, RepoError> {
        crate::lock(&self.inner).check_up()?;
        Ok(Box::new(MemStatusFeed {
            rx: self.status_tx.subscribe(),
        }))
    }

    async fn mark_processed(&self, message_id: &MessageId) -> Result<(), RepoError> {
        let mut inner = crate::lock(&self.inner);
        inner.check_up()?;
        inner.processed.insert(message_id.clone());
        Ok(())
    }

    async fn due_orders(&self, now_ms: UnixMs, limit: usize) -> Result<Vec<OrderId>, RepoError> {
        let inner = crate::lock(&self.inner);
        inner.check_up()?;
        let mut due: Vec<(UnixMs, &OrderId)> = inner
            .orders
            .values()
            .filter(|o| !o.is_settled() && o.next_attempt_at_ms <= now_ms)
            .map(|o| (o.created_at_ms, &o.order_id))
            .collect();
        due.sort();
        Ok(due
            .into_iter()
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect())
    }

    async fn claim_outbox(
        &self,
        limit: usize,
        lease_ms: u64,
        now_ms: UnixMs,
    ) -> Result<Vec<ClaimedOutbox>, RepoError> {
        let mut inner = crate::lock(&self.inner);
        inner.check_up()?;
        let mut out = Vec::new();
        for (seq, row) in inner.outbox.iter_mut() {
            if out.len() >= limit {
                break;
            }
            if row.leased_until_ms > now_ms {
                continue;
            }
            row.leased_until_ms = now_ms.saturating_add(lease_ms);
            out.push(ClaimedOutbox {
                seq: *seq,
                message: row.message.clone(),
            });
        }
        Ok(out)
    }

    async fn mark_sent(&self, seqs: &[u64]) -> Result<(), RepoError> {
        let mut inner = crate::lock(&self.inner);
        inner.check_up()?;
        for s in seqs {
            inner.outbox.remove(s);
        }
        Ok(())
    }

    async fn outbox_backlog(&self) -> Result<usize, RepoError> {
        let inner = crate::lock(&self.inner);
        inner.check_up()?;
        Ok(inner.outbox.len())
    }

    async fn tickets(&self) -> Result<Vec<Ticket>, RepoError> {
        let inner = crate::lock(&self.inner);
        inner.check_up()?;
        Ok(inner
            .tickets
            .iter()
            .map(|((e, s), o)| Ticket {
                event_id: e.clone(),
                seat_id: s.clone(),
                order_id: o.clone(),
            })
            .collect())
    }

    async fn voided_tickets(&self) -> Result<Vec<Ticket>, RepoError> {
        let inner = crate::lock(&self.inner);
        inner.check_up()?;
        Ok(inner.voided.iter().cloned().collect())
    }

    async fn orders(&self) -> Result<Vec<OrderRecord>, RepoError> {
        let inner = crate::lock(&self.inner);
        inner.check_up()?;
        Ok(inner.orders.values().cloned().collect())
    }
}
