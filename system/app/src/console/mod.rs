//! The operations console's backend, on the embedded system's internal
//! listener only (the page itself is `web/console/`, served beside it):
//!
//! - `GET /internal/console/overview` — every part's health with what it
//!   last answered, the outbox backlog, consumer lag per topic and group,
//!   active holds, orders by status, ledger and settlement totals, each
//!   event's availability and waiting room (length, admission rate);
//! - `POST /internal/console/runs` `{kind: "load", scenario, users |
//!   arrivalRate, durationS}` or `{kind: "sim", plan, seeds}` → 202, one at a
//!   time (409 `RUN_IN_PROGRESS`), bounded (422 past a bound);
//!   `GET /internal/console/runs[/{id}]`, `POST …/{id}/stop`,
//!   `GET …/{id}/report` (the run's HTML report), `GET …/{id}/goose`.
//!
//! Layer: composition root; imports `console::runs`, the ports and the
//! in-memory seat store (the embedded system's ground truth).

pub mod runs;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use runs::{RunSpec, RunView, Runs, StartError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use ticketing_domain::ports::{
    CatalogRepository, Clock, OrderRepository, PaymentRepository, QueueStore, SeatStore,
};
use ticketing_mem::MemSeatStore;
use ticketing_services::error::ApiError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A health probe's bound.
const PROBE_TIMEOUT_MS: u64 = 2_000;

/// What the console reads.
#[derive(Debug, Clone)]
pub struct ConsoleState {
    /// The listeners to probe: name and address.
    pub listeners: Vec<(&'static str, SocketAddr)>,
    pub seats: Arc<MemSeatStore>,
    pub orders: Arc<dyn OrderRepository>,
    pub payments: Arc<dyn PaymentRepository>,
    pub catalog: Arc<dyn CatalogRepository>,
    pub rooms: Arc<dyn QueueStore>,
    pub clock: Arc<dyn Clock>,
    /// This process's metrics (consumer lag).
    pub metrics: PrometheusHandle,
    pub runs: Arc<Runs>,
}

/// The console's routes (internal listener only; guard them like the rest).
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/internal/console/overview", get(overview))
        .route("/internal/console/runs", get(list_runs).post(start_run))
        .route("/internal/console/runs/{id}", get(get_run))
        .route("/internal/console/runs/{id}/stop", post(stop_run))
        .route("/internal/console/runs/{id}/report", get(run_report))
        .route("/internal/console/runs/{id}/goose", get(run_goose))
        .with_state(state)
}

/// One part's health.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartView {
    pub name: String,
    /// `up`, `down` or `in-memory`.
    pub status: &'static str,
    pub answered: String,
    pub latency_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFigures {
    pub event_id: String,
    pub title: String,
    pub seat_count: usize,
    pub available_count: usize,
    pub room: Option<RoomFigures>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomFigures {
    pub waiting: u64,
    pub active: u64,
    pub admitted_total: u64,
    /// Admissions per second over the room's rate window.
    pub admitted_per_s: f64,
    pub active_max: u32,
    pub admit_per_s: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub at_ms: u64,
    pub parts: Vec<PartView>,
    pub outbox_backlog: usize,
    pub consumer_lag: Vec<LagView>,
    pub active_holds: usize,
    pub held_seats: usize,
    pub orders_by_status: BTreeMap<String, usize>,
    pub valid_tickets: usize,
    pub captured_cents: i64,
    pub refunded_cents: i64,
    pub unsettled_entries: u64,
    pub settlement_batches: usize,
    pub last_settlement_at_ms: Option<u64>,
    pub events: Vec<EventFigures>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LagView {
    pub topic: String,
    pub group: String,
    pub lag: f64,
}

async fn overview(State(s): State<ConsoleState>) -> Result<Json<Overview>, ApiError> {
    let mut parts = Vec::new();
    for (name, addr) in &s.listeners {
        parts.push(probe(name, *addr).await);
    }
    for name in ["Redis", "Kafka-protocol broker", "PostgreSQL"] {
        parts.push(PartView {
            name: name.into(),
            status: "in-memory",
            answered: "not used (embedded: in memory)".into(),
            latency_ms: None,
        });
    }
    let mut by_status = BTreeMap::new();
    for o in s.orders.orders().await? {
        let status = serde_json::to_value(o.status()).unwrap_or_default();
        *by_status
            .entry(status.as_str().unwrap_or("?").to_owned())
            .or_insert(0) += 1;
    }
    let stats = s.payments.ledger_stats().await?;
    let sum = |moves: fn(&ticketing_domain::model::LedgerKind) -> bool| {
        stats
            .iter()
            .filter(|x| moves(&x.kind))
            .map(|x| x.amount_cents)
            .sum::<i64>()
    };
    let batches = s.payments.settlements(None).await?;
    let holds = s.seats.active_holds();
    Ok(Json(Overview {
        at_ms: s.clock.now_ms(),
        parts,
        outbox_backlog: s.orders.outbox_backlog().await?,
        consumer_lag: lag_lines(&s.metrics.render()),
        active_holds: holds.len(),
        held_seats: holds.iter().map(|h| h.seat_ids.len()).sum(),
        orders_by_status: by_status,
        valid_tickets: s.orders.tickets().await?.len(),
        captured_cents: sum(|k| matches!(k, ticketing_domain::model::LedgerKind::Capture)),
        refunded_cents: sum(|k| matches!(k, ticketing_domain::model::LedgerKind::Refund)),
        unsettled_entries: stats.iter().map(|x| x.unsettled).sum(),
        settlement_batches: batches.len(),
        last_settlement_at_ms: batches.iter().map(|b| b.closed_at_ms).max(),
        events: event_figures(&s).await?,
    }))
}

async fn event_figures(s: &ConsoleState) -> Result<Vec<EventFigures>, ApiError> {
    let now = s.clock.now_ms();
    let mut out = Vec::new();
    for e in s.catalog.list_events().await? {
        let (_, available) = s.seats.availability(&e.event_id).await?;
        let room = match s.rooms.room(&e.event_id).await? {
            Some(_) => {
                let st = s.rooms.stats(&e.event_id, now).await?;
                Some(RoomFigures {
                    waiting: st.waiting,
                    active: st.active,
                    admitted_total: st.admitted_total,
                    admitted_per_s: st.admitted_in_window as f64
                        / ticketing_domain::queue::RATE_WINDOW_S as f64,
                    active_max: st.room.active_max,
                    admit_per_s: st.room.admit_per_s,
                })
            }
            None => None,
        };
        out.push(EventFigures {
            seat_count: e.seat_count(),
            event_id: e.event_id.0,
            title: e.title,
            available_count: available,
            room,
        });
    }
    Ok(out)
}

/// `bus_consumer_lag{group="…",topic="…"} N` lines of the Prometheus text.
fn lag_lines(text: &str) -> Vec<LagView> {
    let label = |labels: &str, name: &str| {
        labels
            .split(',')
            .find_map(|kv| kv.trim().strip_prefix(&format!("{name}=\"")))
            .map(|v| v.trim_end_matches('"').to_owned())
            .unwrap_or_default()
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("bus_consumer_lag{"))
        .filter_map(|rest| {
            let (labels, value) = rest.split_once("} ")?;
            Some(LagView {
                topic: label(labels, "topic"),
                group: label(labels, "group"),
                lag: value.trim().parse().ok()?,
            })
        })
        .collect()
}

/// `GET /health` on a listener: what it answered and how fast.
async fn probe(name: &str, addr: SocketAddr) -> PartView {
    let started = tokio::time::Instant::now();
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /health HTTP/1.0\r\nHost: console\r\n\r\n")
            .await?;
        let mut buf = Vec::with_capacity(512);
        s.take(4096).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let (status, answered) =
        match tokio::time::timeout(Duration::from_millis(PROBE_TIMEOUT_MS), ask).await {
            Ok(Ok(buf)) => {
                let text = String::from_utf8_lossy(&buf);
                let line = text.lines().next().unwrap_or_default().to_owned();
                let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
                let up = line.contains(" 200 ");
                (if up { "up" } else { "down" }, format!("{line} {body}"))
            }
            Ok(Err(e)) => ("down", format!("no answer: {e}")),
            Err(_) => ("down", format!("no answer within {PROBE_TIMEOUT_MS} ms")),
        };
    PartView {
        name: format!("{name} ({addr})"),
        status,
        answered,
        latency_ms: Some(started.elapsed().as_millis() as u64),
    }
}

async fn list_runs(State(s): State<ConsoleState>) -> Json<Vec<RunView>> {
    Json(s.runs.list())
}

async fn start_run(
    State(s): State<ConsoleState>,
    body: ticketing_services::http::extract::ApiJson<RunSpec>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    match s.runs.start(body.0) {
        Ok(v) => Ok((StatusCode::ACCEPTED, Json(v))),
        Err(StartError::Invalid(m)) => Err(ApiError::Validation(m)),
        Err(e @ StartError::Busy(_)) => Err(ApiError::Conflict("RUN_IN_PROGRESS", e.to_string())),
        Err(StartError::Unavailable(m)) => Err(ApiError::Unavailable(m)),
    }
}

fn run_not_found() -> ApiError {
    ApiError::NotFound("RUN_NOT_FOUND", "no such run".into())
}

async fn get_run(
    State(s): State<ConsoleState>,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    s.runs.get(&id).map(Json).ok_or_else(run_not_found)
}

async fn stop_run(
    State(s): State<ConsoleState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if s.runs.get(&id).is_none() {
        return Err(run_not_found());
    }
    if s.runs.stop(&id) {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(ApiError::Conflict(
            "RUN_NOT_RUNNING",
            format!("{id} is not running"),
        ))
    }
}

async fn run_report(State(s): State<ConsoleState>, Path(id): Path<String>) -> Response {
    run_file(&s, &id, "report/index.html")
}

async fn run_goose(State(s): State<ConsoleState>, Path(id): Path<String>) -> Response {
    run_file(&s, &id, "load/goose-report.html")
}

/// A file of the run's folder, as HTML (404 when there is none).
fn run_file(s: &ConsoleState, id: &str, name: &str) -> Response {
    let Some(folder) = s.runs.folder(id) else {
        return run_not_found().into_response();
    };
    match std::fs::read(folder.join(name)) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
            .into_response(),
        Err(_) => {
            ApiError::NotFound("REPORT_NOT_FOUND", format!("{id} has no {name}")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lag_lines;

    #[test]
    fn consumer_lag_is_read_from_the_prometheus_text() {
        let text = "# TYPE bus_consumer_lag gauge\n\
                    bus_consumer_lag{group=\"order\",topic=\"reservation-events\"} 3\n\
                    bus_consumer_lag{topic=\"order-commands\",group=\"reservation\"} 0\n\
                    bus_messages_total{topic=\"x\"} 9\n";
        let lag = lag_lines(text);
        assert_eq!(lag.len(), 2);
        assert_eq!(
            (lag[0].topic.as_str(), lag[0].group.as_str(), lag[0].lag),
            ("reservation-events", "order", 3.0)
        );
        assert_eq!(
            (lag[1].topic.as_str(), lag[1].group.as_str()),
            ("order-commands", "reservation")
        );
    }
}
