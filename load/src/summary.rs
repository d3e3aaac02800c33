//! The run's own summary (`summary.json` in the run folder): what the report
//! renders and what `ticketing-load merge` combines.
//!
//! Counts add, histograms add (they are stored serialized), audits are kept
//! side by side (a merged run passes the audit only if every part did), and
//! the verdict is judged again on the merged figures.

use crate::record::{EndpointFigures, Percentiles, Second};
use crate::slo::{Slo, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Bumped when a field changes meaning; `merge` refuses other versions.
pub const SUMMARY_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub version: u32,
    pub environment: Environment,
    /// Every request together.
    pub overall: EndpointFigures,
    /// Per named request ("POST /api/reservations", ...).
    pub endpoints: BTreeMap<String, EndpointFigures>,
    /// Requests and errors per second of the run (seconds from the start of load).
    pub timeline: Vec<Second>,
    pub rush: Option<RushFigures>,
    pub purchase: Option<PurchaseFigures>,
    pub sse: Option<SseFigures>,
    /// The onsale scenario's people and seats.
    #[serde(default)]
    pub onsale: Option<OnsaleFigures>,
    /// The onsale's waiting room, when it had one.
    #[serde(default)]
    pub waiting: Option<WaitingFigures>,
    /// The open model's schedule, drops and timeline (closed runs: none).
    #[serde(default)]
    pub open: Option<crate::open::OpenFigures>,
    pub audit: Option<crate::audit::AuditReport>,
    pub faults: Option<FaultReport>,
    /// The target's resources over the run (`--sample-every`; absent in
    /// older summaries).
    #[serde(default)]
    pub resources: Option<crate::resources::ResourceReport>,
    /// Goose's own threshold results (judged on goose's raw data).
    pub goose_thresholds: Vec<GooseThreshold>,
    pub verdict: Option<Verdict>,
    /// The limits the verdict was judged against.
    pub slo: Slo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub run_id: String,
    /// "embedded", "stack" or "host".
    pub target: String,
    pub url: String,
    pub scenario: String,
    pub users: u64,
    pub seats: u64,
    pub run_time_s: u64,
    pub seed: u64,
    pub git_revision: String,
    pub hostname: String,
    /// RFC 3339, when the load started.
    pub started_at: String,
    pub duration_ms: u64,
    /// How many load processes these figures come from (1 unless merged).
    pub load_processes: u64,
    pub fault_plan: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RushFigures {
    pub event_id: String,
    pub users: u64,
    pub seats: u64,
    pub won: u64,
    /// Users that saw the event sold out without winning.
    pub sold_out: u64,
    /// Users that gave up (deadline or attempt bound) without either.
    pub gave_up: u64,
    pub attempts: u64,
    /// Every user finished (won or saw the event sold out).
    pub complete: bool,
    /// From the first hold attempt to the last seat held.
    pub sell_out_ms: Option<u64>,
    /// Time from the user's first attempt to its winning hold.
    pub time_to_win: Percentiles,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OnsaleFigures {
    pub event_id: String,
    pub seats: u64,
    /// People who arrived (iterations started).
    pub arrivals: u64,
    /// People whose order was CONFIRMED, and the seats they bought.
    pub buyers: u64,
    pub seats_sold: u64,
    /// People who found nothing left (the event or the statuses said so).
    pub saw_sold_out: u64,
    /// People who hit the attempts bound with seats still showing.
    pub gave_up: u64,
    /// Holds refused because a seat was taken first (409).
    pub conflicts: u64,
    /// Orders refused (the hold expired or was pinned meanwhile).
    pub refused: u64,
    /// Orders that ended other than CONFIRMED.
    pub not_confirmed: u64,
    /// Orders still PENDING when the person stopped polling.
    pub unresolved: u64,
    /// First arrival to the sale of the last seat (sold out only).
    pub sell_out_ms: Option<u64>,
    /// Arrival to CONFIRMED, per buyer.
    pub time_to_confirm: Percentiles,
    /// The scalpers and what honest people got beside them (`--scalper-share`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalpers: Option<ScalperFigures>,
    /// Buyers who cancelled (`--cancel-share`), and how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_sale: Option<AfterSaleFigures>,
}

/// Confirmed orders cancelled (`--cancel-share`) and how they ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AfterSaleFigures {
    pub cancels: u64,
    pub refunded: u64,
    /// Seats of the REFUNDED orders (back on sale).
    pub seats_returned: u64,
    pub refund_failed: u64,
    /// Cancellations not REFUNDED or REFUND_FAILED when the user stopped polling.
    pub cancels_unresolved: u64,
    /// Cancel accepted (202) to REFUNDED seen by the client.
    pub time_to_refunded: Percentiles,
}

/// The onsale's scalpers: bots (arrivals acting for a few shared accounts,
/// several at once) that grab holds as fast as they can, extend them and
/// buy; and the honest people's side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScalperFigures {
    /// Arrivals that were scalper bots, in percent, and the accounts they share.
    pub share_pct: u32,
    pub accounts: u64,
    pub bots: u64,
    /// The per-customer seat limit the run was judged against (0: none).
    pub seats_per_account: u64,
    /// Holds the bots won, seats they bought, and their refusals: 409
    /// `CUSTOMER_LIMIT` and 429 `RATE_LIMITED`.
    pub holds: u64,
    pub seats_sold: u64,
    pub limit_refusals: u64,
    pub rate_limited: u64,
    /// Through a waiting room: holds refused 403 `ADMISSION_INVALID`, the
    /// account's one place in line spent (another of its bots bought, or
    /// the slot went idle) — each such bot stops there.
    pub admission_refusals: u64,
    /// Honest people: seats they asked for (1–4 each), bought, and 429s.
    pub honest_seats_wanted: u64,
    pub honest_seats_sold: u64,
    pub honest_rate_limited: u64,
}

