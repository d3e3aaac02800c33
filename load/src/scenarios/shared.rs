//! What every scenario shares: the run's [`Shared`] state (recorder,
//! deadline, client truth), each user's [`UserState`], and [`call`], the one
//! way a scenario sends a request.
//!
//! Layer: the bottom of `scenarios`; imports `audit` (the client truth) and
//! `record`, never a scenario.

use crate::audit::ClientTruth;
use crate::record::{Outcome, Recorder, code_label};
use goose::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use ticketing_contract::{HoldView, OrderBody, OrderView, PlacedView, SeatMapView};
use ticketing_domain::{OrderStatus, SeatStatus};
use ticketing_services::customer::{CustomerKey, mint};
use tokio::time::Instant;

/// The run's state every scenario reads: recorder, deadline, and the
/// client truth the audit checks against.
#[derive(Debug)]
pub struct Shared {
    pub rec: Recorder,
    pub seed: u64,
    /// No transaction starts new work after this, and loops end by it.
    pub deadline: Instant,
    /// Per-request timeout (the SSE stream has its own).
    pub request_timeout: Duration,
    pub truth: Mutex<ClientTruth>,
    /// The open model's schedule and counts (`None`: the closed model).
    pub open: Option<std::sync::Arc<crate::open::OpenRun>>,
    /// Signs each user's customer token (`None`: anonymous requests).
    pub customers: Option<CustomerKey>,
    /// Which customer each goose user is now, and its token (minted on
    /// the customer's first request).
    tokens: Mutex<std::collections::BTreeMap<usize, Person>>,
    next_user: AtomicU64,
    /// 429 answers to honest customers and to shared (scalper) accounts.
    pub rate_limited_honest: AtomicU64,
    pub rate_limited_shared: AtomicU64,
}

impl Shared {
    pub fn new(started: Instant, seed: u64, deadline: Instant, truth: ClientTruth) -> Shared {
        Shared {
            rec: Recorder::starting_at(started.into_std()),
            seed,
            deadline,
            request_timeout: Duration::from_secs(10),
            truth: Mutex::new(truth),
            open: None,
            customers: None,
            tokens: Mutex::default(),
            next_user: AtomicU64::new(0),
            rate_limited_honest: AtomicU64::new(0),
            rate_limited_shared: AtomicU64::new(0),
        }
    }

    pub fn truth(&self) -> std::sync::MutexGuard<'_, ClientTruth> {
        self.truth.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn past_deadline(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// A fresh user's random source: the run seed and the user's number, so
    /// a run's choices repeat with its seed (timing still varies).
    pub fn user_rng(&self) -> (u64, StdRng) {
        let n = self.next_user.fetch_add(1, Ordering::Relaxed);
        let seed = self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (n, StdRng::seed_from_u64(seed))
    }

    /// The random source of an open run's iteration `index` (the same
    /// iteration makes the same choices with the same seed).
    pub fn iteration_rng(&self, index: u64) -> StdRng {
        let seed = self.seed ^ index.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03);
        StdRng::seed_from_u64(seed)
    }
}

/// Per-user session data: a number, a random source, and what the user's
/// scenario keeps between transactions (`T`: `()` for the stateless ones).
#[derive(Debug, Clone)]
pub struct UserState<T> {
    pub number: u64,
    pub rng: StdRng,
    pub own: Option<T>,
}

/// The user's state, as its scenario's on-start transaction installed it.
pub fn state<T: Clone + Send + Sync + 'static>(user: &mut GooseUser) -> &mut UserState<T> {
    user.get_session_data_mut::<UserState<T>>()
        .expect("user state installed on start, of its scenario's type")
}

/// One answer, as far as the scenarios care.
#[derive(Debug)]
pub struct Answer {
    pub status: Option<u16>,
    pub json: Option<Value>,
}

impl Answer {
    pub fn is(&self, status: u16) -> bool {
        self.status == Some(status)
    }
    /// The body as a contract type (`HoldView`, `OrderView`, …); `None`
    /// when there is none or it is not that shape.
    pub fn view<T: DeserializeOwned>(&self) -> Option<T> {
        T::deserialize(self.json.as_ref()?).ok()
    }

    /// A hold's expiry as wall-clock ms (never, if it cannot be read: the
    /// audit then treats the hold as live, erring towards no false alarm).
    pub fn expires_at_ms(&self) -> u64 {
        self.view::<HoldView>()
            .map_or(u64::MAX, |h| h.expires_at_ms)
    }
}

/// A request as the scenarios describe it.
#[derive(Debug)]
pub struct Req<'a> {
    /// The per-endpoint name, a path template such as `GET /api/orders/{id}`.
    pub name: &'a str,
    pub method: GooseMethod,
    pub path: &'a str,
    pub body: Option<&'a Value>,
    pub headers: &'a [(&'a str, &'a str)],
    /// Statuses that are expected refusals here (not errors).
    pub expected: &'a [u16],
}

