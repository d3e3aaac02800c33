//! # ticketing-services
//!
//! The six services of the ticketing system. Each has one `start` function
//! that returns its routers and named background workers ([`started`]):
//!
//! - [`catalog`]: events, seat map, SSE seat stream; event registration.
//! - [`reservation`]: seat holds; the fenced confirm worker; the expiry sweeper.
//! - [`order`]: idempotent orders, outbox relay, saga orchestrator.
//! - [`payment`]: the mock payment gateway (internal).
//! - [`queue`]: the waiting room in front of protected events; [`admission`]
//!   is its token, which reservation checks.
//! - [`users`]: customer accounts and logins; [`customer`] is the bearer
//!   token every service verifies, [`rate_limit`] the limits per key.
//! - [`gateway`]: the public routing table; [`openapi`]: the published
//!   OpenAPI document of the public routes (`GET /api/openapi.json`).
//!
//! Services are written against the ports of `ticketing-domain`; besides
//! the domain, this crate links only web, serialization and telemetry
//! libraries — no adapter crate. Which adapters the services get, and where
//! they run, is decided by the composition root (`ticketing-app`: the
//! embedded system, one service per process) and by the simulator, through
//! the same `start` functions. Each router is served with [`http::serve`]
//! on any `axum::serve::Listener`.
//!
//! Layers, bottom up (no module imports one above it; `ci/module-cycles`
//! checks): this root (`Ctx`, `lock`), `config`, `error`, `admission`,
//! `customer`, `rate_limit`,
//! `metrics` → `telemetry`, `http`, `worker`, `started` → `clients`
//! → the six services → `gateway`, `openapi`, `demo`.

pub mod admission;
pub mod catalog;
pub mod clients;
pub mod config;
pub mod customer;
pub mod demo;
pub mod error;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod order;
pub mod payment;
pub mod queue;
pub mod rate_limit;
pub mod reservation;
pub mod started;
pub mod telemetry;
pub mod users;
pub mod worker;

use std::sync::{Arc, Mutex, MutexGuard};
use ticketing_domain::ports::{Clock, RandomSource};

/// What every service gets injected: its clock and its random source.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn RandomSource>,
}

/// Locks a std mutex, recovering from poisoning (state stays consistent
/// because no code path panics while holding one).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
