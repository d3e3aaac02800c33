//! One load run, start to finish: create the run's events, configure the
//! payment gateway, drive goose (plus the SSE writer and any live fault
//! plan), audit, judge, and write the run folder:
//!
//! - `goose-report.html`, `goose-report.json` — goose's own reports;
//! - `summary.json` — ours (see [`crate::summary`]);
//! - `verdict.txt` — the table the run printed last.

use crate::audit::{self, AuditReport, ClientTruth};
use crate::client::{Api, Created};
use crate::live::{self, LivePlan};
use crate::open::{ArrivalPlan, OpenRun, Schedule};
use crate::record::Percentiles;
use crate::resources;
use crate::scenarios::after_sale::AfterSale;
use crate::scenarios::browse::BrowseCtx;
use crate::scenarios::holds::HoldsCtx;
use crate::scenarios::onsale::OnsaleCtx;
use crate::scenarios::purchase::PurchaseCtx;
use crate::scenarios::rush::RushCtx;
use crate::scenarios::sse::SseCtx;
use crate::scenarios::waiting::WaitingCtx;
use crate::scenarios::{RunCtx, ScenarioName};
use crate::slo::{self, Slo};
use crate::summary::{
    Environment, GooseThreshold, RushFigures, SUMMARY_VERSION, SseFigures, Summary, WatcherFigures,
    sum_endpoints,
};
use crate::target::Target;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use ticketing_faults::FaultPlan;
use tokio::time::Instant;

/// Seats per event of the purchase pool (a 10 x 20 hall).
const PURCHASE_EVENT_ROWS: u32 = 10;
const PURCHASE_EVENT_COLS: u32 = 20;

/// The mock payment gateway's settings for a run; `None` keeps the target's.
#[derive(Debug, Clone, Default)]
pub struct PaymentOptions {
    pub latency_ms: Option<(u64, u64)>,
    pub decline_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub timeout_rate: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenario: ScenarioName,
    pub users: u64,
    /// Seats of the rush event.
    pub seats: u64,
    pub run_time: Duration,
    /// Time to start all users.
    pub ramp: Duration,
    pub out: PathBuf,
    pub seed: u64,
    /// Prefix of the run's event ids; load processes sharing it share events.
    pub run_id: String,
    pub rush_hold_seconds: u64,
    pub hold_seconds: u64,
    /// Seats across the purchase pool's events.
    pub purchase_seats: u64,
    pub abandon_share: f64,
    pub retry_share: f64,
    /// Share of confirmed purchases cancelled afterwards.
    pub cancel_share: f64,
    pub sse_writes_per_s: f64,
    /// A watcher is disconnected after a random time in this range (ms), then resumes.
    pub sse_session_ms: (u64, u64),
    pub think_ms_max: u64,
    pub payment: PaymentOptions,
    pub slo: Slo,
    pub fault_plan: Option<String>,
    /// Progress lines every this often (None: silent).
    pub progress: Option<Duration>,
    /// Other load processes share this run's events (`--run-id` given):
    /// checks that assume this process made every hold are left out.
    pub shared: bool,
    /// Sample the target's resources this often (a soak; None: not at all).
    pub sample_every: Option<Duration>,
    /// The open model (None: goose's closed model, `users` users).
    pub open: Option<OpenOptions>,
    /// The onsale behind a waiting room (None: no room).
    pub waiting: Option<WaitingOptions>,
    /// The onsale's scalper bots (None: none).
    pub scalping: Option<crate::scenarios::onsale::Scalping>,
    /// The target's per-customer limits (`None`: the embedded target's own,
    /// else the defaults), for invariant 9.
    pub customer_limits: Option<ticketing_invariants::LimitsFact>,
}

/// The onsale's waiting room: the room's caps for the run, how long before
/// the on-sale time the arrivals start (they join the pre-queue), and the
/// longest a waiting visitor goes between polls.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingOptions {
    pub admit_per_s: u32,
    pub active_max: u32,
    pub prequeue: Duration,
    pub poll_max: Duration,
}

impl Default for WaitingOptions {
    fn default() -> Self {
        WaitingOptions {
            admit_per_s: 500,
            active_max: 1_500,
            prequeue: Duration::from_secs(1),
            poll_max: Duration::from_secs(10),
        }
    }
}

/// With a waiting room the schedule starts at a planned time (the on-sale
/// time is set from it when the event is made): this long after the ramp,
/// for the rest of the setup and the users' launch.
pub const PLANNED_START_MARGIN: Duration = Duration::from_secs(5);
/// The longest a run waits for its waiting room to drain after the last
/// arrival (arrivals / admissions per second, at most this).
pub const QUEUE_DRAIN_MAX: Duration = Duration::from_secs(600);

/// An open-model run: iterations arrive by `plan`, `max_users` goose users
/// take them, one not started within `late` of its time is dropped.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub plan: ArrivalPlan,
    pub max_users: u64,
    pub late: Duration,
}

/// After an open schedule's last arrival, iterations still running get this
/// long to finish (the scenarios' loops end by the deadline it sets).
pub const OPEN_DRAIN: Duration = Duration::from_secs(30);

impl RunOptions {
    /// The command line's defaults for `scenario`, writing to `out`.
    pub fn defaults(scenario: ScenarioName, out: PathBuf, seed: u64) -> RunOptions {
        let rush = scenario == ScenarioName::Rush;
        RunOptions {
            scenario,
            users: if rush { 2000 } else { 200 },
            seats: 1000,
            run_time: Duration::from_secs(30),
            ramp: Duration::from_secs(if rush { 1 } else { 5 }),
            out,
            seed,
            run_id: format!("run-{seed:x}"),
            rush_hold_seconds: 600,
            hold_seconds: 60,
            purchase_seats: 4000,
            abandon_share: 0.1,
            retry_share: 0.1,
            cancel_share: 0.0,
            sse_writes_per_s: 10.0,
            sse_session_ms: (3_000, 8_000),
            think_ms_max: 200,
            payment: PaymentOptions::default(),
            slo: Slo::default(),
            fault_plan: None,
            progress: Some(Duration::from_secs(5)),
            shared: false,
            sample_every: None,
            open: None,
            waiting: None,
            scalping: None,
            customer_limits: None,
        }
        .for_onsale()
    }

