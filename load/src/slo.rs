//! The SLO gate: the limits (from `load/slo.toml`, overridable per run) and
//! their verdict on a run's [`Summary`].
//!
//! Latency is judged on one basis for the whole gate — coordinated-omission
//! **corrected** percentiles by default, because a stalled system also stops
//! a closed-loop generator from sending, which hides exactly the slow
//! requests the gate exists to see (`latency.basis = "raw"` switches). Both
//! bases are always reported. Errors are transport errors, 5xx and
//! unexpected 4xx; expected refusals (409 on a taken seat, 410 on an expired
//! hold where the scenario allows it) are never errors.
//!
//! With a fault plan (`--faults`), the latency and error-rate rules judge
//! the requests made *outside* the fault window (first fault to heal): an
//! outage is supposed to cause errors, and the question is whether the
//! system serves well around it. Inside the window the figures are
//! reported, and the recovery rule gates how soon errors stop after the
//! heal; the audit must pass either way.

use crate::summary::Summary;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The SLO file's contents (every key optional in the file; defaults below).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Slo {
    pub latency: LatencySlo,
    pub errors: ErrorSlo,
    pub sse: SseSlo,
    pub audit: AuditSlo,
    pub faults: FaultSlo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    Raw,
    Corrected,
}

impl std::fmt::Display for Basis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Basis::Raw => "raw",
            Basis::Corrected => "corrected",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencySlo {
    pub basis: Basis,
    /// Overall and per endpoint.
    pub p95_ms_max: f64,
    /// Endpoints with fewer requests are reported but not judged alone
    /// (their p95 is one or two samples); they still count overall.
    pub endpoint_requests_min: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorSlo {
    /// Overall and per endpoint, in percent.
    pub rate_pct_max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SseSlo {
    /// Change-to-delivery p95 across all watchers.
    pub propagation_p95_ms_max: f64,
    /// Changes a watcher never saw (a gap in versions without a snapshot).
    pub lost_changes_max: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSlo {
    /// Seats sold more than once (the brief: 0).
    pub oversold_max: u64,
    /// How long to wait for the system to quiesce before auditing.
    pub quiesce_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSlo {
    /// After the plan's heal time, errors must stop within this long.
    pub recovery_ms_max: u64,
}

impl Default for LatencySlo {
    fn default() -> Self {
        Self {
            basis: Basis::Corrected,
            p95_ms_max: 300.0,
            endpoint_requests_min: 20,
        }
    }
}

impl Default for ErrorSlo {
    fn default() -> Self {
        Self { rate_pct_max: 0.5 }
    }
}

impl Default for SseSlo {
    fn default() -> Self {
        Self {
            propagation_p95_ms_max: 1000.0,
            lost_changes_max: 0,
        }
    }
}

impl Default for AuditSlo {
    fn default() -> Self {
        Self {
            oversold_max: 0,
            quiesce_timeout_ms: 60_000,
        }
    }
}

impl Default for FaultSlo {
    fn default() -> Self {
        Self {
            recovery_ms_max: 30_000,
        }
    }
}

/// One-run overrides from the command line (`--slo-p95-ms` and friends).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub p95_ms: Option<f64>,
    pub error_pct: Option<f64>,
    pub sse_p95_ms: Option<f64>,
    pub basis: Option<Basis>,
}

impl Slo {
    /// Reads an SLO file; a missing key keeps its default, an unknown key is an error.
    pub fn load(path: &Path) -> anyhow::Result<Slo> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read SLO file {}: {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("SLO file {} is not valid: {e}", path.display()))
    }

    pub fn with(mut self, o: &Overrides) -> Slo {
        if let Some(v) = o.p95_ms {
            self.latency.p95_ms_max = v;
        }
        if let Some(v) = o.error_pct {
            self.errors.rate_pct_max = v;
        }
        if let Some(v) = o.sse_p95_ms {
            self.sse.propagation_p95_ms_max = v;
        }
        if let Some(v) = o.basis {
            self.latency.basis = v;
        }
        self
    }

    /// Goose's own thresholds for the rules it can judge (on its raw data):
    /// overall p95 and error rate. Run with no abort, so a breach does not
    /// cut the run short; the results land in the summary beside ours.
    pub fn goose_thresholds(&self) -> Vec<String> {
        vec![
            format!("p95<{}ms", self.latency.p95_ms_max),
            format!("error-rate<{}%", self.errors.rate_pct_max),
        ]
    }
}

/// One row of the verdict table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// "p95", "error rate", "oversell", "audit: no order stuck", ...
    pub rule: String,
    /// "overall", an endpoint name, "sse", "audit", "faults", "goose".
    pub scope: String,
    pub observed: String,
    pub limit: String,
    pub passed: bool,
}

/// The gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub passed: bool,
    pub basis: Basis,
    pub checks: Vec<Check>,
}

