//! What the harness measures, kept by the harness itself.
//!
//! Goose keeps its own metrics (and writes its own reports); these are ours,
//! for three reasons: microsecond-precise percentiles from an
//! [`hdrhistogram`] (goose rounds response times above 100 ms), a
//! coordinated-omission-corrected histogram beside the raw one (hdrhistogram's
//! `record_correct` with goose's own per-user cadence as the expected
//! interval), and histograms that serialize, so runs on several machines can
//! be merged into one verdict (`ticketing-load merge`).
//!
//! With a fault plan, requests made inside the fault window are kept apart
//! ([`Recorder::set_window`]): the SLOs judge the rest, the window is
//! reported on its own (the timeline has every request).
//!
//! Everything here is bounded: histograms have a fixed range (1 µs to 1 h),
//! error codes are keyed by a short label, and the timeline has one bucket
//! per second of the run, capped at [`TIMELINE_SECONDS_MAX`].

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which percentiles the gate reads: as measured, or corrected for
/// coordinated omission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    Raw,
    Corrected,
}

impl std::fmt::Display for Basis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Basis::Raw => "raw",
            Basis::Corrected => "corrected",
        })
    }
}

/// Longest latency a histogram holds, in microseconds (larger values are clamped).
pub const LATENCY_US_MAX: u64 = 3_600_000_000;
/// The timeline stops growing after this many seconds.
pub const TIMELINE_SECONDS_MAX: usize = 24 * 3600;

/// A latency histogram in microseconds, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

/// How an answer counts: success, an expected refusal (409/410 where the
/// contract says so), or an error (transport, 5xx, any unexpected status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Expected,
    Error,
}

/// One endpoint's figures while the run goes.
#[derive(Debug)]
struct Endpoint {
    raw: Histogram<u64>,
    corrected: Histogram<u64>,
    requests: u64,
    errors: u64,
    expected: u64,
    /// "201", "409 SEATS_UNAVAILABLE", "transport: connection refused", ...
    codes: BTreeMap<String, u64>,
}

impl Endpoint {
    fn new() -> Self {
        Self {
            raw: new_histogram(),
            corrected: new_histogram(),
            requests: 0,
            errors: 0,
            expected: 0,
            codes: BTreeMap::new(),
        }
    }
}

/// Requests and errors in one second of the run, and the raw p95 of the
/// second's requests other than the waiting room's own (the site's
/// latency as shoppers saw it then; `None` in a second without any).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    pub requests: u64,
    pub errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
}

/// The run's recorder, shared by every goose user (cheap to lock: one
/// short critical section per request).
#[derive(Debug)]
pub struct Recorder {
    started: Instant,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoints: BTreeMap<String, Endpoint>,
    /// Requests made inside the fault window.
    in_window: BTreeMap<String, Endpoint>,
    /// [from, to) in ms since the start.
    window_ms: Option<(u64, u64)>,
    timeline: Vec<Second>,
    /// Per second: the latencies behind `Second::p95_ms` (2 significant
    /// digits: a few KiB per second of the run).
    latency_seconds: Vec<Option<Histogram<u64>>>,
}

/// The waiting room's routes (`/api/queue/...`): a request named with
/// one is the room's own, anything else is the site behind it (the shop
/// phase, which the waiting room's figures judge apart).
pub const WAITING_ROOM_ROUTE: &str = "/api/queue/";

/// Whether the request named `name` is the waiting room's own.
pub fn is_waiting_room(name: &str) -> bool {
    name.contains(WAITING_ROOM_ROUTE)
}

