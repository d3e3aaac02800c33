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
use ticketing_faults::{FaultPlan, plan_names};
use ticketing_sim::results::{RESULTS_VERSION, RunResult, SweepResults, ZooRow};
use ticketing_sim::world::SimConfig;
use ticketing_sim::zoo::{self, Bug};
use ticketing_sim::{RunReport, run_one};

#[derive(Debug, Parser)]
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
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Internal: run exactly one seed in this process and print its report
    /// as JSON. The sweep runs every seed in a process of its own: tokio's
    /// task ids are process-global, so seeds sharing a process would not
    /// replay exactly.
    #[arg(long, hide = true)]
    worker: bool,
    /// Where failing runs' traces are written.
    #[arg(long, default_value = "target/sim-traces")]
    trace_dir: PathBuf,
}

/// A job's report and, with `--check-determinism`, the second run's trace hash.
type JobResult = anyhow::Result<(RunReport, Option<String>)>;

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
    let cfg = if args.standard {
        SimConfig::standard()
    } else {
        SimConfig::small()
    };
    if args.worker {
        let seed = args.seed.context("--worker needs --seed")?;
        let plan = FaultPlan::named(&args.plan, seed)?;
        let report = run_one(&plan, seed, &cfg, bug)?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let plans: Vec<String> = if args.plan == "all" {
        plan_names().into_iter().map(str::to_owned).collect()
    } else {
        vec![args.plan.clone()]
    };
    let first = args.seed.unwrap_or(1);
    let count = args
        .seeds
        .unwrap_or(if args.seed.is_some() { 1 } else { 5 });
    anyhow::ensure!(count > 0, "--seeds must be at least 1");
    let seeds: Vec<u64> = (first..first.saturating_add(count)).collect();
    let mut jobs: Vec<(FaultPlan, u64, Option<Bug>)> = Vec::new();
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
                jobs.push((FaultPlan::named(p, s)?, s, bug));
            }
        }
    }
    let threads = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let runs_per_job = if args.check_determinism { 2 } else { 1 };
    println!(
        "ticketing-sim: {} plan(s) x {} seed(s){}, {} users, {} seats, {threads} thread(s)",
        plans.len(),
        seeds.len(),
        bug.map(|b| format!(", bug {}", b.name()))
            .unwrap_or_default(),
        cfg.users,
        cfg.rows * cfg.cols,
    );

    let bar = ProgressBar::new((jobs.len() * runs_per_job) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {elapsed_precise}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, JobResult)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(jobs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((plan, seed, job_bug)) = jobs.get(i) else {
                        break;
                    };
                    let r = run_in_process(&plan.name, *seed, *job_bug, &args).map(|first| {
                        bar.inc(1);
                        let second = args.check_determinism.then(|| {
                            let again = run_in_process(&plan.name, *seed, *job_bug, &args);
                            bar.inc(1);
                            match again {
                                Ok(r) => {
                                    if r.trace_hash != first.trace_hash {
                                        // Keep both traces: the first differing line is the lead.
                                        write_trace_as(&args.trace_dir, &first, "run1");
                                        write_trace_as(&args.trace_dir, &r, "run2");
                                    }
                                    r.trace_hash
                                }
                                Err(e) => format!("error: {e}"),
                            }
                        });
                        (first, second)
                    });
                    bar.set_message(format!("{} seed {seed} done", plan.name));
                    ticketing_sim::lock(&results).push((i, r));
                }
            });
        }
    });
    bar.finish_and_clear();
    let wall = started.elapsed();
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);

    println!(
        "\n{:<26} {:>6} {:>6} {:>9} {:>7} {:>9} {:>6}  violations",
        "plan", "seed", "result", "sim s", "orders", "confirmed", "sold"
    );
    let mut reports = Vec::new();
    let mut any_violation = false;
    let mut nondeterministic = Vec::new();
    let mut error_lines = Vec::new();
    for (_, r) in results {
        match r {
            Ok((rep, second)) => {
                if let Some(h2) = second
                    && h2 != rep.trace_hash
                {
                    nondeterministic.push(format!(
                        "{} seed {}: {} vs {h2}",
                        rep.plan, rep.seed, rep.trace_hash
                    ));
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
                    any_violation = true;
                    write_trace(&args.trace_dir, &rep);
                }
                reports.push(rep);
            }
            Err(e) => {
                println!("error: {e:#}");
                error_lines.push(format!("{e:#}"));
            }
        }
    }
    for rep in reports.iter().filter(|r| !r.passed) {
        println!(
            "\n{} seed {}{}:",
            rep.plan,
            rep.seed,
            rep.bug
                .as_deref()
                .map(|b| format!(" (bug {b})"))
                .unwrap_or_default()
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
    let sim_s: f64 = reports
        .iter()
        .map(|r| r.sim_ms as f64 / 1000.0)
        .sum::<f64>()
        * runs_per_job as f64;
    println!(
        "\n{} runs in {:.1} s wall: {:.0} simulated s per wall s, {:.1} seeds per minute",
        reports.len() * runs_per_job,
        wall.as_secs_f64(),
        sim_s / wall.as_secs_f64().max(1e-9),
        (reports.len() * runs_per_job) as f64 * 60.0 / wall.as_secs_f64().max(1e-9)
    );
    if args.check_determinism {
        if nondeterministic.is_empty() {
            println!("determinism: every seed gave the same trace hash twice");
        } else {
            println!(
                "determinism: FAILED (both traces in {})",
                args.trace_dir.display()
            );
            for n in &nondeterministic {
                println!("  {n}");
            }
        }
    }
    let mut zoo_rows = Vec::new();
    if zoo_mode {
        println!(
            "\n{:<28} {:<24} {:>6}  caught by seed",
            "bug", "plan", "seeds"
        );
        for b in zoo::ALL {
            let (plan, n) = b.caught_by();
            let first = reports
                .iter()
                .filter(|r| r.bug.as_deref() == Some(b.name()) && !r.passed)
                .map(|r| r.seed)
                .min();
            let shown = first.map_or_else(|| "NOT CAUGHT".to_owned(), |s| s.to_string());
            println!("{:<28} {:<24} {:>6}  {shown}", b.name(), plan, n);
            zoo_rows.push(ZooRow {
                bug: b.name().to_owned(),
                description: b.description().to_owned(),
                plan: plan.to_owned(),
                seeds: n,
                caught_by_seed: first,
                repro: first.map(|s| ticketing_sim::repro(plan, s, Some(*b))),
            });
        }
    }
    if let Some(path) = &args.json {
        let doc = SweepResults {
            version: RESULTS_VERSION,
            git_revision: git_revision(),
            scenario: if args.standard { "standard" } else { "small" }.to_owned(),
            users: cfg.users,
            seats: (cfg.rows * cfg.cols) as usize,
            plans: distinct(jobs.iter().map(|(p, _, _)| p.name.clone())),
            seeds: distinct(jobs.iter().map(|(_, s, _)| *s)),
            bug: args.bug.clone(),
            determinism_checked: args.check_determinism,
            nondeterministic: nondeterministic.clone(),
            errors: error_lines.clone(),
            wall_s: wall.as_secs_f64(),
            simulated_s: sim_s,
            run_count: reports.len() * runs_per_job,
            runs: reports
                .iter()
                .map(|r| {
                    let trace = args.trace_dir.join(trace_name(r));
                    RunResult::of(r, Some(trace.display().to_string()))
                })
                .collect(),
            zoo: zoo_rows.clone(),
        };
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    let failed = !error_lines.is_empty() || !nondeterministic.is_empty();
    if zoo_mode {
        let missed = zoo_rows
            .iter()
            .filter(|r| r.caught_by_seed.is_none())
            .count();
        anyhow::ensure!(missed == 0 && !failed, "{missed} zoo bug(s) NOT caught");
        println!("every bug in the zoo was caught");
        return Ok(());
    }
    match bug {
        Some(b) => {
            if any_violation && !failed {
                println!("bug {} caught", b.name());
                Ok(())
            } else {
                anyhow::bail!("bug {} was NOT caught", b.name())
            }
        }
        None => {
            if any_violation || failed {
                anyhow::bail!("simulation found violations")
            }
            Ok(())
        }
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

/// Runs one seed in a child process (`--worker`) and reads its report.
fn run_in_process(
    plan: &str,
    seed: u64,
    bug: Option<Bug>,
    args: &Args,
) -> anyhow::Result<RunReport> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--worker", "--plan", plan, "--seed", &seed.to_string()]);
    if let Some(b) = bug {
        cmd.args(["--bug", b.name()]);
    }
    if args.standard {
        cmd.arg("--standard");
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

fn trace_name(rep: &RunReport) -> String {
    format!(
        "{}-{}{}.log",
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
}
