//! Order: idempotent order placement and the saga orchestrator.
//!
//! `POST /api/orders` needs an `Idempotency-Key`. The key is bound to a hash
//! of the request body and to an order id before anything else happens;
//! pinning the hold (reservation) and storing the order are both idempotent,
//! so a retry after any crash or timeout continues where the first attempt
//! stopped, and a replay returns the first response verbatim.
//!
//! The order, its first outbox message and the idempotency record are
//! written in one transaction; the outbox relay publishes to the bus and
//! marks rows sent only after the broker acknowledged them. The orchestrator
//! ([`saga`]) consumes the saga topic and drives each order through
//! `ticketing_domain::saga`; the kicker starts an order placed by this
//! process at once, without waiting for its `OrderPlaced` to come back
//! through the broker (the message still drives it wherever the kicker
//! did not).
//!
//! `GET /api/orders/{id}?waitMs=` answers when the order leaves PENDING (or
//! CANCELLING), woken by the repository's status feed ([`status_wait`]).
//!
//! Layer: a service; imports the shared types, `http`, `started` and its
//! children (`state`, `saga`, `status_wait`); never another service or the
//! gateway.

pub mod after_sale;
pub mod saga;
mod state;
pub mod status_wait;

use after_sale::CancelOutcome;
use state::outbox_message;
pub use state::{OrderState, PLACED_QUEUE_MAX, Placed};

use crate::customer::Caller;
use crate::error::{ApiError, ErrorPayload};
use crate::http::extract::ApiJson;
use crate::http::trace::KeepBody;
use crate::started::{NamedWorker, Started};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::json;
use std::sync::Arc;
use ticketing_contract::{AuditView, OrderBody, OrderView, PlacedView, TicketView, rfc3339};
use ticketing_domain::messages::{BusMessage, topics};
use ticketing_domain::ports::{
    EventBus, IdempotencyBegin, OrderRecord, PinError, RandomExt, StoredResponse,
};
use ticketing_domain::saga as saga_sm;
use ticketing_domain::{HoldId, OrderId, OrderStatus, TraceId, rules};
use tokio_util::sync::CancellationToken;

/// Longest accepted `Idempotency-Key`.
const MAX_KEY_LEN: usize = 255;

/// `GET /api/orders/{id}` query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct OrderQuery {
    /// Wait up to this many milliseconds (0 to 10000; default 0) for a
    /// PENDING or CANCELLING order to leave that status.
    #[param(minimum = 0, maximum = 10000)]
    wait_ms: Option<u64>,
}

/// An order as clients (and the audit) see it.
fn order_view(o: OrderRecord) -> OrderView {
    OrderView {
        status: o.status(),
        reason: o.saga.reason(),
        order_id: o.order_id,
        hold_id: o.hold_id,
        event_id: o.event_id,
        seat_ids: o.seat_ids,
        amount_cents: o.amount_cents,
        created_at: rfc3339(o.created_at_ms),
        updated_at: rfc3339(o.updated_at_ms),
    }
}

/// The order service: public and internal routes, the saga orchestrator
/// (consumes `order-saga`), the watchdog and the outbox relay.
pub fn start(state: OrderState, bus: Arc<dyn EventBus>, shutdown: CancellationToken) -> Started {
    let orchestrator = saga::run_orchestrator(state.clone(), bus.clone(), shutdown.clone());
    let watchdog = saga::run_watchdog(state.clone(), shutdown.clone());
    let kicker = saga::run_kicker(state.clone(), shutdown.clone());
    let relay = saga::run_outbox_relay(state.clone(), bus, shutdown.clone());
    let status_feed =
        status_wait::run_status_feed(state.repo.clone(), state.waiters.clone(), shutdown);
    Started {
        service: "order",
        public: public_router(state.clone()),
        internal: internal_router(state),
        workers: vec![
            NamedWorker::new(saga::ORCHESTRATOR, orchestrator),
            NamedWorker::new(saga::WATCHDOG, watchdog),
            NamedWorker::new(saga::KICKER, kicker),
            NamedWorker::new(saga::OUTBOX_RELAY, relay),
            NamedWorker::new(status_wait::STATUS_FEED, status_feed),
        ],
    }
}

