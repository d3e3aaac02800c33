//! # ticketing-services
//!
//! The four services of the ticketing system as axum routers, their bus
//! workers, the gateway, and the embedded assembly:
//!
//! - [`catalog`]: events, seat map, SSE seat stream.
//! - [`reservation`]: seat holds; the fenced confirm worker; the expiry sweeper.
//! - [`order`]: idempotent orders, outbox relay, saga orchestrator.
//! - [`payment`]: the mock payment gateway (internal).
//! - [`gateway`]: the public routing of contract v1.
//! - [`embedded`]: all four in one process on in-memory adapters.
//!
//! Services depend only on the ports of `ticketing-domain`; which adapters
//! they get is decided by whoever assembles them (the embedded mode here,
//! the simulator in `sim/`). Each router is served with [`http::serve`] on
//! any `axum::serve::Listener`.

pub mod catalog;
pub mod clients;
pub mod config;
pub mod demo;
pub mod embedded;
pub mod error;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod order;
pub mod payment;
pub mod reservation;
pub mod telemetry;
pub mod worker;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};
use ticketing_domain::UnixMs;
use ticketing_domain::ports::{Clock, RandomSource};

/// What every service gets injected: its clock and its random source.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn RandomSource>,
}

/// Adds what every service router has: the trace-id and error-body
/// middleware, request metrics, the request body limit, and a standard 404
/// for unknown paths.
pub fn finish_router(router: Router, ctx: &Ctx, body_limit_bytes: usize) -> Router {
    router
        .fallback(|| async { axum::http::StatusCode::NOT_FOUND })
        .layer(DefaultBodyLimit::max(body_limit_bytes))
        .layer(axum::middleware::from_fn(metrics::http_layer))
        .layer(axum::middleware::from_fn_with_state(
            ctx.rng.clone(),
            http::trace::trace_layer,
        ))
}

/// RFC 3339 UTC text for a clock reading (no wall-clock read involved).
pub fn rfc3339(ms: UnixMs) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Locks a std mutex, recovering from poisoning (state stays consistent
/// because no code path panics while holding one).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
