//! Coverage probes ("sometimes" assertions): named interesting states the
//! real code marks when it reaches them, so the simulator can say which
//! runs reached them and fail a plan whose declared states none of its
//! seeds reached — proof that a fault reaches the code it is named for.
//!
//! [`reached`] is a thread-local lookup and nothing more unless a recorder
//! is installed on the thread ([`recording`]); only the simulator installs
//! one (turmoil runs a whole world on one thread, one world per thread).
//! Outside it every probe is a no-op. The names are [`Probe`]'s, a closed
//! list, so a typo cannot declare a state nobody marks.
//!
//! Layer: domain; imports std only.

use std::cell::RefCell;
use std::collections::BTreeMap;

/// An interesting state. Its name (`as_str`) is what plans declare and
/// the sweep prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Probe {
    /// The saga asked to confirm seats whose hold had expired (the payment
    /// was in flight past the hold's time) and was refused.
    ConfirmRefusedAfterExpiry,
    /// A payment authorized for such an order was voided.
    PaymentVoided,
    /// A payment call timed out at the caller (the gateway may still have
    /// acted: the saga asks again with the same key).
    PaymentCallTimedOut,
    /// The payment client's circuit breaker opened.
    BreakerOpened,
    /// A call went through again after the breaker had been open.
    BreakerClosed,
    /// The outbox relay could not publish a row; the row stays unsent.
    OutboxPublishFailed,
    /// The relay published a row after an earlier failed try.
    OutboxResent,
    /// The saga dropped a bus message: one the repository had already
    /// recorded as processed, or one that no longer moves its order (a
    /// redelivered or late step).
    RedeliveryDeduplicated,
    /// An SSE reconnect from an id the feed no longer holds got a snapshot.
    SseResumeSnapshot,
    /// A waiting room's admission step (or the admitter's listing of the
    /// rooms) failed, its store unreachable: the
    /// room must lose no place and admit no one twice when it comes back.
    AdmissionStepFailed,
    /// Redis (seats and rooms) went down while holds were live (marked by
    /// the simulator, which sees the store's truth as the fault strikes).
    RedisCrashWithLiveHolds,
    /// An order replica went down while sagas were between steps (marked
    /// by the simulator).
    OrderCrashMidSaga,
    /// A cancelled order's refund call failed (the saga retries it with
    /// the same key).
    RefundRetried,
    /// A cancellation reached REFUNDED: money back, seats back on sale.
    OrderRefunded,
    /// A refund was given up after its deadline (REFUND_FAILED).
    RefundGaveUp,
    /// A seat returned by a cancellation was sold again to another order
    /// (marked by the simulator, which sees the tickets).
    ReturnedSeatResold,
}

impl Probe {
    /// Every probe, in a fixed order.
    pub const ALL: [Probe; 16] = [
        Probe::ConfirmRefusedAfterExpiry,
        Probe::PaymentVoided,
        Probe::PaymentCallTimedOut,
        Probe::BreakerOpened,
        Probe::BreakerClosed,
        Probe::OutboxPublishFailed,
        Probe::OutboxResent,
        Probe::RedeliveryDeduplicated,
        Probe::SseResumeSnapshot,
        Probe::AdmissionStepFailed,
        Probe::RedisCrashWithLiveHolds,
        Probe::OrderCrashMidSaga,
        Probe::RefundRetried,
        Probe::OrderRefunded,
        Probe::RefundGaveUp,
        Probe::ReturnedSeatResold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Probe::ConfirmRefusedAfterExpiry => "confirm-refused-after-expiry",
            Probe::PaymentVoided => "payment-voided",
            Probe::PaymentCallTimedOut => "payment-call-timed-out",
            Probe::BreakerOpened => "breaker-opened",
            Probe::BreakerClosed => "breaker-closed",
            Probe::OutboxPublishFailed => "outbox-publish-failed",
            Probe::OutboxResent => "outbox-resent",
            Probe::RedeliveryDeduplicated => "redelivery-deduplicated",
            Probe::SseResumeSnapshot => "sse-resume-snapshot",
            Probe::AdmissionStepFailed => "admission-step-failed",
            Probe::RedisCrashWithLiveHolds => "redis-crash-with-live-holds",
            Probe::OrderCrashMidSaga => "order-crash-mid-saga",
            Probe::RefundRetried => "refund-retried",
            Probe::OrderRefunded => "order-refunded",
            Probe::RefundGaveUp => "refund-gave-up",
            Probe::ReturnedSeatResold => "returned-seat-resold",
        }
    }

    /// The probe named `name` (as a plan file spells it).
    pub fn named(name: &str) -> Option<Probe> {
        Probe::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

thread_local! {
    static RECORDER: RefCell<Option<BTreeMap<Probe, u64>>> = const { RefCell::new(None) };
}

/// Marks `probe` as reached (counted when this thread records).
pub fn reached(probe: Probe) {
    RECORDER.with(|r| {
        if let Some(hits) = r.borrow_mut().as_mut() {
            *hits.entry(probe).or_default() += 1;
        }
    });
}

/// Runs `f` with a recorder on this thread: its result and how often each
/// probe was reached while it ran (a recorder already there is kept and
/// restored after, so recordings nest).
pub fn recording<T>(f: impl FnOnce() -> T) -> (T, BTreeMap<Probe, u64>) {
    let outer = RECORDER.with(|r| r.borrow_mut().replace(BTreeMap::new()));
    let out = f();
    let hits = RECORDER.with(|r| std::mem::replace(&mut *r.borrow_mut(), outer));
    (out, hits.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_count_only_while_recording() {
        reached(Probe::OutboxResent);
        let ((), hits) = recording(|| {
            reached(Probe::OutboxResent);
            reached(Probe::OutboxResent);
            let ((), inner) = recording(|| reached(Probe::BreakerOpened));
            assert_eq!(inner.get(&Probe::BreakerOpened), Some(&1));
        });
        assert_eq!(hits.get(&Probe::OutboxResent), Some(&2));
        assert_eq!(
            hits.get(&Probe::BreakerOpened),
            None,
            "the inner one kept it"
        );
        let ((), none) = recording(|| ());
        assert!(none.is_empty());
    }

    #[test]
    fn every_probe_is_found_by_its_name() {
        for p in Probe::ALL {
            assert_eq!(Probe::named(p.as_str()), Some(p));
        }
        assert_eq!(Probe::named("no-such-state"), None);
    }
}
