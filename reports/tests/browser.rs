//! A real browser opens the report from disk with no network: headless
//! Chromium (Debian package `chromium`; `ci/test` installs it) in a network
//! namespace of its own (`unshare -n`) when the machine allows one. The test
//! reads the DOM after the page's scripts ran and asserts every chart's SVG
//! was laid out with a non-empty size and the verdict is the right one, then
//! takes a screenshot and checks it shows the verdict banner's colour.
//!
//! The screenshots are kept for a person to look at:
//! `target/tmp/report-screenshots/{pass,fail}.png` (and the pages beside them).

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use ticketing_reports::inputs::Inputs;
use ticketing_reports::render::{Options, render};

/// A browser run longer than this is killed and fails the test.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 2000;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return p.into();
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("Chromium not found: `apt-get install chromium` (ci/test does), or set CHROMIUM");
}

/// Whether this machine lets us give the browser a network namespace with
/// nothing in it (root or user namespaces).
fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["-n", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs Chromium headless on `page` with `args`, bounded in time; returns
/// its stdout (through a file: a DOM dump is larger than a pipe's buffer).
fn browse(page: &Path, profile: &Path, args: &[String]) -> String {
    let stdout_path = profile.join("stdout.txt");
    let mut cmd = if can_unshare() {
        let mut c = Command::new("unshare");
        c.arg("-n").arg(chromium());
        c
    } else {
        eprintln!("note: no network namespace here; relying on Chromium's flags alone");
        Command::new(chromium())
    };
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--window-size={WIDTH},{HEIGHT}"))
    .args(args)
    .arg(format!("file://{}", page.display()))
    .stdout(std::fs::File::create(&stdout_path).unwrap())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("cannot start Chromium");
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        // Bounded: the deadline below ends the loop.
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            panic!("Chromium did not finish within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "Chromium failed: {status:?}");
    std::fs::read_to_string(&stdout_path).unwrap()
}

fn attribute(dom: &str, name: &str) -> Option<usize> {
    let at = dom.find(&format!("{name}=\""))? + name.len() + 2;
    dom[at..].split('"').next()?.parse().ok()
}

/// The share of the screenshot's pixels with exactly this colour.
fn share_of(png_path: &Path, rgb: [u8; 3]) -> (u32, u32, f64, usize) {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let mut hits = 0usize;
    let mut colours = std::collections::BTreeSet::new();
    for px in pixels.chunks(channels) {
        if px[..3] == rgb {
            hits += 1;
        }
        if colours.len() < 1000 {
            colours.insert([px[0], px[1], px[2]]);
        }
    }
    let total = (info.width * info.height) as f64;
    (info.width, info.height, hits as f64 / total, colours.len())
}

fn check_in_browser(name: &str, inputs: &Inputs, passed: bool, banner_rgb: [u8; 3]) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    let page = render(
        inputs,
        &Options {
            label: name.into(),
            at: "2026-11-22T03:00:00Z".into(),
            history: Vec::new(),
            trend_runs: 30,
            out_dir: out.clone(),
        },
    )
    .unwrap();
    assert_eq!(page.passed, passed);
    let index = out.join("index.html");
    std::fs::write(&index, &page.html).unwrap();
    let profile = tempfile::tempdir().unwrap();

    // The DOM after the page's own script measured every chart.
    let dom = browse(&index, profile.path(), &["--dump-dom".into()]);
    let charts = attribute(&dom, "data-charts").expect("the page's script ran");
    let drawn = attribute(&dom, "data-charts-drawn").unwrap();
    assert!(charts >= 4, "{charts} charts");
    assert_eq!(drawn, charts, "every chart laid out with a size and marks");
    assert_eq!(dom.matches("data-drawn=\"yes\"").count(), charts);
    let word = if passed { "PASS" } else { "FAIL" };
    assert!(dom.contains(&format!("<h2 id=\"verdict-word\">{word}</h2>")));

    // The screenshot shows the banner in its colour.
    let shot = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    browse(
        &index,
        profile.path(),
        &[format!("--screenshot={}", shot.display())],
    );
    let (w, h, banner_share, colours) = share_of(&shot, banner_rgb);
    assert_eq!((w, h), (WIDTH, HEIGHT));
    assert!(
        banner_share > 0.02,
        "banner colour covers {:.3} of the screenshot",
        banner_share
    );
    assert!(
        colours > 50,
        "a rendered page, not a blank one ({colours} colours)"
    );
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn a_passing_report_renders_its_charts_and_a_green_verdict_in_chromium() {
    let mut inputs = Inputs::default();
    inputs.add_load(&fixture("load-pass.json"));
    inputs.add_sim(&fixture("sim.json"));
    inputs.add_sim(&fixture("zoo.json"));
    // --ok in report.css: #e6f4ea
    check_in_browser("pass", &inputs, true, [0xe6, 0xf4, 0xea]);
}

#[test]
fn a_failing_report_renders_its_charts_and_a_red_verdict_in_chromium() {
    let mut inputs = Inputs::default();
    inputs.add_load(&fixture("load-faults.json"));
    inputs.add_sim(&fixture("sim.json"));
    inputs.steps.push(ticketing_reports::inputs::Step {
        name: "load".into(),
        exit_code: 1,
    });
    // --bad in report.css: #fde7e7
    check_in_browser("fail", &inputs, false, [0xfd, 0xe7, 0xe7]);
}
