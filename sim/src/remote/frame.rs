//! The wire: a 4-byte length and a JSON body, one request per connection;
//! [`call`] dials, sends and reads the answer within a timeout, [`serve`]
//! answers each connection's request until the host dies.
//!
//! Layer: the bottom of `remote`; imports only turmoil and serde.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};

pub const REDIS_PORT: u16 = 6379;
pub const KAFKA_PORT: u16 = 9092;
/// The waiting rooms, on the `redis` host beside the seat store.
pub const QUEUE_PORT: u16 = 6380;
/// Largest frame accepted (a seat map of a big event fits easily).
const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

async fn write_frame<T: Serialize>(s: &mut TcpStream, v: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    s.write_u32(body.len() as u32).await?;
    s.write_all(&body).await?;
    s.flush().await
}

async fn read_frame<T: DeserializeOwned>(s: &mut TcpStream) -> std::io::Result<T> {
    let len = s.read_u32().await? as usize;
    if len > MAX_FRAME_BYTES {
        return Err(std::io::Error::other(format!(
            "frame of {len} bytes refused"
        )));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}

/// One call: dial, send, read the answer — all within `timeout`.
pub(super) async fn call<Req: Serialize, Resp: DeserializeOwned>(
    host: &str,
    port: u16,
    req: &Req,
    timeout: Duration,
) -> Result<Resp, String> {
    let work = async {
        let mut s = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connect {host}: {e}"))?;
        write_frame(&mut s, req).await.map_err(|e| e.to_string())?;
        read_frame::<Resp>(&mut s).await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("{host} timed out after {} ms", timeout.as_millis())),
    }
}

/// Serves each connection's single request with `handle`, until the host dies.
pub(super) async fn serve<Req, Resp, F, Fut>(port: u16, handle: F) -> turmoil::Result
where
    Req: DeserializeOwned + 'static,
    Resp: Serialize + 'static,
    F: Fn(Req) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = Resp> + 'static,
{
    let listener = TcpListener::bind(("0.0.0.0", port)).await?;
    loop {
        let (mut s, _) = listener.accept().await?;
        let handle = handle.clone();
        tokio::task::spawn_local(async move {
            if let Ok(req) = read_frame::<Req>(&mut s).await {
                let resp = handle(req).await;
                let _ = write_frame(&mut s, &resp).await;
            }
        });
    }
}
