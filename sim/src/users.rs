//! Simulated users: turmoil clients speaking HTTP to the services through
//! the same hyper client the services use. Each user follows the purchase
//! flow in a seat rush — look, hold, order with an Idempotency-Key, poll
//! until the order is final — retrying other seats when it loses, repeating
//! an order with the same key after a timeout, and sometimes abandoning its
//! hold (some of those press "cancel" long after the hold expired). Some
//! buyers cancel their confirmed order (some twice: the same key again, or
//! a new one) and follow it to REFUNDED; their seats go back on sale while
//! other users are still hunting for seats.
//!
//! Every user first signs up and logs in at the users service (`accounts`)
//! and shows its token on every hold and order call. Scalpers share an
//! account between several processes on different hosts: each opens holds
//! two at a time, extends every live hold to the cap, and buys now and
//! then; the per-customer limits and rate limits are what stop them.
//!
//! Every answer that matters is written to the shared [`History`]: the
//! checkers hold the system to what users were told.

use crate::clock::SimClock;
use crate::net::SimConnector;
use crate::record::{Pending, Recorder, SharedLog, hold_refusal, refusal};
use http::{Method, StatusCode};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_contract::{
    CredentialsBody, ExtendBody, HoldBody, HoldView, OrderBody, OrderView, PlacedView, SessionView,
};
use ticketing_domain::ports::{RandomExt, RandomSource};
use ticketing_domain::{HoldId, OrderId, OrderStatus, SeatId, SeatStatus};
use ticketing_invariants::history::{Call, Outcome};
use ticketing_runtime::ChaChaRandom;
use ticketing_services::http::client::{HttpClient, JsonResponse, body};

/// What one user was told (the checkers' view of "client truth").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Told {
    /// Logged in as this customer (every later answer is this customer's).
    LoggedIn {
        customer: String,
    },
    Held {
        hold_id: HoldId,
        seats: Vec<SeatId>,
        /// The hold's expiry as granted (store clock, Unix ms).
        expires_at_ms: u64,
    },
    /// An extension was granted: the hold's new expiry.
    Extended {
        hold_id: HoldId,
        expires_at_ms: u64,
    },
    /// The user asked to release the hold, or to order it (from here on
    /// the hold may be gone or pinned: it is no longer certainly live).
    LetGo {
        hold_id: HoldId,
    },
    /// A hold or order call refused with this status and code (429s and
    /// the customer limits: who was stopped).
    Refused {
        status: u16,
        code: String,
    },
    OrderAccepted {
        key: String,
        order_id: OrderId,
    },
    OrderFinal {
        order_id: OrderId,
        status: OrderStatus,
        seats: Vec<SeatId>,
    },
    /// A hold was granted to a user who showed no admission (a scalper
    /// skipping the waiting room of a protected event).
    HeldWithoutAdmission {
        hold_id: HoldId,
    },
    /// The waiting room told this position (after the on-sale time).
    QueuePosition {
        position: u64,
    },
    /// The waiting room admitted this user.
    QueueAdmitted,
    /// The waiting room said the place is gone while the user kept asking.
    QueueLost,
}

impl Told {
    /// The trace's text for this answer: ids and statuses as on the wire
    /// (the line the trace hashes were first recorded with).
    pub fn trace_line(&self) -> String {
        match self {
            Told::LoggedIn { customer } => format!("LoggedIn {customer}"),
            Told::Held {
                hold_id,
                seats,
                expires_at_ms,
            } => format!(
                "Held {{ hold_id: {:?}, seats: {:?}, expires_at_ms: {expires_at_ms} }}",
                hold_id.as_str(),
                seat_names(seats)
            ),
            Told::Extended {
                hold_id,
                expires_at_ms,
            } => format!("Extended {} {expires_at_ms}", hold_id.as_str()),
            Told::LetGo { hold_id } => format!("LetGo {}", hold_id.as_str()),
            Told::Refused { status, code } => format!("Refused {status} {code}"),
            Told::OrderAccepted { key, order_id } => format!(
                "OrderAccepted {{ key: {key:?}, order_id: {:?} }}",
                order_id.as_str()
            ),
            Told::OrderFinal {
                order_id,
                status,
                seats,
            } => format!(
                "OrderFinal {{ order_id: {:?}, status: {:?}, seats: {:?} }}",
                order_id.as_str(),
                wire_name(status),
                seat_names(seats)
            ),
            Told::HeldWithoutAdmission { hold_id } => {
                format!("HeldWithoutAdmission {{ hold_id: {:?} }}", hold_id.as_str())
            }
            Told::QueuePosition { position } => format!("QueuePosition {position}"),
            Told::QueueAdmitted => "QueueAdmitted".to_owned(),
            Told::QueueLost => "QueueLost".to_owned(),
        }
    }
}

