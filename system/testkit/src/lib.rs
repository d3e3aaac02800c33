//! # ticketing-testkit
//!
//! Real servers for tests, on loopback. Each helper either uses a server
//! that `ci/test` (or you) already started — named by an environment
//! variable — or starts a private one for the calling test and stops it on
//! drop. A missing server binary is a **test failure** with instructions,
//! never a skip: a skipped conformance suite would prove nothing.
//!
//! | server | shared one (env) | private one needs |
//! |---|---|---|
//! | Redis | `TICKETING_TEST_REDIS_URL` | `redis-server` on `PATH` |
//! | PostgreSQL | `TICKETING_TEST_PG_URL` (a superuser URL) | `initdb`/`postgres` (Debian: `/usr/lib/postgresql/*/bin`) |
//! | Kafka protocol | `TICKETING_TEST_KAFKA_BROKERS` | `tansu` on `PATH` or in `~/.cargo/bin` |
//!
//! Isolation on a shared server is by name: [`unique_name`] gives each test
//! its own Redis key prefix, database or topic names.
//!
//! This crate is test-only code: it uses OS processes and the wall clock,
//! which system code may not.

// Test support starts OS processes and waits on the wall clock; none of
// this runs inside the simulator, so the determinism rules do not apply.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A name no other test (in this or another process) uses: `<tag>_<pid>_<n>_<nanos>`.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{tag}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A free loopback TCP port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Waits until `addr` accepts TCP connections, or panics after `timeout`.
pub fn wait_for_port(port: u16, what: &str, timeout: Duration) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < timeout,
            "{what} did not listen on 127.0.0.1:{port} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Finds a program on `PATH` or in extra directories.
pub fn find_program(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A server process for one test process.
///
/// The server runs under a small `sh` watchdog that stops it (and deletes
/// its scratch directory) when the test process goes away — also for
/// servers kept in a `static`, which Rust never drops. Dropping the handle
/// stops it at once.
#[derive(Debug)]
pub struct ServerProcess {
    watchdog: Child,
}

/// The watchdog: start the server, then wait until it or the test process
/// (`$TEST_PID`, checked through /proc so it works across users) is gone.
const WATCHDOG: &str = r#"
"$@" &
server=$!
stop() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; [ -n "$SCRATCH" ] && rm -rf "$SCRATCH"; exit 0; }
trap stop TERM INT HUP
while [ -d "/proc/$TEST_PID" ] && kill -0 "$server" 2>/dev/null; do sleep 0.5; done
stop
"#;

impl ServerProcess {
    /// Starts `program args` under the watchdog; `scratch` is removed when
    /// the server stops; `as_user` runs it as that (uid, gid).
    fn spawn(
        program: &Path,
        args: &[String],
        what: &str,
        scratch: Option<&Path>,
        as_user: Option<(u32, u32)>,
    ) -> Self {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("watchdog")
            .arg(program)
            .args(args)
            .env("TEST_PID", std::process::id().to_string())
            .env(
                "SCRATCH",
                scratch
                    .map(|p| p.as_os_str().to_owned())
                    .unwrap_or_default(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = as_user {
            cmd.uid(uid).gid(gid);
        }
        let watchdog = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Self { watchdog }
    }

    /// The watchdog's process id.
    pub fn pid(&self) -> u32 {
        self.watchdog.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // SIGTERM, so the watchdog stops the server before it exits.
        let _ = Command::new("kill")
            .arg(self.watchdog.id().to_string())
            .status();
        let _ = self.watchdog.wait();
    }
}

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name(tag));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A Redis server for one test: the shared one, or a private process.
#[derive(Debug)]
pub struct TestRedis {
    pub url: String,
    /// A key prefix no other test uses.
    pub prefix: String,
    _process: Option<ServerProcess>,
}

impl TestRedis {
    pub fn start() -> Self {
        let prefix = format!("{}:", unique_name("t"));
        if let Ok(url) = std::env::var("TICKETING_TEST_REDIS_URL") {
            return Self {
                url,
                prefix,
                _process: None,
            };
        }
        Self::private_on(free_port())
    }

    /// Always a private server, on `port` (fault tests stop it and start a
    /// new one on the same port).
    pub fn private_on(port: u16) -> Self {
        let bin = find_program("redis-server", &[]).unwrap_or_else(|| {
            panic!(
                "redis-server not found: install it (`apt-get install redis-server`, or run \
                 ci/test which does) or set TICKETING_TEST_REDIS_URL"
            )
        });
        let dir = scratch_dir("redis");
        let args: Vec<String> = vec![
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            dir.display().to_string(),
        ];
        let process = ServerProcess::spawn(&bin, &args, "redis-server", Some(&dir), None);
        wait_for_port(port, "redis-server", Duration::from_secs(10));
        Self {
            url: format!("redis://127.0.0.1:{port}/"),
            prefix: format!("{}:", unique_name("t")),
            _process: Some(process),
        }
    }
}

/// The directory holding PostgreSQL's server programs, if installed.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    if let Some(p) = find_program("initdb", &[]) {
        return p.parent().map(Path::to_path_buf);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// A PostgreSQL database for one test: a fresh database on the shared
/// server, or a private server (initdb + postgres on a free port).
#[derive(Debug)]
pub struct TestPostgres {
    /// Superuser URL of the server's `postgres` database (create/drop).
    pub admin_url: String,
    /// URL of this test's own, empty database.
    pub url: String,
    pub database: String,
    _process: Option<ServerProcess>,
}

impl TestPostgres {
    /// The server only; create the database with `psql` or sqlx from
    /// `admin_url` (see `database`, `url`).
    pub fn start() -> Self {
        let database = unique_name("t");
        let (admin_url, process) = match std::env::var("TICKETING_TEST_PG_URL") {
            Ok(url) => (url, None),
            Err(_) => {
                let (url, p) = Self::private_server();
                (url, Some(p))
            }
        };
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap_or_else(|| admin_url.clone());
        Self {
            url: format!("{base}/{database}"),
            admin_url,
            database,
            _process: process,
        }
    }