pub fn public_router(state: OrderState) -> Router {
    Router::new()
        .route("/api/orders", post(place_order))
        .route("/api/orders/{order_id}", get(get_order))
        .route("/api/orders/{order_id}/cancel", post(cancel_order))
        .with_state(state)
}

/// Internal routes (`/internal/...`): never routed by the public gateway.
///
/// `GET /internal/audit/orders` is the order service's ground truth for a
/// post-run audit (the load harness checks the brief's invariants with it):
/// every order with its status, every ticket, and the outbox backlog.
pub fn internal_router(state: OrderState) -> Router {
    Router::new()
        .route("/internal/audit/orders", get(audit_orders))
        .route(
            "/internal/orders/{order_id}/retry-refund",
            post(retry_refund),
        )
        .with_state(state)
}

/// `POST /internal/orders/{id}/retry-refund`: an operator's retry of a
/// REFUND_FAILED order (202, CANCELLING again with a fresh deadline); 409
/// `ORDER_NOT_REFUND_FAILED` for any other order.
async fn retry_refund(
    State(state): State<OrderState>,
    Extension(trace): Extension<TraceId>,
    Path(order_id): Path<String>,
) -> Result<(StatusCode, Json<PlacedView>), ApiError> {
    let order_id = OrderId(order_id);
    match state.retry_refund(&order_id).await? {
        None => Err(ApiError::OrderNotFound),
        Some(false) => Err(ApiError::Conflict(
            "ORDER_NOT_REFUND_FAILED",
            "only a REFUND_FAILED order's refund can be retried".into(),
        )),
        Some(true) => {
            state.placed.offer(order_id.clone(), trace);
            let view = PlacedView {
                order_id,
                status: OrderStatus::Cancelling,
            };
            Ok((StatusCode::ACCEPTED, Json(view)))
        }
    }
}

/// Reads everything at once; meant for audits after a run, not for traffic.
async fn audit_orders(State(state): State<OrderState>) -> Result<Json<AuditView>, ApiError> {
    let orders = state.repo.orders().await?;
    let tickets = state.repo.tickets().await?;
    let outbox_backlog = state.repo.outbox_backlog().await?;
    let order_customers = orders
        .iter()
        .filter_map(|o| Some((o.order_id.clone(), o.customer_id.clone()?)))
        .collect();
    Ok(Json(AuditView {
        order_customers,
        orders: orders.into_iter().map(order_view).collect(),
        tickets: tickets
            .into_iter()
            .map(|t| TicketView {
                event_id: t.event_id,
                seat_id: t.seat_id,
                order_id: t.order_id,
            })
            .collect(),
        outbox_backlog,
    }))
}

/// Renders a stored response; the trace middleware leaves its body alone.
fn stored_response(r: &StoredResponse, replayed: bool) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, Json(r.body.clone())).into_response();
    resp.extensions_mut().insert(KeepBody);
    if replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

/// A final error for this key: stored so replays get the same answer.
fn error_response(err: &ApiError, trace: &TraceId) -> StoredResponse {
    let ErrorPayload { code, message, .. } = err.payload();
    StoredResponse {
        status: err.status().as_u16(),
        body: json!({ "code": code, "message": message, "traceId": trace }),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let v = headers
        .get("idempotency-key")
        .ok_or(ApiError::IdempotencyKeyRequired)?;
    // Visible ASCII only (0x21..=0x7E): no space, TAB or control character.
    let s = v
        .to_str()
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::Validation("Idempotency-Key must be visible ASCII (no spaces)".into())
        })?;
    if s.is_empty() || s.len() > MAX_KEY_LEN {
        return Err(ApiError::Validation(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"
        )));
    }
    Ok(s.to_owned())
}

