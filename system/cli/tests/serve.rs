//! The binary as a user runs it: `ticketing serve --embedded --port 0`
//! prints its URL, answers on it, and stops cleanly on Ctrl-C (SIGINT).

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running binary, killed if the test ends (or fails) before it exits.
struct Served(Child);

impl std::ops::Deref for Served {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Served {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `ticketing serve --embedded --port 0 --seed 7` with `env`; returns the
/// child (stdout read up to the URL line, stderr as `stderr` says) and its URL.
fn serve_embedded(env: &[(&str, &str)], stderr: Stdio) -> (Served, String) {
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
    (Served(child), url)
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
fn a_service_on_its_own_refuses_to_start_without_a_service_token() {
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(["serve", "--service", "payment"])
        .env_remove("TICKETING_INTERNAL__TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("internal.token is required"), "{err}");
    assert!(err.contains("TICKETING_INTERNAL__TOKEN"), "{err}");
}

#[test]
fn the_users_service_refuses_to_start_without_a_customer_token_secret() {
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(["serve", "--service", "users"])
        .env("TICKETING_INTERNAL__TOKEN", "a-service-token-for-this-test")
        .env_remove("TICKETING_AUTH__JWT_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth.jwt_secret is required"), "{err}");
}

#[test]
fn token_prints_a_customers_token_signed_with_the_configured_secret() {
    let secret = "a-secret-for-this-test-of-32-bytes-or-more";
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(["token", "--customer", "ann", "--ttl-s", "600"])
        .env("TICKETING_AUTH__JWT_SECRET", secret)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let key = ticketing_services::customer::CustomerKey::hs256(secret).unwrap();
    #[allow(clippy::disallowed_methods)]
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let who = ticketing_services::customer::verify(&key, token.trim(), now_ms);
    assert_eq!(who.as_deref(), Ok("ann"));
    let later = ticketing_services::customer::verify(&key, token.trim(), now_ms + 601_000);
    assert!(later.is_err(), "--ttl-s 600");
    // No secret: refused unless the embedded demo's key is asked for.
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(["token", "--customer", "ann"])
        .env_remove("TICKETING_AUTH__JWT_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--embedded"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(["token", "--customer", "ann", "--embedded"])
        .env_remove("TICKETING_AUTH__JWT_SECRET")
        .output()
        .unwrap();
    assert!(out.status.success());
    let demo =
        ticketing_services::customer::CustomerKey::hs256(ticketing_app::embedded::DEMO_JWT_SECRET)
            .unwrap();
    let token = String::from_utf8(out.stdout).unwrap();
    let who = ticketing_services::customer::verify(&demo, token.trim(), now_ms);
    assert_eq!(who.as_deref(), Ok("ann"));
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
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
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

/// Request lines and bodies the receiver got.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A minimal OTLP/HTTP receiver on loopback: answers 200 to every request
/// and keeps each body (protobuf `ExportTraceServiceRequest`) for the test.
async fn otlp_receiver(listener: tokio::net::TcpListener, bodies: Received) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        let bodies = bodies.clone();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(socket);
            // Keep-alive: requests one after another, at most 1,000.
            for _ in 0..1_000 {
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                    return;
                }
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).await.unwrap();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = header.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body).await.unwrap();
                bodies.lock().unwrap().push((request_line, body));
                reader
                    .get_mut()
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .unwrap();
            }
        });
    }
}

#[test]
fn spans_are_exported_over_otlp_with_the_answers_trace_ids() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    // Worker threads serve the receiver while this thread waits on the child.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bodies = Received::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(otlp_receiver(listener, bodies.clone()));

    let (mut child, url) = serve_embedded(
        &[
            ("RUST_LOG", "warn"),
            ("TICKETING_TRACE__OTLP_ENDPOINT", &endpoint),
        ],
        Stdio::inherit(),
    );
    let caller_trace = "0af7651916cd43dd8448eb211c80319c";
    let caller_span = "b7ad6b7169203331";
    let (refusal, hold_trace) = rt.block_on(async {
        let http = reqwest::Client::new();
        // Joined: the caller's trace, under the caller's span; refused.
        let refused = http
            .get(format!("{url}/api/events/no-such-event"))
            .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 404);
        let refusal: serde_json::Value = refused.json().await.unwrap();
        // Started here: the trace id the answer names.
        let held = http
            .post(format!("{url}/api/reservations"))
            .json(&serde_json::json!({
                "eventId": "spring-gala",
                "seatIds": ["1-1"],
                "holdSeconds": 60
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(held.status(), 201);
        let trace = held.headers()["x-trace-id"].to_str().unwrap().to_owned();
        (refusal, trace)
    });
    assert_eq!(refusal["traceId"], caller_trace);

    // SIGTERM: the binary exports what it still buffers before exiting.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());

    let bodies = bodies.lock().unwrap().clone();
    assert!(!bodies.is_empty(), "nothing exported to {endpoint}");
    let mut spans = Vec::new();
    for (request_line, body) in &bodies {
        assert!(
            request_line.starts_with("POST /v1/traces "),
            "{request_line}"
        );
        let export = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        for resource in export.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            assert!(service.contains("\"ticketing\""), "{service}");
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
    }
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let found = |trace: &str, name: &str| {
        spans
            .iter()
            .find(|s| hex(&s.trace_id) == trace && s.name == name)
            .unwrap_or_else(|| {
                let all: Vec<String> = spans
                    .iter()
                    .map(|s| format!("{} {}", hex(&s.trace_id), s.name))
                    .collect();
                panic!("no `{name}` in trace {trace}: {all:#?}")
            })
    };
    let joined = found(caller_trace, "GET /api/events/no-such-event");
    assert_eq!(hex(&joined.parent_span_id), caller_span);
    let root = found(&hold_trace, "POST /api/reservations");
    assert!(root.parent_span_id.is_empty(), "a root span");
}
