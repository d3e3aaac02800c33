//! The event bus conformance suite against a real Kafka-protocol broker
//! (tansu, or whatever `TICKETING_TEST_KAFKA_BROKERS` names): the same cases
//! the in-memory model passes.
//!
//! Each bus gets its own topic/group prefix, so tests share one broker.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, OnceLock};
use ticketing_domain::ports::EventBus;
use ticketing_kafka::{KafkaConfig, KafkaEventBus};
use ticketing_testkit::{TestKafka, unique_name};

fn broker() -> &'static TestKafka {
    static BROKER: OnceLock<TestKafka> = OnceLock::new();
    BROKER.get_or_init(TestKafka::start)
}

async fn bus() -> Arc<dyn EventBus> {
    let mut config = KafkaConfig::new(broker().brokers.clone());
    config.topic_prefix = format!("{}.", unique_name("bus"));
    config.session_timeout_ms = 6_000;
    Arc::new(KafkaEventBus::new(config).unwrap())
}

// tansu 0.6.0 answers a fetch at a mid-batch offset with the next batch
// (it skips the batch holding the offset); the consumer's continuity guard
// (`src/continuity.rs`) fetches the skipped records again, so the whole
// suite runs here, `restart_mid_batch_resumes_promptly` included.
ticketing_conformance::event_bus_suite!(bus);

/// `group_lag` reads a group's lag from outside it: every message before a
/// commit, what is left after a partial commit, 0 once all are committed —
/// and asking does not take the member's partitions away.
#[tokio::test]
async fn group_lag_is_read_without_joining_the_group() {
    let mut config = KafkaConfig::new(broker().brokers.clone());
    config.topic_prefix = format!("{}.", unique_name("lag"));
    config.session_timeout_ms = 6_000;
    let bus = KafkaEventBus::new(config).unwrap();
    for i in 0..5 {
        bus.publish(ticketing_domain::ports::OutgoingMessage {
            topic: "t".into(),
            key: "k".into(),
            payload: format!("m{i}").into_bytes(),
            headers: Vec::new(),
        })
        .await
        .unwrap();
    }
    assert_eq!(
        bus.group_lag("t", "g").await.unwrap(),
        5,
        "nothing committed"
    );
    let mut member = bus.subscribe("t", "g").await.unwrap();
    let mut got = Vec::new();
    for _ in 0..100 {
        got.extend(member.poll(10, 200).await.unwrap());
        if got.len() >= 5 {
            break;
        }
    }
    assert_eq!(got.len(), 5, "all five delivered");
    member.commit(&got[1]).await.unwrap();
    assert_eq!(bus.group_lag("t", "g").await.unwrap(), 3, "two committed");
    member.commit(&got[4]).await.unwrap();
    assert_eq!(bus.group_lag("t", "g").await.unwrap(), 0, "all committed");
    // The member still owns its partition: it gets the next message.
    bus.publish(ticketing_domain::ports::OutgoingMessage {
        topic: "t".into(),
        key: "k".into(),
        payload: b"m5".to_vec(),
        headers: Vec::new(),
    })
    .await
    .unwrap();
    let mut next = Vec::new();
    for _ in 0..100 {
        next.extend(member.poll(10, 200).await.unwrap());
        if !next.is_empty() {
            break;
        }
    }
    assert_eq!(
        next.first().map(|d| d.payload.clone()),
        Some(b"m5".to_vec())
    );
}

/// `known_lag` (librdkafka's statistics: what the services' lag gauge
/// reads) reports the same count as the blocking `lag()`: unknown before
/// the first report, then what is not committed, falling with commits.
#[tokio::test]
async fn known_lag_follows_commits_without_a_query() {
    let mut config = KafkaConfig::new(broker().brokers.clone());
    config.topic_prefix = format!("{}.", unique_name("known"));
    config.session_timeout_ms = 6_000;
    config.partitions = 1;
    let bus = KafkaEventBus::new(config).unwrap();
    for i in 0..5 {
        bus.publish(ticketing_domain::ports::OutgoingMessage {
            topic: "t".into(),
            key: "k".into(),
            payload: format!("m{i}").into_bytes(),
            headers: Vec::new(),
        })
        .await
        .unwrap();
    }
    let mut member = bus.subscribe("t", "g").await.unwrap();
    let mut got = Vec::new();
    for _ in 0..100 {
        got.extend(member.poll(10, 200).await.unwrap());
        if got.len() >= 5 {
            break;
        }
    }
    assert_eq!(got.len(), 5, "all five delivered");
    // Statistics are served while the member polls: poll (nothing comes)
    // until the report shows `want`, for at most 20 s.
    async fn reported(
        member: &mut Box<dyn ticketing_domain::ports::Consumer>,
        want: u64,
    ) -> Option<u64> {
        for _ in 0..100 {
            assert!(member.poll(10, 200).await.unwrap().is_empty());
            if member.known_lag() == Some(want) {
                break;
            }
        }
        member.known_lag()
    }
    assert_eq!(reported(&mut member, 5).await, Some(5), "nothing committed");
    assert_eq!(member.lag().await.unwrap(), Some(5), "the query agrees");
    member.commit(&got[1]).await.unwrap();
    assert_eq!(reported(&mut member, 3).await, Some(3), "two committed");
    member.commit(&got[4]).await.unwrap();
    assert_eq!(reported(&mut member, 0).await, Some(0), "all committed");
}
