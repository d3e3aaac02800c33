//! The console's overview, read over HTTP the same way in every deployment:
//! each part probed (services by `GET /health`; Redis, PostgreSQL and the
//! Kafka-protocol broker at their wire protocol), the internal routes
//! (orders, ledger, settlements, waiting rooms), the public events and
//! their compact seat status, and the services' `/metrics` (consumer lag).
//! Every read has a bound ([`READ_TIMEOUT_MS`]); a part that does not
//! answer is shown down, never waited for.
//!
//! Layer: composition root (the console); imports the services' HTTP
//! client and the contract's views.

use http::Method;
use hyper_util::client::legacy::connect::HttpConnector;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use ticketing_contract::{AuditView, EventView, LedgerStatsView, QueueRoomView};
use ticketing_domain::ports::RandomSource;
use ticketing_services::http::client::{HttpClient, JsonResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The bound of every read and probe.
pub const READ_TIMEOUT_MS: u64 = 3_000;

/// A store the console probes at its wire protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    Redis(String),
    Postgres(String),
    Kafka(String),
}

/// Where the overview reads from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// `(name, base URL)`: probed with `GET /health`.
    pub services: Vec<(String, String)>,
    /// Probed at their protocol; none in the embedded system (in memory).
    pub stores: Vec<Store>,
    /// The internal routes (`/internal/...`).
    pub internal_url: String,
    /// The public API (`/api/events`, the seat status).
    pub public_url: String,
    /// Prometheus text endpoints (consumer lag).
    pub metrics_urls: Vec<String>,
    pub service_token: Option<String>,
}

