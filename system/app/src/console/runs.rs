//! Harness runs started from the operations console: a bounded
//! `ticketing-load` run against this very system, or a bounded
//! `ticketing-sim` sweep, as a child process — one at a time, killed at its
//! time bound, at a stop, or when the system shuts down. Its output lines
//! are kept (the last [`LINES_MAX`]) for the page to show as they come;
//! when it ends, `ticketing-report` renders its HTML report into the run's
//! folder. The binaries are the ones built beside `ticketing` (or
//! `console.bin_dir`). Targets are never typed in: a load run gets this
//! system's own gateway and internal URLs.
//!
//! Layer: composition root (the console); imports the settings only.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_domain::ports::Clock;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio_util::sync::CancellationToken;

/// Output lines kept per run.
pub const LINES_MAX: usize = 400;
/// Finished runs listed.
pub const HISTORY_MAX: usize = 20;
/// Bounds of what a page may ask for.
pub const DURATION_S_MAX: u32 = 300;
pub const USERS_MAX: u32 = 2_000;
pub const RATE_MAX: u32 = 2_000;
pub const SEEDS_MAX: u32 = 10;
/// Time a run may take beyond its duration (ramp, audit, settling).
const GRACE_S: u64 = 180;
/// A simulation sweep's bound.
const SIM_BOUND_S: u64 = 600;
/// The report's bound.
const REPORT_BOUND_S: u64 = 120;

/// What a page asks to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum RunSpec {
    /// A load run on this system: closed model with `users`, or open model
    /// at `arrivalRate` iterations per second.
    #[serde(rename_all = "camelCase")]
    Load {
        scenario: String,
        users: Option<u32>,
        arrival_rate: Option<u32>,
        duration_s: u32,
    },
    /// A simulation sweep: one fault plan (or `all`), seeds 1..=`seeds`.
    #[serde(rename_all = "camelCase")]
    Sim { plan: String, seeds: u32 },
}

/// Scenarios a console run may use.
pub const SCENARIOS: &[&str] = &["mix", "rush", "purchase", "browse", "onsale"];

impl RunSpec {
    /// The spec within its bounds, or why not (one sentence).
    pub fn check(&self) -> Result<(), String> {
        match self {
            RunSpec::Load {
                scenario,
                users,
                arrival_rate,
                duration_s,
            } => {
                if !SCENARIOS.contains(&scenario.as_str()) {
                    return Err(format!("scenario must be one of {}", SCENARIOS.join(", ")));
                }
                if !(1..=DURATION_S_MAX).contains(duration_s) {
                    return Err(format!("durationS must be 1 to {DURATION_S_MAX}"));
                }
                match (users, arrival_rate) {
                    (Some(_), Some(_)) => Err("give users or arrivalRate, not both".into()),
                    (Some(u), None) if !(1..=USERS_MAX).contains(u) => {
                        Err(format!("users must be 1 to {USERS_MAX}"))
                    }
                    (None, Some(r)) if !(1..=RATE_MAX).contains(r) => {
                        Err(format!("arrivalRate must be 1 to {RATE_MAX} per second"))
                    }
                    _ => Ok(()),
                }
            }
            RunSpec::Sim { plan, seeds } => {
                let name_ok = !plan.is_empty()
                    && plan.len() <= 64
                    && plan
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !name_ok {
                    return Err("plan must be a plan name of faults/plans (or all)".into());
                }
                if !(1..=SEEDS_MAX).contains(seeds) {
                    return Err(format!("seeds must be 1 to {SEEDS_MAX}"));
                }
                Ok(())
            }
        }
    }