    fn private_server() -> (String, ServerProcess) {
        let bin = postgres_bin_dir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL server programs not found: install them (`apt-get install \
                 postgresql`, or run ci/test which does) or set TICKETING_TEST_PG_URL"
            )
        });
        let dir = scratch_dir("pg");
        let data = dir.join("data");
        let user = postgres_user(&dir);
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = user {
            use std::os::unix::process::CommandExt;
            initdb.uid(uid).gid(gid);
        }
        let status = initdb.status().expect("run initdb");
        assert!(status.success(), "initdb failed in {}", data.display());
        let port = free_port();
        let args: Vec<String> = vec![
            "-D".into(),
            data.display().to_string(),
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-k".into(),
            dir.display().to_string(),
            "-c".into(),
            "fsync=off".into(),
            "-c".into(),
            "max_connections=200".into(),
        ];
        let process =
            ServerProcess::spawn(&bin.join("postgres"), &args, "postgres", Some(&dir), user);
        wait_for_port(port, "postgres", Duration::from_secs(30));
        (
            format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            process,
        )
    }
}

/// PostgreSQL refuses to run as root: when we are root, it runs as the
/// `postgres` user (created by the Debian package), which gets `dir`.
fn postgres_user(dir: &Path) -> Option<(u32, u32)> {
    let id = |args: &[&str]| {
        Command::new("id").args(args).output().ok().and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u32>()
                .ok()
        })
    };
    if id(&["-u"]) != Some(0) {
        return None;
    }
    let (Some(uid), Some(gid)) = (id(&["-u", "postgres"]), id(&["-g", "postgres"])) else {
        panic!("running as root and no `postgres` user exists to run PostgreSQL as");
    };
    let _ = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(dir)
        .status();
    Some((uid, gid))
}

/// A Kafka-protocol broker for one test: the shared one, or a private
/// `tansu` process with in-memory storage.
#[derive(Debug)]
pub struct TestKafka {
    /// `host:port` bootstrap list.
    pub brokers: String,
    _process: Option<ServerProcess>,
}

/// Where `cargo install` puts `tansu`.
pub fn tansu_program() -> Option<PathBuf> {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|h| h.join("bin"));
    find_program("tansu", &cargo_bin.into_iter().collect::<Vec<_>>())
}

impl TestKafka {
    pub fn start() -> Self {
        if let Ok(brokers) = std::env::var("TICKETING_TEST_KAFKA_BROKERS") {
            return Self {
                brokers,
                _process: None,
            };
        }
        let bin = tansu_program().unwrap_or_else(|| {
            panic!(
                "tansu not found: install it (`cargo install tansu --version 0.6.0 --features \
                 dynostore`, or run ci/test which does) or set TICKETING_TEST_KAFKA_BROKERS"
            )
        });
        let port = free_port();
        let process = ServerProcess::spawn(&bin, &tansu_args(port), "tansu", None, None);
        wait_for_port(port, "tansu", Duration::from_secs(30));
        Self {
            brokers: format!("127.0.0.1:{port}"),
            _process: Some(process),
        }
    }
}

/// Command-line arguments for a tansu broker with in-memory storage on `port`.
pub fn tansu_args(port: u16) -> Vec<String> {
    vec![
        "broker".into(),
        "--listener-url".into(),
        format!("tcp://127.0.0.1:{port}"),
        "--advertised-listener-url".into(),
        format!("tcp://127.0.0.1:{port}"),
        "--storage-engine".into(),
        "memory://tansu/".into(),
    ]
}

/// A tiny deterministic generator for test and benchmark choices (which
/// seat a simulated user tries). Not for system code: that uses the
/// injected `RandomSource`.
#[derive(Debug, Clone)]
pub struct Lcg(pub u64);

impl Lcg {
    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// The workspace's debug binaries (`ticketing`, `ticketing-sim`,
/// `ticketing-load`, `ticketing-report`), current with the sources: the
/// folder they are in.
///
/// Built by the same command nextest runs under `ci/test` (`cargo test
/// --no-run --workspace --all-targets --locked`), so there it is a no-op
/// (0.6 s measured). A narrower `cargo build -p ticketing-cli` resolves
/// features differently and rebuilt redis and librdkafka from scratch — a
/// test that did so once timed out in CI on exactly that.
pub fn workspace_bin_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "test",
            "--no-run",
            "--workspace",
            "--all-targets",
            "--locked",
            "--quiet",
        ])
        .current_dir(&root)
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "cannot build the workspace's binaries"
    );
    target.join("debug")
}

/// The value of the Prometheus samples `name{…}` whose labels include every
/// pair, summed (several series can match); 0 when there is none.
pub fn prometheus_sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            let matches = n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            if matches {
                value.parse::<f64>().ok()
            } else {
                None
            }
        })
        .sum()
}
