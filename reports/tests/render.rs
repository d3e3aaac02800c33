//! Rendering from fixture JSON (real outputs of the load harness and the
//! simulator, see fixtures/README.md): a passing night, a failing gate, a
//! failing simulation run with its repro and trace excerpt, a fault window,
//! unreadable inputs, the trend across nights, and escaping. The binary is
//! run for its exit status and files.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use ticketing_reports::history::{Entry, History};
use ticketing_reports::inputs::{Inputs, SimRun, Step};
use ticketing_reports::render::{Options, render};
use ticketing_sim::results::SweepResults;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn options(label: &str, history: Vec<Entry>) -> Options {
    Options {
        label: label.into(),
        at: "2026-11-22T03:00:00Z".into(),
        history,
        trend_runs: 30,
        out_dir: std::env::temp_dir(),
    }
}

fn passing_night() -> Inputs {
    let mut inputs = Inputs::default();
    inputs.add_load(&fixture("load-pass.json"));
    inputs.add_sim(&fixture("sim.json"));
    inputs.add_sim(&fixture("zoo.json"));
    assert!(inputs.problems.is_empty(), "{:?}", inputs.problems);
    inputs
}

/// A sweep in which one run failed: a caught zoo run with its bug label
/// removed is exactly what a regression in the system would look like.
fn failing_sweep() -> SweepResults {
    let zoo = SweepResults::read(&fixture("zoo.json")).unwrap();
    let mut sweep = SweepResults::read(&fixture("sim.json")).unwrap();
    let mut bad = zoo
        .runs
        .iter()
        .find(|r| r.bug.as_deref() == Some("unfenced-confirm") && !r.passed)
        .unwrap()
        .clone();
    bad.bug = None;
    bad.repro = bad.repro.replace(" --bug unfenced-confirm", "");
    sweep
        .runs
        .retain(|r| !(r.plan == bad.plan && r.seed == bad.seed));
    sweep.runs.push(bad);
    sweep
}

fn svg_count(html: &str) -> usize {
    html.matches("<svg").count()
}

#[test]
fn a_passing_night_says_pass_with_its_numbers_and_every_chart() {
    let page = render(&passing_night(), &options("night-1", Vec::new())).unwrap();
    assert!(page.passed);
    let html = &page.html;
    assert!(html.contains(r#"<h2 id="verdict-word">PASS</h2>"#));
    assert!(!html.contains(">FAIL<"), "no failed row on a passing night");
    // Banner rows carry the figures they judged.
    let load = page
        .banner
        .rows
        .iter()
        .find(|r| r.area == "load SLO")
        .unwrap();
    assert!(
        load.observed.contains("32 of 32 passed"),
        "{}",
        load.observed
    );
    assert!(
        page.banner
            .rows
            .iter()
            .any(|r| r.area == "bug zoo" && r.observed == "5 of 5 caught")
    );
    assert!(
        page.banner
            .rows
            .iter()
            .any(|r| r.area == "determinism" && r.passed)
    );
    // Load: timeline, latency, endpoints, codes, SSE; trend: three.
    assert_eq!(svg_count(html), 8, "charts drawn");
    assert!(html.contains("POST /api/reservations"));
    assert!(html.contains("corrected (coordinated omission)"));
    // The plan × seed matrix has every plan of the sweep.
    for plan in ticketing_faults::plan_names_for(false) {
        assert!(
            html.contains(&format!("<td>{plan}</td>")),
            "matrix row {plan}"
        );
    }
    // The zoo row names the seed that caught each bug and its repro.
    assert!(html.contains("cargo run --release -p ticketing-sim -- --plan partition-order-payment --seed 1 --bug unfenced-confirm"));
    // No violations section on a green sweep.
    assert!(!html.contains("<h3 class=\"badword\">Violations</h3>"));
    // Nothing the page needs is fetched.
    for needle in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(needle), "{needle} in a self-contained page");
    }
    // The first night has nothing to compare with.
    assert!(html.contains("nothing to compare with yet"));
}

