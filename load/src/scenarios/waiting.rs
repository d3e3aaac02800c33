//! The waiting room in front of the onsale (`--waiting-room`): each
//! arrival joins the queue (`POST /api/queue/{id}`) and polls its place
//! like a page would (`GET /api/queue/{id}/{ticket}`), often near the front,
//! rarely far back, never slower than `poll_max` (which stays well inside
//! the room's `abandon_s`); once ADMITTED it shops with the token. A
//! visitor is told the event sold out when, after someone saw it sold out,
//! the event's availability reads 0.
//!
//! Waiting holds no goose user: each poll is an open-model *resume* (see
//! `open.rs`) left for the poll's time, so 50,000 waiting visitors need
//! only the users that are polling or shopping at the moment.
//!
//! Bounded: one resume per visitor at a time, each visitor at most
//! [`POLLS_MAX`] polls, nothing after the run's deadline.

use super::shared::{Req, Shared, call};
use crate::fairness::{self, Joined};
use crate::record::{Percentiles, new_histogram};
use crate::summary::{RoomSample, WaitingFigures};
use goose::prelude::*;
use hdrhistogram::Histogram;
use rand::Rng;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use ticketing_contract::{EventView, QueueJoinView, QueuePlaceView, QueueStatus};
use tokio::time::Instant;

/// Polls per visitor at most (a bound; at `poll_max` apart it outlasts any run).
pub const POLLS_MAX: u32 = 10_000;
/// The shortest time between two polls of one visitor.
pub const POLL_MS_MIN: u64 = 500;
/// The request names of the waiting room's own routes (what the shop
/// phase leaves out; see `record::WAITING_ROOM_ROUTE`).
const JOIN: &str = "POST /api/queue/{id}";
const POLL: &str = "GET /api/queue/{id}/{ticket}";

/// What became of a visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Waiting,
    Admitted,
    ToldSoldOut,
    Lost,
    Unresolved,
}

#[derive(Debug, Clone)]
struct Visitor {
    /// The open run's arrival index (the person's random source).
    arrival: u64,
    ticket: String,
    sent_us: u64,
    answered_us: u64,
    prequeue: bool,
    polls: u32,
    admitted_at_ms: Option<u64>,
    fate: Fate,
}

impl Fate {
    /// Which fate a place shared by several visitors has: the best any of
    /// them met (one admitted, the others then finding the slot spent, is
    /// an admitted place; a place is lost only if every visitor lost it).
    fn rank(self) -> u8 {
        match self {
            Fate::Lost => 0,
            Fate::Unresolved => 1,
            Fate::Waiting => 2,
            Fate::ToldSoldOut => 3,
            Fate::Admitted => 4,
        }
    }
}

/// The places: the visitors that share a ticket (one customer's joins,
/// the later ones answered 200) as one place, joined when the first of
/// them joined, with the best fate any of them met.
fn places(visitors: &[Visitor]) -> Vec<Visitor> {
    let mut out: Vec<Visitor> = Vec::new();
    let mut index: std::collections::BTreeMap<&str, usize> = Default::default();
    for v in visitors {
        let Some(&i) = index.get(v.ticket.as_str()) else {
            index.insert(v.ticket.as_str(), out.len());
            out.push(v.clone());
            continue;
        };
        let p = &mut out[i];
        if v.sent_us < p.sent_us {
            (p.sent_us, p.answered_us, p.prequeue) = (v.sent_us, v.answered_us, v.prequeue);
        }
        p.admitted_at_ms = p.admitted_at_ms.or(v.admitted_at_ms);
        if v.fate.rank() > p.fate.rank() {
            p.fate = v.fate;
        }
    }
    out
}

