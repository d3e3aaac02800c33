//! `ticketing-sim`: runs the plan × seed matrix in parallel, prints a table
//! and exits non-zero on any violation (or, with `--bug`, when the bug was
//! NOT caught).

use anyhow::Context as _;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use ticketing_domain::probe::Probe;
use ticketing_faults::{FaultPlan, plan_names_for};
use ticketing_invariants::history::to_jsonl;
use ticketing_sim::coverage::{self, CoverageRow};
use ticketing_sim::results::{RESULTS_VERSION, RunResult, SweepResults, ZooRow, witness_path};
use ticketing_sim::triage;
use ticketing_sim::world::SimConfig;
use ticketing_sim::zoo::{self, Bug};
use ticketing_sim::{RunReport, run_one};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ticketing-sim",
    about = "Deterministic simulation of the ticketing system under faults"
)]
struct Args {
    /// Seeds per plan: 1..=N, or N seeds from --seed (default 5; 1 with --seed).
    #[arg(long)]
    seeds: Option<u64>,
    /// A plan name from faults/plans, `chaos`, or `all`.
    #[arg(long, default_value = "all")]
    plan: String,
    /// A plan from a file instead (a shrunk repro, a plan of your own):
    /// replaces --plan.
    #[arg(long)]
    plan_file: Option<PathBuf>,
    /// Shrink a failing run (one --plan or --plan-file, --seed, maybe
    /// --bug): fewer fault steps, shorter faults, fewer users and seats,
    /// still failing the same invariant; writes the plan file that replays it.
    #[arg(long)]
    shrink: bool,
    /// The most runs --shrink makes (per failure).
    #[arg(long, default_value_t = 60)]
    shrink_trials: u32,
    /// After a sweep, shrink up to this many failing runs (without a bug),
    /// one per failure group, and link each shrunk plan in the results (the
    /// nightly's setting).
    #[arg(long, default_value_t = 0)]
    shrink_failures: usize,
    /// A seed fleet: run rounds of seeds over every plan (and `swarm`)
    /// until this many wall seconds have passed, instead of --seeds.
    #[arg(long)]
    budget_s: Option<u64>,
    /// Failure signatures already known (`invariant<TAB>signature` lines):
    /// their groups are reported as known, every other as new.
    #[arg(long)]
    known_failures: Option<PathBuf>,
    /// The first seed (alone, unless --seeds says how many).
    #[arg(long)]
    seed: Option<u64>,
    /// Run every seed twice and fail unless both traces hash the same.
    #[arg(long)]
    check_determinism: bool,
    /// Run with a bug from the zoo; exit non-zero if it is NOT caught.
    /// `all` runs every bug on its own plan and seeds (the zoo table).
    #[arg(long)]
    bug: Option<String>,
    /// Print the zoo's bug names, one per line, and exit.
    #[arg(long)]
    list_bugs: bool,
    /// Write machine-readable results here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The standard scenario (200 users, 1,000 seats, 120 s) instead of the small one.
    #[arg(long)]
    standard: bool,
    /// The waiting room's world: the rush event behind a queue, most users
    /// arriving before the on-sale time, some scalpers (300 users for 40
    /// seats; with --standard 2,000 users for 200 seats).
    #[arg(long)]
    queued: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Internal: run exactly one seed in this process and print its report
    /// as JSON. The sweep runs every seed in a process of its own: tokio's
    /// task ids are process-global, so seeds sharing a process would not
    /// replay exactly.
    #[arg(long, hide = true)]
    worker: bool,
    /// Where failing runs' traces (and the smallest failing sub-history of
    /// each seat the history check faulted) are written.
    #[arg(long, default_value = "target/sim-traces")]
    trace_dir: PathBuf,
    /// Write every run's client history here as JSON lines, one event per
    /// line (`<plan>-<seed>[-<bug>].history.jsonl`, a Jepsen-style history).
    #[arg(long)]
    history_dir: Option<PathBuf>,
}

