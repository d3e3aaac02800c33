//! The accept loop every listener runs: HTTP/1.1 on any
//! `axum::serve::Listener` (TCP in production, turmoil in the simulator),
//! with the edge's limits from [`HttpSettings`]: a header-read timeout that
//! also closes idle keep-alive connections, and a cap on open connections
//! (one over it is closed at once and counted). Shutdown stops accepting,
//! asks every connection to finish gracefully and waits for them.
//!
//! Layer: plumbing; imports `config` and `metrics`.

use crate::config::HttpSettings;
use axum::Router;
use axum::serve::Listener;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// Serves `router` on `listener` until `shutdown` resolves, then drains
/// the open connections.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: &HttpSettings,
) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    let header_timeout = Duration::from_millis(limits.header_read_timeout_ms.max(1));
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, _addr) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while conns.try_join_next().is_some() {}
        let Ok(permit) = open.clone().try_acquire_owned() else {
            // Over the cap: closed at once, so the client knows.
            metrics::counter!(crate::metrics::HTTP_CONNECTIONS_REFUSED).increment(1);
            drop(io);
            continue;
        };
        let conn = one(io, router.clone(), header_timeout, stop_rx.clone(), permit);
        conns.spawn(conn);
    }
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// One connection, until the client or the timeouts end it, or shutdown.
async fn one<I>(
    io: I,
    router: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(router));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended");
            }
            return;
        }
        _ = stop.changed() => conn.as_mut().graceful_shutdown(),
    }
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended during shutdown");
    }
}
