//! Conformance suite for the `QueueStore` port (the waiting room).

use std::future::Future;
use std::sync::Arc;
use ticketing_domain::ports::{Joined, QueueError, QueueStore};
use ticketing_domain::queue::{PlaceState, RoomConfig};
use ticketing_domain::{EventId, HoldId, QueueTicket, VisitorId};

/// On-sale time of every room here.
pub const ON_SALE_MS: u64 = 1_000_000;

fn room() -> RoomConfig {
    RoomConfig {
        opens_at_ms: ON_SALE_MS - 60_000,
        on_sale_at_ms: ON_SALE_MS,
        active_max: 100,
        admit_per_s: 100,
        idle_ms: 60_000,
        abandon_ms: 600_000,
        token_ttl_ms: 600_000,
    }
}

fn t(i: usize) -> QueueTicket {
    QueueTicket(format!("q_{i:04}"))
}

fn v(i: usize) -> VisitorId {
    VisitorId(format!("v_{i:04}"))
}

async fn opened<F, Fut>(make: F, config: RoomConfig) -> (Arc<dyn QueueStore>, EventId)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn QueueStore>>,
{
    let store = make().await;
    let event = EventId::from("big-show");
    store.open_room(&event, &config).await.unwrap();
    (store, event)
}

async fn state(s: &dyn QueueStore, e: &EventId, i: usize, now: u64) -> PlaceState {
    s.place(e, &t(i), now).await.unwrap().unwrap().state
}

/// Rooms are created, read, listed and re-capped; unknown rooms say so.
pub async fn rooms_are_opened_read_and_capped<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn QueueStore>>,
{
    let (s, e) = opened(make, room()).await;
    let other = EventId::from("small-show");
    assert_eq!(s.room(&other).await.unwrap(), None);
    assert_eq!(s.room(&e).await.unwrap(), Some(room()));
    assert_eq!(s.rooms().await.unwrap(), vec![e.clone()]);
    let capped = s.set_caps(&e, 7, 3).await.unwrap();
    assert_eq!((capped.active_max, capped.admit_per_s), (7, 3));
    assert_eq!(s.room(&e).await.unwrap(), Some(capped));
    assert_eq!(s.set_caps(&other, 1, 1).await, Err(QueueError::UnknownRoom));
    let join = s.join(&other, &t(1), &v(1), None, 5, ON_SALE_MS).await;
    assert_eq!(join, Err(QueueError::UnknownRoom));
    assert_eq!(
        s.place(&e, &t(99), ON_SALE_MS).await.unwrap(),
        None,
        "unknown ticket"
    );
}

/// Joining before the room opens is refused; a ticket or visitor is taken once.
pub async fn joins_are_refused_before_opening_and_twice<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn QueueStore>>,
{
    let (s, e) = opened(make, room()).await;
    let early = s.join(&e, &t(1), &v(1), None, 5, ON_SALE_MS - 60_001).await;
    assert_eq!(early, Err(QueueError::NotOpen));
    s.join(&e, &t(1), &v(1), None, 5, ON_SALE_MS - 60_000)
        .await
        .unwrap();
    let again = s.join(&e, &t(1), &v(2), None, 5, ON_SALE_MS).await;
    assert_eq!(again, Err(QueueError::DuplicateTicket));
    let same_visitor = s.join(&e, &t(2), &v(1), None, 5, ON_SALE_MS).await;
    assert_eq!(same_visitor, Err(QueueError::DuplicateTicket));
}

