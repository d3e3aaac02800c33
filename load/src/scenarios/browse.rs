//! `browse`: read-heavy traffic — the event list, one event, its seat map —
//! with a short think time between pages.

use super::shared::{Req, Shared, call, pause, state};
use goose::prelude::*;
use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct BrowseCtx {
    /// Events whose pages are read (the run's events).
    pub events: Vec<String>,
    /// Think time between pages, in ms (uniform in [0, max]).
    pub think_ms_max: u64,
}

pub async fn browse(ctx: &Shared, b: &BrowseCtx, user: &mut GooseUser) -> TransactionResult {
    if ctx.past_deadline() || b.events.is_empty() {
        pause(ctx, Duration::from_millis(500)).await;
        return Ok(());
    }
    call(user, ctx, Req::get("GET /api/events", "/api/events")).await?;
    let (event, think) = {
        let s = state::<()>(user);
        let i = s.rng.random_range(0..b.events.len());
        let think = s.rng.random_range(0..=b.think_ms_max);
        (b.events[i].clone(), think)
    };
    pause(ctx, Duration::from_millis(think)).await;
    let path = format!("/api/events/{event}");
    call(user, ctx, Req::get("GET /api/events/{id}", &path)).await?;
    let path = format!("/api/events/{event}/seats");
    call(user, ctx, Req::get("GET /api/events/{id}/seats", &path)).await?;
    pause(ctx, Duration::from_millis(think)).await;
    Ok(())
}