    /// The longest the run may take before it is killed.
    fn bound(&self) -> Duration {
        match self {
            RunSpec::Load { duration_s, .. } => {
                Duration::from_secs(u64::from(*duration_s) + GRACE_S)
            }
            RunSpec::Sim { .. } => Duration::from_secs(SIM_BOUND_S),
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    Running,
    /// Exit code 0.
    Passed,
    /// Exit code 1: the gate (or a sweep) failed.
    Failed,
    Stopped,
    TimedOut,
    /// Any other exit (bad input, a crash).
    Error,
}

/// A run as the page sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    pub id: String,
    pub spec: RunSpec,
    pub state: RunState,
    pub started_at_ms: u64,
    pub ended_at_ms: Option<u64>,
    pub exit_code: Option<i32>,
    /// The run's verdict line (load: `verdict.txt`), when it wrote one.
    pub verdict: Option<String>,
    /// Whether its HTML report was rendered (`…/runs/{id}/report`).
    pub report: bool,
    pub lines: VecDeque<String>,
}

/// Where runs find their binaries, write their folders and aim.
#[derive(Debug, Clone)]
pub struct RunsConfig {
    pub bin_dir: PathBuf,
    pub dir: PathBuf,
    pub public_url: String,
    pub internal_url: String,
    pub jwt_secret: String,
    pub service_token: Option<String>,
}

/// The console's runs: the one running and the recent ones.
#[derive(Debug)]
pub struct Runs {
    config: RunsConfig,
    shutdown: CancellationToken,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    /// Stops the newest run (the last of `history`).
    stop_newest: Option<CancellationToken>,
    history: VecDeque<Arc<Mutex<RunView>>>,
}

impl Inner {
    /// The newest run, when it is still running.
    fn running(&self) -> Option<&Arc<Mutex<RunView>>> {
        self.history
            .back()
            .filter(|v| lock_view(v).state == RunState::Running)
    }
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Invalid(String),
    #[error("run {0} is still running: stop it or wait for it")]
    Busy(String),
    #[error("{0}")]
    Unavailable(String),
}

impl Runs {
    pub fn new(config: RunsConfig, shutdown: CancellationToken, clock: Arc<dyn Clock>) -> Self {
        Runs {
            config,
            shutdown,
            clock,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The recent runs, newest first (the running one included).
    pub fn list(&self) -> Vec<RunView> {
        let inner = self.lock();
        inner.history.iter().rev().map(snapshot).collect()
    }

    pub fn get(&self, id: &str) -> Option<RunView> {
        self.find(id).map(|r| snapshot(&r))
    }

    /// The run's folder (its report and files).
    pub fn folder(&self, id: &str) -> Option<PathBuf> {
        self.find(id).map(|_| self.config.dir.join(id))
    }

    fn find(&self, id: &str) -> Option<Arc<Mutex<RunView>>> {
        let inner = self.lock();
        inner
            .history
            .iter()
            .find(|r| lock_view(r).id == id)
            .cloned()
    }

    /// Stops the running run `id`; false when it is not running.
    pub fn stop(&self, id: &str) -> bool {
        let inner = self.lock();
        match (inner.running(), &inner.stop_newest) {
            (Some(view), Some(stop)) if lock_view(view).id == id => {
                stop.cancel();
                true
            }
            _ => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `spec` (checked, one at a time) and returns its first view.
    pub fn start(self: &Arc<Self>, spec: RunSpec) -> Result<RunView, StartError> {
        spec.check().map_err(StartError::Invalid)?;
        let (program, report_bin) = self.binaries(&spec)?;
        let mut inner = self.lock();
        if let Some(view) = inner.running() {
            return Err(StartError::Busy(lock_view(view).id.clone()));
        }
        inner.next += 1;
        let id = format!("run-{}-{}", self.clock.now_ms(), inner.next);
        let folder = self.config.dir.join(&id);
        std::fs::create_dir_all(&folder).map_err(|e| {
            StartError::Unavailable(format!("cannot create {}: {e}", folder.display()))
        })?;
        let child = self
            .command(&program, &spec, &folder)
            .spawn()
            .map_err(|e| {
                StartError::Unavailable(format!("cannot start {}: {e}", program.display()))
            })?;
        let view = Arc::new(Mutex::new(RunView {
            id,
            spec: spec.clone(),
            state: RunState::Running,
            started_at_ms: self.clock.now_ms(),
            ended_at_ms: None,
            exit_code: None,
            verdict: None,
            report: false,
            lines: VecDeque::new(),
        }));
        let stop = self.shutdown.child_token();
        inner.stop_newest = Some(stop.clone());
        inner.history.push_back(view.clone());
        while inner.history.len() > HISTORY_MAX {
            inner.history.pop_front();
        }
        drop(inner);
        let first = snapshot(&view);
        let runs = self.clone();
        tokio::spawn(async move {
            runs.supervise(child, view, stop, spec, folder, report_bin)
                .await
        });
        Ok(first)
    }

    /// The run's program and the report renderer, or why they are missing.
    fn binaries(&self, spec: &RunSpec) -> Result<(PathBuf, PathBuf), StartError> {
        let name = match spec {
            RunSpec::Load { .. } => "ticketing-load",
            RunSpec::Sim { .. } => "ticketing-sim",
        };
        let found = |n: &str| {
            let p = self.config.bin_dir.join(n);
            p.is_file().then_some(p).ok_or_else(|| {
                StartError::Unavailable(format!(
                    "{n} is not in {} (build it: cargo build --release -p ticketing-load -p ticketing-sim -p ticketing-reports; or set console.bin_dir)",
                    self.config.bin_dir.display()
                ))
            })
        };
        Ok((found(name)?, found("ticketing-report")?))
    }

    fn command(&self, program: &Path, spec: &RunSpec, folder: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(run_args(spec, &self.config, folder))
            .env("TICKETING_AUTH__JWT_SECRET", &self.config.jwt_secret)
            .env_remove("TICKETING_SERVICE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(t) = &self.config.service_token {
            cmd.env("TICKETING_SERVICE_TOKEN", t);
        }
        cmd
    }

    /// Follows the run to its end, then renders its report.
    async fn supervise(
        self: Arc<Self>,
        mut child: Child,
        view: Arc<Mutex<RunView>>,
        stop: CancellationToken,
        spec: RunSpec,
        folder: PathBuf,
        report_bin: PathBuf,
    ) {
        let output = tokio::spawn(follow_output(
            child.stdout.take(),
            child.stderr.take(),
            view.clone(),
        ));
        let ended = tokio::select! {
            status = child.wait() => status.ok().and_then(|s| s.code()).map_or(RunState::Error, state_of),
            () = stop.cancelled() => RunState::Stopped,
            () = tokio::time::sleep(spec.bound()) => RunState::TimedOut,
        };
        let _ = child.kill().await;
        let code = child.try_wait().ok().flatten().and_then(|s| s.code());
        let _ = tokio::time::timeout(Duration::from_secs(5), output).await;
        let verdict = verdict_line(&spec, &folder, &view);
        let report = match ended {
            RunState::Stopped | RunState::TimedOut => false,
            _ => render_report(&report_bin, &spec, &folder, &view).await,
        };
        let mut v = lock_view(&view);
        v.state = ended;
        v.exit_code = code;
        v.verdict = verdict;
        v.report = report;
        v.ended_at_ms = Some(self.clock.now_ms());
    }
}

/// The run's verdict in one line: the load gate's (`verdict.txt`), or the
/// sweep's count of runs (its pass or fail is the run's state).
fn verdict_line(spec: &RunSpec, folder: &Path, view: &Mutex<RunView>) -> Option<String> {
    match spec {
        RunSpec::Load { .. } => std::fs::read_to_string(folder.join("load/verdict.txt"))
            .ok()?
            .lines()
            .find(|l| l.starts_with("SLO gate:"))
            .map(str::to_owned),
        RunSpec::Sim { .. } => {
            let v = lock_view(view);
            v.lines.iter().find(|l| l.contains(" runs in ")).cloned()
        }
    }
}

/// The run's state from its exit code (0 passed, 1 failed the gate).
fn state_of(code: i32) -> RunState {
    match code {
        0 => RunState::Passed,
        1 => RunState::Failed,
        _ => RunState::Error,
    }
}

fn lock_view(view: &Mutex<RunView>) -> std::sync::MutexGuard<'_, RunView> {
    view.lock().unwrap_or_else(|e| e.into_inner())
}

fn snapshot(view: &Arc<Mutex<RunView>>) -> RunView {
    lock_view(view).clone()
}

fn push_line(view: &Mutex<RunView>, line: String) {
    let mut v = lock_view(view);
    v.lines.push_back(line);
    while v.lines.len() > LINES_MAX {
        v.lines.pop_front();
    }
}

/// Reads the child's stdout and stderr lines into the view until both end.
async fn follow_output(
    out: Option<ChildStdout>,
    err: Option<ChildStderr>,
    view: Arc<Mutex<RunView>>,
) {
    tokio::join!(follow_pipe(out, &view), follow_pipe(err, &view));
}

/// One pipe's lines into the view, until it ends.
async fn follow_pipe(pipe: Option<impl tokio::io::AsyncRead + Unpin>, view: &Mutex<RunView>) {
    let Some(pipe) = pipe else { return };
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        push_line(view, line);
    }
}

/// The command line of a run.
fn run_args(spec: &RunSpec, c: &RunsConfig, folder: &Path) -> Vec<String> {
    let s = |x: &str| x.to_owned();
    match spec {
        RunSpec::Load {
            scenario,
            users,
            arrival_rate,
            duration_s,
        } => {
            let mut a = vec![
                s("--host"),
                c.public_url.clone(),
                s("--internal-url"),
                c.internal_url.clone(),
                s("--scenario"),
                scenario.clone(),
                s("--run-time"),
                format!("{duration_s}s"),
                s("--progress-every"),
                s("1s"),
                s("--out"),
                folder.join("load").display().to_string(),
            ];
            if scenario == "onsale" {
                let rate = arrival_rate.unwrap_or(100);
                a.extend([
                    s("--seats"),
                    s("1000"),
                    s("--arrival-window"),
                    format!("{duration_s}s"),
                ]);
                a.extend([
                    s("--arrivals"),
                    (u64::from(rate) * u64::from(*duration_s)).to_string(),
                ]);
            } else if let Some(r) = arrival_rate {
                a.extend([s("--arrival-rate"), r.to_string()]);
            }
            if let Some(u) = users {
                a.extend([s("--users"), u.to_string()]);
            }
            a
        }
        RunSpec::Sim { plan, seeds } => vec![
            s("--plan"),
            plan.clone(),
            s("--seeds"),
            seeds.to_string(),
            s("--json"),
            folder.join("sim.json").display().to_string(),
            s("--trace-dir"),
            folder.join("traces").display().to_string(),
        ],
    }
}

/// `ticketing-report` over the run's results; true when it wrote the page.
async fn render_report(
    bin: &Path,
    spec: &RunSpec,
    folder: &Path,
    view: &Arc<Mutex<RunView>>,
) -> bool {
    let input = match spec {
        RunSpec::Load { .. } => [
            "--load".to_owned(),
            folder.join("load").display().to_string(),
        ],
        RunSpec::Sim { .. } => [
            "--sim".to_owned(),
            folder.join("sim.json").display().to_string(),
        ],
    };
    let mut cmd = Command::new(bin);
    cmd.arg("--out")
        .arg(folder.join("report"))
        .args(input)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let run = async { cmd.output().await };
    match tokio::time::timeout(Duration::from_secs(REPORT_BOUND_S), run).await {
        Ok(Ok(out)) => {
            for line in String::from_utf8_lossy(&out.stderr).lines().take(20) {
                push_line(view, format!("report: {line}"));
            }
            folder.join("report/index.html").is_file()
        }
        Ok(Err(e)) => {
            push_line(view, format!("report: cannot run {}: {e}", bin.display()));
            false
        }
        Err(_) => {
            push_line(
                view,
                format!("report: not written within {REPORT_BOUND_S} s"),
            );
            false
        }
    }
}