/// Early visitors are in the order of their drawn keys — hidden until the
/// on-sale time, stable after — and ahead of everyone who came later, who
/// queue in arrival order.
pub async fn the_prequeue_is_drawn_once_and_ahead_of_later_arrivals<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn QueueStore>>,
{
    let (s, e) = opened(make, room()).await;
    let keys = [50u64, 10, 40, 20, 30];
    for (i, key) in keys.iter().enumerate() {
        s.join(&e, &t(i), &v(i), None, *key, ON_SALE_MS - 1_000 + i as u64)
            .await
            .unwrap();
    }
    assert_eq!(
        state(s.as_ref(), &e, 0, ON_SALE_MS - 1).await,
        PlaceState::Prequeue
    );
    s.join(&e, &t(5), &v(5), None, 0, ON_SALE_MS).await.unwrap();
    s.join(&e, &t(6), &v(6), None, 1, ON_SALE_MS + 1)
        .await
        .unwrap();
    let expected = [4u64, 0, 3, 1, 2, 5, 6];
    for round in 0..3 {
        for (i, ahead) in expected.iter().enumerate() {
            assert_eq!(
                state(s.as_ref(), &e, i, ON_SALE_MS + 10 + round).await,
                PlaceState::Waiting { ahead: *ahead },
                "visitor {i}, read {round}"
            );
        }
    }
    let report = s.admit(&e, ON_SALE_MS + 100).await.unwrap();
    let order: Vec<QueueTicket> = report.admitted.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(
        order,
        [1, 3, 4, 2, 0, 5, 6].map(t).to_vec(),
        "admitted in queue order"
    );
}

/// One step admits at most `active_max − active` and at most `admit_per_s`
/// in one second; nothing before the on-sale time.
pub async fn admission_keeps_both_caps<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn QueueStore>>,
{
    let config = RoomConfig {
        active_max: 3,
        admit_per_s: 2,
        ..room()
    };
    let (s, e) = opened(make, config).await;
    for i in 0..10 {
        s.join(&e, &t(i), &v(i), None, 0, ON_SALE_MS + i as u64)
            .await
            .unwrap();
    }
    assert!(
        s.admit(&e, ON_SALE_MS - 1)
            .await
            .unwrap()
            .admitted
            .is_empty()
    );
    let at = ON_SALE_MS + 1_000;
    let first = s.admit(&e, at).await.unwrap();
    assert_eq!(first.admitted.len(), 2, "rate cap");
    assert_eq!((first.waiting, first.active), (8, 2));
    assert!(
        s.admit(&e, at + 999).await.unwrap().admitted.is_empty(),
        "same second"
    );
    assert_eq!(
        s.admit(&e, at + 1_000).await.unwrap().admitted.len(),
        1,
        "active cap"
    );
    assert!(
        s.admit(&e, at + 2_000).await.unwrap().admitted.is_empty(),
        "full"
    );
    s.leave(&e, &v(0)).await.unwrap();
    assert_eq!(
        state(s.as_ref(), &e, 0, at + 2_001).await,
        PlaceState::Expired
    );
    let next = s.admit(&e, at + 3_000).await.unwrap();
    assert_eq!(
        next.admitted,
        vec![(t(3), v(3))],
        "the slot went to the next in line"
    );
    // Join to admission: visitor i joined at ON_SALE_MS + i.
    assert_eq!(first.waited_ms, vec![at - ON_SALE_MS, at - ON_SALE_MS - 1]);
    assert_eq!(next.waited_ms, vec![at + 3_000 - (ON_SALE_MS + 3)]);
    let stats = s.stats(&e, at + 4_000).await.unwrap();
    assert_eq!(
        (stats.waiting, stats.active, stats.admitted_total),
        (6, 3, 4)
    );
    assert_eq!(stats.admitted_in_window, 4);
    match state(s.as_ref(), &e, 3, at + 3_001).await {
        PlaceState::Admitted {
            admitted_at_ms,
            token_expires_at_ms,
            slot_until_ms,
        } => {
            assert_eq!(admitted_at_ms, at + 3_000);
            assert_eq!(token_expires_at_ms, at + 3_000 + 600_000);
            assert_eq!(slot_until_ms, at + 3_000 + 60_000, "idle time first");
        }
        other => panic!("admitted expected, got {other:?}"),
    }
}

