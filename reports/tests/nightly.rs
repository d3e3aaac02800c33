//! `ci/nightly` end to end, on the binaries the test build made (small
//! figures so it stays quick): a passing night writes its report folder,
//! `latest/` and one history line and exits 0; a night whose gate fails
//! still writes the report, then exits 1.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The folder of the workspace's debug binaries, current with the sources.
fn bin_dir() -> PathBuf {
    ticketing_testkit::workspace_bin_dir()
}

fn nightly(out_root: &Path, args: &[&str]) -> Output {
    let out = Command::new(repo().join("ci/nightly"))
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--out-root")
        .arg(out_root)
        .args(args)
        .output()
        .unwrap();
    eprintln!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The one timestamped report folder under `root`.
fn report_dir(root: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap() != "latest")
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
fn a_passing_night_writes_its_report_latest_and_history_and_exits_0() {
    let root = tempfile::tempdir().unwrap();
    // A soak of seconds, judged after a 2 s warm-up (the shipped file's
    // other limits).
    let slo = root.path().join("short-soak.toml");
    let shipped = std::fs::read_to_string(repo().join("load/slo.toml")).unwrap();
    std::fs::write(
        &slo,
        shipped.replace("warmup_ms = 120000", "warmup_ms = 2000"),
    )
    .unwrap();
    let out = nightly(
        root.path(),
        &[
            "--seeds",
            "1",
            "--no-zoo",
            "--no-mutants",
            "--users",
            "20",
            "--run-time",
            "4s",
            "--slo",
            slo.to_str().unwrap(),
            "--soak-time",
            "6s",
            "--soak-users",
            "20",
            // A small sale (100 people a second, 100 users): the debug
            // build under the test suite's load, judged by the real limits.
            "--onsale-arrivals",
            "300",
            "--onsale-seats",
            "100",
            "--onsale-window",
            "3s",
            "--onsale-users",
            "100",
            // Through the waiting room: 600 people over 2 s, ten times the
            // 30 admissions a second, for 100 seats.
            "--queued-arrivals",
            "600",
            "--queued-seats",
            "100",
            "--queued-window",
            "2s",
            "--queued-admit-per-s",
            "30",
            "--queued-poll-max",
            "2s",
            // The queued world's sweep on its widest plan only.
            "--queued-sim-plan",
            "chaos",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let dir = report_dir(root.path());
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(page.contains(r#"<h2 id="verdict-word">PASS</h2>"#));
    assert!(page.contains("<section id=\"load\">"));
    assert!(page.contains("Plan × seed"));
    // The soak ran against a system of its own, sampled, charted, judged.
    assert!(page.contains("<section id=\"soak\">"));
    assert!(page.contains("RSS growth after warm-up"));
    assert!(page.contains("open fds back to start after the run"));
    assert!(page.contains(r#"data-chart="soak-memory"><svg"#));
    assert!(page.contains("step soak exits 0"), "the soak's step row");
    // The onsale sold every seat on the open model.
    assert!(page.contains("<section id=\"onsale\">"));
    assert!(page.contains(r#"data-chart="arrivals"><svg"#));
    assert!(
        page.contains("step onsale exits 0"),
        "the onsale's step row"
    );
    // Its scalper bots (the nightly's default 2 %) and their gate rows.
    assert!(page.contains(r#"<p id="onsale-scalpers">"#));
    assert!(page.contains("429s only to abusers"));
    // The queued world's sweep beside the small one, a row each.
    assert!(page.contains("· queued"), "the queued world's rows");
    assert!(page.contains("step sim-queued exits 0"));
    // The onsale through the waiting room: its figures, charts and rows.
    assert!(page.contains("<section id=\"queued-onsale\">"));
    assert!(page.contains(r#"data-chart="waiting-room"><svg"#));
    assert!(page.contains(r#"data-chart="shop-phase"><svg"#));
    assert!(page.contains("admitted out of order"));
    assert!(page.contains("step queued-onsale exits 0"));
    for f in [
        "sim.json",
        "sim-queued.json",
        "queued-onsale/summary.json",
        "load/summary.json",
        "load/goose-report.html",
        "soak/load/summary.json",
        "soak/serve.log",
        "onsale/summary.json",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }
    let latest = std::fs::read_to_string(root.path().join("latest/index.html")).unwrap();
    assert_eq!(latest, page);
    let history = std::fs::read_to_string(root.path().join("history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 1);
    assert!(history.contains("\"passed\":true"));
}

#[test]
fn a_failing_gate_still_writes_the_report_then_exits_1() {
    let root = tempfile::tempdir().unwrap();
    let slo = root.path().join("impossible.toml");
    std::fs::write(&slo, "[latency]\np95_ms_max = 0.001\n").unwrap();
    let out = nightly(
        root.path(),
        &[
            "--no-sim",
            "--no-soak",
            "--no-onsale",
            "--no-queued-onsale",
            "--no-mutants",
            "--users",
            "10",
            "--run-time",
            "3s",
            "--slo",
            slo.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let page = std::fs::read_to_string(report_dir(root.path()).join("index.html")).unwrap();
    assert!(page.contains(r#"<h2 id="verdict-word">FAIL</h2>"#));
    assert!(page.contains("step load exits 0"));
    assert!(
        page.contains("p95_ms_max = 0.001"),
        "the SLO file the gate read"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ci/nightly: FAIL"));
    // Bad arguments are refused before anything runs.
    let bad = nightly(root.path(), &["--seeds", "zero"]);
    assert_eq!(bad.status.code(), Some(2));
    let bad = nightly(root.path(), &["--host", "http://127.0.0.1:9"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--host needs --internal-url"));
}

#[test]
fn the_github_workflows_run_commands_that_exist() {
    let read = |p: &str| std::fs::read_to_string(repo().join(p)).unwrap();
    let ci = read(".github/workflows/ci.yml");
    let nightly = read(".github/workflows/nightly.yml");
    assert!(ci.contains("run: ci/test"));
    assert!(ci.contains("cargo clippy --workspace --all-targets --locked -- -D warnings"));
    assert!(nightly.contains("ci/nightly --seeds"));
    // The artifact and the history are where ci/nightly writes them.
    assert!(nightly.contains("path: reports/out/latest/"));
    assert!(nightly.contains("path: reports/out/history.jsonl"));
    let script = read("ci/nightly");
    assert!(script.contains("out_root=reports/out"));
    assert!(script.contains("history=\"$out_root/history.jsonl\""));
    assert!(script.contains("\"$out_root/latest\""));
}

/// `ci/mutants` refuses what it cannot run before installing or building
/// anything; `ci/nightly` hands it the scopes and names the report's inputs.
#[test]
fn ci_mutants_refuses_bad_arguments_before_doing_anything() {
    let run = |args: &[&str]| {
        Command::new(repo().join("ci/mutants"))
            .args(args)
            .output()
            .unwrap()
    };
    let unknown = run(&["--scope", "domain,everything"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown scope 'everything'"));
    assert_eq!(run(&["--jobs", "0"]).status.code(), Some(2));
    assert_eq!(run(&["--timeout", "soon"]).status.code(), Some(2));
    for shard in ["3/3", "1", "a/b", "0/0"] {
        let bad = run(&["--shard", shard]);
        assert_eq!(bad.status.code(), Some(2), "--shard {shard}");
        assert!(String::from_utf8_lossy(&bad.stderr).contains("--shard wants K/N"));
    }
    assert_eq!(run(&["--frobnicate"]).status.code(), Some(2));
    let help = run(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("seat-store"));
    let script = std::fs::read_to_string(repo().join("ci/nightly")).unwrap();
    assert!(script.contains("ci/mutants --scope \"$mutants_scope\" --out \"$out/mutants\""));
    assert!(script.contains("--mutants-equivalent ci/mutants-equivalent.tsv"));
}

/// What `ci/mutants` asks of cargo-mutants, seen through a stand-in `cargo`
/// on the PATH that records its arguments: each scope's files and test
/// packages, its output folder, the saga scope's own timeout,
/// `--timeout` replacing it rather than adding a second one, and
/// `--shard` handed to every scope.
#[test]
fn ci_mutants_runs_each_scope_with_its_own_arguments() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let fake = dir.path().join("cargo");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n[ \"$1 $2\" = \"mutants --version\" ] && {{ echo 'cargo-mutants 27.1.0'; exit 0; }}\n[ \"$1 $2\" = \"nextest --version\" ] && exit 0\necho \"$*\" >> {}\nexit 2\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    let run = |args: &[&str]| {
        let _ = std::fs::remove_file(&log);
        let out = Command::new(repo().join("ci/mutants"))
            .args(args)
            .env("PATH", &path)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "missed mutants are the report's to judge"
        );
        std::fs::read_to_string(&log).unwrap()
    };
    let out = dir.path().join("m");
    let out_s = out.to_str().unwrap();
    let calls = run(&["--scope", "seat-store,saga", "--out", out_s]);
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 2, "{calls}");
    assert!(lines[0].contains("--file system/mem/src/seat_store.rs"));
    assert!(lines[0].contains("--test-package ticketing-mem,ticketing-conformance"));
    assert!(lines[0].contains(&format!("--output {out_s}/seat-store")));
    assert!(!lines[0].contains("--timeout"));
    assert!(lines[1].contains("--file system/services/src/order/saga.rs"));
    assert!(lines[1].contains("--test-package ticketing-services,ticketing-app"));
    assert!(
        lines[1].contains("--test-tool nextest"),
        "one process per test"
    );
    assert_eq!(lines[1].matches("--timeout").count(), 1);
    assert!(lines[1].contains("--timeout 900"));
    let calls = run(&["--scope", "saga", "--out", out_s, "--timeout", "60"]);
    assert_eq!(calls.matches("--timeout").count(), 1, "{calls}");
    assert!(calls.contains("--timeout 60"));
    assert!(!calls.contains("--shard"));
    let calls = run(&["--scope", "domain,saga", "--out", out_s, "--shard", "1/3"]);
    assert_eq!(
        calls.matches("--shard 1/3").count(),
        2,
        "every scope's slice: {calls}"
    );
}
