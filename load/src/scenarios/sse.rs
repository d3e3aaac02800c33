//! `sse`: watchers hold seat streams open while one writer changes seats.
//!
//! The writer (a task of the harness, not a goose user) holds a seat, then
//! releases it, on the run's SSE event, noting when it *sent* each request;
//! a watcher that reads the matching change records the delay — what a
//! person watching the seat map would wait after someone else clicked. Each
//! watcher is forcibly disconnected every few seconds and resumes with
//! `Last-Event-ID`: versions must continue without a gap (a fresh snapshot,
//! sent when the gap is too old for the server's history, counts as a
//! resync, not a loss).

use super::shared::{Answer, Shared, pause, state};
use crate::client::Api;
use crate::record::{Outcome, code_label};
use goose::prelude::*;
use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use ticketing_contract::{HoldBody, HoldView};
use tokio::time::Instant;

/// Bytes a watcher buffers for one unfinished SSE message before giving up on it.
const MESSAGE_BYTES_MAX: usize = 4 << 20;

#[derive(Debug)]
pub struct SseCtx {
    pub event_id: String,
    /// Seats the writer works through, one hold + one release each.
    pub seat_ids: Vec<String>,
    pub writes_per_s: f64,
    /// A watcher's connection lasts a random time in this range (ms).
    pub session_ms: (u64, u64),
    sent: Mutex<HashMap<(String, &'static str), Instant>>,
    pub writes: AtomicU64,
    pub watchers: AtomicU64,
    pub lost: AtomicU64,
    pub resumes: AtomicU64,
    pub resyncs: AtomicU64,
    pub all: Mutex<Histogram<u64>>,
    /// Deliveries of changes sent inside the fault window.
    pub window: Mutex<Histogram<u64>>,
    pub in_window: AtomicU64,
    pub per_watcher: Mutex<BTreeMap<u64, Histogram<u64>>>,
}

impl SseCtx {
    pub fn new(
        event_id: String,
        seat_ids: Vec<String>,
        writes_per_s: f64,
        session_ms: (u64, u64),
    ) -> SseCtx {
        SseCtx {
            event_id,
            seat_ids,
            writes_per_s,
            session_ms,
            sent: Mutex::new(HashMap::new()),
            writes: AtomicU64::new(0),
            watchers: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            resumes: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            all: Mutex::new(crate::record::new_histogram()),
            window: Mutex::new(crate::record::new_histogram()),
            in_window: AtomicU64::new(0),
            per_watcher: Mutex::new(BTreeMap::new()),
        }
    }

    fn note_sent(&self, seat: &str, status: &'static str) {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((seat.to_owned(), status), Instant::now());
    }

    fn sent_at(&self, seat: &str, status: &str) -> Option<Instant> {
        let key_status: &'static str = match status {
            "HELD" => "HELD",
            "AVAILABLE" => "AVAILABLE",
            _ => return None,
        };
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(seat.to_owned(), key_status))
            .copied()
    }
}

/// A watcher's state across its connections.
#[derive(Debug, Clone)]
pub struct Watcher {
    id: u64,
    /// The last version seen (snapshot or change).
    last: Option<u64>,
}

/// One SSE message: its `event:` name and `data:` JSON.
fn parse(block: &str) -> Option<(String, Value)> {
    let mut event = String::from("message");
    let mut data = String::new();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    if data.is_empty() {
        return None;
    }
    serde_json::from_str(&data).ok().map(|d| (event, d))
}

