//! What the load runs against: the embedded system in this process, the
//! local real stack (`ci/stack`, brought up and torn down by the run), or any
//! host given by URL.
//!
//! Every target needs two addresses: the public gateway (the load) and the
//! internal listener (the run's events, payment faults, and the audit's
//! reads). The internal listener is never public; against a deployment,
//! reach it through an SSH tunnel or from inside its network.

use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use ticketing_app::embedded::Embedded;
use ticketing_app::settings::Settings;
use ticketing_app::{Seeding, WallClock};
use ticketing_services::customer::CustomerKey;

/// A started target; [`Target::stop`] tears down what the run started.
#[derive(Debug)]
pub enum Target {
    Embedded {
        app: Box<Embedded>,
        service_token: Option<String>,
        jwt_secret: Option<String>,
        limits: ticketing_invariants::LimitsFact,
    },
    Stack {
        script: PathBuf,
        dir: PathBuf,
        public_url: String,
        internal_url: String,
        service_token: Option<String>,
        jwt_secret: Option<String>,
        keep: bool,
    },
    Host {
        public_url: String,
        internal_url: String,
        service_token: Option<String>,
        jwt_secret: Option<String>,
    },
}

impl Target {
    /// The embedded system on loopback port 0, seeded with `seed`, without
    /// demo data (the run creates its own events). Payment latency follows
    /// the run's options (applied through the internal route like any target).
    pub async fn embedded(seed: u64) -> anyhow::Result<Target> {
        Target::embedded_with(seed, |_| {}).await
    }

