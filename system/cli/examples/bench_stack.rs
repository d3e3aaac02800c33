//! Benchmark of the local real stack (not a test: it measures, it does not
//! assert). Start a stack first:
//!
//! ```text
//! TICKETING_BIN=target/release/ticketing ci/stack up
//! cargo run --release -p ticketing-cli --example bench_stack
//! ci/stack down
//! ```
//!
//! Three measurements, side by side in one run:
//! 1. hold throughput through nginx: `POST /api/reservations` for random
//!    free seats of a 200,000-seat event, at a fixed concurrency;
//! 2. the same hold Lua script driven straight at the same Redis by
//!    `redis-benchmark` (same concurrency, same number of holds) — the
//!    ratio says what HTTP, nginx, the service and the client cost on top;
//! 3. end-to-end purchase latency (order placed → CONFIRMED seen), with
//!    the stack's default payment latency of zero; then where each of
//!    those orders' time went, read back from the databases: created →
//!    AUTHORIZE ledger entry → CAPTURE ledger entry → CONFIRMED written
//!    (the services' own clocks, no client polling in it).
//!
//! Environment: `TICKETING_STACK_DIR` (default `target/stack`),
//! `BENCH_CONCURRENCY` (32), `BENCH_HOLDS` (20000), `BENCH_PURCHASES` (300),
//! `BENCH_POLL_MS` (2: how often a buyer asks for its order; 16 buyers at
//! 2 ms are ~8,000 reads/s of the stack's two cores on their own),
//! `BENCH_WAIT_MS` (0; above 0 a buyer reads its order once with
//! `?waitMs=` and is answered on the change, instead of polling),
//! `BENCH_ONLY=purchases` (3 alone; `load/bench/run.sh purchase`).

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use ticketing_domain::ports::SeatStore;
use ticketing_domain::{EventId, SeatId};
use ticketing_redis::{RedisSeatStore, RedisSeatStoreConfig, SCRIPT};
use ticketing_services::customer::{CustomerKey, mint};
use ticketing_testkit::Lcg;

const SEATS: usize = 200_000;

