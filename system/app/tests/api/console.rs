//! The operations console's backend on the internal listener: the
//! overview's figures, and harness runs — checked, one at a time, their
//! lines, verdict and report kept, stoppable — with stand-in binaries (shell
//! scripts named like the harness's) so the rules are tested, not the harness.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static FOLDER: AtomicU32 = AtomicU32::new(0);

/// A fresh folder with stand-in `ticketing-load` (the script given) and
/// `ticketing-report` (writes an index.html naming its arguments).
fn stand_ins(load_script: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ticketing-console-test-{}-{}",
        std::process::id(),
        FOLDER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    write_script(&dir.join("bin/ticketing-load"), load_script);
    write_script(
        &dir.join("bin/ticketing-report"),
        "#!/bin/sh\nmkdir -p \"$2\" && echo \"<html>report of $*</html>\" > \"$2/index.html\"\n",
    );
    dir
}

fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A failing load run: its arguments and a progress line, then the gate's verdict.
const FAILING_LOAD: &str = "#!/bin/sh\n\
    echo \"args: $*\"\n\
    echo 'load:    1.0 s  10 requests (10/s)  0 errors' >&2\n\
    while [ \"$1\" != --out ]; do shift; done\n\
    mkdir -p \"$2\" && printf 'endpoint ...\\nSLO gate: FAIL (2 of 27 checks failed)\\n' > \"$2/verdict.txt\"\n\
    exit 1\n";

async fn console_app(bin: &Path) -> TestApp {
    let bin = bin.to_path_buf();
    spawn_app_with(move |s| {
        s.console.bin_dir = Some(bin.join("bin"));
        s.console.runs_dir = Some(bin.join("runs"));
    })
    .await
}

async fn internal(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = format!("{}{path}", app.embedded().internal_url());
    let req = match method {
        "POST" => app.http.post(url).json(&body.unwrap_or(json!({}))),
        _ => app.http.get(url),
    };
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Reads the run until it is no longer running (bounded).
async fn finished(app: &TestApp, id: &str) -> Value {
    for _ in 0..500 {
        let (_, run) = internal(app, "GET", &format!("/internal/console/runs/{id}"), None).await;
        if run["state"] != "running" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("run {id} still running after 10 s");
}

#[tokio::test]
async fn the_overview_says_every_listener_is_up_and_counts_holds() {
    let dir = stand_ins(FAILING_LOAD);
    let app = console_app(&dir).await;
    assert_eq!(
        app.hold("spring-gala", &["1-1", "1-2"], 60).await.status(),
        201
    );
    let (status, o) = internal(&app, "GET", "/internal/console/overview", None).await;
    assert_eq!(status, StatusCode::OK, "{o}");
    let parts = o["parts"].as_array().unwrap();
    for name in ["gateway", "reservation", "payment", "internal"] {
        let p = parts
            .iter()
            .find(|p| p["name"].as_str().unwrap().starts_with(name))
            .unwrap();
        assert_eq!(p["status"], "up", "{p}");
    }
    assert_eq!(o["heldSeats"], 2);
    assert_eq!(o["problems"], json!([]), "{o}");
    assert_eq!(o["validTickets"], 0);
    assert_eq!(o["ledger"]["capturedCents"], 0);
    let gala = o["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventId"] == "spring-gala")
        .unwrap();
    assert_eq!(gala["availableCount"], 98);
    assert_eq!(gala["heldCount"], 2);
    assert_eq!(gala["soldCount"], 0);
    let stadium = o["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventId"] == "stadium-final")
        .unwrap();
    assert!(
        stadium["room"]["activeMax"].as_u64().unwrap() > 0,
        "{stadium}"
    );
}

#[tokio::test]
async fn a_run_is_checked_before_it_starts() {
    let dir = stand_ins(FAILING_LOAD);
    let app = console_app(&dir).await;
    for (spec, says) in [
        (
            json!({"kind": "load", "scenario": "nope", "users": 5, "durationS": 3}),
            "scenario",
        ),
        (
            json!({"kind": "load", "scenario": "mix", "users": 5, "durationS": 301}),
            "durationS",
        ),
        (
            json!({"kind": "load", "scenario": "mix", "users": 5, "arrivalRate": 5, "durationS": 3}),
            "not both",
        ),
        (json!({"kind": "sim", "plan": "../x", "seeds": 1}), "plan"),
        (json!({"kind": "sim", "plan": "none", "seeds": 11}), "seeds"),
        (
            json!({"kind": "load", "scenario": "mix", "durationS": 3, "host": "http://example.org"}),
            "host",
        ),
    ] {
        let (status, body) =
            internal(&app, "POST", "/internal/console/runs", Some(spec.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{spec} → {body}");
        assert!(
            body["message"].as_str().unwrap().contains(says),
            "{spec} → {body}"
        );
    }
    let (status, body) = internal(
        &app,
        "POST",
        "/internal/console/runs",
        Some(json!({"kind": "sim", "plan": "none", "seeds": 1})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "no ticketing-sim stand-in: {body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("ticketing-sim"),
        "{body}"
    );
    let (status, _) = internal(&app, "GET", "/internal/console/runs/run-0-0", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_finished_run_keeps_its_lines_verdict_and_report_and_aims_at_this_system() {
    let dir = stand_ins(FAILING_LOAD);
    let app = console_app(&dir).await;
    let spec = json!({"kind": "load", "scenario": "purchase", "users": 5, "durationS": 3});
    let (status, run) = internal(&app, "POST", "/internal/console/runs", Some(spec)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run = finished(&app, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert_eq!(run["exitCode"], 1);
    assert_eq!(run["verdict"], "SLO gate: FAIL (2 of 27 checks failed)");
    let lines: Vec<&str> = run["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let args = lines.iter().find(|l| l.starts_with("args: ")).unwrap();
    assert!(args.contains(&format!("--host {}", app.base)), "{args}");
    assert!(
        args.contains(&format!("--internal-url {}", app.embedded().internal_url())),
        "{args}"
    );
    assert!(
        args.contains("--scenario purchase")
            && args.contains("--users 5")
            && args.contains("--run-time 3s"),
        "{args}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("load:    1.0 s")),
        "{lines:?}"
    );
    assert_eq!(run["report"], true);
    let id = run["id"].as_str().unwrap();
    let report = app
        .http
        .get(format!(
            "{}/internal/console/runs/{id}/report",
            app.embedded().internal_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::OK);
    assert!(report.text().await.unwrap().contains("--load"));
    let (_, list) = internal(&app, "GET", "/internal/console/runs", None).await;
    assert_eq!(list[0]["id"], id);
}

#[tokio::test]
async fn one_run_at_a_time_and_a_stop_ends_it() {
    let dir = stand_ins("#!/bin/sh\necho started\nexec sleep 600\n");
    let app = console_app(&dir).await;
    let spec = json!({"kind": "load", "scenario": "mix", "users": 5, "durationS": 300});
    let (status, run) = internal(&app, "POST", "/internal/console/runs", Some(spec.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let (status, body) = internal(&app, "POST", "/internal/console/runs", Some(spec)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "RUN_IN_PROGRESS");
    let (status, _) = internal(
        &app,
        "POST",
        &format!("/internal/console/runs/{id}/stop"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let run = finished(&app, &id).await;
    assert_eq!(run["state"], "stopped", "{run}");
    assert_eq!(run["report"], false);
    let (status, body) = internal(
        &app,
        "POST",
        &format!("/internal/console/runs/{id}/stop"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "RUN_NOT_RUNNING");
}
