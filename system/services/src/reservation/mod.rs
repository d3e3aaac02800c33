//! Reservation: seat holds.
//!
//! Public routes hold, read, extend and release holds. A hold made with a
//! customer token belongs to that customer: anyone else gets the same 404
//! as for an id that never existed (`customer::Caller::may_see`). The hold
//! id stays unguessable (128 random bits, returned only to the holder); an
//! anonymous hold (where `auth.anonymous` allows one) has only its id as
//! the capability, as in contract v1.
//! The internal route pins a hold to an order at checkout. A bus worker
//! executes the saga's `ConfirmSeats` (the fenced confirm) and `ReleaseHold`
//! commands and replies on the saga topic; a sweeper expires due holds so
//! that every expiry becomes a seat change on the SSE stream.
//!
//! On an event with a waiting room, a hold needs the queue's admission
//! token (`check_admission`).
//!
//! Layer: a service; imports the shared types, `admission`, `http`, `worker`, `started`;
//! never another service or the gateway.

use crate::Ctx;
use crate::admission::{self, ADMISSION_HEADER, AdmissionKey};
use crate::config::ReservationSettings;
use crate::customer::{Caller, CustomerAuth};
use crate::error::ApiError;
use crate::http::extract::{ApiJson, JsonError};
use crate::http::peer::{PeerAddr, client_ip};
use crate::rate_limit::{RequestLimit, RequestLimits};
use crate::started::{NamedWorker, Started};
use crate::worker;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use ticketing_contract::{ConfirmBody, ConfirmView, ExtendBody, HoldBody, HoldView, PinBody};
use ticketing_domain::messages::{BusMessage, Envelope, topics};
use ticketing_domain::ports::{
    ConfirmOutcome, CustomerLimits, EventBus, HoldRequest, OutgoingMessage, QueueError, QueueStore,
    RandomExt, Releaser, SeatStore, SeatStoreError,
};
use ticketing_domain::probe::{self, Probe};
use ticketing_domain::rules::{self, HoldPolicy};
use ticketing_domain::saga::FailureReason;
use ticketing_domain::{EventId, Hold, HoldId, MessageId, OrderId, SeatId, TraceId, VisitorId};
use tokio_util::sync::CancellationToken;

/// Longest id or customer id accepted in a request.
const MAX_ID_LEN: usize = 64;

#[derive(Debug, Clone)]
pub struct ReservationState {
    pub ctx: Ctx,
    pub seats: Arc<dyn SeatStore>,
    pub policy: HoldPolicy,
    /// Verifies customer tokens on the public routes.
    pub auth: CustomerAuth,
    /// Per-customer bounds the seat store enforces in the hold's step.
    pub limits: CustomerLimits,
    /// Request rates on hold and extend, per customer and client address.
    pub rates: RequestLimits,
    /// Where protected events' rooms are and the token key; `None`: this
    /// deployment has no waiting room (every event is open).
    pub admission: Option<Admission>,
}

/// What reservation needs to require admission on protected events.
#[derive(Debug, Clone)]
pub struct Admission {
    pub rooms: Arc<dyn QueueStore>,
    pub key: AdmissionKey,
}

