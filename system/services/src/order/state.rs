//! The order service's state and how it writes bus messages into its
//! outbox: what the HTTP handlers (`order`) and the saga (`order::saga`)
//! both use.
//!
//! Layer: bottom of `order`; imports the crate's shared types, `http` and
//! its sibling `status_wait`.

use super::status_wait::StatusWaiters;
use crate::Ctx;
use crate::config::{RefundSettings, SagaSettings};
use std::sync::Arc;
use ticketing_domain::messages::{BusMessage, Envelope};
use ticketing_domain::ports::{
    EventCalendar, OrderRepository, OutboxMessage, PaymentGateway, RandomExt, ReservationClient,
};
use ticketing_domain::{OrderId, TraceId};

#[derive(Debug, Clone)]
pub struct OrderState {
    pub ctx: Ctx,
    pub repo: Arc<dyn OrderRepository>,
    pub reservation: Arc<dyn ReservationClient>,
    pub payment: Arc<dyn PaymentGateway>,
    /// When events start (the catalog): the cancellation window.
    pub calendar: Arc<dyn EventCalendar>,
    pub saga: SagaSettings,
    pub refund: RefundSettings,
    /// Verifies customer tokens on the public routes.
    pub auth: crate::customer::CustomerAuth,
    /// Request rates on placing orders, per customer and client address.
    pub rates: crate::rate_limit::RequestLimits,
    /// Woken when this process wrote outbox rows: the relay publishes them
    /// at once instead of at its next tick (other replicas' rows wait for
    /// the tick).
    pub outbox_ready: Arc<tokio::sync::Notify>,
    /// Orders placed by this process, for the saga's kicker to drive at
    /// once (see [`Placed`]).
    pub placed: Placed,
    /// Readers of `GET /api/orders/{id}?waitMs=` waiting for a status.
    pub waiters: StatusWaiters,
}

/// Orders waiting for the kicker (`order::saga::run_kicker`), at most
/// this many; past it a placed order waits for its `OrderPlaced` message.
pub const PLACED_QUEUE_MAX: usize = 1_024;

/// The order ids `POST /api/orders` just committed, queued in memory for
/// this process's kicker. Only a shortcut: the same transaction wrote the
/// `OrderPlaced` outbox row, whose delivery drives the order wherever the
/// shortcut did not (queue full, process crashed, kicker not running), and
/// the order's first retry time (`saga.place_grace_ms`) lets the watchdog
/// drive it where neither did (a kick that failed after its message was
/// left to it). `drive` is idempotent, so an order driven twice is driven
/// once.
#[derive(Debug, Clone)]
pub struct Placed {
    tx: tokio::sync::mpsc::Sender<Kick>,
    rx: Arc<std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Kick>>>>,
    /// Orders offered and not yet done by the kicker (at most the queue
    /// plus what it drives at once): their `OrderPlaced`, arriving here,
    /// is left to the kicker instead of racing it for the same payment call.
    kicking: Arc<std::sync::Mutex<std::collections::BTreeSet<OrderId>>>,
}

/// One placed order for the kicker, with the order's trace (its kick is a
/// root span in it, as the watchdog's retries are: holding the request's
/// span here would keep the request's span open until the kick ended).
#[derive(Debug)]
pub(crate) struct Kick {
    pub order_id: OrderId,
    pub trace: TraceId,
}

impl Default for Placed {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(PLACED_QUEUE_MAX);
        Self {
            tx,
            rx: Arc::new(std::sync::Mutex::new(Some(rx))),
            kicking: Arc::default(),
        }
    }
}

impl Placed {
    /// Queues `order_id` for the kicker; false when the queue is full or
    /// no kicker runs (the bus drives it then).
    pub fn offer(&self, order_id: OrderId, trace: TraceId) -> bool {
        self.mark(&order_id, true);
        let kick = Kick {
            order_id: order_id.clone(),
            trace,
        };
        let queued = self.tx.try_send(kick).is_ok();
        if !queued {
            self.mark(&order_id, false);
        }
        queued
    }

    /// Whether the kicker has `order_id` (queued or being driven).
    pub fn is_kicking(&self, order_id: &OrderId) -> bool {
        self.kicking.lock().is_ok_and(|k| k.contains(order_id))
    }

    /// The kicker is done with `order_id` (driven, or failed: the
    /// watchdog retries it then).
    pub(crate) fn done(&self, order_id: &OrderId) {
        self.mark(order_id, false);
    }

    fn mark(&self, order_id: &OrderId, kicking: bool) {
        if let Ok(mut k) = self.kicking.lock() {
            if kicking {
                k.insert(order_id.clone());
            } else {
                k.remove(order_id);
            }
        }
    }

    /// The queue's receiving end, once (the kicker that `start` builds).
    pub(crate) fn take_receiver(&self) -> Option<tokio::sync::mpsc::Receiver<Kick>> {
        self.rx.lock().ok().and_then(|mut rx| rx.take())
    }
}

/// An outbox row carrying `body`, keyed by its order id.
pub(crate) fn outbox_message(
    ctx: &Ctx,
    topic: &str,
    trace_id: Option<TraceId>,
    body: BusMessage,
) -> OutboxMessage {
    let env = Envelope {
        message_id: ctx.rng.message_id(),
        trace_id,
        body,
    };
    let headers = crate::http::trace::send_headers(topic, env.trace_id.as_ref(), &env.message_id);
    OutboxMessage {
        message_id: env.message_id.clone(),
        topic: topic.to_owned(),
        key: env.body.order_id().to_string(),
        payload: env.to_bytes(),
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace() -> TraceId {
        TraceId("4bf92f3577b34da6a3ce929d0e0e4736".into())
    }

    #[test]
    fn the_placed_queue_is_bounded_and_has_one_receiver() {
        let placed = Placed::default();
        let rx = placed.take_receiver();
        assert!(rx.is_some());
        assert!(
            placed.take_receiver().is_none(),
            "a second kicker got the queue"
        );
        for i in 0..PLACED_QUEUE_MAX {
            assert!(
                placed.offer(OrderId(format!("o{i}")), trace()),
                "offer {i} refused"
            );
        }
        assert!(!placed.offer(OrderId("one-too-many".into()), trace()));
        assert!(placed.is_kicking(&OrderId("o0".into())));
        assert!(!placed.is_kicking(&OrderId("one-too-many".into())));
        placed.done(&OrderId("o0".into()));
        assert!(!placed.is_kicking(&OrderId("o0".into())));
        drop(rx);
        assert!(!placed.offer(OrderId("no kicker".into()), trace()));
        assert!(!placed.is_kicking(&OrderId("no kicker".into())));
    }
}
