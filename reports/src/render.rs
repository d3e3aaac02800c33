//! The page: builds the template's context from the inputs (figures
//! formatted here, charts drawn by [`crate::charts`]) and renders
//! `templates/report.html` with minijinja. HTML escaping is the template
//! engine's (autoescape on); only the charts' SVG is inserted as markup.

use crate::charts::{self, Series};
use crate::format::ms;
use crate::history::{self, Entry};
use crate::inputs::{Inputs, LoadRun};
use crate::verdict;
use serde_json::{Value, json};
use std::path::Path;
use ticketing_load::record::{EndpointFigures, Percentiles, decode};
use ticketing_load::summary::Summary;

/// Failing simulation runs shown in full (the rest are counted).
pub const FAILING_RUNS_SHOWN_MAX: usize = 20;
/// Seeds up to which the plan × seed matrix is drawn.
const MATRIX_SEEDS_MAX: usize = 60;
/// Runs listed one by one, at most.
const RUN_ROWS_MAX: usize = 2_000;
/// Violations shown per failing run.
pub const VIOLATIONS_SHOWN_MAX: usize = 10;

/// How the page is labelled and what it compares with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The run's name (its report folder).
    pub label: String,
    /// RFC 3339, when the report was made.
    pub at: String,
    /// Earlier nights, oldest first (this run is appended by the caller).
    pub history: Vec<Entry>,
    /// Nights shown on the trend charts, this one included.
    pub trend_runs: usize,
    /// Where the page will be written: links to the run's other files are
    /// made relative to it.
    pub out_dir: std::path::PathBuf,
}

#[derive(Debug)]
pub struct Rendered {
    pub html: String,
    pub passed: bool,
    /// This run's point of the trend (to append to the history).
    pub entry: Entry,
    pub banner: verdict::Banner,
}

const TEMPLATE: &str = include_str!("../templates/report.html");
const STYLE: &str = include_str!("../templates/report.css");
const SCRIPT: &str = include_str!("../templates/report.js");

/// Renders the report.
pub fn render(inputs: &Inputs, opts: &Options) -> anyhow::Result<Rendered> {
    let banner = verdict::banner(inputs);
    let entry = Entry::of(inputs, &opts.label, opts.at.clone(), banner.passed);
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("report.html", TEMPLATE)?;
    env.add_template("report.css", STYLE)?;
    env.add_template("report.js", SCRIPT)?;
    let ctx = json!({
        "title": format!("ticketing nightly {}", opts.label),
        "label": opts.label,
        "at": opts.at,
        "banner": banner,
        "load": inputs.load.as_ref().map(|l| load_view(l, &opts.out_dir)).transpose()?,
        "soak": inputs.soak.as_ref().map(soak_view).transpose()?,
        "onsale": inputs.onsale.as_ref().map(onsale_view).transpose()?,
        "queued_onsale": inputs.queued_onsale.as_ref().map(onsale_view).transpose()?,
        "sim": sim_view(inputs, &opts.history),
        "mutants": mutants_view(inputs, &opts.out_dir),
        "trend": trend_view(&opts.history, &entry, opts.trend_runs, inputs.load.as_ref().map(|l| &l.summary.slo))?,
        "environment": environment_view(inputs),
    });
    let html = env.get_template("report.html")?.render(ctx)?;
    Ok(Rendered {
        html,
        passed: banner.passed,
        entry,
        banner,
    })
}

fn percentiles(p: &Percentiles) -> Value {
    json!({
        "count": p.count,
        "p50": ms(p.p50_ms), "p95": ms(p.p95_ms), "p99": ms(p.p99_ms),
        "max": ms(p.max_ms), "mean": ms(p.mean_ms),
    })
}

fn endpoint_row(name: &str, e: &EndpointFigures, judged_min: u64) -> Value {
    json!({
        "name": name,
        "requests": e.requests,
        "errors": e.errors,
        "expected": e.expected,
        "error_pct": format!("{:.2}", e.error_rate_pct),
        "raw": percentiles(&e.raw),
        "corrected": percentiles(&e.corrected),
        "judged": e.requests >= judged_min,
    })
}