fn check(rule: &str, scope: &str, observed: String, limit: String, passed: bool) -> Check {
    Check {
        rule: rule.into(),
        scope: scope.into(),
        observed,
        limit,
        passed,
    }
}

/// Judges a summary. Every limit becomes a row; the verdict passes only if
/// every row does (goose's rows included, the audit's included).
pub fn judge(summary: &Summary, slo: &Slo) -> Verdict {
    let basis = slo.latency.basis;
    let p95 = |f: &crate::record::EndpointFigures| f.on(basis).p95_ms;
    let mut checks = Vec::new();
    let lim_ms = format!("< {} ms", slo.latency.p95_ms_max);
    let lim_pct = format!("< {} %", slo.errors.rate_pct_max);

    let overall = &summary.overall;
    checks.push(check(
        &format!("p95 ({basis})"),
        "overall",
        format!("{:.1} ms", p95(overall)),
        lim_ms.clone(),
        overall.requests > 0 && p95(overall) < slo.latency.p95_ms_max,
    ));
    checks.push(check(
        "error rate",
        "overall",
        format!(
            "{:.3} % ({} of {})",
            overall.error_rate_pct, overall.errors, overall.requests
        ),
        lim_pct.clone(),
        overall.requests > 0 && overall.error_rate_pct < slo.errors.rate_pct_max,
    ));
    for (name, e) in &summary.endpoints {
        if e.requests < slo.latency.endpoint_requests_min {
            continue;
        }
        checks.push(check(
            &format!("p95 ({basis})"),
            name,
            format!("{:.1} ms", p95(e)),
            lim_ms.clone(),
            p95(e) < slo.latency.p95_ms_max,
        ));
        checks.push(check(
            "error rate",
            name,
            format!("{:.3} % ({} of {})", e.error_rate_pct, e.errors, e.requests),
            lim_pct.clone(),
            e.error_rate_pct < slo.errors.rate_pct_max,
        ));
    }

    if let Some(sse) = &summary.sse {
        let p = match basis {
            // Propagation is a one-way delay, not a request: no correction applies.
            Basis::Raw | Basis::Corrected => sse.propagation.p95_ms,
        };
        checks.push(check(
            "propagation p95",
            "sse",
            format!("{p:.1} ms ({} deliveries)", sse.propagation.count),
            format!("< {} ms", slo.sse.propagation_p95_ms_max),
            sse.propagation.count > 0 && p < slo.sse.propagation_p95_ms_max,
        ));
        checks.push(check(
            "lost changes",
            "sse",
            format!(
                "{} (resumes {}, resyncs {})",
                sse.lost_changes, sse.resumes, sse.resyncs
            ),
            format!("<= {}", slo.sse.lost_changes_max),
            sse.lost_changes <= slo.sse.lost_changes_max,
        ));
    }

    if let Some(rush) = &summary.rush {
        let want = rush.users.min(rush.seats);
        checks.push(check(
            "winners = min(users, seats)",
            "rush",
            format!(
                "{} won ({} users, {} seats)",
                rush.won, rush.users, rush.seats
            ),
            format!("= {want}"),
            !rush.complete || rush.won == want,
        ));
        checks.push(check(
            "winners <= seats",
            "rush",
            rush.won.to_string(),
            format!("<= {}", rush.seats),
            rush.won <= rush.seats,
        ));
    }

    match &summary.audit {
        Some(audit) => {
            checks.push(check(
                "oversold seats",
                "audit",
                audit.oversold.to_string(),
                format!("<= {}", slo.audit.oversold_max),
                audit.oversold <= slo.audit.oversold_max,
            ));
            for c in &audit.checks {
                checks.push(check(
                    &c.name,
                    "audit",
                    c.observed.clone(),
                    "ok".into(),
                    c.passed,
                ));
            }
        }
        None => checks.push(check(
            "post-run audit",
            "audit",
            "not run".into(),
            "required".into(),
            false,
        )),
    }

    if let Some(f) = &summary.faults {
        checks.push(check(
            "recovery after heal",
            "faults",
            match f.recovery_ms {
                Some(ms) => format!("{ms} ms"),
                None => "errors until the end".into(),
            },
            format!("<= {} ms", slo.faults.recovery_ms_max),
            f.recovery_ms
                .is_some_and(|ms| ms <= slo.faults.recovery_ms_max),
        ));
    }

    for t in &summary.goose_thresholds {
        checks.push(check(
            &t.rule,
            "goose (raw)",
            t.observed.clone(),
            "goose threshold".into(),
            t.passed,
        ));
    }

    Verdict {
        passed: checks.iter().all(|c| c.passed),
        basis,
        checks,
    }
}

