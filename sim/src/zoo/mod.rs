//! The bug zoo: deliberately broken variants of parts of the system that
//! reproduce weaknesses of the seed system. They live here, in test code —
//! never in the shipped services — and exist to prove the checkers can fail:
//! each must be caught within a stated number of seeds of a named plan.

pub mod after_sale;

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_domain::ports::{
    AdmitReport, BusError, ChangesSince, ConfirmOutcome, Consumer, CustomerLimits, Delivery,
    EventBus, GatewayError, HoldRequest, Joined, LimitKind, OutgoingMessage, PaymentGateway, Place,
    QueueError, QueueStore, Releaser, RoomStats, SeatStore, SeatStoreError,
};
use ticketing_domain::queue::{PlaceState, RoomConfig};
use ticketing_domain::{
    Cents, EventId, Hold, HoldId, OrderId, PaymentStatus, QueueTicket, SeatId, SeatMap, TraceId,
    UnixMs, VisitorId,
};
use ticketing_mem::MemSeatStore;
use ticketing_services::order::OrderState;
use ticketing_services::worker;
use tokio_util::sync::CancellationToken;

/// A known bug and how the sweep is expected to catch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Confirm sells the hold's seats without checking the hold is live and
    /// pinned to the order (seed system: "delete hold, mark sold").
    UnfencedConfirm,
    /// The outbox relay marks a row sent before the broker acknowledged it.
    RelayMarksBeforeAck,
    /// Reservation's consumer commits each command as it is polled, before
    /// its effect, so a command whose effect keeps failing is lost (with the
    /// seed system's missing re-send of `ConfirmSeats`).
    CommitBeforeEffect,
    /// Payment calls are retried without the idempotency key (a new key per attempt).
    PaymentRetryWithoutKey,
    /// Releasing a hold frees its seats without checking who holds them now.
    ReleaseWithoutOwnerCheck,
    /// The per-customer limits are checked by reading the customer's count
    /// first and holding in a second step (a service-side read-then-write):
    /// one customer's concurrent holds all pass the check.
    LimitCheckedBeforeHold,
    /// Reservation does not check the admission token (a queued world).
    HoldWithoutAdmission,
    /// The admission step reads the caps' budget, then admits it in a
    /// second step: concurrent queue processes over-admit.
    AdmissionReadThenWrite,
    /// Positions are answered from an order drawn again on every read.
    PrequeueRedrawnOnRead,
    /// The admission step never frees an idle shopper's slot nor drops a
    /// visitor who stopped asking: slots fill with ghosts, the caps stall.
    AbandonedNeverRemoved,
    /// The seat store answers an event's version from a copy refreshed at
    /// most every [`STALE_VERSION_MS`] (a lagging replica): the catalog's
    /// cache believes itself current and serves maps older than holds and
    /// sales clients were already told of. The end state is sound; only
    /// the history shows it.
    StaleMapVersion,
    /// Settlement keeps its cursor in memory (checkpointed every few
    /// rounds) over batches with no unique key on the ledger entry: after
    /// the payment service crashes, entries are settled a second time.
    SettlementCountedTwice,
    /// The cancel saga returns the seats before voiding the tickets, and
    /// then voids only tickets of seats the order still holds: none.
    ReturnBeforeVoid,
    /// The refund is retried without its idempotency key: the gateway
    /// cannot recognise the retry and refunds again.
    RefundWithoutKey,
    /// Returning a cancelled order's seats frees them whoever they are
    /// sold to now (a late or repeated return frees a resold seat).
    UnfencedReturn,
}

pub const ALL: &[Bug] = &[
    Bug::UnfencedConfirm,
    Bug::RelayMarksBeforeAck,
    Bug::CommitBeforeEffect,
    Bug::PaymentRetryWithoutKey,
    Bug::ReleaseWithoutOwnerCheck,
    Bug::LimitCheckedBeforeHold,
    Bug::HoldWithoutAdmission,
    Bug::AdmissionReadThenWrite,
    Bug::PrequeueRedrawnOnRead,
    Bug::AbandonedNeverRemoved,
    Bug::StaleMapVersion,
    Bug::SettlementCountedTwice,
    Bug::ReturnBeforeVoid,
    Bug::RefundWithoutKey,
    Bug::UnfencedReturn,
];

