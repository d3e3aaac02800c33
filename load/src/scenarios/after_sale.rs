//! After the sale, for `purchase` and `onsale` (`--cancel-share`): a share
//! of buyers cancel their confirmed order (a tenth send the cancel twice,
//! with another key: the second must start nothing) and poll it until
//! REFUNDED or REFUND_FAILED. What they saw goes into the client truth the
//! audit holds the system to, and the counts into the run's figures.

use super::shared::{Req, Shared, call, poll_order, state, token};
use crate::summary::AfterSaleFigures;
use goose::prelude::*;
use hdrhistogram::Histogram;
use rand::Rng;
use std::sync::Mutex;
use std::time::Duration;
use ticketing_domain::OrderStatus;
use tokio::time::Instant;

/// What the scenario's buyers do after the sale, and what came of it.
#[derive(Debug)]
pub struct AfterSale {
    /// Share of confirmed orders cancelled, in [0, 1].
    pub share: f64,
    /// Longest a user polls one cancellation.
    pub poll_timeout: Duration,
    counts: Mutex<AfterSaleFigures>,
    time_to_refunded: Mutex<Histogram<u64>>,
}

/// Whether the buyer cancelled its order (the cancellation owns the
/// client truth then) or kept it (the caller records the sale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Kept,
    Cancelled,
}

impl AfterSale {
    pub fn new(share: f64, poll_timeout: Duration) -> Self {
        Self {
            share: share.clamp(0.0, 1.0),
            poll_timeout,
            counts: Mutex::new(AfterSaleFigures::default()),
            time_to_refunded: Mutex::new(crate::record::new_histogram()),
        }
    }

    fn count(&self, f: impl FnOnce(&mut AfterSaleFigures)) {
        f(&mut self.counts.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The figures so far.
    pub fn figures(&self) -> AfterSaleFigures {
        let mut f = self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let h = self
            .time_to_refunded
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f.time_to_refunded = crate::record::Percentiles::of(&h);
        f
    }

    /// A buyer whose order is CONFIRMED: cancels it (with the share's
    /// chance) and follows the cancellation to its end.
    pub async fn maybe_cancel(
        &self,
        ctx: &Shared,
        user: &mut GooseUser,
        order_id: &str,
        (event, seats): (&str, &[String]),
    ) -> Result<Kept, Box<TransactionError>> {
        if self.share <= 0.0 || !state::<()>(user).rng.random_bool(self.share) {
            return Ok(Kept::Kept);
        }
        self.count(|c| c.cancels += 1);
        let asked = Instant::now();
        if !self.ask(ctx, user, order_id).await? {
            // Refused: told CONFIRMED and not cancelled.
            return Ok(Kept::Kept);
        }
        let until = super::shared::poll_until(ctx, asked, self.poll_timeout);
        match poll_order(user, ctx, order_id, until).await? {
            Some(s @ (OrderStatus::Refunded | OrderStatus::RefundFailed)) => {
                self.ended(s, asked);
                if s == OrderStatus::Refunded {
                    self.count(|c| c.seats_returned += seats.len() as u64);
                }
                let what = (event.to_owned(), seats.to_vec(), s);
                ctx.truth().after_sale.insert(order_id.to_owned(), what);
            }
            _ => self.count(|c| c.cancels_unresolved += 1),
        }
        Ok(Kept::Cancelled)
    }

    /// `POST /api/orders/{id}/cancel` (a tenth of the time twice, with
    /// another key); whether every ask was taken (202).
    async fn ask(
        &self,
        ctx: &Shared,
        user: &mut GooseUser,
        order_id: &str,
    ) -> Result<bool, Box<TransactionError>> {
        let path = format!("/api/orders/{order_id}/cancel");
        let twice = state::<()>(user).rng.random_bool(0.1);
        for _ in 0..=usize::from(twice) {
            let key = token(&mut state::<()>(user).rng);
            let headers = [("Idempotency-Key", key.as_str())];
            let req = Req {
                name: "POST /api/orders/{id}/cancel",
                method: GooseMethod::Post,
                path: &path,
                body: None,
                headers: &headers,
                expected: &[],
            };
            if !call(user, ctx, req).await?.is(202) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn ended(&self, s: OrderStatus, asked: Instant) {
        if s == OrderStatus::Refunded {
            let took_us = asked.elapsed().as_micros().max(1) as u64;
            let mut h = self
                .time_to_refunded
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let _ = h.record(took_us.min(crate::record::LATENCY_US_MAX));
        }
        self.count(|c| match s {
            OrderStatus::Refunded => c.refunded += 1,
            _ => c.refund_failed += 1,
        });
    }
}
