//! After the sale: cancelling a CONFIRMED order, driven through
//! `ticketing_domain::refund` like the forward saga is through
//! `ticketing_domain::saga`.
//!
//! `cancel` (the use case behind `POST /api/orders/{id}/cancel`) checks the
//! owner and the window, then writes the order CANCELLING
//! (`VoidingTickets`) with a `CancelRequested` outbox row in one
//! transaction. Driving it: the step that leaves `VoidingTickets` voids the
//! order's tickets in its own transaction; `Refunding` calls the gateway's
//! refund inline (idempotent per order; retried with the saga's backoff,
//! given up after `refund.deadline_ms` as REFUND_FAILED, which only an
//! operator's retry moves on); `ReturningSeats` sends `ReturnSeats` to
//! reservation through the outbox (re-sent every `refund.return_resend_ms`
//! until its reply), whose fenced return frees only seats still sold to
//! this order; the reply `SeatsReturned` ends it REFUNDED.
//!
//! Layer: part of order; imports `order::state`, `order::saga` (the shared
//! step helpers) and the crate's shared types, not its parent.

use super::saga::progressed;
use super::state::{OrderState, outbox_message};
use crate::customer::Caller;
use crate::error::ApiError;
use ticketing_domain::messages::{BusMessage, topics};
use ticketing_domain::ports::{GatewayError, OrderRecord, RepoError, SagaUpdate};
use ticketing_domain::probe::{self, Probe};
use ticketing_domain::refund::{
    self as refund_sm, CancelRefusal, RefundCommand, RefundInput, RefundState, RefundTransition,
};
use ticketing_domain::{MessageId, OrderId, OrderStatus, PaymentStatus, TraceId};

/// Steps one after-sale drive may take before yielding.
const MAX_STEPS: usize = 6;
/// Retries of one write that lost an optimistic-concurrency race.
const MAX_CONFLICT_RETRIES: usize = 4;

/// What a cancellation request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// This request started the cancellation.
    Started,
    /// The order was already being cancelled (or is refunded): nothing new.
    AlreadyCancelling(OrderStatus),
}

impl OrderState {
    /// Starts cancelling `order_id` for `caller` (the use case behind the
    /// route). Errors: `OrderNotFound` (also another customer's order),
    /// 409 `ORDER_NOT_CONFIRMED` / `REFUND_WINDOW_CLOSED`, 503 when the
    /// event's start cannot be read.
    pub async fn cancel(
        &self,
        order_id: &OrderId,
        caller: &Caller,
        trace: Option<&TraceId>,
    ) -> Result<CancelOutcome, ApiError> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let order = self
                .repo
                .get_order(order_id)
                .await?
                .filter(|o| caller.may_see(o.customer_id.as_deref()))
                .ok_or(ApiError::OrderNotFound)?;
            if order.refund.is_some() {
                return Ok(CancelOutcome::AlreadyCancelling(order.status()));
            }
            let confirmed = order.status() == OrderStatus::Confirmed;
            if !confirmed {
                // Refused before asking the catalog anything.
                return Err(CancelRefusal::NotConfirmed.into());
            }
            let starts_at_ms = self
                .calendar
                .starts_at_ms(&order.event_id, trace)
                .await?
                .ok_or_else(|| ApiError::Unavailable("the order's event is unknown".into()))?;
            let now = self.ctx.clock.now_ms();
            let window_s = self.refund.window_before_start_s;
            refund_sm::may_cancel(confirmed, now, starts_at_ms, window_s)?;
            let mut update = self.refund_update(&order, &refund_sm::start(), None);
            update.outbox.push(outbox_message(
                &self.ctx,
                topics::ORDER_SAGA,
                order.trace_id.clone(),
                BusMessage::CancelRequested {
                    order_id: order_id.clone(),
                },
            ));
            match self.apply(update).await {
                Ok(_) => {
                    tracing::info!(%order_id, "cancellation started");
                    return Ok(CancelOutcome::Started);
                }
                Err(RepoError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Unavailable("order busy, retry".into()))
    }

    /// An operator's retry of a REFUND_FAILED order (the internal route):
    /// back to `Refunding`, with a fresh deadline. `None` if the order is
    /// unknown; `Some(false)` if it is not REFUND_FAILED.
    pub async fn retry_refund(&self, order_id: &OrderId) -> Result<Option<bool>, RepoError> {
        let Some(order) = self.repo.get_order(order_id).await? else {
            return Ok(None);
        };
        if order.refund != Some(RefundState::RefundFailed) {
            return Ok(Some(false));
        }
        self.feed_refund(order_id, RefundInput::OperatorRetry, None)
            .await?;
        Ok(Some(true))
    }

    /// The record and writes of one after-sale transition. `VoidTickets`
    /// is executed by the step that leaves `VoidingTickets` (see
    /// [`Self::feed_refund`]); `Refund` by the drive in the new state.
    fn refund_update(
        &self,
        order: &OrderRecord,
        t: &RefundTransition,
        processed: Option<MessageId>,
    ) -> SagaUpdate {
        let now = self.ctx.clock.now_ms();
        let due_at_ms = match t.next {
            RefundState::ReturningSeats => now + self.refund.return_resend_ms,
            _ => now,
        };
        let mut next = progressed(order, now, due_at_ms);
        next.refund = Some(t.next);
        let mut update = SagaUpdate::of(next, processed);
        if t.commands.contains(&RefundCommand::ReturnSeats) {
            update.outbox.push(return_seats(self, order));
        }
        update
    }

