//! The order service's state and how it writes bus messages into its
//! outbox: what the HTTP handlers (`order`) and the saga (`order::saga`)
//! both use.
//!
//! Layer: bottom of `order`; imports the crate's shared types and `http`.

use crate::Ctx;
use crate::config::SagaSettings;
use std::sync::Arc;
use ticketing_domain::TraceId;
use ticketing_domain::messages::{BusMessage, Envelope};
use ticketing_domain::ports::{
    OrderRepository, OutboxMessage, PaymentGateway, RandomExt, ReservationClient,
};

#[derive(Debug, Clone)]
pub struct OrderState {
    pub ctx: Ctx,
    pub repo: Arc<dyn OrderRepository>,
    pub reservation: Arc<dyn ReservationClient>,
    pub payment: Arc<dyn PaymentGateway>,
    pub saga: SagaSettings,
    /// Woken when this process wrote outbox rows: the relay publishes them
    /// at once instead of at its next tick (other replicas' rows wait for
    /// the tick).
    pub outbox_ready: Arc<tokio::sync::Notify>,
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
