//! The fixed matrix `cargo test` runs: every plan on fixed seeds with the
//! determinism check, and every bug in the zoo caught within its stated
//! seeds of its named plan. Each seed runs in a process of its own (as the
//! sweep does), through the real command line.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use ticketing_sim::results::SweepResults;
use ticketing_sim::zoo;

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ticketing-sim"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ticketing-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn every_plan_passes_on_fixed_seeds_and_replays_exactly() {
    let json = tmp("matrix.json");
    let out = sim()
        .args([
            "--plan",
            "all",
            "--seeds",
            "2",
            "--check-determinism",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("determinism: every seed gave the same trace hash twice"),
        "{stdout}"
    );
    let doc = SweepResults::read(&json).unwrap();
    assert!(doc.passed());
    assert_eq!(
        doc.runs.len(),
        ticketing_faults::plan_names_for(false).len() * 2
    );
    assert_eq!(doc.run_count, doc.runs.len() * 2, "each seed ran twice");
    for r in &doc.runs {
        assert!(r.passed, "{} seed {}: {:?}", r.plan, r.seed, r.violations);
        assert!(r.orders > 0, "the workload placed orders");
        assert!(r.sold_seats > 0);
        assert!(r.trace_excerpt.is_empty() && r.trace_path.is_none());
        // The client history was recorded and every seat's is linearizable
        // (none cut short by the search bound on these seeds).
        let h = &r.history;
        assert!(
            h.ops > 1_000 && h.seats == 50,
            "{} seed {}: {h:?}",
            r.plan,
            r.seed
        );
        assert_eq!(h.linearizable, h.seats, "{} seed {}: {h:?}", r.plan, r.seed);
    }
    assert!(doc.nondeterministic.is_empty());
    // Each plan's declared states are in the coverage table, reached (a
    // never-reached one fails the sweep: `passed()` above).
    for name in ticketing_faults::plan_names_for(false) {
        let plan = ticketing_faults::FaultPlan::named(name, 1).unwrap();
        let declared: std::collections::BTreeSet<&str> = doc
            .coverage
            .iter()
            .filter(|r| r.plan == name && r.declared)
            .map(|r| r.state.as_str())
            .collect();
        let want = plan.reaches.iter().map(String::as_str).collect();
        assert_eq!(declared, want, "{name}: {:?}", doc.coverage);
    }
    assert!(doc.coverage.iter().any(|r| r.declared));
    // Faults must bite: under a long order↔payment partition some orders
    // are cancelled (their holds expired), unlike the fault-free baseline.
    let cancelled = |plan: &str| {
        doc.runs
            .iter()
            .filter(|r| r.plan == plan)
            .map(|r| r.orders - r.confirmed)
            .sum::<usize>()
    };
    assert!(cancelled("partition-order-payment") > 0);
}

