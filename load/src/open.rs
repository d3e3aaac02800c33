//! The open model: iterations start at a scheduled rate whatever the target
//! does, as people arrive at an on-sale whether or not the site keeps up.
//!
//! Goose only has a closed model (each user waits for its answer before the
//! next request), which slows down with the system it measures. Here a run
//! is an [`ArrivalPlan`] turned into a [`Schedule`] — every iteration's start
//! time, fixed before the run — and a pool of pre-started goose users
//! (`--max-users`, like k6's pre-allocated VUs). A free user takes the next
//! iteration from [`OpenRun::next`], sleeps until its time and runs it.
//!
//! - Latency counts from the **scheduled** start: the first request of an
//!   iteration is charged the time it waited for a free user
//!   ([`OpenRun::take_lag_us`]), and the iteration's own time is measured
//!   from its schedule, so queueing in the generator shows (coordinated
//!   omission is removed by construction, not corrected afterwards).
//! - An iteration no user could start within `late` of its time is
//!   **dropped** (k6's `dropped_iterations`), counted per second.
//!
//! - A run may let iterations **resume** later ([`OpenRun::with_resumes`]):
//!   an iteration leaves a person's next step for a time ([`OpenRun::resume_at`],
//!   e.g. a waiting-room visitor's next poll) and ends, freeing its user; a
//!   free user takes whichever comes first, the next arrival or a due
//!   resume. People who wait do not hold a user each (a browser tab that
//!   polls holds no connection in between), so 50,000 waiting visitors fit
//!   a pool of 2,000.
//!
//! Everything is bounded: a schedule holds at most [`ITERATIONS_MAX`]
//! iterations, the timeline one bucket per second of it, the resumes at
//! most [`RESUMES_MAX`] at once.
//!
//! Layer: imports `record` only; `scenarios` and `run` drive it.

use crate::record::{Percentiles, new_histogram};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// The most iterations one schedule may hold (a bound, and a guard against
/// a typo such as `1h:100000`).
pub const ITERATIONS_MAX: usize = 5_000_000;
/// The scheduler's resolution (tokio's timer): no stage or window is shorter.
pub const TICK: Duration = Duration::from_millis(1);
/// Default bound on how late an iteration may start before it is dropped.
pub const LATE_MS_DEFAULT: u64 = 100;

/// One stage of a ramping plan: the rate moves linearly to `target_per_s`
/// over `duration` (k6's ramping-arrival-rate stages).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub duration_ms: u64,
    pub target_per_s: f64,
}

/// How iterations arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ArrivalPlan {
    /// `start_per_s`, then linear ramps through `stages` (a constant rate is
    /// one stage at the start rate).
    Stages {
        start_per_s: f64,
        stages: Vec<Stage>,
    },
    /// `count` arrivals at independent uniform times in `window_ms` (a
    /// Poisson process given its count), drawn from `seed`.
    Poisson {
        count: u64,
        window_ms: u64,
        seed: u64,
    },
}

impl ArrivalPlan {
    /// A constant rate for `duration`.
    pub fn constant(per_s: f64, duration: Duration) -> ArrivalPlan {
        ArrivalPlan::Stages {
            start_per_s: per_s,
            stages: vec![Stage {
                duration_ms: duration.as_millis() as u64,
                target_per_s: per_s,
            }],
        }
    }

    /// One line for the start line and the report.
    pub fn describe(&self) -> String {
        match self {
            ArrivalPlan::Stages {
                start_per_s,
                stages,
            } if stages.len() == 1 && stages[0].target_per_s == *start_per_s => format!(
                "{start_per_s}/s for {:.1} s",
                stages[0].duration_ms as f64 / 1000.0
            ),
            ArrivalPlan::Stages {
                start_per_s,
                stages,
            } => {
                let parts: Vec<String> = stages
                    .iter()
                    .map(|s| format!("{}s:{}", s.duration_ms as f64 / 1000.0, s.target_per_s))
                    .collect();
                format!("from {start_per_s}/s through {}", parts.join(","))
            }
            ArrivalPlan::Poisson {
                count, window_ms, ..
            } => format!(
                "{count} Poisson arrivals over {:.1} s",
                *window_ms as f64 / 1000.0
            ),
        }
    }
}