impl<'a> Req<'a> {
    pub fn get(name: &'a str, path: &'a str) -> Req<'a> {
        Req {
            name,
            method: GooseMethod::Get,
            path,
            body: None,
            headers: &[],
            expected: &[],
        }
    }
    pub fn post(name: &'a str, path: &'a str, body: &'a Value) -> Req<'a> {
        Req {
            name,
            method: GooseMethod::Post,
            path,
            body: Some(body),
            headers: &[],
            expected: &[],
        }
    }
}

/// A contract request body as the JSON a [`Req`] carries. The contract's
/// bodies are structs of text and numbers, which always serialize.
pub fn body<T: serde::Serialize>(b: &T) -> Value {
    serde_json::to_value(b).expect("a contract body serializes")
}

/// Sends one request through goose and records it.
pub async fn call(
    user: &mut GooseUser,
    ctx: &Shared,
    req: Req<'_>,
) -> Result<Answer, Box<TransactionError>> {
    let mut builder = user
        .get_request_builder(&req.method, req.path)?
        .timeout(ctx.request_timeout);
    if let Some(body) = req.body {
        builder = builder.json(body);
    }
    for (k, v) in req.headers {
        builder = builder.header(*k, *v);
    }
    if let Some(key) = &ctx.customers {
        builder = builder.bearer_auth(customer_token(ctx, key, user));
    }
    let request = GooseRequest::builder()
        .method(req.method)
        .path(req.path)
        .name(req.name)
        .set_request_builder(builder)
        .build();
    let mut goose = user.request(request).await?;
    if goose.request.status_code == 429 {
        let counter = if ctx.shared_account(user) {
            &ctx.rate_limited_shared
        } else {
            &ctx.rate_limited_honest
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    // Open model: the first request of an iteration is charged the wait for
    // a free user since its scheduled start (no correction applies after).
    let (lag_us, cadence_us) = match &ctx.open {
        Some(o) => (o.take_lag_us(user.weighted_users_index), 0),
        None => (0, goose.request.user_cadence.saturating_mul(1000)),
    };
    let latency_us = goose.request.response_time_micros().saturating_add(lag_us);
    let (status, json, outcome, label) = match goose.response {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let json: Option<Value> = match resp.bytes().await {
                Ok(b) => serde_json::from_slice(&b).ok(),
                Err(_) => None,
            };
            let outcome = if (200..300).contains(&status) {
                Outcome::Ok
            } else if req.expected.contains(&status) {
                Outcome::Expected
            } else {
                Outcome::Error
            };
            let api_code = if status >= 400 {
                json.as_ref()
                    .and_then(|j| j.get("code"))
                    .and_then(|c| c.as_str())
                    .map(str::to_owned)
            } else {
                None
            };
            (
                Some(status),
                json,
                outcome,
                code_label(Some(status), api_code.as_deref(), None),
            )
        }
        Err(e) => {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "other"
            };
            (
                None,
                None,
                Outcome::Error,
                code_label(None, None, Some(kind)),
            )
        }
    };
    if outcome == Outcome::Expected {
        // Goose counts non-2xx as failures; this refusal is part of the contract.
        user.set_success(&mut goose.request)?;
    }
    ctx.rec
        .record(req.name, latency_us, cadence_us, outcome, label);
    Ok(Answer { status, json })
}

/// The customer a goose user is now: its `generation`-th (of this run's
/// seed and the user's index), or a shared `account` (a scalper's, run by
/// several users at once), and that customer's token once minted.
#[derive(Debug, Default)]
struct Person {
    generation: u64,
    account: Option<String>,
    /// The open model's arrival this user acts for (its own customer,
    /// whichever goose user runs its steps: the queue's admission names
    /// the customer who joined).
    arrival: Option<u64>,
    token: Option<String>,
}

/// The goose user becomes a new customer: the next purchase, or the open
/// model's next arrival, is someone else's (the per-customer limits count
/// every seat a customer ever bought on an event).
pub fn new_customer(ctx: &Shared, user: &GooseUser) {
    let mut tokens = ctx.tokens.lock().unwrap_or_else(|e| e.into_inner());
    let p = tokens.entry(user.weighted_users_index).or_default();
    p.generation += 1;
    p.account = None;
    p.arrival = None;
    p.token = None;
}

/// The goose user acts for the customer of open-model arrival `arrival`
/// (one customer per arrival, not shared) until its next [`new_customer`].
pub fn act_as_arrival(ctx: &Shared, user: &GooseUser, arrival: u64) {
    let mut tokens = ctx.tokens.lock().unwrap_or_else(|e| e.into_inner());
    let p = tokens.entry(user.weighted_users_index).or_default();
    p.account = None;
    p.arrival = Some(arrival);
    p.token = None;
}

/// The goose user acts for shared account `account` until its next
/// [`new_customer`] (several users may act for one account at once).
pub fn act_for(ctx: &Shared, user: &GooseUser, account: String) {
    let mut tokens = ctx.tokens.lock().unwrap_or_else(|e| e.into_inner());
    let p = tokens.entry(user.weighted_users_index).or_default();
    p.account = Some(account);
    p.arrival = None;
    p.token = None;
}

