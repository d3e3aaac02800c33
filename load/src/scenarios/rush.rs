//! `rush`: N users race for one event's M seats at once. Each tries random
//! seats it has not seen taken until it wins one hold or sees the event sold
//! out; a 409 is the expected answer of a lost race, not an error. After
//! every few conflicts the user re-reads the seat map (what a real client
//! does), which also tells it when nothing is left.

use super::shared::{Answer, Req, Shared, available_seats, body, call, pause, state};
use goose::prelude::*;
use hdrhistogram::Histogram;
use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_contract::{HoldBody, SeatMapView};
use tokio::time::Instant;

/// Conflicts in a row before a user re-reads the seat map.
const CONFLICTS_BEFORE_REFRESH: u32 = 8;

#[derive(Debug)]
pub struct RushCtx {
    pub event_id: String,
    pub seat_ids: Arc<Vec<String>>,
    index: HashMap<String, u32>,
    pub hold_seconds: u64,
    /// Bound on one user's hold attempts.
    pub attempts_max: u32,
    /// Users that started the rush scenario.
    pub users: AtomicU64,
    pub won: AtomicU64,
    pub sold_out: AtomicU64,
    pub gave_up: AtomicU64,
    pub attempts: AtomicU64,
    first_attempt: Mutex<Option<Instant>>,
    last_win: Mutex<Option<Instant>>,
    pub time_to_win: Mutex<Histogram<u64>>,
}

impl RushCtx {
    pub fn new(event_id: String, seat_ids: Vec<String>, hold_seconds: u64) -> RushCtx {
        let index = seat_ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        let attempts_max = (seat_ids.len() as u32).saturating_mul(2).max(100);
        RushCtx {
            event_id,
            seat_ids: Arc::new(seat_ids),
            index,
            hold_seconds,
            attempts_max,
            users: AtomicU64::new(0),
            won: AtomicU64::new(0),
            sold_out: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            first_attempt: Mutex::new(None),
            last_win: Mutex::new(None),
            time_to_win: Mutex::new(crate::record::new_histogram()),
        }
    }

    /// From the first attempt to the last win.
    pub fn sell_out_ms(&self) -> Option<u64> {
        let first = (*self.first_attempt.lock().unwrap_or_else(|e| e.into_inner()))?;
        let last = (*self.last_win.lock().unwrap_or_else(|e| e.into_inner()))?;
        Some(last.saturating_duration_since(first).as_millis() as u64)
    }

    /// Every rush user finished: it won, or it saw the event sold out.
    pub fn finished(&self) -> u64 {
        self.won.load(Ordering::Relaxed) + self.sold_out.load(Ordering::Relaxed)
    }
}

/// One rush user's progress.
#[derive(Debug, Clone)]
pub struct RushUser {
    /// Seats (indices) not yet seen taken.
    candidates: Vec<u32>,
    done: bool,
}

/// Re-reads the seat map: the candidates become the AVAILABLE seats.
async fn refresh(
    ctx: &Shared,
    user: &mut GooseUser,
    rush: &RushCtx,
) -> Result<Option<Vec<u32>>, Box<TransactionError>> {
    let path = format!("/api/events/{}/seats", rush.event_id);
    let a: Answer = call(user, ctx, Req::get("GET /api/events/{id}/seats", &path)).await?;
    let Some(map) = a.view::<SeatMapView>() else {
        return Ok(None);
    };
    Ok(Some(
        available_seats(&map)
            .into_iter()
            .filter_map(|id| rush.index.get(id).copied())
            .collect(),
    ))
}

/// The rush transaction: attempts until won, sold out, or a bound is hit;
/// a finished user idles until the deadline (mix runs keep calling it).
pub async fn attempt(ctx: &Shared, rush: &RushCtx, user: &mut GooseUser) -> TransactionResult {
    if state::<RushUser>(user).own.as_ref().is_some_and(|r| r.done) {
        pause(ctx, Duration::from_millis(500)).await;
        return Ok(());
    }
    let mut me = state::<RushUser>(user)
        .own
        .take()
        .unwrap_or_else(|| RushUser {
            candidates: (0..rush.seat_ids.len() as u32).collect(),
            done: false,
        });
    let started = Instant::now();
    {
        let mut first = rush.first_attempt.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(started);
    }
    let mut conflicts = 0u32;
    let mut attempts = 0u32;
    let outcome = loop {
        if ctx.past_deadline() || attempts >= rush.attempts_max {
            break "gave up";
        }
        if me.candidates.is_empty()
            || (conflicts > 0 && conflicts.is_multiple_of(CONFLICTS_BEFORE_REFRESH))
        {
            match refresh(ctx, user, rush).await? {
                Some(avail) if avail.is_empty() => break "sold out",
                Some(avail) => me.candidates = avail,
                None => {
                    // The read failed (recorded): counts against the bound.
                    attempts += 1;
                    pause(ctx, Duration::from_millis(50)).await;
                }
            }
            conflicts += 1; // do not refresh again before the next attempt
            if me.candidates.is_empty() {
                continue;
            }
        }
        let pick = state::<RushUser>(user)
            .rng
            .random_range(0..me.candidates.len());
        let seat = rush.seat_ids[me.candidates[pick] as usize].clone();
        let body = body(&HoldBody {
            event_id: rush.event_id.clone(),
            seat_ids: vec![seat.clone()],
            hold_seconds: rush.hold_seconds,
        });
        attempts += 1;
        rush.attempts.fetch_add(1, Ordering::Relaxed);
        let mut req = Req::post("POST /api/reservations", "/api/reservations", &body);
        req.expected = &[409];
        let a = call(user, ctx, req).await?;
        if a.is(201) {
            let now = Instant::now();
            rush.won.fetch_add(1, Ordering::Relaxed);
            *rush.last_win.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
            let _ = rush
                .time_to_win
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(now.saturating_duration_since(started).as_micros().max(1) as u64);
            let expires = a.expires_at_ms();
            ctx.truth()
                .holds
                .push((rush.event_id.clone(), vec![seat], expires));
            break "won";
        } else if a.is(409) {
            conflicts += 1;
            me.candidates.swap_remove(pick);
        } else {
            // An error: recorded; back off a little before the next try.
            pause(ctx, Duration::from_millis(50)).await;
        }
    };
    match outcome {
        "sold out" => {
            rush.sold_out.fetch_add(1, Ordering::Relaxed);
        }
        "gave up" => {
            rush.gave_up.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
    me.done = true;
    me.candidates = Vec::new();
    state::<RushUser>(user).own = Some(me);
    Ok(())
}
