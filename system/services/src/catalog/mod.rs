//! Catalog: events, the seat map, and the live seat stream (SSE).
//!
//! Seat status is read from the seat store, whose per-event change log has
//! gap-free versions. The stream's first message is a snapshot at a version;
//! every later message is one change with `id: <version>`. A client that
//! reconnects with `Last-Event-ID: v` gets the changes after `v` replayed
//! from the bounded history, or a fresh snapshot when `v` is too old.
//!
//! Layer: a service; imports the shared types, `http`, `worker`, `started`;
//! never another service or the gateway.

mod cache;
mod feed;
mod install;

pub use cache::SeatMapCache;
pub use feed::SeatFeed;
pub use install::{install_event, seats_for};

use crate::Ctx;
use crate::config::{CatalogSettings, QueueSettings};
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::started::{NamedWorker, Started};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures::Stream;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use ticketing_contract::{ChangeView, CreateEventBody, EventView};
use ticketing_domain::ports::{CatalogRepository, ChangesSince, QueueStore, SeatStore};
use ticketing_domain::probe::{self, Probe};
use ticketing_domain::{Event, EventId, SeatChange};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct CatalogState {
    pub ctx: Ctx,
    pub repo: Arc<dyn CatalogRepository>,
    pub seats: Arc<dyn SeatStore>,
    pub feed: Arc<SeatFeed>,
    pub cache: Arc<SeatMapCache>,
    pub heartbeat_ms: u64,
    pub replay_limit: usize,
    /// Ends open streams on shutdown, so a graceful shutdown can finish.
    pub shutdown: CancellationToken,
    /// Where `waitingRoom` at event creation opens the room (`None`: this
    /// deployment has no waiting room).
    pub rooms: Option<(Arc<dyn QueueStore>, QueueSettings)>,
}

impl CatalogState {
    /// The catalog's state around `feed` (a fresh `SeatFeed`, or one the
    /// assembler keeps a handle to); `shutdown` ends its open streams and its feed.
    pub fn new(
        ctx: Ctx,
        repo: Arc<dyn CatalogRepository>,
        seats: Arc<dyn SeatStore>,
        feed: Arc<SeatFeed>,
        settings: &CatalogSettings,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            ctx,
            repo,
            seats,
            feed,
            cache: Arc::new(SeatMapCache::new(
                settings.seat_map_cache,
                settings.seat_map_cache_events,
            )),
            heartbeat_ms: settings.sse_heartbeat_ms,
            replay_limit: settings.replay_limit,
            shutdown,
            rooms: None,
        }
    }

    /// Event creation may open waiting rooms in `rooms`.
    pub fn with_rooms(mut self, rooms: Arc<dyn QueueStore>, settings: QueueSettings) -> Self {
        self.rooms = Some((rooms, settings));
        self
    }
}

/// The seat feed worker's name.
pub const SEAT_FEED: &str = "seat-feed";

/// The catalog service: public and internal routes, and the seat feed that
/// fans the seat store's changes out to the SSE streams.
pub fn start(state: CatalogState, settings: &CatalogSettings) -> Started {
    let feed = SeatFeed::run(
        state.feed.clone(),
        state.seats.clone(),
        settings.feed_poll_ms,
        state.shutdown.clone(),
    );
    Started {
        service: "catalog",
        public: public_router(state.clone()),
        internal: internal_router(state),
        workers: vec![NamedWorker::new(SEAT_FEED, feed)],
    }
}

pub fn public_router(state: CatalogState) -> Router {
    Router::new()
        .route("/api/events", get(list_events))
        .route("/api/events/{event_id}", get(get_event))
        .route("/api/events/{event_id}/seats", get(get_seats))
        .route("/api/events/{event_id}/seats/layout", get(get_layout))
        .route("/api/events/{event_id}/seats/status", get(get_status))
        .route("/api/events/{event_id}/seats/stream", get(stream_seats))
        .with_state(state)
        .merge(ticketing_web::shop_router())
}

/// Internal routes (`/internal/...`): never routed by the public gateway.
///
/// `POST /internal/events` registers a fresh event with a rows x cols seat
/// grid. Contract v1 has no public way to create events; the load harness
/// uses this so every run sells an event of its own (repeatable against a
/// long-lived target) and its audit can be scoped to that event.
/// `GET /internal/events/{id}` is `GET /api/events/{id}` for services (the
/// order service reads an event's start for the cancellation window).
pub fn internal_router(state: CatalogState) -> Router {
    Router::new()
        .route("/internal/events", post(create_event))
        .route("/internal/events/{event_id}", get(get_event))
        .with_state(state)
}

