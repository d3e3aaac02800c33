//! The SLO gate's verdict: every rule of an [`Slo`] checked against a
//! run's [`Summary`] (what the rules mean: `slo`).
//!
//! Layer: above `slo`, `summary` and `resources`; nothing below imports it.

use crate::resources::{ResourceReport, ResourceSample};
use crate::slo::{Basis, Check, Slo, SoakSlo, Verdict};
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

/// Demand exceeds capacity once there are as many people as seats (each
/// wants at least one): then every seat must sell. Seats given back by
/// cancellations (`--cancel-share`) may sell again: then the sales must
/// reach the capacity and what buyers kept must not exceed it.
fn sold_out_check(o: &crate::summary::OnsaleFigures) -> Check {
    let must_sell_out = o.arrivals >= o.seats;
    let returned = o.after_sale.as_ref().map_or(0, |a| a.seats_returned);
    let kept = o.seats_sold.saturating_sub(returned);
    let observed = format!(
        "{} of {} seats to {} buyers ({} arrivals){}; sold out in {}",
        o.seats_sold,
        o.seats,
        o.buyers,
        o.arrivals,
        match returned {
            0 => String::new(),
            r => format!(", {r} given back by cancellations ({kept} kept)"),
        },
        o.sell_out_ms
            .map(|ms| format!("{:.2} s", ms as f64 / 1000.0))
            .unwrap_or_else(|| "-".into())
    );
    let (required, passed) = match (must_sell_out, returned) {
        (true, 0) => (format!("= {}", o.seats), o.seats_sold == o.seats),
        (true, _) => (
            format!(">= {} sold, <= {} kept", o.seats, o.seats),
            o.seats_sold >= o.seats && kept <= o.seats,
        ),
        (false, _) => (
            format!("<= {} kept (fewer people than seats)", o.seats),
            kept <= o.seats,
        ),
    };
    check(
        "sold = capacity when demand exceeds it",
        "onsale",
        observed,
        required,
        passed,
    )
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

const MIB: f64 = 1024.0 * 1024.0;

/// The soak's rules on the target's resources: memory growth after the
/// warm-up within the bound, open fds and live tasks back at their start.
fn soak_checks(r: &ResourceReport, soak: &SoakSlo) -> Vec<Check> {
    let (Some(start), Some(end)) = (r.start(), r.end_of_load()) else {
        let why = r.last_error.as_deref().unwrap_or("no scrape answered");
        return vec![check(
            "resource samples",
            "soak",
            format!("none readable: {why}"),
            "readable".into(),
            false,
        )];
    };
    let mib = |b: u64| b as f64 / MIB;
    let growth = match r.warm(soak.warmup_ms) {
        Some(warm) => check(
            "RSS growth after warm-up",
            "soak",
            format!(
                "{:+.1} MiB ({:.1} at {} s -> {:.1} at {} s; {:.1} at start)",
                mib(end.rss_bytes) - mib(warm.rss_bytes),
                mib(warm.rss_bytes),
                warm.at_ms / 1000,
                mib(end.rss_bytes),
                end.at_ms / 1000,
                mib(start.rss_bytes)
            ),
            format!("<= {} MiB", soak.rss_growth_mib_max),
            mib(end.rss_bytes) - mib(warm.rss_bytes) <= soak.rss_growth_mib_max,
        ),
        None => check(
            "RSS growth after warm-up",
            "soak",
            format!(
                "no sample after the {} s warm-up (load sampled for {} s)",
                soak.warmup_ms / 1000,
                end.at_ms / 1000
            ),
            format!("<= {} MiB", soak.rss_growth_mib_max),
            false,
        ),
    };
    let back = |what: &str, f: fn(&ResourceSample) -> u64| {
        let after = r.settled().map(f);
        check(
            &format!("{what} back to start after the run"),
            "soak",
            match after {
                Some(a) => format!("{a} (start {}, peak {})", f(start), r.peak(f)),
                None => "not sampled after the run".into(),
            },
            format!("<= {}", f(start)),
            after.is_some_and(|a| a <= f(start)),
        )
    };
    vec![
        growth,
        back("open fds", |s| s.open_fds),
        back("live tasks", |s| s.tasks),
    ]
}

/// The open model's rules: iterations started on schedule, none dropped.
fn open_checks(o: &crate::open::OpenFigures, slo: &crate::slo::OpenSlo) -> Vec<Check> {
    vec![
        check(
            "dropped iterations",
            "open",
            format!(
                "{} of {} (late after {} ms, {} users)",
                o.dropped, o.scheduled, o.late_ms, o.max_users
            ),
            format!("<= {}", slo.dropped_iterations_max),
            o.dropped <= slo.dropped_iterations_max,
        ),
        check(
            "achieved arrival rate",
            "open",
            format!(
                "{:.2} % ({} started of {})",
                o.achieved_pct, o.started, o.scheduled
            ),
            format!(">= {} %", slo.achieved_rate_min_pct),
            o.scheduled > 0 && o.achieved_pct >= slo.achieved_rate_min_pct,
        ),
    ]
}

/// The waiting room's rules, on what its visitors saw: the shop phase
/// (every request but the room's own) within the latency limit, no one
/// admitted before someone surely ahead of them, no second over the
/// admission cap, no place lost while its visitor kept polling, every
/// visitor admitted or told the event sold out before the run ended.
fn waiting_checks(w: &crate::summary::WaitingFigures, p95_ms_max: f64) -> Vec<Check> {
    let basis_note = format!(
        "{:.1} ms over {} requests (arrivals peak at {:.1}x the admission rate)",
        w.shop.p95_ms, w.shop.count, w.arrivals_per_admission
    );
    vec![
        check(
            "shop-phase p95",
            "waiting room",
            basis_note,
            format!("< {p95_ms_max} ms"),
            w.shop.count > 0 && w.shop.p95_ms < p95_ms_max,
        ),
        check(
            "admitted out of order",
            "waiting room",
            format!(
                "{} of {} admitted (Kendall tau {})",
                w.out_of_order,
                w.admitted,
                w.kendall_tau_fifo
                    .or(w.kendall_tau)
                    .map_or("-".into(), |t| format!("{t:.3}"))
            ),
            "= 0".into(),
            w.out_of_order == 0,
        ),
        check(
            "admissions per second",
            "waiting room",
            format!("at most {} in one second", w.admitted_per_s_max),
            format!("<= {} (the cap)", w.admit_per_s),
            w.admitted_per_s_max <= u64::from(w.admit_per_s),
        ),
        check(
            "places lost while polling",
            "waiting room",
            w.lost.to_string(),
            "= 0".into(),
            w.lost == 0,
        ),
        check(
            "every visitor admitted or told sold out",
            "waiting room",
            format!(
                "{} admitted, {} told sold out, {} unresolved of {} joined ({} joins refused)",
                w.admitted, w.told_sold_out, w.unresolved, w.joined, w.join_failed
            ),
            "0 unresolved, 0 refused".into(),
            w.joined > 0 && w.unresolved == 0 && w.join_failed == 0,
        ),
    ]
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

    if let Some(o) = &summary.onsale {
        checks.push(sold_out_check(o));
    }

    if let Some((o, sc)) = summary
        .onsale
        .as_ref()
        .and_then(|o| Some((o, o.scalpers.as_ref()?)))
    {
        checks.extend(scalper_checks(sc, o.seats, &slo.customers));
    }

    if let Some(w) = &summary.waiting {
        checks.extend(waiting_checks(w, slo.latency.p95_ms_max));
    }

    if let Some(o) = &summary.open {
        checks.extend(open_checks(o, &slo.open));
    }

    if let Some(r) = &summary.resources {
        checks.extend(soak_checks(r, &slo.soak));
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

/// An onsale with scalpers: the limits left the sale to honest people,
/// refused the bots, and rate-limited only them. (That no account went over
/// the limit is invariant 9, in the audit.)
fn scalper_checks(
    sc: &crate::summary::ScalperFigures,
    seats: u64,
    slo: &crate::slo::CustomersSlo,
) -> Vec<Check> {
    let served = sc.honest_served_pct(seats);
    vec![
        check(
            "honest demand served",
            "customers",
            format!(
                "{} of {} seats ({served:.1} %: asked for {}, at most {} seats less {} accounts × {}); the bots bought {}",
                sc.honest_seats_sold,
                sc.honest_demand(seats),
                sc.honest_seats_wanted,
                seats,
                sc.accounts,
                sc.seats_per_account,
                sc.seats_sold
            ),
            format!(">= {} %", slo.honest_served_min_pct),
            served >= slo.honest_served_min_pct,
        ),
        check(
            "429s only to abusers",
            "customers",
            format!(
                "{} to honest people, {} to the bots",
                sc.honest_rate_limited, sc.rate_limited
            ),
            format!("honest <= {}", slo.honest_rate_limited_max),
            sc.honest_rate_limited <= slo.honest_rate_limited_max,
        ),
        check(
            "the limits refused the bots",
            "customers",
            format!(
                "{} bots: {} CUSTOMER_LIMIT, {} RATE_LIMITED, {} ADMISSION_INVALID",
                sc.bots, sc.limit_refusals, sc.rate_limited, sc.admission_refusals
            ),
            "> 0".into(),
            sc.limit_refusals + sc.rate_limited + sc.admission_refusals > 0,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scalper_rule_fails_on_its_own_breach() {
        let fine = crate::summary::ScalperFigures {
            bots: 10,
            limit_refusals: 5,
            rate_limited: 7,
            honest_seats_wanted: 2_000,
            honest_seats_sold: 950,
            ..Default::default()
        };
        let slo = crate::slo::CustomersSlo::default();
        let failed = |f: &crate::summary::ScalperFigures| -> Vec<String> {
            scalper_checks(f, 1_000, &slo)
                .into_iter()
                .filter(|c| !c.passed)
                .map(|c| c.rule)
                .collect()
        };
        assert!(failed(&fine).is_empty(), "{:?}", failed(&fine));
        let starved = crate::summary::ScalperFigures {
            honest_seats_sold: 899,
            ..fine.clone()
        };
        assert_eq!(failed(&starved), ["honest demand served"]);
        let hit = crate::summary::ScalperFigures {
            honest_rate_limited: 1,
            ..fine.clone()
        };
        assert_eq!(failed(&hit), ["429s only to abusers"]);
        let unrefused = crate::summary::ScalperFigures {
            limit_refusals: 0,
            rate_limited: 0,
            ..fine
        };
        assert_eq!(failed(&unrefused), ["the limits refused the bots"]);
    }

    #[test]
    fn each_waiting_room_rule_fails_on_its_own_breach() {
        let fair = crate::summary::WaitingFigures {
            admit_per_s: 100,
            joined: 10,
            admitted: 10,
            admitted_per_s_max: 100,
            shop: crate::record::Percentiles {
                count: 50,
                p95_ms: 20.0,
                ..Default::default()
            },
            ..Default::default()
        };
        let failed = |w: &crate::summary::WaitingFigures| -> Vec<String> {
            waiting_checks(w, 300.0)
                .into_iter()
                .filter(|c| !c.passed)
                .map(|c| c.rule)
                .collect()
        };
        assert!(failed(&fair).is_empty(), "{:?}", failed(&fair));
        type Breach = fn(&mut crate::summary::WaitingFigures);
        let breaches: [(&str, Breach); 5] = [
            ("shop-phase p95", |w| w.shop.p95_ms = 300.0),
            ("admitted out of order", |w| w.out_of_order = 1),
            ("admissions per second", |w| w.admitted_per_s_max = 101),
            ("places lost while polling", |w| w.lost = 1),
            ("every visitor admitted or told sold out", |w| {
                w.unresolved = 1
            }),
        ];
        for (rule, breach) in breaches {
            let mut w = fair.clone();
            breach(&mut w);
            assert_eq!(failed(&w), vec![rule.to_owned()]);
        }
    }

    fn at(at_s: u64, rss_mib: u64, open_fds: u64, tasks: u64) -> ResourceSample {
        ResourceSample {
            at_ms: at_s * 1000,
            rss_bytes: rss_mib * 1024 * 1024,
            open_fds,
            threads: 3,
            tasks,
            connections: 1,
        }
    }

    fn soak() -> SoakSlo {
        SoakSlo {
            rss_growth_mib_max: 64.0,
            warmup_ms: 20_000,
            settle_timeout_ms: 1_000,
        }
    }

    fn judged(during: Vec<ResourceSample>, after: Vec<ResourceSample>) -> Vec<(String, bool)> {
        let r = ResourceReport {
            every_ms: 10_000,
            during,
            after,
            ..ResourceReport::default()
        };
        soak_checks(&r, &soak())
            .into_iter()
            .map(|c| (c.rule, c.passed))
            .collect()
    }

    #[test]
    fn a_steady_target_that_comes_back_passes_every_soak_rule() {
        // Warm-up growth (40 -> 200 MiB) is not judged; after it, +20 MiB.
        let during = vec![
            at(0, 40, 30, 20),
            at(20, 200, 90, 300),
            at(60, 220, 95, 310),
        ];
        let rows = judged(during, vec![at(61, 220, 60, 200), at(62, 220, 30, 20)]);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|(_, ok)| *ok), "{rows:?}");
    }

    #[test]
    fn growth_over_the_bound_after_warm_up_fails_only_that_rule() {
        let during = vec![
            at(0, 40, 30, 20),
            at(20, 100, 90, 300),
            at(60, 165, 95, 310),
        ];
        let rows = judged(during, vec![at(62, 165, 30, 20)]);
        assert_eq!(rows[0], ("RSS growth after warm-up".into(), false));
        assert!(rows[1].1 && rows[2].1, "{rows:?}");
    }

    #[test]
    fn fds_or_tasks_that_stay_above_their_start_fail() {
        let during = vec![
            at(0, 40, 30, 20),
            at(20, 100, 90, 300),
            at(60, 100, 95, 310),
        ];
        let rows = judged(during.clone(), vec![at(62, 100, 31, 20)]);
        assert_eq!(
            rows[1],
            ("open fds back to start after the run".into(), false)
        );
        assert!(rows[2].1);
        let rows = judged(during.clone(), vec![at(62, 100, 30, 21)]);
        assert_eq!(
            rows[2],
            ("live tasks back to start after the run".into(), false)
        );
        let rows = judged(during, vec![]);
        assert!(
            !rows[1].1 && !rows[2].1,
            "never sampled after the run: {rows:?}"
        );
    }

    #[test]
    fn a_run_inside_its_warm_up_or_without_samples_is_not_passed() {
        let rows = judged(
            vec![at(0, 40, 30, 20), at(10, 41, 30, 20)],
            vec![at(11, 41, 30, 20)],
        );
        assert_eq!(rows[0], ("RSS growth after warm-up".into(), false));
        let r = ResourceReport {
            unreadable: 3,
            last_error: Some("GET /metrics: 404".into()),
            ..ResourceReport::default()
        };
        let rows = soak_checks(&r, &soak());
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].passed && rows[0].observed.contains("404"));
    }
}
