//! The web pages in a real browser: `ticketing serve --embedded` (the
//! binary, demo data on) and the end-to-end tests under `web/e2e/` run by
//! Node's test runner, driving Debian's headless Chromium with
//! playwright-core (`npm ci --prefix web/e2e`; ci/test does it). The
//! browser resolves no host but 127.0.0.1.
//!
//! The console test starts a load run from the page, so `ticketing-load`
//! and `ticketing-report` must be built beside `ticketing` (nextest builds
//! the whole workspace first).
//!
//! Screenshots (desktop and phone) and the change → paint latency between
//! two browsers (`paint-latency.json`) are kept in `target/tmp/web-e2e/`.

// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The whole browser run is killed after this and fails the test.
const E2E_TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(200);

/// A child process, killed when the test ends (or fails) before it exits.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| ticketing_testkit::find_program("chromium", &[]))
        .or_else(|| ticketing_testkit::find_program("chromium-browser", &[]))
        .unwrap_or_else(|| {
            panic!("Chromium not found: `apt-get install chromium` (ci/test does), or set CHROMIUM")
        })
}

/// The embedded system, and its public and internal URLs.
fn serve() -> (Killed, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(["serve", "--embedded", "--port", "0"])
        .env("RUST_LOG", "warn")
        .env(
            "TICKETING_CONSOLE__RUNS_DIR",
            repo().join("target/tmp/web-e2e/console-runs"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut url = |prefix: &str| {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        line.trim()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("unexpected line: {line:?}"))
            .to_owned()
    };
    let shop = url("ticketing: listening on ");
    let internal = url("ticketing: internal routes (audits, payment faults) on ");
    (Killed(child), shop, internal)
}

#[test]
fn the_shop_works_end_to_end_in_chromium() {
    let e2e = repo().join("web/e2e");
    assert!(
        e2e.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix web/e2e` (ci/test does)"
    );
    // The console's runs start the harness binaries built beside `ticketing`.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ticketing")).parent().unwrap();
    for bin in ["ticketing-load", "ticketing-report"] {
        assert!(
            bin_dir.join(bin).is_file(),
            "{bin} is not beside ticketing in {}: `cargo build -p ticketing-load -p ticketing-reports` \
             (`cargo nextest run --workspace` builds it)",
            bin_dir.display()
        );
    }
    let out = repo().join("target/tmp/web-e2e");
    std::fs::create_dir_all(&out).unwrap();
    let (_server, shop, internal) = serve();
    // Output through a file: nothing has to read a pipe while we wait.
    let log_path = out.join("node-output.txt");
    let log = std::fs::File::create(&log_path).unwrap();
    let node = Command::new("node")
        .current_dir(&e2e)
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .args(["shop.test.mjs", "console.test.mjs"])
        .env("SHOP_URL", &shop)
        .env("INTERNAL_URL", &internal)
        .env("CHROMIUM", chromium())
        .env("WEB_E2E_OUT", &out)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("node not found ({e}): install Node.js 20 or newer"));
    let mut node = Killed(node);
    // Polled: a bound on the run without reading the wall clock.
    let mut status = None;
    for _ in 0..E2E_TIMEOUT.as_millis() / POLL.as_millis() {
        status = node.0.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(POLL);
    }
    drop(node);
    eprintln!("{}", std::fs::read_to_string(&log_path).unwrap_or_default());
    let status = status.unwrap_or_else(|| panic!("the browser tests ran over {E2E_TIMEOUT:?}"));
    assert!(status.success(), "the browser tests failed ({status})");
    let figure = std::fs::read_to_string(out.join("paint-latency.json")).unwrap();
    assert!(figure.contains("p95Ms"), "{figure}");
    for name in [
        "purchase-confirmed-desktop",
        "purchase-confirmed-phone",
        "events-phone",
    ] {
        assert!(out.join(format!("{name}.png")).exists(), "{name}.png");
    }
}
