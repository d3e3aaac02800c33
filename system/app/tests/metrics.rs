//! Prometheus metrics on the embedded internal listener (`/metrics`): what
//! a hold, a purchase and a seat stream add, by route template; and the
//! public port does not serve them.
//!
//! Figures are compared before and after, and the recorder is global to the
//! process: so these tests have their own binary (the API tests would add
//! their holds and orders to the counts under `cargo test`) and take
//! [`SERIAL`] so that they do not count each other's requests either.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

// The API tests' helpers; this binary uses only some of them.
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use helpers::*;
use reqwest::StatusCode;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

/// One metrics test at a time in this process.
static SERIAL: Mutex<()> = Mutex::const_new(());

async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}

async fn scrape(app: &TestApp) -> String {
    let r = reqwest::get(format!("{}/metrics", app.embedded().internal_url()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    r.text().await.unwrap()
}

use ticketing_testkit::prometheus_sample as sample;

/// Scrapes until `settled` accepts the text; fails with its last complaint
/// after `WAIT_LIMIT`.
async fn scrape_until(app: &TestApp, settled: impl Fn(&str) -> Result<(), String>) {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        let complaint = match settled(&scrape(app).await) {
            Ok(()) => return,
            Err(c) => c,
        };
        assert!(tokio::time::Instant::now() < deadline, "{complaint}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn holds_count_won_and_lost_and_requests_by_route_template() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let before = scrape(&app).await;
    app.hold_ok("spring-gala", &["4-4"]).await;
    let lost = app.hold("spring-gala", &["4-4", "4-5"], 60).await;
    assert_eq!(lost.status(), StatusCode::CONFLICT);
    let after = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert_eq!(delta("holds_total", &[("outcome", "won")]), 1.0);
    assert_eq!(delta("holds_total", &[("outcome", "lost")]), 1.0);
    let route = [("route", "/api/reservations"), ("method", "POST")];
    assert_eq!(
        delta(
            "http_requests_total",
            &[route[0], route[1], ("status", "201")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "http_requests_total",
            &[route[0], route[1], ("status", "409")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "http_request_duration_seconds_count",
            &[route[0], route[1], ("status", "201")]
        ),
        1.0
    );
    // Buckets carry the SLO's 300 ms boundary.
    assert!(after.contains("http_request_duration_seconds_bucket{"));
    assert!(after.contains("le=\"0.3\""));
    // Seat maps are counted by template, not by event id.
    app.seat_map("jazz-night").await;
    let again = scrape(&app).await;
    assert!(
        sample(
            &again,
            "http_requests_total",
            &[("route", "/api/events/{event_id}/seats")]
        ) >= 1.0
    );
    assert!(!again.contains("jazz-night"));
    // Not on the public port.
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn a_purchase_counts_its_saga_payments_messages_and_outbox() {
    let _serial = serial().await;
    // The command path: its saga messages are what this test counts.
    let app = spawn_app_with(|s| s.saga.confirm_over_http = false).await;
    let before = scrape(&app).await;
    let hold = app.hold_ok("comedy-hour", &["2-2"]).await;
    let order = app.order_ok(&hold, "metrics-1").await;
    assert_eq!(app.wait_terminal(&order).await["status"], "CONFIRMED");
    let after = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert_eq!(
        delta("orders_finished_total", &[("status", "CONFIRMED")]),
        1.0
    );
    // The gateway counts calls, and the order service may call it more than
    // once for one order (a retry after a slow answer on a loaded machine is
    // answered from the gateway's idempotency record): at least one call of
    // each, and every one with the same good outcome.
    let calls = |operation: &str| {
        let all = delta("payments_total", &[("operation", operation)]);
        assert!(all >= 1.0, "no {operation} call counted");
        all
    };
    assert_eq!(
        delta(
            "payments_total",
            &[("operation", "authorize"), ("result", "AUTHORIZED")]
        ),
        calls("authorize")
    );
    assert_eq!(
        delta(
            "payments_total",
            &[("operation", "capture"), ("result", "CAPTURED")]
        ),
        calls("capture")
    );
    assert_eq!(delta("payments_total", &[("operation", "void")]), 0.0);
    // OrderPlaced, ConfirmSeats, SeatsConfirmed at least: all handled.
    assert!(delta("bus_messages_total", &[("result", "handled")]) >= 3.0);
    assert_eq!(delta("bus_messages_total", &[("result", "failed")]), 0.0);
    assert!(delta("outbox_published_total", &[]) >= 2.0);
    // Both consumers report their lag; settled, nothing is left uncommitted.
    for (topic, group) in [
        ("order-saga", "order-saga"),
        ("reservation-commands", "reservation"),
    ] {
        scrape_until(&app, |text| {
            let reported = text.lines().any(|l| {
                l.starts_with("bus_consumer_lag{")
                    && l.contains(&format!("topic=\"{topic}\""))
                    && l.contains(&format!("group=\"{group}\""))
            });
            let lag = sample(
                text,
                "bus_consumer_lag",
                &[("topic", topic), ("group", group)],
            );
            (reported && lag == 0.0)
                .then_some(())
                .ok_or_else(|| format!("{topic}/{group}: reported {reported}, lag {lag}"))
        })
        .await;
    }
    app.stop().await;
}

#[tokio::test]
async fn open_seat_streams_are_counted_while_open() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let before = sample(&scrape(&app).await, "sse_subscribers", &[]);
    let stream = app
        .http
        .get(app.url("/api/events/spring-gala/seats/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let open = sample(&scrape(&app).await, "sse_subscribers", &[]);
    assert_eq!(open, before + 1.0);
    drop(stream);
    // The server notices the closed connection on its next write (heartbeat
    // or change); a hold makes a change.
    app.hold_ok("spring-gala", &["9-9"]).await;
    scrape_until(&app, |text| {
        let now = sample(text, "sse_subscribers", &[]);
        (now == before)
            .then_some(())
            .ok_or_else(|| format!("stream still counted: {now}"))
    })
    .await;
    app.stop().await;
}

/// The `http_*` series in a scrape (one line per label set).
fn http_series(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("http_request"))
        .count()
}

#[tokio::test]
async fn made_up_methods_and_paths_add_no_series() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let send = |method: String, path: String| {
        let http = http.clone();
        let url = app.url(&path);
        async move {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            http.request(m, url).send().await.unwrap().status()
        }
    };
    // Each kind of junk once: an unknown method on a route, on no route, and
    // a standard method on no route. These may add their first series.
    let warm = [
        send("JUNK".into(), "/api/events".into()).await,
        send("JUNK".into(), "/api/nowhere".into()).await,
        send("GET".into(), "/api/nowhere".into()).await,
    ];
    assert!(warm.iter().all(|s| s.is_client_error()), "{warm:?}");
    // A scrape is a request too: the first one adds its own series.
    scrape(&app).await;
    let before = http_series(&scrape(&app).await);
    // 10,000 distinct methods and paths (some methods 10 KB long), 50 at a time.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10_000u32 {
        let method = if i % 500 == 0 {
            format!("M{i}{}", "Q".repeat(10_000))
        } else {
            format!("M{i}")
        };
        let path = match i % 3 {
            0 => "/api/events".to_owned(),
            _ => format!("/api/nowhere-{i}"),
        };
        tasks.spawn(send(method, path));
        if tasks.len() >= 50 {
            tasks.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(r) = tasks.join_next().await {
        assert!(r.unwrap().is_client_error());
    }
    let text = scrape(&app).await;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("http_requests_total"))
        .collect();
    assert_eq!(http_series(&text), before, "series grew: {lines:#?}");
    let junk = sample(
        &text,
        "http_requests_total",
        &[
            ("route", "unmatched"),
            ("method", "OTHER"),
            ("status", "404"),
        ],
    );
    assert!(
        junk >= 6_666.0,
        "junk counted under OTHER/unmatched: {junk}"
    );
}

#[tokio::test]
async fn the_process_runtime_and_open_connections_are_read_at_each_scrape() {
    let _serial = serial().await;
    let app = spawn_app().await;
    let text = scrape(&app).await;
    assert!(sample(&text, "process_resident_memory_bytes", &[]) > 1_048_576.0);
    assert!(sample(&text, "process_open_fds", &[]) > 2.0);
    assert!(sample(&text, "process_threads", &[]) >= 1.0);
    assert!(sample(&text, "runtime_alive_tasks", &[]) >= 1.0);
    let conns = |t: &str| sample(t, "http_open_connections", &[]);
    let fds = |t: &str| sample(t, "process_open_fds", &[]);
    let (conns_before, fds_before) = (conns(&text), fds(&text));

    // Five idle connections to the public port: counted while open (and the
    // process holds a descriptor for each end, both ends being in this test).
    let addr = app.url("").trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    scrape_until(&app, |t| {
        (conns(t) >= conns_before + 5.0 && fds(t) >= fds_before + 10.0)
            .then_some(())
            .ok_or_else(|| format!("connections {} fds {}", conns(t), fds(t)))
    })
    .await;
    drop(idle);
    scrape_until(&app, |t| {
        (conns(t) <= conns_before)
            .then_some(())
            .ok_or_else(|| format!("closed connections still counted: {}", conns(t)))
    })
    .await;
    app.stop().await;
}

/// A visitor admitted from the waiting room adds a join, an admission and
/// one wait observation.
#[tokio::test]
async fn an_admission_counts_its_join_and_its_wait() {
    let _serial = serial().await;
    let app = spawn_app_with(|s| s.queue.admit_interval_ms = 10).await;
    let before = scrape(&app).await;
    let r = app
        .post("/api/queue/stadium-final", serde_json::json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let waits_before = sample(&before, "queue_wait_seconds_count", &[]);
    scrape_until(&app, |text| {
        let waits = sample(text, "queue_wait_seconds_count", &[]) - waits_before;
        (waits == 1.0)
            .then_some(())
            .ok_or(format!("{waits} waits recorded"))
    })
    .await;
    let after = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert_eq!(delta("queue_joins_total", &[]), 1.0);
    assert_eq!(
        delta("queue_admitted_total", &[("event", "stadium-final")]),
        1.0
    );
    app.stop().await;
}