/// The verified caller of an order write, within the order rate limits
/// (per customer, and per client address when configured).
fn limited_caller(
    state: &OrderState,
    headers: &HeaderMap,
    peer: Option<Extension<crate::http::peer::PeerAddr>>,
) -> Result<Caller, ApiError> {
    let now = state.ctx.clock.now_ms();
    let caller = state.auth.caller(headers, now)?;
    let trust = state.rates.trust_forwarded_for;
    let ip = crate::http::peer::client_ip(headers, peer.map(|p| p.0), trust);
    state.rates.order.check(caller.customer(), ip, now)?;
    Ok(caller)
}

/// Idempotency keys are the customer's own: the same key from another
/// customer is another request (never a replay of someone else's order).
fn scoped_key(caller: &Caller, key: String) -> String {
    match caller.customer() {
        Some(c) => format!("{c}/{key}"),
        None => key,
    }
}

#[utoipa::path(
    post,
    path = "/api/orders",
    tag = "orders",
    summary = "Order a hold",
    description = "Turns a live hold into an order, exactly once per `Idempotency-Key`: a retry with the same key and body answers the same order. The order is PENDING until payment and confirmation end it.",
    request_body = ticketing_contract::OrderBody,
    params(
        ("Idempotency-Key" = String, Header, description = "Required; the same key and body answer the same order"),
    ),
    responses(
        (status = 413, description = "PAYLOAD_TOO_LARGE: the body is over http.body_limit_bytes", body = ticketing_contract::ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ticketing_contract::ErrorBody),
        (status = 202, description = "Accepted: the order is PENDING until its saga ends", body = ticketing_contract::PlacedView),
        (status = 400, description = "IDEMPOTENCY_KEY_REQUIRED, or MALFORMED_JSON: the body is not JSON", body = ticketing_contract::ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: a bad token, or none where tokens are required", body = ticketing_contract::ErrorBody),
        (status = 404, description = "HOLD_NOT_FOUND", body = ticketing_contract::ErrorBody),
        (status = 409, description = "HOLD_PINNED (another order)", body = ticketing_contract::ErrorBody),
        (status = 410, description = "HOLD_EXPIRED or HOLD_RELEASED", body = ticketing_contract::ErrorBody),
        (status = 422, description = "VALIDATION_FAILED or IDEMPOTENCY_KEY_MISMATCH", body = ticketing_contract::ErrorBody),
        (status = 429, description = "RATE_LIMITED, with `Retry-After`", body = ticketing_contract::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn place_order(
    State(state): State<OrderState>,
    Extension(trace): Extension<TraceId>,
    peer: Option<Extension<crate::http::peer::PeerAddr>>,
    headers: HeaderMap,
    body: Result<ApiJson<OrderBody>, crate::http::extract::JsonError>,
) -> Result<Response, ApiError> {
    // Credentials before the body: a bad token is 401 whatever was sent.
    let caller = limited_caller(&state, &headers, peer)?;
    let ApiJson(body) = body?;
    let key = scoped_key(&caller, idempotency_key(&headers)?);
    if body.hold_id.is_empty() || body.hold_id.len() > 64 {
        return Err(ApiError::Validation(
            "holdId must be 1 to 64 characters".into(),
        ));
    }
    // The body as parsed (a duplicate key or unknown field was refused), so
    // the hash is of what the request means.
    let hash = rules::request_hash(&serde_json::to_value(&body).unwrap_or_default());
    let now = state.ctx.clock.now_ms();
    let candidate = state.ctx.rng.order_id();
    // Every answer but the one to the request that started the key is a
    // replay, including those to repeats that arrived while it was in progress.
    let (order_id, replayed) = match state
        .repo
        .begin_idempotent(&key, &hash, &candidate, now)
        .await?
    {
        IdempotencyBegin::Completed(r) => return Ok(stored_response(&r, true)),
        IdempotencyBegin::Mismatch => return Err(ApiError::IdempotencyKeyMismatch),
        IdempotencyBegin::Started { order_id } => (order_id, false),
        IdempotencyBegin::InProgress { order_id } => (order_id, true),
    };
    let hold_id = HoldId(body.hold_id);
    let hold = match state
        .reservation
        .pin(&hold_id, &order_id, caller.customer(), Some(&trace))
        .await
    {
        Ok(h) => h,
        Err(PinError::Unavailable(m)) => {
            // Outcome unknown: keep the key in progress so a retry resumes.
            return Err(ApiError::Unavailable(m));
        }
        Err(e) => {
            let err = match e {
                PinError::NotFound => ApiError::HoldNotFound,
                PinError::Gone(reason) => ApiError::HoldGone(reason),
                _ => ApiError::HoldPinned,
            };
            let stored = error_response(&err, &trace);
            state.repo.complete_idempotent(&key, stored.clone()).await?;
            return Ok(stored_response(&stored, replayed));
        }
    };
    let record = OrderRecord {
        order_id: order_id.clone(),
        hold_id: hold.hold_id.clone(),
        event_id: hold.event_id,
        seat_ids: hold.seat_ids,
        amount_cents: hold.amount_cents,
        customer_id: caller.customer().map(str::to_owned),
        saga: saga_sm::start().next,
        created_at_ms: now,
        updated_at_ms: now,
        attempts: 0,
        next_attempt_at_ms: now + state.saga.place_grace_ms,
        version: 0,
        trace_id: Some(trace.clone()),
        refund: None,
    };
    let placed = outbox_message(
        &state.ctx,
        topics::ORDER_SAGA,
        Some(trace.clone()),
        BusMessage::OrderPlaced {
            order_id: order_id.clone(),
        },
    );
    let response = StoredResponse {
        status: StatusCode::ACCEPTED.as_u16(),
        body: serde_json::to_value(PlacedView {
            order_id: order_id.clone(),
            status: OrderStatus::Pending,
        })
        .unwrap_or_default(),
    };
    state
        .repo
        .place_order(record, vec![placed], &key, response.clone())
        .await?;
    state.outbox_ready.notify_one();
    if !state.placed.offer(order_id.clone(), trace.clone()) {
        metrics::counter!(crate::metrics::ORDERS_KICKED, "result" => "queue_full").increment(1);
    }
    tracing::info!(%order_id, %hold_id, trace_id = %trace, "order placed");
    Ok(stored_response(&response, replayed))
}

#[utoipa::path(
    post,
    path = "/api/orders/{order_id}/cancel",
    tag = "orders",
    summary = "Cancel a confirmed order",
    description = "Starts the refund of a CONFIRMED order, for its customer only, exactly once per `Idempotency-Key` (and once per order: a repeat with another key answers the order's current status). The order is CANCELLING until its tickets are void, the payment refunded and its seats back on sale: then REFUNDED (or REFUND_FAILED if the refund could not be made before its deadline; an operator retries it).",
    params(
        ("order_id" = String, Path, description = "The order id"),
        ("Idempotency-Key" = String, Header, description = "Required; the same key answers the same result"),
    ),
    responses(
        (status = 202, description = "Accepted: CANCELLING (or the status of a cancellation already under way)", body = ticketing_contract::PlacedView),
        (status = 400, description = "IDEMPOTENCY_KEY_REQUIRED", body = ticketing_contract::ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: a bad token, or none where tokens are required", body = ticketing_contract::ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND (also another customer's order)", body = ticketing_contract::ErrorBody),
        (status = 409, description = "ORDER_NOT_CONFIRMED, or REFUND_WINDOW_CLOSED: the event starts within refund.window_before_start_s", body = ticketing_contract::ErrorBody),
        (status = 422, description = "VALIDATION_FAILED or IDEMPOTENCY_KEY_MISMATCH (the key was used for another order)", body = ticketing_contract::ErrorBody),
        (status = 429, description = "RATE_LIMITED, with `Retry-After`", body = ticketing_contract::ErrorBody),
        (status = 503, description = "UNAVAILABLE: the event's start could not be read; retry with the same key", body = ticketing_contract::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn cancel_order(
    State(state): State<OrderState>,
    Extension(trace): Extension<TraceId>,
    peer: Option<Extension<crate::http::peer::PeerAddr>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = limited_caller(&state, &headers, peer)?;
    // A space cannot be in a client's key: no cancel key is an order key.
    let key = format!("cancel {}", scoped_key(&caller, idempotency_key(&headers)?));
    let order_id = OrderId(order_id);
    let hash = rules::request_hash(&json!({ "cancel": order_id }));
    let now = state.ctx.clock.now_ms();
    let replayed = match state
        .repo
        .begin_idempotent(&key, &hash, &order_id, now)
        .await?
    {
        IdempotencyBegin::Completed(r) => return Ok(stored_response(&r, true)),
        IdempotencyBegin::Mismatch => return Err(ApiError::IdempotencyKeyMismatch),
        IdempotencyBegin::Started { .. } => false,
        IdempotencyBegin::InProgress { .. } => true,
    };
    let status = match state.cancel(&order_id, &caller, Some(&trace)).await {
        Ok(CancelOutcome::Started) => {
            state.placed.offer(order_id.clone(), trace.clone());
            OrderStatus::Cancelling
        }
        Ok(CancelOutcome::AlreadyCancelling(status)) => status,
        Err(e) if e.status().is_client_error() => {
            // Final for this key: replays get the same answer.
            let stored = error_response(&e, &trace);
            state.repo.complete_idempotent(&key, stored.clone()).await?;
            return Ok(stored_response(&stored, replayed));
        }
        // Unknown outcome (503): the key stays in progress; a retry resumes.
        Err(e) => return Err(e),
    };
    let response = StoredResponse {
        status: StatusCode::ACCEPTED.as_u16(),
        body: serde_json::to_value(PlacedView { order_id, status }).unwrap_or_default(),
    };
    state
        .repo
        .complete_idempotent(&key, response.clone())
        .await?;
    Ok(stored_response(&response, replayed))
}

#[utoipa::path(
    get,
    path = "/api/orders/{order_id}",
    tag = "orders",
    summary = "Read an order",
    description = "The order's status, for its customer only. With `waitMs`, an order that is PENDING or CANCELLING is answered as soon as it leaves that status, or after `waitMs` with its status then (one request instead of polling); any other status is answered at once.",
    params(
        ("order_id" = String, Path, description = "The order id"),
        OrderQuery,
    ),
    responses(
        (status = 200, description = "The order: PENDING, CONFIRMED, CANCELLED or FAILED (with `reason`); after a cancellation CANCELLING, REFUNDED or REFUND_FAILED", body = ticketing_contract::OrderView),
        (status = 401, description = "UNAUTHENTICATED: a bad token, or none where tokens are required", body = ticketing_contract::ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND (also another customer's order)", body = ticketing_contract::ErrorBody),
        (status = 422, description = "VALIDATION_FAILED: `waitMs` is not a whole number from 0 to 10000", body = ticketing_contract::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn get_order(
    State(state): State<OrderState>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    query: Result<Query<OrderQuery>, QueryRejection>,
) -> Result<Json<OrderView>, ApiError> {
    let caller = state.auth.caller(&headers, state.ctx.clock.now_ms())?;
    let Query(q) = query.map_err(|e| ApiError::Validation(e.body_text()))?;
    let wait_ms = q.wait_ms.unwrap_or(0);
    if wait_ms > status_wait::STATUS_WAIT_MAX_MS {
        return Err(ApiError::Validation(format!(
            "waitMs must be at most {}",
            status_wait::STATUS_WAIT_MAX_MS
        )));
    }
    let order_id = OrderId(order_id);
    let read = || async {
        state
            .repo
            .get_order(&order_id)
            .await?
            .filter(|o| caller.may_see(o.customer_id.as_deref()))
            .ok_or(ApiError::OrderNotFound)
    };
    let order = state
        .waiters
        .read_when_terminal(&order_id, wait_ms, read)
        .await?;
    Ok(Json(order_view(order)))
}