/// The waiting room's part of a run.
#[derive(Debug)]
pub struct WaitingCtx {
    pub event_id: String,
    pub admit_per_s: u32,
    pub active_max: u32,
    pub on_sale_at_ms: u64,
    pub poll_max: Duration,
    /// When the arrivals were planned to start, and how long before the
    /// on-sale time that was.
    pub planned_start: Instant,
    pub prequeue: Duration,
    /// The harness's clock origin for join times.
    origin: Instant,
    visitors: Mutex<Vec<Visitor>>,
    join_failed: AtomicU64,
    polls: AtomicU64,
    wait: Mutex<Histogram<u64>>,
    sold_out: AtomicBool,
    samples: Mutex<Vec<RoomSample>>,
}

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// Still waiting: the next poll is left for later.
    Waiting,
    /// Admitted: shop as arrival `arrival` (who joined at `joined`) with
    /// this token.
    Admitted {
        arrival: u64,
        joined: Instant,
        token: String,
    },
    /// Done waiting without an admission (sold out, lost, deadline).
    Gone,
}

impl WaitingCtx {
    pub fn new(
        event_id: String,
        (admit_per_s, active_max): (u32, u32),
        (on_sale_at_ms, planned_start, prequeue): (u64, Instant, Duration),
        poll_max: Duration,
    ) -> Self {
        WaitingCtx {
            event_id,
            admit_per_s,
            active_max,
            on_sale_at_ms,
            poll_max,
            planned_start,
            prequeue,
            origin: Instant::now(),
            visitors: Mutex::new(Vec::new()),
            join_failed: AtomicU64::new(0),
            polls: AtomicU64::new(0),
            wait: Mutex::new(new_histogram()),
            sold_out: AtomicBool::new(false),
            samples: Mutex::new(Vec::new()),
        }
    }

    fn visitors(&self) -> std::sync::MutexGuard<'_, Vec<Visitor>> {
        self.visitors.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn us(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_micros() as u64
    }

    /// Someone saw the event sold out: waiting visitors check and leave.
    pub fn mark_sold_out(&self) {
        self.sold_out.store(true, Ordering::Relaxed);
    }

    /// One reading of the room (the run's sampler).
    pub fn sample(&self, s: RoomSample) {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(s);
    }

    /// The latest reading of the room (progress lines).
    pub fn last_sample(&self) -> Option<RoomSample> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .copied()
    }

    fn set_fate(&self, key: u64, fate: Fate) {
        if let Some(v) = self.visitors().get_mut(key as usize) {
            v.fate = fate;
        }
    }

    /// When to poll next: half the announced wait, within
    /// [`POLL_MS_MIN`]..`poll_max`; in the pre-queue, just after the
    /// on-sale time (spread over a second), at most `poll_max` away.
    fn next_poll(&self, place: &QueuePlaceView, rng: &mut impl Rng) -> Instant {
        let max_ms = (self.poll_max.as_millis() as u64).max(POLL_MS_MIN);
        let ms = if place.prequeue {
            let to_sale = place.on_sale_at_ms.saturating_sub(crate::client::wall_ms());
            to_sale + rng.random_range(0..1_000)
        } else {
            place.estimated_wait_ms.unwrap_or(max_ms) / 2
        };
        Instant::now() + Duration::from_millis(ms.clamp(POLL_MS_MIN, max_ms))
    }
}

/// Arrival `arrival` joins the queue and leaves its first poll for later.
pub async fn join(
    ctx: &Shared,
    w: &WaitingCtx,
    user: &mut GooseUser,
    arrival: u64,
) -> TransactionResult {
    let path = format!("/api/queue/{}", w.event_id);
    let body = serde_json::json!({});
    let sent = Instant::now();
    let a = call(user, ctx, Req::post(JOIN, &path, &body)).await?;
    let Some(j) = a.view::<QueueJoinView>().filter(|_| a.is(201) || a.is(200)) else {
        w.join_failed.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    };
    let key = {
        let mut v = w.visitors();
        v.push(Visitor {
            arrival,
            ticket: j.ticket.to_string(),
            sent_us: w.us(sent),
            answered_us: w.us(Instant::now()),
            prequeue: j.place.prequeue,
            polls: 0,
            admitted_at_ms: None,
            fate: Fate::Waiting,
        });
        (v.len() - 1) as u64
    };
    let at = w.next_poll(&j.place, &mut ctx.iteration_rng(arrival ^ 0x9011));
    leave_poll(ctx, w, key, at);
    Ok(())
}

