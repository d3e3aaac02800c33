//! Queue: the waiting room in front of protected events.
//!
//! A visitor joins (`POST /api/queue/{eventId}`, with its customer's bearer
//! token unless `auth.anonymous` is on) and gets a ticket (128 random
//! bits, its secret handle) and a visitor id. A customer holds one live
//! place per room: joining again answers the same place (200), so a
//! customer's many browsers or bots do not stand in line many times. It
//! asks for its place
//! (`GET /api/queue/{eventId}/{ticket}`): position, people ahead and an
//! estimated wait from the measured admission rate, then — once admitted —
//! a signed admission token (`crate::admission`) naming the customer, which
//! reservation requires, from that customer, on every hold for the event.
//! Arrivals before the on-sale time are drawn into one random order at the
//! on-sale time; later ones queue in arrival
//! order (`ticketing_domain::queue`). The admitter worker runs one atomic
//! admission step per room every `queue.admit_interval_ms`; several queue
//! processes may run it at once (the caps hold inside the store's step).
//! Internal routes read a room and change its caps at run time.
//!
//! Layer: a service; imports the shared types, `admission`, `customer`,
//! `http`,
//! `worker`, `started`; never another service or the gateway.

use crate::Ctx;
use crate::admission::{self, AdmissionClaims, AdmissionKey};
use crate::config::QueueSettings;
use crate::customer::CustomerAuth;
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::started::{NamedWorker, Started};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use ticketing_contract::{
    QueueCapsBody, QueueJoinView, QueuePlaceView, QueueRoomView, QueueStatus,
};
use ticketing_domain::ports::{Place, QueueError, QueueStore, RandomExt, SeatStore};
use ticketing_domain::probe::{self, Probe};
use ticketing_domain::queue::{self, PlaceState, RoomConfig};
use ticketing_domain::{EventId, QueueTicket};
use tokio_util::sync::CancellationToken;

/// Longest event id or ticket accepted in a path.
const MAX_ID_LEN: usize = 64;

/// Shared state of the queue service.
#[derive(Debug, Clone)]
pub struct QueueState {
    pub ctx: Ctx,
    pub rooms: Arc<dyn QueueStore>,
    /// Read only to tell an unknown event (404) from one without a room (409).
    pub seats: Arc<dyn SeatStore>,
    pub key: AdmissionKey,
    /// Verifies customer tokens on join: a place belongs to the customer.
    pub auth: CustomerAuth,
    pub settings: QueueSettings,
}

/// The admitter's name.
pub const ADMITTER: &str = "queue-admitter";

/// The queue service: public and internal routes, and the admitter.
pub fn start(state: QueueState, shutdown: CancellationToken) -> Started {
    Started {
        service: "queue",
        public: public_router(state.clone()),
        internal: internal_router(state.clone()),
        workers: vec![NamedWorker::new(ADMITTER, run_admitter(state, shutdown))],
    }
}

/// Public routes (`/api/queue/...`).
pub fn public_router(state: QueueState) -> Router {
    Router::new()
        .route("/api/queue/{event_id}", post(join))
        .route("/api/queue/{event_id}/{ticket}", get(get_place))
        .route("/api/queue/{event_id}/{ticket}/stream", get(stream_place))
        .with_state(state)
}

/// Internal routes (`/internal/queue/...`).
pub fn internal_router(state: QueueState) -> Router {
    Router::new()
        .route("/internal/queue/{event_id}", get(get_room).put(set_caps))
        .with_state(state)
}

fn checked(what: &str, s: String) -> Result<String, ApiError> {
    if s.is_empty() || s.len() > MAX_ID_LEN {
        return Err(ApiError::Validation(format!(
            "{what} must be 1 to {MAX_ID_LEN} characters"
        )));
    }
    Ok(s)
}

/// Unknown ticket, foreign ticket or malformed ticket: one answer.
fn ticket_not_found() -> ApiError {
    ApiError::NotFound(
        "QUEUE_TICKET_NOT_FOUND",
        "no such place in this queue".into(),
    )
}

/// The room of `event_id`: 404 `EVENT_NOT_FOUND` for an event the seat
/// store does not know, 409 `QUEUE_NOT_ENABLED` for one without a room.
async fn room_of(state: &QueueState, event_id: &EventId) -> Result<RoomConfig, ApiError> {
    if let Some(room) = state.rooms.room(event_id).await? {
        return Ok(room);
    }
    state.seats.availability(event_id).await?;
    Err(ApiError::from(QueueError::UnknownRoom))
}