    /// The onsale's defaults: 10,000 seats, 50,000 Poisson arrivals over
    /// 10 s, 2,000 users (other scenarios are left as they are).
    fn for_onsale(mut self) -> RunOptions {
        if self.scenario == ScenarioName::Onsale {
            self.seats = 10_000;
            self.open = Some(OpenOptions {
                plan: ArrivalPlan::Poisson {
                    count: 50_000,
                    window_ms: 10_000,
                    seed: self.seed,
                },
                max_users: 2000,
                late: Duration::from_millis(crate::open::LATE_MS_DEFAULT),
            });
            self.ramp = Duration::from_secs(1);
        }
        self
    }
}

/// Rows x cols with exactly `seats` seats, at most 100 columns where possible.
pub fn grid_for(seats: u64) -> (u32, u32) {
    let seats = seats.max(1);
    let cols = (1..=100u64.min(seats))
        .rev()
        .find(|c| seats.is_multiple_of(*c))
        .unwrap_or(1);
    ((seats / cols) as u32, cols as u32)
}

fn seat_ids(rows: u32, cols: u32) -> Vec<String> {
    let mut ids = Vec::with_capacity((rows * cols) as usize);
    for r in 1..=rows {
        for c in 1..=cols {
            ids.push(ticketing_domain::seat_id_for(r, c).0);
        }
    }
    ids
}

/// Creates (or joins) one of the run's events; returns its seat ids.
async fn create(
    api: &Api,
    truth: &mut ClientTruth,
    shared: bool,
    id: String,
    rows: u32,
    cols: u32,
) -> anyhow::Result<Vec<String>> {
    let created = api
        .create_event(&id, &format!("Load run {id}"), rows, cols, None)
        .await?;
    // Only a process alone on its events knows every hold made on them.
    let alone = created == Created::New && !shared;
    truth
        .events
        .push((id, u64::from(rows) * u64::from(cols), alone));
    Ok(seat_ids(rows, cols))
}

fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// The fault plan `--faults` names (only on the local real stack), and the
/// run time raised, if need be, to see the recovery after it heals.
fn fault_plan(target: &Target, opts: &RunOptions) -> anyhow::Result<(Option<FaultPlan>, Duration)> {
    let Some(name) = &opts.fault_plan else {
        return Ok((None, opts.run_time));
    };
    if target.stack_control().is_none() {
        anyhow::bail!(
            "--faults needs the local real stack (--stack): it stops and starts processes"
        );
    }
    let plan = FaultPlan::named(name, opts.seed)?;
    let needed = Duration::from_millis(plan.heal_at_ms + 10_000);
    let mut run_time = opts.run_time;
    if run_time < needed {
        eprintln!(
            "load: plan {} heals at {:.1} s; run time raised from {:?} to {:?} to see the recovery",
            plan.name,
            plan.heal_at_ms as f64 / 1000.0,
            run_time,
            needed
        );
        run_time = needed;
    }
    Ok((Some(plan), run_time))
}

/// The run's events, created (or joined) per scenario, and each
/// scenario's context over them.
struct Events {
    onsale: Option<OnsaleCtx>,
    waiting: Option<WaitingCtx>,
    /// The open schedule's planned time 0 (a waiting room's on-sale time
    /// was set from it).
    planned_start: Option<Instant>,
    rush: Option<RushCtx>,
    purchase: Option<PurchaseCtx>,
    sse: Option<SseCtx>,
    holds: Option<HoldsCtx>,
    browse: BrowseCtx,
    truth: ClientTruth,
}

impl Events {
    fn into_ctx(self, started: Instant, seed: u64, deadline: Instant) -> RunCtx {
        let mut ctx = RunCtx::new(
            started,
            seed,
            deadline,
            self.rush,
            self.purchase,
            self.browse,
            self.sse,
            self.holds,
            self.truth,
        );
        ctx.onsale = self.onsale;
        ctx.waiting = self.waiting;
        ctx
    }
}

/// The onsale's event behind a waiting room: made with the on-sale time
/// `prequeue` after the schedule's planned start, its caps set; returns
/// the room's context and the planned start.
async fn create_waiting(
    api: &Api,
    truth: &mut ClientTruth,
    opts: &RunOptions,
    w: &WaitingOptions,
    id: &str,
) -> anyhow::Result<(WaitingCtx, Instant)> {
    let to_start = opts.ramp + PLANNED_START_MARGIN;
    let planned_start = Instant::now() + to_start;
    let on_sale_at_ms = crate::client::wall_ms() + (to_start + w.prequeue).as_millis() as u64;
    let (rows, cols) = grid_for(opts.seats);
    let room = ticketing_contract::WaitingRoomBody {
        on_sale_at_ms: Some(on_sale_at_ms),
    };
    let created = api
        .create_event(id, &format!("Load run {id}"), rows, cols, Some(room))
        .await?;
    let alone = created == Created::New && !opts.shared;
    truth
        .events
        .push((id.to_owned(), u64::from(rows) * u64::from(cols), alone));
    let view = api.set_queue_caps(id, w.active_max, w.admit_per_s).await?;
    let ctx = WaitingCtx::new(
        id.to_owned(),
        (view.admit_per_s, view.active_max),
        (view.on_sale_at_ms, planned_start, w.prequeue),
        w.poll_max,
    );
    Ok((ctx, planned_start))
}