/// Parses `--arrival-stages`: `DURATION:RATE[,DURATION:RATE...]`, e.g.
/// `30s:100,1m:200,30s:0` (humantime durations, rates per second, >= 0).
pub fn parse_stages(s: &str) -> Result<Vec<Stage>, String> {
    let mut stages = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (d, r) = part
            .split_once(':')
            .ok_or_else(|| format!("stage {part:?}: expected DURATION:RATE, e.g. 30s:100"))?;
        let d = humantime::parse_duration(d.trim())
            .map_err(|e| format!("stage {part:?}: duration {d:?}: {e}"))?;
        let r: f64 = r
            .trim()
            .parse()
            .map_err(|_| format!("stage {part:?}: rate {r:?} is not a number"))?;
        if !r.is_finite() || r < 0.0 {
            return Err(format!(
                "stage {part:?}: the rate must be 0 or more per second"
            ));
        }
        if d < TICK {
            return Err(format!(
                "stage {part:?}: shorter than the scheduler's {TICK:?} tick"
            ));
        }
        stages.push(Stage {
            duration_ms: d.as_millis() as u64,
            target_per_s: r,
        });
    }
    Ok(stages)
}

/// `--arrival-stages` as one value (clap would read a `Vec` as repeats).
#[derive(Debug, Clone, PartialEq)]
pub struct Stages(pub Vec<Stage>);

/// [`parse_stages`] for clap.
pub fn parse_stages_arg(s: &str) -> Result<Stages, String> {
    parse_stages(s).map(Stages)
}

/// Parses a positive, finite rate per second (`--arrival-rate`).
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !r.is_finite() || r <= 0.0 {
        return Err(format!("{s}: the rate must be above 0 per second"));
    }
    Ok(r)
}

/// Every iteration's start, in µs from the schedule's origin, ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub plan: ArrivalPlan,
    pub at_us: Vec<u64>,
    pub duration_ms: u64,
}

impl Schedule {
    pub fn build(plan: &ArrivalPlan) -> Result<Schedule, String> {
        let (at_us, duration_ms) = match plan {
            ArrivalPlan::Stages {
                start_per_s,
                stages,
            } => stage_times(*start_per_s, stages)?,
            ArrivalPlan::Poisson {
                count,
                window_ms,
                seed,
            } => poisson_times(*count, *window_ms, *seed)?,
        };
        if at_us.is_empty() {
            return Err(format!("{} schedules no iteration", plan.describe()));
        }
        Ok(Schedule {
            plan: plan.clone(),
            at_us,
            duration_ms,
        })
    }

    /// Iterations scheduled in each second of the schedule.
    pub fn per_second(&self) -> Vec<u64> {
        let mut out = vec![0u64; (self.duration_ms.div_ceil(1000) as usize).max(1)];
        for t in &self.at_us {
            let s = ((t / 1_000_000) as usize).min(out.len() - 1);
            out[s] += 1;
        }
        out
    }
}

fn too_many() -> String {
    format!("the plan schedules more than {ITERATIONS_MAX} iterations")
}

/// Iteration `i` starts when the cumulative arrivals ∫rate reach `i`.
fn stage_times(start_per_s: f64, stages: &[Stage]) -> Result<(Vec<u64>, u64), String> {
    if stages.is_empty() {
        return Err("no stage".into());
    }
    let (mut out, mut base, mut rate, mut origin_s) = (Vec::new(), 0.0f64, start_per_s, 0.0f64);
    for st in stages {
        let d = st.duration_ms as f64 / 1000.0;
        let a = (st.target_per_s - rate) / d;
        let mut i = out.len() as f64;
        loop {
            let x = i - base;
            let t = if a.abs() < 1e-12 {
                if rate <= 0.0 {
                    break;
                }
                x / rate
            } else {
                let disc = rate * rate + 2.0 * a * x;
                if disc < 0.0 {
                    break;
                }
                (disc.sqrt() - rate) / a
            };
            if !(0.0..d).contains(&t) {
                break;
            }
            if out.len() >= ITERATIONS_MAX {
                return Err(too_many());
            }
            out.push(((origin_s + t) * 1e6) as u64);
            i += 1.0;
        }
        base += (rate + st.target_per_s) / 2.0 * d;
        rate = st.target_per_s;
        origin_s += d;
    }
    Ok((out, (origin_s * 1000.0).round() as u64))
}

