//! Readers waiting for an order to leave PENDING or CANCELLING
//! (`GET /api/orders/{id}?waitMs=`), and the feed that wakes them.
//!
//! A buyer who polls an order sends a request every few tens of
//! milliseconds and still sees the change late by up to one interval; a
//! reader that waits here sends one request and is answered as soon as
//! the order is terminal. The wake comes from the repository's status
//! feed (PostgreSQL's `LISTEN`, so a step made by any replica wakes
//! readers on every replica). The wake is only a shortcut: the
//! answer is always read from the repository, and a reader whose wake was
//! lost reads again at its deadline.
//!
//! Bounds: at most [`STATUS_WAITERS_MAX`] readers wait at once (past that
//! a reader is answered at once, as without `waitMs`), each for at most
//! [`STATUS_WAIT_MAX_MS`].
//!
//! Layer: bottom of `order`; imports the crate's `worker`, nothing of `order`.

use crate::worker;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_domain::OrderId;
use ticketing_domain::ports::{OrderRecord, OrderRepository};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Most readers waiting at once, over every order.
pub const STATUS_WAITERS_MAX: usize = 10_000;
/// Longest wait one request may ask for (`waitMs`).
pub const STATUS_WAIT_MAX_MS: u64 = 10_000;
/// Wakes one reader waits through before its last read: a wake is an
/// order of its turning terminal, so one is the rule; more only when a
/// stale wake (an earlier terminal step of the same order) came first.
const WAIT_ROUNDS: usize = 8;
/// Longest one wait on the repository's status feed.
const FEED_CALL_TIMEOUT_MS: u64 = 60_000;
/// Pause after the feed failed (the database is down), before listening again.
const FEED_RETRY_MS: u64 = 1_000;

#[derive(Debug, Default)]
struct Inner {
    /// Per order: its wake and how many readers hold it.
    orders: BTreeMap<OrderId, (Arc<Notify>, usize)>,
    total: usize,
}

/// The waiting readers of this process, by order.
#[derive(Debug, Clone, Default)]
pub struct StatusWaiters {
    inner: Arc<Mutex<Inner>>,
}

/// One reader's place; leaving it (drop) forgets the order when it was
/// the last reader of it.
#[derive(Debug)]
pub struct Waiter {
    waiters: StatusWaiters,
    order_id: OrderId,
    wake: Arc<Notify>,
}

impl StatusWaiters {
    /// A place for one reader of `order_id`, or `None` when
    /// [`STATUS_WAITERS_MAX`] readers wait already.
    pub fn wait_for(&self, order_id: &OrderId) -> Option<Waiter> {
        let mut inner = crate::lock(&self.inner);
        if inner.total >= STATUS_WAITERS_MAX {
            return None;
        }
        inner.total += 1;
        let entry = inner
            .orders
            .entry(order_id.clone())
            .or_insert_with(|| (Arc::new(Notify::new()), 0));
        entry.1 += 1;
        let wake = entry.0.clone();
        Some(Waiter {
            waiters: self.clone(),
            order_id: order_id.clone(),
            wake,
        })
    }

    /// Wakes every reader of `order_id` (they read it again).
    pub fn changed(&self, order_id: &OrderId) {
        let inner = crate::lock(&self.inner);
        if let Some((wake, _)) = inner.orders.get(order_id) {
            wake.notify_waiters();
        }
    }

    /// The order as `read` answers it: at once when `wait_ms` is 0, when
    /// it is terminal, or when [`STATUS_WAITERS_MAX`] readers wait already;
    /// else once a wake finds it terminal, or at `wait_ms` as it is then.
    pub async fn read_when_terminal<F, Fut, E>(
        &self,
        order_id: &OrderId,
        wait_ms: u64,
        read: F,
    ) -> Result<OrderRecord, E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<OrderRecord, E>>,
    {
        let waiter = match wait_ms {
            0 => None,
            _ => self.wait_for(order_id),
        };
        let Some(waiter) = waiter else {
            return read().await;
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
        for _ in 0..WAIT_ROUNDS {
            // Listening before reading: a change between the two still wakes.
            let woken = waiter.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let order = read().await?;
            if order.status().is_terminal() {
                return Ok(order);
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                break;
            }
        }
        read().await
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut inner = crate::lock(&self.waiters.inner);
        inner.total = inner.total.saturating_sub(1);
        if let Some(entry) = inner.orders.get_mut(&self.order_id) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                inner.orders.remove(&self.order_id);
            }
        }
    }
}

/// The task's name.
pub const STATUS_FEED: &str = "order-status-feed";

/// Wakes the readers of every order the repository's status feed names,
/// until shutdown; a failed feed is opened again after a pause.
pub async fn run_status_feed(
    repo: Arc<dyn OrderRepository>,
    waiters: StatusWaiters,
    shutdown: CancellationToken,
) {
    let call_timeout = Duration::from_millis(FEED_CALL_TIMEOUT_MS);
    let mut feed = None;
    loop {
        let next = async {
            let f = match &mut feed {
                Some(f) => f,
                None => feed.insert(repo.status_feed().await?),
            };
            f.next().await
        };
        let named = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(call_timeout, next) => r,
        };
        match named {
            Ok(Ok(ids)) => ids.iter().for_each(|id| waiters.changed(id)),
            // Nothing for a long while: wait again.
            Err(_) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "order status feed failed; waiting readers answer at their deadline");
                feed = None;
                if !worker::pause(FEED_RETRY_MS, &shutdown).await {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_are_bounded_counted_and_forgotten() {
        let w = StatusWaiters::default();
        let a = OrderId::from("a");
        let first = w.wait_for(&a).unwrap();
        let second = w.wait_for(&a).unwrap();
        assert!(Arc::ptr_eq(&first.wake, &second.wake), "one wake per order");
        assert_eq!(crate::lock(&w.inner).total, 2);
        drop(first);
        assert_eq!(crate::lock(&w.inner).orders.len(), 1);
        drop(second);
        assert_eq!(crate::lock(&w.inner).total, 0);
        assert!(crate::lock(&w.inner).orders.is_empty());
        let held: Vec<Waiter> = (0..STATUS_WAITERS_MAX)
            .map(|i| w.wait_for(&OrderId(format!("o{i}"))).unwrap())
            .collect();
        assert!(w.wait_for(&a).is_none(), "past the bound");
        drop(held);
        assert!(w.wait_for(&a).is_some());
    }

    #[tokio::test]
    async fn a_change_wakes_the_readers_of_that_order_only() {
        let w = StatusWaiters::default();
        let (a, b) = (OrderId::from("a"), OrderId::from("b"));
        let on_a = w.wait_for(&a).unwrap();
        let on_b = w.wait_for(&b).unwrap();
        let woken_a = on_a.wake.notified();
        let woken_b = on_b.wake.notified();
        tokio::pin!(woken_a, woken_b);
        woken_a.as_mut().enable();
        woken_b.as_mut().enable();
        w.changed(&a);
        tokio::time::timeout(Duration::from_secs(5), woken_a)
            .await
            .expect("a's reader woken");
        let b_woken = futures::FutureExt::now_or_never(woken_b).is_some();
        assert!(!b_woken, "b's reader woken by a's change");
    }
}
