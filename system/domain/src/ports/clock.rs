use crate::model::UnixMs;

/// The only source of "now" for system code.
///
/// Contract: monotonic non-decreasing for one instance. In production it is
/// wall time read once at start plus `tokio::time` elapsed; in the simulator
/// it is the simulated clock; in tests it can be advanced by hand. System
/// code never calls `SystemTime::now` (clippy enforces this).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> UnixMs;
}