fn seat_names(seats: &[SeatId]) -> Vec<&str> {
    seats.iter().map(SeatId::as_str).collect()
}

/// A status's name on the wire (`"CONFIRMED"`).
fn wire_name<T: serde::Serialize>(status: &T) -> String {
    match serde_json::to_value(status) {
        Ok(Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// A seat map as a user reads it: each seat's id and status (the contract's
/// `SeatMapView` without rows, columns and prices, which users never look
/// at; the unknown fields are skipped).
#[derive(serde::Deserialize)]
struct MapRead {
    version: u64,
    seats: Vec<SeatRead>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeatRead {
    seat_id: SeatId,
    status: SeatStatus,
}

/// A seat-map read as the history records it (the seats moved, not copied).
fn map_outcome(m: MapRead) -> Outcome {
    Outcome::Map {
        version: m.version,
        seats: m.seats.into_iter().map(|s| (s.seat_id, s.status)).collect(),
    }
}

/// A granted hold as the history records it.
fn held(h: &HoldView) -> Outcome {
    Outcome::Held {
        hold: h.hold_id.clone(),
        seats: h.seat_ids.clone(),
        expires_ms: h.expires_at_ms,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub at_ms: u64,
    pub user: usize,
    pub told: Told,
}

/// Everything users were told, in the order they were told it.
#[derive(Debug, Default)]
pub struct History {
    pub observations: Vec<Observation>,
    pub users_done: usize,
}

pub type SharedHistory = Arc<Mutex<History>>;

/// Workload knobs.
#[derive(Debug, Clone)]
pub struct Workload {
    pub event_id: String,
    pub rows: u32,
    pub cols: u32,
    pub replicas: usize,
    pub hold_seconds: u64,
    /// Users stop starting new attempts after this much simulated time.
    pub deadline_ms: u64,
    pub max_attempts: u32,
    /// Share of users who abandon a granted hold.
    pub abandon_rate: f64,
    /// Share of abandoners who press "cancel" after the hold expired.
    pub late_cancel_rate: f64,
    /// Share of buyers who cancel their confirmed order.
    pub cancel_rate: f64,
    /// Share of those who ask to cancel a second time.
    pub cancel_twice_rate: f64,
    /// Timeout of one user request.
    pub request_timeout_ms: u64,
    /// Late arrivals are spread over this window (simulated ms).
    pub arrival_window_ms: u64,
    /// The event's waiting room (`None`: the event is not protected).
    pub queue: Option<QueueFlow>,
    /// The scalpers: the last `accounts * processes` user ids.
    pub scalpers: Option<Scalpers>,
    pub users: usize,
}

/// Scalper accounts, each run by `processes` users on different hosts.
#[derive(Debug, Clone, Copy)]
pub struct Scalpers {
    pub accounts: usize,
    pub processes: usize,
}

impl Workload {
    /// The scalper account user `id` runs, if it is a scalper.
    pub fn scalper_account(&self, id: usize) -> Option<usize> {
        let s = self.scalpers?;
        let first = self.users.checked_sub(s.accounts * s.processes)?;
        // Consecutive ids land on different hosts (ids go round the hosts).
        (id >= first).then(|| (id - first) / s.processes.max(1))
    }
}

/// Rounds a scalper process makes (each: two holds at once, extend all).
const SCALPER_ROUNDS_MAX: u32 = 40;
/// Tries at signing up and at logging in (each, a bound on its loop).
const LOGIN_TRIES_MAX: u32 = 12;

/// How users meet a waiting room.
#[derive(Debug, Clone)]
pub struct QueueFlow {
    /// The on-sale time (simulated ms).
    pub on_sale_ms: u64,
    /// Share of users who skip the queue and hold without a token.
    pub scalper_rate: f64,
    /// The room's `abandon_ms`: a place lost within this of the last
    /// answer the user got is a lost place; after a longer silence (the
    /// user could not reach the room) the room may drop it.
    pub abandon_ms: u64,
}

struct User {
    id: usize,
    w: Workload,
    rng: ChaChaRandom,
    history: SharedHistory,
    catalog: Arc<HttpClient<SimConnector>>,
    reservation: Vec<Arc<HttpClient<SimConnector>>>,
    order: Vec<Arc<HttpClient<SimConnector>>>,
    queue: Vec<Arc<HttpClient<SimConnector>>>,
    accounts: Arc<HttpClient<SimConnector>>,
    /// `Bearer <token>` once logged in.
    bearer: Option<String>,
    /// The client history's pen (`crate::record`).
    rec: Recorder,
}

/// Asks for a place at most this many times (a bound on the wait loop).
const QUEUE_ASKS_MAX: u32 = 400;

impl User {
    fn hold_call(&self, seats: &[String]) -> Call {
        Call::Hold {
            seats: seats.iter().map(|s| SeatId::from(s.as_str())).collect(),
            hold_ms: self.w.hold_seconds * 1000,
        }
    }

    fn tell(&self, told: Told) {
        crate::lock(&self.history).observations.push(Observation {
            at_ms: SimClock::elapsed_ms(),
            user: self.id,
            told,
        });
    }

    fn pick<'a>(
        &self,
        clients: &'a [Arc<HttpClient<SimConnector>>],
    ) -> &'a HttpClient<SimConnector> {
        &clients[self.rng.range_u64(0, clients.len() as u64 - 1) as usize]
    }

    async fn send(
        &self,
        client: &HttpClient<SimConnector>,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Option<JsonResponse> {
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(b) = &self.bearer {
            all.push(("authorization", b.as_str()));
        }
        let r = client
            .send_json(method, path, body.as_ref(), &all, None)
            .await
            .ok()?;
        if r.status.is_client_error() {
            let code = r.error_code();
            if r.status == StatusCode::TOO_MANY_REQUESTS || code == "CUSTOMER_LIMIT" {
                self.tell(Told::Refused {
                    status: r.status.as_u16(),
                    code,
                });
            }
        }
        Some(r)
    }

    /// Waits as long as a 429 asked (bounded), or a short while.
    async fn back_off(&self, r: &JsonResponse) {
        let asked_ms = r.value().get("retryAfterMs").and_then(Value::as_u64);
        let wait_ms = asked_ms.unwrap_or(300).clamp(50, 10_000);
        self.pause(wait_ms, wait_ms + 200).await;
    }

    /// Signs up (an existing account is fine: scalper processes share one)
    /// and logs in; the token, or `None` when the service did not let it.
    async fn log_in(&self, email: &str, password: &str) -> Option<String> {
        let creds = body(&CredentialsBody {
            email: email.to_owned(),
            password: password.to_owned(),
        });
        for _ in 0..LOGIN_TRIES_MAX {
            match self
                .send(
                    &self.accounts,
                    Method::POST,
                    "/api/users",
                    Some(creds.clone()),
                    &[],
                )
                .await
            {
                Some(r) if r.status == StatusCode::CREATED || r.status == StatusCode::CONFLICT => {
                    break;
                }
                Some(r) if r.status == StatusCode::TOO_MANY_REQUESTS => self.back_off(&r).await,
                _ => self.pause(200, 800).await,
            }
        }
        for _ in 0..LOGIN_TRIES_MAX {
            match self
                .send(
                    &self.accounts,
                    Method::POST,
                    "/api/sessions",
                    Some(creds.clone()),
                    &[],
                )
                .await
            {
                Some(r) if r.status == StatusCode::CREATED => {
                    let s = r.json::<SessionView>()?;
                    self.tell(Told::LoggedIn {
                        customer: s.customer_id,
                    });
                    return Some(format!("Bearer {}", s.access_token));
                }
                Some(r) if r.status == StatusCode::TOO_MANY_REQUESTS => self.back_off(&r).await,
                _ => self.pause(200, 800).await,
            }
        }
        None
    }

    /// `lo..=hi` seats to try: from the seat map when it answers, else at random.
    /// `lo..=hi` seats: free ones from the seat map read with probability
    /// `read_map_p`, otherwise (or when the read fails) guessed.
    async fn choose_seats(&self, lo: u64, hi: u64, read_map_p: f64) -> Vec<String> {
        let want = self.rng.range_u64(lo, hi) as usize;
        let path = format!("/api/events/{}/seats", self.w.event_id);
        let mut map: Option<(Pending, MapRead)> = None;
        if self.rng.unit_f64() < read_map_p {
            let p = self.rec.call(Call::SeatMap);
            match self
                .send(&self.catalog, Method::GET, &path, None, &[])
                .await
            {
                Some(r) if r.status == StatusCode::OK => map = r.json::<MapRead>().map(|m| (p, m)),
                other => self.rec.answer(p, refusal(other.as_ref())),
            }
        }
        // The free seats by position in the map: only the few picked are
        // copied before the map moves into the history (no await between
        // the answer and its record, so the history is as if recorded at once).
        let read: &[SeatRead] = map.as_ref().map_or(&[], |(_, m)| &m.seats);
        let mut free: Vec<usize> = (0..read.len())
            .filter(|&i| read[i].status == SeatStatus::Available)
            .collect();
        let mut seats = Vec::new();
        for _ in 0..want {
            let seat = if free.is_empty() {
                let row = self.rng.range_u64(1, u64::from(self.w.rows));
                let col = self.rng.range_u64(1, u64::from(self.w.cols));
                format!("{row}-{col}")
            } else {
                let at = free.swap_remove(self.rng.range_u64(0, free.len() as u64 - 1) as usize);
                read[at].seat_id.0.clone()
            };
            if !seats.contains(&seat) {
                seats.push(seat);
            }
        }
        if let Some((p, m)) = map {
            self.rec.answer(p, map_outcome(m));
        }
        seats
    }

    async fn pause(&self, lo_ms: u64, hi_ms: u64) {
        tokio::time::sleep(Duration::from_millis(self.rng.range_u64(lo_ms, hi_ms))).await;
    }

    /// Places an order, repeating the same key after timeouts and 5xx.
    async fn place(&self, hold_id: &HoldId, key: &str) -> Option<OrderId> {
        self.tell(Told::LetGo {
            hold_id: hold_id.clone(),
        });
        for _ in 0..6 {
            let client = self.pick(&self.order);
            let p = self.rec.call(Call::Order {
                hold: hold_id.clone(),
                key: key.to_owned(),
            });
            let r = self
                .send(
                    client,
                    Method::POST,
                    "/api/orders",
                    Some(body(&OrderBody {
                        hold_id: hold_id.to_string(),
                    })),
                    &[("idempotency-key", key)],
                )
                .await;
            match r {
                Some(r) if r.status == StatusCode::ACCEPTED => {
                    let order_id = r.json::<PlacedView>()?.order_id;
                    self.rec.answer(
                        p,
                        Outcome::Placed {
                            order: order_id.clone(),
                        },
                    );
                    self.tell(Told::OrderAccepted {
                        key: key.to_owned(),
                        order_id: order_id.clone(),
                    });
                    return Some(order_id);
                }
                Some(r) if r.status.is_client_error() => {
                    self.rec.answer(p, refusal(Some(&r)));
                    return None;
                }
                _ => self.pause(200, 800).await,
            }
        }
        None
    }

    /// Polls until the order is final or the polling budget runs out.
    async fn follow(&self, order_id: &OrderId, hold_id: &HoldId) -> Option<OrderStatus> {
        let path = format!("/api/orders/{order_id}");
        for _ in 0..120 {
            self.pause(250, 500).await;
            let client = self.pick(&self.order);
            let p = self.rec.call(Call::OrderStatus {
                order: order_id.clone(),
                hold: hold_id.clone(),
            });
            let o = match self.send(client, Method::GET, &path, None, &[]).await {
                Some(r) if r.status == StatusCode::OK => r.json::<OrderView>(),
                other => {
                    self.rec.answer(p, refusal(other.as_ref()));
                    None
                }
            };
            if let Some(o) = o {
                self.rec.answer(
                    p,
                    Outcome::Order {
                        status: o.status,
                        seats: o.seat_ids.clone(),
                    },
                );
                if o.status == OrderStatus::Pending {
                    continue;
                }
                self.tell(Told::OrderFinal {
                    order_id: order_id.clone(),
                    status: o.status,
                    seats: o.seat_ids,
                });
                return Some(o.status);
            }
        }
        None
    }

    /// Asks to cancel a confirmed order (a second time, with the same key
    /// or a new one, for some) and follows it until the cancellation ends.
    async fn cancel(&self, order_id: &OrderId, hold_id: &HoldId) {
        self.pause(0, 5_000).await;
        let mut asks = vec![format!("user-{}-cancel", self.id)];
        if self.rng.unit_f64() < self.w.cancel_twice_rate {
            let again = match self.rng.unit_f64() < 0.5 {
                true => asks[0].clone(),
                false => format!("user-{}-cancel-again", self.id),
            };
            asks.push(again);
        }
        let mut maybe_taken = false;
        for key in &asks {
            maybe_taken |= self.ask_cancel(order_id, hold_id, key).await;
        }
        if maybe_taken {
            self.follow_cancel(order_id, hold_id).await;
        }
    }

    /// One cancel request, repeated with its key after timeouts and 5xx;
    /// whether it may have been taken.
    async fn ask_cancel(&self, order_id: &OrderId, hold_id: &HoldId, key: &str) -> bool {
        let path = format!("/api/orders/{order_id}/cancel");
        for _ in 0..6 {
            let p = self.rec.call(Call::Cancel {
                order: order_id.clone(),
                hold: hold_id.clone(),
                key: key.to_owned(),
            });
            let client = self.pick(&self.order);
            let headers = [("idempotency-key", key)];
            match self.send(client, Method::POST, &path, None, &headers).await {
                Some(r) if r.status == StatusCode::ACCEPTED => {
                    self.rec.answer(p, Outcome::CancelTaken);
                    return true;
                }
                Some(r) if r.status.is_client_error() => {
                    self.rec.answer(p, refusal(Some(&r)));
                    return false;
                }
                _ => self.pause(200, 800).await,
            }
        }
        true
    }

    /// Polls a cancelled order until REFUNDED or REFUND_FAILED (bounded).
    async fn follow_cancel(&self, order_id: &OrderId, hold_id: &HoldId) {
        let path = format!("/api/orders/{order_id}");
        for _ in 0..160 {
            self.pause(250, 500).await;
            let p = self.rec.call(Call::OrderStatus {
                order: order_id.clone(),
                hold: hold_id.clone(),
            });
            let client = self.pick(&self.order);
            let Some(o) = self
                .send(client, Method::GET, &path, None, &[])
                .await
                .filter(|r| r.status == StatusCode::OK)
                .and_then(|r| r.json::<OrderView>())
            else {
                continue;
            };
            let seats = o.seat_ids.clone();
            self.rec.answer(
                p,
                Outcome::Order {
                    status: o.status,
                    seats,
                },
            );
            if matches!(o.status, OrderStatus::Refunded | OrderStatus::RefundFailed) {
                self.tell(Told::OrderFinal {
                    order_id: order_id.clone(),
                    status: o.status,
                    seats: o.seat_ids,
                });
                return;
            }
        }
    }

    /// Joins the waiting room and asks for the place until admitted:
    /// the admission token, or `None` (gave up, the place was lost, or the
    /// deadline came).
    async fn queue_up(&self) -> Option<String> {
        let path = format!("/api/queue/{}", self.w.event_id);
        let mut ticket = None;
        for _ in 0..10 {
            if let Some(r) = self
                .send(self.pick(&self.queue), Method::POST, &path, None, &[])
                .await
                // 200: the customer's place from an earlier join.
                && (r.status == StatusCode::CREATED || r.status == StatusCode::OK)
            {
                ticket = r
                    .json::<ticketing_contract::QueueJoinView>()
                    .map(|j| j.ticket);
                break;
            }
            self.pause(200, 800).await;
        }
        let place = format!("{path}/{}", ticket?);
        let abandon_ms = self.w.queue.as_ref().map_or(u64::MAX, |q| q.abandon_ms);
        let mut answered_at = SimClock::elapsed_ms();
        for _ in 0..QUEUE_ASKS_MAX {
            if SimClock::elapsed_ms() > self.w.deadline_ms {
                return None;
            }
            self.pause(500, 1_500).await;
            let Some(r) = self
                .send(self.pick(&self.queue), Method::GET, &place, None, &[])
                .await
            else {
                continue;
            };
            let Some(p) = r.json::<ticketing_contract::QueuePlaceView>() else {
                continue;
            };
            let silence_ms = SimClock::elapsed_ms().saturating_sub(answered_at);
            answered_at = SimClock::elapsed_ms();
            match p.status {
                ticketing_contract::QueueStatus::Admitted => {
                    self.tell(Told::QueueAdmitted);
                    return p.admission_token;
                }
                ticketing_contract::QueueStatus::Expired => {
                    if silence_ms < abandon_ms {
                        self.tell(Told::QueueLost);
                    }
                    return None;
                }
                ticketing_contract::QueueStatus::Waiting => {
                    if let Some(position) = p.position {
                        self.tell(Told::QueuePosition { position });
                    }
                }
            }
        }
        None
    }

    async fn run(mut self) {
        let (email, password) = match self.w.scalper_account(self.id) {
            Some(a) => (
                format!("scalper-{a}@sim.example"),
                format!("scalper-password-{a}"),
            ),
            None => (
                format!("user-{}@sim.example", self.id),
                format!("user-password-{}", self.id),
            ),
        };
        let Some(bearer) = self.log_in(&email, &password).await else {
            return;
        };
        self.bearer = Some(bearer);
        if self.w.scalper_account(self.id).is_some() {
            return self.scalp().await;
        }
        let token = match self.w.queue.clone() {
            None => {
                // Half the users rush in within the first second; the rest keep
                // arriving over the sale window, when holds expire and faults bite.
                if self.rng.unit_f64() < 0.5 {
                    self.pause(0, 1_000).await;
                } else {
                    self.pause(0, self.w.arrival_window_ms).await;
                }
                None
            }
            Some(q) => {
                // Most arrive before the on-sale time; the rest after it.
                if self.rng.unit_f64() < 0.8 {
                    self.pause(0, q.on_sale_ms).await;
                } else {
                    self.pause(q.on_sale_ms, q.on_sale_ms + self.w.arrival_window_ms)
                        .await;
                }
                if self.rng.unit_f64() < q.scalper_rate {
                    None
                } else {
                    match self.queue_up().await {
                        Some(t) => Some(t),
                        None => return,
                    }
                }
            }
        };
        self.shop(token).await;
    }

    /// The purchase flow (`token`: the admission to show on holds).
    async fn shop(self, token: Option<String>) {
        let protected = self.w.queue.is_some();
        let admission: Vec<(&str, &str)> = token
            .as_deref()
            .map(|t| vec![("x-admission-token", t)])
            .unwrap_or_default();
        for attempt in 0..self.w.max_attempts {
            if SimClock::elapsed_ms() > self.w.deadline_ms {
                break;
            }
            let seats = self.choose_seats(1, 2, 0.5).await;
            let p = self.rec.call(self.hold_call(&seats));
            let hold = body(&HoldBody {
                event_id: self.w.event_id.clone(),
                seat_ids: seats.clone(),
                hold_seconds: self.w.hold_seconds,
            });
            let client = self.pick(&self.reservation);
            let Some(r) = self
                .send(
                    client,
                    Method::POST,
                    "/api/reservations",
                    Some(hold),
                    &admission,
                )
                .await
            else {
                self.pause(100, 600).await;
                continue;
            };
            if r.status != StatusCode::CREATED {
                self.rec.answer(p, hold_refusal(Some(&r)));
                self.pause(50, 400).await;
                continue;
            }
            let Some(granted) = r.json::<HoldView>() else {
                continue;
            };
            self.rec.answer(p, held(&granted));
            let hold_id = granted.hold_id;
            if protected && token.is_none() {
                self.tell(Told::HeldWithoutAdmission {
                    hold_id: hold_id.clone(),
                });
            }
            self.tell(Told::Held {
                hold_id: hold_id.clone(),
                seats: granted.seat_ids,
                expires_at_ms: granted.expires_at_ms,
            });

            if self.rng.unit_f64() < self.w.abandon_rate {
                if self.rng.unit_f64() < self.w.late_cancel_rate {
                    // "Cancel", long after the hold expired.
                    self.pause(
                        self.w.hold_seconds * 1000 + 1_000,
                        self.w.hold_seconds * 1000 + 4_000,
                    )
                    .await;
                    let path = format!("/api/reservations/{hold_id}");
                    self.tell(Told::LetGo {
                        hold_id: hold_id.clone(),
                    });
                    let p = self.rec.call(Call::Release {
                        hold: hold_id.clone(),
                    });
                    let r = self
                        .send(
                            self.pick(&self.reservation),
                            Method::DELETE,
                            &path,
                            None,
                            &[],
                        )
                        .await;
                    let outcome = match r {
                        Some(r) if r.status.is_success() => Outcome::Released,
                        other => refusal(other.as_ref()),
                    };
                    self.rec.answer(p, outcome);
                }
                return;
            }
            self.pause(0, 300).await;
            let key = format!("user-{}-attempt-{attempt}", self.id);
            let Some(order_id) = self.place(&hold_id, &key).await else {
                continue;
            };
            match self.follow(&order_id, &hold_id).await {
                Some(OrderStatus::Confirmed) => {
                    if self.rng.unit_f64() < self.w.cancel_rate {
                        self.cancel(&order_id, &hold_id).await;
                    }
                    return;
                }
                Some(_) => {}
                // Still pending when patience ran out: do not buy twice.
                None => return,
            }
        }
    }
}

impl User {
    /// A scalper process: rounds of two holds at once, every live hold
    /// extended to the cap, a purchase now and then; bounded in rounds and
    /// by the deadline.
    async fn scalp(self) {
        self.pause(0, 1_000).await;
        let mut live: Vec<HoldId> = Vec::new();
        for round in 0..SCALPER_ROUNDS_MAX {
            if SimClock::elapsed_ms() > self.w.deadline_ms {
                break;
            }
            let (a, b) = tokio::join!(self.grab(), self.grab());
            live.extend(a.into_iter().chain(b));
            let mut kept = Vec::new();
            for h in live {
                if self.extend(&h).await {
                    kept.push(h);
                }
            }
            live = kept;
            if !live.is_empty() && self.rng.unit_f64() < 0.15 {
                let h = live.remove(0);
                let key = format!("scalper-{}-round-{round}", self.id);
                if let Some(order_id) = self.place(&h, &key).await {
                    self.follow(&order_id, &h).await;
                }
            }
            self.pause(200, 600).await;
        }
    }

    /// One scalper hold of 2–3 seats; its id when granted.
    async fn grab(&self) -> Option<HoldId> {
        // Scalpers always read the map: they aim at seats that are free.
        let seats = self.choose_seats(2, 3, 1.0).await;
        let p = self.rec.call(self.hold_call(&seats));
        let hold = body(&HoldBody {
            event_id: self.w.event_id.clone(),
            seat_ids: seats,
            hold_seconds: self.w.hold_seconds,
        });
        let client = self.pick(&self.reservation);
        let r = self
            .send(client, Method::POST, "/api/reservations", Some(hold), &[])
            .await?;
        if r.status != StatusCode::CREATED {
            self.rec.answer(p, hold_refusal(Some(&r)));
            return None;
        }
        let h = r.json::<HoldView>()?;
        self.rec.answer(p, held(&h));
        self.tell(Told::Held {
            hold_id: h.hold_id.clone(),
            seats: h.seat_ids,
            expires_at_ms: h.expires_at_ms,
        });
        Some(h.hold_id)
    }

    /// Extends a hold; whether it is still worth extending (granted, or
    /// refused only for the rate or an unanswered call).
    async fn extend(&self, hold_id: &HoldId) -> bool {
        let path = format!("/api/reservations/{hold_id}/extend");
        let ext = body(&ExtendBody {
            hold_seconds: self.w.hold_seconds,
        });
        let client = self.pick(&self.reservation);
        let p = self.rec.call(Call::Extend {
            hold: hold_id.clone(),
        });
        let Some(r) = self.send(client, Method::POST, &path, Some(ext), &[]).await else {
            return true;
        };
        if r.status != StatusCode::OK {
            self.rec.answer(p, refusal(Some(&r)));
        }
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            return true;
        }
        if r.status != StatusCode::OK {
            return false;
        }
        let Some(h) = r.json::<HoldView>() else {
            return false;
        };
        self.rec.answer(
            p,
            Outcome::Extended {
                expires_ms: h.expires_at_ms,
            },
        );
        self.tell(Told::Extended {
            hold_id: h.hold_id,
            expires_at_ms: h.expires_at_ms,
        });
        true
    }
}

/// The software of one users host: runs `ids` users to completion.
pub async fn run_users(
    ids: Vec<usize>,
    w: Workload,
    seed: u64,
    history: SharedHistory,
    log: SharedLog,
) -> turmoil::Result {
    let timeout = Duration::from_millis(w.request_timeout_ms);
    let trace_rng: Arc<dyn RandomSource> = Arc::new(ChaChaRandom::from_seed(
        ChaChaRandom::derive_seed(seed, "users-trace"),
    ));
    let client = |host: String| {
        Arc::new(HttpClient::new(
            SimConnector,
            format!("http://{host}:80"),
            timeout,
            trace_rng.clone(),
        ))
    };
    let catalog = client("catalog".into());
    let accounts = client("accounts".into());
    let reservation: Vec<_> = (1..=w.replicas)
        .map(|i| client(format!("reservation-{i}")))
        .collect();
    let order: Vec<_> = (1..=w.replicas)
        .map(|i| client(format!("order-{i}")))
        .collect();
    let queue: Vec<_> = (1..=w.replicas)
        .map(|i| client(format!("queue-{i}")))
        .collect();
    let mut tasks = Vec::new();
    for id in ids {
        let user = User {
            id,
            w: w.clone(),
            rng: ChaChaRandom::from_seed(ChaChaRandom::derive_seed(seed, &format!("user-{id}"))),
            history: history.clone(),
            catalog: catalog.clone(),
            reservation: reservation.clone(),
            order: order.clone(),
            queue: queue.clone(),
            accounts: accounts.clone(),
            bearer: None,
            rec: Recorder::new(log.clone(), format!("user-{id}")),
        };
        tasks.push(tokio::task::spawn_local(user.run()));
    }
    for t in tasks {
        let _ = t.await;
        crate::lock(&history).users_done += 1;
    }
    Ok(())
}