impl Bug {
    pub fn name(self) -> &'static str {
        match self {
            Bug::UnfencedConfirm => "unfenced-confirm",
            Bug::RelayMarksBeforeAck => "relay-marks-before-ack",
            Bug::CommitBeforeEffect => "commit-before-effect",
            Bug::PaymentRetryWithoutKey => "payment-retry-without-key",
            Bug::ReleaseWithoutOwnerCheck => "release-without-owner-check",
            Bug::LimitCheckedBeforeHold => "limit-checked-before-hold",
            Bug::HoldWithoutAdmission => "hold-without-admission",
            Bug::AdmissionReadThenWrite => "admission-read-then-write",
            Bug::PrequeueRedrawnOnRead => "prequeue-redrawn-on-read",
            Bug::AbandonedNeverRemoved => "abandoned-never-removed",
            Bug::StaleMapVersion => "stale-map-version",
            Bug::SettlementCountedTwice => "settlement-counted-twice",
            Bug::ReturnBeforeVoid => "return-before-void",
            Bug::RefundWithoutKey => "refund-without-key",
            Bug::UnfencedReturn => "unfenced-return",
        }
    }

    pub fn parse(name: &str) -> Option<Bug> {
        ALL.iter().copied().find(|b| b.name() == name)
    }

    pub fn description(self) -> &'static str {
        match self {
            Bug::UnfencedConfirm => {
                "confirm deletes the hold and marks seats sold without checking who holds them"
            }
            Bug::RelayMarksBeforeAck => {
                "outbox relay marks a message sent before the broker acknowledged it"
            }
            Bug::CommitBeforeEffect => {
                "consumer commits before its effect, no retry, no re-send safety net"
            }
            Bug::PaymentRetryWithoutKey => "payment calls retried without an idempotency key",
            Bug::ReleaseWithoutOwnerCheck => {
                "release frees the seats without checking who holds them now"
            }
            Bug::LimitCheckedBeforeHold => {
                "the customer limits are read, then the hold written, in two steps (concurrent holds of one customer all pass)"
            }
            Bug::HoldWithoutAdmission => {
                "reservation grants holds on a protected event without checking the admission token"
            }
            Bug::AdmissionReadThenWrite => {
                "the admission counter is read and written in two steps (over-admission under concurrency)"
            }
            Bug::PrequeueRedrawnOnRead => {
                "the queue's order is drawn again on every read (positions jump)"
            }
            Bug::AbandonedNeverRemoved => {
                "idle slots are never freed and silent visitors never dropped (the caps stall)"
            }
            Bug::StaleMapVersion => {
                "the seat map's version is read from a copy up to 2 s old: the catalog serves maps older than what clients were told"
            }
            Bug::SettlementCountedTwice => {
                "settlement remembers its progress in memory over batches with no unique entry key: after a crash it settles entries again"
            }
            Bug::ReturnBeforeVoid => {
                "a cancellation returns the seats first, then voids only tickets of seats it still holds (none): REFUNDED with a valid ticket"
            }
            Bug::RefundWithoutKey => {
                "a refund retried without its idempotency key is paid again (the gateway cannot tell it from a new one)"
            }
            Bug::UnfencedReturn => {
                "returning a cancelled order's seats frees them whoever holds or bought them now"
            }
        }
    }

    /// The plan that exposes it, and within how many seeds (1..=N) it must be caught.
    pub fn caught_by(self) -> (&'static str, u64) {
        match self {
            Bug::UnfencedConfirm => ("partition-order-payment", 5),
            Bug::RelayMarksBeforeAck => ("kafka-outage", 5),
            Bug::CommitBeforeEffect => ("redis-restart", 5),
            Bug::PaymentRetryWithoutKey => ("payment-timeouts", 5),
            Bug::ReleaseWithoutOwnerCheck => ("none", 5),
            Bug::LimitCheckedBeforeHold => ("none", 3),
            Bug::HoldWithoutAdmission => ("none", 3),
            Bug::AdmissionReadThenWrite => ("none", 3),
            Bug::PrequeueRedrawnOnRead => ("none", 3),
            Bug::AbandonedNeverRemoved => ("none", 3),
            Bug::StaleMapVersion => ("none", 3),
            Bug::SettlementCountedTwice => ("service-crashes", 3),
            Bug::ReturnBeforeVoid => ("none", 3),
            Bug::RefundWithoutKey => ("payment-timeouts", 5),
            Bug::UnfencedReturn => ("kafka-outage", 5),
        }
    }

    /// Whether the bug lives in the waiting room (it runs in a queued world).
    pub fn needs_waiting_room(self) -> bool {
        matches!(
            self,
            Bug::HoldWithoutAdmission
                | Bug::AdmissionReadThenWrite
                | Bug::PrequeueRedrawnOnRead
                | Bug::AbandonedNeverRemoved
        )
    }
}

