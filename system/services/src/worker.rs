//! The consumer loop shared by every bus worker: subscribe, poll, handle
//! (one key's messages in order, different keys concurrently), commit after
//! the effect. Handlers must be idempotent — delivery is at
//! least once — and a handler that keeps failing makes the consumer rewind
//! to the committed offset and back off, so the message is retried later
//! rather than skipped.
//!
//! Layer: plumbing; imports `metrics`, `http::trace` and `telemetry` (the
//! message span), no service.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use ticketing_domain::messages::Envelope;
use ticketing_domain::ports::{Consumer, EventBus};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// Tries per message before rewinding.
const ATTEMPTS_PER_MESSAGE: u32 = 3;
/// Messages fetched per poll.
const BATCH_MAX: usize = 64;
/// Longest wait inside one poll.
const POLL_WAIT_MS: u64 = 200;
/// Pause after a broker error or a message that keeps failing.
const BACKOFF_MS: u64 = 250;

/// Sleeps `ms` unless shutdown comes first; returns false on shutdown.
pub async fn pause(ms: u64, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
    }
}

/// Cancels `shutdown` and waits for `tasks` (servers draining requests,
/// workers finishing their step); after `grace_ms` aborts what is left.
/// Every assembly (embedded, one service per process) stops this way.
pub async fn stop_all(shutdown: &CancellationToken, tasks: &mut JoinSet<()>, grace_ms: u64) {
    shutdown.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_millis(grace_ms), drain)
        .await
        .is_err()
    {
        tracing::warn!("shutdown timed out; aborting remaining tasks");
        tasks.abort_all();
    }
}

/// How often each consumer reports its lag (a broker round trip per
/// partition on Kafka).
const LAG_INTERVAL_MS: u64 = 1_000;
/// After a failed lag query, wait this long before the next: a broker that
/// does not answer is not asked again every second.
const LAG_BACKOFF_MS: u64 = 30_000;

/// Sets `bus_consumer_lag` for this consumer, when its adapter can tell;
/// returns how long until the next query.
async fn record_lag(c: &mut dyn Consumer, topic: &'static str, group: &'static str) -> Duration {
    let lag = match c.known_lag() {
        Some(known) => Ok(Some(known)),
        None => c.lag().await,
    };
    match lag {
        Ok(Some(lag)) => {
            metrics::gauge!(crate::metrics::BUS_CONSUMER_LAG, "topic" => topic, "group" => group)
                .set(lag as f64);
            Duration::from_millis(LAG_INTERVAL_MS)
        }
        Ok(None) => Duration::from_millis(LAG_INTERVAL_MS),
        Err(e) => {
            tracing::debug!(topic, group, error = %e, "consumer lag unknown");
            Duration::from_millis(LAG_BACKOFF_MS)
        }
    }
}

/// The span one message is handled in. Every log line of the handling
/// carries its trace id; exported, it is the consumer side of the producer's
/// `send` span (whose id the message's `traceparent` carries, derived from
/// the message id, so it is the same whether or not the broker kept headers).
fn message_span(topic: &'static str, group: &'static str, env: &Envelope) -> tracing::Span {
    let span = tracing::info_span!(
        "message",
        topic,
        group,
        trace_id = env.trace_id.as_ref().map(|t| t.as_str()).unwrap_or(""),
        message_id = %env.message_id,
        service = group.split('-').next().unwrap_or(group),
        otel.kind = "consumer",
        otel.name = %format!("receive {topic}"),
    );
    if let Some(trace) = &env.trace_id {
        let parent = crate::http::trace::message_traceparent(Some(trace), &env.message_id)
            .and_then(|value| crate::http::trace::parse_traceparent(&value))
            .and_then(|(_, span_id)| span_id);
        match parent {
            Some(parent) => crate::telemetry::join_remote(&span, trace, &parent),
            None => crate::telemetry::start_root(&span, trace),
        }
    }
    span
}

/// Keys (orders) handled at once within one batch.
const KEYS_IN_FLIGHT: usize = 32;

/// How one message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    /// Its effect is durable (or it is undecodable and skipped): commit.
    Done,
    /// Every attempt failed: rewind to it.
    Failed,
    /// Shutdown came during its retries.
    Stopped,
}