#[utoipa::path(
    post,
    path = "/api/queue/{event_id}",
    tag = "waiting room",
    summary = "Join the waiting room",
    description = "A place in the event's queue and the secret ticket to follow it; before the on-sale time, a place in the pre-queue (shuffled at the on-sale). A customer holds one live place per event: joining again answers the same ticket (200).",
    params(
        ("event_id" = String, Path, description = "The event, e.g. `spring-gala`", example = "spring-gala"),
    ),
    responses(
        (status = 201, description = "A new place: the visitor's ticket and place", body = ticketing_contract::QueueJoinView),
        (status = 200, description = "The customer's live place, joined before", body = ticketing_contract::QueueJoinView),
        (status = 401, description = "UNAUTHENTICATED: no valid bearer token where one is required", body = ticketing_contract::ErrorBody),
        (status = 404, description = "EVENT_NOT_FOUND", body = ticketing_contract::ErrorBody),
        (status = 409, description = "QUEUE_NOT_ENABLED or QUEUE_NOT_OPEN", body = ticketing_contract::ErrorBody),
        (status = 429, description = "RATE_LIMITED, with `Retry-After`", body = ticketing_contract::ErrorBody),
    ),
)]
pub(crate) async fn join(
    State(state): State<QueueState>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> Result<(StatusCode, Json<QueueJoinView>), ApiError> {
    let now = state.ctx.clock.now_ms();
    // Credentials first: a bad token is 401 whatever the path says.
    let caller = state.auth.caller(&headers, now)?;
    let event_id = EventId(checked("eventId", event_id)?);
    let room = room_of(&state, &event_id).await?;
    let (ticket, visitor_id) = (state.ctx.rng.queue_ticket(), state.ctx.rng.visitor_id());
    let joined = state
        .rooms
        .join(
            &event_id,
            &ticket,
            &visitor_id,
            caller.customer(),
            state.ctx.rng.next_u64(),
            now,
        )
        .await?;
    if !joined.rejoined {
        metrics::counter!(crate::metrics::QUEUE_JOINS).increment(1);
    }
    let place = state
        .rooms
        .place(&event_id, &joined.ticket, now)
        .await?
        .ok_or_else(|| ApiError::Unavailable("the place just taken is not there".into()))?;
    let view = place_view(&state, &event_id, &room, &place, now).await?;
    let status = match joined.rejoined {
        true => StatusCode::OK,
        false => StatusCode::CREATED,
    };
    Ok((
        status,
        Json(QueueJoinView {
            event_id,
            ticket: joined.ticket,
            visitor_id: joined.visitor_id,
            place: view,
        }),
    ))
}

/// The place named by a path, as its view (404 for anything that is not
/// a ticket of this room: unknown, foreign, malformed).
async fn read_place(
    state: &QueueState,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(EventId, QueueTicket, QueuePlaceView), ApiError> {
    // A path that does not even decode is a ticket nobody has.
    let Ok(Path((event_id, ticket))) = path else {
        return Err(ticket_not_found());
    };
    let (event_id, ticket) = (EventId(event_id), QueueTicket(ticket));
    if event_id.as_str().len() > MAX_ID_LEN || ticket.as_str().len() > MAX_ID_LEN {
        return Err(ticket_not_found());
    }
    let view = view_of(state, &event_id, &ticket).await?;
    Ok((event_id, ticket, view))
}

async fn view_of(
    state: &QueueState,
    event_id: &EventId,
    ticket: &QueueTicket,
) -> Result<QueuePlaceView, ApiError> {
    let room = match state.rooms.room(event_id).await? {
        Some(r) => r,
        None => return Err(ticket_not_found()),
    };
    let now = state.ctx.clock.now_ms();
    let place = state
        .rooms
        .place(event_id, ticket, now)
        .await?
        .ok_or_else(ticket_not_found)?;
    place_view(state, event_id, &room, &place, now).await
}

#[utoipa::path(
    get,
    path = "/api/queue/{event_id}/{ticket}",
    tag = "waiting room",
    summary = "Read a place in the queue",
    description = "Position and estimated wait while WAITING; the admission token once ADMITTED; SOLD_OUT when nothing is left.",
    params(
        ("event_id" = String, Path, description = "The event, e.g. `spring-gala`", example = "spring-gala"),
        ("ticket" = String, Path, description = "The visitor's secret queue ticket"),
    ),
    responses(
        (status = 200, description = "The place: WAITING (position, wait), ADMITTED (with the admission token) or SOLD_OUT", body = ticketing_contract::QueuePlaceView),
        (status = 404, description = "EVENT_NOT_FOUND or QUEUE_TICKET_NOT_FOUND", body = ticketing_contract::ErrorBody),
    ),
)]
pub(crate) async fn get_place(
    State(state): State<QueueState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<QueuePlaceView>, ApiError> {
    Ok(Json(read_place(&state, path).await?.2))
}

/// The place as a server-sent event stream: the view now, then again
/// whenever it changed, asked every `queue.stream_interval_ms` (each ask
/// keeps the place, like a poll). Ends after the admission (its event
/// carries the token) or once the place expired; the client reconnects
/// after a cut like any SSE client.
#[utoipa::path(
    get,
    path = "/api/queue/{event_id}/{ticket}/stream",
    tag = "waiting room",
    summary = "Stream a place in the queue",
    description = "Server-sent events: the place on each change, until admitted or sold out.",
    params(
        ("event_id" = String, Path, description = "The event, e.g. `spring-gala`", example = "spring-gala"),
        ("ticket" = String, Path, description = "The visitor's secret queue ticket"),
    ),
    responses(
        (status = 200, description = "Server-sent events: the place (`QueuePlaceView`) on each change", body = ticketing_contract::SseEventView, content_type = "text/event-stream"),
        (status = 404, description = "EVENT_NOT_FOUND or QUEUE_TICKET_NOT_FOUND", body = ticketing_contract::ErrorBody),
    ),
)]
pub(crate) async fn stream_place(
    State(state): State<QueueState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let (event_id, ticket, first) = read_place(&state, path).await?;
    let interval = Duration::from_millis(state.settings.stream_interval_ms.max(1));
    let start = PlaceStream {
        state,
        event_id,
        ticket,
        next: Some(first),
        last: None,
        interval,
    };
    let stream = futures::stream::unfold(start, |mut s| async move {
        s.next_event().await.map(|ev| (Ok(ev), s))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(interval * 10).text("heartbeat")))
}