/// One part's health.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartView {
    pub name: String,
    /// `up`, `down` or `in-memory`.
    pub status: &'static str,
    pub answered: String,
    pub latency_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFigures {
    pub event_id: String,
    pub title: String,
    pub seat_count: usize,
    pub available_count: usize,
    pub held_count: usize,
    pub sold_count: usize,
    pub room: Option<QueueRoomView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LagView {
    pub topic: String,
    pub group: String,
    pub lag: f64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub parts: Vec<PartView>,
    pub outbox_backlog: Option<usize>,
    pub consumer_lag: Vec<LagView>,
    pub held_seats: usize,
    pub orders_by_status: BTreeMap<String, usize>,
    pub valid_tickets: Option<usize>,
    pub ledger: Option<LedgerStatsView>,
    pub settlement_batches: Option<usize>,
    pub last_settlement_at_ms: Option<u64>,
    pub events: Vec<EventFigures>,
    /// What could not be read, one sentence each.
    pub problems: Vec<String>,
}

/// Reads the overview; what cannot be read is left out and said in `problems`.
#[derive(Debug)]
pub struct Reader {
    sources: Sources,
    http: HttpClient<HttpConnector>,
}

impl Reader {
    pub fn new(sources: Sources, rng: Arc<dyn RandomSource>) -> Self {
        let mut http = HttpClient::new(
            HttpConnector::new(),
            "",
            Duration::from_millis(READ_TIMEOUT_MS),
            rng,
        );
        if let Some(t) = &sources.service_token {
            http = http.with_header(ticketing_services::config::SERVICE_TOKEN_HEADER, t);
        }
        Reader { sources, http }
    }

    async fn get(&self, url: String) -> Result<JsonResponse, String> {
        match self
            .http
            .send_json(Method::GET, &url, None, &[], None)
            .await
        {
            Ok(r) if r.status.is_success() => Ok(r),
            Ok(r) => Err(format!("{url}: {} {}", r.status, r.error_code())),
            Err(e) => Err(format!("{url}: {e}")),
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, url: String) -> Result<T, String> {
        let r = self.get(url.clone()).await?;
        r.json()
            .ok_or_else(|| format!("{url}: not the expected JSON"))
    }

    pub async fn read(&self) -> Overview {
        let mut o = Overview {
            parts: self.parts().await,
            ..Overview::default()
        };
        let s = &self.sources;
        match self
            .json::<AuditView>(format!("{}/internal/audit/orders", s.internal_url))
            .await
        {
            Ok(a) => {
                for order in &a.orders {
                    let status = serde_json::to_value(order.status).unwrap_or_default();
                    *o.orders_by_status
                        .entry(status.as_str().unwrap_or("?").to_owned())
                        .or_insert(0) += 1;
                }
                o.outbox_backlog = Some(a.outbox_backlog);
                o.valid_tickets = Some(a.tickets.len());
            }
            Err(e) => o.problems.push(e),
        }
        match self
            .json(format!("{}/internal/ledger/stats", s.internal_url))
            .await
        {
            Ok(l) => o.ledger = Some(l),
            Err(e) => o.problems.push(e),
        }
        match self
            .json::<Vec<serde_json::Value>>(format!("{}/internal/settlements", s.internal_url))
            .await
        {
            Ok(b) => {
                o.settlement_batches = Some(b.len());
                o.last_settlement_at_ms = b.iter().filter_map(|x| x["closedAtMs"].as_u64()).max();
            }
            Err(e) => o.problems.push(e),
        }
        self.events(&mut o).await;
        for url in &s.metrics_urls {
            match self.get(url.clone()).await {
                Ok(r) => o
                    .consumer_lag
                    .extend(lag_lines(&String::from_utf8_lossy(&r.bytes))),
                Err(e) => o.problems.push(e),
            }
        }
        o
    }

    /// Each event: availability, held and sold from its compact status,
    /// and its waiting room's figures.
    async fn events(&self, o: &mut Overview) {
        let s = &self.sources;
        let events = match self
            .json::<Vec<EventView>>(format!("{}/api/events", s.public_url))
            .await
        {
            Ok(e) => e,
            Err(e) => return o.problems.push(e),
        };
        for e in events {
            let id = e.event_id.0.clone();
            let status = self
                .json::<serde_json::Value>(format!("{}/api/events/{id}/seats/status", s.public_url))
                .await
                .map(|v| v["status"].as_str().unwrap_or_default().to_owned())
                .unwrap_or_else(|err| {
                    o.problems.push(err);
                    String::new()
                });
            let count = |c: char| status.chars().filter(|x| *x == c).count();
            let room = if e.waiting_room {
                self.json(format!("{}/internal/queue/{id}", s.internal_url))
                    .await
                    .map_err(|err| o.problems.push(err))
                    .ok()
            } else {
                None
            };
            o.held_seats += count('H');
            o.events.push(EventFigures {
                event_id: id,
                title: e.title,
                seat_count: e.seat_count,
                available_count: e.available_count,
                held_count: count('H'),
                sold_count: count('S'),
                room,
            });
        }
    }

    async fn parts(&self) -> Vec<PartView> {
        let mut parts = Vec::new();
        for (name, url) in &self.sources.services {
            parts.push(self.probe_service(name, url).await);
        }
        if self.sources.stores.is_empty() {
            for name in ["Redis", "Kafka-protocol broker", "PostgreSQL"] {
                parts.push(PartView {
                    name: name.into(),
                    status: "in-memory",
                    answered: "not used (embedded: in memory)".into(),
                    latency_ms: None,
                });
            }
        }
        for store in &self.sources.stores {
            parts.push(probe_store(store).await);
        }
        parts
    }

    async fn probe_service(&self, name: &str, url: &str) -> PartView {
        let started = tokio::time::Instant::now();
        let r = self
            .http
            .send_json(Method::GET, &format!("{url}/health"), None, &[], None)
            .await;
        let (status, answered) = match r {
            Ok(r) => (
                if r.status.is_success() { "up" } else { "down" },
                format!("{} {}", r.status, String::from_utf8_lossy(&r.bytes).trim()),
            ),
            Err(e) => ("down", e.to_string()),
        };
        PartView {
            name: format!("{name} ({url})"),
            status,
            answered,
            latency_ms: Some(started.elapsed().as_millis() as u64),
        }
    }
}

/// `name=url,name=url` → `[(name, url)]` (urls without a trailing slash).
pub fn parse_services(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, url) = p
                .split_once('=')
                .ok_or_else(|| format!("{p:?}: expected name=url"))?;
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(format!(
                    "{p:?}: the url must start with http:// or https://"
                ));
            }
            Ok((
                name.trim().to_owned(),
                url.trim().trim_end_matches('/').to_owned(),
            ))
        })
        .collect()
}