async fn create_events(api: &Api, opts: &RunOptions, run_time: Duration) -> anyhow::Result<Events> {
    let wants = |s: ScenarioName| opts.scenario == s || opts.scenario == ScenarioName::Mix;
    let mut truth = ClientTruth::default();
    let (run_id, shared) = (&opts.run_id, opts.shared);
    let mut rush = None;
    if wants(ScenarioName::Rush) {
        let id = format!("{run_id}-rush");
        let (rows, cols) = grid_for(opts.seats);
        let seats = create(api, &mut truth, shared, id.clone(), rows, cols).await?;
        truth.rush = Some((id.clone(), 0));
        rush = Some(RushCtx::new(id, seats, opts.rush_hold_seconds));
    }
    let mut purchase = None;
    if wants(ScenarioName::Purchase) {
        let per = u64::from(PURCHASE_EVENT_ROWS * PURCHASE_EVENT_COLS);
        let mut ids = Vec::new();
        for k in 1..=opts.purchase_seats.div_ceil(per).max(1) {
            let id = format!("{run_id}-buy-{k}");
            let (rows, cols) = (PURCHASE_EVENT_ROWS, PURCHASE_EVENT_COLS);
            create(api, &mut truth, shared, id.clone(), rows, cols).await?;
            ids.push(id);
        }
        let (hold, abandon, retry) = (opts.hold_seconds, opts.abandon_share, opts.retry_share);
        let mut ctx = PurchaseCtx::new(ids, hold, abandon, retry);
        ctx.after_sale = AfterSale::new(opts.cancel_share, ctx.poll_timeout);
        purchase = Some(ctx);
    }
    let mut sse = None;
    if wants(ScenarioName::Sse) {
        let id = format!("{run_id}-sse");
        // One hold and one release per seat: enough seats for the whole run.
        let total_s = (opts.ramp + run_time).as_secs_f64() + 5.0;
        let seats = ((opts.sse_writes_per_s * total_s / 2.0).ceil() as u64).max(10);
        let (rows, cols) = grid_for(seats.div_ceil(50) * 50);
        let ids = create(api, &mut truth, shared, id.clone(), rows, cols).await?;
        sse = Some(SseCtx::new(
            id,
            ids,
            opts.sse_writes_per_s,
            opts.sse_session_ms,
        ));
    }
    let (mut onsale, mut waiting, mut planned_start) = (None, None, None);
    if opts.scenario == ScenarioName::Onsale {
        let id = format!("{run_id}-onsale");
        if let Some(w) = &opts.waiting {
            let (ctx, start) = create_waiting(api, &mut truth, opts, w, &id).await?;
            waiting = Some(ctx);
            planned_start = Some(start);
        } else {
            let (rows, cols) = grid_for(opts.seats);
            create(api, &mut truth, shared, id.clone(), rows, cols).await?;
        }
        // The page's static layout: fetched once, as a browser keeps it.
        let layout = api.layout(&id).await?;
        let seats = layout
            .seats
            .into_iter()
            .map(|s| (s.seat_id.0, s.row, s.col))
            .collect();
        let mut o = OnsaleCtx::new(id, seats, opts.hold_seconds);
        o.after_sale = AfterSale::new(opts.cancel_share, o.poll_timeout);
        onsale = Some(o);
    }
    let mut holds = None;
    if opts.scenario == ScenarioName::Holds {
        let id = format!("{run_id}-holds");
        let (rows, cols) = grid_for(opts.seats);
        let seat_ids = create(api, &mut truth, shared, id.clone(), rows, cols).await?;
        holds = Some(HoldsCtx {
            event_id: id,
            seat_ids,
        });
    }
    if wants(ScenarioName::Browse) && truth.events.is_empty() {
        create(api, &mut truth, shared, format!("{run_id}-browse"), 20, 20).await?;
    }
    let browse = BrowseCtx {
        events: truth.events.iter().map(|(e, _, _)| e.clone()).collect(),
        think_ms_max: opts.think_ms_max,
    };
    Ok(Events {
        onsale,
        waiting,
        planned_start,
        rush,
        purchase,
        sse,
        holds,
        browse,
        truth,
    })
}

/// Sets the payment gateway's faults the options ask for; returns the
/// settings found (to restore) and the ones in force.
async fn set_payment(api: &Api, opts: &RunOptions) -> anyhow::Result<(Value, Value)> {
    let before: Value = api.get_payment_faults().await?;
    let mut payment = before.clone();
    if let Some((lo, hi)) = opts.payment.latency_ms {
        payment["latency_ms_min"] = lo.into();
        payment["latency_ms_max"] = hi.into();
    }
    for (key, v) in [
        ("decline_rate", opts.payment.decline_rate),
        ("error_rate", opts.payment.error_rate),
        ("timeout_rate", opts.payment.timeout_rate),
    ] {
        if let Some(v) = v {
            payment[key] = v.into();
        }
    }
    if payment != before {
        api.set_payment_faults(&payment).await?;
    }
    Ok((before, payment))
}

