//! The seat store and waiting-room conformance suites against real Redis: the same cases the
//! in-memory model passes (`system/conformance/tests/mem.rs`).
//!
//! Each store gets its own key prefix on a shared or private server (see
//! `ticketing-testkit`), so tests run in parallel without seeing each other.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, OnceLock};
use ticketing_conformance::seat_store::HISTORY_LIMIT;
use ticketing_domain::ports::{QueueStore, SeatStore};
use ticketing_redis::{RedisQueueStore, RedisSeatStore, RedisSeatStoreConfig};
use ticketing_testkit::{TestRedis, unique_name};

fn server() -> &'static TestRedis {
    static SERVER: OnceLock<TestRedis> = OnceLock::new();
    SERVER.get_or_init(TestRedis::start)
}

async fn store() -> Arc<dyn SeatStore> {
    let config = RedisSeatStoreConfig {
        url: server().url.clone(),
        key_prefix: format!("{}:", unique_name("seats")),
        history_limit: HISTORY_LIMIT,
        tombstone_ms: 3_600_000,
        call_timeout_ms: 5_000,
    };
    Arc::new(RedisSeatStore::connect(config).await.unwrap())
}

ticketing_conformance::seat_store_suite!(store);

async fn queue_store() -> Arc<dyn QueueStore> {
    let config = RedisSeatStoreConfig {
        url: server().url.clone(),
        key_prefix: format!("{}:", unique_name("queue")),
        call_timeout_ms: 5_000,
        ..RedisSeatStoreConfig::default()
    };
    Arc::new(RedisQueueStore::connect(config).await.unwrap())
}

ticketing_conformance::queue_store_suite!(queue_store);
