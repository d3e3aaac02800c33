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

pub use crate::record::Basis;
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
    pub soak: SoakSlo,
    pub open: OpenSlo,
    pub customers: CustomersSlo,
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

/// Judged when the run used the open model (`--arrival-rate`,
/// `--arrival-stages`, the onsale).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenSlo {
    /// Iterations no user could start within `--late-ms` of their time.
    pub dropped_iterations_max: u64,
    /// Iterations started per iterations scheduled, in percent.
    pub achieved_rate_min_pct: f64,
}

impl Default for OpenSlo {
    fn default() -> Self {
        Self {
            dropped_iterations_max: 0,
            achieved_rate_min_pct: 99.0,
        }
    }
}

/// Judged when the onsale ran with scalpers (`--scalper-share`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustomersSlo {
    /// Seats honest people bought, in percent of what they asked for (at
    /// most the event's seats less the bots' accounts × the seat limit).
    pub honest_served_min_pct: f64,
    /// 429 answers to honest people (the limits are for the abusers).
    pub honest_rate_limited_max: u64,
}

impl Default for CustomersSlo {
    fn default() -> Self {
        Self {
            honest_served_min_pct: 90.0,
            honest_rate_limited_max: 0,
        }
    }
}

/// Judged when the run sampled the target's resources (`--sample-every`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoakSlo {
    /// Resident memory may grow by at most this much from the first sample
    /// after the warm-up to the end of the load.
    pub rss_growth_mib_max: f64,
    /// Allocator arenas, caches and the run's first events settle in this long.
    pub warmup_ms: u64,
    /// After the run, how long open fds and live tasks get to come back to
    /// their start (longer than the target's idle keep-alive timeout).
    pub settle_timeout_ms: u64,
}

impl Default for SoakSlo {
    fn default() -> Self {
        Self {
            rss_growth_mib_max: 128.0,
            warmup_ms: 120_000,
            settle_timeout_ms: 60_000,
        }
    }
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
        // The file's header says its values are the defaults.
        assert_eq!(slo, Slo::default());
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