/// Goose's configuration for the run (a rush runs each user once).
fn goose_config(
    api: &Api,
    opts: &RunOptions,
    run_time: Duration,
    judged_by_goose: bool,
) -> GooseConfiguration {
    let mut config = GooseConfiguration::default();
    config.host = Some(api.public_url.clone());
    let users = opts.open.as_ref().map_or(opts.users, |o| o.max_users);
    config.users = Some(users as usize);
    config.increase_rate = Some(format!(
        "{:.3}",
        users as f64 / opts.ramp.as_secs_f64().max(0.001)
    ));
    if opts.open.is_some() {
        // Each user takes scheduled iterations until the schedule is used
        // up; the run ends when every user has. Latency already counts
        // from the scheduled start: no correction on top.
        config.iterations = Some(1);
        config.co_mitigation = Some(GooseCoordinatedOmissionMitigation::Disabled);
    } else if opts.scenario == ScenarioName::Rush {
        // Each user races once; the run ends when every user has finished.
        config.iterations = Some(1);
    } else {
        config.run_time = Some(format!("{}s", run_time.as_secs().max(1)));
    }
    if config.co_mitigation.is_none() {
        config.co_mitigation = Some(GooseCoordinatedOmissionMitigation::Average);
    }
    config.report_file = vec![
        opts.out.join("goose-report.html").display().to_string(),
        opts.out.join("goose-report.json").display().to_string(),
    ];
    if judged_by_goose {
        // Goose judges the whole run; with a fault plan the gate leaves the
        // fault window out of these rules, which goose cannot do.
        config.threshold = opts.slo.goose_thresholds();
        config.no_threshold_abort = true;
    }
    config.no_print_metrics = true;
    config.no_telnet = true;
    config
}

/// The fault plan's driver, on the local real stack.
fn spawn_faults(
    plan: Option<&FaultPlan>,
    target: &Target,
    api: &Api,
    payment: &Value,
    started: Instant,
) -> Option<tokio::task::JoinHandle<Vec<crate::summary::AppliedFault>>> {
    let (script, dir) = target.stack_control()?;
    let live = LivePlan {
        plan: plan?.clone(),
        script: script.to_owned(),
        dir: dir.to_owned(),
        api: api.clone(),
        payment_defaults: payment.clone(),
    };
    Some(tokio::spawn(live.run(started)))
}

/// Leaves a long-lived target's payment gateway as the run found it.
async fn restore_payment(api: &Api, before: &Value, during: &Value) {
    if during != before {
        let _ = api.set_payment_faults(before).await;
    }
}

/// Progress lines every `every` until aborted.
fn spawn_progress(ctx: &Arc<RunCtx>, every: Duration) -> tokio::task::JoinHandle<()> {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            eprintln!("load: {}", progress_line(&ctx));
        }
    })
}

/// Runs the load against a started target and returns the judged summary
/// (also written to `opts.out`).
pub async fn run(target: &Target, opts: &RunOptions) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| anyhow::anyhow!("cannot create run folder {}: {e}", opts.out.display()))?;
    let customers = target.customer_key()?;
    let api = Api::new(
        &target.public_url(),
        &target.internal_url(),
        target.service_token(),
        customers.as_ref(),
    )?;
    api.wait_healthy(Duration::from_secs(60)).await?;
    let (plan, run_time) = fault_plan(target, opts)?;
    let ev = create_events(&api, opts, run_time).await?;
    let (payment_before, payment) = set_payment(&api, opts).await?;

    let started = Instant::now();
    let (open, deadline) = open_run(opts, started, run_time, ev.planned_start)?;
    let mut ctx = ev.into_ctx(started, opts.seed, deadline);
    let limits = target.customer_limits(opts.customer_limits);
    if let Some(sc) = opts.scalping {
        let arrivals = open.as_ref().map_or(0, |r| r.scheduled());
        ctx.onsale = ctx
            .onsale
            .take()
            .map(|o| o.with_scalpers(sc.for_arrivals(arrivals), limits.seats_per_event));
    }
    ctx.shared.open = open;
    if customers.is_some() && !opts.shared {
        // Processes sharing a run's events would share customer names.
        let mut history = crate::customers::CustomerHistory::new(limits);
        history.recording = opts.scenario == ScenarioName::Onsale;
        ctx.shared.truth().customers = Some(history);
    }
    ctx.shared.customers = customers;
    let ctx = Arc::new(ctx);
    if let Some((from, to)) = plan.as_ref().map(live::window_ms) {
        ctx.rec.set_window(from, to);
    }
    let mut attack =
        GooseAttack::initialize_with_config(goose_config(&api, opts, run_time, plan.is_none()))?;
    for s in crate::scenarios::scenarios(&ctx, opts.scenario)? {
        attack = attack.register_scenario(s);
    }
    let writer = ctx
        .sse
        .as_ref()
        .map(|_| tokio::spawn(crate::scenarios::run_sse_writer(ctx.clone(), api.clone())));
    let faults = spawn_faults(plan.as_ref(), target, &api, &payment, started);
    let progress = opts.progress.map(|every| spawn_progress(&ctx, every));
    let sampler = match opts.sample_every {
        Some(every) => Some(resources::Sampler::start(&api, every, started).await),
        None => None,
    };
    let room_sampler = ctx
        .waiting
        .as_ref()
        .map(|_| tokio::spawn(sample_room(ctx.clone(), api.clone(), started)));
    eprintln!("load: {}", start_line(opts, run_time, &api.public_url));
    let goose_thresholds = execute(attack).await;
    for task in [progress, room_sampler].into_iter().flatten() {
        task.abort();
    }
    let load_ms = started.elapsed().as_millis() as u64;
    let mut sampled = match sampler {
        Some(s) => Some(s.stop().await),
        None => None,
    };
    let goose_thresholds = goose_thresholds?;
    if let Some(w) = writer {
        // Bounded by the deadline; the writer checks it before every write.
        let _ = w.await;
    }
    let applied = match faults {
        Some(f) => {
            eprintln!("load: waiting for the fault plan to heal");
            f.await.unwrap_or_default()
        }
        None => Vec::new(),
    };
    restore_payment(&api, &payment_before, &payment).await;
    let audit = audit_after(&api, &ctx, opts, load_ms).await;
    if let Some(r) = sampled.as_mut() {
        let timeout = Duration::from_millis(opts.slo.soak.settle_timeout_ms);
        eprintln!("load: waiting up to {timeout:?} for open fds and tasks to come back");
        resources::settle(&api, r, started, timeout).await;
    }
    let faults = match &plan {
        Some(p) => {
            let window = sum_endpoints(ctx.rec.window_snapshot().values())?;
            Some(live::report(p, applied, &ctx.rec.snapshot().1, window))
        }
        None => None,
    };
    let ran = Ran {
        target: target.kind(),
        url: &api.public_url,
        run_time,
        load_ms,
    };
    let mut summary = summarize(&ctx, opts, ran, audit, faults, goose_thresholds)?;
    summary.resources = sampled;
    write_verdict(summary, opts)
}

