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
//! The same backend serves the embedded system (its listeners) and the
//! local real stack (`ticketing serve --service console`: the services,
//! Redis, PostgreSQL and the broker); only its [`overview::Sources`] differ.
//!
//! Layer: composition root; imports `console::overview` and `console::runs`.

pub mod overview;
pub mod runs;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use overview::{Overview, Reader};
use runs::{RunSpec, RunView, Runs, StartError};
use serde::Serialize;
use std::sync::Arc;
use ticketing_domain::ports::Clock;
use ticketing_services::error::ApiError;

/// What the console reads and runs.
#[derive(Debug, Clone)]
pub struct ConsoleState {
    pub reader: Arc<Reader>,
    pub clock: Arc<dyn Clock>,
    pub runs: Arc<Runs>,
}

/// The console over `sources`, its runs aimed at `sources`' public and
/// internal URLs (their customers' tokens signed with `jwt_secret`),
/// finding the harness binaries in `console.bin_dir` (unset: beside the
/// running binary).
pub fn state(
    settings: &crate::settings::Settings,
    sources: overview::Sources,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn ticketing_domain::ports::RandomSource>,
    jwt_secret: String,
    shutdown: tokio_util::sync::CancellationToken,
) -> ConsoleState {
    let bin_dir = settings.console.bin_dir.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
            .unwrap_or_default()
    });
    let runs = runs::RunsConfig {
        bin_dir,
        dir: settings
            .console
            .runs_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("ticketing-console")),
        public_url: sources.public_url.clone(),
        internal_url: sources.internal_url.clone(),
        jwt_secret,
        service_token: settings.internal.token.clone(),
    };
    ConsoleState {
        reader: Arc::new(Reader::new(sources, rng)),
        clock: clock.clone(),
        runs: Arc::new(Runs::new(runs, shutdown, clock)),
    }
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

/// The overview and when it was read.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverviewView {
    pub at_ms: u64,
    #[serde(flatten)]
    pub overview: Overview,
}

async fn overview(State(s): State<ConsoleState>) -> Json<OverviewView> {
    let overview = s.reader.read().await;
    Json(OverviewView {
        at_ms: s.clock.now_ms(),
        overview,
    })
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
