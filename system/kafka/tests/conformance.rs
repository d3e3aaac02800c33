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

ticketing_conformance::event_bus_suite!(bus);