fn poisson_times(count: u64, window_ms: u64, seed: u64) -> Result<(Vec<u64>, u64), String> {
    if count as usize > ITERATIONS_MAX {
        return Err(too_many());
    }
    if Duration::from_millis(window_ms) < TICK {
        return Err(format!(
            "the arrival window is shorter than the scheduler's {TICK:?} tick"
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<u64> = (0..count)
        .map(|_| rng.random_range(0..window_ms * 1000))
        .collect();
    out.sort_unstable();
    Ok((out, window_ms))
}

/// One second of an open run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenSecond {
    /// Iterations scheduled in this second (the target rate).
    pub target: u64,
    /// Iterations that started in this second (the achieved rate).
    pub started: u64,
    /// Iterations scheduled in this second that were dropped.
    pub dropped: u64,
    /// The most iterations running at once in this second.
    pub active_max: u64,
}

/// The open model's figures in `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenFigures {
    pub plan: ArrivalPlan,
    pub max_users: u64,
    pub late_ms: u64,
    pub scheduled: u64,
    pub started: u64,
    pub dropped: u64,
    pub completed: u64,
    /// Started per scheduled, in percent.
    pub achieved_pct: f64,
    /// Scheduled start to the iteration's end.
    pub iteration: Percentiles,
    /// Scheduled start to actual start (the generator's own queueing).
    pub start_lag: Percentiles,
    /// The most iterations running at once.
    pub active_max: u64,
    pub timeline: Vec<OpenSecond>,
    /// Resumes run (steps an iteration left for later), and those refused
    /// at the bound.
    #[serde(default)]
    pub resumed: u64,
    #[serde(default)]
    pub resumes_refused: u64,
    /// When each resume was due to when it started.
    #[serde(default)]
    pub resume_lag: Percentiles,
}

impl Default for ArrivalPlan {
    fn default() -> Self {
        ArrivalPlan::Stages {
            start_per_s: 0.0,
            stages: Vec::new(),
        }
    }
}

/// What a free user gets from [`OpenRun::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run iteration `index` at `at` (sleep until then first).
    Run { index: u64, at: Instant },
    /// Resume the step left under `key` at `at` (sleep until then first).
    Resume { key: u64, at: Instant },
    /// Nothing is due yet: wait ([`OpenRun::wait`]) until `until` at most,
    /// then ask again.
    Wait { until: Instant },
    /// The schedule is used up (and no resume is left): the user stops.
    Done,
}

/// The most resumes waiting at once (a bound on the heap; one per waiting
/// person).
pub const RESUMES_MAX: usize = 5_000_000;
/// A free user claims work due within this long; later work stays
/// unclaimed (so a resume left meanwhile for an earlier time is not stuck
/// behind a user sleeping on a later one).
pub const CLAIM_HORIZON: Duration = Duration::from_millis(20);
/// How long a user with nothing due waits before asking again (unless a
/// new resume wakes it first).
pub const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Resumes by (due, push order, key), earliest first.
type ResumeHeap = std::collections::BinaryHeap<std::cmp::Reverse<(Instant, u64, u64)>>;

/// Steps left for later, earliest first.
#[derive(Debug, Default)]
struct Resumes {
    heap: Mutex<ResumeHeap>,
    /// Pushes so far: ties at one instant resume in the order they were left.
    seq: AtomicU64,
    wake: tokio::sync::Notify,
    resumed: AtomicU64,
    refused: AtomicU64,
}

