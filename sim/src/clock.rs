//! The simulator's clock port: a fixed epoch plus turmoil's simulated
//! elapsed time, the same on every host and across host restarts.

use ticketing_domain::UnixMs;
use ticketing_domain::ports::Clock;

/// 2027-01-01T00:00:00Z: every run starts here.
pub const EPOCH_MS: UnixMs = 1_798_761_600_000;

#[derive(Debug, Clone, Copy, Default)]
pub struct SimClock;

impl SimClock {
    /// Simulated milliseconds since the start of the run (0 outside a host).
    pub fn elapsed_ms() -> u64 {
        turmoil::sim_elapsed().map_or(0, |d| d.as_millis() as u64)
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> UnixMs {
        EPOCH_MS + Self::elapsed_ms()
    }
}