/// The open run (its schedule starts once every user is up) and the run's
/// deadline: the closed model's after ramp + run time, the open model's a
/// drain after the last arrival of a schedule started as late as it may.
///
/// A run behind a waiting room starts its schedule at `planned_start`,
/// lets iterations resume (the visitors' polls), and gives the room time
/// to drain after the last arrival.
fn open_run(
    opts: &RunOptions,
    started: Instant,
    run_time: Duration,
    planned_start: Option<Instant>,
) -> anyhow::Result<(Option<Arc<OpenRun>>, Instant)> {
    let Some(o) = &opts.open else {
        return Ok((None, started + opts.ramp + run_time));
    };
    let schedule = Schedule::build(&o.plan).map_err(|e| anyhow::anyhow!("{e}"))?;
    let arrivals = schedule.at_us.len() as f64;
    let mut run = OpenRun::new(schedule, o.late, o.max_users);
    let latest_start = started + opts.ramp + crate::open::LAUNCH_TIMEOUT;
    let mut deadline = latest_start + run.duration() + OPEN_DRAIN;
    if let (Some(at), Some(w)) = (planned_start, &opts.waiting) {
        // Not before the planned start (the on-sale time is set from it),
        // and not before every user is up: a slow setup shortens the
        // pre-queue instead of dropping the first arrivals.
        run = run.with_resumes().not_before(at);
        let drain = Duration::from_secs_f64(arrivals / f64::from(w.admit_per_s.max(1)));
        deadline = at.max(latest_start) + run.duration() + OPEN_DRAIN + drain.min(QUEUE_DRAIN_MAX);
    }
    Ok((Some(Arc::new(run)), deadline))
}

/// Reads the waiting room once a second into its context (until aborted).
async fn sample_room(ctx: Arc<RunCtx>, api: Api, started: Instant) {
    let Some(w) = &ctx.waiting else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Ok(v) = api.queue_room(&w.event_id).await {
            w.sample(crate::summary::RoomSample {
                at_ms: started.elapsed().as_millis() as u64,
                waiting: v.waiting,
                active: v.active,
                admitted_total: v.admitted_total,
            });
        }
    }
}

/// Runs goose to the end; its threshold verdicts (failed thresholds are a
/// verdict, not an error: the gate reports them).
async fn execute(attack: GooseAttack) -> anyhow::Result<Vec<GooseThreshold>> {
    match attack.execute().await {
        Ok(m) => Ok(threshold_rows(&m.thresholds)),
        Err(GooseError::ThresholdsFailed { metrics, .. }) => {
            Ok(threshold_rows(&metrics.thresholds))
        }
        Err(e) => anyhow::bail!("goose failed: {e}"),
    }
}

/// The line that says what is about to run.
fn start_line(opts: &RunOptions, run_time: Duration, url: &str) -> String {
    if let Some(o) = &opts.open {
        return format!(
            "open model: {}, up to {} users, late after {:?}; scenario {} (seed {}, run {}) against {url}",
            o.plan.describe(),
            o.max_users,
            o.late,
            opts.scenario,
            opts.seed,
            opts.run_id
        );
    }
    let length = if opts.scenario == ScenarioName::Rush {
        format!("until every user won or saw the sell-out (at most {run_time:?})")
    } else {
        format!("{run_time:?} after a {:?} ramp", opts.ramp)
    };
    format!(
        "{} users, scenario {}, {length} (seed {}, run {}) against {url}",
        opts.users, opts.scenario, opts.seed, opts.run_id
    )
}

/// Waits for quiescence and audits (`None` when the truth could not be read).
async fn audit_after(
    api: &Api,
    ctx: &RunCtx,
    opts: &RunOptions,
    load_ms: u64,
) -> Option<AuditReport> {
    eprintln!(
        "load: load stopped after {:.1} s; waiting for quiescence, then auditing",
        load_ms as f64 / 1000.0
    );
    let mut truth = ctx.truth().clone();
    if let (Some(r), Some(rush)) = (truth.rush.as_mut(), ctx.rush.as_ref()) {
        r.1 = rush.won.load(Ordering::Relaxed);
    }
    if let Some(h) = truth.customers.as_ref().filter(|h| h.dropped > 0) {
        eprintln!(
            "load: the customer history kept its first {} records and left {} out: \
             invariant 9 judges what was kept",
            crate::customers::RECORDS_MAX,
            h.dropped
        );
    }
    let quiesce = Duration::from_millis(opts.slo.audit.quiesce_timeout_ms);
    match audit::run(api, &truth, quiesce, Duration::from_secs(10)).await {
        Ok(a) => Some(a),
        Err(e) => {
            eprintln!("load: the audit could not read the truth: {e:#}");
            None
        }
    }
}

/// What ran, for the summary's environment.
struct Ran<'a> {
    target: &'a str,
    url: &'a str,
    run_time: Duration,
    load_ms: u64,
}