/// A path to `target` as seen from `from` (relative when `target` is inside it).
fn link(target: &Path, from: &Path) -> String {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (t, f) = (abs(target), abs(from));
    match t.strip_prefix(&f) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => format!("file://{}", t.display()),
    }
}

fn is_ok_code(code: &str) -> bool {
    code.starts_with('2') || code.starts_with('3')
}

fn load_view(l: &LoadRun, out_dir: &Path) -> anyhow::Result<Value> {
    let s: &Summary = &l.summary;
    let slo = &s.slo;
    let judged_min = slo.latency.endpoint_requests_min;
    let endpoints: Vec<Value> = s
        .endpoints
        .iter()
        .map(|(n, e)| endpoint_row(n, e, judged_min))
        .collect();

    // Codes: each code's total and which endpoints answered it.
    let mut codes: std::collections::BTreeMap<&str, (u64, Vec<String>)> = Default::default();
    for (name, e) in &s.endpoints {
        for (code, n) in &e.codes {
            let c = codes.entry(code.as_str()).or_default();
            c.0 += n;
            c.1.push(format!("{name} ({n})"));
        }
    }
    let code_rows: Vec<Value> = codes
        .iter()
        .map(|(code, (n, eps))| {
            json!({"code": code, "count": n, "ok": is_ok_code(code), "endpoints": eps.join(", ")})
        })
        .collect();
    let error_bars: Vec<(String, f64)> = codes
        .iter()
        .filter(|(c, _)| !is_ok_code(c))
        .map(|(c, (n, _))| ((*c).to_owned(), *n as f64))
        .collect();

    let basis = slo.latency.basis;
    let overall_raw = decode(&s.overall.histogram_raw)?;
    let overall_corrected = decode(&s.overall.histogram_corrected)?;
    let p95_limit = Some((
        format!("SLO p95 {} ms", slo.latency.p95_ms_max),
        slo.latency.p95_ms_max,
    ));
    let latency_chart = charts::percentiles(
        "Latency by percentile, every request",
        &[
            charts::percentile_series("raw", &overall_raw),
            charts::percentile_series("corrected (coordinated omission)", &overall_corrected),
        ],
        p95_limit,
    )?;
    let endpoint_p95: Vec<(String, f64)> = s
        .endpoints
        .iter()
        .filter(|(_, e)| e.requests > 0)
        .map(|(n, e)| (n.clone(), e.on(basis).p95_ms))
        .collect();
    let charts = json!({
        "timeline": charts::timeline(&s.timeline, s.faults.as_ref().map(|f| f.window_ms))?,
        "latency": latency_chart,
        "endpoints": charts::bars(
            &format!("p95 by endpoint ({basis})"), "ms", &endpoint_p95, Some(slo.latency.p95_ms_max))?,
        "errors": charts::bars("Answers other than 2xx, by code", "requests", &error_bars, None)?,
    });

    let sse = match &s.sse {
        Some(sse) => {
            let h = decode(&sse.histogram)?;
            Some(json!({
                "figures": sse,
                "propagation": percentiles(&sse.propagation),
                "in_window": percentiles(&sse.propagation_in_window),
                "chart": charts::percentiles(
                    "SSE propagation: change sent → delivered to a watcher",
                    &[charts::percentile_series("every delivery", &h)],
                    Some((format!("SLO p95 {} ms", slo.sse.propagation_p95_ms_max),
                          slo.sse.propagation_p95_ms_max)),
                )?,
                "watchers": sse.per_watcher.iter().map(|w| json!({
                    "watcher": w.watcher, "deliveries": w.deliveries,
                    "p50": ms(w.p50_ms), "p95": ms(w.p95_ms), "p99": ms(w.p99_ms),
                })).collect::<Vec<_>>(),
            }))
        }
        None => None,
    };
    let faults = s.faults.as_ref().map(|f| {
        json!({
            "plan": f.plan,
            "applied": f.applied,
            "window": format!("{:.1} s – {:.1} s", f.window_ms.0 as f64 / 1000.0, f.window_ms.1 as f64 / 1000.0),
            "requests": f.requests_in_window,
            "errors": f.errors_in_window,
            "p95": ms(f.window.corrected.p95_ms),
            "codes": f.window.codes.iter().filter(|(c, _)| !is_ok_code(c))
                .map(|(c, n)| json!({"code": c, "count": n})).collect::<Vec<_>>(),
            "recovery": f.recovery_ms.map_or_else(|| "errors went on to the end".to_owned(),
                |r| format!("{} ms after heal", r)),
        })
    });
    let goose = l.dir.join("goose-report.html");
    Ok(json!({
        "env": s.environment,
        "basis": basis.to_string(),
        "overall": endpoint_row("every request", &s.overall, 0),
        "requests_per_s": format!("{:.0}", s.requests_per_s()),
        "endpoints": endpoints,
        "codes": code_rows,
        "charts": charts,
        "verdict": s.verdict,
        "audit": s.audit,
        "audit_passed": s.audit.as_ref().is_some_and(|a| a.passed()),
        "rush": s.rush.as_ref().map(|r| json!({
            "figures": r,
            "sell_out": r.sell_out_ms.map_or_else(|| "not sold out".to_owned(), |m| format!("{:.2} s", m as f64 / 1000.0)),
            "time_to_win": percentiles(&r.time_to_win),
        })),
        "purchase": s.purchase.as_ref().map(|p| json!({
            "figures": p,
            "time_to_terminal": percentiles(&p.time_to_terminal),
            "time_to_refunded": percentiles(&p.after_sale.time_to_refunded),
        })),
        "sse": sse,
        "open": s.open.as_ref().map(open_view).transpose()?,
        "faults": faults,
        "goose_thresholds": s.goose_thresholds,
        "goose_report": goose.exists().then(|| link(&goose, out_dir)),
        "dir": l.dir.display().to_string(),
    }))
}