/// The broken admission step's gap between reading the budget and writing
/// the admissions: a read, a round trip to another store and the write, as a
/// service doing it in two steps over the network would take.
const ADMIT_GAP_MS: u64 = 10;

/// How old the lagging copy of an event's version may be (`StaleMapVersion`).
pub const STALE_VERSION_MS: u64 = 2_000;

/// When (simulated ms) an event's version and availability were copied, and the copy.
type LaggingCopy = (u64, (u64, usize));

/// A seat store with the store-side bugs, wrapping the in-memory model.
#[derive(Debug)]
pub struct ZooSeatStore {
    inner: Arc<MemSeatStore>,
    bug: Bug,
    /// Every hold ever granted: the broken paths act on remembered seats.
    seen: Mutex<BTreeMap<HoldId, (EventId, Vec<SeatId>)>>,
    /// `StaleMapVersion`: per event, the copied version and availability
    /// and when (simulated ms) they were copied.
    lagging: Mutex<BTreeMap<EventId, LaggingCopy>>,
}

impl ZooSeatStore {
    pub fn new(inner: Arc<MemSeatStore>, bug: Bug) -> Self {
        Self {
            inner,
            bug,
            seen: Mutex::new(BTreeMap::new()),
            lagging: Mutex::new(BTreeMap::new()),
        }
    }

    fn remembered(&self, h: &HoldId) -> Option<(EventId, Vec<SeatId>)> {
        crate::lock(&self.seen).get(h).cloned()
    }
}

