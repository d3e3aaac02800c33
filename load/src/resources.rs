//! Resource samples of the target while a run loads it (`--sample-every`):
//! resident memory, open file descriptors, OS threads, live tokio tasks and
//! open HTTP connections, read from `/metrics` on the target's internal
//! listener. One sample before the load starts, one every interval while
//! it runs, one when it stops; then, after the audit, one a second until
//! descriptors and tasks are back at their start (bounded). What a soak
//! judges from them (`gate`): memory growth after the warm-up, and
//! descriptors and tasks that do not come back.
//!
//! The samples are of the process behind the internal listener. With
//! `--embedded` that is this load process too (goose's memory included):
//! `ci/nightly`'s soak runs `ticketing serve --embedded` on its own and
//! loads it with `--host`.
//!
//! Layer: beside `client` (imports it); `run` drives it, `gate` judges it.

use crate::client::Api;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// At most this many samples while loading (10 s apart: 11 days).
const SAMPLES_MAX: usize = 100_000;
/// How often the settle phase samples.
const SETTLE_EVERY: Duration = Duration::from_secs(1);

/// One reading of the target process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceSample {
    /// Since the start of load, ms (the settle samples continue the count).
    pub at_ms: u64,
    pub rss_bytes: u64,
    pub open_fds: u64,
    pub threads: u64,
    /// tokio tasks alive in the target.
    pub tasks: u64,
    /// Open connections on the target's listeners.
    pub connections: u64,
}

/// Everything sampled in one run (`summary.json`'s `resources`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceReport {
    pub every_ms: u64,
    /// Before, during and at the end of the load.
    pub during: Vec<ResourceSample>,
    /// After the load and the audit, until fds and tasks were back at their
    /// start or the settle timeout passed.
    pub after: Vec<ResourceSample>,
    /// Scrapes that failed or lacked a metric, and the last complaint.
    pub unreadable: u64,
    pub last_error: Option<String>,
}

impl ResourceReport {
    pub fn start(&self) -> Option<&ResourceSample> {
        self.during.first()
    }
    /// The first sample at or after the warm-up.
    pub fn warm(&self, warmup_ms: u64) -> Option<&ResourceSample> {
        self.during.iter().find(|s| s.at_ms >= warmup_ms)
    }
    pub fn end_of_load(&self) -> Option<&ResourceSample> {
        self.during.last()
    }
    pub fn settled(&self) -> Option<&ResourceSample> {
        self.after.last()
    }
    /// The largest reading of `f` in any sample.
    pub fn peak(&self, f: impl Fn(&ResourceSample) -> u64) -> u64 {
        self.during
            .iter()
            .chain(&self.after)
            .map(f)
            .max()
            .unwrap_or(0)
    }
    fn push(&mut self, read: anyhow::Result<ResourceSample>, after: bool) {
        match read {
            Ok(s) if after => self.after.push(s),
            Ok(s) => self.during.push(s),
            Err(e) => {
                self.unreadable += 1;
                self.last_error = Some(format!("{e:#}"));
            }
        }
    }
}

