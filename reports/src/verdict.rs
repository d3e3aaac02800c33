//! The banner: one row per thing the night is judged on, and the overall
//! pass/fail. Rows come from the producers' own judgements (the load
//! harness's SLO verdict and audit, the simulator's checkers and zoo) plus
//! the pipeline's exit statuses and unreadable inputs; nothing is judged
//! twice with different rules here.

use crate::inputs::Inputs;
use serde::Serialize;

/// One line of the banner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// "load SLO", "invariants", "simulation", "bug zoo", "coverage", "history", "mutation", "determinism", "pipeline", "input".
    pub area: String,
    pub rule: String,
    pub observed: String,
    pub limit: String,
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Banner {
    pub passed: bool,
    pub rows: Vec<Row>,
    /// The failed rows, first (what a reader needs before anything else).
    pub failures: Vec<Row>,
}

fn row(area: &str, rule: &str, observed: String, limit: &str, passed: bool) -> Row {
    Row {
        area: area.into(),
        rule: rule.into(),
        observed,
        limit: limit.into(),
        passed,
    }
}

/// A focused run (the soak, the onsale): the checks of `scopes` one by one
/// (what the run is for), and the rest of its verdict (SLO, audit) as one
/// row. `missing` says what a run without any of those checks lacks.
fn focused_rows(
    area: &str,
    scopes: &[&str],
    missing: &str,
    s: &ticketing_load::summary::Summary,
) -> Vec<Row> {
    let Some(v) = &s.verdict else {
        return vec![row(
            area,
            &format!("every {area} check"),
            "the run has no verdict".into(),
            "judged",
            false,
        )];
    };
    let mine = |scope: &str| scopes.contains(&scope);
    let mut rows: Vec<Row> = v
        .checks
        .iter()
        .filter(|c| mine(&c.scope))
        .map(|c| row(area, &c.rule, c.observed.clone(), &c.limit, c.passed))
        .collect();
    if rows.is_empty() {
        rows.push(row(
            area,
            "its own checks",
            missing.into(),
            "present",
            false,
        ));
    }
    let rest: Vec<_> = v.checks.iter().filter(|c| !mine(&c.scope)).collect();
    let failed = rest.iter().filter(|c| !c.passed).count();
    rows.push(row(
        area,
        &format!("the {area}'s SLO and audit checks"),
        format!(
            "{} of {} passed over {} s ({} requests)",
            rest.len() - failed,
            rest.len(),
            s.environment.duration_ms / 1000,
            s.overall.requests
        ),
        "every check",
        failed == 0,
    ));
    rows
}

