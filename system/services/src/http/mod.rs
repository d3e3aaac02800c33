//! HTTP plumbing shared by every service: the JSON extractor that maps bad
//! input to the standard 4xx body, the trace-id middleware, the
//! service-to-service client with a pluggable connector, and `serve` over
//! any `axum::serve::Listener` (TCP in production, turmoil in the simulator).
//!
//! Layer: plumbing above the shared types (`config`, `error`, `metrics`,
//! the crate root's `Ctx`) and `telemetry`; no service, client or gateway.

pub mod client;
pub mod extract;
pub mod trace;

use crate::Ctx;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::serve::Listener;
use std::future::Future;

/// Adds what every service router has: the trace-id and error-body
/// middleware (its spans labelled by `label`), request metrics, the request
/// body limit, and a standard 404 for unknown paths.
pub fn finish_router(
    router: Router,
    ctx: &Ctx,
    body_limit_bytes: usize,
    label: trace::ServiceLabel,
) -> Router {
    let layer = trace::TraceLayer {
        rng: ctx.rng.clone(),
        label,
    };
    router
        .fallback(|| async { axum::http::StatusCode::NOT_FOUND })
        .layer(DefaultBodyLimit::max(body_limit_bytes))
        .layer(axum::middleware::from_fn(crate::metrics::http_layer))
        .layer(axum::middleware::from_fn_with_state(
            layer,
            trace::trace_layer,
        ))
}

/// Serves `router` on any listener until `shutdown` resolves, then drains
/// in-flight requests. The simulator passes a turmoil listener here.
pub async fn serve<L>(
    listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