impl ScalperFigures {
    /// The honest demand the limits promise to serve: the seats honest
    /// people asked for, at most what the bots' accounts cannot take
    /// (`seats` less accounts × the limit).
    pub fn honest_demand(&self, seats: u64) -> u64 {
        let bots_max = self.accounts.saturating_mul(self.seats_per_account);
        self.honest_seats_wanted.min(seats.saturating_sub(bots_max))
    }

    /// Seats honest people bought per seat of [`Self::honest_demand`], in percent.
    pub fn honest_served_pct(&self, seats: u64) -> f64 {
        let demand = self.honest_demand(seats);
        if demand == 0 {
            return 100.0;
        }
        100.0 * self.honest_seats_sold as f64 / demand as f64
    }
}

/// The onsale's waiting room (`--waiting-room`): what its visitors saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitingFigures {
    pub event_id: String,
    /// The room's caps for the run, and its on-sale time (Unix ms).
    pub admit_per_s: u32,
    pub active_max: u32,
    pub on_sale_at_ms: u64,
    /// How long the arrivals ran before the on-sale time: planned, and as
    /// it came (shorter when the users were up later than planned).
    pub prequeue_planned_ms: u64,
    pub prequeue_ms: u64,
    /// Joins answered 201 (new places), and those in the pre-queue; joins
    /// refused or failed.
    pub joined: u64,
    pub prequeue: u64,
    pub join_failed: u64,
    /// Joins answered 200: the customer already had a live place (another
    /// bot of a scalper account), so the join shared it. The other figures
    /// count places, not these.
    #[serde(default)]
    pub rejoined: u64,
    /// Visitors admitted (polled ADMITTED), told the event sold out while
    /// waiting, whose place was lost (EXPIRED or gone while they kept
    /// polling), and still waiting when the run's deadline came.
    pub admitted: u64,
    pub told_sold_out: u64,
    pub lost: u64,
    pub unresolved: u64,
    /// Position polls sent.
    pub polls: u64,
    /// Join sent to the poll that saw ADMITTED (what the visitor waited).
    pub wait: Percentiles,
    /// Admissions per second of the queue's clock (from `admittedAtMs`),
    /// from the first admission's second; the most in any one second.
    pub admitted_per_s: Vec<u64>,
    pub admitted_per_s_max: u64,
    /// The Unix second `admitted_per_s[0]` counts.
    pub admitted_from_s: u64,
    /// Visitors admitted before someone surely ahead of them (0 = fair).
    pub out_of_order: u64,
    /// Kendall's tau-b, join order vs admission order: every admitted
    /// visitor, and the FIFO ones only (1 = exactly in join order).
    pub kendall_tau: Option<f64>,
    pub kendall_tau_fifo: Option<f64>,
    /// The busiest second's arrivals per configured admission per second.
    pub arrivals_per_admission: f64,
    /// Requests other than the waiting room's own (the shop phase): all together.
    pub shop: Percentiles,
    /// The room as its internal route reported it, once a second.
    pub samples: Vec<RoomSample>,
}

