//! Prometheus metrics, in one place: the recorder, the HTTP middleware, the
//! `/metrics` route and the names of every metric the services record.
//!
//! Recording goes through the `metrics` facade: with no recorder installed
//! (the simulator, most tests) every call is a no-op, so instrumented code
//! behaves the same everywhere. The binary installs the Prometheus
//! recorder ([`install`]) and serves its text format on `/metrics` — on each
//! service's own port (`ticketing serve --service`, never routed by the
//! gateway's public listener) and on the embedded mode's internal listener.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `http_requests_total`, `http_request_duration_seconds` | `route` (template or `unmatched`), `method` (standard or `OTHER`), `status` | every request, by route template |
//! | `holds_total` | `outcome` = `won`/`lost` | hold attempts: all seats held, or refused with 409 |
//! | `orders_finished_total` | `status` = `CONFIRMED`/`CANCELLED`/`FAILED` | sagas that reached a terminal state |
//! | `outbox_published_total`, `outbox_publish_failures_total` | | outbox rows the relay published / could not |
//! | `outbox_carried_rows` | | rows claimed but not yet published (grows while the broker is away) |
//! | `bus_messages_total` | `topic`, `result` = `handled`/`failed`/`undecodable` | consumed messages |
//! | `bus_consumer_lag` | `topic`, `group` | messages in this consumer's partitions not yet committed (sum over replicas for the group) |
//! | `sse_subscribers` | | open seat streams |
//! | `http_connections_refused_total` | | connections closed at once: the listener was at `http.max_connections` |
//! | `payments_total` | `operation`, `result` | payment gateway operations and their outcome |
//!
//! Layer: shared (bottom); imports no module of this crate.

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Mutex, OnceLock};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
pub const HTTP_CONNECTIONS_REFUSED: &str = "http_connections_refused_total";
pub const HOLDS: &str = "holds_total";
pub const ORDERS_FINISHED: &str = "orders_finished_total";
pub const OUTBOX_PUBLISHED: &str = "outbox_published_total";
pub const OUTBOX_PUBLISH_FAILURES: &str = "outbox_publish_failures_total";
pub const OUTBOX_CARRIED: &str = "outbox_carried_rows";
pub const BUS_MESSAGES: &str = "bus_messages_total";
pub const BUS_CONSUMER_LAG: &str = "bus_consumer_lag";
pub const SSE_SUBSCRIBERS: &str = "sse_subscribers";
pub const PAYMENTS: &str = "payments_total";

/// Every metric above (the Grafana dashboard's test checks it against this).
pub const ALL: &[&str] = &[
    HTTP_REQUESTS,
    HTTP_DURATION,
    HOLDS,
    ORDERS_FINISHED,
    OUTBOX_PUBLISHED,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_CARRIED,
    BUS_MESSAGES,
    BUS_CONSUMER_LAG,
    SSE_SUBSCRIBERS,
    PAYMENTS,
];

/// Latency buckets (seconds): fine around the 300 ms SLO, up to the 30 s
/// proxy timeout.
const LATENCY_BUCKETS_S: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
/// Held while the recorder is installed: two systems built at once in one
/// process (tests on threads) must not both try to install it.
static INSTALLING: Mutex<()> = Mutex::new(());

/// Installs the Prometheus recorder for this process (once; later calls,
/// from any thread, return the same handle).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let _guard = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), LATENCY_BUCKETS_S)?
        .install_recorder()?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// `GET /metrics`: the Prometheus text format.
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                handle.run_upkeep();
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    )
}

/// The `method` label: a standard method's name, else `OTHER`, so a
/// client's made-up methods never become new series (every label comes
/// from a closed set: route templates or `unmatched`, these methods, the
/// statuses the application answers).
pub fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method as M;
    match *m {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::PATCH => "PATCH",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::CONNECT => "CONNECT",
        M::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Middleware: counts every request and records its latency by route
/// template (`/api/orders/{order_id}`, not the id: bounded label values).
pub async fn http_layer(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = method_label(req.method()).to_owned();
    let started = tokio::time::Instant::now();
    let resp = next.run(req).await;
    let labels = [
        ("route", route),
        ("method", method),
        ("status", resp.status().as_u16().to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    resp
}

/// Counts an open SSE stream while alive.
#[derive(Debug)]
pub struct SseGuard(());

impl SseGuard {
    pub fn open() -> SseGuard {
        metrics::gauge!(SSE_SUBSCRIBERS).increment(1.0);
        SseGuard(())
    }
}

impl Drop for SseGuard {
    fn drop(&mut self) {
        metrics::gauge!(SSE_SUBSCRIBERS).decrement(1.0);
    }
}
