//! # ticketing-sim
//!
//! The deterministic simulator. The services' own code runs on
//! turmoil hosts ([`world`]), reaching a `redis` host and a `kafka` host over
//! the simulated network ([`remote`]) through the seams in [`net`]; users
//! are turmoil clients ([`users`]); a fault plan from `ticketing-faults`
//! is applied at simulated times; after healing, the world runs to
//! quiescence and the [`check`]ers verify the invariants. The [`zoo`] holds
//! known bugs that the checkers must catch. A run is a function of its seed
//! (and the commit): [`run_one`] twice with one seed gives one trace hash.
//!
//! Layers, bottom up: this root (`lock` only) → `clock`, `net`, `shrink` → `record`, `remote`,
//! `users`, `watchers`, `zoo` → `world` → `check` → `run` → `coverage`,
//! `triage` → `results`.
//! No module imports one above it (`ci/module-cycles` checks).

// Without tokio_unstable, tokio's own randomness (select! branch order) is
// not seeded and runs would not replay. `.cargo/config.toml` sets it; a
// RUSTFLAGS of your own replaces that file's flags, so include it there too.
#[cfg(not(tokio_unstable))]
compile_error!("ticketing-sim must be built with `--cfg tokio_unstable` (see .cargo/config.toml)");

pub mod check;
pub mod clock;
pub mod coverage;
pub mod net;
pub mod record;
pub mod remote;
pub mod results;
pub mod run;
pub mod shrink;
pub mod triage;
pub mod users;
pub mod watchers;
pub mod world;
pub mod zoo;

/// Locks a mutex, recovering the data if a panicking thread poisoned it
/// (a panic fails the run anyway; the checker still reads the state).
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub use run::{RunReport, repro, run_one, trace_hash};
