//! HTTP plumbing shared by every service: the JSON extractor that maps bad
//! input to the standard 4xx body, the trace-id middleware, the
//! service-to-service client with a pluggable connector, and `serve` over
//! any `axum::serve::Listener` (TCP in production, turmoil in the simulator).

pub mod client;
pub mod extract;
pub mod trace;

use axum::Router;
use axum::serve::Listener;
use std::future::Future;

/// Serves `router` on any listener until `shutdown` resolves, then drains
/// in-flight requests. The simulator passes a turmoil listener here.
pub async fn serve<L>(
    listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