/// One connection of one watcher: open (resuming if it has seen a version),
/// read until its session ends, then let go.
pub async fn watch(ctx: &Shared, sse: &SseCtx, user: &mut GooseUser) -> TransactionResult {
    if ctx.past_deadline() {
        pause(ctx, Duration::from_millis(500)).await;
        return Ok(());
    }
    let (mut me, session) = {
        let s = state::<Watcher>(user);
        let me = match s.own.take() {
            Some(w) => w,
            None => {
                sse.watchers.fetch_add(1, Ordering::Relaxed);
                Watcher {
                    id: s.number,
                    last: None,
                }
            }
        };
        let session =
            Duration::from_millis(s.rng.random_range(sse.session_ms.0..=sse.session_ms.1));
        (me, session)
    };
    let end = (Instant::now() + session).min(ctx.deadline);
    let path = format!("/api/events/{}/seats/stream", sse.event_id);
    let mut builder = user
        .get_request_builder(&GooseMethod::Get, &path)?
        .timeout(session + Duration::from_secs(10))
        .header("accept", "text/event-stream");
    let resuming = me.last.is_some();
    if let Some(v) = me.last {
        builder = builder.header("last-event-id", v.to_string());
        sse.resumes.fetch_add(1, Ordering::Relaxed);
    }
    let name = "GET /api/events/{id}/seats/stream";
    let request = GooseRequest::builder()
        .path(path.as_str())
        .name(name)
        .set_request_builder(builder)
        .build();
    let goose = user.request(request).await?;
    let lag_us = ctx
        .open
        .as_ref()
        .map_or(0, |o| o.take_lag_us(user.weighted_users_index));
    let latency_us = goose.request.response_time_micros().saturating_add(lag_us);
    let mut resp = match goose.response {
        Ok(r) if r.status().is_success() => {
            ctx.rec
                .record(name, latency_us, 0, Outcome::Ok, "200".into());
            r
        }
        Ok(r) => {
            let status = r.status().as_u16();
            ctx.rec.record(
                name,
                latency_us,
                0,
                Outcome::Error,
                code_label(Some(status), None, None),
            );
            state::<Watcher>(user).own = Some(me);
            pause(ctx, Duration::from_millis(200)).await;
            return Ok(());
        }
        Err(e) => {
            let kind = if e.is_timeout() { "timeout" } else { "connect" };
            ctx.rec.record(
                name,
                latency_us,
                0,
                Outcome::Error,
                code_label(None, None, Some(kind)),
            );
            state::<Watcher>(user).own = Some(me);
            pause(ctx, Duration::from_millis(200)).await;
            return Ok(());
        }
    };

    let mut buf = String::new();
    let mut first = true;
    let mut mine = crate::record::new_histogram();
    // Bounded by `end`: each round reads one chunk or times out.
    while let Ok(chunk) = tokio::time::timeout_at(end, resp.chunk()).await {
        let Ok(Some(bytes)) = chunk else { break };
        buf.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(pos) = buf.find("\n\n") {
            let block: String = buf.drain(..pos + 2).collect();
            let Some((event, data)) = parse(&block) else {
                continue;
            };
            let version = data.get("version").and_then(|v| v.as_u64());
            match (event.as_str(), version) {
                ("snapshot", Some(v)) => {
                    if first && resuming {
                        sse.resyncs.fetch_add(1, Ordering::Relaxed);
                    }
                    me.last = Some(v);
                }
                ("change", Some(v)) => {
                    if let Some(last) = me.last {
                        if v > last + 1 {
                            sse.lost.fetch_add(v - last - 1, Ordering::Relaxed);
                        }
                        if v <= last {
                            continue; // a repeat: already seen
                        }
                    }
                    me.last = Some(v);
                    let seat = data.get("seatId").and_then(|x| x.as_str()).unwrap_or("");
                    let status = data.get("status").and_then(|x| x.as_str()).unwrap_or("");
                    if let Some(sent) = sse.sent_at(seat, status) {
                        let us = sent.elapsed().as_micros().max(1) as u64;
                        let us = us.min(crate::record::LATENCY_US_MAX);
                        if ctx.rec.in_window(sent.into_std()) {
                            // Changes made during a fault are reported apart, not judged.
                            sse.in_window.fetch_add(1, Ordering::Relaxed);
                            let _ = sse
                                .window
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .record(us);
                        } else {
                            let _ = mine.record(us);
                        }
                    }
                }
                _ => {}
            }
            first = false;
        }
        if buf.len() > MESSAGE_BYTES_MAX {
            break;
        }
    }
    drop(resp); // the forced disconnect
    if !mine.is_empty() {
        let _ = sse.all.lock().unwrap_or_else(|e| e.into_inner()).add(&mine);
        let mut per = sse.per_watcher.lock().unwrap_or_else(|e| e.into_inner());
        let _ = per
            .entry(me.id)
            .or_insert_with(crate::record::new_histogram)
            .add(&mine);
    }
    state::<Watcher>(user).own = Some(me);
    Ok(())
}

/// The writer: one hold then one release per seat, `writes_per_s` changes a
/// second, until the deadline or the seats run out. Its requests are
/// recorded like the users' (under the same endpoint names).
pub async fn run_writer(ctx: &Shared, sse: &SseCtx, api: Api) {
    let period = Duration::from_secs_f64(1.0 / sse.writes_per_s.max(0.1));
    let http = api.http();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let timed = |started: Instant| started.elapsed().as_micros() as u64;
    for seat in &sse.seat_ids {
        tick.tick().await;
        if ctx.past_deadline() {
            break;
        }
        sse.note_sent(seat, "HELD");
        let started = Instant::now();
        let r = http
            .post(format!("{}/api/reservations", api.public_url))
            .json(&HoldBody {
                event_id: sse.event_id.clone(),
                seat_ids: vec![seat.clone()],
                hold_seconds: 120,
            })
            .timeout(ctx.request_timeout)
            .send()
            .await;
        let hold_id = match r {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body: Option<Value> = resp.json().await.ok();
                let ok = status == 201;
                ctx.rec.record(
                    "POST /api/reservations",
                    timed(started),
                    0,
                    if ok { Outcome::Ok } else { Outcome::Error },
                    code_label(Some(status), None, None),
                );
                sse.writes.fetch_add(1, Ordering::Relaxed);
                let answer = Answer {
                    status: Some(status),
                    json: body,
                };
                if ok {
                    // Known to the audit, in case the release below fails.
                    ctx.truth().holds.push((
                        sse.event_id.clone(),
                        vec![seat.clone()],
                        answer.expires_at_ms(),
                    ));
                }
                answer.view::<HoldView>().map(|h| h.hold_id.to_string())
            }
            Err(e) => {
                let kind = if e.is_timeout() { "timeout" } else { "connect" };
                ctx.rec.record(
                    "POST /api/reservations",
                    timed(started),
                    0,
                    Outcome::Error,
                    code_label(None, None, Some(kind)),
                );
                None
            }
        };
        let Some(hold_id) = hold_id else { continue };
        tick.tick().await;
        sse.note_sent(seat, "AVAILABLE");
        let started = Instant::now();
        let r = http
            .delete(format!("{}/api/reservations/{hold_id}", api.public_url))
            .timeout(ctx.request_timeout)
            .send()
            .await;
        let (outcome, label) = match r {
            Ok(resp) if resp.status().is_success() => {
                (Outcome::Ok, resp.status().as_u16().to_string())
            }
            Ok(resp) => (Outcome::Error, resp.status().as_u16().to_string()),
            Err(_) => (Outcome::Error, code_label(None, None, Some("connect"))),
        };
        ctx.rec.record(
            "DELETE /api/reservations/{id}",
            timed(started),
            0,
            outcome,
            label,
        );
        sse.writes.fetch_add(1, Ordering::Relaxed);
    }
}
