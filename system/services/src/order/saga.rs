//! The saga orchestrator: turns bus messages and watchdog ticks into
//! `ticketing_domain::saga` inputs, executes the commands it returns, and
//! persists each step in one transaction (state + outbox + tickets + the
//! consumed message id). Payment calls are made inline, idempotent per
//! order, and retried with capped exponential backoff by the watchdog.
//! The seats are confirmed by calling reservation over HTTP (the same fenced
//! step, answered at once: no broker hop on a purchase's critical path);
//! when that call has no answer, the `ConfirmSeats` command through the
//! outbox is the retry path, after `saga.confirm_resend_ms`. `ReleaseHold`
//! goes through the outbox.
//! A confirmed order's cancellation is driven from here too, by
//! `order::after_sale`.
//!
//! Safety does not depend on timing: the fenced confirm in the seat store
//! and the unique ticket per (event, seat) prevent oversell whatever the
//! order of messages, duplicates or crashes.
//!
//! Layer: part of order; imports `order::state`, `worker`, `metrics`,
//! `http::trace`, not its parent.

use super::state::{OrderState, outbox_message};
use crate::worker;
use std::sync::Arc;
use std::time::Duration;
use ticketing_domain::messages::{BusMessage, Envelope, topics};
use ticketing_domain::ports::{
    ApplyOutcome, ClaimedOutbox, ConfirmReply, EventBus, GatewayError, OrderRecord,
    OutgoingMessage, RepoError, SagaUpdate,
};
use ticketing_domain::probe::{self, Probe};
use ticketing_domain::refund::RefundInput;
use ticketing_domain::saga::{self as sm, SagaCommand, SagaInput, SagaState, Transition};
use ticketing_domain::{MessageId, OrderId, PaymentStatus, Ticket};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// Steps one `drive` call may take before yielding (a bound on the loop).
const MAX_STEPS_PER_DRIVE: usize = 8;
/// Retries of one write that lost an optimistic-concurrency race.
const MAX_CONFLICT_RETRIES: usize = 4;
/// Orders the watchdog drives per tick.
const WATCHDOG_BATCH: usize = 128;
/// The name of the watchdog's span: a root of its own in an order's trace.
pub const WATCHDOG_SPAN: &str = "retry order-saga";
/// Outbox rows published per relay round.
const OUTBOX_BATCH: usize = 256;
/// Timeout of one publish to the broker.
const PUBLISH_TIMEOUT_MS: u64 = 5_000;

impl OrderState {
    /// The new record and writes for one transition. Entering
    /// `ConfirmingSeats` writes no `ConfirmSeats` command when the seats are
    /// confirmed over HTTP: `drive` calls reservation next, and the command
    /// is written only by a resend, once the call had no answer.
    fn update_for(
        &self,
        order: &OrderRecord,
        t: &Transition,
        processed: Option<MessageId>,
    ) -> SagaUpdate {
        let mut t = t.clone();
        if self.saga.confirm_over_http {
            t.commands.retain(|c| *c != SagaCommand::ConfirmSeats);
        }
        self.update_with(order, &t, processed)
    }

    /// [`update_for`](Self::update_for) with every command written.
    fn update_with(
        &self,
        order: &OrderRecord,
        t: &Transition,
        processed: Option<MessageId>,
    ) -> SagaUpdate {
        let now = self.ctx.clock.now_ms();
        let due_at_ms = match t.next {
            SagaState::ConfirmingSeats => now + self.saga.confirm_resend_ms,
            _ => now,
        };
        let mut next = progressed(order, now, due_at_ms);
        next.saga = t.next;
        let mut update = SagaUpdate::of(next, processed);
        for cmd in &t.commands {
            let body = match cmd {
                SagaCommand::ConfirmSeats => BusMessage::ConfirmSeats {
                    order_id: order.order_id.clone(),
                    hold_id: order.hold_id.clone(),
                },
                SagaCommand::ReleaseHold => BusMessage::ReleaseHold {
                    order_id: order.order_id.clone(),
                    hold_id: order.hold_id.clone(),
                },
                SagaCommand::WriteTickets => {
                    update.tickets = order
                        .seat_ids
                        .iter()
                        .map(|s| Ticket {
                            event_id: order.event_id.clone(),
                            seat_id: s.clone(),
                            order_id: order.order_id.clone(),
                        })
                        .collect();
                    continue;
                }
                // Payment calls are made by `drive` in the new state.
                SagaCommand::Authorize | SagaCommand::Capture | SagaCommand::Void => continue,
            };
            update.outbox.push(outbox_message(
                &self.ctx,
                topics::RESERVATION_COMMANDS,
                order.trace_id.clone(),
                body,
            ));
        }
        update
    }

    /// Persists one step; wakes the relay when it wrote outbox rows.
    pub(super) async fn apply(&self, update: SagaUpdate) -> Result<ApplyOutcome, RepoError> {
        let wrote = !update.outbox.is_empty();
        let outcome = self.repo.apply(update).await?;
        if outcome == ApplyOutcome::Duplicate {
            probe::reached(Probe::RedeliveryDeduplicated);
        }
        if wrote {
            self.outbox_ready.notify_one();
        }
        Ok(outcome)
    }

