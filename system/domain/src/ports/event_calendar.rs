use crate::model::{EventId, TraceId, UnixMs};
use async_trait::async_trait;

/// Why the calendar could not say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// No answer, a 5xx or an answer that did not parse: retryable.
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
}

/// The order service's view of the catalog: when an event starts, for the
/// cancellation window (`refund.window_before_start_s`).
#[async_trait]
pub trait EventCalendar: Send + Sync + std::fmt::Debug {
    /// The event's start in ms since the Unix epoch (the clock port's
    /// scale); `Ok(None)` for an event the catalog does not know.
    async fn starts_at_ms(
        &self,
        event_id: &EventId,
        trace: Option<&TraceId>,
    ) -> Result<Option<UnixMs>, CalendarError>;
}