/// An open run's schedule, drops and arrivals chart.
fn open_view(o: &ticketing_load::open::OpenFigures) -> anyhow::Result<Value> {
    Ok(json!({
        "figures": o,
        "plan": o.plan.describe(),
        "achieved": format!("{:.2}", o.achieved_pct),
        "iteration": percentiles(&o.iteration),
        "start_lag": percentiles(&o.start_lag),
        "chart": charts::arrivals(o)?,
    }))
}

/// The onsale: its people and seats, its arrivals, its endpoints and its
/// whole verdict.
fn onsale_view(l: &LoadRun) -> anyhow::Result<Value> {
    let s = &l.summary;
    let judged_min = s.slo.latency.endpoint_requests_min;
    let e = &s.environment;
    Ok(json!({
        "env": {"target": e.target, "duration_s": e.duration_ms / 1000, "seed": e.seed},
        "figures": s.onsale,
        "sell_out": s.onsale.as_ref().and_then(|o| o.sell_out_ms)
            .map_or_else(|| "not sold out".to_owned(), |m| format!("{:.2} s", m as f64 / 1000.0)),
        "time_to_confirm": s.onsale.as_ref().map(|o| percentiles(&o.time_to_confirm)),
        "open": s.open.as_ref().map(open_view).transpose()?,
        "waiting": s.waiting.as_ref().map(|w| waiting_view(w, &s.timeline)).transpose()?,
        "endpoints": s.endpoints.iter().map(|(n, e)| endpoint_row(n, e, judged_min)).collect::<Vec<_>>(),
        "overall": endpoint_row("every request", &s.overall, 0),
        "basis": s.slo.latency.basis.to_string(),
        "checks": s.verdict.as_ref().map(|v| v.checks.clone()).unwrap_or_default(),
    }))
}

/// The waiting room: its figures, and its charts (the room over time
/// beside the shop phase's latency per second).
fn waiting_view(
    w: &ticketing_load::summary::WaitingFigures,
    timeline: &[ticketing_load::record::Second],
) -> anyhow::Result<Value> {
    let (room, shop) = charts::waiting_room(w, timeline)?;
    let tau = |t: Option<f64>| t.map_or_else(|| "-".to_owned(), |t| format!("{t:.3}"));
    Ok(json!({
        "figures": w,
        "wait": percentiles(&w.wait),
        "shop": percentiles(&w.shop),
        "tau": tau(w.kendall_tau),
        "tau_fifo": tau(w.kendall_tau_fifo),
        "ratio": format!("{:.1}", w.arrivals_per_admission),
        "room_chart": room,
        "shop_chart": shop,
    }))
}