struct PlaceStream {
    state: QueueState,
    event_id: EventId,
    ticket: QueueTicket,
    /// A view to send before asking again.
    next: Option<QueuePlaceView>,
    /// The last view sent (`None` before the first).
    last: Option<QueuePlaceView>,
    interval: Duration,
}

impl PlaceStream {
    /// The next changed view; `None` ends the stream (after a final view,
    /// or when the place can no longer be read).
    async fn next_event(&mut self) -> Option<SseEvent> {
        if self
            .last
            .as_ref()
            .is_some_and(|v| v.status != QueueStatus::Waiting)
        {
            return None;
        }
        loop {
            let view = match self.next.take() {
                Some(v) => v,
                None => {
                    tokio::time::sleep(self.interval).await;
                    view_of(&self.state, &self.event_id, &self.ticket)
                        .await
                        .ok()?
                }
            };
            if self.last.as_ref() == Some(&view) {
                continue;
            }
            let ev = SseEvent::default().event("place").json_data(&view).ok()?;
            self.last = Some(view);
            return Some(ev);
        }
    }
}

/// The view of a place; an admitted one carries a freshly signed token.
async fn place_view(
    state: &QueueState,
    event_id: &EventId,
    room: &RoomConfig,
    place: &Place,
    now_ms: u64,
) -> Result<QueuePlaceView, ApiError> {
    let mut view = QueuePlaceView {
        status: QueueStatus::Waiting,
        prequeue: false,
        position: None,
        ahead: None,
        estimated_wait_ms: None,
        on_sale_at_ms: room.on_sale_at_ms,
        admission_token: None,
        token_expires_at_ms: None,
        admitted_at_ms: None,
    };
    match &place.state {
        PlaceState::Prequeue => view.prequeue = true,
        PlaceState::Waiting { ahead } => {
            let stats = state.rooms.stats(event_id, now_ms).await?;
            let rate = queue::announced_rate_per_s(room, stats.admitted_in_window);
            view.position = Some(ahead + 1);
            view.ahead = Some(*ahead);
            view.estimated_wait_ms = queue::estimated_wait_ms(*ahead, rate);
        }
        PlaceState::Admitted {
            admitted_at_ms,
            token_expires_at_ms,
            ..
        } => {
            view.status = QueueStatus::Admitted;
            view.admitted_at_ms = Some(*admitted_at_ms);
            let claims = AdmissionClaims {
                event_id: event_id.clone(),
                visitor_id: place.visitor_id.clone(),
                customer_id: place.customer_id.clone(),
                expires_at_ms: *token_expires_at_ms,
            };
            view.admission_token = Some(admission::sign(&state.key, &claims));
            view.token_expires_at_ms = Some(*token_expires_at_ms);
        }
        PlaceState::Expired => view.status = QueueStatus::Expired,
    }
    Ok(view)
}

