//! The Redis seat store when things go wrong: the server dies and comes
//! back, a key holds something unexpected, inputs are huge. Every case is a
//! domain error or `Unavailable` — never a panic, never a hang.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;
use ticketing_domain::ports::{HoldRequest, SeatStore, SeatStoreError};
use ticketing_domain::{EventId, HoldId, SeatId};
use ticketing_redis::{RedisSeatStore, RedisSeatStoreConfig};
use ticketing_testkit::{TestRedis, free_port, unique_name};

fn config() -> RedisSeatStoreConfig {
    RedisSeatStoreConfig {
        key_prefix: format!("{}:", unique_name("faults")),
        call_timeout_ms: 1_000,
        ..RedisSeatStoreConfig::default()
    }
}

fn hold(n: u32, seats: &[&str]) -> HoldRequest {
    HoldRequest {
        event_id: EventId::from("ev"),
        seat_ids: seats.iter().map(|s| SeatId::from(*s)).collect(),
        hold_id: HoldId(format!("h_{n:032x}")),
        ttl_ms: 60_000,
        customer_id: None,
        limits: Default::default(),
    }
}

async fn with_event(url: &str, config: RedisSeatStoreConfig) -> RedisSeatStore {
    let config = RedisSeatStoreConfig {
        url: url.to_owned(),
        ..config
    };
    let store = RedisSeatStore::connect(config).await.unwrap();
    let seats = vec![(SeatId::from("1-1"), 100), (SeatId::from("1-2"), 100)];
    store
        .create_event(&EventId::from("ev"), &seats)
        .await
        .unwrap();
    store
}

/// Redis goes away: calls fail fast with `Unavailable`; a new server on the
/// same address is picked up without restarting the adapter (the script is
/// reloaded after NOSCRIPT, the connection re-established).
#[tokio::test]
async fn a_restarted_server_is_unavailable_then_reconnected() {
    let port = free_port();
    let redis = TestRedis::private_on(port);
    let store = with_event(&redis.url, config()).await;
    store.hold(hold(1, &["1-1"]), 0).await.unwrap();

    drop(redis);
    let started = tokio::time::Instant::now();
    let err = store.hold(hold(2, &["1-2"]), 0).await.unwrap_err();
    assert!(matches!(err, SeatStoreError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed within the call bound, took {:?}",
        started.elapsed()
    );

    // A fresh, empty server (no AOF here): the adapter reconnects and the
    // script is loaded again; the event must be registered anew.
    let _redis = TestRedis::private_on(port);
    let mut recovered = None;
    for _ in 0..40 {
        match store.availability(&EventId::from("ev")).await {
            Err(SeatStoreError::Unavailable(_)) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => {
                recovered = Some(other);
                break;
            }
        }
    }
    assert_eq!(
        recovered.expect("reconnected within 10 s"),
        Err(SeatStoreError::UnknownEvent)
    );
    let seats = vec![(SeatId::from("1-1"), 100)];
    store
        .create_event(&EventId::from("ev"), &seats)
        .await
        .unwrap();
    store.hold(hold(3, &["1-1"]), 0).await.unwrap();
}

/// A key of the wrong type (an operator's mistake, a foreign writer) makes
/// the script fail: `Unavailable`, with Redis's message, and no panic.
#[tokio::test]
async fn a_key_of_the_wrong_type_is_unavailable() {
    let redis = TestRedis::start();
    let config = config();
    let prefix = config.key_prefix.clone();
    let store = with_event(&redis.url, config).await;
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}{{ev:ev}}:state"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}{{ev:ev}}:state"))
        .arg("not a hash")
        .query_async(&mut conn)
        .await
        .unwrap();
    let err = store.hold(hold(1, &["1-1"]), 0).await.unwrap_err();
    match err {
        SeatStoreError::Unavailable(m) => assert!(m.contains("WRONGTYPE"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Huge and odd inputs are answered, not crashed on.
#[tokio::test]
async fn oversized_and_unknown_inputs_are_domain_errors() {
    let redis = TestRedis::start();
    let store = with_event(&redis.url, config()).await;
    let huge = "x".repeat(1 << 20);
    let err = store.hold(hold(1, &[huge.as_str()]), 0).await.unwrap_err();
    assert_eq!(
        err,
        SeatStoreError::UnknownSeats(vec![SeatId(huge.clone())])
    );
    let mut unknown_event = hold(2, &["1-1"]);
    unknown_event.event_id = EventId(huge.clone());
    assert_eq!(
        store.hold(unknown_event, 0).await.unwrap_err(),
        SeatStoreError::UnknownEvent
    );
    assert_eq!(
        store.get_hold(&HoldId(huge), 0).await.unwrap_err(),
        SeatStoreError::HoldNotFound
    );
    // Separator characters in ids travel intact.
    let odd = "7|S|{ev:x}";
    let seats = vec![(SeatId::from(odd), 1)];
    store
        .create_event(&EventId::from("odd"), &seats)
        .await
        .unwrap();
    let mut req = hold(3, &[odd]);
    req.event_id = EventId::from("odd");
    store.hold(req, 0).await.unwrap();
    let map = store.seat_map(&EventId::from("odd")).await.unwrap();
    assert_eq!(map.seats[0].0.as_str(), odd);
    let ticketing_domain::ports::ChangesSince::Changes(changes) = store
        .changes_since(&EventId::from("odd"), 0, 10)
        .await
        .unwrap()
    else {
        panic!("history kept");
    };
    assert_eq!(changes[0].seat_id.as_str(), odd);
}

/// A large event is registered in chunks and appears all at once: before
/// activation it is unknown, after it every seat is there and available.
#[tokio::test]
async fn a_large_event_is_registered_whole() {
    let redis = TestRedis::start();
    let config = RedisSeatStoreConfig {
        url: redis.url.clone(),
        ..config()
    };
    let store = RedisSeatStore::connect(config).await.unwrap();
    let event = EventId::from("big");
    let seats: Vec<(SeatId, i64)> = (0..23_456)
        .map(|i| (SeatId(format!("s{i:06}")), 100))
        .collect();
    assert_eq!(
        store.availability(&event).await.unwrap_err(),
        SeatStoreError::UnknownEvent
    );
    store.create_event(&event, &seats).await.unwrap();
    assert_eq!(store.availability(&event).await.unwrap(), (0, 23_456));
    // Registering again changes nothing.
    store.create_event(&event, &seats[..10]).await.unwrap();
    assert_eq!(store.availability(&event).await.unwrap(), (0, 23_456));
    let mut last = hold(1, &[]);
    last.event_id = event.clone();
    last.seat_ids = vec![SeatId::from("s023455")];
    store.hold(last, 0).await.unwrap();
    assert_eq!(store.availability(&event).await.unwrap(), (1, 23_455));
}