#[async_trait]
impl SeatStore for ZooSeatStore {
    async fn create_event(&self, e: &EventId, s: &[(SeatId, Cents)]) -> Result<(), SeatStoreError> {
        self.inner.create_event(e, s).await
    }
    async fn hold(&self, mut req: HoldRequest, now: UnixMs) -> Result<Hold, SeatStoreError> {
        if self.bug == Bug::LimitCheckedBeforeHold
            && let Some(customer) = req.customer_id.clone()
        {
            // BUG: check the count, let another request run, then hold
            // with the limits lifted (the check was "already done").
            let (seats, holds) = self.inner.customer_tally(&req.event_id, &customer);
            let l = req.limits;
            let want = req.seat_ids.len() as u32;
            if l.seats_per_event > 0 && seats + want > l.seats_per_event {
                return Err(limit_error(
                    LimitKind::SeatsPerEvent,
                    seats,
                    l.seats_per_event,
                ));
            }
            if l.active_holds > 0 && holds >= l.active_holds {
                return Err(limit_error(LimitKind::ActiveHolds, holds, l.active_holds));
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
            req.limits = CustomerLimits::default();
        }
        let hold = self.inner.hold(req, now).await?;
        crate::lock(&self.seen).insert(
            hold.hold_id.clone(),
            (hold.event_id.clone(), hold.seat_ids.clone()),
        );
        Ok(hold)
    }
    async fn get_hold(&self, h: &HoldId, now: UnixMs) -> Result<Hold, SeatStoreError> {
        self.inner.get_hold(h, now).await
    }
    async fn extend(
        &self,
        h: &HoldId,
        ms: u64,
        max: u64,
        now: UnixMs,
    ) -> Result<Hold, SeatStoreError> {
        self.inner.extend(h, ms, max, now).await
    }
    async fn release(&self, h: &HoldId, by: Releaser, now: UnixMs) -> Result<(), SeatStoreError> {
        let r = self.inner.release(h, by.clone(), now).await;
        if self.bug == Bug::ReleaseWithoutOwnerCheck
            && by == Releaser::Holder
            && matches!(
                r,
                Err(SeatStoreError::HoldGone { .. } | SeatStoreError::HoldPinned)
            )
            && let Some((event, seats)) = self.remembered(h)
        {
            // BUG: free the seats, whoever holds or bought them now.
            self.inner.overwrite_seats_unchecked(&event, &seats, None);
            return Ok(());
        }
        r
    }
    async fn pin(
        &self,
        h: &HoldId,
        o: &OrderId,
        ms: u64,
        now: UnixMs,
    ) -> Result<Hold, SeatStoreError> {
        self.inner.pin(h, o, ms, now).await
    }
    async fn confirm(
        &self,
        h: &HoldId,
        o: &OrderId,
        tp: Option<&str>,
        now: UnixMs,
    ) -> Result<ConfirmOutcome, SeatStoreError> {
        let r = self.inner.confirm(h, o, tp, now).await?;
        if self.bug == Bug::UnfencedConfirm
            && matches!(r, ConfirmOutcome::Rejected(_))
            && let Some((event_id, seat_ids)) = self.remembered(h)
        {
            // BUG: sell anyway.
            self.inner
                .overwrite_seats_unchecked(&event_id, &seat_ids, Some(o));
            return Ok(ConfirmOutcome::Confirmed { event_id, seat_ids });
        }
        Ok(r)
    }
    async fn expire_due(&self, now: UnixMs, limit: usize) -> Result<usize, SeatStoreError> {
        self.inner.expire_due(now, limit).await
    }
    async fn seat_map(&self, e: &EventId) -> Result<SeatMap, SeatStoreError> {
        self.inner.seat_map(e).await
    }
    async fn availability(&self, e: &EventId) -> Result<(u64, usize), SeatStoreError> {
        if self.bug != Bug::StaleMapVersion {
            return self.inner.availability(e).await;
        }
        // BUG: answer from a copy refreshed at most every STALE_VERSION_MS.
        let now_ms = crate::clock::SimClock::elapsed_ms();
        if let Some((at_ms, copy)) = crate::lock(&self.lagging).get(e)
            && now_ms < at_ms + STALE_VERSION_MS
        {
            return Ok(*copy);
        }
        let fresh = self.inner.availability(e).await?;
        crate::lock(&self.lagging).insert(e.clone(), (now_ms, fresh));
        Ok(fresh)
    }
    async fn changes_since(
        &self,
        e: &EventId,
        v: u64,
        l: usize,
    ) -> Result<ChangesSince, SeatStoreError> {
        self.inner.changes_since(e, v, l).await
    }
    async fn sold_seats(&self, e: &EventId) -> Result<Vec<(SeatId, OrderId)>, SeatStoreError> {
        self.inner.sold_seats(e).await
    }
    async fn return_seats(
        &self,
        e: &EventId,
        seats: &[SeatId],
        o: &OrderId,
        c: Option<&str>,
        now: UnixMs,
    ) -> Result<Vec<SeatId>, SeatStoreError> {
        if self.bug == Bug::UnfencedReturn {
            // BUG: free them, whoever they are sold to now.
            self.inner.overwrite_seats_unchecked(e, seats, None);
            return Ok(seats.to_vec());
        }
        self.inner.return_seats(e, seats, o, c, now).await
    }
}

fn limit_error(kind: LimitKind, count: u32, limit: u32) -> SeatStoreError {
    SeatStoreError::CustomerLimit { kind, count, limit }
}

/// A gateway client that uses a fresh key for every attempt.
#[derive(Debug)]
pub struct KeylessPayments {
    pub inner: Arc<dyn PaymentGateway>,
    attempts: Mutex<BTreeMap<OrderId, u32>>,
}

impl KeylessPayments {
    pub fn new(inner: Arc<dyn PaymentGateway>) -> Self {
        Self {
            inner,
            attempts: Mutex::new(BTreeMap::new()),
        }
    }