/// `host:port` of a URL such as `redis://127.0.0.1:6379/` or
/// `postgres://user:secret@db:5432/name` (credentials dropped).
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['/', '?']).next().unwrap_or_default();
    rest.rsplit_once('@').map_or(rest, |(_, h)| h).to_owned()
}

/// The stores a deployment's settings point at.
pub fn stores_of(redis_url: &str, database_url: &str, kafka_brokers: &str) -> Vec<Store> {
    vec![
        Store::Redis(host_port(redis_url)),
        Store::Postgres(host_port(database_url)),
        Store::Kafka(
            kafka_brokers
                .split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned(),
        ),
    ]
}

/// `bus_consumer_lag{group="…",topic="…"} N` lines of the Prometheus text.
pub fn lag_lines(text: &str) -> Vec<LagView> {
    let label = |labels: &str, name: &str| {
        labels
            .split(',')
            .find_map(|kv| kv.trim().strip_prefix(&format!("{name}=\"")))
            .map(|v| v.trim_end_matches('"').to_owned())
            .unwrap_or_default()
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("bus_consumer_lag{"))
        .filter_map(|rest| {
            let (labels, value) = rest.split_once("} ")?;
            Some(LagView {
                topic: label(labels, "topic"),
                group: label(labels, "group"),
                lag: value.trim().parse().ok()?,
            })
        })
        .collect()
}

/// The request each store answers without credentials, and how to read it.
fn handshake(store: &Store) -> (&str, &str, Vec<u8>) {
    match store {
        Store::Redis(a) => ("Redis", a, b"PING\r\n".to_vec()),
        // SSLRequest: a PostgreSQL server answers one byte, N or S.
        Store::Postgres(a) => ("PostgreSQL", a, vec![0, 0, 0, 8, 4, 210, 22, 47]),
        // ApiVersions v0, correlation id 7, client id "console".
        Store::Kafka(a) => {
            let mut m = vec![0, 18, 0, 0, 0, 0, 0, 7, 0, 7];
            m.extend_from_slice(b"console");
            let mut framed = (m.len() as u32).to_be_bytes().to_vec();
            framed.extend(m);
            ("Kafka-protocol broker", a, framed)
        }
    }
}

/// Connects to the store and says what it answered to its handshake.
async fn probe_store(store: &Store) -> PartView {
    let (name, addr, request) = handshake(store);
    let started = tokio::time::Instant::now();
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(&request).await?;
        let mut buf = vec![0u8; 64];
        let n = s.read(&mut buf).await?;
        buf.truncate(n);
        Ok::<_, std::io::Error>(buf)
    };
    let (up, answered) =
        match tokio::time::timeout(Duration::from_millis(READ_TIMEOUT_MS), ask).await {
            Ok(Ok(buf)) => judge(store, &buf),
            Ok(Err(e)) => (false, format!("no answer: {e}")),
            Err(_) => (false, format!("no answer within {READ_TIMEOUT_MS} ms")),
        };
    PartView {
        name: format!("{name} ({addr})"),
        status: if up { "up" } else { "down" },
        answered,
        latency_ms: Some(started.elapsed().as_millis() as u64),
    }
}