    /// Feeds one input to an order's saga and persists the step.
    async fn feed(
        &self,
        order_id: &OrderId,
        input: SagaInput,
        processed: Option<MessageId>,
    ) -> Result<(), RepoError> {
        self.feed_from(order_id, None, input, processed)
            .await
            .map(drop)
    }

    /// [`feed`](Self::feed) starting from `known`, the order as the caller
    /// read it (re-read only when the step lost a race to another writer,
    /// whose version check refuses a stale record). Answers the order as
    /// stored after the step when this call wrote it, so `drive` goes on
    /// without reading it back.
    async fn feed_from(
        &self,
        order_id: &OrderId,
        mut known: Option<OrderRecord>,
        input: SagaInput,
        processed: Option<MessageId>,
    ) -> Result<Option<OrderRecord>, RepoError> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let order = match known.take() {
                Some(o) => o,
                None => match self.repo.get_order(order_id).await? {
                    Some(o) => o,
                    None => {
                        tracing::warn!(%order_id, "saga input for unknown order ignored");
                        if let Some(m) = &processed {
                            self.repo.mark_processed(m).await?;
                        }
                        return Ok(None);
                    }
                },
            };
            let Some(t) = sm::transition(order.saga, input) else {
                // Duplicate or late: acknowledge and move on.
                if let Some(m) = &processed {
                    probe::reached(Probe::RedeliveryDeduplicated);
                    self.repo.mark_processed(m).await?;
                }
                return Ok(None);
            };
            let update = self.update_for(&order, &t, processed.clone());
            let stored = stored_after(&update);
            match self.apply(update).await {
                Ok(outcome) => {
                    if t.next.is_done() {
                        let status = t.next.order_status().as_str();
                        metrics::counter!(crate::metrics::ORDERS_FINISHED, "status" => status)
                            .increment(1);
                        tracing::info!(%order_id, status = ?t.next.order_status(), reason = ?t.next.reason(), "order finished");
                    }
                    return Ok((outcome == ApplyOutcome::Applied).then_some(stored));
                }
                Err(RepoError::Conflict) => continue,
                Err(RepoError::TicketConflict { event_id, seat_id }) => {
                    // The seat store's fence should make this unreachable;
                    // the unique ticket is the second line of defence.
                    tracing::error!(%order_id, %event_id, %seat_id, "ticket already exists: cancelling");
                    let Some(t2) = sm::transition(SagaState::Capturing, SagaInput::TicketConflict)
                    else {
                        return Ok(None);
                    };
                    let update = self.update_for(&order, &t2, processed.clone());
                    match self.apply(update).await {
                        Ok(_) => return Ok(None),
                        Err(RepoError::Conflict) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(RepoError::Conflict)
    }

    /// Records a failed payment call: retry after a capped exponential backoff.
    pub(super) async fn back_off(
        &self,
        order: &OrderRecord,
        why: &GatewayError,
    ) -> Result<(), RepoError> {
        let now = self.ctx.clock.now_ms();
        let mut next = order.clone();
        next.attempts = order.attempts.saturating_add(1);
        let delay = self
            .saga
            .retry_backoff_ms
            .saturating_mul(1u64 << next.attempts.min(16))
            .min(self.saga.retry_backoff_max_ms);
        next.next_attempt_at_ms = now + delay;
        tracing::warn!(order_id = %order.order_id, step = ?order.saga, attempts = next.attempts, retry_in_ms = delay, error = %why, "payment call failed");
        match self.repo.apply(SagaUpdate::of(next, None)).await {
            Ok(_) | Err(RepoError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Makes the payment call the current step needs and feeds its result;
    /// repeats while the saga progresses. Safe to run concurrently for one
    /// order (calls are idempotent, writes are version-checked).
    pub async fn drive(&self, order_id: &OrderId) -> Result<(), RepoError> {
        self.drive_from(order_id, None).await
    }

    /// The watchdog's [`drive`](Self::drive): in a span of its own, a root
    /// in the order's trace (a retry is caused by the clock, not by a
    /// request or a message), so the payment calls it makes have a parent
    /// in the trace. Reads the order once, as `drive` does.
    pub async fn drive_due(&self, order_id: &OrderId) -> Result<(), RepoError> {
        let Some(order) = self.repo.get_order(order_id).await? else {
            return Ok(());
        };
        let span = tracing::info_span!(
            "watchdog",
            order_id = %order_id,
            otel.kind = "internal",
            otel.name = WATCHDOG_SPAN,
        );
        if let Some(trace) = &order.trace_id {
            crate::telemetry::start_root(&span, trace);
        }
        self.drive_from(order_id, Some(order))
            .instrument(span)
            .await
    }

    async fn drive_from(
        &self,
        order_id: &OrderId,
        mut first: Option<OrderRecord>,
    ) -> Result<(), RepoError> {
        for _ in 0..MAX_STEPS_PER_DRIVE {
            let order = match first.take() {
                Some(o) => o,
                None => match self.repo.get_order(order_id).await? {
                    Some(o) => o,
                    None => return Ok(()),
                },
            };
            let trace = order.trace_id.as_ref();
            let now = self.ctx.clock.now_ms();
            let input = match order.saga {
                // A confirmed order may be being cancelled.
                SagaState::Done { .. } => return self.drive_after_sale(order).await,
                SagaState::ConfirmingSeats => match self.confirm_now(&order).await {
                    Some(input) => input,
                    None => {
                        if now >= order.next_attempt_at_ms {
                            self.resend_confirm(&order).await?;
                        }
                        return Ok(());
                    }
                },
                SagaState::Authorizing => {
                    if now >= order.created_at_ms + self.saga.authorize_deadline_ms {
                        SagaInput::PaymentGaveUp
                    } else {
                        match self
                            .payment
                            .authorize(&order.order_id, &order.event_id, order.amount_cents, trace)
                            .await
                        {
                            Ok(PaymentStatus::Authorized | PaymentStatus::Captured) => {
                                SagaInput::PaymentAuthorized
                            }
                            Ok(PaymentStatus::Declined) => SagaInput::PaymentDeclined,
                            Ok(PaymentStatus::Voided | PaymentStatus::Refunded)
                            | Err(GatewayError::Refused { .. }) => SagaInput::PaymentGaveUp,
                            Err(e) => return self.back_off(&order, &e).await,
                        }
                    }
                }
                SagaState::Capturing => match self.payment.capture(&order.order_id, trace).await {
                    Ok(PaymentStatus::Captured) => SagaInput::PaymentCaptured,
                    Ok(other) => {
                        let e = GatewayError::Refused {
                            code: "UNEXPECTED_STATUS".into(),
                            message: format!("capture answered {other:?}"),
                        };
                        return self.back_off(&order, &e).await;
                    }
                    Err(e) => return self.back_off(&order, &e).await,
                },
                SagaState::Voiding { .. } => {
                    match self.payment.void(&order.order_id, trace).await {
                        Ok(PaymentStatus::Voided | PaymentStatus::Declined) => {
                            probe::reached(Probe::PaymentVoided);
                            SagaInput::PaymentVoided
                        }
                        Ok(other) => {
                            let e = GatewayError::Refused {
                                code: "UNEXPECTED_STATUS".into(),
                                message: format!("void answered {other:?}"),
                            };
                            return self.back_off(&order, &e).await;
                        }
                        Err(e) => return self.back_off(&order, &e).await,
                    }
                }
            };
            first = self.feed_from(order_id, Some(order), input, None).await?;
        }
        Ok(())
    }

    /// The seats confirmed over HTTP, when `saga.confirm_over_http`: the
    /// answer as the saga's input, or `None` (off, or no answer: the
    /// command through the outbox is the retry path).
    async fn confirm_now(&self, order: &OrderRecord) -> Option<SagaInput> {
        if !self.saga.confirm_over_http {
            return None;
        }
        let trace = order.trace_id.as_ref();
        match self
            .reservation
            .confirm(&order.hold_id, &order.order_id, trace)
            .await
        {
            ConfirmReply::Confirmed => Some(SagaInput::SeatsConfirmed),
            ConfirmReply::Rejected(reason) => Some(SagaInput::SeatsRejected(reason)),
            ConfirmReply::Unavailable(why) => {
                tracing::warn!(order_id = %order.order_id, error = %why, "confirm over HTTP had no answer; the command path retries");
                None
            }
        }
    }

    /// No reply to `ConfirmSeats` yet: send it again (reservation's confirm
    /// is idempotent), and wait another resend interval.
    async fn resend_confirm(&self, order: &OrderRecord) -> Result<(), RepoError> {
        let t = Transition {
            next: order.saga,
            commands: vec![SagaCommand::ConfirmSeats],
        };
        let update = self.update_with(order, &t, None);
        tracing::info!(order_id = %order.order_id, "re-sending ConfirmSeats");
        match self.apply(update).await {
            Ok(_) | Err(RepoError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Handles one message from the saga topic.
    pub async fn handle_message(&self, env: Envelope) -> Result<(), RepoError> {
        match env.body {
            BusMessage::OrderPlaced { order_id } | BusMessage::CancelRequested { order_id } => {
                if self.placed.is_kicking(&order_id) {
                    // This process's kicker has it: two drivers of one step
                    // would make its payment call twice.
                    return Ok(());
                }
                self.drive(&order_id).await
            }
            BusMessage::SeatsConfirmed { order_id, .. } => {
                self.feed(&order_id, SagaInput::SeatsConfirmed, Some(env.message_id))
                    .await?;
                self.drive(&order_id).await
            }
            BusMessage::SeatsRejected { order_id, reason } => {
                self.feed(
                    &order_id,
                    SagaInput::SeatsRejected(reason),
                    Some(env.message_id),
                )
                .await?;
                self.drive(&order_id).await
            }
            BusMessage::SeatsReturned { order_id, returned } => {
                tracing::info!(%order_id, returned = returned.len(), "seats returned");
                self.feed_refund(&order_id, RefundInput::SeatsReturned, Some(env.message_id))
                    .await?;
                self.drive(&order_id).await
            }
            other => {
                tracing::warn!(message = ?other, "orchestrator ignores message");
                Ok(())
            }
        }
    }
}

/// The order as the repository stores it once `update` is applied: its
/// version one higher (the step's version check passed).
fn stored_after(update: &SagaUpdate) -> OrderRecord {
    let mut order = update.order.clone();
    order.version += 1;
    order
}

/// `order` after a step that made progress at `now` (either saga): its
/// failed attempts reset, next due at `due_at_ms`.
pub(super) fn progressed(order: &OrderRecord, now: u64, due_at_ms: u64) -> OrderRecord {
    let mut next = order.clone();
    next.updated_at_ms = now;
    next.attempts = 0;
    next.next_attempt_at_ms = due_at_ms;
    next
}

/// The orchestrator's name (consumes `order-saga`).
pub const ORCHESTRATOR: &str = "saga-orchestrator";
/// The watchdog's name.
pub const WATCHDOG: &str = "saga-watchdog";
/// The outbox relay's name.
pub const OUTBOX_RELAY: &str = "outbox-relay";

/// Consumes the saga topic until shutdown.
pub async fn run_orchestrator(
    state: OrderState,
    bus: Arc<dyn EventBus>,
    shutdown: CancellationToken,
) {
    worker::consume(bus, topics::ORDER_SAGA, "order-saga", shutdown, |env| {
        let state = state.clone();
        async move { state.handle_message(env).await.map_err(anyhow::Error::from) }
    })
    .await;
}

/// The kicker's name.
pub const KICKER: &str = "saga-kicker";
/// The name of a kick's span: a root of its own in the order's trace (as
/// the watchdog's), so nothing waits for the request's span to end.
pub const KICK_SPAN: &str = "kick order-saga";
/// Orders the kicker drives at once.
const KICKS_IN_FLIGHT: usize = 32;

/// Drives the orders this process placed (`OrderState::placed`) as soon as
/// they are committed, up to [`KICKS_IN_FLIGHT`] at once, on this task (no
/// spawn: the simulator schedules it like every worker). It saves an
/// order the relay → broker → orchestrator round trip before its first
/// payment call; it decides nothing the orchestrator would not (the same
/// `drive`), and an order it never reached is driven by its `OrderPlaced`.
pub async fn run_kicker(state: OrderState, shutdown: CancellationToken) {
    use futures::StreamExt;
    let Some(rx) = state.placed.take_receiver() else {
        tracing::warn!("the kicker's queue has a kicker already: not started twice");
        return;
    };
    let orders = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut kicks = orders
        .map(|kick| {
            let state = state.clone();
            let order_id = kick.order_id;
            let span = tracing::info_span!(
                parent: None,
                "kick",
                order_id = %order_id,
                otel.kind = "internal",
                otel.name = KICK_SPAN,
            );
            crate::telemetry::start_root(&span, &kick.trace);
            async move {
                let result = match state.drive(&order_id).instrument(span).await {
                    Ok(()) => "driven",
                    Err(e) => {
                        // The bus and the watchdog drive it again.
                        tracing::debug!(%order_id, error = %e, "kick failed");
                        "failed"
                    }
                };
                state.placed.done(&order_id);
                metrics::counter!(crate::metrics::ORDERS_KICKED, "result" => result).increment(1);
            }
        })
        .buffer_unordered(KICKS_IN_FLIGHT);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            next = kicks.next() => if next.is_none() { break },
        }
    }
}

/// Drives sagas whose retry time has come, until shutdown.
pub async fn run_watchdog(state: OrderState, shutdown: CancellationToken) {
    while worker::pause(state.saga.watchdog_interval_ms, &shutdown).await {
        let due = match state
            .repo
            .due_orders(state.ctx.clock.now_ms(), WATCHDOG_BATCH)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "watchdog could not list due orders");
                continue;
            }
        };
        for order_id in due {
            if let Err(e) = state.drive_due(&order_id).await {
                tracing::warn!(%order_id, error = %e, "watchdog drive failed");
            }
        }
    }
}

/// Publishes outbox rows until shutdown; a row is marked sent only after the
/// broker acknowledged it. Several relays may run: rows are leased. A round
/// starts every `saga.outbox_interval_ms`, or at once when this process
/// wrote rows. Rows of different keys (orders) are published concurrently,
/// one key's in order; rows a failed publish left unsent (that row and the
/// rest of its key) stay with this relay and go first next round, so an
/// outage costs no lease timeout.
pub async fn run_outbox_relay(
    state: OrderState,
    bus: Arc<dyn EventBus>,
    shutdown: CancellationToken,
) {
    let mut carried: Vec<ClaimedOutbox> = Vec::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = state.outbox_ready.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(state.saga.outbox_interval_ms)) => {}
        }
        carried = relay_round(&state, bus.as_ref(), carried).await;
    }
}

