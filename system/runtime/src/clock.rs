//! The production clock: wall-anchored tokio time.

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