/// Largest event `POST /internal/events` accepts (rows x cols).
pub const MAX_CREATED_SEATS: u64 = 200_000;

async fn create_event(
    State(state): State<CatalogState>,
    ApiJson(body): ApiJson<CreateEventBody>,
) -> Result<(StatusCode, Json<EventView>), ApiError> {
    let valid_id = !body.event_id.is_empty()
        && body.event_id.len() <= 64
        && body
            .event_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_id {
        return Err(ApiError::Validation(
            "eventId must be 1 to 64 characters of [A-Za-z0-9_-]".into(),
        ));
    }
    if ticketing_contract::parse_rfc3339_ms(&body.starts_at).is_none() {
        return Err(ApiError::Validation(
            "startsAt must be RFC 3339 UTC time, e.g. 2030-01-01T20:00:00Z".into(),
        ));
    }
    let seats = u64::from(body.rows) * u64::from(body.cols);
    if seats == 0 || seats > MAX_CREATED_SEATS {
        return Err(ApiError::Validation(format!(
            "rows x cols must be between 1 and {MAX_CREATED_SEATS}, got {seats}"
        )));
    }
    let event_id = EventId(body.event_id);
    if state.repo.get_event(&event_id).await?.is_some() {
        return Err(ApiError::Conflict(
            "EVENT_EXISTS",
            format!("event {} already exists", event_id.0),
        ));
    }
    let event = Event {
        event_id,
        title: body.title,
        starts_at: body.starts_at,
        rows: body.rows,
        cols: body.cols,
    };
    let room = match (&body.waiting_room, &state.rooms) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(ApiError::Validation(
                "waitingRoom: this deployment runs no queue service".into(),
            ));
        }
        (Some(w), Some((rooms, settings))) => {
            let on_sale = w.on_sale_at_ms.unwrap_or_else(|| state.ctx.clock.now_ms());
            Some((rooms, settings.room(on_sale)))
        }
    };
    install::install_event(state.repo.as_ref(), state.seats.as_ref(), event.clone()).await?;
    if let Some((rooms, config)) = room {
        rooms.open_room(&event.event_id, &config).await?;
    }
    Ok((StatusCode::CREATED, Json(event_view(&state, event).await?)))
}

async fn event_view(state: &CatalogState, e: Event) -> Result<EventView, ApiError> {
    let (_, available) = state.seats.availability(&e.event_id).await?;
    let waiting_room = match &state.rooms {
        Some((rooms, _)) => rooms.room(&e.event_id).await?.is_some(),
        None => false,
    };
    Ok(EventView {
        waiting_room,
        seat_count: e.seat_count(),
        available_count: available,
        event_id: e.event_id,
        title: e.title,
        starts_at: e.starts_at,
    })
}

/// Availability reads in flight at once while listing events.
const LIST_CONCURRENCY: usize = 16;