/// The sum of every series named `name` in a Prometheus text scrape.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let n = series.split_once('{').map_or(series, |(n, _)| n);
        if n == name
            && let Ok(v) = value.parse::<f64>()
        {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// Reads one sample from a scrape's text.
pub fn parse(text: &str, at_ms: u64) -> anyhow::Result<ResourceSample> {
    let get = |name: &str| {
        metric(text, name)
            .map(|v| v.max(0.0) as u64)
            .ok_or_else(|| {
                anyhow::anyhow!("/metrics has no {name} (a target without process metrics?)")
            })
    };
    use ticketing_services::metrics as m;
    Ok(ResourceSample {
        at_ms,
        rss_bytes: get(m::PROCESS_RSS)?,
        open_fds: get(m::PROCESS_OPEN_FDS)?,
        threads: get(m::PROCESS_THREADS)?,
        tasks: get(m::RUNTIME_ALIVE_TASKS)?,
        connections: get(m::HTTP_OPEN_CONNECTIONS)?,
    })
}

async fn read(api: &Api, started: Instant, timeout: Duration) -> anyhow::Result<ResourceSample> {
    let text = api.metrics_text(timeout).await?;
    parse(&text, started.elapsed().as_millis() as u64)
}

/// Samples in the background until [`Sampler::stop`].
#[derive(Debug)]
pub struct Sampler {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<ResourceReport>,
}

impl Sampler {
    /// Takes the first sample now (before the load), then one every `every`.
    pub async fn start(api: &Api, every: Duration, started: Instant) -> Sampler {
        let api = api.clone();
        let timeout = every.min(Duration::from_secs(5));
        let mut report = ResourceReport {
            every_ms: every.as_millis() as u64,
            ..ResourceReport::default()
        };
        report.push(read(&api, started, timeout).await, false);
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(Instant::now() + every, every);
            while report.during.len() < SAMPLES_MAX {
                tokio::select! {
                    _ = tick.tick() => report.push(read(&api, started, timeout).await, false),
                    _ = stopped.changed() => break,
                }
            }
            report.push(read(&api, started, timeout).await, false);
            report
        });
        Sampler { stop, task }
    }

    /// Stops sampling, with one last sample (the end of the load).
    pub async fn stop(self) -> ResourceReport {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_else(|e| ResourceReport {
            last_error: Some(format!("the sampler failed: {e}")),
            ..ResourceReport::default()
        })
    }
}

/// After the run: samples once a second until open fds and live tasks are
/// at or below their start, or `timeout` passed (the last sample then shows
/// what stayed). Idle keep-alive connections close on the target's own
/// idle timeout (`http.header_read_timeout_ms`), so `timeout` should be
/// longer than that.
pub async fn settle(api: &Api, report: &mut ResourceReport, started: Instant, timeout: Duration) {
    let Some(start) = report.start().copied() else {
        return;
    };
    let deadline = Instant::now() + timeout;
    loop {
        report.push(read(api, started, SETTLE_EVERY * 5).await, true);
        let back = report
            .settled()
            .is_some_and(|s| s.open_fds <= start.open_fds && s.tasks <= start.tasks);
        if back || Instant::now() + SETTLE_EVERY > deadline {
            return;
        }
        tokio::time::sleep(SETTLE_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = "\
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 52428800
process_open_fds 31
process_threads 4
runtime_alive_tasks 17
http_open_connections{listener=\"a\"} 2
http_open_connections{listener=\"b\"} 3
http_open_connections_total 99
";

    #[test]
    fn a_scrape_reads_as_a_sample_summing_label_sets() {
        let s = parse(SCRAPE, 7).unwrap();
        assert_eq!(
            s,
            ResourceSample {
                at_ms: 7,
                rss_bytes: 52_428_800,
                open_fds: 31,
                threads: 4,
                tasks: 17,
                connections: 5,
            }
        );
    }

    #[test]
    fn a_scrape_without_a_metric_is_unreadable_and_says_which() {
        let text = SCRAPE.replace("process_open_fds 31\n", "");
        let e = parse(&text, 0).unwrap_err().to_string();
        assert!(e.contains("process_open_fds"), "{e}");
    }

    #[test]
    fn warm_is_the_first_sample_after_the_warm_up() {
        let at = |ms| ResourceSample {
            at_ms: ms,
            ..parse(SCRAPE, 0).unwrap()
        };
        let r = ResourceReport {
            during: vec![at(0), at(10_000), at(20_000), at(30_000)],
            ..ResourceReport::default()
        };
        assert_eq!(r.warm(15_000).unwrap().at_ms, 20_000);
        assert_eq!(r.warm(20_000).unwrap().at_ms, 20_000);
        assert!(r.warm(31_000).is_none());
        assert_eq!(r.end_of_load().unwrap().at_ms, 30_000);
    }
}
