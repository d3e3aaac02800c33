//! The onsale's scalper bots (`--scalper-share`): arrivals that act for one
//! of a few shared accounts (`--scalper-accounts`), several bots per account
//! at once, as a scalper runs one account from many machines. A bot grabs
//! the best seats it can see, four at a time, as fast as it is answered:
//! each hold it wins it extends at once and buys; a refusal (409
//! `CUSTOMER_LIMIT`, 429 `RATE_LIMITED`) only makes it pause briefly and try
//! again — it ignores `Retry-After`, as abusers do.
//!
//! The bots are what the per-customer limits are for: the gate checks that
//! no account got more than the limit (invariant 9, in the audit), that
//! honest people still bought, and that the 429s went to the bots.
//!
//! Every loop is bounded by [`ROUNDS_MAX`] and the run's deadline.

use super::onsale::{OnsaleCtx, admission_header, bought, statuses, won};
use super::shared::{
    Req, Shared, act_for, body, call, place_order_expecting, poll_order, poll_until, state, token,
};
use goose::prelude::*;
use std::time::Duration;
use ticketing_contract::{ExtendBody, HoldBody, HoldView};
use ticketing_domain::{OrderStatus, SeatStatus};
use tokio::time::Instant;

/// Hold attempts per bot.
pub const ROUNDS_MAX: u32 = 20;
/// Seats a bot asks for in each hold (the limit is per account, not per hold).
const HOLD_SEATS: usize = 4;
/// Rounds between re-reads of the statuses.
const REFRESH_EVERY: u32 = 3;
/// The pause after a refusal (far shorter than any `Retry-After`).
const REFUSED_PAUSE: Duration = Duration::from_millis(50);

/// Refusals the bots expect: a taken seat or the limit (409), the rates (429).
const HOLD_EXPECTED: &[u16] = &[409, 429];
/// Through a waiting room, also 403: the account's admission is spent.
const HOLD_ADMITTED_EXPECTED: &[u16] = &[403, 409, 429];
/// An extend or order may also find the hold gone (410) or pinned (409).
const HOLD_USE_EXPECTED: &[u16] = &[409, 410, 429];

/// The shared account `account` of this run (a customer id).
pub fn account_name(seed: u64, account: u32) -> String {
    format!("load-{seed:x}-scalper-{account}")
}

/// One bot, acting for `account` (with the waiting room's `admission`, if any).
pub async fn scalp(
    ctx: &Shared,
    o: &OnsaleCtx,
    user: &mut GooseUser,
    account: u32,
    admission: Option<&str>,
) -> TransactionResult {
    act_for(ctx, user, account_name(ctx.seed, account));
    o.count_scalpers(|sc| sc.bots += 1);
    let admission: Vec<(&str, &str)> = admission_header(admission).collect();
    let headers = admission.as_slice();
    let mut status: Option<Vec<SeatStatus>> = None;
    for round in 0..ROUNDS_MAX {
        if ctx.past_deadline() {
            break;
        }
        if status.is_none() || round % REFRESH_EVERY == 0 {
            status = statuses(ctx, o, user).await?;
        }
        let Some(now) = status.as_mut() else {
            continue;
        };
        let picked = o.pick(now, HOLD_SEATS, &mut state::<()>(user).rng);
        if picked.is_empty() {
            break;
        }
        let seats: Vec<String> = picked.iter().map(|i| o.seat_ids[*i].clone()).collect();
        let hold = body(&HoldBody {
            event_id: o.event_id.clone(),
            seat_ids: seats.clone(),
            hold_seconds: o.hold_seconds,
        });
        let mut req = Req::post("POST /api/reservations", "/api/reservations", &hold);
        req.expected = match admission.is_empty() {
            true => HOLD_EXPECTED,
            false => HOLD_ADMITTED_EXPECTED,
        };
        req.headers = headers;
        let a = call(user, ctx, req).await?;
        if let Some(h) = a.view::<HoldView>().filter(|_| a.is(201)) {
            won(ctx, o, user, &h, &seats);
            o.count_scalpers(|sc| sc.holds += 1);
            extend_and_buy(ctx, o, user, &h.hold_id.to_string(), &seats).await?;
            continue;
        }
        let code = a.json.as_ref().and_then(|j| j.get("code")?.as_str());
        if code == Some("CUSTOMER_LIMIT") {
            o.count_scalpers(|sc| sc.limit_refusals += 1);
        } else if a.is(403) {
            // The account's one place in line is spent: nothing more to hold with.
            o.count_scalpers(|sc| sc.admission_refusals += 1);
            break;
        } else if a.is(409) {
            for i in picked {
                now[i] = SeatStatus::Held;
            }
            continue;
        }
        super::shared::pause(ctx, REFUSED_PAUSE).await;
    }
    Ok(())
}

/// Extends a won hold (as far as it may), then buys it; releases it when
/// the order is refused (the bot moves on to the next seats).
async fn extend_and_buy(
    ctx: &Shared,
    o: &OnsaleCtx,
    user: &mut GooseUser,
    hold_id: &str,
    seats: &[String],
) -> TransactionResult {
    let path = format!("/api/reservations/{hold_id}/extend");
    let ext = body(&ExtendBody {
        hold_seconds: o.hold_seconds,
    });
    let mut req = Req::post("POST /api/reservations/{id}/extend", &path, &ext);
    req.expected = HOLD_USE_EXPECTED;
    let a = call(user, ctx, req).await?;
    if let Some(h) = a.view::<HoldView>().filter(|_| a.is(200)) {
        ctx.truth()
            .holds
            .push((o.event_id.clone(), seats.to_vec(), h.expires_at_ms));
        ctx.history(|hi| hi.extended(hold_id, h.expires_at_ms));
    }
    let key = token(&mut state::<()>(user).rng);
    ctx.history(|hi| hi.ended(hold_id, crate::client::wall_ms()));
    let placed = place_order_expecting(user, ctx, hold_id, &key, HOLD_USE_EXPECTED).await?;
    let Some(order_id) = placed else {
        release(ctx, user, hold_id).await?;
        return Ok(());
    };
    let until = poll_until(ctx, Instant::now(), o.poll_timeout);
    if poll_order(user, ctx, &order_id, until).await? == Some(OrderStatus::Confirmed) {
        o.sold(seats.len() as u64);
        o.count_scalpers(|sc| sc.seats_sold += seats.len() as u64);
        bought(ctx, o, user, &order_id, seats);
    }
    Ok(())
}

/// Gives a hold back (a gone hold, 404/410, is fine).
async fn release(ctx: &Shared, user: &mut GooseUser, hold_id: &str) -> TransactionResult {
    let path = format!("/api/reservations/{hold_id}");
    let mut req = Req::get("DELETE /api/reservations/{id}", &path);
    req.method = GooseMethod::Delete;
    req.expected = &[404, 409, 410];
    call(user, ctx, req).await?;
    Ok(())
}
