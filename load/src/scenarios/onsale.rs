//! `onsale`: a flash sale. One event of `--seats` opens; `--arrivals` people
//! arrive over `--arrival-window` (the open model: they come whether or not
//! the site keeps up), more people than seats. Each person reads the event,
//! reads the seat statuses (the compact form; the layout is the page's
//! static asset, fetched once by the harness as a browser cache would keep
//! it), picks 1–4 seats next to each other near the best still available,
//! holds them, orders with an Idempotency-Key and polls the order until it
//! is terminal. A taken seat (409) is retried up to a bound, re-reading the
//! statuses; a person gives up when nothing is left.
//!
//! With `--scalper-share`, that share of the arrivals are scalper bots
//! (`scalpers`, which builds on this module; `mod.rs` sends each arrival
//! to one or the other).
//!
//! Every loop is bounded by [`ATTEMPTS_MAX`] and the run's deadline.

use super::after_sale::{AfterSale, Kept};
use super::shared::{Req, Shared, body, call, place_order, poll_order, state, token};
use crate::summary::{OnsaleFigures, ScalperFigures};
use goose::prelude::*;
use hdrhistogram::Histogram;
use rand::Rng;
use std::sync::Mutex;
use std::time::Duration;
use ticketing_contract::{EventView, HoldBody, HoldView, SeatStatusView};
use ticketing_domain::{OrderStatus, SeatStatus};
use tokio::time::Instant;

/// Hold attempts per person before they give up.
pub const ATTEMPTS_MAX: u32 = 6;
/// A person picks among the best available seats: at least this many,
/// or an eighth of those still available (people spread over the good
/// part of the hall; near the end everyone fights for the last ones).
const BEST_CANDIDATES_MIN: usize = 48;
const BEST_SHARE_DIVISOR: usize = 8;
/// Conflicts before a person re-reads the statuses.
const CONFLICTS_BEFORE_REFRESH: u32 = 2;

#[derive(Debug)]
pub struct OnsaleCtx {
    pub event_id: String,
    /// The layout (seat ids, rows, columns) in the status string's order.
    pub seat_ids: Vec<String>,
    rows: Vec<u32>,
    cols: Vec<u32>,
    /// Layout positions from the best seat (front row, centre) to the worst.
    best_first: Vec<u32>,
    pub hold_seconds: u64,
    pub poll_timeout: Duration,
    counts: Mutex<OnsaleFigures>,
    time_to_confirm: Mutex<Histogram<u64>>,
    first_arrival: Mutex<Option<Instant>>,
    last_sale: Mutex<Option<Instant>>,
    /// The scalpers' share of the arrivals (`None`: none).
    pub scalping: Option<Scalping>,
    /// Buyers who cancel (`--cancel-share`; none by default).
    pub after_sale: AfterSale,
}

/// `--scalper-share` and `--scalper-accounts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scalping {
    /// Arrivals in every hundred that are bots (1–50).
    pub share_pct: u32,
    /// Accounts the bots share (bot `k` acts for account `k % accounts`).
    pub accounts: u32,
    /// How many arrivals are bots (set from the schedule's length).
    pub bots: u64,
}

impl Scalping {
    /// With the bots' count for a schedule of `arrivals`.
    pub fn for_arrivals(mut self, arrivals: u64) -> Scalping {
        self.bots = (arrivals * u64::from(self.share_pct)).div_ceil(100);
        self
    }

    /// The account arrival `index` acts for, if it is a bot. Bots come
    /// first, as they do at a real on-sale (they wait for the second it
    /// opens): the first [`Scalping::bots`] arrivals of the schedule.
    pub fn account_of(&self, index: u64) -> Option<u32> {
        (index < self.bots).then(|| (index % u64::from(self.accounts.max(1))) as u32)
    }
}

impl OnsaleCtx {
    /// `layout`: (seat id, row, column) in the status string's order.
    pub fn new(event_id: String, layout: Vec<(String, u32, u32)>, hold_seconds: u64) -> Self {
        let cols_max = layout.iter().map(|s| s.2).max().unwrap_or(1);
        let mut best_first: Vec<u32> = (0..layout.len() as u32).collect();
        best_first.sort_by_key(|i| {
            let (_, r, c) = &layout[*i as usize];
            (*r, (2 * c).abs_diff(cols_max + 1))
        });
        let counts = OnsaleFigures {
            event_id: event_id.clone(),
            seats: layout.len() as u64,
            ..OnsaleFigures::default()
        };
        OnsaleCtx {
            event_id,
            rows: layout.iter().map(|s| s.1).collect(),
            cols: layout.iter().map(|s| s.2).collect(),
            seat_ids: layout.into_iter().map(|s| s.0).collect(),
            best_first,
            hold_seconds,
            poll_timeout: Duration::from_secs(30),
            counts: Mutex::new(counts),
            time_to_confirm: Mutex::new(crate::record::new_histogram()),
            first_arrival: Mutex::new(None),
            last_sale: Mutex::new(None),
            scalping: None,
            after_sale: AfterSale::new(0.0, Duration::from_secs(30)),
        }
    }

