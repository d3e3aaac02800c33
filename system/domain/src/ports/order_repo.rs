use super::RepoError;
use crate::model::OrderStatus;
use crate::model::{Cents, EventId, HoldId, MessageId, OrderId, SeatId, Ticket, TraceId, UnixMs};
use crate::refund::RefundState;
use crate::saga::SagaState;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The order service's record of one order and its saga.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub order_id: OrderId,
    pub hold_id: HoldId,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    pub amount_cents: Cents,
    pub customer_id: Option<String>,
    pub saga: SagaState,
    pub created_at_ms: UnixMs,
    pub updated_at_ms: UnixMs,
    /// Failed attempts at the current step (payment calls); reset on progress.
    pub attempts: u32,
    /// When the watchdog should drive this saga again.
    pub next_attempt_at_ms: UnixMs,
    /// Optimistic concurrency version, bumped by every write.
    pub version: u64,
    pub trace_id: Option<TraceId>,
    /// The after-sale saga's state once a cancellation started (the order
    /// was CONFIRMED: `saga` stays `Done`).
    #[serde(default)]
    pub refund: Option<RefundState>,
}

impl OrderRecord {
    /// The status clients see: the after-sale state once there is one.
    pub fn status(&self) -> OrderStatus {
        match self.refund {
            Some(r) => r.order_status(),
            None => self.saga.order_status(),
        }
    }

    /// Whether the watchdog has nothing more to do with this order (stored
    /// as the `done` column): the forward saga is done and no cancellation
    /// is under way.
    pub fn is_settled(&self) -> bool {
        self.saga.is_done() && self.refund.is_none_or(RefundState::is_settled)
    }
}

/// A row of the transactional outbox, written with the business change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub message_id: MessageId,
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// An outbox row claimed by a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedOutbox {
    pub seq: u64,
    pub message: OutboxMessage,
}

/// The response stored under an `Idempotency-Key`, replayed verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Outcome of starting an idempotent request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// First use of the key: it is now bound to this request hash and order id.
    Started { order_id: OrderId },
    /// The key is bound to this same request, not finished yet (a crash or a
    /// concurrent retry): continue with this order id — every step is idempotent.
    InProgress { order_id: OrderId },
    /// Finished before: replay this response.
    Completed(StoredResponse),
    /// The key is bound to a different request body.
    Mismatch,
}

/// A saga step's writes, applied in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaUpdate {
    /// The new record; stored only if the stored version equals `order.version`
    /// (the stored version becomes `order.version + 1`).
    pub order: OrderRecord,
    /// The bus message this step consumed, recorded for dedup.
    pub processed: Option<MessageId>,
    pub outbox: Vec<OutboxMessage>,
    /// Durable tickets; at most one valid ticket per (event, seat).
    pub tickets: Vec<Ticket>,
    /// Void every valid ticket of `order` (the after-sale saga's first
    /// step): a voided ticket is kept for the audit but no longer counts as
    /// its seat's ticket, so the seat can be sold again with a new one.
    pub void_tickets: bool,
}

impl SagaUpdate {
    /// A step that writes `order` (and records `processed`), nothing else
    /// yet: outbox rows and tickets are added by the caller.
    pub fn of(order: OrderRecord, processed: Option<MessageId>) -> Self {
        Self {
            order,
            processed,
            outbox: Vec::new(),
            tickets: Vec::new(),
            void_tickets: false,
        }
    }
}

/// Result of applying a saga update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied,
    /// `processed` was already recorded: nothing was written.
    Duplicate,
}

/// Most order ids one [`StatusFeed::next`] answers, and the most a feed
/// keeps unread (past it the oldest are dropped).
pub const STATUS_CHANGES_MAX: usize = 1_024;

