//! `ticketing-report`: renders one nightly run into `OUT/index.html`,
//! appends the run to the trend history, prints the verdict and exits
//! 0 (pass), 1 (a check failed; the page is written first) or 2 (no page
//! could be written).

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use ticketing_reports::history::History;
use ticketing_reports::inputs::{Inputs, Step};
use ticketing_reports::render::{Options, render};

#[derive(Debug, Parser)]
#[command(
    name = "ticketing-report",
    about = "Renders the HTML report of a load run and simulation results"
)]
struct Args {
    /// The folder the page is written to (OUT/index.html).
    #[arg(long)]
    out: PathBuf,
    /// A `ticketing-load` run folder (or its summary.json).
    #[arg(long)]
    load: Option<PathBuf>,
    /// The soak's `ticketing-load` run folder (sampled with --sample-every).
    #[arg(long)]
    soak: Option<PathBuf>,
    /// The onsale's `ticketing-load` run folder (`--scenario onsale`).
    #[arg(long)]
    onsale: Option<PathBuf>,
    /// The onsale through the waiting room (`--scenario onsale --waiting-room`).
    #[arg(long)]
    queued_onsale: Option<PathBuf>,
    /// A `ticketing-sim --json` file (repeat: the sweep and the zoo).
    #[arg(long)]
    sim: Vec<PathBuf>,
    /// A scope of mutation testing (repeat): cargo-mutants' outcomes.json,
    /// its mutants.out folder, or the folder holding that (`ci/mutants`).
    #[arg(long)]
    mutants: Vec<PathBuf>,
    /// Mutants judged equivalent, `mutant<TAB>why` per line: left out of the score.
    #[arg(long)]
    mutants_equivalent: Option<PathBuf>,
    /// The trend file: read for the trend, then this run is appended.
    #[arg(long)]
    history: Option<PathBuf>,
    /// A pipeline step's exit status, NAME=CODE (repeat); non-zero fails the verdict.
    #[arg(long, value_parser = Step::parse)]
    step: Vec<Step>,
    /// The run's name in the trend [default: the out folder's name].
    #[arg(long)]
    label: Option<String>,
    /// Runs on the trend charts, this one included.
    #[arg(long, default_value_t = 30)]
    trend_runs: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ticketing-report: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<bool> {
    let mut inputs = Inputs::default();
    if let Some(load) = &args.load {
        inputs.add_load(load);
    }
    if let Some(onsale) = &args.onsale {
        inputs.add_onsale(onsale);
    }
    if let Some(q) = &args.queued_onsale {
        inputs.add_queued_onsale(q);
    }
    if let Some(soak) = &args.soak {
        inputs.add_soak(soak);
    }
    for sim in &args.sim {
        inputs.add_sim(sim);
    }
    let equivalents = match &args.mutants_equivalent {
        Some(path) => ticketing_reports::mutants::Equivalents::read(path).unwrap_or_else(|e| {
            // Judged without the list (a stricter score), and said on the page.
            inputs
                .problems
                .push(("equivalent mutants".into(), format!("{e:#}")));
            Default::default()
        }),
        None => Default::default(),
    };
    for m in &args.mutants {
        inputs.add_mutants(m, &equivalents);
    }
    inputs.steps = args.step.clone();
    let history = match &args.history {
        Some(path) => {
            let h = History::read(path)?;
            if h.unreadable_lines > 0 {
                eprintln!(
                    "ticketing-report: {} unreadable line(s) in {} skipped",
                    h.unreadable_lines,
                    path.display()
                );
            }
            h.entries
        }
        None => Vec::new(),
    };
    std::fs::create_dir_all(&args.out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.out.display()))?;
    let label = args.label.clone().unwrap_or_else(|| {
        args.out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into())
    });
    let opts = Options {
        label,
        at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        history,
        trend_runs: args.trend_runs.max(1),
        out_dir: args.out.clone(),
    };
    let page = render(&inputs, &opts)?;
    let index = args.out.join("index.html");
    std::fs::write(&index, &page.html)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", index.display()))?;
    if let Some(path) = &args.history {
        History::append(path, &page.entry)?;
    }
    for r in &page.banner.rows {
        println!(
            "{:<5} {:<12} {}: {} (limit: {})",
            if r.passed { "pass" } else { "FAIL" },
            r.area,
            r.rule,
            r.observed,
            r.limit
        );
    }
    println!(
        "report: {} — {}",
        index.display(),
        if page.passed { "PASS" } else { "FAIL" }
    );
    Ok(page.passed)
}