impl Shared {
    /// The customer the goose user acts for (`None`: anonymous requests).
    pub fn customer_of(&self, user: &GooseUser) -> Option<String> {
        self.customers.as_ref()?;
        let index = user.weighted_users_index;
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let p = tokens.entry(index).or_default();
        Some(customer_name(self.seed, index, p))
    }

    /// Whether the goose user acts for a shared account now.
    fn shared_account(&self, user: &GooseUser) -> bool {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(&user.weighted_users_index)
            .is_some_and(|p| p.account.is_some())
    }

    /// Records what the customer history keeps, when the run keeps one.
    pub fn history(&self, f: impl FnOnce(&mut crate::customers::CustomerHistory)) {
        if let Some(h) = self.truth().customers.as_mut() {
            f(h);
        }
    }
}

fn customer_name(seed: u64, index: usize, p: &Person) -> String {
    match (&p.account, p.arrival) {
        (Some(a), _) => a.clone(),
        (None, Some(n)) => format!("load-{seed:x}-arrival-{n}"),
        (None, None) => format!("load-{seed:x}-{index}-{}", p.generation),
    }
}

/// The token of the customer a goose user is now, so its holds and orders
/// are its own. Minted once per customer and user (signing on every
/// request cost a debug build real CPU).
fn customer_token(ctx: &Shared, key: &CustomerKey, user: &GooseUser) -> String {
    let index = user.weighted_users_index;
    let mut tokens = ctx.tokens.lock().unwrap_or_else(|e| e.into_inner());
    let p = tokens.entry(index).or_default();
    if p.token.is_none() {
        let customer = customer_name(ctx.seed, index, p);
        let minted = mint(
            key,
            &customer,
            crate::client::wall_ms(),
            crate::client::TOKEN_TTL_MS,
        );
        p.token = Some(minted.token);
    }
    p.token.clone().unwrap_or_default()
}

/// The ids of a seat map's AVAILABLE seats (empty if the body is not one).
pub fn available_seats(map: &SeatMapView) -> Vec<&str> {
    map.seats
        .iter()
        .filter(|s| s.status == SeatStatus::Available)
        .map(|s| s.seat_id.as_str())
        .collect()
}

/// Sleeps `d`, or until the deadline if that comes first.
pub async fn pause(ctx: &Shared, d: Duration) {
    let until = (Instant::now() + d).min(ctx.deadline);
    tokio::time::sleep_until(until).await;
}

/// A random hex token (Idempotency-Keys): 128 bits from the user's RNG.
pub fn token(rng: &mut StdRng) -> String {
    format!("{:016x}{:016x}", rng.random::<u64>(), rng.random::<u64>())
}

/// First delay between order polls; each next one is half as long again,
/// up to [`POLL_MS_MAX`] (a page backs off rather than hammering a busy
/// site: 100, 150, 225, 337, … ms).
pub const POLL_MS: u64 = 100;
pub const POLL_MS_MAX: u64 = 1_000;

/// Places an order for `hold_id` with Idempotency-Key `key`; its id, or
/// `None` when refused (a hold that expired or was pinned meanwhile: the
/// contract's 409/410, expected) or failed (recorded).
pub async fn place_order(
    user: &mut GooseUser,
    ctx: &Shared,
    hold_id: &str,
    key: &str,
) -> Result<Option<String>, Box<TransactionError>> {
    place_order_expecting(user, ctx, hold_id, key, &[409, 410]).await
}

/// [`place_order`] with `expected` as the refusals that are no error (a
/// scalper bot also expects 429).
pub async fn place_order_expecting(
    user: &mut GooseUser,
    ctx: &Shared,
    hold_id: &str,
    key: &str,
    expected: &[u16],
) -> Result<Option<String>, Box<TransactionError>> {
    let body = body(&OrderBody {
        hold_id: hold_id.to_owned(),
    });
    let headers = [("Idempotency-Key", key)];
    let req = Req {
        name: "POST /api/orders",
        method: GooseMethod::Post,
        path: "/api/orders",
        body: Some(&body),
        headers: &headers,
        expected,
    };
    let a = call(user, ctx, req).await?;
    Ok(a.view::<PlacedView>().map(|v| v.order_id.to_string()))
}

/// How long to poll an order placed at `placed`: `timeout`, and never more
/// than 10 s past the run's deadline.
pub fn poll_until(ctx: &Shared, placed: Instant, timeout: Duration) -> Instant {
    (placed + timeout).min(ctx.deadline + Duration::from_secs(10))
}

/// Polls an order, backing off from [`POLL_MS`], until it is terminal or `until`.
pub async fn poll_order(
    user: &mut GooseUser,
    ctx: &Shared,
    order_id: &str,
    until: Instant,
) -> Result<Option<OrderStatus>, Box<TransactionError>> {
    let path = format!("/api/orders/{order_id}");
    let mut wait_ms = POLL_MS;
    // Bounded by `until`.
    loop {
        let a = call(user, ctx, Req::get("GET /api/orders/{id}", &path)).await?;
        match a.view::<OrderView>() {
            Some(o) if o.status.is_terminal() => return Ok(Some(o.status)),
            _ => {}
        }
        if Instant::now() >= until {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        wait_ms = (wait_ms * 3 / 2).min(POLL_MS_MAX);
    }
}
