//! `ticketing`: a thin command line over `ticketing-app`, the composition root.
//!
//! - `ticketing serve --embedded [--port P] [--config FILE]` runs all six
//!   services in one process on in-memory adapters behind one loopback port.
//! - `ticketing serve --service NAME [--port P] [--config FILE]` runs one
//!   service on Redis, Kafka and PostgreSQL (see `ticketing_app::service`).
//! - `ticketing token --customer NAME [--embedded]` prints a customer's
//!   bearer token signed with `auth.jwt_secret` (or, with `--embedded`, the
//!   embedded demo's public key), for curl and load tools.

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use ticketing_app::embedded::Embedded;
use ticketing_app::service::{Service, ServiceKind};
use ticketing_app::settings::Settings;
use ticketing_app::{Seeding, WallClock};

#[derive(Debug, Parser)]
#[command(
    name = "ticketing",
    version,
    about = "Flash-sale ticketing reference system"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the system.
    Serve(ServeArgs),
    /// Print a customer's bearer token (`Authorization: Bearer <token>`).
    Token(TokenArgs),
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The customer id the token names (its `sub`), e.g. `ann`.
    #[arg(long)]
    customer: String,
    /// Lifetime in seconds [auth.token_ttl_s].
    #[arg(long)]
    ttl_s: Option<u64>,
    /// Sign with the embedded demo's public key when `auth.jwt_secret` is unset.
    #[arg(long)]
    embedded: bool,
    /// A TOML file layered over the defaults (then `TICKETING_*` env wins).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// All six services in this process, on in-memory adapters.
    #[arg(long, conflicts_with = "service", required_unless_present = "service")]
    embedded: bool,
    /// One service on the production adapters (Redis, Kafka, PostgreSQL).
    #[arg(long, value_enum)]
    service: Option<ServiceKind>,
    /// Listening port: the gateway's with `--embedded` (`gateway.port`),
    /// the service's with `--service` (`service.port`); 0 picks a free one.
    #[arg(long)]
    port: Option<u16>,
    /// Listening address (`gateway.host` / `service.host`).
    #[arg(long)]
    host: Option<String>,
    /// A TOML file layered over the defaults (then `TICKETING_*` env wins).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Fix the random seed (reproducible ids and payment faults).
    #[arg(long)]
    seed: Option<u64>,
}

/// Raises the soft open-file limit to the hard one (where the OS allows),
/// and warns when it is below what the listeners may need: one descriptor
/// per open connection (`http.max_connections`), plus the process's own
/// (stores, broker, logs) — 256 is the room kept for those.
fn raise_fd_limit(http: &ticketing_services::config::HttpSettings) {
    let want = http.max_connections as u64 + 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < want => tracing::warn!(
            open_files = limit,
            wanted = want,
            "the open-file limit is below http.max_connections + 256: connections beyond it fail to accept (raise `ulimit -n` or lower http.max_connections)"
        ),
        Ok(limit) => tracing::info!(open_files = limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-file limit"),
    }
}

/// Wall-clock time, read once at start to anchor the clock port.
#[allow(clippy::disallowed_methods)]
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Ctrl-C (SIGINT) or SIGTERM (what `ci/stack down` and container runtimes
/// send). The handlers are installed when this is called, before the system
/// is built: a signal sent as soon as the URL is printed stops it cleanly
/// rather than killing it with the default action.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let mut telemetry = None;
    let result = runtime.block_on(run(cli, &mut telemetry));
    // Outside block_on: the exporter's task finishes on a runtime worker.
    if let Some(t) = telemetry {
        t.shutdown();
    }
    result
}

async fn run(
    cli: Cli,
    telemetry: &mut Option<ticketing_services::telemetry::Telemetry>,
) -> anyhow::Result<()> {
    match cli.command {
        Command::Token(args) => token(args),
        Command::Serve(args) => serve(args, telemetry).await,
    }
}

/// `ticketing token`: one line on stdout, the token itself.
fn token(args: TokenArgs) -> anyhow::Result<()> {
    let settings = Settings::load(args.config.as_deref())?;
    let customer = args.customer.trim();
    let max = ticketing_services::customer::CUSTOMER_MAX_BYTES;
    anyhow::ensure!(
        !customer.is_empty() && customer.len() <= max,
        "--customer must be 1 to {max} bytes"
    );
    let configured = settings
        .auth
        .jwt_secret
        .as_deref()
        .is_some_and(|s| !s.is_empty());
    anyhow::ensure!(
        configured || args.embedded,
        "auth.jwt_secret is unset: set TICKETING_AUTH__JWT_SECRET to the system's secret (the \
         local stack's is TICKETING_STACK_JWT_SECRET in its stack.env), or pass --embedded for \
         the embedded demo's public key"
    );
    if !configured {
        eprintln!("ticketing: signed with the embedded demo's public key (not for production)");
    }
    let key = ticketing_app::embedded::customer_key(&settings)?;
    let ttl_ms = args.ttl_s.unwrap_or(settings.auth.token_ttl_s).max(1) * 1000;
    let minted = ticketing_services::customer::mint(&key, customer, wall_clock_ms(), ttl_ms);
    println!("{}", minted.token);
    Ok(())
}

async fn serve(
    args: ServeArgs,
    telemetry: &mut Option<ticketing_services::telemetry::Telemetry>,
) -> anyhow::Result<()> {
    let ServeArgs {
        embedded,
        service,
        port,
        host,
        config,
        seed,
    } = args;
    let mut settings = Settings::load(config.as_deref())?;
    let service_name = match service {
        Some(kind) => format!("ticketing-{}", kind.name()),
        None => "ticketing".to_owned(),
    };
    *telemetry = Some(ticketing_services::telemetry::init(
        "info",
        settings.log.format,
        &settings.trace,
        &service_name,
    )?);
    raise_fd_limit(&settings.http);
    let listen = if embedded {
        &mut settings.gateway
    } else {
        &mut settings.service
    };
    if let Some(p) = port {
        listen.port = p;
    }
    if let Some(h) = host {
        listen.host = h;
    }
    let seeding = match seed.or(settings.rng_seed) {
        Some(s) => Seeding::Fixed(s),
        None => {
            let mut key = [0u8; 32];
            // The one read of OS entropy: it keys ChaCha20 for every service.
            #[allow(clippy::disallowed_methods)]
            getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("OS entropy: {e}"))?;
            Seeding::Key(key)
        }
    };
    let stop = stop_signal()?;
    let clock = Arc::new(WallClock::new(wall_clock_ms()));
    if let Some(kind) = service {
        let app = Service::build(kind, &settings, clock, seeding).await?;
        tracing::info!(service = kind.name(), url = %app.url(), "service listening; Ctrl-C or SIGTERM stops it");
        println!("ticketing: {} listening on {}", kind.name(), app.url());
        app.run_until(stop).await;
        tracing::info!(service = kind.name(), "stopped cleanly");
        return Ok(());
    }
    let app = Embedded::build(&settings, clock, seeding).await?;
    tracing::info!(url = %app.url(), "embedded ticketing system listening; Ctrl-C stops it");
    // One write, and no panic if whoever started us stopped reading.
    let _ = std::io::Write::write_all(
        &mut std::io::stdout(),
        format!(
            "ticketing: listening on {}\nticketing: internal routes (audits, payment faults) on {}\n",
            app.url(),
            app.internal_url()
        )
        .as_bytes(),
    );
    app.run_until(stop).await;
    tracing::info!("stopped cleanly");
    Ok(())
}
