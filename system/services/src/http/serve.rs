//! The accept loop every listener runs: HTTP/1.1 and h2c (HTTP/2 with
//! prior knowledge) on any
//! `axum::serve::Listener` (TCP in production, turmoil in the simulator),
//! with the edge's limits from [`HttpSettings`]: a header-read timeout that
//! also closes idle keep-alive connections, and a cap on open connections
//! (one over it is closed at once and counted); [`bind`] gives a TCP
//! listener the configured accept backlog. Shutdown stops accepting,
//! asks every connection to finish gracefully and waits for them.
//!
//! Layer: plumbing; imports `config`, `metrics` and `http::peer`.

use crate::config::HttpSettings;
use axum::Router;
use axum::serve::Listener;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// Binds a TCP listener on `host:port` (the first address it resolves to)
/// with `backlog` as its accept queue (`http.accept_backlog`), address
/// reuse on as std sets it.
pub async fn bind(host: &str, port: u16, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host} resolves to no address")))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog.max(1))
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains
/// the open connections.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: &HttpSettings,
) -> std::io::Result<()>
where
    L: Listener<Addr = std::net::SocketAddr>,
{
    let hyper_limits = HyperLimits::above(limits);
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, addr) = tokio::select! {
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
        let held = (permit, crate::metrics::ConnectionGuard::open());
        let conn = one(
            io,
            addr,
            router.clone(),
            hyper_limits,
            stop_rx.clone(),
            held,
        );
        conns.spawn(conn);
    }
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// The HTTP library's own limits: the header timeout as configured, and
/// header count and buffer size above the application's limits, so that a
/// request over those gets the application's answer (standard body, trace
/// id), not the library's empty one. What hyper still answers by itself,
/// with no body: a request line or header it cannot parse (400), a URI over
/// its fixed 64 KiB (414), more than `max_headers` headers or a head over
/// `max_buf_size` (431).
#[derive(Debug, Clone, Copy)]
struct HyperLimits {
    header_timeout: Duration,
    max_headers: usize,
    max_buf_size: usize,
}

impl HyperLimits {
    fn above(l: &HttpSettings) -> HyperLimits {
        HyperLimits {
            header_timeout: Duration::from_millis(l.header_read_timeout_ms.max(1)),
            max_headers: l.max_headers.saturating_mul(2).max(1_024),
            // Room for heads far over the application's limits (hyper's
            // floor is 8 KiB); the buffer grows only as a head needs it.
            max_buf_size: (2 * (l.max_uri_bytes + l.max_header_bytes)).max(1024 * 1024),
        }
    }
}

/// One connection, until the client or the timeouts end it, or shutdown.
async fn one<I>(
    io: I,
    peer: std::net::SocketAddr,
    router: Router,
    limits: HyperLimits,
    mut stop: watch::Receiver<bool>,
    _held: (OwnedSemaphorePermit, crate::metrics::ConnectionGuard),
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // HTTP/1.1 (keep-alive) or HTTP/2 with prior knowledge (h2c), told
    // apart by the connection's first bytes.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_buf_size);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_buf_size).unwrap_or(u32::MAX));
    // Every request learns its connection's peer (limits per client address).
    let router = tower::util::MapRequest::new(router, move |mut req: axum::extract::Request<_>| {
        req.extensions_mut().insert(super::peer::PeerAddr(peer));
        req
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Connects `n` clients at once to `listener`, which never accepts;
    /// returns how many connections the kernel completed within `bound`
    /// (loopback completes at once or, queue full, not until a SYN retry
    /// finds room, which never comes here).
    async fn completed(listener: &tokio::net::TcpListener, n: usize) -> usize {
        let addr = listener.local_addr().unwrap();
        let bound = Duration::from_secs(3);
        let mut tries = JoinSet::new();
        for _ in 0..n {
            tries.spawn(async move {
                let c = tokio::time::timeout(bound, tokio::net::TcpStream::connect(addr)).await;
                // Keep the stream open until every try finished.
                c.ok().and_then(Result::ok)
            });
        }
        let mut open = Vec::new();
        while let Some(r) = tries.join_next().await {
            open.extend(r.unwrap());
        }
        open.len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_accept_backlog_holds_a_stampede_of_connections() {
        let roomy = bind("127.0.0.1", 0, 1024).await.unwrap();
        assert_eq!(completed(&roomy, 600).await, 600);
        // The same stampede on a short queue: most connections wait.
        let short = bind("127.0.0.1", 0, 16).await.unwrap();
        let done = completed(&short, 600).await;
        assert!(
            done < 100,
            "{done} of 600 completed on a 16-connection queue"
        );
    }
}