/// One relay round over `carried` and newly claimed rows: publishes them,
/// marks the sent ones, and returns the rows a failed publish left unsent.
async fn relay_round(
    state: &OrderState,
    bus: &dyn EventBus,
    carried: Vec<ClaimedOutbox>,
) -> Vec<ClaimedOutbox> {
    let retried: Vec<u64> = carried.iter().map(|r| r.seq).collect();
    let rows = claim_round(state, carried).await;
    let (sent, unsent) = publish_rows(bus, rows).await;
    if !unsent.is_empty() {
        probe::reached(Probe::OutboxPublishFailed);
    }
    if sent.iter().any(|s| retried.contains(s)) {
        probe::reached(Probe::OutboxResent);
    }
    metrics::counter!(crate::metrics::OUTBOX_PUBLISHED).increment(sent.len() as u64);
    metrics::gauge!(crate::metrics::OUTBOX_CARRIED).set(unsent.len() as f64);
    if !sent.is_empty()
        && let Err(e) = state.repo.mark_sent(&sent).await
    {
        // Published but not marked: they will be published again, and
        // consumers drop the duplicates.
        tracing::warn!(error = %e, "outbox mark_sent failed");
    }
    unsent
}

/// This round's rows: the carried ones first, then newly claimed ones.
async fn claim_round(state: &OrderState, mut rows: Vec<ClaimedOutbox>) -> Vec<ClaimedOutbox> {
    let now = state.ctx.clock.now_ms();
    let room = OUTBOX_BATCH.saturating_sub(rows.len());
    if room == 0 {
        return rows;
    }
    let claimed = match state
        .repo
        .claim_outbox(room, state.saga.outbox_lease_ms, now)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "outbox claim failed");
            Vec::new()
        }
    };
    // A carried row whose lease ran out may come back in the claim.
    let carried_seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    rows.extend(
        claimed
            .into_iter()
            .filter(|r| !carried_seqs.contains(&r.seq)),
    );
    rows
}