fn summarize(
    ctx: &RunCtx,
    opts: &RunOptions,
    ran: Ran<'_>,
    audit: Option<AuditReport>,
    faults: Option<crate::summary::FaultReport>,
    goose_thresholds: Vec<GooseThreshold>,
) -> anyhow::Result<Summary> {
    let (endpoints, timeline) = ctx.rec.snapshot();
    let waiting = waiting_figures(ctx, &endpoints, opts.slo.latency.basis)?;
    Ok(Summary {
        version: SUMMARY_VERSION,
        environment: Environment {
            run_id: opts.run_id.clone(),
            target: ran.target.into(),
            url: ran.url.to_owned(),
            scenario: opts.scenario.to_string(),
            users: opts.open.as_ref().map_or(opts.users, |o| o.max_users),
            seats: opts.seats,
            run_time_s: ran.run_time.as_secs(),
            seed: opts.seed,
            git_revision: git_revision(),
            hostname: hostname(),
            started_at: humantime::format_rfc3339_seconds(
                std::time::SystemTime::now() - Duration::from_millis(ran.load_ms),
            )
            .to_string(),
            duration_ms: ran.load_ms,
            load_processes: 1,
            fault_plan: opts.fault_plan.clone(),
        },
        overall: sum_endpoints(endpoints.values())?,
        endpoints,
        timeline,
        rush: ctx.rush.as_ref().map(rush_figures),
        purchase: ctx.purchase.as_ref().map(PurchaseCtx::figures),
        sse: ctx.sse.as_ref().map(sse_figures),
        onsale: ctx.onsale.as_ref().map(|o| o.figures(&ctx.shared)),
        waiting,
        open: ctx.open.as_ref().map(|o| o.figures()),
        audit,
        faults,
        resources: None,
        goose_thresholds,
        verdict: None,
        slo: opts.slo.clone(),
    })
}

/// The waiting room's figures: the shop phase is every request but the
/// room's own, merged, on the gate's basis.
fn waiting_figures(
    ctx: &RunCtx,
    endpoints: &std::collections::BTreeMap<String, crate::record::EndpointFigures>,
    basis: crate::record::Basis,
) -> anyhow::Result<Option<crate::summary::WaitingFigures>> {
    let Some(w) = &ctx.waiting else {
        return Ok(None);
    };
    let shop = sum_endpoints(
        endpoints
            .iter()
            .filter(|(name, _)| !crate::record::is_waiting_room(name))
            .map(|(_, e)| e),
    )?;
    let peak = ctx.open.as_ref().map_or(0, |o| {
        o.figures()
            .timeline
            .iter()
            .map(|s| s.target)
            .max()
            .unwrap_or(0)
    });
    let started = ctx.open.as_ref().and_then(|o| o.started_at());
    Ok(Some(w.figures(peak, started, *shop.on(basis))))
}

/// Judges the summary, writes `summary.json` and `verdict.txt`, prints the verdict.
fn write_verdict(mut summary: Summary, opts: &RunOptions) -> anyhow::Result<Summary> {
    let verdict = crate::gate::judge(&summary, &opts.slo);
    summary.verdict = Some(verdict.clone());
    summary.write(&opts.out.join("summary.json"))?;
    let text = format!("{}\n{}", figures_table(&summary), slo::table(&verdict));
    std::fs::write(opts.out.join("verdict.txt"), &text)?;
    println!("{text}");
    println!("load: run folder {}", opts.out.display());
    Ok(summary)
}

fn threshold_rows(results: &[goose::threshold::ThresholdResult]) -> Vec<GooseThreshold> {
    results
        .iter()
        .map(|t| GooseThreshold {
            rule: t.rule.clone(),
            observed: t.observed.clone(),
            passed: t.passed,
        })
        .collect()
}

fn rush_figures(r: &RushCtx) -> RushFigures {
    let users = r.users.load(Ordering::Relaxed);
    let won = r.won.load(Ordering::Relaxed);
    RushFigures {
        event_id: r.event_id.clone(),
        users,
        seats: r.seat_ids.len() as u64,
        won,
        sold_out: r.sold_out.load(Ordering::Relaxed),
        gave_up: r.gave_up.load(Ordering::Relaxed),
        attempts: r.attempts.load(Ordering::Relaxed),
        complete: r.finished() == users,
        sell_out_ms: if won == r.seat_ids.len() as u64 {
            r.sell_out_ms()
        } else {
            None
        },
        time_to_win: Percentiles::of(&r.time_to_win.lock().unwrap_or_else(|e| e.into_inner())),
    }
}

fn sse_figures(s: &SseCtx) -> SseFigures {
    let all = s.all.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut per_watcher: Vec<WatcherFigures> = s
        .per_watcher
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(id, h)| {
            let p = Percentiles::of(h);
            WatcherFigures {
                watcher: *id,
                deliveries: p.count,
                p50_ms: p.p50_ms,
                p95_ms: p.p95_ms,
                p99_ms: p.p99_ms,
            }
        })
        .collect();
    per_watcher.sort_by(|a, b| b.p95_ms.total_cmp(&a.p95_ms));
    per_watcher.truncate(20);
    SseFigures {
        event_id: s.event_id.clone(),
        watchers: s.watchers.load(Ordering::Relaxed),
        writes: s.writes.load(Ordering::Relaxed),
        propagation: Percentiles::of(&all),
        propagation_in_window: Percentiles::of(&s.window.lock().unwrap_or_else(|e| e.into_inner())),
        histogram: crate::record::encode(&all),
        per_watcher,
        lost_changes: s.lost.load(Ordering::Relaxed),
        resumes: s.resumes.load(Ordering::Relaxed),
        resyncs: s.resyncs.load(Ordering::Relaxed),
    }
}

