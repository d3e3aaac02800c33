//! One seed of one plan, run and checked: the report the sweep, the zoo and
//! the tests read.
//!
//! Layer: above `world` and `check`; imports them, `clock` and `zoo`.

use crate::{check, clock, world, zoo};
use serde::Serialize;
use std::collections::BTreeMap;
use ticketing_domain::probe;
use ticketing_faults::FaultPlan;
use ticketing_invariants::history::{History, HistoryReport, Witness};

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
    /// How often the services' code reached each coverage probe
    /// (`ticketing_domain::probe`), by name.
    #[serde(default)]
    pub reached: BTreeMap<String, u64>,
    /// The client history's check: figures and, per violating seat, its
    /// smallest failing sub-history (invariant 10).
    #[serde(default)]
    pub history: HistoryFigures,
    #[serde(default)]
    pub witnesses: Vec<Witness>,
    /// The whole client history (kept in the process that ran the seed;
    /// `--history-dir` writes it there).
    #[serde(skip)]
    pub ops: History,
}

/// The history check's figures for one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct HistoryFigures {
    pub ops: usize,
    pub seats: usize,
    pub linearizable: usize,
    /// Seats the search bound cut short.
    pub unknown: usize,
}

impl HistoryFigures {
    fn of(r: &HistoryReport) -> HistoryFigures {
        HistoryFigures {
            ops: r.ops,
            seats: r.seats,
            linearizable: r.linearizable,
            unknown: r.unknown.len(),
        }
    }
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
    // The waiting room's bugs run in a queued world.
    let world_cfg = match bug {
        Some(b) if b.needs_waiting_room() && cfg.waiting_room.is_none() => {
            world::SimConfig::queued()
        }
        _ => cfg.clone(),
    };
    let world_cfg = world_cfg.sized(plan.world);
    let (outcome, hits) = probe::recording(|| world::run(seed, plan, &world_cfg, bug));
    let outcome = outcome?;
    let reached = hits
        .into_iter()
        .map(|(p, n)| (p.as_str().to_owned(), n))
        .collect();
    let snap = check::snapshot(&outcome.truth);
    let violations = ticketing_invariants::check(&snap);
    let checked = snap.history.unwrap_or_default();
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
            .filter(|o| o.status() == ticketing_domain::OrderStatus::Confirmed)
            .count(),
        sold_seats: sold.len(),
        trace_hash: trace_hash(&trace),
        repro: repro(&plan.name, seed, bug),
        violations,
        trace,
        reached,
        history: HistoryFigures::of(&checked),
        witnesses: checked.witnesses,
        ops: std::mem::take(&mut crate::lock(&outcome.truth.log).history),
    })
}
