//! # ticketing-sim
//!
//! The deterministic simulator. The four services' own code runs on
//! turmoil hosts ([`world`]), reaching a `redis` host and a `kafka` host over
//! the simulated network ([`remote`]) through the seams in [`net`]; users
//! are turmoil clients ([`users`]); a fault plan from `ticketing-faults`
//! is applied at simulated times; after healing, the world runs to
//! quiescence and the [`check`]ers verify the invariants. The [`zoo`] holds
//! known bugs that the checkers must catch. A run is a function of its seed
//! (and the commit): [`run_one`] twice with one seed gives one trace hash.

// Without tokio_unstable, tokio's own randomness (select! branch order) is
// not seeded and runs would not replay. `.cargo/config.toml` sets it; a
// RUSTFLAGS of your own replaces that file's flags, so include it there too.
#[cfg(not(tokio_unstable))]
compile_error!("ticketing-sim must be built with `--cfg tokio_unstable` (see .cargo/config.toml)");

pub mod check;
pub mod clock;
pub mod net;
pub mod remote;
pub mod results;
pub mod users;
pub mod watchers;
pub mod world;
pub mod zoo;

use serde::Serialize;
use ticketing_faults::FaultPlan;

/// Locks a mutex, recovering the data if a panicking thread poisoned it
/// (a panic fails the run anyway; the checker still reads the state).
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The outcome of one seed.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunReport {
    pub plan: String,
    pub seed: u64,
    pub bug: Option<String>,
    pub passed: bool,
    pub violations: Vec<check::Violation>,
    pub sim_ms: u64,
    pub orders: usize,
    pub confirmed: usize,
    pub sold_seats: usize,
    pub trace_hash: String,
    pub repro: String,
    /// The run's trace: faults, what users were told, the final truth.
    pub trace: Vec<String>,
}

/// FNV-1a over the trace: stable across runs and platforms.
pub fn trace_hash(lines: &[String]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for l in lines {
        for b in l.bytes().chain(std::iter::once(b'\n')) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The command that replays one run.
pub fn repro(plan: &str, seed: u64, bug: Option<zoo::Bug>) -> String {
    let bug = bug
        .map(|b| format!(" --bug {}", b.name()))
        .unwrap_or_default();
    format!("cargo run --release -p ticketing-sim -- --plan {plan} --seed {seed}{bug}")
}

/// Runs one seed of one plan and checks it.
pub fn run_one(
    plan: &FaultPlan,
    seed: u64,
    cfg: &world::SimConfig,
    bug: Option<zoo::Bug>,
) -> anyhow::Result<RunReport> {
    let outcome = world::run(seed, plan, cfg, bug)?;
    let violations = check::check(&outcome.truth);
    let mut trace = outcome.trace;
    trace.extend(world::digest_lines(&outcome.truth));
    let orders = world::sync(ticketing_domain::ports::OrderRepository::orders(
        outcome.truth.orders.as_ref(),
    ))
    .unwrap_or_default();
    let sold = world::sync(ticketing_domain::ports::SeatStore::sold_seats(
        outcome.truth.seats.as_ref(),
        &ticketing_domain::EventId::from(world::EVENT),
    ))
    .unwrap_or_default();
    Ok(RunReport {
        plan: plan.name.clone(),
        seed,
        bug: bug.map(|b| b.name().to_owned()),
        passed: violations.is_empty(),
        sim_ms: outcome.truth.now_ms - clock::EPOCH_MS,
        orders: orders.len(),
        confirmed: orders
            .iter()
            .filter(|o| o.saga.order_status() == ticketing_domain::OrderStatus::Confirmed)
            .count(),
        sold_seats: sold.len(),
        trace_hash: trace_hash(&trace),
        repro: repro(&plan.name, seed, bug),
        violations,
        trace,
    })
}