/// A slot frees after `idle_ms` without a touch, at the token's expiry at
/// the latest; a touch restarts the idle time.
pub async fn slots_free_when_idle_or_expired<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn QueueStore>>,
{
    let config = RoomConfig {
        idle_ms: 1_000,
        token_ttl_ms: 2_500,
        ..room()
    };
    let (s, e) = opened(make, config).await;
    for i in 0..2 {
        s.join(&e, &t(i), &v(i), None, 0, ON_SALE_MS).await.unwrap();
    }
    let at = ON_SALE_MS + 10;
    assert_eq!(s.admit(&e, at).await.unwrap().admitted.len(), 2);
    // Visitor 0 keeps shopping; visitor 1 goes quiet.
    for step in 1..=4u64 {
        assert!(
            s.touch(&e, &v(0), at + step * 500).await.unwrap(),
            "step {step}"
        );
    }
    let swept = s.admit(&e, at + 1_000).await.unwrap();
    assert_eq!(
        (swept.expired, swept.active),
        (1, 1),
        "the quiet one's slot freed"
    );
    assert_eq!(
        state(s.as_ref(), &e, 1, at + 1_001).await,
        PlaceState::Expired
    );
    assert!(!s.touch(&e, &v(1), at + 1_001).await.unwrap());
    assert!(s.touch(&e, &v(0), at + 2_400).await.unwrap());
    assert!(
        !s.touch(&e, &v(0), at + 2_500).await.unwrap(),
        "the token ran out"
    );
    assert_eq!(
        state(s.as_ref(), &e, 0, at + 2_500).await,
        PlaceState::Expired
    );
    assert_eq!(s.admit(&e, at + 2_600).await.unwrap().active, 0);
}

/// Buying a hold made under an admission frees that shopper's slot at
/// once; a hold no admission made, or one bound after the slot freed,
/// frees nothing.
pub async fn buying_frees_the_slot<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn QueueStore>>,
{
    let (s, e) = opened(
        make,
        RoomConfig {
            active_max: 2,
            ..room()
        },
    )
    .await;
    for i in 0..3 {
        s.join(&e, &t(i), &v(i), None, 0, ON_SALE_MS).await.unwrap();
    }
    let at = ON_SALE_MS + 10;
    assert_eq!(s.admit(&e, at).await.unwrap().active, 2);
    let (h0, h1, stray) = (
        HoldId::from("h_0"),
        HoldId::from("h_1"),
        HoldId::from("h_x"),
    );
    s.bind_hold(&e, &v(0), &h0).await.unwrap();
    s.bind_hold(&e, &v(1), &h1).await.unwrap();
    s.bind_hold(&e, &v(2), &stray).await.unwrap(); // still waiting: no slot
    s.bought(&e, &stray).await.unwrap();
    s.bought(&e, &HoldId::from("h_unknown")).await.unwrap();
    assert_eq!(
        s.admit(&e, at + 1_000).await.unwrap().active,
        2,
        "nothing freed"
    );
    s.bought(&e, &h0).await.unwrap();
    assert_eq!(
        state(s.as_ref(), &e, 0, at + 1_001).await,
        PlaceState::Expired
    );
    assert!(!s.touch(&e, &v(0), at + 1_001).await.unwrap());
    let next = s.admit(&e, at + 2_000).await.unwrap();
    assert_eq!(next.admitted, vec![(t(2), v(2))], "the freed slot went on");
    // The bought hold's record went with the slot: buying it again frees
    // nobody else.
    s.bought(&e, &h0).await.unwrap();
    assert_eq!(s.admit(&e, at + 3_000).await.unwrap().active, 2);
}

/// A waiting visitor who stops asking for `abandon_ms` loses the place;
/// one who keeps asking keeps it.
pub async fn abandoned_places_are_dropped<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn QueueStore>>,
{
    let config = RoomConfig {
        abandon_ms: 1_000,
        admit_per_s: 0,
        ..room()
    };
    let (s, e) = opened(make, config).await;
    for i in 0..3 {
        s.join(&e, &t(i), &v(i), None, i as u64, ON_SALE_MS - 100)
            .await
            .unwrap();
    }
    for step in 1..=4u64 {
        s.place(&e, &t(2), ON_SALE_MS + step * 400).await.unwrap();
    }
    let swept = s.admit(&e, ON_SALE_MS + 1_600).await.unwrap();
    assert_eq!((swept.abandoned, swept.waiting), (2, 1));
    assert_eq!(
        state(s.as_ref(), &e, 0, ON_SALE_MS + 1_700).await,
        PlaceState::Expired
    );
    assert_eq!(
        state(s.as_ref(), &e, 2, ON_SALE_MS + 1_700).await,
        PlaceState::Waiting { ahead: 0 },
        "the one who kept asking moved to the front"
    );
}

