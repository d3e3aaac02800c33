//! The harness's own HTTP calls outside the measured load: setting up the
//! run's events and payment faults on the internal listener, and the audit's
//! reads. Every call has a timeout; none is recorded as load.

use serde_json::Value;
use std::time::Duration;
use ticketing_contract::{AuditView, QueueRoomView, SeatMapView};
use ticketing_domain::LedgerEntry;
use ticketing_services::customer::{CustomerKey, authorization};

/// Wall-clock milliseconds (the harness is not simulated: it may read the OS clock).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Public (gateway) and internal base URLs of one target.
#[derive(Debug, Clone)]
pub struct Api {
    pub public_url: String,
    pub internal_url: String,
    http: reqwest::Client,
    /// For the internal listener: sends the service credential, if any
    /// (never sent to the public URL).
    internal: reqwest::Client,
}

/// The customer the harness's own public calls are made as.
pub const HARNESS_CUSTOMER: &str = "load-harness";
/// Lifetime of the tokens the harness mints (longer than any run).
pub const TOKEN_TTL_MS: u64 = 24 * 3_600_000;

/// Did `create_event` make the event or find it there already?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    Existing,
}

impl Api {
    /// `service_token`: the targets' `internal.token` (required by a
    /// target whose services run on their own); `customers`: the key the
    /// harness's own public calls (the SSE writer's holds) are signed with,
    /// as customer [`HARNESS_CUSTOMER`].
    pub fn new(
        public_url: &str,
        internal_url: &str,
        service_token: Option<&str>,
        customers: Option<&CustomerKey>,
    ) -> anyhow::Result<Api> {
        let builder = || {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .connect_timeout(Duration::from_secs(5))
                // Idle connections go well inside the soak's settle window
                // (an embedded target counts both ends of them).
                .pool_idle_timeout(Duration::from_secs(10))
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(t) = service_token {
            let mut v = reqwest::header::HeaderValue::from_str(t)
                .map_err(|_| anyhow::anyhow!("the service token is not a valid header value"))?;
            v.set_sensitive(true);
            headers.insert(ticketing_services::config::SERVICE_TOKEN_HEADER, v);
        }
        let public = customers.map_or_else(Default::default, |key| {
            authorization(key, HARNESS_CUSTOMER, wall_ms(), TOKEN_TTL_MS)
        });
        Ok(Api {
            public_url: public_url.trim_end_matches('/').to_owned(),
            internal_url: internal_url.trim_end_matches('/').to_owned(),
            http: builder().default_headers(public).build()?,
            internal: builder().default_headers(headers).build()?,
        })
    }

    /// The client for `url`: the internal one on the internal listener.
    fn client_for(&self, url: &str) -> &reqwest::Client {
        if url.starts_with(&self.internal_url) {
            &self.internal
        } else {
            &self.http
        }
    }

    /// The harness's own HTTP client (timeouts set), for calls outside goose.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: String) -> anyhow::Result<T> {
        let resp = self
            .client_for(&url)
            .get(&url)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            anyhow::bail!("GET {url}: {status} {body}");
        }
        resp.json::<T>()
            .await
            .map_err(|e| anyhow::anyhow!("GET {url}: unexpected body: {e}"))
    }

    /// The internal listener's `/metrics` text (Prometheus format), with a
    /// timeout of its own: a sampler must not wait 30 s on a stuck scrape.
    pub async fn metrics_text(&self, timeout: Duration) -> anyhow::Result<String> {
        let url = format!("{}/metrics", self.internal_url);
        let resp = self
            .internal
            .get(&url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            anyhow::bail!("GET {url}: {status}");
        }
        resp.text()
            .await
            .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))
    }

    /// Waits until the gateway and the internal listener answer (bounded).
    pub async fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        for url in [
            format!("{}/health", self.public_url),
            format!("{}/internal/payment-faults", self.internal_url),
        ] {
            loop {
                let answer = self.client_for(&url).get(&url).send().await;
                let ok = matches!(answer, Ok(r) if r.status().is_success());
                if ok {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    anyhow::bail!("{url} did not answer 200 within {timeout:?}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    /// Registers an event of `rows x cols` seats (internal route). An event
    /// of that id that is already there is joined (several load processes
    /// sharing one `--run-id`).
    pub async fn create_event(
        &self,
        event_id: &str,
        title: &str,
        rows: u32,
        cols: u32,
        waiting_room: Option<ticketing_contract::WaitingRoomBody>,
    ) -> anyhow::Result<Created> {
        let url = format!("{}/internal/events", self.internal_url);
        let resp = self
            .internal
            .post(&url)
            .json(&ticketing_contract::CreateEventBody {
                event_id: event_id.to_owned(),
                title: title.to_owned(),
                starts_at: "2030-01-01T20:00:00Z".to_owned(),
                rows,
                cols,
                waiting_room,
            })
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("POST {url}: {e}"))?;
        match resp.status().as_u16() {
            201 => Ok(Created::New),
            409 => Ok(Created::Existing),
            s => {
                let body = resp.text().await.unwrap_or_default();
                anyhow::bail!("cannot create event {event_id}: POST {url} answered {s} {body}")
            }
        }
    }

    /// Sets a waiting room's caps (internal route).
    pub async fn set_queue_caps(
        &self,
        event_id: &str,
        active_max: u32,
        admit_per_s: u32,
    ) -> anyhow::Result<QueueRoomView> {
        let url = format!("{}/internal/queue/{event_id}", self.internal_url);
        let body = ticketing_contract::QueueCapsBody {
            active_max,
            admit_per_s,
        };
        let resp = self.put_internal(&url, &body).await?;
        resp.json()
            .await
            .map_err(|e| anyhow::anyhow!("PUT {url}: {e}"))
    }

    /// A waiting room's state (internal route).
    pub async fn queue_room(&self, event_id: &str) -> anyhow::Result<QueueRoomView> {
        self.get_json(format!("{}/internal/queue/{event_id}", self.internal_url))
            .await
    }

    /// Replaces the mock payment gateway's fault settings (internal route).
    pub async fn set_payment_faults(&self, faults: &Value) -> anyhow::Result<()> {
        let url = format!("{}/internal/payment-faults", self.internal_url);
        self.put_internal(&url, faults).await.map(|_| ())
    }

    /// `PUT url` on the internal listener with a JSON body; the answer
    /// when it is a success, else an error naming the status and body.
    async fn put_internal(
        &self,
        url: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<reqwest::Response> {
        let resp = self
            .internal
            .put(url)
            .json(body)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PUT {url}: {e}"))?;
        if !resp.status().is_success() {
            let s = resp.status();
            let body = resp.text().await.unwrap_or_default();
            anyhow::bail!("PUT {url}: {s} {body}");
        }
        Ok(resp)
    }

    /// The mock payment gateway's current fault settings (internal route).
    pub async fn get_payment_faults(&self) -> anyhow::Result<Value> {
        self.get_json(format!("{}/internal/payment-faults", self.internal_url))
            .await
    }

    pub async fn audit_orders(&self) -> anyhow::Result<AuditView> {
        self.get_json(format!("{}/internal/audit/orders", self.internal_url))
            .await
    }

    /// Closes every settlement batch left to close, then reads them all
    /// (internal routes). `Ok(None)`: the target has no settlement routes
    /// (a build from before them); invariant 11 is then not judged.
    pub async fn settle_and_read(
        &self,
    ) -> anyhow::Result<Option<Vec<ticketing_domain::SettlementBatch>>> {
        let url = format!("{}/internal/settlements/close", self.internal_url);
        let resp = self
            .internal
            .post(&url)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("POST {url}: {e}"))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            let s = resp.status();
            let body = resp.text().await.unwrap_or_default();
            anyhow::bail!("POST {url}: {s} {body}");
        }
        let view: ticketing_contract::SettleView = resp
            .json()
            .await
            .map_err(|e| anyhow::anyhow!("POST {url}: unexpected body: {e}"))?;
        if !view.settled {
            eprintln!("settlement: entries still arriving after one close; judged as read");
        }
        let all = format!("{}/internal/settlements", self.internal_url);
        self.get_json(all).await.map(Some)
    }

    pub async fn ledger(&self) -> anyhow::Result<Vec<LedgerEntry>> {
        self.get_json(format!("{}/internal/payments", self.internal_url))
            .await
    }

    /// An event's static seat layout (the order of the compact statuses).
    pub async fn layout(
        &self,
        event_id: &str,
    ) -> anyhow::Result<ticketing_contract::SeatLayoutView> {
        self.get_json(format!(
            "{}/api/events/{event_id}/seats/layout",
            self.public_url
        ))
        .await
    }

    pub async fn seat_map(&self, event_id: &str) -> anyhow::Result<SeatMapView> {
        self.get_json(format!("{}/api/events/{event_id}/seats", self.public_url))
            .await
    }
}