/// Keys published at once by one relay round.
const RELAY_KEYS_IN_FLIGHT: usize = 32;

/// Publishes `rows`: each key's in order (stopping at its first failure),
/// different keys concurrently. Returns the sent seqs and the unsent rows
/// (in their original order).
async fn publish_rows(
    bus: &dyn EventBus,
    rows: Vec<ClaimedOutbox>,
) -> (Vec<u64>, Vec<ClaimedOutbox>) {
    use futures::StreamExt;
    let mut by_key: std::collections::BTreeMap<String, Vec<ClaimedOutbox>> = Default::default();
    let order: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    for row in rows {
        by_key.entry(row.message.key.clone()).or_default().push(row);
    }
    let mut keys = futures::stream::iter(by_key.into_values())
        .map(|key_rows| publish_key(bus, key_rows))
        .buffer_unordered(RELAY_KEYS_IN_FLIGHT);
    let (mut sent, mut unsent) = (Vec::new(), Vec::new());
    while let Some((s, u)) = keys.next().await {
        sent.extend(s);
        unsent.extend(u);
    }
    unsent.sort_by_key(|r: &ClaimedOutbox| order.iter().position(|s| *s == r.seq));
    (sent, unsent)
}

/// One key's rows in order, until one fails: (sent seqs, the rest).
async fn publish_key(
    bus: &dyn EventBus,
    rows: Vec<ClaimedOutbox>,
) -> (Vec<u64>, Vec<ClaimedOutbox>) {
    let mut sent = Vec::with_capacity(rows.len());
    let mut rows = rows.into_iter();
    while let Some(row) = rows.next() {
        let msg = OutgoingMessage {
            topic: row.message.topic.clone(),
            key: row.message.key.clone(),
            payload: row.message.payload.clone(),
            headers: row.message.headers.clone(),
        };
        let publish =
            tokio::time::timeout(Duration::from_millis(PUBLISH_TIMEOUT_MS), bus.publish(msg)).await;
        let failure = match publish {
            Ok(Ok(_)) => {
                sent.push(row.seq);
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        metrics::counter!(crate::metrics::OUTBOX_PUBLISH_FAILURES).increment(1);
        tracing::warn!(seq = row.seq, error = %failure, "outbox publish failed");
        let mut unsent = vec![row];
        unsent.extend(rows);
        return (sent, unsent);
    }
    (sent, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ctx;
    use async_trait::async_trait;
    use futures::FutureExt as _;
    use ticketing_domain::ports::{PinError, ReservationClient};
    use ticketing_domain::{Cents, EventId, Hold, HoldId, SeatId, TraceId};

    /// Peers the steps under test never call.
    #[derive(Debug)]
    struct Unreachable;

    fn not_here<T>() -> Result<T, GatewayError> {
        Err(GatewayError::Unavailable("not in this test".into()))
    }

    /// A step that only rewrites `order` (no message, rows or tickets).
    fn bare(order: OrderRecord) -> SagaUpdate {
        SagaUpdate::of(order, None)
    }

    /// Reservation answering every confirm with one reply, counting them
    /// (and never pinning: the steps under test do not pin).
    #[derive(Debug)]
    struct Answering(ConfirmReply, std::sync::atomic::AtomicU32);

    /// Reservation that never answers.
    fn unreachable_reservation() -> Arc<Answering> {
        let none = ConfirmReply::Unavailable("not in this test".into());
        Arc::new(Answering(none, Default::default()))
    }

    #[async_trait]
    impl ReservationClient for Answering {
        async fn pin(
            &self,
            _: &HoldId,
            _: &OrderId,
            _: Option<&str>,
            _: Option<&TraceId>,
        ) -> Result<Hold, PinError> {
            Err(PinError::Unavailable("not in this test".into()))
        }
        async fn confirm(&self, _: &HoldId, _: &OrderId, _: Option<&TraceId>) -> ConfirmReply {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.clone()
        }
    }

    #[async_trait]
    impl ticketing_domain::ports::PaymentGateway for Unreachable {
        async fn authorize(
            &self,
            _: &OrderId,
            _: &ticketing_domain::EventId,
            _: Cents,
            _: Option<&TraceId>,
        ) -> Result<PaymentStatus, GatewayError> {
            not_here()
        }
        async fn capture(
            &self,
            _: &OrderId,
            _: Option<&TraceId>,
        ) -> Result<PaymentStatus, GatewayError> {
            not_here()
        }
        async fn void(
            &self,
            _: &OrderId,
            _: Option<&TraceId>,
        ) -> Result<PaymentStatus, GatewayError> {
            not_here()
        }
        async fn refund(
            &self,
            _: &OrderId,
            _: Option<&TraceId>,
        ) -> Result<PaymentStatus, GatewayError> {
            not_here()
        }
    }

    #[async_trait]
    impl ticketing_domain::ports::EventCalendar for Unreachable {
        async fn starts_at_ms(
            &self,
            _: &EventId,
            _: Option<&TraceId>,
        ) -> Result<Option<u64>, ticketing_domain::ports::CalendarError> {
            Err(ticketing_domain::ports::CalendarError::Unavailable(
                "not in this test".into(),
            ))
        }
    }

    const NOW_MS: u64 = 1_000_000;

    /// The command path only (`saga.confirm_over_http = false`).
    fn state() -> OrderState {
        let mut st = http_state(unreachable_reservation());
        st.saga.confirm_over_http = false;
        st
    }

    /// The default: seats confirmed over HTTP by `reservation`.
    fn http_state(reservation: Arc<dyn ReservationClient>) -> OrderState {
        OrderState {
            ctx: Ctx {
                clock: Arc::new(ticketing_runtime::TokioClock::new(NOW_MS)),
                rng: Arc::new(ticketing_runtime::ChaChaRandom::from_seed(7)),
            },
            repo: Arc::new(ticketing_mem::MemOrderRepository::default()),
            reservation,
            payment: Arc::new(Unreachable),
            calendar: Arc::new(Unreachable),
            saga: crate::config::SagaSettings::default(),
            refund: crate::config::RefundSettings::default(),
            auth: crate::customer::CustomerAuth::anonymous_only(),
            rates: crate::rate_limit::RequestLimits::none(),
            outbox_ready: Default::default(),
            placed: Default::default(),
            waiters: Default::default(),
        }
    }

    fn order() -> OrderRecord {
        OrderRecord {
            order_id: OrderId::from("o-1"),
            hold_id: HoldId::from("h-1"),
            event_id: EventId::from("e"),
            seat_ids: vec![SeatId::from("1-1")],
            amount_cents: 1000,
            customer_id: None,
            saga: SagaState::Authorizing,
            created_at_ms: NOW_MS,
            updated_at_ms: NOW_MS,
            attempts: 2,
            next_attempt_at_ms: NOW_MS,
            version: 0,
            trace_id: None,
            refund: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_waiting_for_reservation_is_due_again_after_the_confirm_resend_time() {
        let st = state();
        let authorized =
            sm::transition(SagaState::Authorizing, SagaInput::PaymentAuthorized).expect("applies");
        let u = st.update_for(&order(), &authorized, None);
        assert_eq!(u.order.saga, SagaState::ConfirmingSeats);
        assert_eq!(u.order.attempts, 0, "progress resets the attempts");
        assert_eq!(
            u.order.next_attempt_at_ms,
            NOW_MS + st.saga.confirm_resend_ms
        );
        assert_eq!(u.outbox.len(), 1, "the ConfirmSeats command");
        let confirmed =
            sm::transition(SagaState::ConfirmingSeats, SagaInput::SeatsConfirmed).expect("applies");
        let u = st.update_for(&order(), &confirmed, None);
        assert_eq!(u.order.next_attempt_at_ms, NOW_MS, "capture is due at once");
        assert_eq!(u.tickets.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_that_wrote_outbox_rows_wakes_the_relay_and_only_then() {
        let st = state();
        let o = placed(&st).await;
        let authorized =
            sm::transition(SagaState::Authorizing, SagaInput::PaymentAuthorized).expect("applies");
        let update = st.update_for(&o, &authorized, None);
        assert!(!update.outbox.is_empty());
        assert_eq!(st.apply(update).await, Ok(ApplyOutcome::Applied));
        assert_eq!(st.outbox_ready.notified().now_or_never(), Some(()), "woken");
        let mut next = st.repo.get_order(&o.order_id).await.unwrap().unwrap();
        next.attempts = 1;
        let quiet = bare(next);
        assert_eq!(st.apply(quiet).await, Ok(ApplyOutcome::Applied));
        assert_eq!(
            st.outbox_ready.notified().now_or_never(),
            None,
            "nothing to publish"
        );
    }

    /// `order()` stored, at its first version.
    async fn placed(st: &OrderState) -> OrderRecord {
        let stored = ticketing_domain::ports::StoredResponse {
            status: 202,
            body: serde_json::json!({}),
        };
        st.repo
            .place_order(order(), vec![], "k", stored)
            .await
            .expect("placed");
        st.repo.get_order(&order().order_id).await.unwrap().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_payment_call_is_retried_after_a_doubling_capped_pause() {
        let st = state();
        let why = GatewayError::Unavailable("down".into());
        let o = placed(&st).await;
        assert_eq!(o.attempts, 2);
        st.back_off(&o, &why).await.expect("recorded");
        let o = st.repo.get_order(&o.order_id).await.unwrap().unwrap();
        assert_eq!(o.attempts, 3);
        assert_eq!(
            o.next_attempt_at_ms,
            NOW_MS + (st.saga.retry_backoff_ms << 3)
        );
        let mut many = o.clone();
        many.attempts = 15;
        let stored = bare(many);
        st.repo.apply(stored).await.expect("stored");
        let o = st.repo.get_order(&o.order_id).await.unwrap().unwrap();
        st.back_off(&o, &why).await.expect("recorded");
        let o = st.repo.get_order(&o.order_id).await.unwrap().unwrap();
        assert_eq!(
            o.next_attempt_at_ms,
            NOW_MS + st.saga.retry_backoff_max_ms,
            "capped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_redelivered_step_reaches_the_dedup_probe() {
        let st = state();
        let o = placed(&st).await;
        let step = SagaUpdate {
            processed: Some(MessageId::from("m-1")),
            ..bare(o)
        };
        for (outcome, hits) in [
            (ApplyOutcome::Applied, None),
            (ApplyOutcome::Duplicate, Some(&1)),
        ] {
            let (r, reached) = probe::recording(|| st.apply(step.clone()).now_or_never());
            assert_eq!(
                r,
                Some(Ok(outcome)),
                "the in-memory repository answers at once"
            );
            assert_eq!(
                reached.get(&Probe::RedeliveryDeduplicated),
                hits,
                "{outcome:?}"
            );
        }
    }

    /// `order()` stored and moved to ConfirmingSeats, next due at `due_ms`.
    async fn confirming(st: &OrderState, due_ms: u64) -> OrderRecord {
        let mut o = placed(st).await;
        o.saga = SagaState::ConfirmingSeats;
        o.next_attempt_at_ms = due_ms;
        let step = bare(o.clone());
        st.repo.apply(step).await.expect("stored");
        st.repo.get_order(&o.order_id).await.unwrap().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_confirm_is_sent_again_once_due_and_not_before() {
        let st = state();
        let early = confirming(&st, NOW_MS + 1).await;
        st.drive(&early.order_id).await.expect("driven");
        assert_eq!(st.repo.outbox_backlog().await, Ok(0), "not due yet");
        let o = st.repo.get_order(&early.order_id).await.unwrap().unwrap();
        assert_eq!(o.version, early.version, "nothing written");

        let st = state();
        let due = confirming(&st, NOW_MS).await;
        st.drive(&due.order_id).await.expect("driven");
        assert_eq!(st.repo.outbox_backlog().await, Ok(1), "ConfirmSeats again");
        let o = st.repo.get_order(&due.order_id).await.unwrap().unwrap();
        assert_eq!(o.saga, SagaState::ConfirmingSeats);
        assert_eq!(o.next_attempt_at_ms, NOW_MS + st.saga.confirm_resend_ms);
    }

    /// A relay round over a broker that is down, then up again: the failed
    /// row is carried, reaches the failure probe, and is the one resent.
    #[tokio::test(start_paused = true)]
    async fn a_relay_round_carries_a_failed_row_and_resends_it_once_the_broker_is_back() {
        let st = state();
        let o = placed(&st).await;
        let authorized =
            sm::transition(SagaState::Authorizing, SagaInput::PaymentAuthorized).expect("applies");
        assert_eq!(
            st.apply(st.update_for(&o, &authorized, None)).await,
            Ok(ApplyOutcome::Applied)
        );
        let bus = ticketing_mem::MemEventBus::default();
        let round = |carried| relay_round(&st, &bus, carried).now_or_never();

        bus.set_down(true);
        let (carried, reached) = probe::recording(|| round(vec![]));
        let carried = carried.expect("the in-memory parts answer at once");
        assert_eq!(
            carried.len(),
            1,
            "the ConfirmSeats row stays with the relay"
        );
        assert_eq!(reached.get(&Probe::OutboxPublishFailed), Some(&1));
        assert_eq!(reached.get(&Probe::OutboxResent), None);
        assert_eq!(st.repo.outbox_backlog().await, Ok(1), "not marked sent");

        bus.set_down(false);
        let (left, reached) = probe::recording(|| round(carried));
        assert_eq!(left.map(|l| l.len()), Some(0));
        assert_eq!(reached.get(&Probe::OutboxPublishFailed), None);
        assert_eq!(reached.get(&Probe::OutboxResent), Some(&1));
        assert_eq!(
            bus.topic_len(ticketing_domain::messages::topics::RESERVATION_COMMANDS),
            1
        );
        assert_eq!(st.repo.outbox_backlog().await, Ok(0), "marked sent");

        let (left, reached) = probe::recording(|| round(vec![]));
        assert_eq!(left.map(|l| l.len()), Some(0), "nothing left to send");
        assert!(reached.is_empty(), "{reached:?}");
    }

    /// Rows a failed round leaves unsent stay in their order: the next
    /// round publishes one order's messages as they were written.
    #[tokio::test(start_paused = true)]
    async fn rows_a_failed_round_carries_keep_their_order() {
        let st = state();
        let o = placed(&st).await;
        let authorized =
            sm::transition(SagaState::Authorizing, SagaInput::PaymentAuthorized).expect("applies");
        let first = st.update_for(&o, &authorized, None);
        assert_eq!(st.apply(first).await, Ok(ApplyOutcome::Applied));
        let confirming = st.repo.get_order(&o.order_id).await.unwrap().unwrap();
        st.resend_confirm(&confirming).await.expect("a second row");
        let bus = ticketing_mem::MemEventBus::default();
        bus.set_down(true);
        let carried = relay_round(&st, &bus, vec![]).now_or_never();
        let seqs: Vec<u64> = carried.expect("at once").iter().map(|r| r.seq).collect();
        assert_eq!(seqs.len(), 2, "both rows of the order carried");
        assert!(
            seqs[0] < seqs[1],
            "in the order they were written: {seqs:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn over_http_entering_confirmation_writes_no_command() {
        let st = http_state(unreachable_reservation());
        assert!(st.saga.confirm_over_http, "the default");
        let authorized =
            sm::transition(SagaState::Authorizing, SagaInput::PaymentAuthorized).expect("applies");
        let u = st.update_for(&order(), &authorized, None);
        assert_eq!(u.order.saga, SagaState::ConfirmingSeats);
        assert!(u.outbox.is_empty(), "drive calls reservation instead");
        assert_eq!(
            u.order.next_attempt_at_ms,
            NOW_MS + st.saga.confirm_resend_ms,
            "the command path is due if that call has no answer"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_confirm_answered_over_http_moves_on_without_a_broker_hop() {
        let answering = Arc::new(Answering(ConfirmReply::Confirmed, Default::default()));
        let st = http_state(answering.clone());
        let o = confirming(&st, NOW_MS + 5_000).await;
        st.drive(&o.order_id).await.expect("driven");
        let o = st.repo.get_order(&o.order_id).await.unwrap().unwrap();
        assert_eq!(
            o.saga,
            SagaState::Capturing,
            "capture next (its call fails here)"
        );
        assert_eq!(st.repo.tickets().await.map(|t| t.len()), Ok(1));
        assert_eq!(st.repo.outbox_backlog().await, Ok(0), "no command sent");
        assert_eq!(answering.1.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_confirm_refused_over_http_voids_with_its_reason() {
        let refused = ConfirmReply::Rejected(sm::FailureReason::HoldExpired);
        let st = http_state(Arc::new(Answering(refused, Default::default())));
        let o = confirming(&st, NOW_MS + 5_000).await;
        st.drive(&o.order_id).await.expect("driven");
        let o = st.repo.get_order(&o.order_id).await.unwrap().unwrap();
        assert_eq!(
            o.saga,
            SagaState::Voiding {
                status: ticketing_domain::OrderStatus::Cancelled,
                reason: sm::FailureReason::HoldExpired,
            }
        );
        assert_eq!(st.repo.tickets().await.map(|t| t.len()), Ok(0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_confirm_without_answer_falls_back_to_the_command_once_due() {
        let st = http_state(unreachable_reservation());
        let early = confirming(&st, NOW_MS + 1).await;
        st.drive(&early.order_id).await.expect("driven");
        assert_eq!(st.repo.outbox_backlog().await, Ok(0), "not due yet");
        let st = http_state(unreachable_reservation());
        let due = confirming(&st, NOW_MS).await;
        st.drive(&due.order_id).await.expect("driven");
        assert_eq!(
            st.repo.outbox_backlog().await,
            Ok(1),
            "ConfirmSeats through the outbox"
        );
        let o = st.repo.get_order(&due.order_id).await.unwrap().unwrap();
        assert_eq!(o.saga, SagaState::ConfirmingSeats);
    }
}