/// A long gap between admission steps (nobody could reach the room) is
/// not abandonment: the waiting keep their places for a grace of
/// `abandon_ms`, the active keep their slots (moved later by the gap);
/// after the grace, whoever still does not ask is dropped.
pub async fn an_outage_is_not_abandonment<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn QueueStore>>,
{
    let config = RoomConfig {
        active_max: 1,
        abandon_ms: 4_000,
        idle_ms: 3_000,
        ..room()
    };
    let (s, e) = opened(make, config).await;
    for i in 0..3 {
        s.join(&e, &t(i), &v(i), None, i as u64, ON_SALE_MS)
            .await
            .unwrap();
    }
    let at = ON_SALE_MS + 100;
    assert_eq!(s.admit(&e, at).await.unwrap().admitted, vec![(t(0), v(0))]);
    // The room is unreachable for 10 s; then a step runs.
    let back = at + 10_000;
    let step = s.admit(&e, back).await.unwrap();
    assert_eq!(
        (step.abandoned, step.expired, step.waiting),
        (0, 0, 2),
        "{step:?}"
    );
    assert!(
        s.touch(&e, &v(0), back + 1).await.unwrap(),
        "the slot survived"
    );
    // Steps run again every second. Visitor 1 asks, visitor 2 never does:
    // after the grace only 2 goes.
    for k in 1..=3u64 {
        assert!(s.touch(&e, &v(0), back + k * 1_000 - 1).await.unwrap());
        s.place(&e, &t(1), back + k * 1_000 - 1).await.unwrap();
        assert_eq!(
            s.admit(&e, back + k * 1_000).await.unwrap().abandoned,
            0,
            "grace {k}"
        );
    }
    s.place(&e, &t(1), back + 3_999).await.unwrap();
    let later = s.admit(&e, back + 4_000).await.unwrap();
    assert_eq!((later.abandoned, later.waiting), (1, 1), "{later:?}");
    assert_eq!(
        state(s.as_ref(), &e, 2, back + 4_200).await,
        PlaceState::Expired
    );
}