/// Key for the code table: the status and, for error bodies, their `code`.
pub fn code_label(status: Option<u16>, api_code: Option<&str>, transport: Option<&str>) -> String {
    match (status, api_code, transport) {
        (_, _, Some(t)) => format!("transport: {t}"),
        (Some(s), Some(c), _) => format!("{s} {c}"),
        (Some(s), None, _) => s.to_string(),
        (None, _, _) => "no status".into(),
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self::starting_at(Instant::now())
    }

    /// A recorder whose clock (timeline, fault window) starts at `started`.
    pub fn starting_at(started: Instant) -> Self {
        Self {
            started,
            inner: Mutex::new(Inner {
                endpoints: BTreeMap::new(),
                in_window: BTreeMap::new(),
                window_ms: None,
                timeline: Vec::new(),
                latency_seconds: Vec::new(),
            }),
        }
    }

    /// Whether `at` falls in the fault window (false without one).
    pub fn in_window(&self, at: Instant) -> bool {
        let ms = at.saturating_duration_since(self.started).as_millis() as u64;
        self.lock()
            .window_ms
            .is_some_and(|(from, to)| from <= ms && ms < to)
    }

    /// Requests made in `[from_ms, to_ms)` of the run go to the window's
    /// figures instead of the endpoints'.
    pub fn set_window(&self, from_ms: u64, to_ms: u64) {
        self.lock().window_ms = Some((from_ms, to_ms));
    }

    /// Time since the recorder was made (the run's clock).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one request. `cadence_us` is the user's expected interval
    /// between requests (goose's coordinated-omission cadence; 0 = unknown,
    /// in which case the corrected histogram gets the raw value only).
    pub fn record(
        &self,
        endpoint: &str,
        latency_us: u64,
        cadence_us: u64,
        outcome: Outcome,
        code: String,
    ) {
        let value = latency_us.clamp(1, LATENCY_US_MAX);
        let elapsed = self.started.elapsed();
        let second = elapsed.as_secs() as usize;
        let ms = elapsed.as_millis() as u64;
        let mut inner = self.lock();
        let in_window = inner
            .window_ms
            .is_some_and(|(from, to)| from <= ms && ms < to);
        let map = if in_window {
            &mut inner.in_window
        } else {
            &mut inner.endpoints
        };
        let e = map.entry(endpoint.to_owned()).or_insert_with(Endpoint::new);
        e.raw.saturating_record(value);
        if cadence_us > 0 {
            // Backfills value - k*cadence for every k while that exceeds the cadence.
            if e.corrected.record_correct(value, cadence_us).is_err() {
                e.corrected.saturating_record(value);
            }
        } else {
            e.corrected.saturating_record(value);
        }
        e.requests += 1;
        match outcome {
            Outcome::Ok => {}
            Outcome::Expected => e.expected += 1,
            Outcome::Error => e.errors += 1,
        }
        *e.codes.entry(code).or_insert(0) += 1;
        if second < TIMELINE_SECONDS_MAX {
            if inner.timeline.len() <= second {
                inner.timeline.resize(second + 1, Second::default());
            }
            inner.timeline[second].requests += 1;
            if outcome == Outcome::Error {
                inner.timeline[second].errors += 1;
            }
            if !is_waiting_room(endpoint) {
                if inner.latency_seconds.len() <= second {
                    inner.latency_seconds.resize(second + 1, None);
                }
                inner.latency_seconds[second]
                    .get_or_insert_with(|| {
                        Histogram::new_with_bounds(1, LATENCY_US_MAX, 2)
                            .expect("static histogram bounds are valid")
                    })
                    .saturating_record(value);
            }
        }
    }

    /// Requests and errors so far (cheap: for progress lines).
    pub fn totals(&self) -> (u64, u64) {
        let inner = self.lock();
        inner
            .timeline
            .iter()
            .fold((0, 0), |(r, e), s| (r + s.requests, e + s.errors))
    }

    /// A snapshot of every endpoint's figures, and the timeline.
    pub fn snapshot(&self) -> (BTreeMap<String, EndpointFigures>, Vec<Second>) {
        let inner = self.lock();
        let mut timeline = inner.timeline.clone();
        for (sec, h) in timeline.iter_mut().zip(&inner.latency_seconds) {
            sec.p95_ms = h
                .as_ref()
                .map(|h| h.value_at_quantile(0.95) as f64 / 1000.0);
        }
        (figures(&inner.endpoints), timeline)
    }

    /// The fault window's figures, per endpoint.
    pub fn window_snapshot(&self) -> BTreeMap<String, EndpointFigures> {
        figures(&self.lock().in_window)
    }
}

