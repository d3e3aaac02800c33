//! The sweep's machine-readable results (`--json PATH`): the schema the
//! HTML report (`ticketing-reports`) reads, kept here beside the code that
//! writes it so the two cannot drift.
//!
//! A run's full trace stays in the trace folder; the results carry, for a
//! failing run, a short excerpt (the faults and every line naming an id the
//! violations name) so a reader of the report sees the lead without opening
//! the file.

use crate::check::Violation;
use crate::coverage::CoverageRow;
use crate::run::{HistoryFigures, RunReport};
use crate::triage::FailureGroup;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Bumped when a field changes meaning; readers refuse other versions.
pub const RESULTS_VERSION: u32 = 1;

/// Lines of a failing run's trace kept in its excerpt, at most.
pub const EXCERPT_LINES_MAX: usize = 40;

/// One sweep (`ticketing-sim --seeds N [--check-determinism]`) or the bug
/// zoo (`--bug all`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResults {
    pub version: u32,
    /// `git rev-parse HEAD` where the sweep ran ("unknown" outside a checkout).
    pub git_revision: String,
    /// "small" or "standard".
    pub scenario: String,
    pub users: usize,
    pub seats: usize,
    pub plans: Vec<String>,
    pub seeds: Vec<u64>,
    /// `--bug NAME` or `all` (the zoo).
    pub bug: Option<String>,
    pub determinism_checked: bool,
    /// Seeds whose two runs hashed differently ("plan seed S: h1 vs h2").
    pub nondeterministic: Vec<String>,
    /// Runs that could not complete (a worker crashed), one line each.
    pub errors: Vec<String>,
    pub wall_s: f64,
    /// Simulated seconds of every run together (reruns included).
    pub simulated_s: f64,
    /// Runs made (reruns of the determinism check included).
    pub run_count: usize,
    pub runs: Vec<RunResult>,
    /// With `--bug all`: each bug, its plan and the first seed that caught it.
    pub zoo: Vec<ZooRow>,
    /// Per plan, the interesting states its runs reached (a sweep without
    /// a bug; see `coverage`).
    #[serde(default)]
    pub coverage: Vec<CoverageRow>,
    /// The failing runs by invariant and first violation's signature
    /// (`triage`), new and known.
    #[serde(default)]
    pub groups: Vec<FailureGroup>,
    /// `--budget-s`: the fleet's wall budget (seeds run as many as fit).
    #[serde(default)]
    pub budget_s: Option<u64>,
}

/// One seed's outcome, without the full trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub plan: String,
    pub seed: u64,
    pub bug: Option<String>,
    pub passed: bool,
    pub violations: Vec<Violation>,
    pub sim_ms: u64,
    pub orders: usize,
    pub confirmed: usize,
    pub sold_seats: usize,
    pub trace_hash: String,
    /// The command that replays this run.
    pub repro: String,
    /// Where the full trace was written (failing runs only).
    pub trace_path: Option<String>,
    /// Failing runs only: see [`trace_excerpt`].
    pub trace_excerpt: Vec<String>,
    /// The client history's check (invariant 10): operations and seats.
    #[serde(default)]
    pub history: HistoryFigures,
    /// Where each violating seat's smallest failing sub-history was
    /// written (JSON lines), by seat.
    #[serde(default)]
    pub witness_paths: Vec<(String, String)>,
    /// `--shrink-failures`: the shrunk plan that replays this failure
    /// (`--plan-file PATH --seed S`).
    #[serde(default)]
    pub shrunk_plan: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooRow {
    pub bug: String,
    pub description: String,
    pub plan: String,
    pub seeds: u64,
    pub caught_by_seed: Option<u64>,
    pub repro: Option<String>,
}

impl SweepResults {
    /// Reads and version-checks a results file.
    pub fn read(path: &std::path::Path) -> anyhow::Result<SweepResults> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let r: SweepResults = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not simulation results: {e}", path.display()))?;
        anyhow::ensure!(
            r.version == RESULTS_VERSION,
            "{} has results version {}, this build reads {RESULTS_VERSION}",
            path.display(),
            r.version
        );
        Ok(r)
    }

    /// Runs without a bug that failed, and every error: what makes a sweep red.
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
            && self.nondeterministic.is_empty()
            && self
                .runs
                .iter()
                .filter(|r| r.bug.is_none())
                .all(|r| r.passed)
            && self.zoo.iter().all(|z| z.caught_by_seed.is_some())
            && !self.coverage.iter().any(CoverageRow::missed)
    }
}