/// The soak: its resource charts and its whole verdict.
fn soak_view(l: &LoadRun) -> anyhow::Result<Value> {
    let s = &l.summary;
    let e = &s.environment;
    let charts = match &s.resources {
        Some(r) => {
            let (memory, counts) = charts::resources(r, &s.slo.soak)?;
            Some(
                json!({"memory": memory, "counts": counts, "every_s": r.every_ms / 1000,
                        "samples": r.during.len() + r.after.len(), "unreadable": r.unreadable}),
            )
        }
        None => None,
    };
    Ok(json!({
        "env": {"scenario": e.scenario, "users": e.users, "target": e.target,
                "duration_s": e.duration_ms / 1000},
        "requests": s.overall.requests,
        "errors": s.overall.errors,
        "resources": charts,
        "checks": s.verdict.as_ref().map(|v| v.checks.clone()).unwrap_or_default(),
    }))
}

fn sim_view(inputs: &Inputs, history: &[Entry]) -> Option<Value> {
    if inputs.sims.is_empty() {
        return None;
    }
    // Each sweep run with its row: the plan, and the world when the
    // sweeps ran more than one (e.g. `small` and `queued`).
    let worlds: Vec<&str> = inputs
        .sims
        .iter()
        .filter(|s| s.results.runs.iter().any(|r| r.bug.is_none()))
        .map(|s| s.results.scenario.as_str())
        .collect();
    let labelled: Vec<(String, &ticketing_sim::results::RunResult)> = inputs
        .sims
        .iter()
        .flat_map(|s| {
            let world = s.results.scenario.as_str();
            let many = worlds.iter().any(|w| *w != world);
            s.results
                .runs
                .iter()
                .filter(|r| r.bug.is_none())
                .map(move |r| {
                    let label = if many {
                        format!("{} · {world}", r.plan)
                    } else {
                        r.plan.clone()
                    };
                    (label, r)
                })
        })
        .collect();
    let runs: Vec<&ticketing_sim::results::RunResult> = labelled.iter().map(|(_, r)| *r).collect();
    // The plan × seed matrix, plans in the order the sweep ran them.
    let mut plans: Vec<&str> = Vec::new();
    let mut seed_set: std::collections::BTreeSet<u64> = std::collections::BTreeSet::new();
    for (label, r) in &labelled {
        if !plans.contains(&label.as_str()) {
            plans.push(label);
        }
        seed_set.insert(r.seed);
    }
    // A seed fleet runs thousands of seeds: no matrix then (the failure
    // groups and the counts say it), and the run list is cut.
    let seeds: Vec<u64> = if seed_set.len() <= MATRIX_SEEDS_MAX {
        seed_set.iter().copied().collect()
    } else {
        Vec::new()
    };
    let matrix: Vec<Value> = plans
        .iter()
        .map(|p| {
            let cells: Vec<Value> = seeds
                .iter()
                .map(|s| match labelled.iter().find(|(l, r)| l == p && r.seed == *s) {
                    Some((_, r)) => json!({
                        "ran": true, "passed": r.passed,
                        "title": format!("{} seed {}: {:.1} simulated s, {} orders, {} confirmed, {} sold, {} violations",
                            r.plan, r.seed, r.sim_ms as f64 / 1000.0, r.orders, r.confirmed, r.sold_seats, r.violations.len()),
                    }),
                    None => json!({"ran": false, "passed": false, "title": "not run"}),
                })
                .collect();
            let passed = labelled.iter().filter(|(l, r)| l == p && r.passed).count();
            let total = labelled.iter().filter(|(l, _)| l == p).count();
            json!({"plan": p, "cells": cells, "passed": passed, "total": total})
        })
        .collect();
    let run_rows: Vec<Value> = labelled
        .iter()
        .take(RUN_ROWS_MAX)
        .map(|(label, r)| {
            json!({
                "plan": label, "seed": r.seed, "passed": r.passed,
                "sim_s": format!("{:.1}", r.sim_ms as f64 / 1000.0),
                "orders": r.orders, "confirmed": r.confirmed, "sold": r.sold_seats,
                "violations": r.violations.len(), "hash": r.trace_hash,
            })
        })
        .collect();
    // Every failing run (sweep and zoo alike) with its evidence.
    let all_runs: Vec<_> = inputs.sims.iter().flat_map(|s| &s.results.runs).collect();
    let failing: Vec<Value> = all_runs
        .iter()
        .filter(|r| !r.passed && r.bug.is_none())
        .take(FAILING_RUNS_SHOWN_MAX)
        .map(|r| {
            json!({
                "plan": r.plan, "seed": r.seed, "bug": r.bug,
                "violations": r.violations.iter().take(VIOLATIONS_SHOWN_MAX).collect::<Vec<_>>(),
                "more": r.violations.len().saturating_sub(VIOLATIONS_SHOWN_MAX),
                "repro": r.repro,
                "trace_path": r.trace_path,
                "excerpt": r.trace_excerpt.join("\n"),
                "shrunk_plan": r.shrunk_plan,
                "witnesses": r.witness_paths.iter().map(|(seat, path)| json!({"seat": seat, "path": path})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let failing_total = all_runs
        .iter()
        .filter(|r| !r.passed && r.bug.is_none())
        .count();
    // The zoo: each bug, the seed that caught it, and what it tripped.
    let zoo: Vec<Value> = inputs
        .zoo_rows()
        .map(|z| {
            let caught = all_runs.iter().find(|r| {
                r.bug.as_deref() == Some(z.bug.as_str()) && Some(r.seed) == z.caught_by_seed
            });
            let mut invariants: Vec<&str> = caught
                .map(|r| r.violations.iter().map(|v| v.invariant.as_str()).collect())
                .unwrap_or_default();
            invariants.sort_unstable();
            invariants.dedup();
            json!({
                "bug": z.bug, "description": z.description, "plan": z.plan, "seeds": z.seeds,
                "caught_by_seed": z.caught_by_seed, "repro": z.repro,
                "invariants": invariants.join(", "),
                "excerpt": caught.map(|r| r.trace_excerpt.join("\n")),
            })
        })
        .collect();
    let coverage: Vec<Value> = inputs
        .sims
        .iter()
        .flat_map(|s| {
            s.results
                .coverage
                .iter()
                .map(move |c| (&s.results.scenario, c))
        })
        .map(|(scenario, c)| {
            json!({
                "scenario": scenario, "plan": c.plan, "state": c.state, "declared": c.declared,
                "reached_in": c.reached_in, "runs": c.runs, "hits": c.hits, "missed": c.missed(),
            })
        })
        .collect();
    let groups: Vec<Value> = inputs
        .sims
        .iter()
        .flat_map(|s| {
            s.results
                .groups
                .iter()
                .map(move |g| (&s.results.scenario, g))
        })
        .map(|(scenario, g)| {
            let first: Vec<String> = g
                .runs
                .iter()
                .take(5)
                .map(|(p, s)| format!("{p} {s}"))
                .collect();
            let nights = history::nights_with_group(history, &g.invariant, &g.signature);
            json!({
                "scenario": scenario, "known": g.known, "invariant": g.invariant,
                "signature": g.signature, "runs": g.runs.len(), "first": first.join(", "),
                "repro": g.repro, "earlier_nights": nights.len(), "first_night": nights.first(),
            })
        })
        .collect();
    let files: Vec<Value> = inputs
        .sims
        .iter()
        .map(|s| {
            let r = &s.results;
            let h = |f: fn(&ticketing_sim::results::RunResult) -> usize| r.runs.iter().map(f).sum::<usize>();
            json!({
                "history": {
                    "ops": h(|x| x.history.ops), "seats": h(|x| x.history.seats),
                    "linearizable": h(|x| x.history.linearizable), "unknown": h(|x| x.history.unknown),
                    "violating": h(|x| x.history.seats - x.history.linearizable - x.history.unknown),
                },
                "path": s.path.display().to_string(),
                "kind": match (r.zoo.is_empty(), r.budget_s) {
                    (false, _) => "bug zoo".to_owned(),
                    (true, Some(b)) => format!("seed fleet ({b} s budget)"),
                    (true, None) => "sweep".to_owned(),
                },
                "scenario": r.scenario, "users": r.users, "seats": r.seats,
                "runs": r.run_count,
                "wall_s": format!("{:.1}", r.wall_s),
                "simulated_s": format!("{:.0}", r.simulated_s),
                "speed": format!("{:.0}", r.simulated_s / r.wall_s.max(1e-9)),
                "seeds_per_min": format!("{:.1}", r.run_count as f64 * 60.0 / r.wall_s.max(1e-9)),
                "determinism": if !r.determinism_checked { "not checked".to_owned() }
                    else if r.nondeterministic.is_empty() { "every seed gave the same trace hash twice".to_owned() }
                    else { format!("FAILED: {}", r.nondeterministic.join("; ")) },
                "determinism_ok": r.nondeterministic.is_empty(),
                "errors": r.errors,
            })
        })
        .collect();
    Some(json!({
        "seeds": seeds,
        "matrix": if seeds.is_empty() { Vec::new() } else { matrix },
        "seed_count": seed_set.len(),
        "runs_hidden": labelled.len().saturating_sub(RUN_ROWS_MAX),
        "runs": run_rows,
        "passed": runs.iter().filter(|r| r.passed).count(),
        "total": runs.len(),
        "failing": failing,
        "failing_hidden": failing_total.saturating_sub(FAILING_RUNS_SHOWN_MAX),
        "zoo": zoo,
        "coverage": coverage,
        "groups": groups,
        "files": files,
    }))
}

fn trend_view(
    earlier: &[Entry],
    current: &Entry,
    runs: usize,
    slo: Option<&ticketing_load::slo::Slo>,
) -> anyhow::Result<Value> {
    let mut shown: Vec<&Entry> = earlier
        .iter()
        .skip(earlier.len().saturating_sub(runs.saturating_sub(1)))
        .collect();
    shown.push(current);
    let point = |f: &dyn Fn(&Entry) -> Option<f64>| -> Vec<(f64, f64)> {
        shown
            .iter()
            .enumerate()
            .filter_map(|(i, e)| f(e).map(|v| (i as f64, v)))
            .collect()
    };
    let labels: Vec<String> = shown.iter().map(|e| e.label.clone()).collect();
    let label_of = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            labels
                .get(i as usize)
                .map(|l| short_label(l))
                .unwrap_or_default()
        } else {
            String::new()
        }
    };
    let chart = |title: &str, unit: &str, points: Vec<(f64, f64)>, limit: Option<f64>| {
        let series = [Series {
            label: title.into(),
            points,
        }];
        let mut c = charts::LineChart::new(title, "run", unit, &series);
        c.limit_y = limit.map(|l| (format!("SLO now: {l}"), l));
        c.x_labels = Some(&label_of);
        c.x_range = Some((0.0, (shown.len().max(2) - 1) as f64));
        c.draw()
    };
    let p95 = chart(
        "p95 (gate basis)",
        "ms",
        point(&|e| e.load.as_ref().map(|l| l.p95_ms)),
        slo.map(|s| s.latency.p95_ms_max),
    )?;
    let errors = chart(
        "Error rate",
        "%",
        point(&|e| e.load.as_ref().map(|l| l.error_rate_pct)),
        slo.map(|s| s.errors.rate_pct_max),
    )?;
    let sim = chart(
        "Simulation pass rate",
        "%",
        point(&|e| e.sim.as_ref().map(|s| s.pass_rate_pct)),
        None,
    )?;
    let rows: Vec<Value> = shown
        .iter()
        .rev()
        .take(10)
        .map(|e| {
            json!({
                "label": e.label, "at": e.at, "git": e.git_revision, "passed": e.passed,
                "p95": e.load.as_ref().map(|l| ms(l.p95_ms)),
                "errors": e.load.as_ref().map(|l| format!("{:.2}", l.error_rate_pct)),
                "rps": e.load.as_ref().map(|l| format!("{:.0}", l.requests_per_s)),
                "sim": e.sim.as_ref().map(|s| format!("{}/{}", s.passed_runs, s.runs)),
            })
        })
        .collect();
    Ok(json!({
        "runs": shown.len(),
        "previous": earlier.last().map(|p| p.label.clone()),
        "changes": earlier.last().map(|p| history::changes(p, current)),
        "charts": {"p95": p95, "errors": errors, "sim": sim},
        "rows": rows,
    }))
}

/// Mutation testing, a row per scope with its missed and equivalent mutants.
fn mutants_view(inputs: &Inputs, out_dir: &Path) -> Vec<Value> {
    inputs
        .mutants
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "path": link(&m.path, out_dir),
                "files": m.files,
                "caught": m.killed(),
                "timeout": m.timeout,
                "judged": m.judged(),
                "unviable": m.unviable,
                "score": format!("{:.1}", m.score_pct()),
                "passed": m.passed(),
                "baseline_failed": m.baseline_failed,
                "missed": m.missed,
                "equivalent": m.equivalent,
            })
        })
        .collect()
}

