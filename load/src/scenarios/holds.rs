//! `holds`: a hold-and-release loop for throughput benchmarks. Each
//! iteration holds one random seat of the run's large event and releases it
//! at once, so the event never sells out and the rate is sustained; the
//! hold endpoint's figures give "hold throughput at p99 < X" when the user
//! count is swept (load/README.md, Benchmarks).

use super::shared::{Req, Shared, body, call, pause, state};
use goose::prelude::*;
use rand::Rng;
use std::time::Duration;
use ticketing_contract::{HoldBody, HoldView};

#[derive(Debug)]
pub struct HoldsCtx {
    pub event_id: String,
    pub seat_ids: Vec<String>,
}

pub async fn hold_release(ctx: &Shared, h: &HoldsCtx, user: &mut GooseUser) -> TransactionResult {
    if ctx.past_deadline() {
        pause(ctx, Duration::from_millis(500)).await;
        return Ok(());
    }
    let seat = {
        let i = state::<()>(user).rng.random_range(0..h.seat_ids.len());
        h.seat_ids[i].clone()
    };
    let body = body(&HoldBody {
        event_id: h.event_id.clone(),
        seat_ids: vec![seat.clone()],
        hold_seconds: 60,
    });
    let mut req = Req::post("POST /api/reservations", "/api/reservations", &body);
    // Two users can pick one seat: a lost race is the contract's answer.
    req.expected = &[409];
    let a = call(user, ctx, req).await?;
    if let Some(id) = a.view::<HoldView>().map(|h| h.hold_id) {
        // Known to the audit, in case the release below fails.
        ctx.truth()
            .holds
            .push((h.event_id.clone(), vec![seat.clone()], a.expires_at_ms()));
        let path = format!("/api/reservations/{id}");
        let release = Req {
            name: "DELETE /api/reservations/{id}",
            method: GooseMethod::Delete,
            path: &path,
            body: None,
            headers: &[],
            expected: &[],
        };
        call(user, ctx, release).await?;
    }
    Ok(())
}
