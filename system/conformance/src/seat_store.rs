//! Seat store conformance: atomic all-or-nothing holds under contention,
//! TTL expiry by the caller's clock, the confirm fence, pinning, the
//! extension cap, gap-free versions with a bounded history, and the
//! after-sale return fenced by the order.
//!
//! Factory contract: a fresh store whose change history keeps
//! [`HISTORY_LIMIT`] changes per event and remembers gone holds for an hour.

use std::future::Future;
use std::sync::Arc;
use ticketing_domain::ports::{
    ChangesSince, ConfirmOutcome, CustomerLimits, GoneReason, HoldRequest, LimitKind, Releaser,
    SeatStore, SeatStoreError,
};
use ticketing_domain::saga::FailureReason;
use ticketing_domain::{EventId, HoldId, OrderId, SeatId, SeatStatus};

/// Changes kept per event by stores under test.
pub const HISTORY_LIMIT: usize = 16;

fn ev() -> EventId {
    EventId::from("conf-event")
}

fn s(id: &str) -> SeatId {
    SeatId::from(id)
}

fn h(n: u32) -> HoldId {
    HoldId(format!("h_{n:032x}"))
}

fn o(n: u32) -> OrderId {
    OrderId(format!("order-{n}"))
}

fn req(n: u32, seats: &[&str], ttl_ms: u64) -> HoldRequest {
    HoldRequest {
        event_id: ev(),
        seat_ids: seats.iter().map(|x| s(x)).collect(),
        hold_id: h(n),
        ttl_ms,
        customer_id: None,
        limits: CustomerLimits::default(),
    }
}

/// `req` as `customer`'s, under `limits`.
fn creq(n: u32, seats: &[&str], customer: &str, limits: CustomerLimits) -> HoldRequest {
    HoldRequest {
        customer_id: Some(customer.to_owned()),
        limits,
        ..req(n, seats, 60_000)
    }
}

fn gone(reason: GoneReason, customer: Option<&str>) -> SeatStoreError {
    SeatStoreError::HoldGone {
        reason,
        customer_id: customer.map(str::to_owned),
    }
}

fn limit(kind: LimitKind, count: u32, limit: u32) -> SeatStoreError {
    SeatStoreError::CustomerLimit { kind, count, limit }
}

/// A store with one event of 2 rows x 4 seats (`1-1` .. `2-4`), 1000 cents each.
async fn setup<F, Fut>(make: &F) -> Arc<dyn SeatStore>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn SeatStore>>,
{
    let store = make().await;
    let seats: Vec<(SeatId, i64)> = (1..=2)
        .flat_map(|r| (1..=4).map(move |c| (SeatId(format!("{r}-{c}")), 1000)))
        .collect();
    store.create_event(&ev(), &seats).await.unwrap();
    // Idempotent: registering again changes nothing.
    store.create_event(&ev(), &seats).await.unwrap();
    store
}

async fn status(store: &dyn SeatStore, seat: &str) -> SeatStatus {
    store
        .seat_map(&ev())
        .await
        .unwrap()
        .seats
        .into_iter()
        .find(|(id, _)| id.as_str() == seat)
        .map(|(_, st)| st)
        .unwrap()
}