/// Beside a run's trace (`<run>.log`), its seat's witness
/// (`<run>.witness-<seat>.jsonl`).
pub fn witness_path(trace_path: &str, seat: &str) -> String {
    let stem = trace_path.strip_suffix(".log").unwrap_or(trace_path);
    format!("{stem}.witness-{seat}.jsonl")
}

impl RunResult {
    /// Keeps a report's figures; the excerpt, trace and witness paths only
    /// if it failed (`trace_path` and the witnesses in one folder).
    pub fn of(rep: &RunReport, trace_path: Option<String>) -> RunResult {
        let witness_paths = match (&trace_path, rep.passed) {
            (Some(t), false) => rep
                .witnesses
                .iter()
                .map(|w| {
                    let seat = w.seat.to_string();
                    let path = witness_path(t, &seat);
                    (seat, path)
                })
                .collect(),
            _ => Vec::new(),
        };
        let failed = !rep.passed;
        RunResult {
            plan: rep.plan.clone(),
            seed: rep.seed,
            bug: rep.bug.clone(),
            passed: rep.passed,
            violations: rep.violations.clone(),
            sim_ms: rep.sim_ms,
            orders: rep.orders,
            confirmed: rep.confirmed,
            sold_seats: rep.sold_seats,
            trace_hash: rep.trace_hash.clone(),
            repro: rep.repro.clone(),
            trace_path: if failed { trace_path } else { None },
            trace_excerpt: if failed {
                trace_excerpt(&rep.trace, &rep.violations, EXCERPT_LINES_MAX)
            } else {
                Vec::new()
            },
            history: rep.history.clone(),
            witness_paths,
            shrunk_plan: None,
        }
    }
}

/// The lines of a trace a reader needs first: the run's timeline (faults,
/// heal, users done, quiescence: the lines that open with a simulated time)
/// and every line naming an id (seat, order, hold) that the first violations
/// name, in trace order, at most `lines_max`.
pub fn trace_excerpt(trace: &[String], violations: &[Violation], lines_max: usize) -> Vec<String> {
    let ids: BTreeSet<&str> = violations
        .iter()
        .take(3)
        .flat_map(|v| tokens(&v.detail))
        .filter(|t| looks_like_id(t))
        .collect();
    trace
        .iter()
        .filter(|line| {
            line.starts_with(|c: char| c.is_ascii_digit()) || tokens(line).any(|t| ids.contains(t))
        })
        .take(lines_max)
        .cloned()
        .collect()
}

fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|t| !t.is_empty())
}

/// Seat ids ("3-7"), order uuids, hold ids ("h_…"): a digit and a joiner.
fn looks_like_id(token: &str) -> bool {
    token.len() >= 3 && token.chars().any(|c| c.is_ascii_digit()) && token.contains(['-', '_'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(invariant: &str, detail: &str) -> Violation {
        Violation {
            invariant: invariant.into(),
            detail: detail.into(),
        }
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn excerpt_keeps_the_timeline_and_the_lines_naming_the_violations_ids() {
        let trace = lines(
            "500 fault Crash { host: \"kafka\" }\n\
             10500 heal\n\
             sold 1-2 aaaa-1111\n\
             sold 1-20 bbbb-2222\n\
             order aaaa-1111 Confirmed None\n\
             order cccc-3333 Cancelled Some(\"x\")\n\
             told 900 7 Confirmed(\"aaaa-1111\")\n\
             told 901 8 Held([\"1-20\"])",
        );
        let got = trace_excerpt(
            &trace,
            &[v("1-no-oversell", "seat 1-2 sold to order aaaa-1111 twice")],
            40,
        );
        assert_eq!(
            got,
            lines(
                "500 fault Crash { host: \"kafka\" }\n\
                 10500 heal\n\
                 sold 1-2 aaaa-1111\n\
                 order aaaa-1111 Confirmed None\n\
                 told 900 7 Confirmed(\"aaaa-1111\")"
            ),
            "seat 1-20 is another seat than 1-2"
        );
    }

    #[test]
    fn excerpt_is_bounded() {
        let trace: Vec<String> = (0..100).map(|i| format!("{i} fault x")).collect();
        assert_eq!(trace_excerpt(&trace, &[], 10).len(), 10);
    }
}
