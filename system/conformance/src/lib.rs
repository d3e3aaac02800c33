//! # ticketing-conformance
//!
//! One conformance suite per port, written once and run against every
//! adapter of that port: the in-memory reference model (here, in
//! `tests/mem.rs`) and the production adapters (Redis, Kafka, PostgreSQL)
//! as they arrive. The simulator trusts the in-memory model; these suites
//! are what makes that trust earned. If an adapter and the model disagree,
//! the model is fixed.
//!
//! Each suite is a set of `pub async fn`s taking a factory that returns a
//! fresh, empty adapter, plus a macro that stamps out one `#[tokio::test]`
//! per case for a given factory:
//!
//! ```text
//! ticketing_conformance::seat_store_suite!(|| async { Arc::new(MemSeatStore::new(16, 3_600_000)) as Arc<dyn SeatStore> });
//! ```

// A test-support crate: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

pub mod catalog_repo;
pub mod event_bus;
pub mod order_repo;
pub mod payment_repo;
pub mod queue_store;
pub mod seat_store;
pub mod user_repo;
