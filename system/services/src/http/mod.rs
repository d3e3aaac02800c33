//! HTTP plumbing shared by every service: the JSON extractor that maps bad
//! input to the standard 4xx body, the trace-id middleware, the
//! service-to-service client with a pluggable connector, and `serve` over
//! any `axum::serve::Listener` (TCP in production, turmoil in the simulator)
//! with the edge's connection limits.
//!
//! Layer: plumbing above the shared types (`config`, `error`, `metrics`,
//! the crate root's `Ctx`) and `telemetry`; no service, client or gateway.

pub mod client;
pub mod extract;
mod serve;
pub mod trace;

pub use serve::serve;

use crate::Ctx;
use crate::config::HttpSettings;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::time::Duration;

/// Adds what every service router has: the trace-id and error-body
/// middleware (its spans labelled by `label`), request metrics, the request
/// body limit and read deadline, and a standard 404 for unknown paths.
pub fn finish_router(
    router: Router,
    ctx: &Ctx,
    http: &HttpSettings,
    label: trace::ServiceLabel,
) -> Router {
    let layer = trace::TraceLayer {
        rng: ctx.rng.clone(),
        label,
    };
    router
        .fallback(|| async { axum::http::StatusCode::NOT_FOUND })
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(axum::Extension(extract::BodyReadTimeout(
            Duration::from_millis(http.body_read_timeout_ms.max(1)),
        )))
        .layer(axum::middleware::from_fn(crate::metrics::http_layer))
        .layer(axum::middleware::from_fn_with_state(
            layer,
            trace::trace_layer,
        ))
}