fn progress_line(ctx: &RunCtx) -> String {
    let (requests, errors) = ctx.rec.totals();
    let secs = ctx.rec.elapsed().as_secs_f64();
    let mut line = format!(
        "{secs:>6.1} s  {requests} requests ({:.0}/s)  {errors} errors",
        requests as f64 / secs.max(0.001)
    );
    if let Some(o) = &ctx.open {
        let (started, dropped) = o.counts();
        line.push_str(&format!(
            "  open {started} started, {dropped} dropped, {} active",
            o.active()
        ));
    }
    if let Some(o) = &ctx.onsale {
        let f = o.figures(&ctx.shared);
        line.push_str(&format!(
            "  onsale {} arrived, {} seats sold of {}",
            f.arrivals, f.seats_sold, f.seats
        ));
    }
    if let Some(w) = &ctx.waiting
        && let Some(last) = w.last_sample()
    {
        line.push_str(&format!(
            "  queue {} waiting, {} active, {} admitted",
            last.waiting, last.active, last.admitted_total
        ));
    }
    if let Some(r) = &ctx.rush {
        line.push_str(&format!(
            "  rush {} won / {} seats, {} done of {} users",
            r.won.load(Ordering::Relaxed),
            r.seat_ids.len(),
            r.finished(),
            r.users.load(Ordering::Relaxed)
        ));
    }
    if let Some(p) = &ctx.purchase {
        let c = p.counts.lock().unwrap_or_else(|e| e.into_inner());
        line.push_str(&format!("  purchases {} confirmed", c.confirmed));
    }
    if let Some(s) = &ctx.sse {
        line.push_str(&format!(
            "  sse {} writes",
            s.writes.load(Ordering::Relaxed)
        ));
    }
    line
}

/// The waiting room's figures as one line.
fn waiting_line(w: &crate::summary::WaitingFigures) -> String {
    let tau = |t: Option<f64>| t.map_or("-".into(), |t| format!("{t:.3}"));
    format!(
        "waiting room: {} joined ({} pre-queue over {} ms of the planned {} ms, {} refused, {} rejoined a customer's place), {} admitted, {} told sold out, {} lost, {} unresolved; {} polls; wait p50 {:.0} ms p95 {:.0} ms max {:.0} ms; admitted at most {}/s (cap {}/s, peak arrivals {:.1}x it); {} admitted out of order; Kendall tau {} (FIFO {}); shop phase p95 {:.1} ms over {} requests\n",
        w.joined,
        w.prequeue,
        w.prequeue_ms,
        w.prequeue_planned_ms,
        w.join_failed,
        w.rejoined,
        w.admitted,
        w.told_sold_out,
        w.lost,
        w.unresolved,
        w.polls,
        w.wait.p50_ms,
        w.wait.p95_ms,
        w.wait.max_ms,
        w.admitted_per_s_max,
        w.admit_per_s,
        w.arrivals_per_admission,
        w.out_of_order,
        tau(w.kendall_tau),
        tau(w.kendall_tau_fifo),
        w.shop.p95_ms,
        w.shop.count
    )
}

