//! The ports: every way the business core reaches the outside world.
//!
//! One trait per port. Each method documents its contract — errors,
//! atomicity, idempotency — because two adapters implement each trait (the
//! in-memory reference model and the production adapter) and one
//! conformance suite holds both to the same contract.
//!
//! | port | trait | in-memory adapter |
//! |---|---|---|
//! | clock | [`Clock`] | `ticketing_runtime::TokioClock`, `ticketing_mem::ManualClock` |
//! | ids and randomness | [`RandomSource`] | `ticketing_runtime::ChaChaRandom` |
//! | seat store | [`SeatStore`] | `ticketing_mem::MemSeatStore` |
//! | event bus | [`EventBus`], [`Consumer`] | `ticketing_mem::MemEventBus` |
//! | catalog repository | [`CatalogRepository`] | `ticketing_mem::MemCatalogRepository` |
//! | order repository | [`OrderRepository`] | `ticketing_mem::MemOrderRepository` |
//! | payment repository | [`PaymentRepository`] | `ticketing_mem::MemPaymentRepository` |
//! | waiting room | [`QueueStore`] | `ticketing_mem::MemQueueStore` |
//! | customer accounts | [`UserRepository`] | `ticketing_mem::MemUserRepository` |
//! | payment gateway client | [`PaymentGateway`] | HTTP adapter in `ticketing-services` |
//! | reservation client | [`ReservationClient`] | HTTP adapter in `ticketing-services` |

mod catalog_repo;
mod clock;
mod event_bus;
mod event_calendar;
mod order_repo;
mod payment_gateway;
mod payment_repo;
mod queue_store;
mod random;
mod reservation_client;
mod seat_store;
mod user_repo;

pub use catalog_repo::*;
pub use clock::*;
pub use event_bus::*;
pub use event_calendar::*;
pub use order_repo::*;
pub use payment_gateway::*;
pub use payment_repo::*;
pub use queue_store::*;
pub use random::*;
pub use reservation_client::*;
pub use seat_store::*;
pub use user_repo::*;

/// Errors shared by repositories.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// Optimistic concurrency: the record changed since it was read. Re-read and retry.
    #[error("concurrent update, retry")]
    Conflict,
    /// A durable ticket for this seat already exists (the unique key held).
    #[error("ticket for {event_id}/{seat_id} already exists")]
    TicketConflict {
        event_id: crate::EventId,
        seat_id: crate::SeatId,
    },
    /// The store could not be reached or failed; nothing was written. Retryable.
    #[error("repository unavailable: {0}")]
    Unavailable(String),
    /// The call asked for something its contract rules out (a caller's
    /// bug, not a race): nothing was written. Not retryable.
    #[error("invalid request to the repository: {0}")]
    Invalid(String),
}