/// Leaves visitor `key`'s next poll for `at` (unresolved when the run
/// cannot take it: past the deadline, or the resume bound).
fn leave_poll(ctx: &Shared, w: &WaitingCtx, key: u64, at: Instant) {
    let taken = at < ctx.deadline && ctx.open.as_ref().is_some_and(|o| o.resume_at(at, key));
    if !taken {
        w.set_fate(key, Fate::Unresolved);
    }
}

/// Visitor `key` polls its place once (and, sold out, reads the event).
pub async fn poll(
    ctx: &Shared,
    w: &WaitingCtx,
    user: &mut GooseUser,
    key: u64,
) -> Result<Polled, Box<TransactionError>> {
    let Some(v) = w.visitors().get(key as usize).cloned() else {
        return Ok(Polled::Gone);
    };
    if ctx.past_deadline() || v.polls >= POLLS_MAX {
        w.set_fate(key, Fate::Unresolved);
        return Ok(Polled::Gone);
    }
    if w.sold_out.load(Ordering::Relaxed) && sold_out_now(ctx, w, user).await? {
        w.set_fate(key, Fate::ToldSoldOut);
        return Ok(Polled::Gone);
    }
    let path = format!("/api/queue/{}/{}", w.event_id, v.ticket);
    let mut req = Req::get(POLL, &path);
    req.expected = &[404];
    let a = call(user, ctx, req).await?;
    w.polls.fetch_add(1, Ordering::Relaxed);
    if let Some(x) = w.visitors().get_mut(key as usize) {
        x.polls += 1;
    }
    let place = a.view::<QueuePlaceView>().filter(|_| a.is(200));
    match place {
        Some(p) if p.status == QueueStatus::Admitted => Ok(admitted(w, key, &v, p)),
        Some(p) if p.status == QueueStatus::Waiting => {
            let at = w.next_poll(&p, &mut ctx.iteration_rng(v.arrival ^ u64::from(v.polls)));
            leave_poll(ctx, w, key, at);
            Ok(Polled::Waiting)
        }
        // EXPIRED, or the ticket is gone: the place was lost while polling.
        Some(_) => lost(w, key),
        None if a.is(404) => lost(w, key),
        // A failed poll (recorded as an error): try again later.
        None => {
            let at = Instant::now() + Duration::from_millis(POLL_MS_MIN);
            leave_poll(ctx, w, key, at);
            Ok(Polled::Waiting)
        }
    }
}

fn lost(w: &WaitingCtx, key: u64) -> Result<Polled, Box<TransactionError>> {
    w.set_fate(key, Fate::Lost);
    Ok(Polled::Gone)
}

fn admitted(w: &WaitingCtx, key: u64, v: &Visitor, p: QueuePlaceView) -> Polled {
    let Some(token) = p.admission_token else {
        return lost(w, key).unwrap_or(Polled::Gone);
    };
    let waited_us = w.us(Instant::now()).saturating_sub(v.sent_us);
    let _ = w
        .wait
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record(waited_us.max(1));
    if let Some(x) = w.visitors().get_mut(key as usize) {
        x.fate = Fate::Admitted;
        x.admitted_at_ms = p.admitted_at_ms;
    }
    Polled::Admitted {
        arrival: v.arrival,
        joined: w.origin + Duration::from_micros(v.sent_us),
        token,
    }
}

/// The event's availability says 0.
async fn sold_out_now(
    ctx: &Shared,
    w: &WaitingCtx,
    user: &mut GooseUser,
) -> Result<bool, Box<TransactionError>> {
    let path = format!("/api/events/{}", w.event_id);
    let a = call(user, ctx, Req::get("GET /api/events/{id}", &path)).await?;
    Ok(a.view::<EventView>()
        .is_some_and(|e| e.available_count == 0))
}