/// The verdict as a plain-text table (what the run prints last).
pub fn table(v: &Verdict) -> String {
    let w_rule = v
        .checks
        .iter()
        .map(|c| c.rule.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let w_scope = v
        .checks
        .iter()
        .map(|c| c.scope.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let w_obs = v
        .checks
        .iter()
        .map(|c| c.observed.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = format!(
        "{:<4}  {:<w_scope$}  {:<w_rule$}  {:<w_obs$}  limit\n",
        "", "scope", "rule", "observed"
    );
    for c in &v.checks {
        out.push_str(&format!(
            "{:<4}  {:<w_scope$}  {:<w_rule$}  {:<w_obs$}  {}\n",
            if c.passed { "ok" } else { "FAIL" },
            c.scope,
            c.rule,
            c.observed,
            c.limit
        ));
    }
    let failed = v.checks.iter().filter(|c| !c.passed).count();
    out.push_str(&if v.passed {
        format!(
            "SLO gate: PASS ({} checks; latency judged on {} percentiles)\n",
            v.checks.len(),
            v.basis
        )
    } else {
        format!(
            "SLO gate: FAIL ({failed} of {} checks failed; latency judged on {} percentiles)\n",
            v.checks.len(),
            v.basis
        )
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_slo_file_parses_and_matches_the_brief() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("slo.toml");
        let slo = Slo::load(&path).unwrap();
        assert_eq!(slo.latency.p95_ms_max, 300.0);
        assert_eq!(slo.errors.rate_pct_max, 0.5);
        assert_eq!(slo.audit.oversold_max, 0);
    }

    #[test]
    fn unknown_keys_are_refused_and_overrides_replace() {
        let bad: Result<Slo, _> = toml::from_str("[latency]\np95_ms = 3\n");
        assert!(bad.is_err());
        let slo = Slo::default().with(&Overrides {
            p95_ms: Some(1.0),
            basis: Some(Basis::Raw),
            ..Overrides::default()
        });
        assert_eq!(slo.latency.p95_ms_max, 1.0);
        assert_eq!(slo.latency.basis, Basis::Raw);
        assert_eq!(slo.errors.rate_pct_max, 0.5);
    }
}
