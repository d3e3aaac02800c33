//! `purchase`: the whole journey. Browse the events, read one seat map, hold
//! 1–4 seats, place an order with an Idempotency-Key, poll it until it is
//! terminal. A share of users walk away from their hold; a share send the
//! order twice with the same key (both answers must name the same order);
//! with `--cancel-share`, a share cancel their confirmed order and poll it
//! to REFUNDED (`super::after_sale`).
//!
//! The run's purchase events are a pool of small events (a seat map a real
//! page would load), so seat maps stay small while the pool lasts.

use super::after_sale::{AfterSale, Kept};
use super::shared::{
    Req, Shared, available_seats, body, call, pause, place_order, poll_order, state, token,
};
use crate::summary::PurchaseFigures;
use goose::prelude::*;
use hdrhistogram::Histogram;
use rand::Rng;
use rand::seq::SliceRandom;
use std::sync::Mutex;
use std::time::Duration;
use ticketing_contract::{EventView, HoldBody, HoldView, SeatMapView};
use ticketing_domain::OrderStatus;
use tokio::time::Instant;

/// Hold attempts per purchase before the user gives up on this round.
const HOLD_TRIES: usize = 3;

#[derive(Debug)]
pub struct PurchaseCtx {
    pub events: Vec<String>,
    pub hold_seconds: u64,
    /// Share of users that walk away from their hold, in [0, 1].
    pub abandon_share: f64,
    /// Share of orders sent a second time with the same key, in [0, 1].
    pub retry_share: f64,
    /// Longest a user polls one order.
    pub poll_timeout: Duration,
    pub counts: Mutex<PurchaseFigures>,
    pub time_to_terminal: Mutex<Histogram<u64>>,
    /// Buyers who cancel (`--cancel-share`; none by default).
    pub after_sale: AfterSale,
}

impl PurchaseCtx {
    pub fn new(events: Vec<String>, hold_seconds: u64, abandon: f64, retry: f64) -> Self {
        Self {
            events,
            hold_seconds,
            abandon_share: abandon,
            retry_share: retry,
            poll_timeout: Duration::from_secs(30),
            counts: Mutex::new(PurchaseFigures::default()),
            time_to_terminal: Mutex::new(crate::record::new_histogram()),
            after_sale: AfterSale::new(0.0, Duration::from_secs(30)),
        }
    }

    /// The figures so far, the after-sale ones included.
    pub fn figures(&self) -> PurchaseFigures {
        let mut f = self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let h = self
            .time_to_terminal
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f.time_to_terminal = crate::record::Percentiles::of(&h);
        f.after_sale = self.after_sale.figures();
        f
    }

    fn count(&self, f: impl FnOnce(&mut PurchaseFigures)) {
        f(&mut self.counts.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// One purchase, start to finish.
pub async fn purchase(ctx: &Shared, p: &PurchaseCtx, user: &mut GooseUser) -> TransactionResult {
    if ctx.past_deadline() {
        pause(ctx, Duration::from_millis(500)).await;
        return Ok(());
    }
    // Browse: the event list, then one of the run's events with seats left.
    let list = call(user, ctx, Req::get("GET /api/events", "/api/events")).await?;
    let listed = list.view::<Vec<EventView>>().unwrap_or_default();
    let mut open: Vec<&String> = p
        .events
        .iter()
        .filter(|id| {
            listed
                .iter()
                .any(|e| e.event_id.as_str() == id.as_str() && e.available_count > 0)
        })
        .collect();
    if open.is_empty() {
        if list.json.is_some() {
            p.count(|c| c.sold_out += 1);
        }
        pause(ctx, Duration::from_millis(1000)).await;
        return Ok(());
    }
    open.shuffle(&mut state::<()>(user).rng);
    let event = open[0].clone();
    p.count(|c| c.started += 1);
    // Each purchase is a new customer's (one customer may buy only
    // `limits.seats_per_event` seats of an event).
    super::shared::new_customer(ctx, user);

    // Seat map, then hold 1–4 seats (a 409 means someone was faster: pick again).
    let seats_path = format!("/api/events/{event}/seats");
    let map = call(
        user,
        ctx,
        Req::get("GET /api/events/{id}/seats", &seats_path),
    )
    .await?;
    let mut avail: Vec<String> = map
        .view::<SeatMapView>()
        .map(|m| available_seats(&m).into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    let mut hold = None;
    for _ in 0..HOLD_TRIES {
        if avail.is_empty() || ctx.past_deadline() {
            break;
        }
        let rng = &mut state::<()>(user).rng;
        let want = rng.random_range(1..=4usize).min(avail.len());
        avail.shuffle(rng);
        let picked: Vec<String> = avail.drain(..want).collect();
        let body = body(&HoldBody {
            event_id: event.clone(),
            seat_ids: picked.clone(),
            hold_seconds: p.hold_seconds,
        });
        let mut req = Req::post("POST /api/reservations", "/api/reservations", &body);
        req.expected = &[409];
        let a = call(user, ctx, req).await?;
        if a.is(201)
            && let Some(h) = a.view::<HoldView>()
        {
            let expires = a.expires_at_ms();
            ctx.truth()
                .holds
                .push((event.clone(), picked.clone(), expires));
            hold = Some((h.hold_id.to_string(), picked));
            break;
        }
        if !a.is(409) {
            break;
        }
    }
    let Some((hold_id, seats)) = hold else {
        return Ok(());
    };
    if state::<()>(user)
        .rng
        .random_bool(p.abandon_share.clamp(0.0, 1.0))
    {
        p.count(|c| c.abandoned += 1);
        return Ok(());
    }

    // Order with an Idempotency-Key; a share send it twice.
    let key = token(&mut state::<()>(user).rng);
    let placed = Instant::now();
    let Some(order_id) = place_order(user, ctx, &hold_id, &key).await? else {
        return Ok(());
    };
    if state::<()>(user)
        .rng
        .random_bool(p.retry_share.clamp(0.0, 1.0))
    {
        let again = place_order(user, ctx, &hold_id, &key).await?;
        let same = again.as_deref() == Some(order_id.as_str());
        p.count(|c| {
            c.retried += 1;
            if !same {
                c.retry_mismatches += 1;
            }
        });
    }

    // Poll until terminal (bounded by the poll timeout and the deadline + 10 s).
    let poll_until = super::shared::poll_until(ctx, placed, p.poll_timeout);
    let status = poll_order(user, ctx, &order_id, poll_until).await?;
    let took_us = placed.elapsed().as_micros().max(1) as u64;
    match status {
        Some(s) => {
            let _ = p
                .time_to_terminal
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(took_us.min(crate::record::LATENCY_US_MAX));
            p.count(|c| match s {
                OrderStatus::Confirmed => c.confirmed += 1,
                OrderStatus::Cancelled => c.cancelled += 1,
                _ => c.failed += 1,
            });
            if s == OrderStatus::Confirmed {
                let after = p
                    .after_sale
                    .maybe_cancel(ctx, user, &order_id, (&event, &seats));
                if after.await? == Kept::Kept {
                    ctx.truth().confirmed.insert(order_id, (event, seats));
                }
            }
        }
        None => p.count(|c| c.unresolved += 1),
    }
    Ok(())
}