/// Handles a batch: messages with one key (an order) one after another in
/// offset order, different keys concurrently (up to [`KEYS_IN_FLIGHT`], on
/// this task: no spawn, so the simulator schedules it like the rest). A
/// key stops at its first failed message. Returns each message's outcome
/// in batch order.
async fn handle_batch<F, Fut>(
    batch: &[ticketing_domain::ports::Delivery],
    topic: &'static str,
    group: &'static str,
    shutdown: &CancellationToken,
    handler: &F,
) -> Vec<Handled>
where
    F: Fn(Envelope) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    use futures::StreamExt;
    let mut by_key: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, d) in batch.iter().enumerate() {
        by_key.entry(d.key.as_str()).or_default().push(i);
    }
    let mut outcomes = vec![Handled::Failed; batch.len()];
    let mut keys = futures::stream::iter(by_key.into_values())
        .map(|idxs| async move {
            let mut out = Vec::with_capacity(idxs.len());
            for i in idxs {
                let o = handle_one(&batch[i], topic, group, shutdown, handler).await;
                out.push((i, o));
                if o != Handled::Done {
                    break;
                }
            }
            out
        })
        .buffer_unordered(KEYS_IN_FLIGHT);
    while let Some(done) = keys.next().await {
        for (i, o) in done {
            outcomes[i] = o;
        }
    }
    outcomes
}

/// One message: decoded, handled with retries, counted.
async fn handle_one<F, Fut>(
    d: &ticketing_domain::ports::Delivery,
    topic: &'static str,
    group: &'static str,
    shutdown: &CancellationToken,
    handler: &F,
) -> Handled
where
    F: Fn(Envelope) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let env = match Envelope::from_bytes(&d.payload) {
        Ok(env) => env,
        Err(e) => {
            // A message no version of us can read: skip it, loudly.
            tracing::error!(topic, offset = d.offset, error = %e, "undecodable message skipped");
            metrics::counter!(crate::metrics::BUS_MESSAGES, "topic" => topic, "result" => "undecodable").increment(1);
            return Handled::Done;
        }
    };
    let span = message_span(topic, group, &env);
    for attempt in 0..ATTEMPTS_PER_MESSAGE {
        match handler(env.clone()).instrument(span.clone()).await {
            Ok(()) => {
                metrics::counter!(crate::metrics::BUS_MESSAGES, "topic" => topic, "result" => "handled")
                    .increment(1);
                return Handled::Done;
            }
            Err(e) => {
                tracing::warn!(topic, attempt, message_id = %env.message_id, error = %e, "handler failed");
                if !pause(BACKOFF_MS << attempt, shutdown).await {
                    return Handled::Stopped;
                }
            }
        }
    }
    metrics::counter!(crate::metrics::BUS_MESSAGES, "topic" => topic, "result" => "failed")
        .increment(1);
    Handled::Failed
}