    /// BUG: the "idempotency key" changes on every call.
    fn key(&self, o: &OrderId) -> OrderId {
        let mut a = crate::lock(&self.attempts);
        let n = a.entry(o.clone()).or_default();
        *n += 1;
        OrderId(format!("{o}~{n}"))
    }

    /// The key of the latest authorization attempt (captures and voids use it).
    fn latest(&self, o: &OrderId) -> OrderId {
        let a = crate::lock(&self.attempts);
        OrderId(format!("{o}~{}", a.get(o).copied().unwrap_or(1)))
    }
}

#[async_trait]
impl PaymentGateway for KeylessPayments {
    async fn authorize(
        &self,
        o: &OrderId,
        e: &EventId,
        amount: Cents,
        t: Option<&TraceId>,
    ) -> Result<PaymentStatus, GatewayError> {
        let k = self.key(o);
        self.inner.authorize(&k, e, amount, t).await
    }
    async fn capture(
        &self,
        o: &OrderId,
        t: Option<&TraceId>,
    ) -> Result<PaymentStatus, GatewayError> {
        self.inner.capture(&self.latest(o), t).await
    }
    async fn void(&self, o: &OrderId, t: Option<&TraceId>) -> Result<PaymentStatus, GatewayError> {
        self.inner.void(&self.latest(o), t).await
    }
    async fn refund(
        &self,
        o: &OrderId,
        t: Option<&TraceId>,
    ) -> Result<PaymentStatus, GatewayError> {
        self.inner.refund(o, t).await
    }
}

/// BUG: marks rows sent, then publishes; a failed publish loses the message.
pub async fn relay_marks_before_ack(
    state: OrderState,
    bus: Arc<dyn EventBus>,
    shutdown: CancellationToken,
) {
    while worker::pause(state.saga.outbox_interval_ms, &shutdown).await {
        let now = state.ctx.clock.now_ms();
        let Ok(rows) = state
            .repo
            .claim_outbox(64, state.saga.outbox_lease_ms, now)
            .await
        else {
            continue;
        };
        let seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
        if state.repo.mark_sent(&seqs).await.is_err() {
            continue;
        }
        for row in rows {
            let msg = OutgoingMessage {
                topic: row.message.topic,
                key: row.message.key,
                payload: row.message.payload,
                headers: row.message.headers,
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), bus.publish(msg)).await;
        }
    }
}

/// BUG: a bus whose consumers commit every message as it is polled, before
/// any effect (the service's own commit after the effect then does nothing),
/// so a command whose effect keeps failing is gone once the consumer's few
/// quick retries are spent, like the seed system's. The consumer loop is the
/// service's own (`worker::consume`); only the adapter is swapped.
#[derive(Debug)]
pub struct CommitOnPollBus {
    inner: Arc<dyn EventBus>,
}

impl CommitOnPollBus {
    pub fn new(inner: Arc<dyn EventBus>) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl EventBus for CommitOnPollBus {
    async fn publish(&self, msg: OutgoingMessage) -> Result<(u32, u64), BusError> {
        self.inner.publish(msg).await
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        let inner = self.inner.subscribe(topic, group).await?;
        Ok(Box::new(CommitOnPoll { inner }))
    }
}

#[derive(Debug)]
struct CommitOnPoll {
    inner: Box<dyn Consumer>,
}

#[async_trait]
impl Consumer for CommitOnPoll {
    async fn poll(&mut self, max: usize, wait_ms: u64) -> Result<Vec<Delivery>, BusError> {
        let batch = self.inner.poll(max, wait_ms).await?;
        for d in &batch {
            self.inner.commit(d).await?;
        }
        Ok(batch)
    }