    /// [`Target::embedded`] with its settings changed by `change` first
    /// (tests break a rule of the system this way and watch the gate fail).
    pub async fn embedded_with(
        seed: u64,
        change: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<Target> {
        let mut settings = Settings::load(None)?;
        change(&mut settings);
        settings.gateway.host = "127.0.0.1".into();
        settings.gateway.port = 0;
        settings.demo.enabled = false;
        let clock = Arc::new(WallClock::new(crate::client::wall_ms()));
        let app = Embedded::build(&settings, clock, Seeding::Fixed(seed)).await?;
        Ok(Target::Embedded {
            app: Box::new(app),
            limits: limits_fact(&settings.limits),
            service_token: settings.internal.token.clone(),
            jwt_secret: Some(
                settings
                    .auth
                    .jwt_secret
                    .clone()
                    .unwrap_or_else(|| ticketing_app::embedded::DEMO_JWT_SECRET.to_owned()),
            ),
        })
    }

    /// `ci/stack up` in `dir` (a fresh stack), then its addresses from `stack.env`.
    pub async fn stack(script: &Path, dir: &Path, keep: bool) -> anyhow::Result<Target> {
        eprintln!(
            "load: bringing up the local real stack ({} up, state in {})",
            script.display(),
            dir.display()
        );
        let status = tokio::process::Command::new(script)
            .arg("up")
            .env("TICKETING_STACK_DIR", dir)
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .with_context(|| format!("cannot run {}", script.display()))?;
        if !status.success() {
            anyhow::bail!(
                "{} up failed ({status}); its logs are in {}/logs",
                script.display(),
                dir.display()
            );
        }
        let env = read_env(&dir.join("stack.env"))?;
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| anyhow::anyhow!("stack.env has no {k}"))
        };
        Ok(Target::Stack {
            script: script.to_owned(),
            dir: dir.to_owned(),
            public_url: get("TICKETING_STACK_URL")?,
            internal_url: get("TICKETING_STACK_INTERNAL_URL")?,
            service_token: Some(get("TICKETING_STACK_SERVICE_TOKEN")?),
            jwt_secret: Some(get("TICKETING_STACK_JWT_SECRET")?),
            keep,
        })
    }

    /// A running system at these URLs; `service_token` is its services'
    /// `internal.token` (their internal routes refuse calls without it),
    /// `jwt_secret` their `auth.jwt_secret` (the load's customers' tokens
    /// are signed with it; without it the load is anonymous).
    pub fn host(
        public_url: &str,
        internal_url: &str,
        service_token: Option<&str>,
        jwt_secret: Option<&str>,
    ) -> Target {
        Target::Host {
            public_url: public_url.trim_end_matches('/').into(),
            internal_url: internal_url.trim_end_matches('/').into(),
            service_token: service_token.map(str::to_owned),
            jwt_secret: jwt_secret.map(str::to_owned),
        }
    }

    /// The key the load signs its customers' tokens with (`None`: anonymous).
    pub fn customer_key(&self) -> anyhow::Result<Option<CustomerKey>> {
        let secret = match self {
            Target::Embedded { jwt_secret, .. }
            | Target::Stack { jwt_secret, .. }
            | Target::Host { jwt_secret, .. } => jwt_secret.as_deref(),
        };
        secret
            .map(|s| CustomerKey::hs256(s).context("the target's auth.jwt_secret"))
            .transpose()
    }

    /// The target's per-customer limits: `given`, else the embedded
    /// target's own, else the services' defaults.
    pub fn customer_limits(
        &self,
        given: Option<ticketing_invariants::LimitsFact>,
    ) -> ticketing_invariants::LimitsFact {
        match (given, self) {
            (Some(l), _) => l,
            (None, Target::Embedded { limits, .. }) => *limits,
            (None, _) => limits_fact(&ticketing_services::config::LimitsSettings::default()),
        }
    }

    /// The credential for the target's internal routes.
    pub fn service_token(&self) -> Option<&str> {
        match self {
            Target::Embedded { service_token, .. }
            | Target::Stack { service_token, .. }
            | Target::Host { service_token, .. } => service_token.as_deref(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Target::Embedded { .. } => "embedded",
            Target::Stack { .. } => "stack",
            Target::Host { .. } => "host",
        }
    }

    pub fn public_url(&self) -> String {
        match self {
            Target::Embedded { app, .. } => app.url(),
            Target::Stack { public_url, .. } | Target::Host { public_url, .. } => {
                public_url.clone()
            }
        }
    }

    pub fn internal_url(&self) -> String {
        match self {
            Target::Embedded { app, .. } => app.internal_url(),
            Target::Stack { internal_url, .. } | Target::Host { internal_url, .. } => {
                internal_url.clone()
            }
        }
    }

    /// The stack's control script and folder (live faults need them).
    pub fn stack_control(&self) -> Option<(&Path, &Path)> {
        match self {
            Target::Stack { script, dir, .. } => Some((script, dir)),
            _ => None,
        }
    }

    /// Stops what the run started (the embedded system; the stack unless
    /// kept). The stack's logs are copied into `keep_logs_in` first (`down`
    /// deletes its folder), so a failed run can be read afterwards.
    pub async fn stop(self, keep_logs_in: Option<&Path>) -> anyhow::Result<()> {
        match self {
            Target::Embedded { app, .. } => {
                app.shutdown().await;
                Ok(())
            }
            Target::Stack {
                script, dir, keep, ..
            } => {
                if let Some(out) = keep_logs_in {
                    copy_logs(&dir.join("logs"), &out.join("stack-logs"));
                }
                if keep {
                    eprintln!(
                        "load: stack kept running (TICKETING_STACK_DIR={} {} down stops it)",
                        dir.display(),
                        script.display()
                    );
                    return Ok(());
                }
                let status = tokio::process::Command::new(&script)
                    .arg("down")
                    .env("TICKETING_STACK_DIR", &dir)
                    .status()
                    .await?;
                if !status.success() {
                    anyhow::bail!("{} down failed ({status})", script.display());
                }
                Ok(())
            }
            Target::Host { .. } => Ok(()),
        }
    }
}

/// Copies every file of `from` into `to` (best effort: a log that cannot
/// be copied is reported, not fatal).
fn copy_logs(from: &Path, to: &Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    if let Err(e) = std::fs::create_dir_all(to) {
        eprintln!(
            "load: cannot keep the stack's logs in {}: {e}",
            to.display()
        );
        return;
    }
    for entry in entries.flatten() {
        if let Err(e) = std::fs::copy(entry.path(), to.join(entry.file_name())) {
            eprintln!("load: cannot copy {}: {e}", entry.path().display());
        }
    }
}

/// `KEY=VALUE` lines.
fn read_env(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

fn limits_fact(l: &ticketing_services::config::LimitsSettings) -> ticketing_invariants::LimitsFact {
    ticketing_invariants::LimitsFact {
        seats_per_event: l.seats_per_event,
        active_holds: l.active_holds,
    }
}
