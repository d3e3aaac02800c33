//! The Kafka adapter against librdkafka's mock cluster: the conformance
//! suite (fast, no broker process) and fault injection a real broker
//! cannot give on demand — broker down, then back.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use std::sync::Arc;
use std::time::Duration;
use ticketing_domain::ports::{BusError, EventBus, OutgoingMessage};
use ticketing_kafka::{KafkaConfig, KafkaEventBus};

/// A mock cluster that lives for the rest of the test process.
fn cluster(brokers: i32) -> &'static MockCluster<'static, DefaultProducerContext> {
    Box::leak(Box::new(MockCluster::new(brokers).unwrap()))
}

/// Topics the tests use, made on the cluster (it has no admin API).
fn cluster_with_topics() -> &'static MockCluster<'static, DefaultProducerContext> {
    let c = cluster(1);
    for topic in ["conformance", "faults"] {
        c.create_topic(topic, 4, 1).unwrap();
    }
    c
}

fn config(bootstrap: String) -> KafkaConfig {
    let mut config = KafkaConfig::new(bootstrap);
    config.create_topics = false;
    config.session_timeout_ms = 6_000;
    config.call_timeout_ms = 3_000;
    config
}

async fn bus() -> Arc<dyn EventBus> {
    let bootstrap = cluster_with_topics().bootstrap_servers();
    Arc::new(KafkaEventBus::new(config(bootstrap)).unwrap())
}

ticketing_conformance::event_bus_suite!(bus);

fn msg(n: u32) -> OutgoingMessage {
    OutgoingMessage {
        topic: "faults".into(),
        key: "k".into(),
        payload: n.to_be_bytes().to_vec(),
        headers: vec![],
    }
}

/// With the broker down a publish fails within its bound (never hangs and
/// never claims success); once the broker is back, publishing works again.
#[tokio::test]
async fn publish_reports_a_down_broker_and_recovers() {
    let cluster = cluster_with_topics();
    let bus = KafkaEventBus::new(config(cluster.bootstrap_servers())).unwrap();
    let (_, first) = bus.publish(msg(0)).await.unwrap();
    cluster.broker_down(1).unwrap();
    let err = bus.publish(msg(1)).await.unwrap_err();
    assert!(matches!(err, BusError::Unavailable(_)), "{err:?}");
    cluster.broker_up(1).unwrap();
    let mut last = None;
    for _ in 0..20 {
        if let Ok((_, offset)) = bus.publish(msg(2)).await {
            last = Some(offset);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let last = last.expect("publish works again after the broker is back");
    assert!(last > first, "offsets move forward: {first} then {last}");
}