impl Resumes {
    fn lock(&self) -> std::sync::MutexGuard<'_, ResumeHeap> {
        self.heap.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn peek(&self) -> Option<Instant> {
        self.lock().peek().map(|r| r.0.0)
    }

    /// The earliest resume if it is due by `by`.
    fn pop_due(&self, by: Instant) -> Option<(Instant, u64)> {
        let mut heap = self.lock();
        if heap.peek().is_some_and(|r| r.0.0 <= by) {
            return heap.pop().map(|r| (r.0.0, r.0.2));
        }
        None
    }
}

/// How long the schedule waits for every user to be up before it starts
/// with those that are.
pub const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

/// An open run while it goes (shared by every goose user).
#[derive(Debug)]
pub struct OpenRun {
    schedule: Schedule,
    /// The schedule's time 0: set once every user is up ([`OpenRun::arrive`]).
    origin: std::sync::OnceLock<Instant>,
    go: tokio::sync::Notify,
    arrived: AtomicU64,
    late: Duration,
    max_users: u64,
    next: AtomicUsize,
    started: AtomicU64,
    dropped: AtomicU64,
    completed: AtomicU64,
    active: AtomicU64,
    /// Per goose user: lag to charge to its next request, in µs.
    lags_us: Vec<AtomicU64>,
    inner: Mutex<Measured>,
    /// Steps left for later (`None`: a run of plain iterations).
    resumes: Option<Resumes>,
    /// The schedule starts no earlier than this (once every user is up).
    not_before: Option<Instant>,
}

#[derive(Debug)]
struct Measured {
    timeline: Vec<OpenSecond>,
    iteration: Histogram<u64>,
    start_lag: Histogram<u64>,
    resume_lag: Histogram<u64>,
    active_max: u64,
}

impl OpenRun {
    /// A run of `schedule` for `max_users` users; it starts when they are
    /// all up ([`OpenRun::arrive`]) or by [`OpenRun::start`].
    pub fn new(schedule: Schedule, late: Duration, max_users: u64) -> OpenRun {
        let timeline = schedule
            .per_second()
            .into_iter()
            .map(|target| OpenSecond {
                target,
                ..OpenSecond::default()
            })
            .collect();
        OpenRun {
            origin: std::sync::OnceLock::new(),
            go: tokio::sync::Notify::new(),
            arrived: AtomicU64::new(0),
            late,
            max_users,
            next: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            active: AtomicU64::new(0),
            lags_us: (0..max_users).map(|_| AtomicU64::new(0)).collect(),
            inner: Mutex::new(Measured {
                timeline,
                iteration: new_histogram(),
                start_lag: new_histogram(),
                resume_lag: new_histogram(),
                active_max: 0,
            }),
            schedule,
            resumes: None,
            not_before: None,
        }
    }

    /// The schedule starts when every user is up, but not before `at`
    /// (a waiting room's on-sale time was set from it).
    pub fn not_before(mut self, at: Instant) -> OpenRun {
        self.not_before = Some(at);
        self
    }

    /// When the schedule starts if it starts now.
    fn start_time(&self) -> Instant {
        let now = Instant::now();
        self.not_before.map_or(now, |at| at.max(now))
    }

    /// Lets iterations leave steps for later ([`OpenRun::resume_at`]).
    pub fn with_resumes(mut self) -> OpenRun {
        self.resumes = Some(Resumes::default());
        self
    }

