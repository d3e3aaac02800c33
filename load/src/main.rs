//! `ticketing-load`: the load harness's command line (a thin clap layer over
//! the `ticketing_load` library).
//!
//! Exit status: 0 when the SLO gate passes, 1 when it fails (after writing
//! the run folder), 2 when the run could not be carried out.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use ticketing_load::run::{OpenOptions, PaymentOptions, RunOptions};
use ticketing_load::scenarios::ScenarioName;
use ticketing_load::slo::{Basis, Overrides, Slo};
use ticketing_load::summary::Summary;
use ticketing_load::target::Target;

#[derive(Debug, Parser)]
#[command(
    name = "ticketing-load",
    version,
    about = "Load harness: goose scenarios, an SLO gate and a post-run audit",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Combine the summary.json files of load processes that ran together
    /// (one per machine) into one verdict.
    Merge {
        /// summary.json files (or run folders holding one).
        #[arg(required = true)]
        summaries: Vec<PathBuf>,
        /// Where the merged summary.json and verdict.txt go.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        slo: SloArgs,
    },
}

#[derive(Debug, Args)]
struct SloArgs {
    /// The SLO file.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/slo.toml"))]
    slo: PathBuf,
    /// Replace the p95 limit (ms) for this run.
    #[arg(long)]
    slo_p95_ms: Option<f64>,
    /// Replace the error-rate limit (percent) for this run.
    #[arg(long)]
    slo_error_pct: Option<f64>,
    /// Replace the SSE propagation p95 limit (ms) for this run.
    #[arg(long)]
    slo_sse_p95_ms: Option<f64>,
    /// Judge latency on raw or coordinated-omission corrected percentiles.
    #[arg(long, value_enum)]
    slo_basis: Option<BasisArg>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BasisArg {
    Raw,
    Corrected,
}

impl SloArgs {
    fn load(&self) -> anyhow::Result<Slo> {
        Ok(Slo::load(&self.slo)?.with(&Overrides {
            p95_ms: self.slo_p95_ms,
            error_pct: self.slo_error_pct,
            sse_p95_ms: self.slo_sse_p95_ms,
            basis: self.slo_basis.map(|b| match b {
                BasisArg::Raw => Basis::Raw,
                BasisArg::Corrected => Basis::Corrected,
            }),
        }))
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Run against the embedded system, started in this process (the default).
    #[arg(long, conflicts_with_all = ["stack", "host"])]
    embedded: bool,
    /// Bring up the local real stack (ci/stack up), run, and tear it down.
    #[arg(long, conflicts_with = "host")]
    stack: bool,
    /// Leave the stack running after the run.
    #[arg(long, requires = "stack")]
    keep_stack: bool,
    /// The stack's state folder.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/stack-load"))]
    stack_dir: PathBuf,
    /// The stack's control script.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/stack"))]
    stack_script: PathBuf,
    /// Any other target: the public gateway URL.
    #[arg(long, requires = "internal_url")]
    host: Option<String>,
    /// The target's internal listener (run events, payment faults, audit).
    /// Never public: reach it through an SSH tunnel for a deployment.
    #[arg(long, requires = "host")]
    internal_url: Option<String>,
    /// The services' `internal.token` (their internal routes refuse calls
    /// without it); from the environment rather than the command line.
    #[arg(long, env = "TICKETING_SERVICE_TOKEN", hide_env_values = true)]
    service_token: Option<String>,
    /// The services' `auth.jwt_secret`: the load's customers get tokens
    /// signed with it (else the load is anonymous, which only a target
    /// with `auth.anonymous = true` accepts). The embedded target and
    /// `--stack` know their own.
    #[arg(long, env = "TICKETING_AUTH__JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,

    /// Which scenario: rush, purchase, browse, sse, mix (browse 5, purchase 3,
    /// rush 1, sse 1), holds (a hold/release loop for benchmarks), or onsale
    /// (a flash sale of --seats to --arrivals people, on the open model).
    #[arg(long, value_enum, default_value_t = ScenarioName::Mix)]
    scenario: ScenarioName,
    /// Virtual users [default: 2000 for rush, 200 otherwise].
    #[arg(long)]
    users: Option<u64>,
    /// Seats of the rush, onsale or holds event [default: 10000 for onsale, 1000 otherwise].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=200_000))]
    seats: Option<u64>,
    /// Onsale: people who arrive (Poisson) over --arrival-window.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..=5_000_000))]
    arrivals: u64,
    /// Onsale: the time over which --arrivals arrive.
    #[arg(long, default_value = "10s", value_parser = parse_window)]
    arrival_window: Duration,
    /// How long the load runs after the ramp (rush: the longest it may take).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    run_time: Duration,
    /// Time to start all users [default: 1s for rush, 5s otherwise].
    #[arg(long, value_parser = humantime::parse_duration)]
    ramp: Option<Duration>,
    /// The run folder [default: load/out/<run id>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the users' choices [default: from the clock; printed].
    #[arg(long)]
    seed: Option<u64>,
    /// Prefix of the run's event ids; processes sharing it share the events.
    #[arg(long)]
    run_id: Option<String>,
    /// A fault plan from faults/plans/ applied live (needs --stack).
    #[arg(long, requires = "stack")]
    faults: Option<String>,

    /// Hold lifetime in the purchase scenario (s).
    #[arg(long, default_value_t = 60)]
    hold_seconds: u64,
    /// Hold lifetime in the rush (s): long enough to outlive the audit.
    #[arg(long, default_value_t = 600)]
    rush_hold_seconds: u64,
    /// Seats across the purchase scenario's events (200-seat halls).
    #[arg(long, default_value_t = 4000)]
    purchase_seats: u64,
    /// Share of purchases that walk away from their hold.
    #[arg(long, default_value_t = 0.1)]
    abandon_share: f64,
    /// Share of orders sent twice with the same Idempotency-Key.
    #[arg(long, default_value_t = 0.1)]
    retry_share: f64,
    /// Share of confirmed orders cancelled afterwards, in the purchase and
    /// onsale scenarios (then polled to REFUNDED; a tenth of them send the
    /// cancel twice).
    #[arg(long, default_value_t = 0.0)]
    cancel_share: f64,
    /// Seat changes per second made by the SSE writer.
    #[arg(long, default_value_t = 10.0)]
    sse_writes_per_s: f64,
    /// A watcher's connection lasts a random time in MIN-MAX (ms), then it
    /// is cut and resumes with Last-Event-ID.
    #[arg(long, default_value = "3000-8000", value_parser = parse_range)]
    sse_session_ms: (u64, u64),
    /// Longest think time between browse pages (ms).
    #[arg(long, default_value_t = 200)]
    think_ms_max: u64,

    /// Payment gateway latency, e.g. 5-40 (ms) [default: the target's].
    #[arg(long, value_parser = parse_range)]
    payment_latency_ms: Option<(u64, u64)>,
    #[arg(long)]
    payment_decline_rate: Option<f64>,
    #[arg(long)]
    payment_error_rate: Option<f64>,
    #[arg(long)]
    payment_timeout_rate: Option<f64>,

    /// Sample the target's memory, open fds, threads, tasks and connections
    /// this often (from its internal /metrics) and judge them as a soak
    /// (the SLO file's [soak]), e.g. 10s.
    #[arg(long, value_parser = humantime::parse_duration)]
    sample_every: Option<Duration>,

    /// The open model at a constant rate: this many iterations start per
    /// second for --run-time, whether or not the target keeps up.
    #[arg(long, value_parser = ticketing_load::open::parse_rate)]
    arrival_rate: Option<f64>,
    /// The open model with linear ramps, k6-style: DURATION:RATE,... e.g.
    /// "30s:100,1m:200,30s:0" (from --arrival-rate, or 0, to each target).
    #[arg(long, value_parser = ticketing_load::open::parse_stages_arg)]
    arrival_stages: Option<ticketing_load::open::Stages>,
    /// Open model: the pool of users that run iterations (all started first).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_users: Option<u64>,
    /// Open model: an iteration not started within this many ms of its
    /// scheduled time (every user busy) is dropped.
    #[arg(long, default_value_t = ticketing_load::open::LATE_MS_DEFAULT)]
    late_ms: u64,

    /// Onsale: the event has a waiting room. Arrivals join the queue, poll
    /// their place, and shop once admitted (with the admission token).
    #[arg(long)]
    waiting_room: bool,
    /// Waiting room: admissions per second [default: 500].
    #[arg(long, requires = "waiting_room", value_parser = clap::value_parser!(u32).range(1..))]
    admit_per_s: Option<u32>,
    /// Waiting room: shoppers active at once [default: 1500].
    #[arg(long, requires = "waiting_room", value_parser = clap::value_parser!(u32).range(1..))]
    active_max: Option<u32>,
    /// Waiting room: the arrivals start this long before the on-sale time
    /// (those before it join the pre-queue, shuffled at the on-sale) [default: 1s].
    #[arg(long, requires = "waiting_room", value_parser = humantime::parse_duration)]
    prequeue: Option<Duration>,
    /// Waiting room: the longest a visitor goes between two polls (keep it
    /// well inside the room's queue.abandon_s) [default: 10s].
    #[arg(long, requires = "waiting_room", value_parser = humantime::parse_duration)]
    queue_poll_max: Option<Duration>,

    /// Onsale: the share of arrivals, in percent, that are scalper bots.
    /// They come first (the first arrivals of the schedule), share
    /// --scalper-accounts accounts, several bots per account at once, and
    /// grab, extend and buy holds as fast as they are answered.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=50))]
    scalper_share: Option<u32>,
    /// Onsale: the accounts the scalper bots share [default: 4].
    #[arg(long, requires = "scalper_share", value_parser = clap::value_parser!(u32).range(1..=1000))]
    scalper_accounts: Option<u32>,
    /// The target's per-customer limits, SEATS/HOLDS (its
    /// limits.seats_per_event and limits.active_holds), for the audit's
    /// invariant 9 [default: the embedded target's own, else 8/2].
    #[arg(long, value_parser = parse_limits)]
    customer_limits: Option<ticketing_invariants::LimitsFact>,

    /// No progress lines.
    #[arg(long)]
    quiet: bool,
    /// How often a progress line is printed (the console asks for 1s).
    #[arg(long, default_value = "5s", value_parser = parse_progress_every)]
    progress_every: Duration,
    #[command(flatten)]
    slo: SloArgs,
}

/// The scalper bots the arguments ask for (onsale only).
fn scalping(a: &RunArgs) -> anyhow::Result<Option<ticketing_load::scenarios::onsale::Scalping>> {
    let Some(share_pct) = a.scalper_share else {
        return Ok(None);
    };
    if a.scenario != ticketing_load::scenarios::ScenarioName::Onsale {
        anyhow::bail!("--scalper-share is for --scenario onsale");
    }
    Ok(Some(ticketing_load::scenarios::onsale::Scalping {
        share_pct,
        accounts: a.scalper_accounts.unwrap_or(4),
        bots: 0,
    }))
}

/// A progress interval: at least 100 ms.
fn parse_progress_every(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    if d < Duration::from_millis(100) {
        return Err(format!("{s:?}: at least 100ms"));
    }
    Ok(d)
}

/// `SEATS/HOLDS`, e.g. `8/2` (0 turns one off).
fn parse_limits(s: &str) -> Result<ticketing_invariants::LimitsFact, String> {
    let (seats, holds) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected SEATS/HOLDS, e.g. 8/2"))?;
    let num = |x: &str| {
        x.trim()
            .parse::<u32>()
            .map_err(|e| format!("{s:?}: {x:?} is not a count ({e})"))
    };
    Ok(ticketing_invariants::LimitsFact {
        seats_per_event: num(seats)?,
        active_holds: num(holds)?,
    })
}

/// The waiting room the arguments ask for (onsale only).
fn waiting_options(a: &RunArgs) -> anyhow::Result<Option<ticketing_load::run::WaitingOptions>> {
    if !a.waiting_room {
        return Ok(None);
    }
    if a.scenario != ticketing_load::scenarios::ScenarioName::Onsale {
        anyhow::bail!("--waiting-room is for --scenario onsale");
    }
    let d = ticketing_load::run::WaitingOptions::default();
    let poll_max = a.queue_poll_max.unwrap_or(d.poll_max);
    if poll_max < Duration::from_millis(ticketing_load::scenarios::waiting::POLL_MS_MIN) {
        anyhow::bail!(
            "--queue-poll-max must be at least {} ms",
            ticketing_load::scenarios::waiting::POLL_MS_MIN
        );
    }
    Ok(Some(ticketing_load::run::WaitingOptions {
        admit_per_s: a.admit_per_s.unwrap_or(d.admit_per_s),
        active_max: a.active_max.unwrap_or(d.active_max),
        prequeue: a.prequeue.unwrap_or(d.prequeue),
        poll_max,
    }))
}

/// The open model the arguments ask for (`None`: closed).
fn open_options(a: &RunArgs, seed: u64) -> anyhow::Result<Option<OpenOptions>> {
    use ticketing_load::open::ArrivalPlan;
    let onsale = a.scenario == ticketing_load::scenarios::ScenarioName::Onsale;
    let plan = match (&a.arrival_stages, a.arrival_rate) {
        (Some(stages), rate) => ArrivalPlan::Stages {
            start_per_s: rate.unwrap_or(0.0),
            stages: stages.0.clone(),
        },
        (None, Some(rate)) => ArrivalPlan::constant(rate, a.run_time),
        // The onsale runs on the open model by default: Poisson arrivals.
        (None, None) if onsale => ArrivalPlan::Poisson {
            count: a.arrivals,
            window_ms: a.arrival_window.as_millis() as u64,
            seed,
        },
        (None, None) => {
            if a.max_users.is_some() {
                anyhow::bail!(
                    "--max-users is for the open model: give --arrival-rate or --arrival-stages"
                );
            }
            return Ok(None);
        }
    };
    if a.users.is_some() {
        anyhow::bail!("--users is the closed model's; the open model's pool is --max-users");
    }
    Ok(Some(OpenOptions {
        plan,
        max_users: a.max_users.unwrap_or(if onsale { 2000 } else { 1000 }),
        late: Duration::from_millis(a.late_ms),
    }))
}

/// Raises the soft open-file limit: each user holds a connection (and the
/// embedded target, in this process, the other end); warns when short.
fn raise_fd_limit(users: u64) {
    let want = users * 2 + 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < want => eprintln!(
            "load: the open-file limit is {limit}, below the {want} this run may need \
             (two per user with the embedded target, plus 256): raise `ulimit -n`"
        ),
        Ok(_) => {}
        Err(e) => eprintln!("load: cannot read or raise the open-file limit: {e}"),
    }
}

/// A positive duration of at least the scheduler's tick (`--arrival-window`).
fn parse_window(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s}: {e}"))?;
    if d < ticketing_load::open::TICK {
        return Err(format!(
            "{s}: shorter than the scheduler's {:?} tick",
            ticketing_load::open::TICK
        ));
    }
    Ok(d)
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("{s}: expected MIN-MAX in ms"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("{s}: expected MIN-MAX in ms"))?;
    if a > b {
        return Err(format!("{s}: MIN is above MAX"));
    }
    Ok((a, b))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ticketing-load: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(main_async(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ticketing-load: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `Ok(passed)`.
async fn main_async(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Some(Command::Merge {
            summaries,
            out,
            slo,
        }) => merge(summaries, out, slo.load()?),
        None => run(cli.run).await,
    }
}

fn merge(paths: Vec<PathBuf>, out: Option<PathBuf>, slo: Slo) -> anyhow::Result<bool> {
    let parts = paths
        .iter()
        .map(|p| {
            let file = if p.is_dir() {
                p.join("summary.json")
            } else {
                p.clone()
            };
            Summary::read(&file)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged = ticketing_load::gate::merge(&parts, &slo)?;
    let verdict = merged
        .verdict
        .clone()
        .unwrap_or_else(|| ticketing_load::gate::judge(&merged, &slo));
    let text = format!(
        "merged {} summaries ({} load processes, {} users)\n{}\n{}",
        parts.len(),
        merged.environment.load_processes,
        merged.environment.users,
        ticketing_load::run::figures_table(&merged),
        ticketing_load::slo::table(&verdict)
    );
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir)?;
        merged.write(&dir.join("summary.json"))?;
        std::fs::write(dir.join("verdict.txt"), &text)?;
    }
    println!("{text}");
    Ok(verdict.passed)
}

async fn run(a: RunArgs) -> anyhow::Result<bool> {
    let slo = a.slo.load()?;
    let seed = a.seed.unwrap_or_else(ticketing_load::client::wall_ms);
    let run_id = a.run_id.clone().unwrap_or_else(|| format!("run-{seed:x}"));
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/out")).join(&run_id)
    });
    for (name, v) in [
        ("--abandon-share", a.abandon_share),
        ("--retry-share", a.retry_share),
        ("--cancel-share", a.cancel_share),
    ] {
        if !(0.0..=1.0).contains(&v) {
            anyhow::bail!("{name} must be within [0, 1], got {v}");
        }
    }
    let mut opts = RunOptions::defaults(a.scenario, out, seed);
    opts.run_id = run_id;
    opts.shared = a.run_id.is_some();
    if let Some(u) = a.users {
        opts.users = u.max(1);
    }
    if let Some(r) = a.ramp {
        opts.ramp = r;
    }
    if let Some(seats) = a.seats {
        opts.seats = seats;
    }
    opts.run_time = a.run_time;
    opts.rush_hold_seconds = a.rush_hold_seconds;
    opts.hold_seconds = a.hold_seconds;
    opts.purchase_seats = a.purchase_seats;
    opts.abandon_share = a.abandon_share;
    opts.retry_share = a.retry_share;
    opts.cancel_share = a.cancel_share;
    opts.sse_writes_per_s = a.sse_writes_per_s;
    opts.sse_session_ms = a.sse_session_ms;
    opts.think_ms_max = a.think_ms_max;
    opts.payment = PaymentOptions {
        latency_ms: a.payment_latency_ms,
        decline_rate: a.payment_decline_rate,
        error_rate: a.payment_error_rate,
        timeout_rate: a.payment_timeout_rate,
    };
    opts.slo = slo;
    opts.fault_plan = a.faults.clone();
    opts.progress = (!a.quiet).then_some(a.progress_every);
    opts.sample_every = a.sample_every.filter(|d| !d.is_zero());
    opts.open = open_options(&a, seed)?;
    opts.waiting = waiting_options(&a)?;
    opts.scalping = scalping(&a)?;
    opts.customer_limits = a.customer_limits;
    if let Some(o) = &opts.open {
        raise_fd_limit(o.max_users);
    }
    if let Some(o) = &opts.open {
        // Refuse a schedule that cannot run before anything starts.
        ticketing_load::open::Schedule::build(&o.plan).map_err(|e| anyhow::anyhow!("{e}"))?;
        opts.ramp = a.ramp.unwrap_or(Duration::from_secs(1));
    }
    let embedded = !a.stack && a.host.is_none();
    if opts.sample_every.is_some() && embedded {
        eprintln!(
            "load: --sample-every with the in-process embedded system samples this process \
             (the system and the load together); for a soak, run `ticketing serve --embedded` \
             and load it with --host (ci/nightly does)"
        );
    }
    let target = if a.stack {
        Target::stack(&a.stack_script, &a.stack_dir, a.keep_stack).await?
    } else if let (Some(host), Some(internal)) = (&a.host, &a.internal_url) {
        Target::host(
            host,
            internal,
            a.service_token.as_deref(),
            a.jwt_secret.as_deref(),
        )
    } else {
        Target::embedded(seed).await?
    };
    let result = ticketing_load::run::run(&target, &opts).await;
    // Tear down what we started, whatever the run's outcome.
    let stopped = target.stop(Some(&opts.out)).await;
    let summary = result?;
    stopped?;
    Ok(summary.verdict.as_ref().is_some_and(|v| v.passed))
}