/// Per-endpoint figures and scenario counts as text.
pub fn figures_table(s: &Summary) -> String {
    let mut out = String::from(
        "endpoint                                 requests  errors   exp.   p50 ms   p95 ms   p99 ms   max ms | corrected p95   p99\n",
    );
    let mut row = |name: &str, e: &crate::record::EndpointFigures| {
        out.push_str(&format!(
            "{:<40} {:>8} {:>7} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} | {:>13.1} {:>5.1}\n",
            name,
            e.requests,
            e.errors,
            e.expected,
            e.raw.p50_ms,
            e.raw.p95_ms,
            e.raw.p99_ms,
            e.raw.max_ms,
            e.corrected.p95_ms,
            e.corrected.p99_ms
        ));
    };
    for (name, e) in &s.endpoints {
        row(name, e);
    }
    row("all", &s.overall);
    let secs = s.environment.duration_ms as f64 / 1000.0;
    out.push_str(&format!(
        "throughput {:.0} requests/s over {secs:.1} s\n",
        s.overall.requests as f64 / secs.max(0.001)
    ));
    if let Some(r) = &s.rush {
        out.push_str(&format!(
            "rush: {} users, {} seats: {} won, {} saw the sell-out, {} gave up; {} attempts; sold out in {}; time to win p50 {:.1} ms p95 {:.1} ms p99 {:.1} ms\n",
            r.users,
            r.seats,
            r.won,
            r.sold_out,
            r.gave_up,
            r.attempts,
            r.sell_out_ms.map(|ms| format!("{ms} ms")).unwrap_or_else(|| "-".into()),
            r.time_to_win.p50_ms,
            r.time_to_win.p95_ms,
            r.time_to_win.p99_ms
        ));
    }
    if let Some(o) = &s.open {
        out.push_str(&format!(
            "open: {}: {} scheduled, {} started ({:.1} %), {} dropped, {} completed; up to {} of {} users busy; start lag p95 {:.1} ms; iteration from its schedule p50 {:.1} ms p95 {:.1} ms p99 {:.1} ms\n",
            o.plan.describe(),
            o.scheduled,
            o.started,
            o.achieved_pct,
            o.dropped,
            o.completed,
            o.active_max,
            o.max_users,
            o.start_lag.p95_ms,
            o.iteration.p50_ms,
            o.iteration.p95_ms,
            o.iteration.p99_ms
        ));
    }
    if let Some(w) = &s.waiting {
        out.push_str(&waiting_line(w));
    }
    if let Some(o) = &s.onsale {
        out.push_str(&format!(
            "onsale: {} arrivals for {} seats: {} bought {} seats, {} saw it sold out, {} gave up, {} conflicts, {} orders refused, {} not confirmed, {} unresolved; sold out in {}; arrival to CONFIRMED p50 {:.0} ms p95 {:.0} ms\n",
            o.arrivals,
            o.seats,
            o.buyers,
            o.seats_sold,
            o.saw_sold_out,
            o.gave_up,
            o.conflicts,
            o.refused,
            o.not_confirmed,
            o.unresolved,
            o.sell_out_ms.map(|ms| format!("{ms} ms")).unwrap_or_else(|| "- (not sold out)".into()),
            o.time_to_confirm.p50_ms,
            o.time_to_confirm.p95_ms
        ));
        if let Some(sc) = &o.scalpers {
            out.push_str(&scalpers_line(sc, o.seats));
        }
        if let Some(a) = o.after_sale.as_ref().filter(|a| a.cancels > 0) {
            out.push_str(&after_sale_line(a));
        }
    }
    if let Some(p) = &s.purchase {
        out.push_str(&format!(
            "purchase: {} started: {} confirmed, {} cancelled, {} failed, {} abandoned, {} unresolved; {} retried ({} mismatches); placed→terminal p50 {:.0} ms p95 {:.0} ms\n",
            p.started,
            p.confirmed,
            p.cancelled,
            p.failed,
            p.abandoned,
            p.unresolved,
            p.retried,
            p.retry_mismatches,
            p.time_to_terminal.p50_ms,
            p.time_to_terminal.p95_ms
        ));
        if p.after_sale.cancels > 0 {
            out.push_str(&after_sale_line(&p.after_sale));
        }
    }
    if let Some(x) = &s.sse {
        out.push_str(&format!(
            "sse: {} watchers, {} writes, {} deliveries: p50 {:.1} ms p95 {:.1} ms p99 {:.1} ms; {} resumes ({} resyncs), {} lost\n",
            x.watchers,
            x.writes,
            x.propagation.count,
            x.propagation.p50_ms,
            x.propagation.p95_ms,
            x.propagation.p99_ms,
            x.resumes,
            x.resyncs,
            x.lost_changes
        ));
        if x.propagation_in_window.count > 0 {
            out.push_str(&format!(
                "sse in the fault window: {} deliveries: p50 {:.1} ms p95 {:.1} ms p99 {:.1} ms (not judged)\n",
                x.propagation_in_window.count,
                x.propagation_in_window.p50_ms,
                x.propagation_in_window.p95_ms,
                x.propagation_in_window.p99_ms
            ));
        }
    }
    if let Some(a) = &s.audit {
        out.push_str(&format!(
            "audit: {} events, {} orders ({} confirmed), {} sold seats, oversold {}; quiesced {} in {} ms\n",
            a.events.len(),
            a.orders,
            a.confirmed,
            a.sold_seats,
            a.oversold,
            if a.quiesced { "yes" } else { "NO" },
            a.quiesce_ms
        ));
        let m = &a.money;
        let settled = match m.batches {
            Some(n) => format!(
                "{n} settlement batches pay out {:.2}",
                m.settled_net_cents as f64 / 100.0
            ),
            None => "settlement not read (the target has no settlement routes)".to_owned(),
        };
        out.push_str(&format!(
            "money: captured {:.2}, refunded {:.2}; {settled}\n",
            m.captured_cents as f64 / 100.0,
            m.refunded_cents as f64 / 100.0,
        ));
    }
    if let Some(f) = &s.faults {
        out.push_str(&format!(
            "faults: plan {}, window {:.1}–{:.1} s (not judged by the latency and error SLOs): {} errors of {} requests, p95 {:.1} ms (corrected {:.1} ms), codes {:?}; recovery after the heal {}\n",
            f.plan,
            f.window_ms.0 as f64 / 1000.0,
            f.window_ms.1 as f64 / 1000.0,
            f.errors_in_window,
            f.requests_in_window,
            f.window.raw.p95_ms,
            f.window.corrected.p95_ms,
            f.window
                .codes
                .iter()
                .filter(|(c, _)| !c.starts_with('2'))
                .collect::<Vec<_>>(),
            f.recovery_ms
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_else(|| "none (errors to the end)".into())
        ));
    }
    out
}

/// Cancellations after the sale and how they ended, one line.
fn after_sale_line(a: &crate::summary::AfterSaleFigures) -> String {
    format!(
        "after the sale: {} confirmed orders cancelled: {} refunded, {} refund failed, {} unresolved; cancel→refunded p50 {:.0} ms p95 {:.0} ms\n",
        a.cancels,
        a.refunded,
        a.refund_failed,
        a.cancels_unresolved,
        a.time_to_refunded.p50_ms,
        a.time_to_refunded.p95_ms
    )
}

/// The onsale's scalpers beside the honest people, one line.
fn scalpers_line(sc: &crate::summary::ScalperFigures, seats: u64) -> String {
    format!(
        "scalpers: {} bots ({} % of arrivals) on {} accounts won {} holds and bought {} seats; \
         refused {} times by the limit (409 CUSTOMER_LIMIT), {} times by the rates (429) and {} times for a spent admission (403); \
         honest people asked for {} seats and bought {} of the {} the limits leave them ({:.1} % served), {} of them got a 429\n",
        sc.bots,
        sc.share_pct,
        sc.accounts,
        sc.holds,
        sc.seats_sold,
        sc.limit_refusals,
        sc.rate_limited,
        sc.admission_refusals,
        sc.honest_seats_wanted,
        sc.honest_seats_sold,
        sc.honest_demand(seats),
        sc.honest_served_pct(seats),
        sc.honest_rate_limited
    )
}
