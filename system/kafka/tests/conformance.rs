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

// tansu 0.6.0 sometimes resumes a restarted group one record batch past
// the committed offset (1 in ~8 runs of this binary, more on a loaded
// 2-core machine; never on librdkafka's mock cluster, `tests/mock.rs`, which
// runs the case every time). Reported as skipped, not passed; see
// docs/ARCHITECTURE.md (known broker defects).
ticketing_conformance::event_bus_suite!(
    bus,
    known_broker_defect = "tansu 0.6.0 skips the record batch at a resumed group's committed offset (flaky); the mock-cluster run covers this case"
);