    async fn commit(&mut self, _d: &Delivery) -> Result<(), BusError> {
        Ok(())
    }

    async fn rewind(&mut self) -> Result<(), BusError> {
        self.inner.rewind().await
    }

    async fn lag(&mut self) -> Result<Option<u64>, BusError> {
        self.inner.lag().await
    }

    fn known_lag(&self) -> Option<u64> {
        self.inner.known_lag()
    }
}

/// A waiting-room store with the queue's bugs, wrapping the in-memory model.
#[derive(Debug)]
pub struct ZooQueueStore {
    inner: Arc<ticketing_mem::MemQueueStore>,
    bug: Bug,
}

impl ZooQueueStore {
    pub fn new(inner: Arc<ticketing_mem::MemQueueStore>, bug: Bug) -> Self {
        Self { inner, bug }
    }
}

/// A position that jumps with every read (a pre-queue re-drawn per read).
fn redrawn(ticket: &QueueTicket, now_ms: u64, ahead: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ now_ms;
    for b in ticket.as_str().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % (2 * ahead + 10)
}

#[async_trait]
impl QueueStore for ZooQueueStore {
    async fn open_room(&self, e: &EventId, room: &RoomConfig) -> Result<(), QueueError> {
        self.inner.open_room(e, room).await
    }
    async fn room(&self, e: &EventId) -> Result<Option<RoomConfig>, QueueError> {
        self.inner.room(e).await
    }
    async fn set_caps(&self, e: &EventId, a: u32, r: u32) -> Result<RoomConfig, QueueError> {
        self.inner.set_caps(e, a, r).await
    }
    async fn join(
        &self,
        e: &EventId,
        t: &QueueTicket,
        v: &VisitorId,
        c: Option<&str>,
        key: u64,
        now: u64,
    ) -> Result<Joined, QueueError> {
        self.inner.join(e, t, v, c, key, now).await
    }
    async fn place(
        &self,
        e: &EventId,
        t: &QueueTicket,
        now: u64,
    ) -> Result<Option<Place>, QueueError> {
        let place = self.inner.place(e, t, now).await?;
        if self.bug != Bug::PrequeueRedrawnOnRead {
            return Ok(place);
        }
        Ok(place.map(|mut p| {
            if let PlaceState::Waiting { ahead } = p.state {
                p.state = PlaceState::Waiting {
                    ahead: redrawn(t, now, ahead),
                };
            }
            p
        }))
    }
    async fn admit(&self, e: &EventId, now: u64) -> Result<AdmitReport, QueueError> {
        if self.bug == Bug::AbandonedNeverRemoved {
            return Ok(self.inner.admit_unswept(e, now));
        }
        if self.bug != Bug::AdmissionReadThenWrite {
            return self.inner.admit(e, now).await;
        }
        // Read the budget, let another step run, then admit what was read.
        let budget = self.inner.budget_now(e, now);
        tokio::time::sleep(Duration::from_millis(ADMIT_GAP_MS)).await;
        Ok(self.inner.admit_stale(e, now, budget))
    }
    async fn touch(&self, e: &EventId, v: &VisitorId, now: u64) -> Result<bool, QueueError> {
        self.inner.touch(e, v, now).await
    }
    async fn leave(&self, e: &EventId, v: &VisitorId) -> Result<(), QueueError> {
        self.inner.leave(e, v).await
    }
    async fn bind_hold(&self, e: &EventId, v: &VisitorId, h: &HoldId) -> Result<(), QueueError> {
        self.inner.bind_hold(e, v, h).await
    }
    async fn bought(&self, e: &EventId, h: &HoldId) -> Result<(), QueueError> {
        self.inner.bought(e, h).await
    }
    async fn stats(&self, e: &EventId, now: u64) -> Result<RoomStats, QueueError> {
        self.inner.stats(e, now).await
    }
    async fn rooms(&self) -> Result<Vec<EventId>, QueueError> {
        self.inner.rooms().await
    }
}