/// Runs until `shutdown`. `handler` gets each decoded envelope; `Ok` means
/// its effect is durable and the message may be committed.
pub async fn consume<F, Fut>(
    bus: Arc<dyn EventBus>,
    topic: &'static str,
    group: &'static str,
    shutdown: CancellationToken,
    handler: F,
) where
    F: Fn(Envelope) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut consumer: Option<Box<dyn Consumer>> = None;
    let mut next_lag_at = tokio::time::Instant::now();
    while !shutdown.is_cancelled() {
        let c = match consumer.as_mut() {
            Some(c) => c,
            None => match bus.subscribe(topic, group).await {
                Ok(c) => consumer.insert(c),
                Err(e) => {
                    tracing::warn!(topic, group, error = %e, "subscribe failed");
                    pause(BACKOFF_MS, &shutdown).await;
                    continue;
                }
            },
        };
        let batch = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = c.poll(BATCH_MAX, POLL_WAIT_MS) => r,
        };
        if batch.is_ok() && tokio::time::Instant::now() >= next_lag_at {
            let wait = record_lag(c.as_mut(), topic, group).await;
            next_lag_at = tokio::time::Instant::now() + wait;
        }
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(topic, group, error = %e, "poll failed");
                consumer = None;
                pause(BACKOFF_MS, &shutdown).await;
                continue;
            }
        };
        let outcomes = handle_batch(&batch, topic, group, &shutdown, &handler).await;
        // Commit what is done up to the first message that is not (one
        // broker round trip); from there on everything comes again
        // (handlers are idempotent).
        let done = outcomes.iter().take_while(|o| **o == Handled::Done).count();
        let committed = done == 0 || c.commit_all(&batch[..done]).await.is_ok();
        if outcomes.contains(&Handled::Stopped) {
            return;
        }
        if !committed || done < batch.len() {
            let _ = c.rewind().await;
            pause(BACKOFF_MS, &shutdown).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};
    use ticketing_domain::messages::BusMessage;
    use ticketing_domain::ports::{BusError, Delivery, OutgoingMessage};
    use ticketing_domain::{HoldId, MessageId, OrderId};
    use tokio::time::Instant;

    fn delivery(offset: u64) -> Delivery {
        let env = Envelope {
            message_id: MessageId(format!("m-{offset}")),
            trace_id: None,
            body: BusMessage::ReleaseHold {
                order_id: OrderId(format!("o-{offset}")),
                hold_id: HoldId(format!("h-{offset}")),
            },
        };
        Delivery {
            topic: "t".into(),
            partition: 0,
            offset,
            key: format!("k-{offset}"),
            payload: env.to_bytes(),
            headers: Vec::new(),
        }
    }

    /// What the scripted broker saw.
    #[derive(Debug, Default)]
    struct BrokerLog {
        /// The group's committed offset (the next message to deliver).
        committed: u64,
        lag_queries: u32,
    }

    /// One partition of fixed messages; polls wait their full time when
    /// there is nothing to deliver, as a broker's do.
    #[derive(Debug)]
    struct Scripted {
        log: Arc<Mutex<BrokerLog>>,
        messages: Vec<Delivery>,
        next: u64,
    }

    #[async_trait::async_trait]
    impl Consumer for Scripted {
        async fn poll(&mut self, max: usize, wait_ms: u64) -> Result<Vec<Delivery>, BusError> {
            let from = self.next as usize;
            let batch: Vec<Delivery> = self.messages.iter().skip(from).take(max).cloned().collect();
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            }
            self.next += batch.len() as u64;
            Ok(batch)
        }
        async fn commit(&mut self, d: &Delivery) -> Result<(), BusError> {
            crate::lock(&self.log).committed = d.offset + 1;
            Ok(())
        }
        async fn rewind(&mut self) -> Result<(), BusError> {
            self.next = crate::lock(&self.log).committed;
            Ok(())
        }
        async fn lag(&mut self) -> Result<Option<u64>, BusError> {
            let mut log = crate::lock(&self.log);
            log.lag_queries += 1;
            Ok(Some(self.messages.len() as u64 - log.committed))
        }
    }

    #[derive(Debug, Default)]
    struct ScriptedBus {
        log: Arc<Mutex<BrokerLog>>,
        messages: Vec<Delivery>,
    }

    #[async_trait::async_trait]
    impl EventBus for ScriptedBus {
        async fn publish(&self, _msg: OutgoingMessage) -> Result<(u32, u64), BusError> {
            Err(BusError::Unavailable("this broker only delivers".into()))
        }
        async fn subscribe(
            &self,
            _topic: &str,
            _group: &str,
        ) -> Result<Box<dyn Consumer>, BusError> {
            let next = crate::lock(&self.log).committed;
            Ok(Box::new(Scripted {
                log: self.log.clone(),
                messages: self.messages.clone(),
                next,
            }))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_says_whether_it_ran_out_or_was_stopped() {
        let shutdown = CancellationToken::new();
        assert!(pause(10, &shutdown).await);
        shutdown.cancel();
        let started = Instant::now();
        assert!(!pause(60_000, &shutdown).await);
        assert_eq!(started.elapsed(), Duration::ZERO, "stopped at once");
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_drains_what_stops_and_aborts_what_outlives_the_grace() {
        let shutdown = CancellationToken::new();
        let drained = Arc::new(AtomicU32::new(0));
        let mut tasks = JoinSet::new();
        let (token, seen) = (shutdown.clone(), drained.clone());
        tasks.spawn(async move {
            token.cancelled().await;
            seen.fetch_add(1, Ordering::SeqCst);
        });
        tasks.spawn(async { std::future::pending::<()>().await });
        let started = Instant::now();
        stop_all(&shutdown, &mut tasks, 500).await;
        assert!(shutdown.is_cancelled());
        assert_eq!(
            drained.load(Ordering::SeqCst),
            1,
            "the polite task finished"
        );
        assert_eq!(started.elapsed(), Duration::from_millis(500));
        let stubborn = tasks.join_next().await.expect("one task left");
        assert!(
            stubborn.unwrap_err().is_cancelled(),
            "the stubborn one was aborted"
        );
        assert!(tasks.join_next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_message_is_retried_with_doubling_pauses_then_given_up() {
        let shutdown = CancellationToken::new();
        let calls = AtomicU32::new(0);
        let fail_first = |n: u32| {
            let calls = &calls;
            move |_env: Envelope| async move {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                if call < n {
                    Err(anyhow::anyhow!("not yet"))
                } else {
                    Ok(())
                }
            }
        };
        let d = delivery(0);
        let started = Instant::now();
        let once = handle_one(&d, "t", "g", &shutdown, &fail_first(1)).await;
        assert_eq!((once, calls.load(Ordering::SeqCst)), (Handled::Done, 2));
        assert_eq!(started.elapsed(), Duration::from_millis(BACKOFF_MS));
        calls.store(0, Ordering::SeqCst);
        let started = Instant::now();
        let never = handle_one(&d, "t", "g", &shutdown, &fail_first(u32::MAX)).await;
        assert_eq!((never, calls.load(Ordering::SeqCst)), (Handled::Failed, 3));
        let pauses_ms = BACKOFF_MS + 2 * BACKOFF_MS + 4 * BACKOFF_MS;
        assert_eq!(started.elapsed(), Duration::from_millis(pauses_ms));
        shutdown.cancel();
        let stopped = handle_one(&d, "t", "g", &shutdown, &fail_first(u32::MAX)).await;
        assert_eq!(stopped, Handled::Stopped);
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_that_keeps_failing_is_rewound_to_and_handled_later_never_skipped() {
        let log = Arc::new(Mutex::new(BrokerLog::default()));
        let bus = Arc::new(ScriptedBus {
            log: log.clone(),
            messages: (0..3).map(delivery).collect(),
        });
        // The first message fails every attempt of its first delivery.
        let first_tries = Arc::new(AtomicU32::new(0));
        let handled = Arc::new(Mutex::new(Vec::<String>::new()));
        let shutdown = CancellationToken::new();
        let (tries, seen) = (first_tries.clone(), handled.clone());
        let worker = tokio::spawn(consume(bus, "t", "g", shutdown.clone(), move |env| {
            let (tries, seen) = (tries.clone(), seen.clone());
            async move {
                let id = env.message_id.to_string();
                if id == "m-0" && tries.fetch_add(1, Ordering::SeqCst) < ATTEMPTS_PER_MESSAGE {
                    return Err(anyhow::anyhow!("not yet"));
                }
                crate::lock(&seen).push(id);
                Ok(())
            }
        }));
        tokio::time::sleep(Duration::from_millis(10_000)).await;
        shutdown.cancel();
        worker.await.expect("the consumer stops");
        assert_eq!(
            crate::lock(&log).committed,
            3,
            "everything committed in the end"
        );
        let handled = crate::lock(&handled);
        assert!(
            handled.contains(&"m-0".to_owned()),
            "the failing message came again: {handled:?}"
        );
        assert_eq!(first_tries.load(Ordering::SeqCst), ATTEMPTS_PER_MESSAGE + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_consumer_commits_what_it_handled_and_asks_its_lag_once_a_second() {
        let log = Arc::new(Mutex::new(BrokerLog::default()));
        let bus = Arc::new(ScriptedBus {
            log: log.clone(),
            messages: (0..3).map(delivery).collect(),
        });
        let handled = Arc::new(AtomicU32::new(0));
        let shutdown = CancellationToken::new();
        let seen = handled.clone();
        let worker = tokio::spawn(consume(bus, "t", "g", shutdown.clone(), move |_env| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }));
        // Ten simulated seconds of polling an idle partition after the batch.
        tokio::time::sleep(Duration::from_millis(10_000)).await;
        shutdown.cancel();
        worker.await.expect("the consumer stops");
        let log = crate::lock(&log);
        assert_eq!(handled.load(Ordering::SeqCst), 3, "each message once");
        assert_eq!(log.committed, 3);
        // 50 polls of 200 ms; the lag is asked at the first and then once a second.
        assert!(
            (10..=11).contains(&log.lag_queries),
            "{} lag queries",
            log.lag_queries
        );
    }
}