/// Judges the night from its inputs.
pub fn banner(inputs: &Inputs) -> Banner {
    let mut rows = Vec::new();
    for (what, why) in &inputs.problems {
        rows.push(row("input", what, why.clone(), "readable", false));
    }
    if let Some(load) = &inputs.load {
        let s = &load.summary;
        let basis = s.slo.latency.basis;
        let p = s.overall.on(basis);
        match &s.verdict {
            Some(v) => {
                let failed = v.checks.iter().filter(|c| !c.passed).count();
                rows.push(row(
                    "load SLO",
                    "every SLO check",
                    format!(
                        "{} of {} passed; p95 {:.0} ms ({basis}), errors {:.2} %",
                        v.checks.len() - failed,
                        v.checks.len(),
                        p.p95_ms,
                        s.overall.error_rate_pct
                    ),
                    &format!(
                        "p95 ≤ {:.0} ms, errors ≤ {} %",
                        s.slo.latency.p95_ms_max, s.slo.errors.rate_pct_max
                    ),
                    v.passed,
                ));
            }
            None => rows.push(row(
                "load SLO",
                "every SLO check",
                "the run has no verdict".into(),
                "judged",
                false,
            )),
        }
        match &s.audit {
            Some(a) => rows.push(row(
                "invariants",
                "post-run audit (no oversell, money, no order stuck)",
                format!(
                    "oversold {}, {} of {} checks passed, {} orders, {} sold seats",
                    a.oversold,
                    a.checks.iter().filter(|c| c.passed).count(),
                    a.checks.len(),
                    a.orders,
                    a.sold_seats
                ),
                &format!("oversold ≤ {}, every check", s.slo.audit.oversold_max),
                a.passed(),
            )),
            None => rows.push(row(
                "invariants",
                "post-run audit",
                "no audit in the run".into(),
                "audited",
                false,
            )),
        }
    }
    if let Some(onsale) = &inputs.onsale {
        let missing = "the run is not an onsale (no --scenario onsale)";
        rows.extend(focused_rows(
            "onsale",
            &["onsale", "open"],
            missing,
            &onsale.summary,
        ));
    }
    if let Some(q) = &inputs.queued_onsale {
        let missing = "the run had no waiting room (no --scenario onsale --waiting-room)";
        let summary = &q.summary;
        let rows_of = if summary.waiting.is_some() {
            focused_rows(
                "queued onsale",
                &["onsale", "open", "waiting room"],
                missing,
                summary,
            )
        } else {
            focused_rows("queued onsale", &["waiting room"], missing, summary)
        };
        rows.extend(rows_of);
    }
    if let Some(soak) = &inputs.soak {
        let missing = "the run sampled nothing (no --sample-every)";
        rows.extend(focused_rows("soak", &["soak"], missing, &soak.summary));
    }
    let sweep: Vec<_> = inputs.sweep_runs().collect();
    if !sweep.is_empty() {
        let passed = sweep.iter().filter(|r| r.passed).count();
        let violations: usize = sweep.iter().map(|r| r.violations.len()).sum();
        rows.push(row(
            "simulation",
            "every plan × seed (every world) holds every invariant",
            format!(
                "{passed} of {} runs passed, {violations} violations",
                sweep.len()
            ),
            "all runs",
            passed == sweep.len(),
        ));
    }
    for sim in &inputs.sims {
        let r = &sim.results;
        if r.determinism_checked {
            rows.push(row(
                "determinism",
                "each seed replays to the same trace hash",
                if r.nondeterministic.is_empty() {
                    format!("{} seeds ran twice, same hash", r.runs.len())
                } else {
                    format!("differs: {}", r.nondeterministic.join("; "))
                },
                "identical",
                r.nondeterministic.is_empty(),
            ));
        }
        let plain: Vec<_> = r.runs.iter().filter(|x| x.bug.is_none()).collect();
        let seats: usize = plain.iter().map(|x| x.history.seats).sum();
        if seats > 0 {
            let good: usize = plain.iter().map(|x| x.history.linearizable).sum();
            let unknown: usize = plain.iter().map(|x| x.history.unknown).sum();
            let bad = seats - good - unknown;
            rows.push(row(
                "history",
                &format!("client histories linearizable per seat ({})", r.scenario),
                format!(
                    "{good} of {seats} seats, {unknown} unknown (search bound), {bad} violating"
                ),
                "none violating",
                bad == 0,
            ));
        }
        let declared = r.coverage.iter().filter(|c| c.declared).count();
        if declared > 0 {
            let missed = ticketing_sim::coverage::missed(&r.coverage);
            rows.push(row(
                "coverage",
                &format!("every declared state reached ({})", r.scenario),
                if missed.is_empty() {
                    format!("{declared} of {declared} reached")
                } else {
                    format!("never reached: {}", missed.join(", "))
                },
                "all reached",
                missed.is_empty(),
            ));
        }
        if !r.errors.is_empty() {
            rows.push(row(
                "simulation",
                "every run completes",
                r.errors.join("; "),
                "no crashed run",
                false,
            ));
        }
    }
    let zoo: Vec<_> = inputs.zoo_rows().collect();
    if !zoo.is_empty() {
        let missed: Vec<&str> = zoo
            .iter()
            .filter(|z| z.caught_by_seed.is_none())
            .map(|z| z.bug.as_str())
            .collect();
        rows.push(row(
            "bug zoo",
            "the checkers catch every known bug",
            if missed.is_empty() {
                format!("{} of {} caught", zoo.len(), zoo.len())
            } else {
                format!("NOT caught: {}", missed.join(", "))
            },
            "all caught",
            missed.is_empty(),
        ));
    }
    for m in &inputs.mutants {
        rows.push(row(
            "mutation",
            &format!("the tests catch the mutants of {}", m.name),
            if m.baseline_failed {
                "the tests failed on the unmutated tree: nothing judged".into()
            } else {
                format!(
                    "{} of {} caught ({:.1} %), {} missed, {} equivalent, {} unviable",
                    m.killed(),
                    m.judged(),
                    m.score_pct(),
                    m.missed.len(),
                    m.equivalent.len(),
                    m.unviable
                )
            },
            &format!("≥ {:.0} %", crate::mutants::SCORE_MIN_PCT),
            m.passed(),
        ));
    }
    for step in &inputs.steps {
        rows.push(row(
            "pipeline",
            &format!("step {} exits 0", step.name),
            format!("exit {}", step.exit_code),
            "exit 0",
            step.exit_code == 0,
        ));
    }
    if rows.is_empty() {
        rows.push(row(
            "input",
            "something to report",
            "no load run and no simulation results".into(),
            "at least one",
            false,
        ));
    }
    let failures: Vec<Row> = rows.iter().filter(|r| !r.passed).cloned().collect();
    Banner {
        passed: failures.is_empty(),
        rows,
        failures,
    }
}