    /// Leaves the step `key` for `at`: a free user resumes it then. False
    /// (and nothing left) in a run without resumes or with [`RESUMES_MAX`]
    /// waiting already.
    pub fn resume_at(&self, at: Instant, key: u64) -> bool {
        let Some(r) = &self.resumes else {
            return false;
        };
        {
            let mut heap = r.lock();
            if heap.len() >= RESUMES_MAX {
                r.refused.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            let seq = r.seq.fetch_add(1, Ordering::Relaxed);
            heap.push(std::cmp::Reverse((at, seq, key)));
        }
        r.wake.notify_one();
        true
    }

    /// Waits until `until`, or until a resume is left.
    pub async fn wait(&self, until: Instant) {
        match &self.resumes {
            Some(r) => {
                let _ = tokio::time::timeout_at(until, r.wake.notified()).await;
            }
            None => tokio::time::sleep_until(until).await,
        }
    }

    /// When the schedule started (`None` before it did).
    /// Iterations in the schedule.
    pub fn scheduled(&self) -> u64 {
        self.schedule.at_us.len() as u64
    }

    pub fn started_at(&self) -> Option<Instant> {
        self.origin.get().copied()
    }

    /// Starts the schedule at `at` (once; later calls change nothing).
    pub fn start(&self, at: Instant) {
        if self.origin.set(at).is_ok() {
            self.go.notify_waiters();
        }
    }

    /// A goose user is up; returns when every user is (the schedule then
    /// starts), or after [`LAUNCH_TIMEOUT`] with those that are.
    pub async fn arrive(&self) {
        let notified = self.go.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.arrived.fetch_add(1, Ordering::Relaxed) + 1 >= self.max_users {
            self.start(self.start_time());
        }
        if self.origin.get().is_some() {
            return;
        }
        if tokio::time::timeout(LAUNCH_TIMEOUT, notified)
            .await
            .is_err()
        {
            self.start(self.start_time());
        }
    }

    fn origin(&self) -> Instant {
        // Users only ask after `arrive`, which sets it; a stray early call
        // reads the schedule as starting now.
        *self.origin.get_or_init(Instant::now)
    }

    /// The schedule's length (the last arrival is before it ends).
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.schedule.duration_ms)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Measured> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn second_of(&self, at: Instant) -> usize {
        at.saturating_duration_since(self.origin()).as_secs() as usize
    }