/// Every event with its availability. One seat-store read per event, so
/// they run [`LIST_CONCURRENCY`] at a time (in order): one after another,
/// a list of 30 events under load waited for 30 round trips to Redis.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "events",
    summary = "List the events",
    description = "Every event with its seat counts (available, total).",
    responses(
        (status = 200, description = "Every event with its availability", body = Vec<ticketing_contract::EventView>),
    ),
)]
pub(crate) async fn list_events(
    State(state): State<CatalogState>,
) -> Result<Json<Vec<EventView>>, ApiError> {
    use futures::{StreamExt, TryStreamExt};
    let events = state.repo.list_events().await?;
    let out: Vec<EventView> = futures::stream::iter(events)
        .map(|e| event_view(&state, e))
        .buffered(LIST_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(Json(out))
}

#[utoipa::path(
    get,
    path = "/api/events/{event_id}",
    tag = "events",
    summary = "Read one event",
    description = "The event with its seat counts.",
    params(
        ("event_id" = String, Path, description = "The event, e.g. `spring-gala`", example = "spring-gala"),
    ),
    responses(
        (status = 200, description = "The event", body = ticketing_contract::EventView),
        (status = 404, description = "EVENT_NOT_FOUND", body = ticketing_contract::ErrorBody),
    ),
)]
pub(crate) async fn get_event(
    State(state): State<CatalogState>,
    Path(event_id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    let e = state
        .repo
        .get_event(&EventId(event_id))
        .await?
        .ok_or(ApiError::EventNotFound)?;
    Ok(Json(event_view(&state, e).await?))
}

/// The seat map now: layout and statuses from the cache (or, with the
/// cache off, read from the stores for this request).
async fn current(
    state: &CatalogState,
    event_id: &EventId,
) -> Result<(Arc<cache::Layout>, Arc<cache::Snapshot>), ApiError> {
    state
        .cache
        .current(state.repo.as_ref(), state.seats.as_ref(), event_id)
        .await
}

/// Whether `If-None-Match` names `etag` (or `*`); weak tags compare equal.
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// A JSON body tagged `etag`, or 304 when the client has it.
fn tagged(
    headers: &HeaderMap,
    etag: String,
    cache: &'static str,
    body: impl FnOnce() -> Bytes,
) -> Response {
    let mut resp = if not_modified(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = body().into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

/// Statuses change: a client keeps the body but asks again every time.
const REVALIDATE: &str = "no-cache";
/// The layout is fixed for the event's life.
const LAYOUT_CACHE: &str = "public, max-age=3600";

/// `GET /api/events/{id}/seats`: the full map (`ETag: "<version>"`).
#[utoipa::path(
    get,
    path = "/api/events/{event_id}/seats",
    tag = "events",
    summary = "Read the seat map",
    description = "Every seat with its row, column, price and status, at the map's version.",
    params(
        ("event_id" = String, Path, description = "The event, e.g. `spring-gala`", example = "spring-gala"),
    ),
    responses(
        (status = 200, description = "The seat map at `version`", body = ticketing_contract::SeatMapView),
        (status = 404, description = "EVENT_NOT_FOUND", body = ticketing_contract::ErrorBody),
    ),
)]
pub(crate) async fn get_seats(
    State(state): State<CatalogState>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (layout, snap) = current(&state, &EventId(event_id)).await?;
    let etag = format!("\"{}\"", snap.version);
    Ok(tagged(&headers, etag, REVALIDATE, || {
        snap.map_body(&layout)
    }))
}

/// `GET /api/events/{id}/seats/status`: one character per seat in layout
/// order (`ETag: "<version>"`).
#[utoipa::path(
    get,
    path = "/api/events/{event_id}/seats/status",
    tag = "events",
    summary = "Read the seats' statuses compactly",
    description = "One character per seat (`A`, `H`, `S`) in the layout's order, at a version.",
    params(
        ("event_id" = String, Path, description = "The event, e.g. `spring-gala`", example = "spring-gala"),
    ),
    responses(
        (status = 200, description = "Every seat's status, one character each in the layout's order", body = ticketing_contract::SeatStatusView),
        (status = 404, description = "EVENT_NOT_FOUND", body = ticketing_contract::ErrorBody),
    ),
)]
pub(crate) async fn get_status(
    State(state): State<CatalogState>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, snap) = current(&state, &EventId(event_id)).await?;
    let etag = format!("\"{}\"", snap.version);
    Ok(tagged(&headers, etag, REVALIDATE, || snap.compact_body()))
}

/// `GET /api/events/{id}/seats/layout`: ids, rows, columns and prices in
/// the status string's order; the same for the event's life.
#[utoipa::path(
    get,
    path = "/api/events/{event_id}/seats/layout",
    tag = "events",
    summary = "Read the seat layout",
    description = "The seats' ids, rows, columns and prices: static for an event, cacheable; pairs with the compact statuses.",
    params(
        ("event_id" = String, Path, description = "The event, e.g. `spring-gala`", example = "spring-gala"),
    ),
    responses(
        (status = 200, description = "The seats' ids, rows, columns and prices (static)", body = ticketing_contract::SeatLayoutView),
        (status = 404, description = "EVENT_NOT_FOUND", body = ticketing_contract::ErrorBody),
    ),
)]
pub(crate) async fn get_layout(
    State(state): State<CatalogState>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let layout = state
        .cache
        .layout(
            state.repo.as_ref(),
            state.seats.as_ref(),
            &EventId(event_id),
        )
        .await?;
    let etag = format!("\"layout-{}\"", layout.seats.len());
    Ok(tagged(&headers, etag, LAYOUT_CACHE, || layout.body()))
}

/// The stream's `snapshot` event: the cached map body at its version.
async fn snapshot_event(
    state: &CatalogState,
    event_id: &EventId,
) -> Result<(u64, SseEvent), ApiError> {
    let (layout, snap) = current(state, event_id).await?;
    let body = snap.map_body(&layout);
    let ev = SseEvent::default()
        .event("snapshot")
        .id(snap.version.to_string())
        .data(String::from_utf8_lossy(&body));
    Ok((snap.version, ev))
}

