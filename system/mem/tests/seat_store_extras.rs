//! What the seat-store conformance suite cannot see of the in-memory model:
//! its audit helpers (`active_holds`, `customer_tally`), the zoo's
//! unchecked write, the tombstone period it is built with, and the edges
//! of its bounded change log.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use ticketing_domain::ports::{
    ChangesSince, CustomerLimits, HoldRequest, Releaser, SeatStore, SeatStoreError,
};
use ticketing_domain::{EventId, HoldId, OrderId, SeatId, SeatStatus};
use ticketing_mem::MemSeatStore;

fn event() -> EventId {
    EventId::from("e")
}

async fn store(history_limit: usize, tombstone_ms: u64) -> MemSeatStore {
    let s = MemSeatStore::new(history_limit, tombstone_ms);
    let seats: Vec<(SeatId, i64)> = (1..=4).map(|i| (SeatId(format!("1-{i}")), 100)).collect();
    s.create_event(&event(), &seats).await.unwrap();
    s
}

fn request(hold: &str, seats: &[&str], customer: Option<&str>) -> HoldRequest {
    HoldRequest {
        event_id: event(),
        seat_ids: seats.iter().map(|s| SeatId::from(*s)).collect(),
        hold_id: HoldId::from(hold),
        ttl_ms: 60_000,
        customer_id: customer.map(str::to_owned),
        limits: CustomerLimits::default(),
    }
}

async fn status(s: &MemSeatStore, seat: &str) -> SeatStatus {
    let map = s.seat_map(&event()).await.unwrap();
    map.seats
        .iter()
        .find(|(id, _)| id.as_str() == seat)
        .map(|(_, st)| *st)
        .unwrap()
}

#[tokio::test]
async fn the_audit_helpers_see_live_holds_and_each_customers_tally() {
    let s = store(100, 60_000).await;
    s.hold(request("h1", &["1-1", "1-2"], Some("ann")), 0)
        .await
        .unwrap();
    s.hold(request("h2", &["1-3"], Some("bob")), 0)
        .await
        .unwrap();
    let ids: Vec<String> = s.active_holds().into_iter().map(|h| h.hold_id.0).collect();
    assert_eq!(ids, vec!["h1", "h2"]);
    assert_eq!(s.customer_tally(&event(), "ann"), (2, 1));
    assert_eq!(s.customer_tally(&event(), "bob"), (1, 1));
    assert_eq!(s.customer_tally(&event(), "eve"), (0, 0));
    s.release(&HoldId::from("h1"), Releaser::Holder, 1)
        .await
        .unwrap();
    assert_eq!(s.active_holds().len(), 1);
    assert_eq!(s.customer_tally(&event(), "ann"), (0, 0));
}

#[tokio::test]
async fn the_unchecked_write_sells_and_frees_without_asking() {
    let s = store(100, 60_000).await;
    s.hold(request("h1", &["1-1"], None), 0).await.unwrap();
    let (v0, _) = s.availability(&event()).await.unwrap();
    let order = OrderId::from("o-1");
    s.overwrite_seats_unchecked(&event(), &[SeatId::from("1-1")], Some(&order));
    assert_eq!(
        status(&s, "1-1").await,
        SeatStatus::Sold,
        "held by h1, sold anyway"
    );
    s.overwrite_seats_unchecked(&event(), &[SeatId::from("1-2")], None);
    assert_eq!(status(&s, "1-2").await, SeatStatus::Available);
    let (v1, _) = s.availability(&event()).await.unwrap();
    assert_eq!(v1, v0 + 2, "each write is still a versioned change");
}

#[tokio::test]
async fn a_gone_hold_is_remembered_for_the_tombstone_period_then_forgotten() {
    let s = store(100, 1_000).await;
    s.hold(request("h1", &["1-1"], None), 0).await.unwrap();
    s.release(&HoldId::from("h1"), Releaser::Holder, 100)
        .await
        .unwrap();
    s.expire_due(900, 100).await.unwrap();
    assert!(matches!(
        s.get_hold(&HoldId::from("h1"), 900).await,
        Err(SeatStoreError::HoldGone { .. })
    ));
    s.expire_due(1_100, 100).await.unwrap();
    assert_eq!(
        s.get_hold(&HoldId::from("h1"), 1_100).await,
        Err(SeatStoreError::HoldNotFound)
    );
}

#[tokio::test]
async fn changes_since_gives_only_later_changes_and_knows_what_it_lost() {
    let s = store(100, 60_000).await;
    s.hold(request("h1", &["1-1"], None), 0).await.unwrap();
    s.hold(request("h2", &["1-2"], None), 0).await.unwrap();
    let ChangesSince::Changes(after_first) = s.changes_since(&event(), 1, 10).await.unwrap() else {
        panic!("version 1 is in the log");
    };
    let versions: Vec<u64> = after_first.iter().map(|c| c.version).collect();
    assert_eq!(versions, vec![2], "after 1, not from 1");

    // One change kept (the least there is): older versions are too old.
    let short = store(1, 60_000).await;
    short.hold(request("h1", &["1-1"], None), 0).await.unwrap();
    short.hold(request("h2", &["1-2"], None), 0).await.unwrap();
    assert_eq!(
        short.changes_since(&event(), 0, 10).await.unwrap(),
        ChangesSince::TooOld
    );
    let ChangesSince::Changes(last) = short.changes_since(&event(), 1, 10).await.unwrap() else {
        panic!("version 2 is kept");
    };
    assert_eq!(last.len(), 1);
}

#[tokio::test]
async fn a_confirmed_hold_confirms_again_only_for_its_own_order() {
    use ticketing_domain::ports::ConfirmOutcome;
    use ticketing_domain::saga::FailureReason;
    let s = store(100, 60_000).await;
    let (h, mine, other) = (
        HoldId::from("h1"),
        OrderId::from("o-1"),
        OrderId::from("o-2"),
    );
    s.hold(request("h1", &["1-1"], None), 0).await.unwrap();
    s.pin(&h, &mine, 60_000, 1).await.unwrap();
    let sold = ConfirmOutcome::Confirmed {
        event_id: event(),
        seat_ids: vec![SeatId::from("1-1")],
    };
    assert_eq!(s.confirm(&h, &mine, None, 2).await.unwrap(), sold);
    assert_eq!(
        s.confirm(&h, &mine, None, 3).await.unwrap(),
        sold,
        "idempotent"
    );
    assert_eq!(
        s.confirm(&h, &other, None, 4).await.unwrap(),
        ConfirmOutcome::Rejected(FailureReason::HoldNotPinned),
        "another order never gets the seat, not even as a repeat"
    );
}