    /// The next work for a free user: the next arrival or, in a run with
    /// resumes, whichever of it and the earliest resume comes first.
    pub fn next(&self) -> Next {
        let Some(r) = &self.resumes else {
            return self.next_arrival();
        };
        let now = Instant::now();
        let arrival = self
            .schedule
            .at_us
            .get(self.next.load(Ordering::Relaxed))
            .map(|t| self.origin() + Duration::from_micros(*t));
        let resume = r.peek();
        let earliest = match (arrival, resume) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                // Nothing left; a running iteration may still leave a resume.
                None if self.active() == 0 => return Next::Done,
                None => {
                    return Next::Wait {
                        until: now + IDLE_WAIT,
                    };
                }
            },
        };
        let by = now + CLAIM_HORIZON;
        if earliest > by {
            return Next::Wait {
                until: (earliest - CLAIM_HORIZON).min(now + IDLE_WAIT),
            };
        }
        if resume.is_some_and(|b| arrival.is_none_or(|a| b <= a))
            && let Some((at, key)) = r.pop_due(by)
        {
            return Next::Resume { key, at };
        }
        match self.next_arrival() {
            // Another user took the last arrival meanwhile: ask again.
            Next::Done => Next::Wait { until: now },
            n => n,
        }
    }

    /// The next arrival; those whose time passed by more than `late` are
    /// dropped on the way (bounded by the schedule).
    fn next_arrival(&self) -> Next {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(t) = self.schedule.at_us.get(i) else {
                return Next::Done;
            };
            let at = self.origin() + Duration::from_micros(*t);
            if Instant::now() <= at + self.late {
                return Next::Run {
                    index: i as u64,
                    at,
                };
            }
            self.dropped.fetch_add(1, Ordering::Relaxed);
            let s = self.second_of(at);
            if let Some(sec) = self.lock().timeline.get_mut(s) {
                sec.dropped += 1;
            }
        }
    }

    /// An iteration scheduled `at` starts now, run by goose user `user`.
    pub fn begin(&self, user: usize, at: Instant) {
        let now = Instant::now();
        let (lag_us, active) = self.busy(user, at, now);
        self.started.fetch_add(1, Ordering::Relaxed);
        let s = self.second_of(now);
        let mut m = self.lock();
        m.start_lag.saturating_record(lag_us.max(1));
        m.active_max = m.active_max.max(active);
        if let Some(sec) = m.timeline.get_mut(s) {
            sec.started += 1;
            sec.active_max = sec.active_max.max(active);
        }
    }

    /// A resume left for `at` starts now, run by goose user `user` (its
    /// first request is charged the lag, as an iteration's is).
    pub fn begin_resume(&self, user: usize, at: Instant) {
        let (lag_us, active) = self.busy(user, at, Instant::now());
        if let Some(r) = &self.resumes {
            r.resumed.fetch_add(1, Ordering::Relaxed);
        }
        let mut m = self.lock();
        m.resume_lag.saturating_record(lag_us.max(1));
        m.active_max = m.active_max.max(active);
    }

    /// User `user` starts work due `at`: its lag (charged to its next
    /// request) and how many are busy now, this one included.
    fn busy(&self, user: usize, at: Instant, now: Instant) -> (u64, u64) {
        let lag_us = now.saturating_duration_since(at).as_micros() as u64;
        if let Some(slot) = self.lags_us.get(user) {
            slot.store(lag_us, Ordering::Relaxed);
        }
        (lag_us, self.active.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// The resume user `user` ran ended.
    pub fn finish_resume(&self, user: usize) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        if let Some(slot) = self.lags_us.get(user) {
            slot.store(0, Ordering::Relaxed);
        }
    }

    /// The iteration scheduled `at` ended.
    pub fn finish(&self, user: usize, at: Instant) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        self.completed.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = self.lags_us.get(user) {
            slot.store(0, Ordering::Relaxed);
        }
        let us = at.elapsed().as_micros() as u64;
        self.lock()
            .iteration
            .saturating_record(us.clamp(1, crate::record::LATENCY_US_MAX));
    }

    /// The lag the next request of goose user `user` is charged (once).
    pub fn take_lag_us(&self, user: usize) -> u64 {
        self.lags_us
            .get(user)
            .map_or(0, |s| s.swap(0, Ordering::Relaxed))
    }

    /// Iterations running now.
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    /// Started and dropped so far (progress lines).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.started.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    pub fn figures(&self) -> OpenFigures {
        let m = self.lock();
        let scheduled = self.schedule.at_us.len() as u64;
        let started = self.started.load(Ordering::Relaxed);
        OpenFigures {
            plan: self.schedule.plan.clone(),
            max_users: self.max_users,
            late_ms: self.late.as_millis() as u64,
            scheduled,
            started,
            dropped: self.dropped.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            achieved_pct: 100.0 * started as f64 / scheduled.max(1) as f64,
            iteration: Percentiles::of(&m.iteration),
            start_lag: Percentiles::of(&m.start_lag),
            active_max: m.active_max,
            timeline: m.timeline.clone(),
            resumed: self
                .resumes
                .as_ref()
                .map_or(0, |r| r.resumed.load(Ordering::Relaxed)),
            resumes_refused: self
                .resumes
                .as_ref()
                .map_or(0, |r| r.refused.load(Ordering::Relaxed)),
            resume_lag: Percentiles::of(&m.resume_lag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages(s: &str) -> Vec<Stage> {
        parse_stages(s).expect("parses")
    }

    #[test]
    fn a_constant_rate_schedules_rate_times_duration_evenly() {
        let s = Schedule::build(&ArrivalPlan::constant(100.0, Duration::from_secs(3))).unwrap();
        assert_eq!(s.at_us.len(), 300);
        assert_eq!(s.at_us[0], 0);
        assert_eq!(s.at_us[1], 10_000);
        assert_eq!(s.per_second(), vec![100, 100, 100]);
    }

    #[test]
    fn a_ramp_schedules_the_area_under_its_rate() {
        // 0 -> 100/s over 2 s: 100 arrivals, a quarter of them in the first second.
        let plan = ArrivalPlan::Stages {
            start_per_s: 0.0,
            stages: stages("2s:100"),
        };
        let s = Schedule::build(&plan).unwrap();
        assert_eq!(s.at_us.len(), 100);
        let per = s.per_second();
        assert_eq!(per, vec![25, 75], "{per:?}");
        assert!(s.at_us.windows(2).all(|w| w[0] <= w[1]));
        // k6's example shape: up, hold, down to 0.
        let plan = ArrivalPlan::Stages {
            start_per_s: 0.0,
            stages: stages("1s:100,2s:100,1s:0"),
        };
        let s = Schedule::build(&plan).unwrap();
        assert_eq!(s.at_us.len(), 50 + 200 + 50);
        assert_eq!(s.duration_ms, 4000);
    }

    #[test]
    fn poisson_arrivals_repeat_with_their_seed_and_stay_in_the_window() {
        let plan = |seed| ArrivalPlan::Poisson {
            count: 1000,
            window_ms: 2000,
            seed,
        };
        let a = Schedule::build(&plan(1)).unwrap();
        assert_eq!(a, Schedule::build(&plan(1)).unwrap());
        assert_ne!(a.at_us, Schedule::build(&plan(2)).unwrap().at_us);
        assert_eq!(a.at_us.len(), 1000);
        assert!(a.at_us.iter().all(|t| *t < 2_000_000));
        let per = a.per_second();
        assert!(per.iter().all(|n| (400..600).contains(n)), "{per:?}");
    }

    #[test]
    fn bad_plans_are_refused_with_a_reason() {
        for bad in ["", "30s", "x:10", "30s:-1", "30s:ten", "0s:10", "10s:100,"] {
            assert!(parse_stages(bad).is_err(), "{bad:?} accepted");
        }
        for bad in ["0", "-3", "nan", "inf", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
        let none = ArrivalPlan::Stages {
            start_per_s: 0.0,
            stages: stages("10s:0"),
        };
        assert!(Schedule::build(&none).unwrap_err().contains("no iteration"));
        let huge = ArrivalPlan::constant(1e6, Duration::from_secs(3600));
        assert!(Schedule::build(&huge).unwrap_err().contains("more than"));
        let short = ArrivalPlan::Poisson {
            count: 10,
            window_ms: 0,
            seed: 1,
        };
        assert!(Schedule::build(&short).unwrap_err().contains("tick"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_schedule_starts_when_the_last_user_is_up() {
        let s = Schedule::build(&ArrivalPlan::constant(10.0, Duration::from_secs(1))).unwrap();
        let run = std::sync::Arc::new(OpenRun::new(s, Duration::from_millis(100), 2));
        let first = tokio::spawn({
            let run = run.clone();
            async move { run.arrive().await }
        });
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!first.is_finished(), "one of two users up: still waiting");
        let at = Instant::now();
        run.arrive().await;
        first.await.unwrap();
        assert_eq!(run.next(), Next::Run { index: 0, at });
    }

    #[tokio::test(start_paused = true)]
    async fn an_iteration_no_user_could_start_in_time_is_dropped() {
        let s = Schedule::build(&ArrivalPlan::constant(10.0, Duration::from_secs(1))).unwrap();
        let origin = Instant::now();
        let run = OpenRun::new(s, Duration::from_millis(100), 2);
        run.start(origin);
        // On time: iteration 0 at the origin.
        assert_eq!(
            run.next(),
            Next::Run {
                index: 0,
                at: origin
            }
        );
        run.begin(0, origin);
        // 450 ms later: iterations 1..=3 (100, 200, 300 ms) are over 100 ms late.
        tokio::time::advance(Duration::from_millis(450)).await;
        let Next::Run { index, .. } = run.next() else {
            panic!("schedule not used up");
        };
        assert_eq!(index, 4, "iteration at 400 ms is 50 ms late: still runs");
        assert_eq!(run.counts(), (1, 3));
        run.begin(1, origin + Duration::from_millis(400));
        assert_eq!(run.take_lag_us(1), 50_000);
        assert_eq!(run.take_lag_us(1), 0, "charged once");
        run.finish(0, origin);
        let f = run.figures();
        assert_eq!(
            (f.scheduled, f.started, f.dropped, f.completed),
            (10, 2, 3, 1)
        );
        assert_eq!(f.timeline[0].dropped, 3);
        assert_eq!(f.active_max, 2);
        assert!(
            (f.iteration.p50_ms - 450.0).abs() < 1.0,
            "{:?}",
            f.iteration
        );
        for _ in 5..10 {
            assert!(matches!(run.next(), Next::Run { .. }));
        }
        assert_eq!(run.next(), Next::Done);
    }

    #[tokio::test(start_paused = true)]
    async fn a_resume_left_for_later_is_taken_before_a_later_arrival() {
        // Arrivals at 0, 100, ..., 900 ms.
        let s = Schedule::build(&ArrivalPlan::constant(10.0, Duration::from_secs(1))).unwrap();
        let origin = Instant::now();
        let run = OpenRun::new(s, Duration::from_millis(100), 4).with_resumes();
        run.start(origin);
        assert_eq!(
            run.next(),
            Next::Run {
                index: 0,
                at: origin
            }
        );
        run.begin(0, origin);
        // Iteration 0 leaves its next step for 150 ms and ends.
        let at = origin + Duration::from_millis(150);
        assert!(run.resume_at(at, 7));
        run.finish(0, origin);
        // At 95 ms: arrival 1 (100 ms) is the earliest and within the horizon.
        tokio::time::advance(Duration::from_millis(95)).await;
        let Next::Run { index: 1, .. } = run.next() else {
            panic!("arrival 1 first")
        };
        // At 140 ms: the resume (150 ms) comes before arrival 2 (200 ms).
        tokio::time::advance(Duration::from_millis(45)).await;
        assert_eq!(run.next(), Next::Resume { key: 7, at });
        // Nothing due within the horizon now: wait, not claim arrival 2.
        let Next::Wait { until } = run.next() else {
            panic!("nothing due yet")
        };
        assert_eq!(
            until,
            origin + Duration::from_millis(180),
            "20 ms before arrival 2"
        );
        tokio::time::advance(Duration::from_millis(10)).await;
        run.begin_resume(1, at);
        assert_eq!(run.take_lag_us(1), 0, "started on time");
        run.finish_resume(1);
        let f = run.figures();
        assert_eq!((f.resumed, f.started, f.completed), (1, 1, 1));
        // Without resumes a run never waits: it claims the next arrival.
        let s = Schedule::build(&ArrivalPlan::constant(10.0, Duration::from_secs(1))).unwrap();
        let plain = OpenRun::new(s, Duration::from_millis(100), 1);
        plain.start(Instant::now());
        let _ = plain.next();
        assert!(matches!(plain.next(), Next::Run { index: 1, .. }));
        assert!(
            !plain.resume_at(Instant::now(), 1),
            "no resumes in a plain run"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_with_resumes_ends_only_when_nothing_is_left_or_running() {
        let s = Schedule::build(&ArrivalPlan::constant(1.0, Duration::from_secs(1))).unwrap();
        let origin = Instant::now();
        let run = OpenRun::new(s, Duration::from_millis(100), 1).with_resumes();
        run.start(origin);
        assert!(matches!(run.next(), Next::Run { index: 0, .. }));
        run.begin(0, origin);
        // The only arrival runs: the schedule is used up but it may leave a resume.
        assert!(matches!(run.next(), Next::Wait { .. }));
        run.resume_at(origin + Duration::from_secs(2), 1);
        run.finish(0, origin);
        assert!(matches!(run.next(), Next::Wait { .. }), "a resume is left");
        let waited = Instant::now();
        run.wait(waited + Duration::from_secs(10)).await;
        assert_eq!(
            Instant::now(),
            waited,
            "the push woke a user (kept for the next waiter)"
        );
        run.wait(waited + Duration::from_secs(10)).await;
        assert_eq!(
            Instant::now(),
            waited + Duration::from_secs(10),
            "no push: the full wait"
        );
        assert!(matches!(run.next(), Next::Resume { key: 1, .. }));
        assert_eq!(run.next(), Next::Done);
    }
}