/// A hold on an event with a waiting room must carry a valid admission
/// token for that event (header `X-Admission-Token`) whose visitor's slot
/// is still held, and a token issued to a customer is good only with that
/// customer's bearer token; each hold made with it counts as the shopper's
/// activity. The refusal names no seat, no other visitor, no other customer.
/// Returns the admitted visitor (`None`: the event needs no admission).
async fn check_admission(
    state: &ReservationState,
    event_id: &EventId,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<Option<VisitorId>, ApiError> {
    let Some(adm) = &state.admission else {
        return Ok(None);
    };
    if adm.rooms.room(event_id).await?.is_none() {
        return Ok(None);
    }
    let invalid = |why: &str| ApiError::Forbidden("ADMISSION_INVALID", why.to_owned());
    let Some(token) = headers.get(ADMISSION_HEADER) else {
        return Err(ApiError::Forbidden(
            "ADMISSION_REQUIRED",
            "this event has a waiting room: join it and hold with the admission token".into(),
        ));
    };
    let now = state.ctx.clock.now_ms();
    let token = token
        .to_str()
        .map_err(|_| invalid("the admission token is malformed"))?;
    let claims = admission::verify(&adm.key, token, now).map_err(|e| invalid(&e.to_string()))?;
    if &claims.event_id != event_id {
        return Err(invalid("the admission token is for another event"));
    }
    if let Some(owner) = claims.customer_id.as_deref()
        && caller.customer() != Some(owner)
    {
        return Err(invalid("the admission token is another customer's"));
    }
    if !adm.rooms.touch(event_id, &claims.visitor_id, now).await? {
        return Err(invalid(
            "the admission is no longer active (bought, idle or expired)",
        ));
    }
    Ok(Some(claims.visitor_id))
}

/// Ties a hold to the admission it was made under, so that buying it frees
/// the shopper's slot. A failure only delays that: the slot then frees
/// when it goes idle.
async fn bind_to_admission(state: &ReservationState, hold: &Hold, visitor: &VisitorId) {
    let Some(adm) = &state.admission else {
        return;
    };
    if let Err(e) = adm
        .rooms
        .bind_hold(&hold.event_id, visitor, &hold.hold_id)
        .await
    {
        tracing::warn!(hold_id = %hold.hold_id, error = %e, "hold not bound to its admission");
    }
}

/// The seats of `hold_id` were sold: free the slot of the shopper who was
/// admitted to buy them (nothing for a hold no admission made).
async fn free_admission(state: &ReservationState, event_id: &EventId, hold_id: &HoldId) {
    let Some(adm) = &state.admission else {
        return;
    };
    match adm.rooms.bought(event_id, hold_id).await {
        Ok(()) | Err(QueueError::UnknownRoom) => {}
        Err(e) => tracing::warn!(%hold_id, error = %e, "admission slot not freed on purchase"),
    }
}

/// Public routes (`/api/reservations...`).
pub fn public_router(state: ReservationState) -> Router {
    Router::new()
        .route("/api/reservations", post(create_hold))
        .route(
            "/api/reservations/{hold_id}",
            get(get_hold).delete(release_hold),
        )
        .route("/api/reservations/{hold_id}/extend", post(extend_hold))
        .with_state(state)
}

/// Internal routes (`/internal/...`), reachable only by other services.
pub fn internal_router(state: ReservationState) -> Router {
    Router::new()
        .route("/internal/holds/{hold_id}/pin", post(pin_hold))
        .route("/internal/holds/{hold_id}/confirm", post(confirm_hold))
        .with_state(state)
}

fn check_len(what: &str, s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > MAX_ID_LEN {
        return Err(ApiError::Validation(format!(
            "{what} must be 1 to {MAX_ID_LEN} characters"
        )));
    }
    Ok(())
}

fn caller(state: &ReservationState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    state.auth.caller(headers, state.ctx.clock.now_ms())
}

/// The hold, if `caller` may see it; otherwise the same 404 as for an
/// unknown id. The owner never changes, so the check holds for the step
/// that follows it.
/// Refuses a step on a hold someone else owns (404, as for an unknown id).
/// A hold that cannot be read (gone, unknown) is left to the store's own
/// atomic step to answer: the ownership read never stands in for it.
async fn may_act(
    state: &ReservationState,
    caller: &Caller,
    hold_id: &HoldId,
) -> Result<(), ApiError> {
    match owned_hold(state, caller, hold_id).await {
        Ok(_) | Err(ApiError::HoldGone(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The store's refusal as `caller` may hear it: a gone hold's reason only
/// for its owner (anyone else: the 404 of an unknown id).
fn seen_by(caller: &Caller, e: SeatStoreError) -> ApiError {
    match e {
        SeatStoreError::HoldGone { customer_id, .. } if !caller.may_see(customer_id.as_deref()) => {
            ApiError::HoldNotFound
        }
        e => e.into(),
    }
}

async fn owned_hold(
    state: &ReservationState,
    caller: &Caller,
    hold_id: &HoldId,
) -> Result<Hold, ApiError> {
    let hold = state
        .seats
        .get_hold(hold_id, state.ctx.clock.now_ms())
        .await
        .map_err(|e| seen_by(caller, e))?;
    if !caller.may_see(hold.customer_id.as_deref()) {
        return Err(ApiError::HoldNotFound);
    }
    Ok(hold)
}

/// Counts the request against `limit` (429 over it).
fn rate(
    state: &ReservationState,
    limit: &RequestLimit,
    caller: &Caller,
    headers: &HeaderMap,
    peer: Option<Extension<PeerAddr>>,
) -> Result<(), ApiError> {
    let ip = client_ip(headers, peer.map(|p| p.0), state.rates.trust_forwarded_for);
    limit.check(caller.customer(), ip, state.ctx.clock.now_ms())
}

#[utoipa::path(
    post,
    path = "/api/reservations",
    tag = "holds",
    summary = "Hold seats",
    description = "Holds every listed seat or none, for `holdSeconds`, for the token's customer, within the per-customer limits (seats per event, live holds) checked in the same atomic step. A protected event needs the waiting room's admission token.",
    request_body = ticketing_contract::HoldBody,
    params(
        ("X-Admission-Token" = Option<String>, Header, description = "The waiting room's admission token (protected events)"),
    ),
    responses(
        (status = 400, description = "MALFORMED_JSON: the body is not JSON", body = ticketing_contract::ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: the body is over http.body_limit_bytes", body = ticketing_contract::ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ticketing_contract::ErrorBody),
        (status = 201, description = "The hold", body = ticketing_contract::HoldView),
        (status = 401, description = "UNAUTHENTICATED: a bad token, or none where tokens are required", body = ticketing_contract::ErrorBody),
        (status = 403, description = "ADMISSION_REQUIRED or ADMISSION_INVALID (a protected event)", body = ticketing_contract::ErrorBody),
        (status = 404, description = "EVENT_NOT_FOUND or SEAT_NOT_FOUND", body = ticketing_contract::ErrorBody),
        (status = 409, description = "SEATS_UNAVAILABLE (with `seatIds`) or CUSTOMER_LIMIT", body = ticketing_contract::ErrorBody),
        (status = 422, description = "VALIDATION_FAILED: the body or a parameter is out of range", body = ticketing_contract::ErrorBody),
        (status = 429, description = "RATE_LIMITED, with `Retry-After`", body = ticketing_contract::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn create_hold(
    State(state): State<ReservationState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Result<ApiJson<HoldBody>, JsonError>,
) -> Result<(StatusCode, Json<HoldView>), ApiError> {
    // Credentials before the body: a bad token is 401 whatever was sent.
    let caller = caller(&state, &headers)?;
    rate(&state, &state.rates.hold, &caller, &headers, peer)?;
    let ApiJson(body) = body?;
    check_len("eventId", &body.event_id)?;
    for s in &body.seat_ids {
        check_len("seatId", s)?;
    }
    let seat_ids: Vec<SeatId> = body.seat_ids.into_iter().map(SeatId).collect();
    rules::validate_hold_request(&seat_ids, body.hold_seconds, &state.policy)
        .map_err(|e| ApiError::Validation(e.0))?;
    let event_id = EventId(body.event_id);
    let admitted = check_admission(&state, &event_id, &caller, &headers).await?;
    let req = HoldRequest {
        event_id,
        seat_ids,
        hold_id: state.ctx.rng.hold_id(),
        ttl_ms: body.hold_seconds * 1000,
        customer_id: caller.customer().map(str::to_owned),
        limits: state.limits,
    };
    let hold = match state.seats.hold(req, state.ctx.clock.now_ms()).await {
        Ok(hold) => {
            metrics::counter!(crate::metrics::HOLDS, "outcome" => "won").increment(1);
            if let Some(visitor) = &admitted {
                bind_to_admission(&state, &hold, visitor).await;
            }
            hold
        }
        Err(e) => {
            let e = ApiError::from(e);
            match e {
                ApiError::SeatsUnavailable(_) => {
                    metrics::counter!(crate::metrics::HOLDS, "outcome" => "lost").increment(1);
                }
                ApiError::CustomerLimit { .. } => {
                    metrics::counter!(crate::metrics::HOLDS, "outcome" => "limited").increment(1);
                }
                _ => {}
            }
            return Err(e);
        }
    };
    tracing::debug!(hold_id = %hold.hold_id, event_id = %hold.event_id, seats = hold.seat_ids.len(), "hold created");
    Ok((StatusCode::CREATED, Json(hold.into())))
}

#[utoipa::path(
    get,
    path = "/api/reservations/{hold_id}",
    tag = "holds",
    summary = "Read a hold",
    description = "The hold, for its customer only (another customer gets 404). A gone hold answers 410 with why.",
    params(
        ("hold_id" = String, Path, description = "The hold id (the holder's capability)"),
    ),
    responses(
        (status = 200, description = "The hold", body = ticketing_contract::HoldView),
        (status = 401, description = "UNAUTHENTICATED: a bad token, or none where tokens are required", body = ticketing_contract::ErrorBody),
        (status = 404, description = "HOLD_NOT_FOUND (also another customer's hold)", body = ticketing_contract::ErrorBody),
        (status = 410, description = "HOLD_EXPIRED, HOLD_RELEASED or HOLD_ORDERED (with `orderId`)", body = ticketing_contract::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn get_hold(
    State(state): State<ReservationState>,
    headers: HeaderMap,
    Path(hold_id): Path<String>,
) -> Result<Json<HoldView>, ApiError> {
    let caller = caller(&state, &headers)?;
    let hold = owned_hold(&state, &caller, &HoldId(hold_id)).await?;
    Ok(Json(hold.into()))
}

#[utoipa::path(
    post,
    path = "/api/reservations/{hold_id}/extend",
    tag = "holds",
    summary = "Extend a hold",
    description = "Moves the hold's expiry to `holdSeconds` from now, up to its maximum lifetime.",
    request_body = ticketing_contract::ExtendBody,
    params(
        ("hold_id" = String, Path, description = "The hold id (the holder's capability)"),
    ),
    responses(
        (status = 400, description = "MALFORMED_JSON: the body is not JSON", body = ticketing_contract::ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: the body is over http.body_limit_bytes", body = ticketing_contract::ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ticketing_contract::ErrorBody),
        (status = 200, description = "The hold with its new expiry", body = ticketing_contract::HoldView),
        (status = 401, description = "UNAUTHENTICATED: a bad token, or none where tokens are required", body = ticketing_contract::ErrorBody),
        (status = 404, description = "HOLD_NOT_FOUND", body = ticketing_contract::ErrorBody),
        (status = 409, description = "HOLD_PINNED or HOLD_EXTENSION_LIMIT", body = ticketing_contract::ErrorBody),
        (status = 410, description = "HOLD_EXPIRED, HOLD_RELEASED or HOLD_ORDERED", body = ticketing_contract::ErrorBody),
        (status = 422, description = "VALIDATION_FAILED: the body or a parameter is out of range", body = ticketing_contract::ErrorBody),
        (status = 429, description = "RATE_LIMITED, with `Retry-After`", body = ticketing_contract::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn extend_hold(
    State(state): State<ReservationState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    Path(hold_id): Path<String>,
    body: Result<ApiJson<ExtendBody>, JsonError>,
) -> Result<Json<HoldView>, ApiError> {
    let caller = caller(&state, &headers)?;
    rate(&state, &state.rates.extend, &caller, &headers, peer)?;
    let ApiJson(body) = body?;
    rules::validate_hold_seconds(body.hold_seconds, &state.policy)
        .map_err(|e| ApiError::Validation(e.0))?;
    let (hold_id, hold_ms) = (HoldId(hold_id), body.hold_seconds * 1000);
    may_act(&state, &caller, &hold_id).await?;
    let max_lifetime_ms = state.policy.max_lifetime_seconds * 1000;
    let now = state.ctx.clock.now_ms();
    match state
        .seats
        .extend(&hold_id, hold_ms, max_lifetime_ms, now)
        .await
    {
        Ok(hold) => Ok(Json(hold.into())),
        Err(SeatStoreError::ExtensionLimit) => {
            // Refused in the store's atomic step; read the hold only to say why.
            let why = match state.seats.get_hold(&hold_id, now).await {
                Ok(h) => rules::extension_refusal(
                    h.created_at_ms,
                    h.expires_at_ms,
                    now,
                    hold_ms,
                    max_lifetime_ms,
                ),
                Err(_) => "the hold's expiry cannot move later".to_owned(),
            };
            Err(ApiError::ExtensionLimit(why))
        }
        Err(e) => Err(seen_by(&caller, e)),
    }
}

#[utoipa::path(
    delete,
    path = "/api/reservations/{hold_id}",
    tag = "holds",
    summary = "Release a hold",
    description = "Frees the hold's seats at once.",
    params(
        ("hold_id" = String, Path, description = "The hold id (the holder's capability)"),
    ),
    responses(
        (status = 204, description = "Released: the seats are available again"),
        (status = 401, description = "UNAUTHENTICATED: a bad token, or none where tokens are required", body = ticketing_contract::ErrorBody),
        (status = 404, description = "HOLD_NOT_FOUND", body = ticketing_contract::ErrorBody),
        (status = 409, description = "HOLD_PINNED (an order is checking out)", body = ticketing_contract::ErrorBody),
        (status = 410, description = "HOLD_EXPIRED, HOLD_RELEASED or HOLD_ORDERED", body = ticketing_contract::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn release_hold(
    State(state): State<ReservationState>,
    headers: HeaderMap,
    Path(hold_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&state, &headers)?;
    let hold_id = HoldId(hold_id);
    may_act(&state, &caller, &hold_id).await?;
    state
        .seats
        .release(&hold_id, Releaser::Holder, state.ctx.clock.now_ms())
        .await
        .map_err(|e| seen_by(&caller, e))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pin_hold(
    State(state): State<ReservationState>,
    Path(hold_id): Path<String>,
    ApiJson(body): ApiJson<PinBody>,
) -> Result<Json<HoldView>, ApiError> {
    check_len("orderId", &body.order_id)?;
    let hold_id = HoldId(hold_id);
    // The order service says whose order it is: only the hold's owner may
    // order it (an anonymous hold: whoever has its id).
    let caller = match body.customer_id {
        Some(c) => Caller::Customer(c),
        None => Caller::Anonymous,
    };
    may_act(&state, &caller, &hold_id).await?;
    let hold = state
        .seats
        .pin(
            &hold_id,
            &OrderId(body.order_id),
            state.policy.checkout_seconds * 1000,
            state.ctx.clock.now_ms(),
        )
        .await
        .map_err(|e| seen_by(&caller, e))?;
    Ok(Json(hold.into()))
}

/// The fenced confirm, whichever way the saga asked (its HTTP fast path or
/// the `ConfirmSeats` command): sells the hold's seats to the order, or
/// says why not; a confirmed hold frees its waiting-room slot.
async fn confirm_seats(
    state: &ReservationState,
    hold_id: &HoldId,
    order_id: &OrderId,
    traceparent: Option<&str>,
) -> Result<ConfirmOutcome, SeatStoreError> {
    let now = state.ctx.clock.now_ms();
    let outcome = state
        .seats
        .confirm(hold_id, order_id, traceparent, now)
        .await?;
    match &outcome {
        ConfirmOutcome::Confirmed { event_id, .. } => {
            free_admission(state, event_id, hold_id).await;
        }
        ConfirmOutcome::Rejected(reason) => refused(*reason),
    }
    Ok(outcome)
}

/// A confirm the fence refused: one refused because the hold expired
/// reaches its coverage probe.
fn refused(reason: FailureReason) {
    if reason == FailureReason::HoldExpired {
        probe::reached(Probe::ConfirmRefusedAfterExpiry);
    }
}

/// `POST /internal/holds/{id}/confirm {orderId}`: the saga's fast path.
/// The caller's `traceparent` goes onto the SOLD change records, as the
/// command's does.
async fn confirm_hold(
    State(state): State<ReservationState>,
    Path(hold_id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<Json<ConfirmView>, ApiError> {
    check_len("orderId", &body.order_id)?;
    check_len("holdId", &hold_id)?;
    let traceparent = headers
        .get(crate::http::trace::TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    let outcome = confirm_seats(
        &state,
        &HoldId(hold_id),
        &OrderId(body.order_id),
        traceparent,
    )
    .await?;
    Ok(Json(match outcome {
        ConfirmOutcome::Confirmed { .. } => ConfirmView {
            confirmed: true,
            reason: None,
        },
        ConfirmOutcome::Rejected(reason) => ConfirmView {
            confirmed: false,
            reason: Some(reason),
        },
    }))
}

/// Executes one saga command. Idempotent: the confirm is, the release by
/// order is, the fenced return is (a repeat returns nothing more), and a
/// repeated reply carries the same derived message id.
pub async fn handle_command(
    state: &ReservationState,
    bus: &dyn EventBus,
    env: Envelope,
) -> anyhow::Result<()> {
    let now = state.ctx.clock.now_ms();
    // The command's trace context goes onto the SOLD change records: the
    // catalog's push of those changes joins the order's trace.
    let traceparent =
        crate::http::trace::message_traceparent(env.trace_id.as_ref(), &env.message_id);
    let reply = match env.body {
        BusMessage::ConfirmSeats { order_id, hold_id } => {
            match confirm_seats(state, &hold_id, &order_id, traceparent.as_deref()).await? {
                ConfirmOutcome::Confirmed { event_id, seat_ids } => BusMessage::SeatsConfirmed {
                    order_id,
                    event_id,
                    seat_ids,
                },
                ConfirmOutcome::Rejected(reason) => BusMessage::SeatsRejected { order_id, reason },
            }
        }
        BusMessage::ReleaseHold { order_id, hold_id } => {
            match state
                .seats
                .release(&hold_id, Releaser::Order(order_id), now)
                .await
            {
                Ok(()) | Err(SeatStoreError::HoldGone { .. } | SeatStoreError::HoldNotFound) => {
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        BusMessage::ReturnSeats {
            order_id,
            event_id,
            seat_ids,
            customer_id,
        } => {
            let returned = state
                .seats
                .return_seats(&event_id, &seat_ids, &order_id, customer_id.as_deref(), now)
                .await?;
            BusMessage::SeatsReturned { order_id, returned }
        }
        other => {
            tracing::warn!(message = ?other, "reservation ignores message");
            return Ok(());
        }
    };
    publish_reply(bus, &env.message_id, env.trace_id, reply).await
}

async fn publish_reply(
    bus: &dyn EventBus,
    cause: &MessageId,
    trace_id: Option<TraceId>,
    body: BusMessage,
) -> anyhow::Result<()> {
    let env = Envelope {
        // Derived from the command's id: a redelivered command gives a
        // duplicate reply the orchestrator recognises.
        message_id: MessageId(format!("{cause}/reply")),
        trace_id,
        body,
    };
    bus.publish(OutgoingMessage {
        topic: topics::ORDER_SAGA.into(),
        key: env.body.order_id().to_string(),
        payload: env.to_bytes(),
        headers: crate::http::trace::send_headers(
            topics::ORDER_SAGA,
            env.trace_id.as_ref(),
            &env.message_id,
        ),
    })
    .await?;
    Ok(())
}

/// The command worker's name (consumes `reservation-commands`).
pub const COMMAND_WORKER: &str = "reservation-commands";
/// The expiry sweeper's name.
pub const SWEEPER: &str = "hold-sweeper";

/// The reservation service: public and internal routes, the worker that
/// executes the saga's seat commands, and the expiry sweeper.
pub fn start(
    state: ReservationState,
    bus: Arc<dyn EventBus>,
    settings: &ReservationSettings,
    shutdown: CancellationToken,
) -> Started {
    let commands = run_command_worker(state.clone(), bus, shutdown.clone());
    let sweeper = run_sweeper(state.clone(), settings.sweep_interval_ms, shutdown);
    Started {
        service: "reservation",
        public: public_router(state.clone()),
        internal: internal_router(state),
        workers: vec![
            NamedWorker::new(COMMAND_WORKER, commands),
            NamedWorker::new(SWEEPER, sweeper),
        ],
    }
}

/// Consumes saga commands until shutdown.
pub async fn run_command_worker(
    state: ReservationState,
    bus: Arc<dyn EventBus>,
    shutdown: CancellationToken,
) {
    let b = bus.clone();
    worker::consume(
        bus,
        topics::RESERVATION_COMMANDS,
        "reservation",
        shutdown,
        |env| {
            let state = state.clone();
            let bus = b.clone();
            async move { handle_command(&state, bus.as_ref(), env).await }
        },
    )
    .await;
}

/// Expires due holds every `interval_ms` until shutdown.
pub async fn run_sweeper(state: ReservationState, interval_ms: u64, shutdown: CancellationToken) {
    while worker::pause(interval_ms, &shutdown).await {
        match state
            .seats
            .expire_due(state.ctx.clock.now_ms(), 1_000)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::debug!(expired = n, "holds expired"),
            Err(e) => tracing::warn!(error = %e, "hold sweep failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_confirm_refused_for_expiry_reaches_its_probe() {
        for (reason, hits) in [
            (FailureReason::HoldExpired, Some(&1)),
            (FailureReason::HoldReleased, None),
            (FailureReason::HoldNotPinned, None),
        ] {
            let ((), reached) = probe::recording(|| refused(reason));
            assert_eq!(
                reached.get(&Probe::ConfirmRefusedAfterExpiry),
                hits,
                "{reason:?}"
            );
        }
    }
}
