//! The SLO gate's verdict: every rule of an [`Slo`] checked against a
//! run's [`Summary`] (what the rules mean: `slo`).
//!
//! Layer: above `slo` and `summary`; nothing below imports it.

use crate::slo::{Basis, Check, Slo, Verdict};
use crate::summary::Summary;

/// Merges the summaries of several load processes ([`summary::merge`]) and
/// judges the merged figures against `slo`.
///
/// [`summary::merge`]: crate::summary::merge
pub fn merge(parts: &[Summary], slo: &Slo) -> anyhow::Result<Summary> {
    let mut out = crate::summary::merge(parts, slo)?;
    out.verdict = Some(judge(&out, slo));
    Ok(out)
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