fn env_num(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn stack_env() -> BTreeMap<String, String> {
    let dir = std::env::var("TICKETING_STACK_DIR").unwrap_or_else(|_| "target/stack".into());
    let text = std::fs::read_to_string(format!("{dir}/stack.env"))
        .unwrap_or_else(|e| panic!("no running stack in {dir} ({e}); run `ci/stack up` first"));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// p50, p95, p99, max of microsecond samples, in milliseconds.
fn percentiles(mut us: Vec<u64>) -> [f64; 4] {
    us.sort_unstable();
    let at = |q: f64| us[((us.len() as f64 * q) as usize).min(us.len() - 1)] as f64 / 1000.0;
    [
        at(0.50),
        at(0.95),
        at(0.99),
        *us.last().unwrap() as f64 / 1000.0,
    ]
}

fn seat(i: usize) -> SeatId {
    // redis-benchmark's __rand_int__ is 12 zero-padded digits: same format.
    SeatId(format!("{i:012}"))
}

async fn make_event(store: &RedisSeatStore, id: &str) {
    let seats: Vec<(SeatId, i64)> = (0..SEATS).map(|i| (seat(i), 1000)).collect();
    store
        .create_event(&EventId::from(id), &seats)
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    let env = stack_env();
    let url = env["TICKETING_STACK_URL"].clone();
    let redis_url = env["TICKETING_STACK_REDIS_URL"].clone();
    let concurrency = env_num("BENCH_CONCURRENCY", 32);
    let holds = env_num("BENCH_HOLDS", 20_000);
    let purchases = env_num("BENCH_PURCHASES", 300);
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Registering 200,000 seats takes 40 staging scripts: allow it time.
    let config = RedisSeatStoreConfig {
        url: redis_url.clone(),
        call_timeout_ms: 60_000,
        ..RedisSeatStoreConfig::default()
    };
    let store = RedisSeatStore::connect(config).await.unwrap();
    // Every hold and purchase by a customer of its own (the stack's
    // services verify tokens and allow a customer `limits.*` per event).
    let key = CustomerKey::hs256(&env["TICKETING_STACK_JWT_SECRET"]).unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    if std::env::var("BENCH_ONLY").as_deref() == Ok("purchases") {
        purchase_bench(
            &env,
            &store,
            &http,
            &key,
            &run.to_string(),
            concurrency.min(16),
            purchases,
        )
        .await;
        return;
    }
    // 1. Holds through the gateway.
    let http_event = format!("bench-http-{run}");
    make_event(&store, &http_event).await;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (http, url, event) = (http.clone(), url.clone(), http_event.clone());
        let share = holds / concurrency + usize::from(worker < holds % concurrency);
        let key = key.clone();
        tasks.spawn(async move {
            let mut rng = Lcg(worker as u64 * 7919 + 1);
            let mut lat = Vec::with_capacity(share);
            let mut codes: BTreeMap<u16, usize> = BTreeMap::new();
            for n in 0..share {
                let body = json!({"eventId": event, "seatIds": [seat(rng.below(SEATS))], "holdSeconds": 600});
                let token = customer_token(&key, &format!("bench-hold-{worker}-{n}"));
                let t = Instant::now();
                let resp = http
                    .post(format!("{url}/api/reservations"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await;
                let code = resp.map(|r| r.status().as_u16()).unwrap_or(0);
                lat.push(t.elapsed().as_micros() as u64);
                *codes.entry(code).or_default() += 1;
            }
            (lat, codes)
        });
    }
    let mut lat = Vec::new();
    let mut codes: BTreeMap<u16, usize> = BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        let (l, c) = r.unwrap();
        lat.extend(l);
        for (k, v) in c {
            *codes.entry(k).or_default() += v;
        }
    }
    let http_secs = started.elapsed().as_secs_f64();
    let http_rps = lat.len() as f64 / http_secs;
    let [p50, p95, p99, max] = percentiles(lat);
    println!("holds via nginx: {holds} requests, concurrency {concurrency}, {http_secs:.2} s");
    println!(
        "  {http_rps:.0} holds/s   p50 {p50:.2} ms   p95 {p95:.2} ms   p99 {p99:.2} ms   max {max:.2} ms   status {codes:?}"
    );

    // 2. The same script straight at Redis.
    let lua_event = format!("bench-lua-{run}");
    make_event(&store, &lua_event).await;
    let keys = store.event_keys(&EventId::from(lua_event.as_str()));
    let port = redis_url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(SCRIPT)
        .query_async(&mut conn)
        .await
        .unwrap();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let mut args: Vec<String> = vec![
        "-h".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port,
        "-c".into(),
        concurrency.to_string(),
        "-n".into(),
        holds.to_string(),
        "-r".into(),
        SEATS.to_string(),
        "--csv".into(),
        "EVALSHA".into(),
        sha,
        "9".into(),
    ];
    args.extend(keys);
    args.extend([
        "hold".into(),
        now_ms,
        "1024".into(),
        "h___rand_int__".into(),
        "600000".into(),
        "[\"__rand_int__\"]".into(),
        "null".into(),
        "0".into(),
        "0".into(),
    ]);
    let out = Command::new("redis-benchmark")
        .args(&args)
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    let row: Vec<f64> = csv
        .lines()
        .last()
        .unwrap_or_default()
        .split(',')
        .skip(1)
        .filter_map(|f| f.trim_matches('"').parse().ok())
        .collect();
    assert!(
        row.len() >= 7,
        "redis-benchmark output: {csv}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (lua_rps, lua_p50, lua_p95, lua_p99) = (row[0], row[3], row[4], row[5]);
    println!("same Lua hold via redis-benchmark: {holds} calls, concurrency {concurrency}");
    println!(
        "  {lua_rps:.0} holds/s   p50 {lua_p50:.2} ms   p95 {lua_p95:.2} ms   p99 {lua_p99:.2} ms"
    );
    println!(
        "  ratio: the HTTP path reaches {:.1} % of the bare script's throughput",
        100.0 * http_rps / lua_rps
    );
    let sold = store
        .seat_map(&EventId::from(lua_event.as_str()))
        .await
        .unwrap();
    let held = sold
        .seats
        .iter()
        .filter(|(_, s)| *s != ticketing_domain::SeatStatus::Available)
        .count();
    println!(
        "  (redis-benchmark holds that took seats: {held}; the rest hit taken seats or reused ids)"
    );

    // 3. Purchases end to end.
    purchase_bench(
        &env,
        &store,
        &http,
        &key,
        &run.to_string(),
        concurrency.min(16),
        purchases,
    )
    .await;
}

/// Purchases by `buyers` concurrent buyers (hold one seat, order it, poll
/// until CONFIRMED), timed at the client, then the same orders' steps read
/// back from the databases (the order service's and the gateway's clocks).
async fn purchase_bench(
    env: &BTreeMap<String, String>,
    store: &RedisSeatStore,
    http: &reqwest::Client,
    key: &CustomerKey,
    run: &str,
    buyers: usize,
    purchases: usize,
) {
    let url = env["TICKETING_STACK_URL"].clone();
    let buy_event = format!("bench-buy-{run}");
    make_event(store, &buy_event).await;
    let mut tasks = tokio::task::JoinSet::new();
    let poll_ms = env_num("BENCH_POLL_MS", 2) as u64;
    // > 0: one `GET /api/orders/{id}?waitMs=` instead of polling.
    let wait_ms = env_num("BENCH_WAIT_MS", 0) as u64;
    let started = Instant::now();
    for worker in 0..buyers {
        let (http, url, event) = (http.clone(), url.clone(), buy_event.clone());
        let share = purchases / buyers + usize::from(worker < purchases % buyers);
        let key = key.clone();
        tasks.spawn(async move {
            let mut lat = Vec::new();
            for i in 0..share {
                let seat = seat(worker * 10_000 + i);
                let tag = format!("{worker}-{i}");
                let token = customer_token(&key, &format!("bench-buy-{tag}"));
                let read = Read { poll_ms, wait_ms };
                lat.push(buy(&http, &token, &url, &event, seat, &tag, read).await);
            }
            lat
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = tasks.join_next().await {
        lat.extend(r.unwrap());
    }
    let n = lat.len();
    let wall_s = started.elapsed().as_secs_f64();
    let [p50, p95, p99, max] = percentiles(lat);
    let how = match wait_ms {
        0 => format!("polling every {poll_ms} ms"),
        w => format!("waiting with waitMs={w}"),
    };
    println!(
        "purchases (order placed -> CONFIRMED seen, {how}), {n} orders, {buyers} buyers, payment latency 0:"
    );
    println!("  p50 {p50:.1} ms   p95 {p95:.1} ms   p99 {p99:.1} ms   max {max:.1} ms");
    // Buyers start their next purchase once they saw the last one: a
    // buyer who sees sooner offers the stack more orders per second.
    println!(
        "  {:.0} orders/s ({n} in {wall_s:.1} s, with each buyer's holds)",
        n as f64 / wall_s
    );
    steps_from_databases(&env["TICKETING_STACK_PG_URL"], &buy_event);
}

/// A token for `customer`, valid for a day of the wall clock.
fn customer_token(key: &CustomerKey, customer: &str) -> String {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    mint(key, customer, now_ms, 24 * 3_600_000).token
}

/// How a buyer reads its order until it is no longer PENDING.
#[derive(Clone, Copy)]
struct Read {
    poll_ms: u64,
    /// > 0: `?waitMs=` (the server answers on the change), no polling.
    wait_ms: u64,
}

/// One purchase; the time from sending the order to seeing it CONFIRMED.
async fn buy(
    http: &reqwest::Client,
    token: &str,
    url: &str,
    event: &str,
    seat: SeatId,
    tag: &str,
    read: Read,
) -> u64 {
    let hold: Value = http
        .post(format!("{url}/api/reservations"))
        .bearer_auth(token)
        .json(&json!({"eventId": event, "seatIds": [seat], "holdSeconds": 600}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = Instant::now();
    let order: Value = http
        .post(format!("{url}/api/orders"))
        .bearer_auth(token)
        .header("idempotency-key", format!("bench-{event}-{tag}"))
        .json(&json!({"holdId": hold["holdId"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = order["orderId"].as_str().unwrap().to_owned();
    let query = match read.wait_ms {
        0 => String::new(),
        w => format!("?waitMs={w}"),
    };
    // Bounded: the bench's orders confirm within seconds.
    for _ in 0..10_000 {
        let o: Value = http
            .get(format!("{url}/api/orders/{id}{query}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if o["status"] != "PENDING" {
            assert_eq!(o["status"], "CONFIRMED", "{o}");
            return t.elapsed().as_micros() as u64;
        }
        if read.wait_ms == 0 {
            tokio::time::sleep(Duration::from_millis(read.poll_ms)).await;
        }
    }
    panic!("order {id} still PENDING after 10,000 reads");
}

/// Rows of `sql` in database `db` of the stack's PostgreSQL, `|`-separated.
fn psql_rows(pg: &str, db: &str, sql: &str) -> Vec<Vec<String>> {
    let out = Command::new("psql")
        .args([&format!("{pg}/{db}"), "-AtX", "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

/// Where each order's time went, from what the services wrote down: the
/// order's creation and last update (order service) and the gateway's
/// AUTHORIZE and CAPTURE ledger entries (payment service), all on this
/// machine's clock.
fn steps_from_databases(pg: &str, event: &str) {
    let orders = psql_rows(
        pg,
        "ticketing_orders",
        &format!(
            "SELECT order_id, created_at_ms, updated_at_ms FROM orders WHERE event_id = '{event}'"
        ),
    );
    let ledger = psql_rows(
        pg,
        "ticketing_payments",
        "SELECT order_id, kind, at_ms FROM ledger",
    );
    let mut at: BTreeMap<(String, String), u64> = BTreeMap::new();
    for row in &ledger {
        at.insert((row[0].clone(), row[1].clone()), row[2].parse().unwrap());
    }
    let mut steps: [Vec<u64>; 4] = Default::default();
    for row in &orders {
        let (created, updated): (u64, u64) = (row[1].parse().unwrap(), row[2].parse().unwrap());
        let auth = at.get(&(row[0].clone(), "AUTHORIZE".into()));
        let capture = at.get(&(row[0].clone(), "CAPTURE".into()));
        let (Some(&auth), Some(&capture)) = (auth, capture) else {
            continue;
        };
        for (k, d) in [
            auth - created,
            capture - auth,
            updated - capture,
            updated - created,
        ]
        .into_iter()
        .enumerate()
        {
            steps[k].push(d * 1000);
        }
    }
    println!(
        "  the same orders' steps from the databases ({} orders):",
        steps[3].len()
    );
    let names = [
        "placed -> authorized",
        "authorized -> captured",
        "captured -> CONFIRMED written",
        "placed -> CONFIRMED written",
    ];
    for (name, d) in names.iter().zip(steps) {
        if d.is_empty() {
            continue;
        }
        let [p50, p95, p99, max] = percentiles(d);
        println!(
            "    {name:<30} p50 {p50:.0} ms   p95 {p95:.0} ms   p99 {p99:.0} ms   max {max:.0} ms"
        );
    }
}