/// Many tasks race for the same seats: exactly one wins.
pub async fn racing_holds_have_one_winner<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn SeatStore>>,
{
    let store = setup(&make).await;
    let mut tasks = Vec::new();
    for n in 0..32u32 {
        let store = store.clone();
        // Overlapping requests: every one includes 1-2.
        let seats: &[&str] = if n % 2 == 0 {
            &["1-1", "1-2"]
        } else {
            &["1-2", "1-3"]
        };
        let r = req(n, seats, 60_000);
        tasks.push(tokio::spawn(async move { store.hold(r, 0).await }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(SeatStoreError::SeatsUnavailable(seats)) => assert!(seats.contains(&s("1-2"))),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    let map = store.seat_map(&ev()).await.unwrap();
    let held = map
        .seats
        .iter()
        .filter(|(_, st)| *st == SeatStatus::Held)
        .count();
    assert_eq!(held, 2, "the winner's two seats, nothing partial");
    assert_eq!(map.version, 2);
}

/// A refused multi-seat hold changes nothing; unknown events and seats are named.
pub async fn holds_are_all_or_nothing<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn SeatStore>>,
{
    let store = setup(&make).await;
    let hold = store.hold(req(1, &["1-1"], 60_000), 0).await.unwrap();
    assert_eq!(hold.amount_cents, 1000);
    assert_eq!(hold.expires_at_ms, 60_000);
    let err = store
        .hold(req(2, &["1-2", "1-1"], 60_000), 0)
        .await
        .unwrap_err();
    assert_eq!(err, SeatStoreError::SeatsUnavailable(vec![s("1-1")]));
    assert_eq!(status(store.as_ref(), "1-2").await, SeatStatus::Available);
    let err = store
        .hold(req(3, &["1-2", "9-9"], 60_000), 0)
        .await
        .unwrap_err();
    assert_eq!(err, SeatStoreError::UnknownSeats(vec![s("9-9")]));
    let mut other = req(4, &["1-1"], 60_000);
    other.event_id = EventId::from("nope");
    assert_eq!(
        store.hold(other, 0).await.unwrap_err(),
        SeatStoreError::UnknownEvent
    );
    let dup = store.hold(req(1, &["2-1"], 60_000), 0).await.unwrap_err();
    assert_eq!(dup, SeatStoreError::DuplicateHoldId);
    assert_eq!(store.availability(&ev()).await.unwrap(), (1, 7));
}

/// Holds expire by the caller's clock, with or without a sweep.
pub async fn holds_expire_at_their_ttl<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn SeatStore>>,
{
    let store = setup(&make).await;
    store
        .hold(req(1, &["1-1", "1-2"], 100), 1_000)
        .await
        .unwrap();
    assert!(store.get_hold(&h(1), 1_099).await.is_ok());
    assert_eq!(
        store.get_hold(&h(1), 1_100).await.unwrap_err(),
        gone(GoneReason::Expired, None)
    );
    // A new hold at expiry time succeeds without any sweep.
    store.hold(req(2, &["1-2"], 100), 1_100).await.unwrap();
    assert_eq!(status(store.as_ref(), "1-1").await, SeatStatus::Available);
    assert_eq!(status(store.as_ref(), "1-2").await, SeatStatus::Held);
    // The sweep expires the rest and reports how many holds it ended.
    assert_eq!(store.expire_due(5_000, 100).await.unwrap(), 1);
    assert_eq!(status(store.as_ref(), "1-2").await, SeatStatus::Available);
    assert_eq!(store.expire_due(5_000, 100).await.unwrap(), 0);
    assert_eq!(
        store.get_hold(&h(99), 0).await.unwrap_err(),
        SeatStoreError::HoldNotFound
    );
}

/// Only a live hold pinned to the order can be confirmed; confirm is idempotent.
pub async fn confirm_is_fenced<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn SeatStore>>,
{
    let store = setup(&make).await;
    store.hold(req(1, &["1-1"], 1_000), 0).await.unwrap();
    assert_eq!(
        store.confirm(&h(1), &o(1), None, 0).await.unwrap(),
        ConfirmOutcome::Rejected(FailureReason::HoldNotPinned),
        "unpinned"
    );
    store.pin(&h(1), &o(1), 500, 0).await.unwrap();
    assert_eq!(
        store.confirm(&h(1), &o(2), None, 0).await.unwrap(),
        ConfirmOutcome::Rejected(FailureReason::HoldNotPinned),
        "pinned to another order"
    );
    let confirmed = ConfirmOutcome::Confirmed {
        event_id: ev(),
        seat_ids: vec![s("1-1")],
    };
    let traced = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_eq!(
        store.confirm(&h(1), &o(1), Some(traced), 10).await.unwrap(),
        confirmed
    );
    // The SOLD change carries the confirm's trace context; the hold's did not.
    let ChangesSince::Changes(changes) = store.changes_since(&ev(), 0, 100).await.unwrap() else {
        panic!("history");
    };
    let traces: Vec<(SeatStatus, Option<&str>)> = changes
        .iter()
        .map(|c| (c.status, c.traceparent.as_deref()))
        .collect();
    assert_eq!(
        traces,
        vec![(SeatStatus::Held, None), (SeatStatus::Sold, Some(traced))]
    );
    assert_eq!(
        store.confirm(&h(1), &o(1), None, 20).await.unwrap(),
        confirmed,
        "idempotent"
    );
    assert_eq!(status(store.as_ref(), "1-1").await, SeatStatus::Sold);
    assert_eq!(
        store.sold_seats(&ev()).await.unwrap(),
        vec![(s("1-1"), o(1))]
    );
    assert!(
        store.hold(req(2, &["1-1"], 1_000), 30).await.is_err(),
        "sold stays sold"
    );

    // Expired before confirm: rejected, nothing sold.
    store.hold(req(3, &["1-2"], 100), 0).await.unwrap();
    store.pin(&h(3), &o(3), 50, 0).await.unwrap();
    assert_eq!(
        store.confirm(&h(3), &o(3), None, 100).await.unwrap(),
        ConfirmOutcome::Rejected(FailureReason::HoldExpired)
    );
    assert_eq!(status(store.as_ref(), "1-2").await, SeatStatus::Available);

    // Released by its order before confirm: rejected.
    store.hold(req(4, &["1-3"], 1_000), 0).await.unwrap();
    store.pin(&h(4), &o(4), 50, 0).await.unwrap();
    store
        .release(&h(4), Releaser::Order(o(4)), 1)
        .await
        .unwrap();
    assert_eq!(
        store.confirm(&h(4), &o(4), None, 2).await.unwrap(),
        ConfirmOutcome::Rejected(FailureReason::HoldReleased)
    );
    assert_eq!(
        store.confirm(&h(77), &o(4), None, 2).await.unwrap(),
        ConfirmOutcome::Rejected(FailureReason::HoldReleased),
        "unknown hold"
    );
}

/// Pinning is idempotent per order, exclusive across orders, keeps the hold
/// alive for the checkout window and blocks holder release and extension.
pub async fn pin_is_exclusive_and_extends<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn SeatStore>>,
{
    let store = setup(&make).await;
    store.hold(req(1, &["2-1"], 100), 0).await.unwrap();
    let pinned = store.pin(&h(1), &o(1), 1_000, 50).await.unwrap();
    assert_eq!(pinned.pinned_order, Some(o(1)));
    assert_eq!(pinned.expires_at_ms, 1_050);
    let again = store.pin(&h(1), &o(1), 5_000, 60).await.unwrap();
    assert_eq!(
        again.expires_at_ms, 1_050,
        "re-pin by the same order changes nothing"
    );
    assert_eq!(
        store.pin(&h(1), &o(2), 1_000, 60).await.unwrap_err(),
        SeatStoreError::HoldPinned
    );
    assert_eq!(
        store
            .release(&h(1), Releaser::Holder, 60)
            .await
            .unwrap_err(),
        SeatStoreError::HoldPinned
    );
    assert_eq!(
        store.extend(&h(1), 1_000, 10_000, 60).await.unwrap_err(),
        SeatStoreError::HoldPinned
    );
    // Release by another order leaves it alone; by its order frees the seat.
    store
        .release(&h(1), Releaser::Order(o(2)), 60)
        .await
        .unwrap();
    assert_eq!(status(store.as_ref(), "2-1").await, SeatStatus::Held);
    store
        .release(&h(1), Releaser::Order(o(1)), 60)
        .await
        .unwrap();
    assert_eq!(status(store.as_ref(), "2-1").await, SeatStatus::Available);
    store
        .release(&h(1), Releaser::Order(o(1)), 61)
        .await
        .unwrap();
    assert_eq!(
        store.pin(&h(1), &o(1), 1_000, 62).await.unwrap_err(),
        gone(GoneReason::Released, None)
    );
}

/// Extensions move expiry forward, never past created + max lifetime.
pub async fn extension_is_capped<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn SeatStore>>,
{
    let store = setup(&make).await;
    store.hold(req(1, &["2-2"], 100), 0).await.unwrap();
    assert_eq!(
        store
            .extend(&h(1), 100, 250, 50)
            .await
            .unwrap()
            .expires_at_ms,
        150
    );
    assert_eq!(
        store
            .extend(&h(1), 200, 250, 100)
            .await
            .unwrap()
            .expires_at_ms,
        250
    );
    assert_eq!(
        store.extend(&h(1), 200, 250, 120).await.unwrap_err(),
        SeatStoreError::ExtensionLimit
    );
    assert_eq!(
        store.extend(&h(1), 200, 250, 250).await.unwrap_err(),
        gone(GoneReason::Expired, None)
    );
}

/// Versions are gap-free; the history is bounded; too-old or future versions say so.
pub async fn changes_are_gap_free_and_bounded<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn SeatStore>>,
{
    let store = setup(&make).await;
    let ChangesSince::Changes(none) = store.changes_since(&ev(), 0, 100).await.unwrap() else {
        panic!("empty history is not too old");
    };
    assert!(none.is_empty());
    // 4 seats x 6 hold/release rounds = 48 changes > HISTORY_LIMIT.
    for round in 0..6u32 {
        store
            .hold(req(round, &["1-1", "1-2", "1-3", "1-4"], 1_000), 0)
            .await
            .unwrap();
        if round < 5 {
            store.release(&h(round), Releaser::Holder, 0).await.unwrap();
        }
    }
    let total = 4 * 11;
    let (version, available) = store.availability(&ev()).await.unwrap();
    assert_eq!((version, available), (total, 4));
    let from = total - HISTORY_LIMIT as u64;
    let ChangesSince::Changes(tail) = store.changes_since(&ev(), from, 100).await.unwrap() else {
        panic!("the last {HISTORY_LIMIT} changes are kept");
    };
    let versions: Vec<u64> = tail.iter().map(|c| c.version).collect();
    assert_eq!(versions, ((from + 1)..=total).collect::<Vec<_>>());
    assert_eq!(tail.last().unwrap().status, SeatStatus::Held);
    let ChangesSince::Changes(limited) = store.changes_since(&ev(), from, 3).await.unwrap() else {
        panic!("limit");
    };
    assert_eq!(limited.len(), 3);
    assert_eq!(
        store.changes_since(&ev(), 1, 100).await.unwrap(),
        ChangesSince::TooOld
    );
    assert_eq!(
        store.changes_since(&ev(), total + 5, 100).await.unwrap(),
        ChangesSince::TooOld
    );
    assert_eq!(
        store
            .changes_since(&EventId::from("nope"), 0, 1)
            .await
            .unwrap_err(),
        SeatStoreError::UnknownEvent
    );
}

/// 50 concurrent one-seat holds of one customer under a 3-seat limit:
/// exactly 3 are granted, every other one is refused by the limit (never a
/// read-then-write race), and nothing else is held.
pub async fn customer_seat_limit_holds_under_concurrency<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn SeatStore>>,
{
    let store = setup(&make).await;
    let limits = CustomerLimits {
        seats_per_event: 3,
        active_holds: 0,
    };
    let seats = ["1-1", "1-2", "1-3", "1-4", "2-1", "2-2", "2-3", "2-4"];
    let mut tasks = Vec::new();
    for n in 0..50u32 {
        let store = store.clone();
        let r = creq(n, &[seats[n as usize % 8]], "scalper", limits);
        tasks.push(tokio::spawn(async move { store.hold(r, 0).await }));
    }
    let (mut won, mut limited) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) if e == limit(LimitKind::SeatsPerEvent, 3, 3) => limited += 1,
            // Two requests for one seat: the second may see it held first.
            Err(SeatStoreError::SeatsUnavailable(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(won, 3);
    assert!(limited >= 50 - 8 - 3, "{limited} refused by the limit");
    let held = store.seat_map(&ev()).await.unwrap().seats;
    let held = held
        .iter()
        .filter(|(_, st)| *st == SeatStatus::Held)
        .count();
    assert_eq!(held, 3);
}

/// What the limits count: live holds' seats (a refused multi-seat hold
/// names the count), live holds, sold seats for good; a released or
/// expired hold gives its share back; other customers and anonymous
/// holds are not counted.
pub async fn customer_limits_count_live_holds_and_sold_seats<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn SeatStore>>,
{
    let store = setup(&make).await;
    let lim = CustomerLimits {
        seats_per_event: 4,
        active_holds: 2,
    };
    store
        .hold(creq(1, &["1-1", "1-2"], "ann", lim), 0)
        .await
        .unwrap();
    let e = store
        .hold(creq(2, &["1-3", "1-4", "2-1"], "ann", lim), 0)
        .await;
    assert_eq!(e.unwrap_err(), limit(LimitKind::SeatsPerEvent, 2, 4));
    store.hold(creq(3, &["1-3"], "ann", lim), 0).await.unwrap();
    let e = store.hold(creq(4, &["1-4"], "ann", lim), 0).await;
    assert_eq!(e.unwrap_err(), limit(LimitKind::ActiveHolds, 2, 2));
    // Someone else, and an anonymous hold, have their own room.
    store.hold(creq(5, &["1-4"], "bob", lim), 0).await.unwrap();
    store.hold(req(6, &["2-4"], 60_000), 0).await.unwrap();
    // Released: its seat and its hold are free again.
    store.release(&h(3), Releaser::Holder, 1).await.unwrap();
    store.hold(creq(7, &["2-1"], "ann", lim), 1).await.unwrap();
    // Sold: the seats stay counted once the hold is consumed.
    store.pin(&h(1), &o(1), 60_000, 2).await.unwrap();
    let sold = store.confirm(&h(1), &o(1), None, 2).await.unwrap();
    assert!(matches!(sold, ConfirmOutcome::Confirmed { .. }), "{sold:?}");
    // A gone hold says why and whose it was.
    let e = store.get_hold(&h(1), 2).await.unwrap_err();
    assert_eq!(e, gone(GoneReason::Ordered(o(1)), Some("ann")));
    let e = store.get_hold(&h(3), 2).await.unwrap_err();
    assert_eq!(e, gone(GoneReason::Released, Some("ann")));
    store.hold(creq(8, &["2-2"], "ann", lim), 3).await.unwrap();
    let e = store.hold(creq(9, &["2-3"], "ann", lim), 3).await;
    assert_eq!(e.unwrap_err(), limit(LimitKind::SeatsPerEvent, 4, 4));
    // Expired (ttl 60 s): 2-1 and 2-2 come back, the two sold seats do not.
    let later = 60_010;
    let e = store
        .hold(creq(10, &["2-3", "1-3", "2-1"], "ann", lim), later)
        .await;
    assert_eq!(e.unwrap_err(), limit(LimitKind::SeatsPerEvent, 2, 4));
    store
        .hold(creq(11, &["2-3", "2-1"], "ann", lim), later)
        .await
        .unwrap();
}

/// Sells `seats` to order `n` (hold `n`, pinned and confirmed) as `customer`'s.
async fn sell(store: &dyn SeatStore, n: u32, seats: &[&str], customer: &str, lim: CustomerLimits) {
    store.hold(creq(n, seats, customer, lim), 0).await.unwrap();
    store.pin(&h(n), &o(n), 60_000, 0).await.unwrap();
    let c = store.confirm(&h(n), &o(n), None, 0).await.unwrap();
    assert!(matches!(c, ConfirmOutcome::Confirmed { .. }), "{c:?}");
}

/// The after-sale return is fenced by the order: only seats still sold to
/// it come back (once, each a change), they stop counting for the
/// customer's limits, and a late return never frees a seat sold again.
pub async fn return_is_fenced_by_the_order<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn SeatStore>>,
{
    let store = setup(&make).await;
    let lim = CustomerLimits {
        seats_per_event: 2,
        active_holds: 0,
    };
    sell(store.as_ref(), 1, &["1-1", "1-2"], "ann", lim).await;
    sell(store.as_ref(), 2, &["1-3"], "bob", lim).await;
    store.hold(req(3, &["2-1"], 60_000), 0).await.unwrap();
    let e = store.hold(creq(4, &["2-2"], "ann", lim), 0).await;
    assert_eq!(e.unwrap_err(), limit(LimitKind::SeatsPerEvent, 2, 2));
    let (v0, free0) = store.availability(&ev()).await.unwrap();
    let asked = ["1-1", "1-3", "1-4", "2-1", "1-2", "1-1"].map(s);
    let back = store
        .return_seats(&ev(), &asked, &o(1), Some("ann"), 1)
        .await
        .unwrap();
    assert_eq!(back, vec![s("1-1"), s("1-2")], "only order 1's, once each");
    assert_eq!(
        store.availability(&ev()).await.unwrap(),
        (v0 + 2, free0 + 2)
    );
    let ChangesSince::Changes(changes) = store.changes_since(&ev(), v0, 100).await.unwrap() else {
        panic!("history");
    };
    let seen: Vec<(&str, SeatStatus)> = changes
        .iter()
        .map(|c| (c.seat_id.as_str(), c.status))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("1-1", SeatStatus::Available),
            ("1-2", SeatStatus::Available)
        ]
    );
    assert_eq!(status(store.as_ref(), "1-3").await, SeatStatus::Sold);
    assert_eq!(status(store.as_ref(), "2-1").await, SeatStatus::Held);
    // Idempotent: nothing more comes back, nothing changes.
    let again = store
        .return_seats(&ev(), &asked, &o(1), Some("ann"), 2)
        .await;
    assert_eq!(again.unwrap(), Vec::<SeatId>::new());
    assert_eq!(
        store.availability(&ev()).await.unwrap(),
        (v0 + 2, free0 + 2)
    );
    // Ann's two seats no longer count: she may hold two again.
    store
        .hold(creq(5, &["2-2", "2-3"], "ann", lim), 3)
        .await
        .unwrap();
    // A returned seat sells again; a late return for the first order leaves it sold.
    sell(store.as_ref(), 6, &["1-1"], "cat", lim).await;
    let late = store
        .return_seats(&ev(), &[s("1-1")], &o(1), Some("ann"), 4)
        .await;
    assert_eq!(late.unwrap(), Vec::<SeatId>::new());
    let sold = store.sold_seats(&ev()).await.unwrap();
    assert_eq!(sold, vec![(s("1-1"), o(6)), (s("1-3"), o(2))]);
    let unknown = store
        .return_seats(&EventId::from("nope"), &[s("1-1")], &o(1), None, 5)
        .await;
    assert_eq!(unknown.unwrap_err(), SeatStoreError::UnknownEvent);
}

/// Stamps out one test per case for a factory expression.
#[macro_export]
macro_rules! seat_store_suite {
    ($make:expr) => {
        mod seat_store_conformance {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn racing_holds_have_one_winner() {
                $crate::seat_store::racing_holds_have_one_winner($make).await
            }
            #[tokio::test]
            async fn holds_are_all_or_nothing() {
                $crate::seat_store::holds_are_all_or_nothing($make).await
            }
            #[tokio::test]
            async fn holds_expire_at_their_ttl() {
                $crate::seat_store::holds_expire_at_their_ttl($make).await
            }
            #[tokio::test]
            async fn confirm_is_fenced() {
                $crate::seat_store::confirm_is_fenced($make).await
            }
            #[tokio::test]
            async fn pin_is_exclusive_and_extends() {
                $crate::seat_store::pin_is_exclusive_and_extends($make).await
            }
            #[tokio::test]
            async fn extension_is_capped() {
                $crate::seat_store::extension_is_capped($make).await
            }
            #[tokio::test]
            async fn changes_are_gap_free_and_bounded() {
                $crate::seat_store::changes_are_gap_free_and_bounded($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn customer_seat_limit_holds_under_concurrency() {
                $crate::seat_store::customer_seat_limit_holds_under_concurrency($make).await
            }
            #[tokio::test]
            async fn customer_limits_count_live_holds_and_sold_seats() {
                $crate::seat_store::customer_limits_count_live_holds_and_sold_seats($make).await
            }
            #[tokio::test]
            async fn return_is_fenced_by_the_order() {
                $crate::seat_store::return_is_fenced_by_the_order($make).await
            }
        }
    };
}