impl WaitingCtx {
    /// The figures so far; `arrivals_peak_per_s` and `started` (when the
    /// arrivals began) from the open schedule, `shop` the shop phase's
    /// merged percentiles (the run computes them).
    pub fn figures(
        &self,
        arrivals_peak_per_s: u64,
        started: Option<Instant>,
        shop: Percentiles,
    ) -> WaitingFigures {
        let late = started.map_or(Duration::ZERO, |s| {
            s.saturating_duration_since(self.planned_start)
        });
        let all = self.visitors().clone();
        // The figures are the places': a rejoin shares another's place.
        let v = places(&all);
        let rejoined = (all.len() - v.len()) as u64;
        let count = |f: Fate| v.iter().filter(|x| x.fate == f).count() as u64;
        let joined: Vec<Joined> = v
            .iter()
            .filter_map(|x| {
                Some(Joined {
                    sent_us: x.sent_us,
                    answered_us: x.answered_us,
                    prequeue: x.prequeue,
                    admitted_at_ms: x.admitted_at_ms?,
                })
            })
            .collect();
        let fifo: Vec<Joined> = joined.iter().copied().filter(|j| !j.prequeue).collect();
        let (from_s, per_s) = per_second(&joined);
        WaitingFigures {
            event_id: self.event_id.clone(),
            admit_per_s: self.admit_per_s,
            active_max: self.active_max,
            on_sale_at_ms: self.on_sale_at_ms,
            prequeue_planned_ms: self.prequeue.as_millis() as u64,
            prequeue_ms: self.prequeue.saturating_sub(late).as_millis() as u64,
            joined: v.len() as u64,
            prequeue: v.iter().filter(|x| x.prequeue).count() as u64,
            join_failed: self.join_failed.load(Ordering::Relaxed),
            rejoined,
            admitted: count(Fate::Admitted),
            told_sold_out: count(Fate::ToldSoldOut),
            lost: count(Fate::Lost),
            unresolved: count(Fate::Unresolved) + count(Fate::Waiting),
            polls: self.polls.load(Ordering::Relaxed),
            wait: Percentiles::of(&self.wait.lock().unwrap_or_else(|e| e.into_inner())),
            admitted_per_s_max: per_s.iter().copied().max().unwrap_or(0),
            admitted_from_s: from_s,
            admitted_per_s: per_s,
            out_of_order: fairness::admitted_out_of_order(&joined),
            kendall_tau: fairness::kendall_tau_b(&joined),
            kendall_tau_fifo: fairness::kendall_tau_b(&fifo),
            arrivals_per_admission: arrivals_peak_per_s as f64 / f64::from(self.admit_per_s.max(1)),
            shop,
            samples: self
                .samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// Admissions per second of the queue's clock: the first admission's Unix
/// second, and the count in each second from it (bounded by the record's
/// timeline bound).
fn per_second(joined: &[Joined]) -> (u64, Vec<u64>) {
    let Some(first) = joined.iter().map(|j| j.admitted_at_ms / 1000).min() else {
        return (0, Vec::new());
    };
    let mut out = Vec::new();
    for j in joined {
        let s = (j.admitted_at_ms / 1000 - first) as usize;
        if s >= crate::record::TIMELINE_SECONDS_MAX {
            continue;
        }
        if out.len() <= s {
            out.resize(s + 1, 0);
        }
        out[s] += 1;
    }
    (first, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(ticket: &str, sent_us: u64, fate: Fate, admitted_at_ms: Option<u64>) -> Visitor {
        Visitor {
            arrival: sent_us,
            ticket: ticket.into(),
            sent_us,
            answered_us: sent_us + 1,
            prequeue: false,
            polls: 1,
            admitted_at_ms,
            fate,
        }
    }

    #[test]
    fn visitors_sharing_a_ticket_are_one_place_with_the_best_fate() {
        let all = [
            visitor("q_a", 10, Fate::Lost, None),
            visitor("q_b", 20, Fate::Lost, None),
            // The account's other bot, admitted on q_a: q_a was admitted.
            visitor("q_a", 30, Fate::Admitted, Some(7)),
            visitor("q_c", 40, Fate::ToldSoldOut, None),
            visitor("q_c", 5, Fate::Unresolved, None),
        ];
        let p = places(&all);
        assert_eq!(p.len(), 3);
        assert_eq!(
            (p[0].fate, p[0].admitted_at_ms, p[0].sent_us),
            (Fate::Admitted, Some(7), 10)
        );
        assert_eq!(p[1].fate, Fate::Lost, "lost only when nobody else had it");
        assert_eq!(
            (p[2].fate, p[2].sent_us),
            (Fate::ToldSoldOut, 5),
            "the earliest join"
        );
    }
}
