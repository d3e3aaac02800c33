//! The client's address, for limits per client address: the connection's
//! peer (which the accept loop attaches to every request as [`PeerAddr`]),
//! or — behind the gateway — the last `X-Forwarded-For` entry, which is the
//! one the gateway appended (nginx's `$proxy_add_x_forwarded_for`); entries
//! before it came from the client and are never trusted.
//!
//! Layer: plumbing; imports nothing of this crate.

use axum::http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// The connection's peer, set on every request by `http::serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Longest `X-Forwarded-For` read (a proxy chain of a few hops).
const FORWARDED_MAX_BYTES: usize = 1024;

/// The client's address: the last `X-Forwarded-For` entry where the
/// gateway is trusted to have appended it, else the peer's. `None` when
/// neither is known (a request built in a test without a connection).
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<PeerAddr>,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for && let Some(ip) = last_forwarded(headers) {
        return Some(ip);
    }
    peer.map(|p| p.0.ip())
}

fn last_forwarded(headers: &HeaderMap) -> Option<IpAddr> {
    // Several header lines are one list; the last line holds the last entry.
    let value = headers.get_all("x-forwarded-for").iter().next_back()?;
    if value.len() > FORWARDED_MAX_BYTES {
        return None;
    }
    let last = value.to_str().ok()?.rsplit(',').next()?.trim();
    last.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_gateways_entry_is_the_last_one() {
        let peer = Some(PeerAddr("10.0.0.9:4000".parse().unwrap()));
        let h = headers(&["1.1.1.1, 2.2.2.2", "3.3.3.3"]);
        assert_eq!(client_ip(&h, peer, true), Some("3.3.3.3".parse().unwrap()));
        // Not trusted (no gateway in front): the forged header is ignored.
        assert_eq!(
            client_ip(&h, peer, false),
            Some("10.0.0.9".parse().unwrap())
        );
        // Garbage in the last entry: the peer.
        let h = headers(&["1.1.1.1, not-an-ip"]);
        assert_eq!(client_ip(&h, peer, true), Some("10.0.0.9".parse().unwrap()));
        assert_eq!(client_ip(&HeaderMap::new(), None, true), None);
    }
}