#[test]
fn every_bug_in_the_zoo_is_caught() {
    let json = tmp("zoo.json");
    let out = sim()
        .args(["--bug", "all", "--json"])
        .arg(&json)
        .args(["--trace-dir"])
        .arg(tmp("traces"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("every bug in the zoo was caught"),
        "{stdout}"
    );
    assert!(
        stdout.contains("repro: cargo run --release -p ticketing-sim --"),
        "{stdout}"
    );
    let doc = SweepResults::read(&json).unwrap();
    assert!(doc.passed());
    assert_eq!(doc.zoo.len(), zoo::ALL.len());
    for (row, bug) in doc.zoo.iter().zip(zoo::ALL) {
        let (plan, seeds) = bug.caught_by();
        assert_eq!(row.bug, bug.name());
        assert_eq!(row.plan, plan);
        let seed = row
            .caught_by_seed
            .unwrap_or_else(|| panic!("{} not caught", bug.name()));
        assert!((1..=seeds).contains(&seed));
        // The catching run carries its evidence for the report.
        let run = doc
            .runs
            .iter()
            .find(|r| r.bug.as_deref() == Some(bug.name()) && r.seed == seed)
            .unwrap();
        assert!(!run.violations.is_empty());
        if bug.needs_waiting_room() {
            assert!(
                run.violations
                    .iter()
                    .any(|v| v.invariant == "8-waiting-room"),
                "{}: {:?}",
                bug.name(),
                run.violations
            );
        }
        if *bug == zoo::Bug::LimitCheckedBeforeHold {
            assert!(
                run.violations
                    .iter()
                    .any(|v| v.invariant == "9-customer-limits"),
                "{:?}",
                run.violations
            );
        }
        if *bug == zoo::Bug::StaleMapVersion {
            // Only the history shows it: the end state is sound.
            assert!(
                run.violations.iter().all(|v| v.invariant == "10-history"),
                "{:?}",
                run.violations
            );
            let (_, path) = run
                .witness_paths
                .first()
                .expect("a witness per violating seat");
            let witness = std::fs::read_to_string(path).unwrap();
            let lines: Vec<serde_json::Value> = witness
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert!(
                lines.len() >= 4 && lines.len() <= 40,
                "a small witness: {witness}"
            );
            assert!(lines.iter().any(|l| l["f"] == "seat-map"), "{witness}");
        }
        assert!(!run.trace_excerpt.is_empty());
        let trace = std::fs::read_to_string(run.trace_path.as_ref().unwrap()).unwrap();
        assert!(trace.contains("VIOLATION"));
        assert_eq!(row.repro.as_deref(), Some(run.repro.as_str()));
    }
}

#[test]
fn history_dir_writes_each_run_as_jepsen_style_json_lines() {
    let dir = tmp("histories");
    let out = sim()
        .args(["--plan", "none", "--seed", "1", "--history-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("history check: "), "{stdout}");
    let text = std::fs::read_to_string(dir.join("none-1.history.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |t: &str| lines.iter().filter(|l| l["type"] == t).count();
    let completions = count("ok") + count("fail") + count("info");
    assert_eq!(
        count("invoke"),
        completions,
        "each operation: an invoke and a completion"
    );
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["index"], i, "indices in order");
    }
    for f in ["hold", "seat-map", "order", "order-status", "stream"] {
        assert!(lines.iter().any(|l| l["f"] == f), "no {f} in the history");
    }
    let times: Vec<u64> = lines.iter().map(|l| l["time"].as_u64().unwrap()).collect();
    assert!(
        times.iter().all(|t| *t < 600_000_000_000),
        "ns since the run began"
    );
}

#[test]
fn a_failing_run_shrinks_to_a_plan_file_that_replays_the_failure() {
    let dir = tmp("shrink");
    let out = sim()
        .args(["--shrink", "--plan", "kafka-outage", "--seed", "1"])
        .args(["--bug", "relay-marks-before-ack", "--shrink-trials", "25"])
        .arg("--trace-dir")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("shrunk in "), "{stdout}");
    let file = dir.join("kafka-outage-1-relay-marks-before-ack.shrunk.toml");
    let plan = ticketing_faults::FaultPlan::from_file(&file).unwrap();
    let original = ticketing_faults::FaultPlan::named("kafka-outage", 1).unwrap();
    assert!(plan.steps.len() < original.steps.len(), "{plan:?}");
    assert!(plan.heal_at_ms < original.heal_at_ms, "{plan:?}");
    let users = plan.world.and_then(|w| w.users).unwrap();
    assert!(users < 80, "{plan:?}");
    // It replays: the same bug is caught by the same invariant.
    let replay = sim()
        .args([
            "--seed",
            "1",
            "--bug",
            "relay-marks-before-ack",
            "--plan-file",
        ])
        .arg(&file)
        .arg("--trace-dir")
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{text}");
    assert!(text.contains("bug relay-marks-before-ack caught"), "{text}");
    assert!(text.contains("[4-liveness]"), "{text}");
    assert!(
        text.contains(&format!("{users} users")),
        "the plan's own world: {text}"
    );
    // A run that passes has nothing to shrink.
    let pass = sim()
        .args(["--shrink", "--plan", "none", "--seed", "1"])
        .output()
        .unwrap();
    assert!(!pass.status.success());
    assert!(String::from_utf8_lossy(&pass.stderr).contains("nothing to shrink"));
}

#[test]
fn a_seed_fleet_runs_rounds_of_every_plan_and_swarm_until_its_budget() {
    let json = tmp("fleet.json");
    let out = sim()
        .args([
            "--plan",
            "all",
            "--budget-s",
            "1",
            "--seed",
            "101",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("fleet: "), "{stdout}");
    let doc = SweepResults::read(&json).unwrap();
    assert_eq!(doc.budget_s, Some(1));
    let plans = ticketing_faults::plan_names_for(false).len() + 1;
    assert!(
        doc.runs.len() >= plans,
        "at least one round: {}",
        doc.runs.len()
    );
    assert_eq!(doc.runs.len() % plans, 0, "whole rounds");
    assert!(
        doc.runs.iter().any(|r| r.plan == "swarm"),
        "swarm chaos in the fleet"
    );
    assert!(doc.runs.iter().all(|r| r.seed >= 101));
    assert!(doc.groups.is_empty() && doc.passed(), "{:?}", doc.groups);
}

#[test]
fn list_bugs_prints_one_name_per_line() {
    let out = sim().arg("--list-bugs").output().unwrap();
    assert!(out.status.success());
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    let expected: Vec<&str> = zoo::ALL.iter().map(|b| b.name()).collect();
    assert_eq!(names, expected);
}

#[test]
fn unknown_plan_or_bug_is_a_clear_error() {
    let out = sim()
        .args(["--plan", "meteor", "--seeds", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown plan"));
    let out = sim().args(["--bug", "gremlins"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--list-bugs"));
}