    /// With scalpers (their count set by [`Scalping::for_arrivals`]), and
    /// their figures from zero.
    /// `seats_per_account`: the target's per-customer limit (0: none).
    pub fn with_scalpers(mut self, scalping: Scalping, seats_per_account: u32) -> Self {
        self.count(|c| {
            c.scalpers = Some(ScalperFigures {
                share_pct: scalping.share_pct,
                accounts: u64::from(scalping.accounts),
                seats_per_account: u64::from(seats_per_account),
                ..ScalperFigures::default()
            })
        });
        self.scalping = Some(scalping);
        self
    }

    /// Counts into the scalper figures (a no-op without scalpers).
    pub fn count_scalpers(&self, f: impl FnOnce(&mut ScalperFigures)) {
        self.count(|c| {
            if let Some(sc) = c.scalpers.as_mut() {
                f(sc);
            }
        });
    }

    /// A sale (of `seats` seats) was CONFIRMED now.
    pub fn sold(&self, seats: u64) {
        *self.last_sale.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.count(|c| c.seats_sold += seats);
    }

    pub(super) fn count(&self, f: impl FnOnce(&mut OnsaleFigures)) {
        f(&mut self.counts.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The figures so far (sell-out time: first arrival to the sale that
    /// sold the last seat), with the run's 429 counts by kind of customer.
    pub fn figures(&self, shared: &Shared) -> OnsaleFigures {
        use std::sync::atomic::Ordering::Relaxed;
        let mut f = self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(sc) = f.scalpers.as_mut() {
            sc.rate_limited = shared.rate_limited_shared.load(Relaxed);
            sc.honest_rate_limited = shared.rate_limited_honest.load(Relaxed);
        }
        f.time_to_confirm = crate::record::Percentiles::of(
            &self
                .time_to_confirm
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        let first = *self.first_arrival.lock().unwrap_or_else(|e| e.into_inner());
        let last = *self.last_sale.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(a), Some(b), true) = (first, last, f.seats_sold >= f.seats) {
            f.sell_out_ms = Some(b.saturating_duration_since(a).as_millis() as u64);
        }
        f.after_sale = (self.after_sale.share > 0.0).then(|| self.after_sale.figures());
        f
    }

    /// Up to `n` available seats side by side in one row, around a seat
    /// drawn from the best available ones (positions in layout order).
    pub(super) fn pick(&self, status: &[SeatStatus], n: usize, rng: &mut impl Rng) -> Vec<usize> {
        let available = status
            .iter()
            .filter(|s| **s == SeatStatus::Available)
            .count();
        let best: Vec<usize> = self
            .best_first
            .iter()
            .map(|i| *i as usize)
            .filter(|i| status.get(*i) == Some(&SeatStatus::Available))
            .take(BEST_CANDIDATES_MIN.max(available / BEST_SHARE_DIVISOR))
            .collect();
        if best.is_empty() {
            return Vec::new();
        }
        let anchor = best[rng.random_range(0..best.len())];
        let free = |i: usize| {
            i < status.len()
                && self.rows[i] == self.rows[anchor]
                && status[i] == SeatStatus::Available
        };
        // Grow a block of side-by-side seats around the anchor, right then
        // left, until it has `n` seats or both sides are blocked.
        let (mut lo, mut hi) = (anchor, anchor);
        let (mut right, mut left) = (true, true);
        while hi - lo + 1 < n && (right || left) {
            if right {
                right = free(hi + 1) && self.cols[hi + 1] == self.cols[hi] + 1;
                if right {
                    hi += 1;
                }
            }
            if left && hi - lo + 1 < n {
                left = lo > 0 && free(lo - 1) && self.cols[lo - 1] + 1 == self.cols[lo];
                if left {
                    lo -= 1;
                }
            }
        }
        (lo..=hi).collect()
    }
}

/// The statuses now (`None`: the read failed, recorded).
pub(super) async fn statuses(
    ctx: &Shared,
    o: &OnsaleCtx,
    user: &mut GooseUser,
) -> Result<Option<Vec<SeatStatus>>, Box<TransactionError>> {
    let path = format!("/api/events/{}/seats/status", o.event_id);
    let a = call(
        user,
        ctx,
        Req::get("GET /api/events/{id}/seats/status", &path),
    )
    .await?;
    Ok(a.view::<SeatStatusView>()
        .and_then(|v| v.statuses())
        .filter(|s| s.len() == o.seat_ids.len()))
}

/// The waiting room's admission token as a hold request's header, if any.
pub(super) fn admission_header(token: Option<&str>) -> impl Iterator<Item = (&'static str, &str)> {
    token.map(|t| ("X-Admission-Token", t)).into_iter()
}

/// Holds seats: a hold id and its seats, or `None` when the person gives up.
async fn hold(
    ctx: &Shared,
    o: &OnsaleCtx,
    user: &mut GooseUser,
    admission: Option<&str>,
) -> Result<Option<(String, Vec<String>)>, Box<TransactionError>> {
    let token_header: Vec<(&str, &str)> = admission_header(admission).collect();
    let headers = token_header.as_slice();
    let want = state::<()>(user).rng.random_range(1..=4usize);
    o.count_scalpers(|sc| sc.honest_seats_wanted += want as u64);
    let mut status: Option<Vec<SeatStatus>> = None;
    let mut conflicts = 0u32;
    for _ in 0..ATTEMPTS_MAX {
        if ctx.past_deadline() {
            break;
        }
        if status.is_none() || conflicts >= CONFLICTS_BEFORE_REFRESH {
            status = statuses(ctx, o, user).await?;
            conflicts = 0;
        }
        let Some(now) = status.as_mut() else {
            continue;
        };
        let picked = o.pick(now, want, &mut state::<()>(user).rng);
        if picked.is_empty() {
            o.count(|c| c.saw_sold_out += 1);
            return Ok(None);
        }
        let seats: Vec<String> = picked.iter().map(|i| o.seat_ids[*i].clone()).collect();
        let body = body(&HoldBody {
            event_id: o.event_id.clone(),
            seat_ids: seats.clone(),
            hold_seconds: o.hold_seconds,
        });
        let mut req = Req::post("POST /api/reservations", "/api/reservations", &body);
        req.expected = &[409];
        req.headers = headers;
        let a = call(user, ctx, req).await?;
        if let Some(h) = a.view::<HoldView>().filter(|_| a.is(201)) {
            won(ctx, o, user, &h, &seats);
            return Ok(Some((h.hold_id.to_string(), seats)));
        }
        if a.is(409) {
            o.count(|c| c.conflicts += 1);
            conflicts += 1;
            for i in picked {
                now[i] = SeatStatus::Held;
            }
        }
    }
    o.count(|c| c.gave_up += 1);
    Ok(None)
}

/// A hold the user won: in the client truth (the audit's lingering-hold
/// check) and, with customers, in their history (invariant 9).
pub(super) fn won(ctx: &Shared, o: &OnsaleCtx, user: &GooseUser, h: &HoldView, seats: &[String]) {
    let expires = h.expires_at_ms;
    ctx.truth()
        .holds
        .push((o.event_id.clone(), seats.to_vec(), expires));
    let id = h.hold_id.to_string();
    tell(ctx, user, |hi, client, customer, now| {
        hi.granted(client, customer, &id, &o.event_id, seats, expires, now)
    });
}

/// Records in the customer history (when the run keeps one and has
/// customers) what the user's customer was told now.
fn tell(
    ctx: &Shared,
    user: &GooseUser,
    f: impl FnOnce(&mut crate::customers::CustomerHistory, &str, &str, u64),
) {
    if let Some(customer) = ctx.customer_of(user) {
        let client = format!("goose user {}", user.weighted_users_index);
        let now = crate::client::wall_ms();
        ctx.history(|hi| f(hi, &client, &customer, now));
    }
}

/// The user's customer was told it bought `seats` (CONFIRMED).
pub(super) fn bought(
    ctx: &Shared,
    o: &OnsaleCtx,
    user: &GooseUser,
    order_id: &str,
    seats: &[String],
) {
    ctx.truth()
        .confirmed
        .insert(order_id.to_owned(), (o.event_id.clone(), seats.to_vec()));
    tell(ctx, user, |hi, client, customer, now| {
        hi.bought(client, customer, &o.event_id, seats, now)
    });
}

impl OnsaleCtx {
    /// The shared account the user's arrival acts for, if it is a scalper
    /// bot (the arrival's number is the user state's).
    pub fn bot_account(&self, user: &mut GooseUser) -> Option<u32> {
        let index = state::<()>(user).number;
        self.scalping.and_then(|sc| sc.account_of(index))
    }
}

impl OnsaleCtx {
    /// A person arrived (now): counted, and the first arrival kept.
    pub fn arrive(&self) -> Instant {
        let arrived = Instant::now();
        self.first_arrival
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(arrived);
        self.count(|c| c.arrivals += 1);
        arrived
    }

    /// Someone found nothing left (the waiting room then tells those
    /// still waiting).
    pub fn saw_sold_out(&self) -> bool {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saw_sold_out
            > 0
    }
}

/// A person who arrived at `arrived` shops: reads the event, holds (with
/// the waiting room's `admission` token, if any), orders, polls to the end.
pub async fn shop(
    ctx: &Shared,
    o: &OnsaleCtx,
    user: &mut GooseUser,
    arrived: Instant,
    admission: Option<&str>,
) -> TransactionResult {
    let path = format!("/api/events/{}", o.event_id);
    let ev = call(user, ctx, Req::get("GET /api/events/{id}", &path)).await?;
    if ev
        .view::<EventView>()
        .is_some_and(|e| e.available_count == 0)
    {
        o.count(|c| c.saw_sold_out += 1);
        return Ok(());
    }
    let Some((hold_id, seats)) = hold(ctx, o, user, admission).await? else {
        return Ok(());
    };
    let key = token(&mut state::<()>(user).rng);
    let placed = Instant::now();
    ctx.history(|h| h.ended(&hold_id, crate::client::wall_ms()));
    let Some(order_id) = place_order(user, ctx, &hold_id, &key).await? else {
        o.count(|c| c.refused += 1);
        return Ok(());
    };
    let until = super::shared::poll_until(ctx, placed, o.poll_timeout);
    let status = poll_order(user, ctx, &order_id, until).await?;
    match status {
        Some(OrderStatus::Confirmed) => {
            let now = Instant::now();
            let _ = o
                .time_to_confirm
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(now.saturating_duration_since(arrived).as_micros().max(1) as u64);
            let n = seats.len() as u64;
            o.sold(n);
            o.count(|c| c.buyers += 1);
            o.count_scalpers(|sc| sc.honest_seats_sold += n);
            let after = o
                .after_sale
                .maybe_cancel(ctx, user, &order_id, (&o.event_id, &seats));
            if after.await? == Kept::Kept {
                bought(ctx, o, user, &order_id, &seats);
            }
        }
        Some(_) => o.count(|c| c.not_confirmed += 1),
        None => o.count(|c| c.unresolved += 1),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn hall(rows: u32, cols: u32) -> OnsaleCtx {
        let mut layout = Vec::new();
        for r in 1..=rows {
            for c in 1..=cols {
                layout.push((format!("{r}-{c}"), r, c));
            }
        }
        OnsaleCtx::new("e".into(), layout, 60)
    }

    #[test]
    fn a_person_picks_adjacent_available_seats_near_the_front_centre() {
        let o = hall(10, 10);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let all = vec![SeatStatus::Available; 100];
        for _ in 0..50 {
            let p = o.pick(&all, 4, &mut rng);
            assert_eq!(p.len(), 4, "{p:?}");
            let row = o.rows[p[0]];
            assert!(p.iter().all(|i| o.rows[*i] == row), "one row: {p:?}");
            let mut cols: Vec<u32> = p.iter().map(|i| o.cols[*i]).collect();
            cols.sort_unstable();
            assert!(
                cols.windows(2).all(|w| w[1] == w[0] + 1),
                "side by side: {cols:?}"
            );
            // The 48 best seats of a 10-wide hall are its first five rows.
            assert!(row <= 5, "near the front: row {row}");
        }
        // Only two seats left, far apart: each pick is one of them, alone.
        let mut two = vec![SeatStatus::Sold; 100];
        two[99] = SeatStatus::Available;
        two[0] = SeatStatus::Available;
        for _ in 0..10 {
            let p = o.pick(&two, 3, &mut rng);
            assert!(p == [0] || p == [99], "{p:?}");
        }
        assert!(o.pick(&[SeatStatus::Held; 100], 2, &mut rng).is_empty());
    }
}
