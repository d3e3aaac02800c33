//! # ticketing-domain
//!
//! The business core of the ticketing system: domain types, the rules for
//! holds, orders and payments, the order saga as an explicit state machine,
//! and the **ports** (traits) every adapter implements.
//!
//! Nothing here does I/O. Services in `ticketing-services` are written against
//! these traits only, so the same code runs on the in-memory reference model
//! (`ticketing-mem`, used by the embedded mode and the simulator) and on real
//! infrastructure adapters.
//!
//! Where to look:
//! - [`model`]: ids, events, seats, holds, orders, payments, tickets.
//! - [`rules`]: validation and limits (seats per hold, hold lifetime, request hashing).
//! - [`saga`]: the order saga state machine (pure, property-tested).
//! - [`refund`]: the after-sale saga (cancel → void tickets → refund → return
//!   seats) and the cancellation window (pure; not wired to a route yet).
//! - [`queue`]: the waiting room's rules (pre-queue order, admission caps, wait estimate).
//! - [`messages`]: the payloads that travel over the event bus.
//! - [`ports`]: one trait per port, each method documenting its contract.

pub mod messages;
pub mod model;
pub mod ports;
pub mod probe;
pub mod queue;
pub mod refund;
pub mod rules;
pub mod saga;

pub use model::*;