async fn room_view(state: &QueueState, event_id: EventId) -> Result<QueueRoomView, ApiError> {
    let now = state.ctx.clock.now_ms();
    let s = state.rooms.stats(&event_id, now).await?;
    Ok(QueueRoomView {
        opens_at_ms: s.room.opens_at_ms,
        on_sale_at_ms: s.room.on_sale_at_ms,
        active_max: s.room.active_max,
        admit_per_s: s.room.admit_per_s,
        waiting: s.waiting,
        active: s.active,
        admitted_total: s.admitted_total,
        admitted_per_s: s.admitted_in_window as f64 / queue::RATE_WINDOW_S as f64,
        event_id,
    })
}

async fn get_room(
    State(state): State<QueueState>,
    Path(event_id): Path<String>,
) -> Result<Json<QueueRoomView>, ApiError> {
    Ok(Json(room_view(&state, EventId(event_id)).await?))
}

async fn set_caps(
    State(state): State<QueueState>,
    Path(event_id): Path<String>,
    ApiJson(body): ApiJson<QueueCapsBody>,
) -> Result<Json<QueueRoomView>, ApiError> {
    let event_id = EventId(event_id);
    state
        .rooms
        .set_caps(&event_id, body.active_max, body.admit_per_s)
        .await?;
    tracing::info!(%event_id, active_max = body.active_max, admit_per_s = body.admit_per_s, "queue caps changed");
    Ok(Json(room_view(&state, event_id).await?))
}

/// Rooms the admitter steps per tick (a bound on its loop).
const ROOMS_PER_TICK: usize = 256;

/// Runs an admission step for every room every `admit_interval_ms`.
pub async fn run_admitter(state: QueueState, shutdown: CancellationToken) {
    while crate::worker::pause(state.settings.admit_interval_ms, &shutdown).await {
        let rooms = match state.rooms.rooms().await {
            Ok(r) => r,
            Err(e) => {
                probe::reached(Probe::AdmissionStepFailed);
                tracing::warn!(error = %e, "admitter could not list rooms");
                continue;
            }
        };
        for event_id in rooms.into_iter().take(ROOMS_PER_TICK) {
            admit_once(&state, &event_id).await;
        }
    }
}

async fn admit_once(state: &QueueState, event_id: &EventId) {
    let now = state.ctx.clock.now_ms();
    match state.rooms.admit(event_id, now).await {
        Ok(r) => {
            let event = event_id.to_string();
            metrics::counter!(crate::metrics::QUEUE_ADMITTED, "event" => event.clone())
                .increment(r.admitted.len() as u64);
            metrics::gauge!(crate::metrics::QUEUE_WAITING, "event" => event.clone())
                .set(r.waiting as f64);
            metrics::gauge!(crate::metrics::QUEUE_ACTIVE, "event" => event).set(r.active as f64);
            for w in &r.waited_ms {
                metrics::histogram!(crate::metrics::QUEUE_WAIT).record(*w as f64 / 1000.0);
            }
            if !r.admitted.is_empty() || r.expired > 0 || r.abandoned > 0 {
                tracing::debug!(%event_id, admitted = r.admitted.len(), expired = r.expired, abandoned = r.abandoned, waiting = r.waiting, active = r.active, "admission step");
            }
        }
        Err(e) => {
            probe::reached(Probe::AdmissionStepFailed);
            tracing::warn!(%event_id, error = %e, "admission step failed");
        }
    }
}
