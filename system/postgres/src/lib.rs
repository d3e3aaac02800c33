//! # ticketing-postgres
//!
//! The production repositories on PostgreSQL (sqlx, runtime-checked
//! queries, so the crate builds without a live database):
//!
//! - [`PgOrderRepository`]: orders, idempotency keys, processed messages,
//!   tickets (`PRIMARY KEY (event_id, seat_id)`) and the outbox.
//! - [`PgPaymentRepository`]: payments and the append-only ledger.
//! - [`PgCatalogRepository`]: events and seat layouts.
//! - [`PgUserRepository`]: customer accounts (unique email key).
//!
//! Every port method is **one transaction**, exactly as in the in-memory
//! model. Schema changes are the migrations in `migrations/`, embedded with
//! `sqlx::migrate!` and applied by [`connect`] (under sqlx's advisory lock,
//! so replicas starting together are safe). One migration set serves every
//! service; each service's database simply leaves the others' tables empty.
//!
//! Bounds: a pool of at most `max_connections`, an acquire timeout, a
//! server-side `statement_timeout`, and a client-side timeout on every
//! method. Any database failure is `RepoError::Unavailable` — nothing was
//! committed, the caller may retry — except the domain outcomes the ports
//! name (`Conflict`, `TicketConflict`).

mod catalog;
mod orders;
mod payments;
mod users;

pub use catalog::PgCatalogRepository;
pub use orders::PgOrderRepository;
pub use payments::PgPaymentRepository;
pub use users::PgUserRepository;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;
use ticketing_domain::ports::RepoError;

/// The schema, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// How to reach PostgreSQL and how hard to lean on it: the `database`
/// section of the settings (every key optional; defaults below).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database`; set it from the
    /// environment (`TICKETING_DATABASE__URL`), never in a committed file.
    pub url: String,
    pub max_connections: u32,
    /// Longest wait for a pooled connection.
    pub acquire_timeout_ms: u64,
    /// Server-side bound on any one statement.
    pub statement_timeout_ms: u64,
    /// Client-side bound on any one repository call (whole transaction).
    pub call_timeout_ms: u64,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self::new("postgres://ticketing@127.0.0.1:5432/ticketing")
    }
}

impl PgConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            acquire_timeout_ms: 2_000,
            statement_timeout_ms: 5_000,
            call_timeout_ms: 8_000,
        }
    }
}

/// A pool plus the per-call timeout, shared by the repositories.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: PgPool,
    call_timeout: Duration,
}

/// Opens the pool and applies the migrations.
pub async fn connect(config: &PgConfig) -> Result<Db, RepoError> {
    let options = PgConnectOptions::from_str(&config.url)
        .map_err(unavailable)?
        .options([(
            "statement_timeout",
            format!("{}ms", config.statement_timeout_ms),
        )]);
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .connect_with(options)
        .await
        .map_err(unavailable)?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| RepoError::Unavailable(format!("migrations failed: {e}")))?;
    Ok(Db {
        pool,
        call_timeout: Duration::from_millis(config.call_timeout_ms),
    })
}

impl Db {
    /// Runs one repository call under the client-side timeout. A call cut
    /// short drops its transaction, which rolls back.
    pub(crate) async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, RepoError>>,
    ) -> Result<T, RepoError> {
        tokio::time::timeout(self.call_timeout, call)
            .await
            .map_err(|_| RepoError::Unavailable("database call timed out".into()))?
    }
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> RepoError {
    RepoError::Unavailable(e.to_string())
}

/// `u64` clock readings and counters as PostgreSQL `BIGINT`.
pub(crate) fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn unbig(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