/// Whether the store's answer is a healthy one, and the answer in words.
fn judge(store: &Store, buf: &[u8]) -> (bool, String) {
    match store {
        Store::Redis(_) => {
            let text = String::from_utf8_lossy(buf).trim().to_owned();
            (text == "+PONG", text)
        }
        Store::Postgres(_) => match buf.first() {
            Some(b'N') => (true, "accepting connections (no TLS)".into()),
            Some(b'S') => (true, "accepting connections (TLS)".into()),
            _ => (false, format!("unexpected answer {buf:?}")),
        },
        Store::Kafka(_) => {
            let correlation = buf
                .get(4..8)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            let error = buf.get(8..10).map(|b| i16::from_be_bytes([b[0], b[1]]));
            match (correlation, error) {
                (Some(7), Some(0)) => (true, "ApiVersions answered".into()),
                (Some(7), Some(e)) => (true, format!("ApiVersions answered (error code {e})")),
                (c, e) => (
                    false,
                    format!("unexpected answer (correlation {c:?}, error {e:?})"),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_lag_is_read_from_the_prometheus_text() {
        let text = "# TYPE bus_consumer_lag gauge\n\
                    bus_consumer_lag{group=\"order\",topic=\"reservation-events\"} 3\n\
                    bus_consumer_lag{topic=\"order-commands\",group=\"reservation\"} 0\n\
                    bus_messages_total{topic=\"x\"} 9\n";
        let lag = lag_lines(text);
        assert_eq!(lag.len(), 2);
        assert_eq!(
            (lag[0].topic.as_str(), lag[0].group.as_str(), lag[0].lag),
            ("reservation-events", "order", 3.0)
        );
        assert_eq!(
            (lag[1].topic.as_str(), lag[1].group.as_str()),
            ("order-commands", "reservation")
        );
    }

    #[test]
    fn addresses_come_from_the_settings_without_credentials() {
        let stores = stores_of(
            "redis://127.0.0.1:6379/",
            "postgres://ticketing:secret@postgres:5432/ticketing_orders",
            "kafka:9092,kafka2:9092",
        );
        assert_eq!(
            stores,
            [
                Store::Redis("127.0.0.1:6379".into()),
                Store::Postgres("postgres:5432".into()),
                Store::Kafka("kafka:9092".into()),
            ]
        );
        assert_eq!(
            parse_services("catalog=http://127.0.0.1:1/, order-1=http://h:2").unwrap(),
            [
                ("catalog".to_owned(), "http://127.0.0.1:1".to_owned()),
                ("order-1".to_owned(), "http://h:2".to_owned()),
            ]
        );
        assert!(parse_services("catalog").is_err());
        assert!(parse_services("catalog=ftp://x").is_err());
    }

    #[test]
    fn store_answers_are_judged() {
        let redis = Store::Redis(String::new());
        assert_eq!(judge(&redis, b"+PONG\r\n"), (true, "+PONG".into()));
        assert!(!judge(&redis, b"-NOAUTH Authentication required.\r\n").0);
        let pg = Store::Postgres(String::new());
        assert!(judge(&pg, b"N").0);
        assert!(!judge(&pg, b"HTTP/1.1 400").0);
        let kafka = Store::Kafka(String::new());
        assert!(judge(&kafka, &[0, 0, 0, 20, 0, 0, 0, 7, 0, 0, 1]).0);
        assert!(!judge(&kafka, &[0, 0, 0, 20, 0, 0, 0, 9, 0, 0]).0);
        assert!(!judge(&kafka, &[0, 0]).0);
    }

    #[test]
    fn the_kafka_handshake_is_a_framed_api_versions_request() {
        let (_, _, req) = handshake(&Store::Kafka("b:9092".into()));
        assert_eq!(
            u32::from_be_bytes([req[0], req[1], req[2], req[3]]) as usize,
            req.len() - 4
        );
        assert_eq!(&req[4..6], &[0, 18], "api key 18: ApiVersions");
    }
}
