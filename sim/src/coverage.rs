//! Coverage of the interesting states: per plan, how many of its runs
//! reached each coverage probe (`ticketing_domain::probe`), and which
//! states a plan declares (`reaches` in its file) that none of its seeds
//! reached — a plan that never gets its fault to the code it is named
//! for proves nothing, so the sweep fails on it.
//!
//! Layer: above `run`; imports it.

use crate::run::RunReport;
use serde::{Deserialize, Serialize};
use ticketing_domain::probe::Probe;
use ticketing_faults::FaultPlan;

/// One state of one plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageRow {
    pub plan: String,
    pub state: String,
    /// The plan's file says it must reach this state.
    pub declared: bool,
    /// Runs of the plan that reached it, of `runs`.
    pub reached_in: u64,
    pub runs: u64,
    /// Times it was reached, over every run.
    pub hits: u64,
}

impl CoverageRow {
    /// Declared and reached by no seed.
    pub fn missed(&self) -> bool {
        self.declared && self.reached_in == 0
    }
}

/// The declared states no seed reached, as "state in plan".
pub fn missed(rows: &[CoverageRow]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.missed())
        .map(|r| format!("{} in {}", r.state, r.plan))
        .collect()
}

/// The names `plan` declares that are no probe's (a typo would declare a
/// state nobody marks, and fail every sweep for the wrong reason).
pub fn unknown_states(plan: &FaultPlan) -> Vec<String> {
    plan.reaches
        .iter()
        .filter(|n| Probe::named(n).is_none())
        .cloned()
        .collect()
}

/// The table of runs without a bug: per plan (in first-seen order), every
/// probe it declares or reached, declared ones first. A plan's states are
/// declared for the world it aims at (`queued` is the world with a waiting
/// room; plans with `waiting_room = true` aim at it, the others at the
/// plain world): in the other world the same faults meet another sale —
/// Redis crashing 300 ms in finds the queued world's shoppers still in
/// line, holding nothing — and the table only shows what they reached.
pub fn table(reports: &[RunReport], plans: &[FaultPlan], queued: bool) -> Vec<CoverageRow> {
    let mut rows = Vec::new();
    let clean: Vec<&RunReport> = reports.iter().filter(|r| r.bug.is_none()).collect();
    for plan in distinct_plans(plans) {
        let runs: Vec<&&RunReport> = clean.iter().filter(|r| r.plan == plan.name).collect();
        if runs.is_empty() {
            continue;
        }
        let mut states: Vec<(bool, Probe)> = Probe::ALL
            .into_iter()
            .map(|p| {
                let named = plan.reaches.iter().any(|n| n == p.as_str());
                (named && plan.waiting_room == queued, p)
            })
            .collect();
        states.sort_by_key(|(declared, _)| !declared);
        for (declared, p) in states {
            let counts: Vec<u64> = runs
                .iter()
                .map(|r| r.reached.get(p.as_str()).copied().unwrap_or(0))
                .collect();
            let reached_in = counts.iter().filter(|n| **n > 0).count() as u64;
            if !declared && reached_in == 0 {
                continue;
            }
            rows.push(CoverageRow {
                plan: plan.name.clone(),
                state: p.as_str().to_owned(),
                declared,
                reached_in,
                runs: runs.len() as u64,
                hits: counts.iter().sum(),
            });
        }
    }
    rows
}

/// Each plan once (the sweep's jobs name a plan once per seed; `chaos`
/// differs per seed but declares nothing).
fn distinct_plans(plans: &[FaultPlan]) -> Vec<&FaultPlan> {
    let mut out: Vec<&FaultPlan> = Vec::new();
    for p in plans {
        if !out.iter().any(|q| q.name == p.name) {
            out.push(p);
        }
    }
    out
}

/// The table as text: one line per row, the declared ones marked.
pub fn render(rows: &[CoverageRow]) -> String {
    let mut out = format!(
        "{:<26} {:<30} {:>8} {:>9} {:>7}\n",
        "plan", "state", "declared", "runs", "hits"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<26} {:<30} {:>8} {:>9} {:>7}{}\n",
            r.plan,
            r.state,
            if r.declared { "yes" } else { "" },
            format!("{}/{}", r.reached_in, r.runs),
            r.hits,
            if r.missed() { "  NEVER REACHED" } else { "" },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(plan: &str, reached: &[(&str, u64)], bug: Option<&str>) -> RunReport {
        RunReport {
            plan: plan.into(),
            seed: 1,
            bug: bug.map(str::to_owned),
            passed: true,
            violations: Vec::new(),
            sim_ms: 0,
            orders: 0,
            confirmed: 0,
            sold_seats: 0,
            trace_hash: String::new(),
            repro: String::new(),
            trace: Vec::new(),
            reached: reached.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect(),
            history: Default::default(),
            witnesses: Vec::new(),
            ops: Default::default(),
        }
    }

    fn plan(name: &str, reaches: &[&str]) -> FaultPlan {
        let mut p = FaultPlan::named("none", 1).unwrap();
        p.name = name.into();
        p.reaches = reaches.iter().map(|s| (*s).to_owned()).collect();
        p
    }

    #[test]
    fn a_declared_state_no_seed_reached_is_missed() {
        let plans = [plan("p", &["outbox-resent", "breaker-opened"])];
        let reports = [
            report("p", &[("outbox-resent", 3)], None),
            report("p", &[("payment-voided", 1)], None),
            // A zoo run reaching it does not count.
            report("p", &[("breaker-opened", 1)], Some("bug")),
        ];
        let rows = table(&reports, &plans, false);
        let row = |s: &str| rows.iter().find(|r| r.state == s).unwrap().clone();
        assert_eq!(
            (row("outbox-resent").reached_in, row("outbox-resent").hits),
            (1, 3)
        );
        assert!(!row("outbox-resent").missed());
        assert!(row("breaker-opened").missed(), "{rows:?}");
        assert!(!row("payment-voided").declared && !row("payment-voided").missed());
        assert_eq!(rows.len(), 3, "unreached undeclared states are left out");
        assert!(render(&rows).contains("NEVER REACHED"));
        // In the other world the plan's states are shown, not declared.
        let other = table(&reports, &plans, true);
        assert!(
            other.iter().all(|r| !r.declared && !r.missed()),
            "{other:?}"
        );
        assert_eq!(other.len(), 2);
    }

    #[test]
    fn a_misspelt_state_is_reported() {
        let p = plan("p", &["outbox-resent", "outbox-resnet"]);
        assert_eq!(unknown_states(&p), ["outbox-resnet"]);
    }
}
