//! Benchmark of the seat stream's fan-out (not a test: it measures, it does
//! not assert). `load/bench/run.sh sse` starts `ticketing serve --embedded`
//! and runs this against it; by hand:
//!
//! ```text
//! ticketing serve --embedded --port 0        # prints both URLs
//! BENCH_URL=http://127.0.0.1:P BENCH_INTERNAL_URL=http://127.0.0.1:Q \
//!   cargo run --release -p ticketing-cli --example bench_sse
//! ```
//!
//! Opens `BENCH_STREAMS` (10,000) seat streams on one event of
//! `BENCH_SEATS` (1,000) seats, one TCP connection each, waits until every
//! stream has its snapshot, reads the server's resident memory before and
//! after (its internal `/metrics`), then makes `BENCH_CHANGES` (200) seat
//! changes at `BENCH_CHANGES_PER_S` (50) and records, for every stream and
//! change, the time from the change's request being sent to its `id:`
//! arriving. Prints change → delivery p50/p95/p99/max, deliveries missing,
//! and memory per open stream. Loopback only; every wait is bounded.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn env_num(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_url(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} is not set (see this file's header)"))
}

/// Sent time of each change, by the version it became.
type Sent = Arc<Mutex<BTreeMap<u64, Instant>>>;

/// p50, p95, p99, max of microsecond samples, in milliseconds.
fn percentiles(mut us: Vec<u64>) -> [f64; 4] {
    if us.is_empty() {
        return [0.0; 4];
    }
    us.sort_unstable();
    let at = |q: f64| us[((us.len() as f64 * q) as usize).min(us.len() - 1)] as f64 / 1000.0;
    [
        at(0.50),
        at(0.95),
        at(0.99),
        *us.last().unwrap() as f64 / 1000.0,
    ]
}

async fn rss_mib(http: &reqwest::Client, internal: &str) -> f64 {
    let text = http
        .get(format!("{internal}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    ticketing_testkit::prometheus_sample(&text, "process_resident_memory_bytes", &[])
        / (1024.0 * 1024.0)
}

/// One stream: connects, reads until `stop` (or `until`), records each
/// change's delay from its sending.
async fn stream(
    addr: String,
    event: String,
    sent: Sent,
    ready: Arc<tokio::sync::Semaphore>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    until: Instant,
) -> Vec<u64> {
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "GET /api/events/{event}/seats/stream HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut lines = BufReader::with_capacity(64 * 1024, s).lines();
    let mut got = Vec::new();
    let mut snapshot = false;
    let deadline = tokio::time::sleep_until(until.into());
    tokio::pin!(deadline);
    loop {
        let line = tokio::select! {
            _ = stop.changed() => break,
            _ = &mut deadline => break,
            l = lines.next_line() => match l {
                Ok(Some(l)) => l,
                _ => break,
            },
        };
        let Some(id) = line
            .strip_prefix("id:")
            .and_then(|v| v.trim().parse::<u64>().ok())
        else {
            continue;
        };
        if !snapshot {
            snapshot = true;
            ready.add_permits(1);
            continue;
        }
        if let Some(at) = sent.lock().unwrap().get(&id) {
            got.push(at.elapsed().as_micros() as u64);
        }
    }
    got
}

#[tokio::main]
async fn main() {
    let url = env_url("BENCH_URL");
    let internal = env_url("BENCH_INTERNAL_URL");
    let streams = env_num("BENCH_STREAMS", 10_000);
    let seats = env_num("BENCH_SEATS", 1_000);
    let changes = env_num("BENCH_CHANGES", 200);
    let per_s = env_num("BENCH_CHANGES_PER_S", 50).max(1);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let event = format!("bench-sse-{}", std::process::id());
    let cols = 50.min(seats);
    let created = http
        .post(format!("{internal}/internal/events"))
        .json(&serde_json::json!({"eventId": event, "title": "SSE bench",
            "startsAt": "2027-01-01T20:00:00Z", "rows": seats / cols, "cols": cols}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let before = rss_mib(&http, &internal).await;

    let addr = url.trim_start_matches("http://").to_owned();
    let sent: Sent = Arc::default();
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    let until =
        Instant::now() + Duration::from_secs(120) + Duration::from_secs((changes / per_s) as u64);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let opened = Instant::now();
    for _ in 0..streams {
        let (a, e, s, r) = (addr.clone(), event.clone(), sent.clone(), ready.clone());
        tasks.spawn(stream(a, e, s, r, stop_rx.clone(), until));
    }
    let all = ready.acquire_many(streams as u32);
    let _all = tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("every stream got its snapshot within 120 s")
        .unwrap();
    let open_s = opened.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_mib(&http, &internal).await;
    println!(
        "{streams} streams on one {seats}-seat event open (snapshots received) in {open_s:.1} s; server RSS {before:.1} -> {after:.1} MiB: {:.1} KiB per open stream",
        (after - before) * 1024.0 / streams as f64
    );

    // Changes: hold one seat per change; its version is the change's id.
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_s as f64));
    for i in 0..changes.min(seats) {
        tick.tick().await;
        let seat = format!("{}-{}", 1 + i / cols, 1 + i % cols);
        let version = i as u64 + 1;
        sent.lock().unwrap().insert(version, Instant::now());
        let r = http
            .post(format!("{url}/api/reservations"))
            .json(&serde_json::json!({"eventId": event, "seatIds": [seat], "holdSeconds": 600}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "hold {seat}");
    }
    // Let the last changes arrive, then end every stream.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = stop_tx.send(true);
    let mut delays = Vec::new();
    while let Some(r) = tasks.join_next().await {
        delays.extend(r.unwrap());
    }
    let made = changes.min(seats);
    let expected = streams * made;
    let [p50, p95, p99, max] = percentiles(delays.clone());
    println!(
        "{made} changes at {per_s}/s: {} deliveries of {expected} ({} missing); change -> delivery p50 {p50:.1} ms  p95 {p95:.1} ms  p99 {p99:.1} ms  max {max:.1} ms",
        delays.len(),
        expected.saturating_sub(delays.len())
    );
}
