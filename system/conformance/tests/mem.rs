//! Every conformance suite against the in-memory reference model.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use ticketing_conformance::seat_store::HISTORY_LIMIT;
use ticketing_domain::ports::{
    CatalogRepository, EventBus, OrderRepository, PaymentRepository, QueueStore, SeatStore,
    UserRepository,
};
use ticketing_mem::{
    MemCatalogRepository, MemEventBus, MemOrderRepository, MemPaymentRepository, MemQueueStore,
    MemSeatStore, MemUserRepository,
};

ticketing_conformance::seat_store_suite!(|| async {
    Arc::new(MemSeatStore::new(HISTORY_LIMIT, 3_600_000)) as Arc<dyn SeatStore>
});
ticketing_conformance::event_bus_suite!(|| async {
    Arc::new(MemEventBus::new(4)) as Arc<dyn EventBus>
});
ticketing_conformance::order_repo_suite!(|| async {
    Arc::new(MemOrderRepository::new()) as Arc<dyn OrderRepository>
});
ticketing_conformance::payment_repo_suite!(|| async {
    Arc::new(MemPaymentRepository::new()) as Arc<dyn PaymentRepository>
});
ticketing_conformance::catalog_repo_suite!(|| async {
    Arc::new(MemCatalogRepository::new()) as Arc<dyn CatalogRepository>
});
ticketing_conformance::queue_store_suite!(|| async {
    Arc::new(MemQueueStore::new()) as Arc<dyn QueueStore>
});
ticketing_conformance::user_repo_suite!(|| async {
    Arc::new(MemUserRepository::new()) as Arc<dyn UserRepository>
});
