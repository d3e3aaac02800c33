//! Clock adapters: wall-anchored tokio time, and a hand-driven clock for tests.

use std::sync::atomic::{AtomicU64, Ordering};
use ticketing_domain::UnixMs;
use ticketing_domain::ports::Clock;

/// `epoch_ms` (read once from wall time by the binary, or fixed by the
/// simulator) plus the `tokio::time` elapsed since construction. Under
/// turmoil or a paused tokio clock this is simulated time.
#[derive(Debug)]
pub struct TokioClock {
    epoch_ms: UnixMs,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// Must be called inside a tokio runtime.
    pub fn new(epoch_ms: UnixMs) -> Self {
        Self {
            epoch_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> UnixMs {
        self.epoch_ms + self.start.elapsed().as_millis() as u64
    }
}

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