/// A listener from [`OrderRepository::status_feed`]. A latency shortcut,
/// not a record: changes from before it started, from while its
/// connection was being replaced, or that it fell too far behind on are
/// not named, so a reader waiting for a status reads it again at its
/// deadline whatever the feed said.
#[async_trait]
pub trait StatusFeed: Send {
    /// Waits for orders that reached a terminal status and names up to
    /// [`STATUS_CHANGES_MAX`] of them; may name none after a long quiet
    /// while (an implementation's bound on one wait).
    async fn next(&mut self) -> Result<Vec<OrderId>, RepoError>;
}

/// The order service's database. Every method is one transaction.
#[async_trait]
pub trait OrderRepository: Send + Sync + std::fmt::Debug {
    /// Binds `key` to `request_hash` and `candidate` if the key is new;
    /// otherwise reports what the key is bound to. Atomic: of two concurrent
    /// first uses, exactly one gets `Started`.
    async fn begin_idempotent(
        &self,
        key: &str,
        request_hash: &str,
        candidate: &OrderId,
        now_ms: UnixMs,
    ) -> Result<IdempotencyBegin, RepoError>;

    /// Stores the final response for a key whose request created no order
    /// (a 4xx), so replays get the same answer. No-op if already completed.
    async fn complete_idempotent(
        &self,
        key: &str,
        response: StoredResponse,
    ) -> Result<(), RepoError>;

    /// One transaction: insert the order, its outbox rows, and complete the
    /// idempotency key with `response`. Idempotent: if the order exists,
    /// nothing is written and `Ok` is returned.
    async fn place_order(
        &self,
        order: OrderRecord,
        outbox: Vec<OutboxMessage>,
        idempotency_key: &str,
        response: StoredResponse,
    ) -> Result<(), RepoError>;

    async fn get_order(&self, order_id: &OrderId) -> Result<Option<OrderRecord>, RepoError>;

    /// One transaction: dedup on `processed`, check the version, write the
    /// record, the outbox rows and the tickets, and void the order's tickets
    /// when asked. `TicketConflict` (nothing written) if a valid ticket
    /// exists for another order; a ticket that already exists for the same
    /// order is fine. `Conflict` on a version mismatch.
    async fn apply(&self, update: SagaUpdate) -> Result<ApplyOutcome, RepoError>;

    /// Starts listening for orders that reach a terminal status
    /// ([`OrderStatus::is_terminal`]) by a step of any writer of this
    /// database (every replica), each named once its step committed.
    async fn status_feed(&self) -> Result<Box<dyn StatusFeed>, RepoError>;

    /// Records a consumed message with no other effect (an input that did not
    /// apply). Idempotent.
    async fn mark_processed(&self, message_id: &MessageId) -> Result<(), RepoError>;

    /// Unsettled orders ([`OrderRecord::is_settled`] false) whose
    /// `next_attempt_at_ms <= now_ms`, oldest first, at most `limit`.
    async fn due_orders(&self, now_ms: UnixMs, limit: usize) -> Result<Vec<OrderId>, RepoError>;

    /// Claims up to `limit` unsent outbox rows in sequence order for
    /// `lease_ms` (rows claimed by another relay and not yet expired are
    /// skipped — `FOR UPDATE SKIP LOCKED` in SQL).
    async fn claim_outbox(
        &self,
        limit: usize,
        lease_ms: u64,
        now_ms: UnixMs,
    ) -> Result<Vec<ClaimedOutbox>, RepoError>;

    /// Marks rows sent. Call only after the broker acknowledged them.
    async fn mark_sent(&self, seqs: &[u64]) -> Result<(), RepoError>;

    /// How many outbox rows are not yet sent.
    async fn outbox_backlog(&self) -> Result<usize, RepoError>;

    /// Every valid ticket, ordered by (event, seat) — for audits and tests.
    async fn tickets(&self) -> Result<Vec<Ticket>, RepoError>;

    /// Every voided ticket, ordered by (event, seat, order) — for audits.
    async fn voided_tickets(&self) -> Result<Vec<Ticket>, RepoError>;

    /// Every order, ordered by id — for audits and tests.
    async fn orders(&self) -> Result<Vec<OrderRecord>, RepoError>;
}