fn environment_view(inputs: &Inputs) -> Value {
    let mut rows: Vec<(String, String)> = vec![("git revision".into(), inputs.git_revision())];
    if let Some(l) = &inputs.load {
        let e = &l.summary.environment;
        rows.extend([
            ("load target".into(), format!("{} ({})", e.target, e.url)),
            ("scenario".into(), e.scenario.clone()),
            ("users".into(), e.users.to_string()),
            ("seats per event".into(), e.seats.to_string()),
            (
                "duration".into(),
                format!(
                    "{:.1} s (asked {} s)",
                    e.duration_ms as f64 / 1000.0,
                    e.run_time_s
                ),
            ),
            ("load seed".into(), e.seed.to_string()),
            ("started".into(), e.started_at.clone()),
            ("load machine(s)".into(), e.hostname.clone()),
            ("load processes".into(), e.load_processes.to_string()),
            (
                "fault plan".into(),
                e.fault_plan.clone().unwrap_or_else(|| "none".into()),
            ),
            ("run id".into(), e.run_id.clone()),
        ]);
    }
    for s in &inputs.sims {
        let r = &s.results;
        rows.push((
            format!(
                "simulation ({})",
                if r.zoo.is_empty() { "sweep" } else { "bug zoo" }
            ),
            format!(
                "{} scenario, {} users, {} seats, plans {}, seeds {}",
                r.scenario,
                r.users,
                r.seats,
                r.plans.join(", "),
                seed_range(&r.seeds)
            ),
        ));
    }
    rows.push((
        "report machine".into(),
        format!(
            "{} cores, {} {}",
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            std::env::consts::OS,
            std::env::consts::ARCH
        ),
    ));
    let slo = inputs
        .load
        .as_ref()
        .map(|l| toml::to_string(&l.summary.slo).unwrap_or_else(|e| format!("# cannot show: {e}")));
    json!({
        "rows": rows.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "slo": slo,
    })
}

/// A run's name on a chart axis: `20261122T110000Z` → `11-22 11:00`.
fn short_label(label: &str) -> String {
    let b = label.as_bytes();
    if label.len() >= 13 && b[8] == b'T' && b[..8].iter().all(u8::is_ascii_digit) {
        format!(
            "{}-{} {}:{}",
            &label[4..6],
            &label[6..8],
            &label[9..11],
            &label[11..13]
        )
    } else {
        label.chars().take(12).collect()
    }
}

/// "1–5" for consecutive seeds, else the list.
fn seed_range(seeds: &[u64]) -> String {
    match (seeds.first(), seeds.last()) {
        (Some(a), Some(b)) if seeds.len() as u64 == b - a + 1 => format!("{a}–{b}"),
        _ => seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}
