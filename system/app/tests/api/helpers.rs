//! `spawn_app()`: an embedded system on port 0 with a hand-driven clock and
//! fast saga timings, plus small helpers to speak contract v1.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use ticketing_app::Seeding;
use ticketing_app::embedded::Embedded;
use ticketing_app::settings::Settings;
use ticketing_mem::ManualClock;
use ticketing_services::config::PaymentFaults;

/// Start of the manual clock: 2026-01-01T00:00:00Z.
pub const T0_MS: u64 = 1_767_225_600_000;
/// Upper bound on any wait for the system to reach a state (real time).
pub const WAIT_LIMIT: Duration = Duration::from_secs(10);

pub struct TestApp {
    ticker: tokio::task::JoinHandle<()>,
    pub app: Option<Embedded>,
    pub base: String,
    pub http: Client,
    pub clock: Arc<ManualClock>,
}

/// Settings with quick background loops so tests finish fast.
pub fn test_settings() -> Settings {
    let mut s = Settings::default();
    s.gateway.port = 0;
    s.saga.watchdog_interval_ms = 20;
    s.saga.retry_backoff_ms = 20;
    s.saga.retry_backoff_max_ms = 100;
    s.saga.outbox_interval_ms = 5;
    s.saga.payment_timeout_ms = 500;
    s.reservation.sweep_interval_ms = 20;
    s.catalog.feed_poll_ms = 10;
    s.demo.large_rows = 20;
    s.demo.large_cols = 50;
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The clock stands still unless the test moves it: exact expiry times.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(tweak, false).await
}

/// The clock also moves with real time, so retry backoffs and watchdog
/// deadlines (read from the clock port) come due as in production.
pub async fn spawn_live_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(tweak, true).await
}

async fn spawn(tweak: impl FnOnce(&mut Settings), ticking: bool) -> TestApp {
    let mut settings = test_settings();
    tweak(&mut settings);
    let clock = Arc::new(ManualClock::new(T0_MS));
    let app = Embedded::build(&settings, clock.clone(), Seeding::Fixed(42))
        .await
        .expect("embedded system starts");
    let base = app.url();
    let ticker = {
        let clock = clock.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tick.tick().await;
                if ticking {
                    clock.advance_ms(10);
                }
            }
        })
    };
    TestApp {
        ticker,
        app: Some(app),
        base,
        http: Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap(),
        clock,
    }
}

impl TestApp {
    pub fn embedded(&self) -> &Embedded {
        self.app.as_ref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A customer token signed with the embedded demo's key, valid for an
    /// hour of the test's clock.
    pub fn token(&self, customer: &str) -> String {
        let key = ticketing_app::embedded::customer_key(&test_settings()).unwrap();
        let now = ticketing_domain::ports::Clock::now_ms(self.clock.as_ref());
        ticketing_services::customer::mint(&key, customer, now, 3_600_000).token
    }

    pub async fn hold(&self, event: &str, seats: &[&str], hold_seconds: u64) -> Response {
        self.post(
            "/api/reservations",
            json!({ "eventId": event, "seatIds": seats, "holdSeconds": hold_seconds }),
        )
        .await
    }

    /// A hold carrying an admission token (a protected event's).
    pub async fn hold_admitted(&self, event: &str, seats: &[&str], token: &str) -> Response {
        self.http
            .post(self.url("/api/reservations"))
            .header("x-admission-token", token)
            .json(&json!({ "eventId": event, "seatIds": seats, "holdSeconds": 60 }))
            .send()
            .await
            .unwrap()
    }

    /// `POST /internal/events` (on the internal listener).
    pub async fn create_event(&self, body: Value) -> Response {
        self.http
            .post(format!(
                "{}/internal/events",
                self.embedded().internal_url()
            ))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Holds seats and returns the hold id (panics unless 201).
    pub async fn hold_ok(&self, event: &str, seats: &[&str]) -> String {
        let r = self.hold(event, seats, 60).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        body["holdId"].as_str().unwrap().to_owned()
    }

    pub async fn order(&self, hold_id: &str, key: &str) -> Response {
        self.http
            .post(self.url("/api/orders"))
            .header("Idempotency-Key", key)
            .json(&json!({ "holdId": hold_id }))
            .send()
            .await
            .unwrap()
    }

    /// Places an order and returns its id (panics unless 202).
    pub async fn order_ok(&self, hold_id: &str, key: &str) -> String {
        let r = self.order(hold_id, key).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], "PENDING");
        body["orderId"].as_str().unwrap().to_owned()
    }

    /// Polls the order until it leaves PENDING; returns its final body.
    pub async fn wait_terminal(&self, order_id: &str) -> Value {
        let path = format!("/api/orders/{order_id}");
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let body: Value = self.get(&path).await.json().await.unwrap();
            if body["status"] != "PENDING" {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order {order_id} still PENDING: {body}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the order service's outbox has no unsent row (bounded).
    pub async fn wait_outbox_drained(&self) {
        let orders = &self.embedded().handles.orders;
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        while ticketing_domain::ports::OrderRepository::outbox_backlog(orders.as_ref())
            .await
            .unwrap()
            > 0
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the outbox never drained"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `check` holds for the seat map of `event` (bounded).
    pub async fn wait_seats(
        &self,
        event: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let map = self.seat_map(event).await;
            if check(&map) {
                return map;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn seat_map(&self, event: &str) -> Value {
        let r = self.get(&format!("/api/events/{event}/seats")).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    pub fn set_payment_faults(&self, f: PaymentFaults) {
        *self.embedded().handles.payment_faults.lock().unwrap() = f;
    }

    /// The payment ledger's entry kinds for one order, in order.
    pub async fn ledger_kinds(&self, order_id: &str) -> Vec<String> {
        use ticketing_domain::ports::PaymentRepository;
        self.embedded()
            .handles
            .payments
            .ledger()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.order_id.as_str() == order_id)
            .map(|e| {
                serde_json::to_value(e.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    pub async fn stop(mut self) {
        self.ticker.abort();
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }
}

/// Status of one seat in a seat map body.
pub fn seat_status(map: &Value, seat: &str) -> String {
    map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["seatId"] == seat)
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("seat {seat} not in map"))
}

/// Asserts a standard error body with `code`, and that the body's trace id
/// is the response header's. Returns the body.
pub async fn expect_error(resp: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status, "status");
    let header = resp
        .headers()
        .get("x-trace-id")
        .expect("trace header")
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = resp.json().await.expect("JSON error body");
    assert_eq!(body["code"], code, "code in {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    assert_eq!(
        body["traceId"],
        header.as_str(),
        "trace id in body and header"
    );
    body
}