fn figures(endpoints: &BTreeMap<String, Endpoint>) -> BTreeMap<String, EndpointFigures> {
    endpoints
        .iter()
        .map(|(name, e)| {
            (
                name.clone(),
                EndpointFigures::from_parts(
                    e.requests,
                    e.errors,
                    e.expected,
                    e.codes.clone(),
                    &e.raw,
                    &e.corrected,
                ),
            )
        })
        .collect()
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// One endpoint in the summary: counts, raw and corrected percentiles, and
/// both histograms serialized (V2 + deflate, base64) for merging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointFigures {
    pub requests: u64,
    pub errors: u64,
    /// Expected refusals (409 on a taken seat, ...): neither ok nor errors.
    pub expected: u64,
    pub error_rate_pct: f64,
    pub raw: Percentiles,
    pub corrected: Percentiles,
    pub codes: BTreeMap<String, u64>,
    pub histogram_raw: String,
    pub histogram_corrected: String,
}

impl EndpointFigures {
    /// The percentiles the gate judges on `basis`.
    pub fn on(&self, basis: Basis) -> &Percentiles {
        match basis {
            Basis::Raw => &self.raw,
            Basis::Corrected => &self.corrected,
        }
    }

    pub fn from_parts(
        requests: u64,
        errors: u64,
        expected: u64,
        codes: BTreeMap<String, u64>,
        raw: &Histogram<u64>,
        corrected: &Histogram<u64>,
    ) -> Self {
        Self {
            requests,
            errors,
            expected,
            error_rate_pct: pct(errors, requests),
            raw: Percentiles::of(raw),
            corrected: Percentiles::of(corrected),
            codes,
            histogram_raw: encode(raw),
            histogram_corrected: encode(corrected),
        }
    }

    /// Sums two endpoints' figures (histograms added, percentiles recomputed).
    pub fn merge(&self, other: &EndpointFigures) -> anyhow::Result<EndpointFigures> {
        let mut raw = decode(&self.histogram_raw)?;
        raw.add(decode(&other.histogram_raw)?)
            .map_err(|e| anyhow::anyhow!("cannot add histograms: {e:?}"))?;
        let mut corrected = decode(&self.histogram_corrected)?;
        corrected
            .add(decode(&other.histogram_corrected)?)
            .map_err(|e| anyhow::anyhow!("cannot add histograms: {e:?}"))?;
        let mut codes = self.codes.clone();
        for (k, v) in &other.codes {
            *codes.entry(k.clone()).or_insert(0) += v;
        }
        Ok(Self::from_parts(
            self.requests + other.requests,
            self.errors + other.errors,
            self.expected + other.expected,
            codes,
            &raw,
            &corrected,
        ))
    }
}