/// Concurrent admission steps (several queue processes) never admit more
/// than the caps allow, and never one visitor twice.
pub async fn concurrent_admission_keeps_the_caps<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn QueueStore>>,
{
    let config = RoomConfig {
        active_max: 30,
        admit_per_s: 25,
        ..room()
    };
    let (s, e) = opened(make, config).await;
    for i in 0..200 {
        s.join(&e, &t(i), &v(i), None, 0, ON_SALE_MS).await.unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..16u64 {
        let (s, e) = (s.clone(), e.clone());
        tasks.spawn(async move { s.admit(&e, ON_SALE_MS + 1_000 + k).await.unwrap() });
    }
    let mut admitted = Vec::new();
    while let Some(r) = tasks.join_next().await {
        admitted.extend(r.unwrap().admitted);
    }
    assert_eq!(admitted.len(), 25, "one second's rate, not 16 steps' worth");
    admitted.sort();
    admitted.dedup();
    assert_eq!(admitted.len(), 25, "nobody admitted twice");
}

fn joined(i: usize, rejoined: bool) -> Joined {
    Joined {
        ticket: t(i),
        visitor_id: v(i),
        rejoined,
    }
}

/// A customer holds one live place: joining again answers it (waiting or
/// admitted); once it is gone a join takes a new place at the back.
/// Anonymous joins always take a new place; a place names its customer.
pub async fn a_customer_holds_one_live_place<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn QueueStore>>,
{
    let config = RoomConfig {
        active_max: 1,
        ..room()
    };
    let (s, e) = opened(make, config).await;
    let early = ON_SALE_MS - 1_000;
    let alice = Some("alice");
    assert_eq!(
        s.join(&e, &t(1), &v(1), alice, 1, early).await,
        Ok(joined(1, false))
    );
    assert_eq!(
        s.join(&e, &t(2), &v(2), alice, 9, early).await,
        Ok(joined(1, true))
    );
    assert_eq!(
        s.place(&e, &t(2), early).await.unwrap(),
        None,
        "no second place"
    );
    assert_eq!(
        s.join(&e, &t(3), &v(3), Some("bob"), 2, early).await,
        Ok(joined(3, false))
    );
    assert_eq!(
        s.join(&e, &t(4), &v(4), None, 3, early).await,
        Ok(joined(4, false))
    );
    assert_eq!(
        s.join(&e, &t(5), &v(5), None, 4, early).await,
        Ok(joined(5, false))
    );
    let place = s.place(&e, &t(1), early).await.unwrap().unwrap();
    assert_eq!(place.customer_id.as_deref(), Some("alice"));
    let anon = s.place(&e, &t(4), early).await.unwrap().unwrap();
    assert_eq!(anon.customer_id, None);
    let step = s.admit(&e, ON_SALE_MS).await.unwrap();
    assert_eq!(step.admitted, vec![(t(1), v(1))]);
    let again = s.join(&e, &t(6), &v(6), alice, 0, ON_SALE_MS + 1).await;
    assert_eq!(again, Ok(joined(1, true)), "admitted, slot held");
    s.leave(&e, &v(1)).await.unwrap();
    let after = s.join(&e, &t(6), &v(6), alice, 0, ON_SALE_MS + 2).await;
    assert_eq!(after, Ok(joined(6, false)), "the old place is gone");
    assert_eq!(
        state(s.as_ref(), &e, 6, ON_SALE_MS + 3).await,
        PlaceState::Waiting { ahead: 3 },
        "at the back, behind bob and the two anonymous places"
    );
    assert_eq!(
        state(s.as_ref(), &e, 1, ON_SALE_MS + 3).await,
        PlaceState::Expired
    );
}

/// `queue_store_suite!(make)` runs every case.
#[macro_export]
macro_rules! queue_store_suite {
    ($make:expr) => {
        mod queue_store_conformance {
            use super::*;
            #[tokio::test]
            async fn rooms_are_opened_read_and_capped() {
                $crate::queue_store::rooms_are_opened_read_and_capped($make).await
            }
            #[tokio::test]
            async fn joins_are_refused_before_opening_and_twice() {
                $crate::queue_store::joins_are_refused_before_opening_and_twice($make).await
            }
            #[tokio::test]
            async fn a_customer_holds_one_live_place() {
                $crate::queue_store::a_customer_holds_one_live_place($make).await
            }
            #[tokio::test]
            async fn the_prequeue_is_drawn_once_and_ahead_of_later_arrivals() {
                $crate::queue_store::the_prequeue_is_drawn_once_and_ahead_of_later_arrivals($make)
                    .await
            }
            #[tokio::test]
            async fn admission_keeps_both_caps() {
                $crate::queue_store::admission_keeps_both_caps($make).await
            }
            #[tokio::test]
            async fn slots_free_when_idle_or_expired() {
                $crate::queue_store::slots_free_when_idle_or_expired($make).await
            }
            #[tokio::test]
            async fn buying_frees_the_slot() {
                $crate::queue_store::buying_frees_the_slot($make).await
            }
            #[tokio::test]
            async fn abandoned_places_are_dropped() {
                $crate::queue_store::abandoned_places_are_dropped($make).await
            }
            #[tokio::test]
            async fn an_outage_is_not_abandonment() {
                $crate::queue_store::an_outage_is_not_abandonment($make).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_admission_keeps_the_caps() {
                $crate::queue_store::concurrent_admission_keeps_the_caps($make).await
            }
        }
    };
}