fn change_event(c: &SeatChange) -> SseEvent {
    let view = ChangeView {
        version: c.version,
        seat_id: c.seat_id.clone(),
        status: c.status,
    };
    SseEvent::default()
        .event("change")
        .id(c.version.to_string())
        .data(serde_json::to_string(&view).unwrap_or_default())
}

/// One subscriber's stream state.
struct Subscriber {
    state: CatalogState,
    event_id: EventId,
    rx: broadcast::Receiver<SeatChange>,
    /// The version this subscriber has seen everything up to.
    cursor: u64,
    pending: VecDeque<SseEvent>,
    /// Counts this stream in `sse_subscribers` while it is open.
    _open: crate::metrics::SseGuard,
}

impl Subscriber {
    /// Queues what brings the subscriber from `cursor` to now: the missed
    /// changes if the history has them, else a snapshot.
    async fn catch_up(&mut self) -> Result<(), ApiError> {
        let changes = self
            .state
            .seats
            .changes_since(&self.event_id, self.cursor, self.state.replay_limit)
            .await?;
        match changes {
            ChangesSince::Changes(cs) if cs.len() < self.state.replay_limit => {
                for c in cs {
                    self.push_change(&c);
                }
            }
            _ => {
                probe::reached(Probe::SseResumeSnapshot);
                let (version, ev) = snapshot_event(&self.state, &self.event_id).await?;
                self.cursor = version;
                self.pending.push_back(ev);
            }
        }
        Ok(())
    }

    fn push_change(&mut self, c: &SeatChange) {
        if c.version == self.cursor + 1 {
            self.cursor = c.version;
            self.pending.push_back(change_event(c));
        }
    }

    /// The next SSE message, or `None` when the stream should end.
    async fn next(&mut self) -> Option<SseEvent> {
        // Bounded: each round either yields, ends, or consumes one broadcast item.
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(ev);
            }
            let recv = tokio::select! {
                _ = self.state.shutdown.cancelled() => return None,
                r = self.rx.recv() => r,
            };
            match recv {
                Ok(c) if c.version <= self.cursor => {}
                Ok(c) if c.version == self.cursor + 1 => self.push_change(&c),
                // A client too slow to keep up: cut rather than buffered
                // for; it resumes from `cursor` with Last-Event-ID.
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(event_id = %self.event_id, missed, cursor = self.cursor, "slow SSE subscriber cut");
                    metrics::counter!(crate::metrics::SSE_CUT).increment(1);
                    return None;
                }
                // A gap (a change the feed never broadcast): fill it from the store.
                Ok(_) => {
                    if let Err(e) = self.catch_up().await {
                        tracing::warn!(event_id = %self.event_id, error = %e, "SSE catch-up failed");
                        return None;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/events/{event_id}/seats/stream",
    tag = "events",
    summary = "Stream seat changes",
    description = "Server-sent events: a `snapshot` of the map, then a `change` per seat change with the version as `id:`; reconnecting with `Last-Event-ID` resumes without losing a change (or answers a fresh snapshot).",
    params(
        ("event_id" = String, Path, description = "The event, e.g. `spring-gala`", example = "spring-gala"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this version"),
    ),
    responses(
        (status = 200, description = "Server-sent events: `snapshot` (the seat map), then `change` events (`ChangeView`, `id:` the version)", body = ticketing_contract::SseEventView, content_type = "text/event-stream"),
        (status = 404, description = "EVENT_NOT_FOUND", body = ticketing_contract::ErrorBody),
    ),
)]
pub(crate) async fn stream_seats(
    State(state): State<CatalogState>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let event_id = EventId(event_id);
    if state.repo.get_event(&event_id).await?.is_none() {
        return Err(ApiError::EventNotFound);
    }
    // Subscribe before reading, so no change can fall between the two.
    let rx = state
        .feed
        .subscribe(&event_id, state.seats.as_ref())
        .await?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    let heartbeat = Duration::from_millis(state.heartbeat_ms.max(1));
    let mut sub = Subscriber {
        state,
        event_id,
        rx,
        cursor: 0,
        pending: VecDeque::new(),
        _open: crate::metrics::SseGuard::open(),
    };
    match last_event_id {
        Some(v) => {
            sub.cursor = v;
            sub.catch_up().await?;
        }
        None => {
            let (version, ev) = snapshot_event(&sub.state, &sub.event_id).await?;
            sub.cursor = version;
            sub.pending.push_back(ev);
        }
    }
    let stream = futures::stream::unfold(sub, |mut sub| async move {
        sub.next().await.map(|ev| (Ok(ev), sub))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat")))
}
