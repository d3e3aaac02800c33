//! # ticketing-mem
//!
//! In-memory adapters for every port of `ticketing-domain`: the **reference
//! model**. The embedded mode and the simulator run on these; the production
//! adapters (Redis, Kafka, PostgreSQL) must pass the same conformance suites,
//! and where they disagree the model is fixed, because the simulator trusts it.
//!
//! Everything here is deterministic: state lives in `BTreeMap`s, time comes
//! from the clock port (or `tokio::time`, which the simulator controls), and
//! randomness only from the injected `RandomSource` (`ticketing-runtime`'s
//! `ChaChaRandom`). Locks are `std::sync::Mutex` held
//! for a few map operations and never across an `.await`.

mod catalog_repo;
mod clock;
mod event_bus;
mod order_repo;
mod payment_repo;
mod queue_store;
mod seat_store;
mod user_repo;

pub use catalog_repo::MemCatalogRepository;
pub use clock::ManualClock;
pub use event_bus::{MemConsumer, MemEventBus};
pub use order_repo::MemOrderRepository;
pub use payment_repo::MemPaymentRepository;
pub use queue_store::MemQueueStore;
pub use seat_store::MemSeatStore;
pub use user_repo::MemUserRepository;

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering the data if a panicking thread poisoned it: the
/// model's invariants are kept by each method finishing its writes before
/// any point that can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