/// `part` as a percentage of `whole` (0 when there is no whole).
pub fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// A histogram as base64 text (hdrhistogram's V2 deflate format).
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Serializing into a Vec cannot fail for a histogram within its bounds.
    if V2DeflateSerializer::new().serialize(h, &mut bytes).is_err() {
        bytes.clear();
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The inverse of [`encode`]; an empty string is an empty histogram.
pub fn decode(text: &str) -> anyhow::Result<Histogram<u64>> {
    if text.is_empty() {
        return Ok(new_histogram());
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("not an hdrhistogram: {e:?}"))?;
    let mut out = new_histogram();
    out.add(h)
        .map_err(|e| anyhow::anyhow!("histogram out of range: {e:?}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrected_histogram_backfills_a_stall() {
        let r = Recorder::new();
        // 99 fast requests at a 10 ms cadence, then one that stalled 1 s.
        for _ in 0..99 {
            r.record("GET /x", 2_000, 10_000, Outcome::Ok, "200".into());
        }
        r.record("GET /x", 1_000_000, 10_000, Outcome::Ok, "200".into());
        let (e, _) = r.snapshot();
        let x = &e["GET /x"];
        assert_eq!(x.raw.count, 100);
        assert!(x.raw.p95_ms < 3.0, "raw p95 {}", x.raw.p95_ms);
        // The stall hid ~99 requests the user would have sent: corrected sees them.
        assert!(x.corrected.count >= 190, "corrected {}", x.corrected.count);
        assert!(
            x.corrected.p95_ms > 500.0,
            "corrected p95 {}",
            x.corrected.p95_ms
        );
    }

    #[test]
    fn errors_expected_and_codes_are_counted_apart() {
        let r = Recorder::new();
        r.record("POST /h", 1_000, 0, Outcome::Ok, "201".into());
        r.record(
            "POST /h",
            1_000,
            0,
            Outcome::Expected,
            "409 SEATS_UNAVAILABLE".into(),
        );
        r.record(
            "POST /h",
            1_000,
            0,
            Outcome::Error,
            "503 SERVICE_UNAVAILABLE".into(),
        );
        r.record(
            "POST /h",
            1_000,
            0,
            Outcome::Error,
            "transport: timeout".into(),
        );
        let (e, timeline) = r.snapshot();
        let h = &e["POST /h"];
        assert_eq!((h.requests, h.errors, h.expected), (4, 2, 1));
        assert_eq!(h.error_rate_pct, 50.0);
        assert_eq!(h.codes["409 SEATS_UNAVAILABLE"], 1);
        assert_eq!(timeline.iter().map(|s| s.errors).sum::<u64>(), 2);
    }

    #[test]
    fn merging_equals_recording_everything_in_one_place() {
        let (a, b, all) = (Recorder::new(), Recorder::new(), Recorder::new());
        for i in 1..=500u64 {
            let target = if i % 3 == 0 { &a } else { &b };
            let outcome = if i % 50 == 0 {
                Outcome::Error
            } else {
                Outcome::Ok
            };
            target.record("GET /y", i * 997, 0, outcome, "200".into());
            all.record("GET /y", i * 997, 0, outcome, "200".into());
        }
        let merged = a.snapshot().0["GET /y"]
            .merge(&b.snapshot().0["GET /y"])
            .unwrap();
        let whole = &all.snapshot().0["GET /y"];
        assert_eq!(merged.requests, whole.requests);
        assert_eq!(merged.errors, whole.errors);
        assert_eq!(merged.raw, whole.raw);
        assert_eq!(merged.corrected, whole.corrected);
    }

    #[test]
    fn requests_in_the_fault_window_are_kept_apart() {
        let r = Recorder::new();
        r.set_window(0, 60_000);
        r.record("GET /z", 1_000, 0, Outcome::Error, "503".into());
        r.set_window(0, 0);
        r.record("GET /z", 1_000, 0, Outcome::Ok, "200".into());
        let (outside, timeline) = r.snapshot();
        let inside = r.window_snapshot();
        assert_eq!(
            (outside["GET /z"].requests, outside["GET /z"].errors),
            (1, 0)
        );
        assert_eq!((inside["GET /z"].requests, inside["GET /z"].errors), (1, 1));
        assert_eq!(timeline.iter().map(|s| s.requests).sum::<u64>(), 2);
    }

    #[test]
    fn histograms_survive_encoding() {
        let mut h = new_histogram();
        for v in [1, 10, 1_000, 123_456, 9_999_999] {
            h.record(v).unwrap();
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(Percentiles::of(&back), Percentiles::of(&h));
        assert!(decode("not base64!").is_err());
    }
}