/// A job's report and, with `--check-determinism`, the second run's trace hash.
type JobResult = anyhow::Result<(RunReport, Option<String>)>;

/// One seed of one plan, maybe with a bug.
type Job = (FaultPlan, u64, Option<Bug>);

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.list_bugs {
        for b in zoo::ALL {
            println!("{}  {}", b.name(), b.description());
        }
        return Ok(());
    }
    let zoo_mode = args.bug.as_deref() == Some("all");
    let bug = match &args.bug {
        Some(_) if zoo_mode => None,
        Some(name) => Some(
            Bug::parse(name)
                .with_context(|| format!("unknown bug {name:?}; --list-bugs shows the zoo"))?,
        ),
        None => None,
    };
    let cfg = match (args.standard, args.queued) {
        (true, false) => SimConfig::standard(),
        (false, false) => SimConfig::small(),
        (true, true) => SimConfig::queued_standard(),
        (false, true) => SimConfig::queued(),
    };
    // A plan file may size its own world (a shrunk repro does).
    let cfg = match &args.plan_file {
        Some(f) => cfg.sized(FaultPlan::from_file(f)?.world),
        None => cfg,
    };
    if args.worker {
        let seed = args.seed.context("--worker needs --seed")?;
        let plan = load_plan(&args, seed)?;
        let report = run_one(&plan, seed, &cfg, bug)?;
        if let Some(dir) = &args.history_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join(file_name(&report, "history.jsonl"));
            std::fs::write(&path, to_jsonl(&report.ops.ops, report.ops.origin_ms))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    if args.shrink {
        return shrink_run(&args, bug, &cfg);
    }
    let (jobs, plans, seeds) = jobs(&args, bug, zoo_mode)?;
    let threads = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    println!(
        "ticketing-sim: {plans} plan(s) x {seeds} seed(s){}, {} users, {} seats, {threads} thread(s)",
        bug.map(|b| format!(", bug {}", b.name()))
            .unwrap_or_default(),
        cfg.users,
        cfg.rows * cfg.cols,
    );
    let started = Instant::now();
    let (jobs, results) = match args.budget_s {
        Some(budget_s) => run_fleet(&args, bug, threads, budget_s)?,
        None => {
            let results = run_jobs(&jobs, &args, threads);
            (jobs, results)
        }
    };
    let wall = started.elapsed();
    let mut tally = tally(results, &args);
    print_failures(&tally.reports, &args);
    let sim_s = print_speed(&tally.reports, &args, wall);
    print_history(&tally.reports, &args);
    tally.shrunk = shrink_failures(&args, &jobs, &tally.reports, &cfg);
    if !zoo_mode {
        let known = match &args.known_failures {
            Some(f) => triage::read_known(
                &std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read {}", f.display()))?,
            ),
            None => Vec::new(),
        };
        tally.groups = triage::groups(&tally.reports, &known);
        print_groups(&tally.groups);
    }
    print_determinism(&tally.nondeterministic, &args);
    let zoo_rows = if zoo_mode {
        zoo_table(&tally.reports)
    } else {
        Vec::new()
    };
    let plans: Vec<FaultPlan> = jobs.iter().map(|(p, _, _)| p.clone()).collect();
    tally.coverage = coverage::table(&tally.reports, &plans, args.queued);
    let coverage = &tally.coverage;
    if !coverage.is_empty() {
        println!(
            "\ncoverage: the interesting states each plan's runs reached\n{}",
            coverage::render(coverage)
        );
    }
    if let Some(path) = &args.json {
        let doc = sweep_results(&args, &cfg, &jobs, &tally, &zoo_rows, wall, sim_s);
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    verdict(&tally, zoo_mode.then_some(zoo_rows.as_slice()), bug)?;
    coverage_verdict(&tally.coverage)
}

/// A declared state that no seed of its plan reached fails the sweep.
fn coverage_verdict(rows: &[CoverageRow]) -> anyhow::Result<()> {
    let missed = coverage::missed(rows);
    anyhow::ensure!(
        missed.is_empty(),
        "declared states never reached: {} (the fault did not reach the code it is for: \
         more seeds, or a plan that gets there)",
        missed.join(", ")
    );
    Ok(())
}

/// The matrix to run: every plan × seed, or each zoo bug on its own plan
/// and seeds. Also how many plans and seeds that is.
fn jobs(args: &Args, bug: Option<Bug>, zoo_mode: bool) -> anyhow::Result<(Vec<Job>, usize, usize)> {
    let plans: Vec<String> = if args.plan_file.is_some() {
        vec![args.plan.clone()]
    } else if args.plan == "all" {
        plan_names_for(args.queued)
            .into_iter()
            .map(str::to_owned)
            .collect()
    } else {
        vec![args.plan.clone()]
    };
    let first = args.seed.unwrap_or(1);
    let count = args
        .seeds
        .unwrap_or(if args.seed.is_some() { 1 } else { 5 });
    anyhow::ensure!(count > 0, "--seeds must be at least 1");
    let seeds: Vec<u64> = (first..first.saturating_add(count)).collect();
    let mut jobs: Vec<Job> = Vec::new();
    if zoo_mode {
        for b in zoo::ALL {
            let (plan, n) = b.caught_by();
            for s in 1..=n {
                jobs.push((FaultPlan::named(plan, s)?, s, Some(*b)));
            }
        }
    } else {
        for p in &plans {
            for &s in &seeds {
                let plan = load_plan_named(args, p, s)?;
                let unknown = coverage::unknown_states(&plan);
                anyhow::ensure!(
                    unknown.is_empty(),
                    "plan {p} declares states no probe marks: {} (known: {})",
                    unknown.join(", "),
                    Probe::ALL.map(Probe::as_str).join(", ")
                );
                jobs.push((plan, s, bug));
            }
        }
    }
    Ok((jobs, plans.len(), seeds.len()))
}

fn runs_per_job(args: &Args) -> usize {
    if args.check_determinism { 2 } else { 1 }
}

/// Runs every job, `threads` at a time, each seed in a process of its own;
/// results in job order.
fn run_jobs(jobs: &[Job], args: &Args, threads: usize) -> Vec<JobResult> {
    let bar = ProgressBar::new((jobs.len() * runs_per_job(args)) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {elapsed_precise}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, JobResult)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(jobs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(job) = jobs.get(i) else {
                        break;
                    };
                    let r = run_job(job, args, &bar);
                    bar.set_message(format!("{} seed {} done", job.0.name, job.1));
                    ticketing_sim::lock(&results).push((i, r));
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// One job, run twice with `--check-determinism` (both traces kept when
/// their hashes differ: the first differing line is the lead).
fn run_job((plan, seed, bug): &Job, args: &Args, bar: &ProgressBar) -> JobResult {
    let first = run_in_process(&plan.name, *seed, *bug, args)?;
    bar.inc(1);
    let second = args.check_determinism.then(|| {
        let again = run_in_process(&plan.name, *seed, *bug, args);
        bar.inc(1);
        match again {
            Ok(r) => {
                if r.trace_hash != first.trace_hash {
                    write_trace_as(&args.trace_dir, &first, "run1");
                    write_trace_as(&args.trace_dir, &r, "run2");
                }
                r.trace_hash
            }
            Err(e) => format!("error: {e}"),
        }
    });
    Ok((first, second))
}

/// The sweep's results, sorted into what passed, what failed and why.
struct Tally {
    reports: Vec<RunReport>,
    any_violation: bool,
    nondeterministic: Vec<String>,
    errors: Vec<String>,
    /// The coverage table (set once every run is in).
    coverage: Vec<CoverageRow>,
    /// `--shrink-failures`: by (plan, seed), the shrunk plan's path.
    shrunk: Vec<((String, u64), String)>,
    /// The failures by invariant and signature (not for the zoo).
    groups: Vec<triage::FailureGroup>,
}

/// Prints the table (one row per run) and sorts the results.
fn tally(results: Vec<JobResult>, args: &Args) -> Tally {
    println!(
        "\n{:<26} {:>6} {:>6} {:>9} {:>7} {:>9} {:>6}  violations",
        "plan", "seed", "result", "sim s", "orders", "confirmed", "sold"
    );
    let mut t = Tally {
        reports: Vec::new(),
        any_violation: false,
        nondeterministic: Vec::new(),
        errors: Vec::new(),
        coverage: Vec::new(),
        shrunk: Vec::new(),
        groups: Vec::new(),
    };
    for r in results {
        let (rep, second) = match r {
            Ok(x) => x,
            Err(e) => {
                println!("error: {e:#}");
                t.errors.push(format!("{e:#}"));
                continue;
            }
        };
        if let Some(h2) = second
            && h2 != rep.trace_hash
        {
            let line = format!("{} seed {}: {} vs {h2}", rep.plan, rep.seed, rep.trace_hash);
            t.nondeterministic.push(line);
        }
        println!(
            "{:<26} {:>6} {:>6} {:>9.1} {:>7} {:>9} {:>6}  {}",
            rep.plan,
            rep.seed,
            if rep.passed { "pass" } else { "FAIL" },
            rep.sim_ms as f64 / 1000.0,
            rep.orders,
            rep.confirmed,
            rep.sold_seats,
            rep.violations.len()
        );
        if !rep.passed {
            t.any_violation = true;
            write_trace(&args.trace_dir, &rep);
        }
        t.reports.push(rep);
    }
    t
}

/// Each failing run: its first violations, the command that replays it
/// and where its trace is.
fn print_failures(reports: &[RunReport], args: &Args) {
    for rep in reports.iter().filter(|r| !r.passed) {
        let bug = rep.bug.as_deref().map(|b| format!(" (bug {b})"));
        println!(
            "\n{} seed {}{}:",
            rep.plan,
            rep.seed,
            bug.unwrap_or_default()
        );
        for v in rep.violations.iter().take(5) {
            println!("  [{}] {}", v.invariant, v.detail);
        }
        if rep.violations.len() > 5 {
            println!("  … {} more", rep.violations.len() - 5);
        }
        println!("  repro: {}", rep.repro);
        println!(
            "  trace: {}",
            args.trace_dir.join(trace_name(rep)).display()
        );
    }
}

/// The sweep's speed line; returns the simulated seconds run.
fn print_speed(reports: &[RunReport], args: &Args, wall: std::time::Duration) -> f64 {
    let runs = reports.len() * runs_per_job(args);
    let sim_s: f64 = reports
        .iter()
        .map(|r| r.sim_ms as f64 / 1000.0)
        .sum::<f64>()
        * runs_per_job(args) as f64;
    let wall_s = wall.as_secs_f64().max(1e-9);
    println!(
        "\n{runs} runs in {:.1} s wall: {:.0} simulated s per wall s, {:.1} seeds per minute",
        wall.as_secs_f64(),
        sim_s / wall_s,
        runs as f64 * 60.0 / wall_s
    );
    sim_s
}

fn print_determinism(nondeterministic: &[String], args: &Args) {
    if !args.check_determinism {
        return;
    }
    if nondeterministic.is_empty() {
        println!("determinism: every seed gave the same trace hash twice");
        return;
    }
    println!(
        "determinism: FAILED (both traces in {})",
        args.trace_dir.display()
    );
    for n in nondeterministic {
        println!("  {n}");
    }
}

/// The zoo table: per bug, the first seed that caught it.
fn zoo_table(reports: &[RunReport]) -> Vec<ZooRow> {
    println!(
        "\n{:<28} {:<24} {:>6}  caught by seed",
        "bug", "plan", "seeds"
    );
    let mut rows = Vec::new();
    for b in zoo::ALL {
        let (plan, n) = b.caught_by();
        let first = reports
            .iter()
            .filter(|r| r.bug.as_deref() == Some(b.name()) && !r.passed)
            .map(|r| r.seed)
            .min();
        let shown = first.map_or_else(|| "NOT CAUGHT".to_owned(), |s| s.to_string());
        println!("{:<28} {:<24} {:>6}  {shown}", b.name(), plan, n);
        rows.push(ZooRow {
            bug: b.name().to_owned(),
            description: b.description().to_owned(),
            plan: plan.to_owned(),
            seeds: n,
            caught_by_seed: first,
            repro: first.map(|s| ticketing_sim::repro(plan, s, Some(*b))),
        });
    }
    rows
}

/// The machine-readable results (`--json`).
fn sweep_results(
    args: &Args,
    cfg: &SimConfig,
    jobs: &[Job],
    t: &Tally,
    zoo_rows: &[ZooRow],
    wall: std::time::Duration,
    sim_s: f64,
) -> SweepResults {
    SweepResults {
        version: RESULTS_VERSION,
        git_revision: git_revision(),
        scenario: scenario_name(args).to_owned(),
        users: cfg.users,
        seats: (cfg.rows * cfg.cols) as usize,
        plans: distinct(jobs.iter().map(|(p, _, _)| p.name.clone())),
        seeds: distinct(jobs.iter().map(|(_, s, _)| *s)),
        bug: args.bug.clone(),
        determinism_checked: args.check_determinism,
        nondeterministic: t.nondeterministic.clone(),
        errors: t.errors.clone(),
        wall_s: wall.as_secs_f64(),
        simulated_s: sim_s,
        run_count: t.reports.len() * runs_per_job(args),
        runs: t
            .reports
            .iter()
            .map(|r| {
                let trace = args.trace_dir.join(trace_name(r));
                let mut x = RunResult::of(r, Some(trace.display().to_string()));
                x.shrunk_plan = t
                    .shrunk
                    .iter()
                    .find(|((p, s), _)| *p == r.plan && *s == r.seed)
                    .map(|(_, path)| path.clone());
                x
            })
            .collect(),
        zoo: zoo_rows.to_vec(),
        coverage: t.coverage.clone(),
        groups: t.groups.clone(),
        budget_s: args.budget_s,
    }
}

/// Seeds run per round of the fleet, per worker thread.
const FLEET_SEEDS_PER_THREAD: u64 = 1;
/// The fleet stops here whatever the budget (a bound on its loop).
const FLEET_SEED_MAX: u64 = 10_000_000;

/// `--budget-s`: rounds of seeds over every plan (and `swarm`, in the
/// small and standard worlds) until the budget is spent; every job run.
fn run_fleet(
    args: &Args,
    bug: Option<Bug>,
    threads: usize,
    budget_s: u64,
) -> anyhow::Result<(Vec<Job>, Vec<JobResult>)> {
    let mut names: Vec<&str> = if args.plan == "all" {
        plan_names_for(args.queued)
    } else {
        vec![args.plan.as_str()]
    };
    if args.plan == "all" && !args.queued {
        names.push("swarm");
    }
    let started = Instant::now();
    let (mut jobs, mut results) = (Vec::new(), Vec::new());
    let mut next = args.seed.unwrap_or(1);
    let per_round = threads as u64 * FLEET_SEEDS_PER_THREAD;
    while started.elapsed().as_secs() < budget_s && next < FLEET_SEED_MAX {
        let mut round: Vec<Job> = Vec::new();
        for seed in next..next + per_round {
            for n in &names {
                round.push((FaultPlan::named(n, seed)?, seed, bug));
            }
        }
        next += per_round;
        results.extend(run_jobs(&round, args, threads));
        jobs.extend(round);
        let failed = results
            .iter()
            .filter(|r| matches!(r, Ok((rep, _)) if !rep.passed))
            .count();
        println!(
            "fleet: {} runs (seeds {}..{}), {failed} failing, {:.0} of {budget_s} s",
            jobs.len(),
            args.seed.unwrap_or(1),
            next - 1,
            started.elapsed().as_secs_f64()
        );
    }
    Ok((jobs, results))
}

/// The failure groups, new ones marked.
fn print_groups(groups: &[triage::FailureGroup]) {
    if groups.is_empty() {
        return;
    }
    let new = groups.iter().filter(|g| !g.known).count();
    println!("\nfailure groups: {} ({new} new)", groups.len());
    for g in groups {
        println!(
            "  {:<5} [{}] {} — {} run(s), first {} seed {}; smallest: {}",
            if g.known { "known" } else { "NEW" },
            g.invariant,
            g.signature,
            g.runs.len(),
            g.runs.first().map_or("", |r| r.0.as_str()),
            g.runs.first().map_or(0, |r| r.1),
            g.repro
        );
    }
}

/// The exit status: the zoo must catch every bug, a named bug must be
/// caught, a plain sweep must find nothing; errors and nondeterminism fail.
fn verdict(t: &Tally, zoo_rows: Option<&[ZooRow]>, bug: Option<Bug>) -> anyhow::Result<()> {
    let failed = !t.errors.is_empty() || !t.nondeterministic.is_empty();
    if let Some(rows) = zoo_rows {
        let missed = rows.iter().filter(|r| r.caught_by_seed.is_none()).count();
        anyhow::ensure!(missed == 0 && !failed, "{missed} zoo bug(s) NOT caught");
        println!("every bug in the zoo was caught");
        return Ok(());
    }
    match bug {
        Some(b) if t.any_violation && !failed => {
            println!("bug {} caught", b.name());
            Ok(())
        }
        Some(b) => anyhow::bail!("bug {} was NOT caught", b.name()),
        None if t.any_violation || failed => anyhow::bail!("simulation found violations"),
        None => Ok(()),
    }
}

/// The items in first-seen order, each once.
fn distinct<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// The commit the sweep ran (a failure is reproducible from seed + commit).
fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The world's name in the results.
fn scenario_name(args: &Args) -> &'static str {
    match (args.standard, args.queued) {
        (true, false) => "standard",
        (false, false) => "small",
        (true, true) => "queued-standard",
        (false, true) => "queued",
    }
}

/// Runs one seed in a child process (`--worker`) and reads its report.
fn run_in_process(
    plan: &str,
    seed: u64,
    bug: Option<Bug>,
    args: &Args,
) -> anyhow::Result<RunReport> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--worker", "--seed", &seed.to_string()]);
    match &args.plan_file {
        Some(f) => cmd.arg("--plan-file").arg(f),
        None => cmd.args(["--plan", plan]),
    };
    if let Some(b) = bug {
        cmd.args(["--bug", b.name()]);
    }
    if args.standard {
        cmd.arg("--standard");
    }
    if args.queued {
        cmd.arg("--queued");
    }
    if let Some(dir) = &args.history_dir {
        cmd.arg("--history-dir").arg(dir);
    }
    let out = cmd.output().context("cannot start a simulation worker")?;
    anyhow::ensure!(
        out.status.success(),
        "{plan} seed {seed} crashed: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("")
    );
    serde_json::from_slice(&out.stdout).context("unreadable worker report")
}

/// The plan `--plan-file` or `--plan` names, for `seed`.
fn load_plan(args: &Args, seed: u64) -> anyhow::Result<FaultPlan> {
    load_plan_named(args, &args.plan, seed)
}

fn load_plan_named(args: &Args, name: &str, seed: u64) -> anyhow::Result<FaultPlan> {
    Ok(match &args.plan_file {
        Some(f) => FaultPlan::from_file(f)?,
        None => FaultPlan::named(name, seed)?,
    })
}

/// `--shrink`: reduces one failing run and writes the plan that replays it.
fn shrink_run(args: &Args, bug: Option<Bug>, cfg: &SimConfig) -> anyhow::Result<()> {
    let seed = args.seed.context("--shrink needs --seed")?;
    anyhow::ensure!(
        args.plan != "all" || args.plan_file.is_some(),
        "--shrink needs one --plan NAME or --plan-file FILE"
    );
    let plan = load_plan(args, seed)?;
    let first = run_in_process(&plan.name, seed, bug, args)?;
    anyhow::ensure!(
        !first.violations.is_empty(),
        "{} seed {seed} passes: nothing to shrink",
        plan.name
    );
    shrink_one(args, &plan, &first, bug, cfg).map(|_| ())
}

/// Shrinks the failing run `first` of `plan`; the shrunk plan's path.
fn shrink_one(
    args: &Args,
    plan: &FaultPlan,
    first: &RunReport,
    bug: Option<Bug>,
    cfg: &SimConfig,
) -> anyhow::Result<PathBuf> {
    let seed = first.seed;
    let target = first
        .violations
        .first()
        .map(|v| v.invariant.clone())
        .unwrap_or_default();
    let base = match bug {
        Some(b) if b.needs_waiting_room() && cfg.waiting_room.is_none() => SimConfig::queued(),
        _ => cfg.clone(),
    }
    .sized(plan.world)
    .size();
    println!(
        "shrinking {} seed {seed}: {} steps, {} users, fails {target}; at most {} runs",
        plan.name,
        plan.steps.len(),
        base.users.unwrap_or(0),
        args.shrink_trials
    );
    let dir = args.trace_dir.join(file_name(first, "shrink"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut n = 0u32;
    let shrunk = ticketing_sim::shrink::shrink(plan, base, args.shrink_trials, |cand| {
        n += 1;
        let path = dir.join(format!("trial-{n}.toml"));
        std::fs::write(&path, cand.to_toml())?;
        let mut a = args.clone();
        a.plan_file = Some(path);
        let r = run_in_process(&cand.name, seed, bug, &a)?;
        let same = r.violations.iter().any(|v| v.invariant == target);
        println!(
            "  run {n:>3}: {} steps, heal {} ms, {} users: {}",
            cand.steps.len(),
            cand.heal_at_ms,
            cand.world.and_then(|w| w.users).or(base.users).unwrap_or(0),
            if same {
                "fails the same way"
            } else {
                "does not"
            }
        );
        Ok(same)
    })?;
    let out = args.trace_dir.join(file_name(first, "shrunk.toml"));
    std::fs::write(&out, shrunk.plan.to_toml())
        .with_context(|| format!("cannot write {}", out.display()))?;
    let size = shrunk.plan.world.unwrap_or(base);
    println!(
        "shrunk in {} runs: {} → {} steps, heal {} → {} ms, {} → {} users, {} → {} rows",
        shrunk.trials,
        plan.steps.len(),
        shrunk.plan.steps.len(),
        plan.heal_at_ms,
        shrunk.plan.heal_at_ms,
        base.users.unwrap_or(0),
        size.users.unwrap_or(0),
        base.rows.unwrap_or(0),
        size.rows.unwrap_or(0)
    );
    for l in &shrunk.log {
        println!("  kept: {l}");
    }
    let bug_arg = bug
        .map(|b| format!(" --bug {}", b.name()))
        .unwrap_or_default();
    println!("plan written to {}", out.display());
    println!(
        "replay: cargo run --release -p ticketing-sim -- --plan-file {} --seed {seed}{bug_arg}",
        out.display()
    );
    Ok(out)
}

/// `--shrink-failures N`: a sweep's (not the zoo's) failing runs shrunk, one
/// per failure group (its smallest run), at most N; by (plan, seed), where
/// each shrunk plan was written.
fn shrink_failures(
    args: &Args,
    jobs: &[Job],
    reports: &[RunReport],
    cfg: &SimConfig,
) -> Vec<((String, u64), String)> {
    let mut out = Vec::new();
    if args.bug.as_deref() == Some("all") {
        return out;
    }
    for rep in triage::representatives(reports, args.shrink_failures) {
        let Some((plan, _, bug)) = jobs
            .iter()
            .find(|(p, s, _)| p.name == rep.plan && *s == rep.seed)
        else {
            continue;
        };
        println!();
        match shrink_one(args, plan, rep, *bug, cfg) {
            Ok(path) => out.push(((rep.plan.clone(), rep.seed), path.display().to_string())),
            Err(e) => println!("shrinking {} seed {} failed: {e:#}", rep.plan, rep.seed),
        }
    }
    out
}

fn trace_name(rep: &RunReport) -> String {
    file_name(rep, "log")
}

/// `<plan>-<seed>[-<bug>].<ext>`: the run's files.
fn file_name(rep: &RunReport, ext: &str) -> String {
    format!(
        "{}-{}{}.{ext}",
        rep.plan,
        rep.seed,
        rep.bug
            .as_deref()
            .map(|b| format!("-{b}"))
            .unwrap_or_default()
    )
}

fn write_trace_as(dir: &std::path::Path, rep: &RunReport, suffix: &str) {
    let _ = std::fs::create_dir_all(dir);
    let name = trace_name(rep).replace(".log", &format!("-{suffix}.log"));
    let _ = std::fs::write(dir.join(name), rep.trace.join("\n"));
}

fn write_trace(dir: &std::path::Path, rep: &RunReport) {
    let _ = std::fs::create_dir_all(dir);
    let mut text = rep.trace.join("\n");
    text.push('\n');
    for v in &rep.violations {
        text.push_str(&format!("VIOLATION [{}] {}\n", v.invariant, v.detail));
    }
    let _ = std::fs::write(dir.join(trace_name(rep)), text);
    let trace = dir.join(trace_name(rep)).display().to_string();
    for w in &rep.witnesses {
        let path = witness_path(&trace, w.seat.as_str());
        let _ = std::fs::write(path, to_jsonl(&w.ops, w.origin_ms));
    }
}

/// Witnesses listed per run (all are written).
const WITNESSES_SHOWN: usize = 3;

/// The history check over every run: operations, seats, what the search
/// could not decide, what it found.
fn print_history(reports: &[RunReport], args: &Args) {
    let sum = |f: fn(&RunReport) -> usize| reports.iter().map(f).sum::<usize>();
    let seats = sum(|r| r.history.seats);
    println!(
        "history check: {} operations in {} runs; {} of {seats} seat histories linearizable, {} unknown (search bound), {} with a violation",
        sum(|r| r.history.ops),
        reports.len(),
        sum(|r| r.history.linearizable),
        sum(|r| r.history.unknown),
        sum(|r| r.witnesses.len()),
    );
    for r in reports.iter().filter(|r| !r.witnesses.is_empty()) {
        if r.witnesses.len() > WITNESSES_SHOWN {
            println!(
                "  {} seed {}: {} seats with a violation, the first {WITNESSES_SHOWN}:",
                r.plan,
                r.seed,
                r.witnesses.len()
            );
        }
        let trace = args.trace_dir.join(trace_name(r)).display().to_string();
        for w in r.witnesses.iter().take(WITNESSES_SHOWN) {
            println!(
                "  {} seed {}: seat {} — smallest failing sub-history ({} operations): {}",
                r.plan,
                r.seed,
                w.seat,
                w.ops.len(),
                witness_path(&trace, w.seat.as_str())
            );
        }
    }
}
