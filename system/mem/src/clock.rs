//! The hand-driven clock for tests (the production clock, `TokioClock`, is
//! in `ticketing-runtime`).

use std::sync::atomic::{AtomicU64, Ordering};
use ticketing_domain::UnixMs;
use ticketing_domain::ports::Clock;

/// A clock that moves only when told to: tests use it to expire holds
/// without waiting.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    pub fn new(now_ms: UnixMs) -> Self {
        Self {
            now_ms: AtomicU64::new(now_ms),
        }
    }

    pub fn advance_ms(&self, ms: u64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn set_ms(&self, now_ms: UnixMs) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> UnixMs {
        self.now_ms.load(Ordering::SeqCst)
    }
}
