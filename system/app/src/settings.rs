//! Layered configuration: built-in defaults, then an optional TOML file,
//! then `TICKETING_*` environment variables (`__` separates nesting levels,
//! e.g. `TICKETING_GATEWAY__PORT=9000`, `TICKETING_HOLD__CHECKOUT_SECONDS=60`).
//!
//! One set of keys for every way of running the system; docs/API.md lists
//! them. The tree nests the services' sections (`ticketing_services::config`)
//! and the adapters' own config types (`database`: `PgConfig`, `redis`:
//! `RedisSeatStoreConfig`, `kafka`: `KafkaConfig`); each assembly hands a
//! service only its sections.
//!
//! Layer: composition root; imports the services' and adapters' config types.

use serde::{Deserialize, Serialize};
use std::path::Path;
use ticketing_domain::rules::HoldPolicy;
use ticketing_kafka::KafkaConfig;
use ticketing_postgres::PgConfig;
use ticketing_redis::RedisSeatStoreConfig;
use ticketing_services::config::{
    AuthSettings, CatalogSettings, ClientSettings, DemoSettings, HttpSettings, InternalSettings,
    LimitsSettings, LogSettings, PaymentFaults, QueueSettings, RefundSettings, ReservationSettings,
    SagaSettings, SettlementSettings, TraceSettings, UsersSettings,
};

/// Everything the services read at start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub gateway: ListenSettings,
    pub hold: HoldPolicy,
    pub saga: SagaSettings,
    /// Cancellation of confirmed orders: window and refund deadline.
    pub refund: RefundSettings,
    /// The payment service's settlement batches.
    pub settlement: SettlementSettings,
    pub reservation: ReservationSettings,
    pub catalog: CatalogSettings,
    /// The waiting room (queue service; reservation checks its tokens).
    pub queue: QueueSettings,
    pub payment: PaymentFaults,
    pub http: HttpSettings,
    /// Fixes the random source (ids, payment fault rolls). Unset in
    /// production: the binary seeds ChaCha20 from OS entropy.
    pub rng_seed: Option<u64>,
    pub demo: DemoSettings,
    /// Where one service listens when run on its own (`ticketing serve --service`).
    pub service: ListenSettings,
    /// The service's own PostgreSQL database (order, payment, catalog).
    pub database: PgConfig,
    /// The seat store (reservation, catalog).
    pub redis: RedisSeatStoreConfig,
    /// The event bus (order, reservation).
    pub kafka: KafkaConfig,
    /// Where the order service reaches the internal APIs.
    pub clients: ClientSettings,
    /// Customer tokens: key, lifetime, anonymous access (reservation, order, users).
    pub auth: AuthSettings,
    /// Per-customer limits on one event (reservation, in the seat store's step).
    pub limits: LimitsSettings,
    /// Customer accounts: password hashing, login and sign-up limits (users).
    pub users: UsersSettings,
    /// The service credential on internal routes (required by `serve --service`).
    pub internal: InternalSettings,
    /// How the binary writes its logs (read once, at start).
    pub log: LogSettings,
    /// Where the binary exports its spans (read once, at start).
    pub trace: TraceSettings,
    /// The operations console's harness runs (embedded system).
    pub console: ConsoleSettings,
}

/// Where the console's runs find `ticketing-load`, `ticketing-sim` and
/// `ticketing-report` (unset: beside the running binary) and write their
/// folders (unset: `ticketing-console` in the system's temporary folder).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsoleSettings {
    pub bin_dir: Option<std::path::PathBuf>,
    pub runs_dir: Option<std::path::PathBuf>,
    /// `serve --service console`: the services it probes and reads the
    /// metrics of, `name=url,name=url` (e.g. `catalog=http://127.0.0.1:9001`).
    pub services: Option<String>,
    /// `serve --service console`: the gateway's public listener (events,
    /// and the target of its load runs).
    pub public_url: Option<String>,
    /// `serve --service console`: the gateway's internal listener.
    pub internal_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListenSettings {
    pub host: String,
    pub port: u16,
}

impl Default for ListenSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
        }
    }
}

impl Settings {
    /// Defaults, then `file` (if given; it must exist), then `TICKETING_*` env.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut builder =
            config::Config::builder().add_source(config::Config::try_from(&Settings::default())?);
        if let Some(path) = file {
            anyhow::ensure!(path.exists(), "config file {} not found", path.display());
            builder = builder.add_source(config::File::from(path));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("TICKETING")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_without_file() {
        let s = Settings::load(None).unwrap();
        assert_eq!(s.hold, HoldPolicy::default());
        assert_eq!(s.gateway.port, 8080);
    }

    #[test]
    fn file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("ticketing-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.toml");
        std::fs::write(
            &path,
            "[hold]\ncheckout_seconds = 7\n[gateway]\nport = 9999\n",
        )
        .unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        assert_eq!(s.hold.checkout_seconds, 7);
        assert_eq!(
            s.hold.hold_seconds_max,
            HoldPolicy::default().hold_seconds_max
        );
        assert_eq!(s.gateway.port, 9999);
        assert!(Settings::load(Some(&dir.join("missing.toml"))).is_err());
    }
}
