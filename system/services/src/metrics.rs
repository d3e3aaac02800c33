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
//! | `sse_slow_subscribers_cut_total` | | seat streams cut for falling more than `catalog.feed_channel_capacity` changes behind (they resume with Last-Event-ID) |
//! | `http_connections_refused_total` | | connections closed at once: the listener was at `http.max_connections` |
//! | `payments_total` | `operation`, `result` | payment gateway operations and their outcome |
//! | `http_open_connections` | | connections open on this process's listeners |
//! | `runtime_alive_tasks` | | tokio tasks alive in this process (read at scrape time) |
//! | `process_resident_memory_bytes`, `process_open_fds`, `process_threads` | | the process, read at scrape time (`metrics-process`; it also exports the other standard `process_*` series) |
//!
//! The last three rows are what a soak watches (`ticketing-load --sample-every`):
//! memory that keeps growing, descriptors or tasks that do not come back.
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
/// Orders the kicker drove straight after placing (`result`: `driven`,
/// `failed`, or `queue_full` when it was left to the bus).
pub const ORDERS_KICKED: &str = "orders_kicked_total";
pub const OUTBOX_PUBLISHED: &str = "outbox_published_total";
pub const OUTBOX_PUBLISH_FAILURES: &str = "outbox_publish_failures_total";
pub const OUTBOX_CARRIED: &str = "outbox_carried_rows";
pub const BUS_MESSAGES: &str = "bus_messages_total";
pub const BUS_CONSUMER_LAG: &str = "bus_consumer_lag";
pub const SSE_SUBSCRIBERS: &str = "sse_subscribers";
pub const SSE_CUT: &str = "sse_slow_subscribers_cut_total";
pub const PAYMENTS: &str = "payments_total";
pub const QUEUE_JOINS: &str = "queue_joins_total";
pub const QUEUE_ADMITTED: &str = "queue_admitted_total";
pub const QUEUE_WAITING: &str = "queue_waiting_visitors";
pub const QUEUE_ACTIVE: &str = "queue_active_shoppers";
/// Join to admission, per admitted visitor (histogram, seconds).
pub const QUEUE_WAIT: &str = "queue_wait_seconds";
/// Logins by outcome (`ok`, `invalid`, `limited`).
pub const LOGINS: &str = "logins_total";
/// Requests refused by a rate limit, by limit (`login_account`, …).
pub const RATE_LIMITED: &str = "rate_limited_total";
/// Keys refused because a limiter's table was full of limited keys.
pub const RATE_LIMIT_TABLE_FULL: &str = "rate_limit_table_full_total";
pub const HTTP_OPEN_CONNECTIONS: &str = "http_open_connections";
pub const RUNTIME_ALIVE_TASKS: &str = "runtime_alive_tasks";
/// Written by `metrics-process` under the standard Prometheus names.
pub const PROCESS_RSS: &str = "process_resident_memory_bytes";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
pub const PROCESS_THREADS: &str = "process_threads";

/// Every metric above (the Grafana dashboard's test checks it against this).
pub const ALL: &[&str] = &[
    HTTP_REQUESTS,
    HTTP_DURATION,
    HOLDS,
    ORDERS_FINISHED,
    ORDERS_KICKED,
    OUTBOX_PUBLISHED,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_CARRIED,
    BUS_MESSAGES,
    BUS_CONSUMER_LAG,
    SSE_SUBSCRIBERS,
    SSE_CUT,
    PAYMENTS,
    QUEUE_JOINS,
    QUEUE_ADMITTED,
    QUEUE_WAITING,
    QUEUE_ACTIVE,
    QUEUE_WAIT,
    LOGINS,
    RATE_LIMITED,
    RATE_LIMIT_TABLE_FULL,
    HTTP_OPEN_CONNECTIONS,
    RUNTIME_ALIVE_TASKS,
    PROCESS_RSS,
    PROCESS_OPEN_FDS,
    PROCESS_THREADS,
];

/// Latency buckets (seconds): fine around the 300 ms SLO, up to the 30 s
/// proxy timeout.
const LATENCY_BUCKETS_S: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Waiting-room wait buckets (seconds): a second to half an hour.
const QUEUE_WAIT_BUCKETS_S: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
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
        .set_buckets_for_metric(Matcher::Full(QUEUE_WAIT.into()), QUEUE_WAIT_BUCKETS_S)?
        .install_recorder()?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Reads what only a scrape reads: the process (memory, descriptors,
/// threads) and the runtime's live task count.
fn collect_at_scrape(process: &metrics_process::Collector) {
    process.collect();
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    metrics::gauge!(RUNTIME_ALIVE_TASKS).set(tasks as f64);
}

/// `GET /metrics`: the Prometheus text format.
pub fn router(handle: PrometheusHandle) -> Router {
    let process = std::sync::Arc::new(metrics_process::Collector::default());
    process.describe();
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            let process = process.clone();
            async move {
                collect_at_scrape(&process);
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

/// Counts an open connection while alive (the accept loop holds one per
/// connection).
#[derive(Debug)]
pub struct ConnectionGuard(());

impl ConnectionGuard {
    pub fn open() -> ConnectionGuard {
        metrics::gauge!(HTTP_OPEN_CONNECTIONS).increment(1.0);
        ConnectionGuard(())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        metrics::gauge!(HTTP_OPEN_CONNECTIONS).decrement(1.0);
    }
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
