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
