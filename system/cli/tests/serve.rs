//! The binary as a user runs it: `ticketing serve --embedded --port 0`
//! prints its URL, answers on it, and stops cleanly on Ctrl-C (SIGINT).

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// `ticketing serve --embedded --port 0 --seed 7` with `env`; returns the
/// child (stdout read up to the URL line, stderr as `stderr` says) and its URL.
fn serve_embedded(env: &[(&str, &str)], stderr: Stdio) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(["serve", "--embedded", "--port", "0", "--seed", "7"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("ticketing: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    (child, url)
}

#[test]
fn serve_embedded_prints_its_url_and_stops_on_ctrl_c() {
    let (mut child, url) = serve_embedded(&[("RUST_LOG", "warn")], Stdio::inherit());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body: serde_json::Value = rt.block_on(async {
        reqwest::get(format!("{url}/api/events"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(body.as_array().unwrap().len(), 4);
    assert_eq!(body[3]["seatCount"], 10_000, "the large demo event");

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "clean exit on Ctrl-C: {exit:?}");
}

#[test]
fn serve_without_embedded_explains_itself() {
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(["serve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--embedded"), "{err}");
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(["serve", "--embedded", "--port", &port])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("port in use"), "{err}");
}

#[test]
fn json_logs_carry_the_trace_id_of_the_request() {
    let (mut child, url) = serve_embedded(
        &[
            ("RUST_LOG", "warn,ticketing_services=debug"),
            ("TICKETING_LOG__FORMAT", "json"),
        ],
        Stdio::piped(),
    );
    // Drain stderr while the server runs (a full pipe would stall it).
    // A test thread outside the simulator: the determinism rules do not apply.
    let stderr = child.stderr.take().unwrap();
    #[allow(clippy::disallowed_methods)]
    let logs = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map(|l| l.unwrap())
            .collect::<Vec<String>>()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let trace_id = rt.block_on(async {
        let resp = reqwest::get(format!("{url}/api/events/no-such-event"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        resp.headers()["x-trace-id"].to_str().unwrap().to_owned()
    });
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let logs = logs.join().unwrap();
    assert!(!logs.is_empty());
    let parsed: Vec<serde_json::Value> = logs
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let line = parsed
        .iter()
        .find(|v| v["fields"]["message"] == "error response")
        .unwrap_or_else(|| panic!("no error-response line in {logs:#?}"));
    assert_eq!(line["span"]["trace_id"], trace_id.as_str());
    assert_eq!(line["fields"]["trace_id"], trace_id.as_str());
    assert_eq!(line["span"]["path"], "/api/events/no-such-event");
    assert_eq!(line["level"], "DEBUG");
}
