//! # ticketing-runtime
//!
//! The production implementations of the two ports every service is given,
//! [`Clock`] and [`RandomSource`]: wall-anchored tokio time
//! ([`TokioClock`]) and ChaCha20 ([`ChaChaRandom`], seeded for tests and the
//! simulator, keyed from OS entropy once by the binary). They are not
//! in-memory adapters, so they do not live in `ticketing-mem`: whoever
//! assembles services takes them from here.
//!
//! Layer: imports only `ticketing-domain` (the ports).
//!
//! [`Clock`]: ticketing_domain::ports::Clock
//! [`RandomSource`]: ticketing_domain::ports::RandomSource

mod clock;
mod random;

pub use clock::TokioClock;
pub use random::ChaChaRandom;

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering the data if a panicking thread poisoned it
/// (the random stream stays valid whatever was drawn before).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