/// One reading of `GET /internal/queue/{id}` during the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RoomSample {
    /// Since the start of the load.
    pub at_ms: u64,
    pub waiting: u64,
    pub active: u64,
    pub admitted_total: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PurchaseFigures {
    pub started: u64,
    pub confirmed: u64,
    pub cancelled: u64,
    pub failed: u64,
    /// Holds walked away from without ordering.
    pub abandoned: u64,
    /// Orders re-sent with the same Idempotency-Key (all must return the same order).
    pub retried: u64,
    pub retry_mismatches: u64,
    /// No seat available in any of the run's events.
    pub sold_out: u64,
    /// Orders not terminal when the user stopped polling.
    pub unresolved: u64,
    /// Placed (202) to terminal status seen by the client.
    pub time_to_terminal: Percentiles,
    /// Confirmed orders cancelled (`--cancel-share`), and how they ended
    /// (its fields stand beside the others in the JSON).
    #[serde(flatten)]
    pub after_sale: AfterSaleFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SseFigures {
    pub event_id: String,
    pub watchers: u64,
    pub writes: u64,
    /// Every watcher's deliveries together (outside a fault window).
    pub propagation: Percentiles,
    /// Deliveries of changes sent inside the fault window (reported, not judged).
    pub propagation_in_window: Percentiles,
    pub histogram: String,
    /// The slowest watchers first (at most 20).
    pub per_watcher: Vec<WatcherFigures>,
    pub lost_changes: u64,
    pub resumes: u64,
    /// Resumes answered by a fresh snapshot (gap too old): not a loss.
    pub resyncs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatcherFigures {
    pub watcher: u64,
    pub deliveries: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultReport {
    pub plan: String,
    /// What was applied, when (ms from the start of load), and how.
    pub applied: Vec<AppliedFault>,
    /// [first fault, heal] in ms from the start of load.
    pub window_ms: (u64, u64),
    pub requests_in_window: u64,
    pub errors_in_window: u64,
    /// Every request made in the window together (not judged by the
    /// latency and error SLOs; see `slo`).
    pub window: EndpointFigures,
    /// From heal until the last second with errors ended; `None` if errors
    /// went on to the end of the run.
    pub recovery_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedFault {
    pub at_ms: u64,
    pub fault: String,
    /// "done", "skipped: ..." or "failed: ...".
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GooseThreshold {
    pub rule: String,
    pub observed: String,
    pub passed: bool,
}

impl Summary {
    /// Every request of the run per second of its duration.
    pub fn requests_per_s(&self) -> f64 {
        self.overall.requests as f64 / (self.environment.duration_ms.max(1) as f64 / 1000.0)
    }

    pub fn read(path: &Path) -> anyhow::Result<Summary> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let s: Summary = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a load summary: {e}", path.display()))?;
        if s.version != SUMMARY_VERSION {
            anyhow::bail!(
                "{} has summary version {}, this harness reads {SUMMARY_VERSION}",
                path.display(),
                s.version
            );
        }
        Ok(s)
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
    }
}

/// Sums endpoint figures (for `overall`).
pub fn sum_endpoints<'a>(
    items: impl IntoIterator<Item = &'a EndpointFigures>,
) -> anyhow::Result<EndpointFigures> {
    let mut acc: Option<EndpointFigures> = None;
    for e in items {
        acc = Some(match acc {
            None => e.clone(),
            Some(a) => a.merge(e)?,
        });
    }
    Ok(acc.unwrap_or_else(|| {
        let h = crate::record::new_histogram();
        EndpointFigures::from_parts(0, 0, 0, BTreeMap::new(), &h, &h)
    }))
}

/// Combines the summaries of several load processes that ran at the same
/// time against one target (the verdict is left to `gate::merge`, which
/// judges the merged figures against `slo`).
pub fn merge(parts: &[Summary], slo: &Slo) -> anyhow::Result<Summary> {
    let first = parts
        .first()
        .ok_or_else(|| anyhow::anyhow!("nothing to merge"))?;
    let mut endpoints: BTreeMap<String, EndpointFigures> = BTreeMap::new();
    let mut timeline: Vec<Second> = Vec::new();
    for p in parts {
        for (name, e) in &p.endpoints {
            let merged = match endpoints.get(name) {
                Some(have) => have.merge(e)?,
                None => e.clone(),
            };
            endpoints.insert(name.clone(), merged);
        }
        if timeline.len() < p.timeline.len() {
            timeline.resize(p.timeline.len(), Second::default());
        }
        for (i, s) in p.timeline.iter().enumerate() {
            timeline[i].requests += s.requests;
            timeline[i].errors += s.errors;
            // Percentiles do not add up: the worst process's second stands.
            timeline[i].p95_ms = match (timeline[i].p95_ms, s.p95_ms) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }
    let overall = sum_endpoints(endpoints.values())?;

    let mut env = first.environment.clone();
    env.users = parts.iter().map(|p| p.environment.users).sum();
    env.load_processes = parts.iter().map(|p| p.environment.load_processes).sum();
    env.duration_ms = parts
        .iter()
        .map(|p| p.environment.duration_ms)
        .max()
        .unwrap_or(0);
    env.hostname = parts
        .iter()
        .map(|p| p.environment.hostname.as_str())
        .collect::<Vec<_>>()
        .join(",");

    let rush = merge_rush(parts);
    let purchase = merge_purchase(parts);
    let sse = merge_sse(parts)?;
    let audit = crate::audit::merge_reports(parts.iter().map(|p| p.audit.as_ref()));

    let out = Summary {
        version: SUMMARY_VERSION,
        environment: env,
        overall,
        endpoints,
        timeline,
        rush,
        purchase,
        sse,
        onsale: merge_onsale(parts),
        waiting: merge_waiting(parts),
        open: merge_open(parts),
        audit,
        faults: first.faults.clone(),
        // One process's samples (they read the same target).
        resources: parts.iter().find_map(|p| p.resources.clone()),
        // Goose judged each part on its own data; only our merged figures count.
        goose_thresholds: Vec::new(),
        verdict: None,
        slo: slo.clone(),
    };
    Ok(out)
}

/// Several processes' visitors of one room: counts add up, admissions
/// per second add up second by second (on the queue's clock), the worst
/// wait and shop phase stand for all; fairness is judged per process (a
/// process only knows its own visitors' join times), so the out-of-order
/// counts add up and tau is the lowest part's.
fn merge_waiting(parts: &[Summary]) -> Option<WaitingFigures> {
    let all: Vec<&WaitingFigures> = parts.iter().filter_map(|p| p.waiting.as_ref()).collect();
    let mut out = (*all.first()?).clone();
    if all.len() == 1 {
        return Some(out);
    }
    let sum = |f: fn(&WaitingFigures) -> u64| all.iter().map(|w| f(w)).sum::<u64>();
    out.joined = sum(|w| w.joined);
    out.prequeue = sum(|w| w.prequeue);
    out.join_failed = sum(|w| w.join_failed);
    out.admitted = sum(|w| w.admitted);
    out.told_sold_out = sum(|w| w.told_sold_out);
    out.lost = sum(|w| w.lost);
    out.unresolved = sum(|w| w.unresolved);
    out.polls = sum(|w| w.polls);
    out.out_of_order = sum(|w| w.out_of_order);
    let worst = |f: fn(&WaitingFigures) -> Percentiles| {
        all.iter()
            .map(|w| f(w))
            .max_by(|a, b| a.p95_ms.total_cmp(&b.p95_ms))
            .unwrap_or_default()
    };
    out.wait = worst(|w| w.wait);
    out.shop = worst(|w| w.shop);
    let low = |f: fn(&WaitingFigures) -> Option<f64>| {
        all.iter()
            .filter_map(|w| f(w))
            .min_by(|a, b| a.total_cmp(b))
    };
    out.kendall_tau = low(|w| w.kendall_tau);
    out.kendall_tau_fifo = low(|w| w.kendall_tau_fifo);
    let from = all
        .iter()
        .filter(|w| !w.admitted_per_s.is_empty())
        .map(|w| w.admitted_from_s)
        .min()
        .unwrap_or(0);
    let mut per_s: Vec<u64> = Vec::new();
    for w in &all {
        for (i, n) in w.admitted_per_s.iter().enumerate() {
            let s = (w.admitted_from_s - from) as usize + i;
            if per_s.len() <= s {
                per_s.resize(s + 1, 0);
            }
            per_s[s] += n;
        }
    }
    out.admitted_from_s = from;
    out.admitted_per_s_max = per_s.iter().copied().max().unwrap_or(0);
    out.admitted_per_s = per_s;
    Some(out)
}

fn merge_rush(parts: &[Summary]) -> Option<RushFigures> {
    let all: Vec<&RushFigures> = parts.iter().filter_map(|p| p.rush.as_ref()).collect();
    let first = *all.first()?;
    Some(RushFigures {
        event_id: first.event_id.clone(),
        users: all.iter().map(|r| r.users).sum(),
        // All parts raced for the same event's seats.
        seats: first.seats,
        won: all.iter().map(|r| r.won).sum(),
        sold_out: all.iter().map(|r| r.sold_out).sum(),
        gave_up: all.iter().map(|r| r.gave_up).sum(),
        attempts: all.iter().map(|r| r.attempts).sum(),
        complete: all.iter().all(|r| r.complete),
        sell_out_ms: all.iter().filter_map(|r| r.sell_out_ms).max(),
        // Percentiles of percentiles do not combine; keep the worst part's.
        time_to_win: all
            .iter()
            .map(|r| r.time_to_win)
            .max_by(|a, b| a.p95_ms.total_cmp(&b.p95_ms))
            .unwrap_or_default(),
    })
}

fn merge_purchase(parts: &[Summary]) -> Option<PurchaseFigures> {
    let all: Vec<&PurchaseFigures> = parts.iter().filter_map(|p| p.purchase.as_ref()).collect();
    if all.is_empty() {
        return None;
    }
    let sum = |f: fn(&PurchaseFigures) -> u64| all.iter().map(|p| f(p)).sum();
    Some(PurchaseFigures {
        started: sum(|p| p.started),
        confirmed: sum(|p| p.confirmed),
        cancelled: sum(|p| p.cancelled),
        failed: sum(|p| p.failed),
        abandoned: sum(|p| p.abandoned),
        retried: sum(|p| p.retried),
        retry_mismatches: sum(|p| p.retry_mismatches),
        sold_out: sum(|p| p.sold_out),
        unresolved: sum(|p| p.unresolved),
        time_to_terminal: all
            .iter()
            .map(|p| p.time_to_terminal)
            .max_by(|a, b| a.p95_ms.total_cmp(&b.p95_ms))
            .unwrap_or_default(),
        after_sale: merge_after_sale(all.iter().map(|p| &p.after_sale)).unwrap_or_default(),
    })
}

fn merge_sse(parts: &[Summary]) -> anyhow::Result<Option<SseFigures>> {
    let all: Vec<&SseFigures> = parts.iter().filter_map(|p| p.sse.as_ref()).collect();
    let Some(first) = all.first() else {
        return Ok(None);
    };
    let mut h = crate::record::new_histogram();
    for s in &all {
        h.add(crate::record::decode(&s.histogram)?)
            .map_err(|e| anyhow::anyhow!("cannot add histograms: {e:?}"))?;
    }
    let mut per_watcher: Vec<WatcherFigures> =
        all.iter().flat_map(|s| s.per_watcher.clone()).collect();
    per_watcher.sort_by(|a, b| b.p95_ms.total_cmp(&a.p95_ms));
    per_watcher.truncate(20);
    Ok(Some(SseFigures {
        event_id: first.event_id.clone(),
        watchers: all.iter().map(|s| s.watchers).sum(),
        writes: all.iter().map(|s| s.writes).sum(),
        propagation: Percentiles::of(&h),
        propagation_in_window: all
            .iter()
            .map(|s| s.propagation_in_window)
            .max_by(|a, b| a.p95_ms.total_cmp(&b.p95_ms))
            .unwrap_or_default(),
        histogram: crate::record::encode(&h),
        per_watcher,
        lost_changes: all.iter().map(|s| s.lost_changes).sum(),
        resumes: all.iter().map(|s| s.resumes).sum(),
        resyncs: all.iter().map(|s| s.resyncs).sum(),
    }))
}

/// Open runs of several processes: counts and timelines add up (each
/// process ran its own schedule); percentiles keep the worst part's.
fn merge_open(parts: &[Summary]) -> Option<crate::open::OpenFigures> {
    let all: Vec<&crate::open::OpenFigures> =
        parts.iter().filter_map(|p| p.open.as_ref()).collect();
    let mut out = (*all.first()?).clone();
    for o in &all[1..] {
        out.max_users += o.max_users;
        out.scheduled += o.scheduled;
        out.started += o.started;
        out.dropped += o.dropped;
        out.completed += o.completed;
        out.active_max += o.active_max;
        if out.timeline.len() < o.timeline.len() {
            out.timeline.resize(o.timeline.len(), Default::default());
        }
        for (a, b) in out.timeline.iter_mut().zip(&o.timeline) {
            a.target += b.target;
            a.started += b.started;
            a.dropped += b.dropped;
            a.active_max += b.active_max;
        }
        let worse = |a: Percentiles, b: Percentiles| if b.p95_ms > a.p95_ms { b } else { a };
        out.iteration = worse(out.iteration, o.iteration);
        out.start_lag = worse(out.start_lag, o.start_lag);
    }
    out.achieved_pct = 100.0 * out.started as f64 / out.scheduled.max(1) as f64;
    Some(out)
}

/// Onsale figures of processes that sold one event together.
fn merge_onsale(parts: &[Summary]) -> Option<OnsaleFigures> {
    let all: Vec<&OnsaleFigures> = parts.iter().filter_map(|p| p.onsale.as_ref()).collect();
    let first = *all.first()?;
    let sum = |f: fn(&OnsaleFigures) -> u64| all.iter().map(|o| f(o)).sum();
    Some(OnsaleFigures {
        event_id: first.event_id.clone(),
        seats: first.seats,
        arrivals: sum(|o| o.arrivals),
        buyers: sum(|o| o.buyers),
        seats_sold: sum(|o| o.seats_sold),
        saw_sold_out: sum(|o| o.saw_sold_out),
        gave_up: sum(|o| o.gave_up),
        conflicts: sum(|o| o.conflicts),
        refused: sum(|o| o.refused),
        not_confirmed: sum(|o| o.not_confirmed),
        unresolved: sum(|o| o.unresolved),
        sell_out_ms: all.iter().filter_map(|o| o.sell_out_ms).max(),
        time_to_confirm: all
            .iter()
            .map(|o| o.time_to_confirm)
            .max_by(|a, b| a.p95_ms.total_cmp(&b.p95_ms))
            .unwrap_or_default(),
        scalpers: merge_scalpers(&all),
        after_sale: merge_after_sale(all.iter().filter_map(|o| o.after_sale.as_ref())),
    })
}

/// After-sale counts add up; the time to REFUNDED keeps the worst part's.
/// `None` when no part has any.
fn merge_after_sale<'a>(
    parts: impl Iterator<Item = &'a AfterSaleFigures>,
) -> Option<AfterSaleFigures> {
    let parts: Vec<&AfterSaleFigures> = parts.collect();
    parts.first()?;
    let sum = |f: fn(&AfterSaleFigures) -> u64| parts.iter().map(|p| f(p)).sum();
    Some(AfterSaleFigures {
        cancels: sum(|p| p.cancels),
        refunded: sum(|p| p.refunded),
        seats_returned: sum(|p| p.seats_returned),
        refund_failed: sum(|p| p.refund_failed),
        cancels_unresolved: sum(|p| p.cancels_unresolved),
        time_to_refunded: parts
            .iter()
            .map(|p| p.time_to_refunded)
            .max_by(|a, b| a.p95_ms.total_cmp(&b.p95_ms))
            .unwrap_or_default(),
    })
}

fn merge_scalpers(all: &[&OnsaleFigures]) -> Option<ScalperFigures> {
    let parts: Vec<&ScalperFigures> = all.iter().filter_map(|o| o.scalpers.as_ref()).collect();
    let first = *parts.first()?;
    let sum = |f: fn(&ScalperFigures) -> u64| parts.iter().map(|p| f(p)).sum();
    Some(ScalperFigures {
        share_pct: first.share_pct,
        accounts: first.accounts,
        seats_per_account: first.seats_per_account,
        bots: sum(|p| p.bots),
        holds: sum(|p| p.holds),
        seats_sold: sum(|p| p.seats_sold),
        limit_refusals: sum(|p| p.limit_refusals),
        rate_limited: sum(|p| p.rate_limited),
        admission_refusals: sum(|p| p.admission_refusals),
        honest_seats_wanted: sum(|p| p.honest_seats_wanted),
        honest_seats_sold: sum(|p| p.honest_seats_sold),
        honest_rate_limited: sum(|p| p.honest_rate_limited),
    })
}