#[test]
fn cancelled_purchases_are_shown_beside_the_sales() {
    let quiet = render(&passing_night(), &options("night-1", Vec::new())).unwrap();
    assert!(
        !quiet.html.contains("After the sale"),
        "no cancels, no line"
    );
    let mut load: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("load-pass.json")).unwrap()).unwrap();
    let p = &mut load["purchase"];
    p["cancels"] = 57.into();
    p["refunded"] = 56.into();
    p["refund_failed"] = 1.into();
    p["time_to_refunded"] = serde_json::json!({
        "count": 56, "p50_ms": 41.0, "p95_ms": 88.0, "p99_ms": 97.0, "max_ms": 99.0, "mean_ms": 45.0
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("load.json");
    std::fs::write(&path, load.to_string()).unwrap();
    let mut inputs = Inputs::default();
    inputs.add_load(&path);
    assert!(inputs.problems.is_empty(), "{:?}", inputs.problems);
    let page = render(&inputs, &options("night-1", Vec::new())).unwrap();
    assert!(
        page.html
            .contains("After the sale: 57 confirmed orders cancelled: 56 refunded,"),
        "{}",
        page.html
    );
    assert!(page.html.contains("1 refund failed"));
}

#[test]
fn a_failed_gate_is_a_red_banner_listing_the_failed_checks() {
    let mut inputs = Inputs::default();
    inputs.add_load(&fixture("load-fail.json"));
    let page = render(&inputs, &options("night-2", Vec::new())).unwrap();
    assert!(!page.passed);
    assert!(page.html.contains(r#"<h2 id="verdict-word">FAIL</h2>"#));
    assert_eq!(page.banner.failures.len(), 1);
    assert!(page.banner.failures[0].observed.contains("16 of 20 passed"));
    // The load section's table shows each failed check with its figures.
    assert!(page.html.contains(
        "<td>p95 (corrected)</td><td>overall</td><td>0.5 ms</td><td>&lt; 0.2 ms</td><td>FAIL</td>"
    ));
    // The audit itself passed: the page says so beside the failed gate.
    assert!(
        page.banner
            .rows
            .iter()
            .any(|r| r.area == "invariants" && r.passed)
    );
}

#[test]
fn a_violation_shows_its_invariant_repro_command_and_trace_excerpt() {
    let sweep = failing_sweep();
    let bad = sweep.runs.iter().find(|r| !r.passed).unwrap().clone();
    let mut inputs = Inputs::default();
    inputs.sims.push(SimRun {
        path: fixture("sim.json"),
        results: sweep,
    });
    let page = render(&inputs, &options("night-3", Vec::new())).unwrap();
    assert!(!page.passed);
    let sim = page
        .banner
        .failures
        .iter()
        .find(|r| r.area == "simulation")
        .unwrap();
    assert!(
        sim.observed.starts_with("15 of 16 runs passed"),
        "{}",
        sim.observed
    );
    let html = &page.html;
    assert!(html.contains("<h3 class=\"badword\">Violations</h3>"));
    let repro = "cargo run --release -p ticketing-sim -- --plan partition-order-payment --seed 1";
    assert!(html.contains(&format!("<code class=\"repro\">{repro}</code>")));
    let first = &bad.violations[0];
    assert!(html.contains(&format!("<code>{}</code>", first.invariant)));
    // The excerpt is there, escaped as text: its fault line and a line
    // naming the violation's order.
    let fault_line = bad
        .trace_excerpt
        .iter()
        .find(|l| l.contains(" fault "))
        .unwrap();
    assert!(
        html.contains(&fault_line.replace('"', "&quot;")),
        "{fault_line}"
    );
    let order_id = first
        .detail
        .split_whitespace()
        .find(|t| t.len() == 36)
        .unwrap();
    assert!(bad.trace_excerpt.iter().any(|l| l.contains(order_id)));
    assert!(html.contains(order_id));
    // The matrix marks the failing cell.
    assert!(html.contains("class=\"bad\" title=\"partition-order-payment seed 1:"));
}

#[test]
fn the_fault_window_is_shaded_and_reported() {
    let mut inputs = Inputs::default();
    inputs.add_load(&fixture("load-faults.json"));
    let page = render(&inputs, &options("night-4", Vec::new())).unwrap();
    let html = &page.html;
    assert!(html.contains("Fault plan <code>redis-restart</code>"));
    assert!(html.contains("Window 0.3 s – 20.0 s"));
    assert!(html.contains("kill redis"));
    assert!(html.contains("503 SERVICE_UNAVAILABLE"));
    // The timeline chart carries the shaded window and its legend.
    let timeline = html
        .split("data-chart=\"timeline\"")
        .nth(1)
        .and_then(|rest| rest.split("</figure>").next())
        .unwrap();
    assert!(timeline.contains("fault window"));
    // Without a plan there is no shading.
    let calm = render(&passing_night(), &options("n", Vec::new())).unwrap();
    assert!(!calm.html.contains("fault window"));
}

#[test]
fn unreadable_inputs_and_failed_steps_fail_the_night_but_still_render() {
    let mut inputs = passing_night();
    inputs.add_sim(Path::new("/nonexistent/sim.json"));
    inputs.steps.push(Step::parse("load=2").unwrap());
    let page = render(&inputs, &options("night-5", Vec::new())).unwrap();
    assert!(!page.passed);
    let areas: Vec<&str> = page
        .banner
        .failures
        .iter()
        .map(|r| r.area.as_str())
        .collect();
    assert_eq!(areas, ["input", "pipeline"]);
    // (minijinja escapes '/' too)
    assert!(
        page.html
            .contains("cannot read &#x2f;nonexistent&#x2f;sim.json")
    );
    assert!(page.html.contains("step load exits 0"));
    // Nothing at all is not a pass.
    let empty = render(&Inputs::default(), &options("n", Vec::new())).unwrap();
    assert!(!empty.passed);
}

#[test]
fn the_trend_marks_what_changed_since_the_previous_night() {
    let first = render(&passing_night(), &options("night-1", Vec::new())).unwrap();
    let mut inputs = passing_night();
    inputs.add_load(&fixture("load-fail.json"));
    let second = render(&inputs, &options("night-2", vec![first.entry.clone()])).unwrap();
    let html = &second.html;
    assert!(html.contains("Since the previous run (night-1)"));
    assert!(html.contains(
        "<tr class=\"worse\"><td>verdict</td><td>PASS</td><td>FAIL</td><td>PASS → FAIL</td></tr>"
    ));
    // p95 fell from the mix run's to the rush run's: shown as better.
    assert!(html.contains("<tr class=\"better\"><td>p95</td>"));
    assert!(html.contains("last 2 runs"));
}

#[test]
fn text_from_the_inputs_is_escaped() {
    let mut sweep = failing_sweep();
    for r in sweep.runs.iter_mut().filter(|r| !r.passed) {
        r.violations[0].detail = "<script>alert(1)</script>".into();
    }
    let mut inputs = Inputs::default();
    inputs.sims.push(SimRun {
        path: fixture("sim.json"),
        results: sweep,
    });
    let page = render(&inputs, &options("n", Vec::new())).unwrap();
    assert!(!page.html.contains("<script>alert(1)"));
    assert!(
        page.html
            .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
    );
}

#[test]
fn the_binary_writes_the_page_appends_the_history_and_exits_by_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.jsonl");
    let run = |out: &str, load: &str| {
        Command::new(env!("CARGO_BIN_EXE_ticketing-report"))
            .args(["--out"])
            .arg(dir.path().join(out))
            .arg("--load")
            .arg(fixture(load))
            .arg("--sim")
            .arg(fixture("sim.json"))
            .arg("--history")
            .arg(&history)
            .args(["--step", "sim=0"])
            .output()
            .unwrap()
    };
    let ok = run("20261121T030000Z", "load-pass.json");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("— PASS"));
    let bad = run("20261122T030000Z", "load-fail.json");
    assert_eq!(bad.status.code(), Some(1), "a failed gate exits 1");
    let page = std::fs::read_to_string(dir.path().join("20261122T030000Z/index.html")).unwrap();
    assert!(page.contains("Since the previous run (20261121T030000Z)"));
    let h = History::read(&history).unwrap();
    let verdicts: Vec<(&str, bool)> = h
        .entries
        .iter()
        .map(|e| (e.label.as_str(), e.passed))
        .collect();
    assert_eq!(
        verdicts,
        [("20261121T030000Z", true), ("20261122T030000Z", false)]
    );
    // A bad flag is an error (2), not a verdict.
    let err = Command::new(env!("CARGO_BIN_EXE_ticketing-report"))
        .args(["--out", "x", "--step", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(2));
}

#[test]
fn a_soak_is_charted_and_judged_and_its_growth_fails_the_night() {
    let mut inputs = passing_night();
    inputs.add_soak(&fixture("soak-pass.json"));
    assert!(inputs.problems.is_empty(), "{:?}", inputs.problems);
    let page = render(&inputs, &options("night-soak", Vec::new())).unwrap();
    assert!(page.passed);
    let soak_rows: Vec<_> = page
        .banner
        .rows
        .iter()
        .filter(|r| r.area == "soak")
        .collect();
    assert_eq!(soak_rows.len(), 4, "{soak_rows:?}");
    assert!(soak_rows.iter().all(|r| r.passed));
    let html = &page.html;
    assert!(html.contains("<section id=\"soak\">"));
    for chart in ["soak-memory", "soak-counts"] {
        let svg = html
            .split(&format!("data-chart=\"{chart}\""))
            .nth(1)
            .and_then(|rest| rest.split("</figure>").next())
            .unwrap();
        assert!(svg.contains("<svg") && svg.contains("<polyline"), "{chart}");
    }
    assert!(html.contains("warm-up (not judged)"));

    // The same soak, its memory 200 MiB higher at the end of the load:
    // judged again by the gate, the night fails on that row alone.
    let mut s = ticketing_load::summary::Summary::read(&fixture("soak-pass.json")).unwrap();
    let r = s.resources.as_mut().unwrap();
    r.during.last_mut().unwrap().rss_bytes += 200 * 1024 * 1024;
    s.verdict = Some(ticketing_load::gate::judge(&s, &s.slo));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");
    s.write(&path).unwrap();
    let mut inputs = passing_night();
    inputs.add_soak(&path);
    let page = render(&inputs, &options("night-leak", Vec::new())).unwrap();
    assert!(!page.passed);
    let failed: Vec<&str> = page
        .banner
        .failures
        .iter()
        .map(|r| r.rule.as_str())
        .collect();
    assert_eq!(failed, vec!["RSS growth after warm-up"]);
}

#[test]
fn an_onsale_shows_its_arrivals_and_a_dropped_iteration_fails_the_night() {
    let mut inputs = passing_night();
    inputs.add_onsale(&fixture("onsale-pass.json"));
    assert!(inputs.problems.is_empty(), "{:?}", inputs.problems);
    let page = render(&inputs, &options("night-onsale", Vec::new())).unwrap();
    assert!(page.passed);
    let rules: Vec<&str> = page
        .banner
        .rows
        .iter()
        .filter(|r| r.area == "onsale")
        .map(|r| r.rule.as_str())
        .collect();
    assert_eq!(
        rules,
        [
            "sold = capacity when demand exceeds it",
            "dropped iterations",
            "achieved arrival rate",
            "the onsale's SLO and audit checks"
        ]
    );
    let html = &page.html;
    assert!(html.contains("<section id=\"onsale\">"));
    let svg = html
        .split("data-chart=\"arrivals\"")
        .nth(1)
        .and_then(|rest| rest.split("</figure>").next())
        .unwrap();
    assert!(svg.contains("<polyline") && svg.contains("dropped/s"));
    assert!(html.contains("sold out in <b>3.7"));

    // The same night with a few arrivals no user could start in time:
    // judged again, it fails on that row alone.
    let mut s = ticketing_load::summary::Summary::read(&fixture("onsale-pass.json")).unwrap();
    let o = s.open.as_mut().unwrap();
    o.dropped = 3;
    o.started -= 3;
    o.achieved_pct = 100.0 * o.started as f64 / o.scheduled as f64;
    s.verdict = Some(ticketing_load::gate::judge(&s, &s.slo));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");
    s.write(&path).unwrap();
    let mut inputs = passing_night();
    inputs.add_onsale(&path);
    let page = render(&inputs, &options("night-dropped", Vec::new())).unwrap();
    let failed: Vec<&str> = page
        .banner
        .failures
        .iter()
        .map(|r| r.rule.as_str())
        .collect();
    assert_eq!(failed, vec!["dropped iterations"]);
}

/// The coverage table and its verdict row: reached declared states pass,
/// a declared state no seed reached fails the night and is named.
#[test]
fn a_declared_state_never_reached_fails_the_night() {
    use ticketing_sim::coverage::CoverageRow;
    let row = |state: &str, reached_in: u64| CoverageRow {
        plan: "kafka-outage".into(),
        state: state.into(),
        declared: true,
        reached_in,
        runs: 2,
        hits: reached_in * 3,
    };
    let night = |rows: Vec<CoverageRow>| {
        let mut sweep = SweepResults::read(&fixture("sim.json")).unwrap();
        sweep.coverage = rows;
        let mut inputs = Inputs::default();
        inputs.sims.push(SimRun {
            path: fixture("sim.json"),
            results: sweep,
        });
        render(&inputs, &options("cov", Vec::new())).unwrap()
    };
    let fine = night(vec![row("outbox-resent", 2)]);
    assert!(fine.passed);
    assert!(fine.html.contains("Coverage: the interesting states"));
    assert!(fine.html.contains("<code>outbox-resent</code>"));
    let missed = night(vec![row("outbox-resent", 2), row("breaker-opened", 0)]);
    assert!(!missed.passed);
    let failure = missed
        .banner
        .failures
        .iter()
        .find(|r| r.area == "coverage")
        .unwrap();
    assert!(
        failure.observed.contains("breaker-opened in kafka-outage"),
        "{}",
        failure.observed
    );
    assert!(missed.html.contains("NEVER REACHED"));
}

/// The history table and its verdict row: a sweep whose seat histories
/// are all linearizable passes; one violating seat outside the zoo fails
/// the night, and its witness is linked.
#[test]
fn a_seat_history_that_is_not_linearizable_fails_the_night() {
    let night = |violating: bool, history: Vec<Entry>| {
        let mut sweep = SweepResults::read(&fixture("sim.json")).unwrap();
        for r in &mut sweep.runs {
            r.history.ops = 1_000;
            r.history.seats = 50;
            r.history.linearizable = 50;
        }
        if violating {
            let r = &mut sweep.runs[0];
            r.history.linearizable = 49;
            r.passed = false;
            r.violations.push(ticketing_sim::check::Violation {
                invariant: "10-history".into(),
                detail: "seat 1-1: no order of its 12 operations explains what clients saw".into(),
            });
            r.witness_paths = vec![("1-1".into(), "traces/none-1.witness-1-1.jsonl".into())];
            r.shrunk_plan = Some("traces/none-1.shrunk.toml".into());
            sweep.groups = vec![ticketing_sim::triage::FailureGroup {
                invariant: "10-history".into(),
                signature: "seat #: no order of its # operations explains what clients saw".into(),
                runs: vec![("none".into(), 1)],
                repro: "cargo run --release -p ticketing-sim -- --plan none --seed 1".into(),
                known: false,
            }];
        }
        let mut inputs = Inputs::default();
        inputs.sims.push(SimRun {
            path: fixture("sim.json"),
            results: sweep,
        });
        render(&inputs, &options("hist", history)).unwrap()
    };
    let fine = night(false, Vec::new());
    assert!(fine.html.contains("History check: what clients saw"));
    assert!(
        !fine.banner.failures.iter().any(|r| r.area == "history"),
        "{:?}",
        fine.banner.failures
    );
    let bad = night(true, Vec::new());
    assert!(!bad.passed);
    let failure = bad
        .banner
        .failures
        .iter()
        .find(|r| r.area == "history")
        .unwrap();
    assert!(
        failure.observed.contains("1 violating"),
        "{}",
        failure.observed
    );
    assert!(
        bad.html.contains("none-1.witness-1-1.jsonl"),
        "the witness is linked"
    );
    assert!(
        bad.html.contains("none-1.shrunk.toml"),
        "the shrunk repro is linked"
    );
    assert!(!fine.html.contains("Shrunk repro"));
    assert!(bad.html.contains("Failure groups") && bad.html.contains("NEW"));
    assert!(!fine.html.contains("Failure groups"));
    // The same group on the next night is recurring, not new: the trend
    // history remembers each night's groups.
    let mut last_night = bad.entry.clone();
    last_night.label = "20261206T031700Z".into();
    let again = night(true, vec![fine.entry.clone(), last_night]);
    assert!(
        again
            .html
            .contains("recurring: 1 earlier night, first 20261206T031700Z"),
        "the group is known from the trend"
    );
    assert!(!again.html.contains(">NEW<"));
}

/// Mutation testing: a real cargo-mutants run of the domain crate (before
/// its missing tests were written: 60 of 147 judged mutants missed) fails
/// the night; the same outcomes with every missed mutant listed as
/// equivalent pass it, and the page names them with their reasons.
#[test]
fn a_mutation_score_under_ninety_percent_fails_the_night() {
    use ticketing_reports::mutants::Equivalents;
    let night = |equivalents: &Equivalents| {
        let mut inputs = passing_night();
        inputs.add_mutants(&fixture("mutants/domain"), equivalents);
        assert!(inputs.problems.is_empty(), "{:?}", inputs.problems);
        render(&inputs, &options("mut", Vec::new())).unwrap()
    };
    let weak = night(&Equivalents::default());
    assert!(!weak.passed);
    let row = weak
        .banner
        .failures
        .iter()
        .find(|r| r.area == "mutation")
        .unwrap();
    assert_eq!(
        row.observed,
        "87 of 147 caught (59.2 %), 60 missed, 0 equivalent, 18 unviable"
    );
    assert!(weak.html.contains(r#"<section id="mutation">"#));
    assert!(weak.html.contains("60 missed mutants (tests to write)"));
    assert!(
        weak.html
            .contains("replace OrderStatus::is_terminal -&gt; bool with true")
    );

    // Every missed mutant "explained" (positions changed, as after an edit).
    let text = std::fs::read_to_string(fixture("mutants/domain/outcomes.json")).unwrap();
    let outcomes: serde_json::Value = serde_json::from_str(&text).unwrap();
    let listed: String = outcomes["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["summary"] == "MissedMutant")
        .map(|o| {
            let name = o["scenario"]["Mutant"]["name"].as_str().unwrap();
            let mut parts = name.splitn(4, ':');
            let (file, change) = (parts.next().unwrap(), parts.nth(2).unwrap());
            format!("{file}:1000:1:{change}\tsame answer\n")
        })
        .collect();
    let all_explained = night(&Equivalents::parse(&listed).unwrap());
    assert!(all_explained.passed, "{:?}", all_explained.banner.failures);
    assert!(all_explained.html.contains("60 equivalent"));
    assert!(all_explained.html.contains("— same answer"));
}

/// An unreadable list of equivalent mutants is a failed input row on a
/// page that is still written (judged without the list), not a lost report.
#[test]
fn an_unreadable_equivalent_list_fails_the_night_but_the_page_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let scope = dir.path().join("domain/mutants.out");
    std::fs::create_dir_all(&scope).unwrap();
    std::fs::write(
        scope.join("outcomes.json"),
        r#"{"outcomes":[{"scenario":"Baseline","summary":"Success"},
{"scenario":{"Mutant":{"name":"src/a.rs:1:1: replace x with y","file":"src/a.rs"}},"summary":"CaughtMutant"}]}"#,
    )
    .unwrap();
    let run = |equivalents: &Path| {
        Command::new(env!("CARGO_BIN_EXE_ticketing-report"))
            .arg("--out")
            .arg(dir.path().join("out"))
            .arg("--mutants")
            .arg(dir.path().join("domain"))
            .arg("--mutants-equivalent")
            .arg(equivalents)
            .output()
            .unwrap()
    };
    let listed = dir.path().join("equivalent.tsv");
    std::fs::write(&listed, "# none\n").unwrap();
    assert_eq!(run(&listed).status.code(), Some(0), "1 of 1 caught");
    let missing = run(&dir.path().join("no-such.tsv"));
    assert_eq!(missing.status.code(), Some(1));
    let page = std::fs::read_to_string(dir.path().join("out/index.html")).unwrap();
    assert!(page.contains("equivalent mutants") && page.contains("no-such.tsv"));
    assert!(page.contains("1 of 1 caught (100.0 %)"));
}