    /// Feeds one input to an order's after-sale saga and persists the step.
    pub(super) async fn feed_refund(
        &self,
        order_id: &OrderId,
        input: RefundInput,
        processed: Option<MessageId>,
    ) -> Result<(), RepoError> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let order = self.repo.get_order(order_id).await?;
            let from = order.as_ref().and_then(|o| o.refund);
            let t = from.and_then(|s| refund_sm::transition(s, input));
            let (Some(order), Some(from), Some(t)) = (order, from, t) else {
                // Unknown order, no cancellation, duplicate or late input.
                if let Some(m) = &processed {
                    self.repo.mark_processed(m).await?;
                }
                return Ok(());
            };
            let mut update = self.refund_update(&order, &t, processed.clone());
            // Leaving VoidingTickets is voiding them, in this transaction.
            update.void_tickets = from == RefundState::VoidingTickets;
            match self.apply(update).await {
                Ok(_) => {
                    finished(order_id, t.next);
                    return Ok(());
                }
                Err(RepoError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(RepoError::Conflict)
    }

    /// Drives a cancelled order from its stored state: voids, refunds,
    /// re-sends a due `ReturnSeats`; a bounded number of steps.
    pub(super) async fn drive_after_sale(&self, mut order: OrderRecord) -> Result<(), RepoError> {
        for _ in 0..MAX_STEPS {
            let input = match order.refund {
                None | Some(RefundState::Done | RefundState::RefundFailed) => return Ok(()),
                Some(RefundState::VoidingTickets) => RefundInput::TicketsVoided,
                Some(RefundState::Refunding) => match self.refund_input(&order).await? {
                    Some(input) => input,
                    None => return Ok(()),
                },
                Some(RefundState::ReturningSeats) => {
                    if self.ctx.clock.now_ms() >= order.next_attempt_at_ms {
                        self.resend_return(&order).await?;
                    }
                    return Ok(());
                }
            };
            self.feed_refund(&order.order_id, input, None).await?;
            order = match self.repo.get_order(&order.order_id).await? {
                Some(o) => o,
                None => return Ok(()),
            };
        }
        Ok(())
    }

    /// The refund call's outcome as an input; `None` after a failed call
    /// (recorded with a backoff: the watchdog calls again).
    async fn refund_input(&self, order: &OrderRecord) -> Result<Option<RefundInput>, RepoError> {
        if self.ctx.clock.now_ms() >= order.updated_at_ms + self.refund.deadline_ms {
            return Ok(Some(RefundInput::RefundGaveUp));
        }
        let trace = order.trace_id.as_ref();
        let why = match self.payment.refund(&order.order_id, trace).await {
            Ok(PaymentStatus::Refunded) => return Ok(Some(RefundInput::Refunded)),
            Ok(other) => GatewayError::Refused {
                code: "UNEXPECTED_STATUS".into(),
                message: format!("refund answered {other:?}"),
            },
            Err(e) => e,
        };
        probe::reached(Probe::RefundRetried);
        self.back_off(order, &why).await?;
        Ok(None)
    }

    /// No reply to `ReturnSeats` yet: send it again (the fenced return is
    /// idempotent), and wait another resend interval.
    async fn resend_return(&self, order: &OrderRecord) -> Result<(), RepoError> {
        let t = RefundTransition {
            next: RefundState::ReturningSeats,
            commands: vec![RefundCommand::ReturnSeats],
        };
        let update = self.refund_update(order, &t, None);
        tracing::info!(order_id = %order.order_id, "re-sending ReturnSeats");
        match self.apply(update).await {
            Ok(_) | Err(RepoError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The `ReturnSeats` command for `order`, through the outbox.
fn return_seats(state: &OrderState, order: &OrderRecord) -> ticketing_domain::ports::OutboxMessage {
    outbox_message(
        &state.ctx,
        topics::RESERVATION_COMMANDS,
        order.trace_id.clone(),
        BusMessage::ReturnSeats {
            order_id: order.order_id.clone(),
            event_id: order.event_id.clone(),
            seat_ids: order.seat_ids.clone(),
            customer_id: order.customer_id.clone(),
        },
    )
}

/// Counts and logs an after-sale saga that reached REFUNDED or REFUND_FAILED.
fn finished(order_id: &OrderId, state: RefundState) {
    if !state.is_settled() {
        return;
    }
    let status = state.order_status();
    metrics::counter!(crate::metrics::ORDERS_FINISHED, "status" => status.as_str()).increment(1);
    probe::reached(match state {
        RefundState::RefundFailed => Probe::RefundGaveUp,
        _ => Probe::OrderRefunded,
    });
    if state == RefundState::RefundFailed {
        tracing::error!(%order_id, "refund given up after its deadline: an operator's to retry");
    } else {
        tracing::info!(%order_id, "order refunded");
    }
}
