//! # ticketing-kafka
//!
//! [`KafkaEventBus`]: the production [`EventBus`] on any Kafka-protocol
//! broker, through librdkafka (`rdkafka`).
//!
//! - **Publish** uses one idempotent producer (`enable.idempotence`,
//!   `acks=all`): `publish` returns only once the broker acknowledged the
//!   record, with its partition and offset — the outbox relay marks a row
//!   sent only after that. Records are keyed (order events by order id,
//!   seat commands by event id), and the `murmur2_random` partitioner puts
//!   a key on the same partition a Java client would.
//! - **Consume**: one `StreamConsumer` per [`Consumer`], in a consumer
//!   group, `enable.auto.commit=false`: the service commits after the
//!   effect is durable (at least once). Each partition delivers from the
//!   committed offset on without a gap (`continuity`: a broker that skips
//!   records is asked for them again). `commit` is synchronous — it returns
//!   when the broker stored the offset, so "committed" means committed, at
//!   the cost of one broker round trip on the calling worker.
//! - **Lag**: `lag()` asks the broker (committed offsets and watermarks, a
//!   blocking round trip per partition: for tests and operators);
//!   `known_lag()` is librdkafka's statistics report of the same count,
//!   refreshed every [`STATS_INTERVAL_MS`] on librdkafka's thread — what
//!   the services' lag gauge reads (the blocking query, once a second per
//!   consumer, held a runtime thread 25–43 ms each time under load).
//! - **Topics** are created on first use (some brokers, tansu among them,
//!   do not auto-create on produce), with the configured partition count.
//! - **Namespacing**: `topic_prefix` is prepended to every topic and group,
//!   so several deployments or tests share one broker without crosstalk.
//! - **Headers** carry W3C trace context (`traceparent`) and anything else
//!   the caller sets, as UTF-8 strings.
//!
//! Every call is bounded: `message.timeout.ms` and a tokio timeout on
//! publish, a timeout on admin calls, commits, and seeks. Failures are
//! [`BusError::Unavailable`] (retryable; a publish may or may not have landed).

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
mod continuity;

use continuity::{Continuity, Next};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_domain::ports::{BusError, Consumer, Delivery, EventBus, OutgoingMessage};

/// Bound on each broker query of [`Consumer::lag`] (metrics only).
const LAG_CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// How to reach the broker and shape topics: the `kafka` section of the
/// settings (every key optional; defaults below).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap list, `host:port[,host:port]`.
    pub brokers: String,
    /// Prepended to every topic and consumer group name.
    pub topic_prefix: String,
    /// Partitions of topics this bus creates.
    pub partitions: i32,
    /// Replication factor of topics this bus creates (1 on a single broker).
    pub replication: i32,
    /// Bound on publish (broker acknowledgement included), admin calls,
    /// commits and seeks.
    pub call_timeout_ms: u64,
    /// Consumer group session timeout: how fast a dead member's partitions move.
    pub session_timeout_ms: u64,
    /// Longest a fetch waits for data at the broker (`fetch.wait.max.ms`).
    /// Kafka answers as soon as data arrives; tansu 0.6 was measured to
    /// wait the full time, so this bounds each hop's latency there.
    pub fetch_wait_ms: u64,
    /// Create missing topics through the admin API. Off where topics are
    /// provisioned by someone else (or the broker has no admin API, like
    /// librdkafka's mock cluster).
    pub create_topics: bool,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self::new("127.0.0.1:9092")
    }
}

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic_prefix: String::new(),
            partitions: 4,
            replication: 1,
            call_timeout_ms: 10_000,
            session_timeout_ms: 10_000,
            fetch_wait_ms: 10,
            create_topics: true,
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

/// The Kafka [`EventBus`].
#[derive(Clone)]
pub struct KafkaEventBus {
    config: KafkaConfig,
    producer: FutureProducer,
    admin: Arc<AdminClient<DefaultClientContext>>,
    /// Topics known to exist (created or confirmed by this bus).
    topics: Arc<Mutex<BTreeSet<String>>>,
}

impl std::fmt::Debug for KafkaEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaEventBus")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KafkaEventBus {
    /// Builds the producer and admin client. librdkafka connects lazily;
    /// the first publish or subscribe reports an unreachable broker.
    pub fn new(config: KafkaConfig) -> Result<Self, BusError> {
        let timeout_ms = config.call_timeout_ms.to_string();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            // Small requests go out at once: with Nagle on, a produce or a
            // commit can wait for the broker's delayed ACK of the last one.
            .set("socket.nagle.disable", "true")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "2")
            .set("message.timeout.ms", &timeout_ms)
            .set("socket.timeout.ms", &timeout_ms)
            .create()
            .map_err(unavailable)?;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("socket.timeout.ms", &timeout_ms)
            .create()
            .map_err(unavailable)?;
        Ok(Self {
            config,
            producer,
            admin: Arc::new(admin),
            topics: Arc::new(Mutex::new(BTreeSet::new())),
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.call_timeout_ms)
    }

    fn name(&self, topic: &str) -> String {
        format!("{}{topic}", self.config.topic_prefix)
    }

    fn known(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates `topic` (already prefixed) unless it exists.
    async fn ensure_topic(&self, topic: &str) -> Result<(), BusError> {
        if !self.config.create_topics || self.known().contains(topic) {
            return Ok(());
        }
        let new = NewTopic::new(
            topic,
            self.config.partitions,
            TopicReplication::Fixed(self.config.replication),
        );
        let options = AdminOptions::new().operation_timeout(Some(self.timeout()));
        let results =
            tokio::time::timeout(self.timeout(), self.admin.create_topics([&new], &options))
                .await
                .map_err(|_| unavailable("create topic timed out"))?
                .map_err(unavailable)?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(unavailable(format!("cannot create topic {t}: {code}")));
                }
            }
        }
        self.known().insert(topic.to_owned());
        Ok(())
    }

    /// Creates the given topics now (at start-up), so the first request
    /// does not pay for it.
    pub async fn ensure_topics(&self, topics: &[&str]) -> Result<(), BusError> {
        for t in topics {
            self.ensure_topic(&self.name(t)).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl EventBus for KafkaEventBus {
    async fn publish(&self, msg: OutgoingMessage) -> Result<(u32, u64), BusError> {
        let topic = self.name(&msg.topic);
        self.ensure_topic(&topic).await?;
        let mut headers = OwnedHeaders::new_with_capacity(msg.headers.len());
        for (k, v) in &msg.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let record = FutureRecord::to(&topic)
            .key(&msg.key)
            .payload(&msg.payload)
            .headers(headers);
        let send = self.producer.send(record, self.timeout());
        // message.timeout.ms bounds delivery; the outer timeout bounds the
        // whole call even if librdkafka's queue is full.
        let delivered = tokio::time::timeout(self.timeout() * 2, send)
            .await
            .map_err(|_| unavailable("publish timed out"))?
            .map_err(|(e, _)| unavailable(e))?;
        Ok((
            u32::try_from(delivered.partition).unwrap_or(0),
            u64::try_from(delivered.offset).unwrap_or(0),
        ))
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        let topic = self.name(topic);
        self.ensure_topic(&topic).await?;
        let consumer: StreamConsumer<Assignments> = ClientConfig::new()
            .set("bootstrap.servers", &self.config.brokers)
            .set("socket.nagle.disable", "true") // as the producer's
            .set("group.id", self.name(group))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                self.config.session_timeout_ms.to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (self.config.session_timeout_ms / 4).max(100).to_string(),
            )
            .set("fetch.wait.max.ms", self.config.fetch_wait_ms.to_string())
            .set("socket.timeout.ms", self.config.call_timeout_ms.to_string())
            .set("statistics.interval.ms", STATS_INTERVAL_MS.to_string())
            .create_with_context(Assignments::default())
            .map_err(unavailable)?;
        consumer.subscribe(&[&topic]).map_err(unavailable)?;
        Ok(Box::new(KafkaConsumer {
            consumer,
            timeout: self.timeout(),
            prefix_len: self.config.topic_prefix.len(),
            topic,
            continuity: Continuity::default(),
            seen_assignment: 0,
        }))
    }
}

/// Messages of `partitions` past the group's committed offsets (from the
/// start where the group has not committed): what a restart would deliver.
/// librdkafka answers these calls synchronously, each within `timeout`.
fn committed_lag<X: ConsumerContext, C: rdkafka::consumer::Consumer<X>>(
    consumer: &C,
    partitions: TopicPartitionList,
    timeout: Duration,
) -> Result<u64, BusError> {
    let committed = consumer
        .committed_offsets(partitions, timeout)
        .map_err(unavailable)?;
    let mut lag = 0u64;
    for e in committed.elements() {
        let (low, high) = consumer
            .fetch_watermarks(e.topic(), e.partition(), timeout)
            .map_err(unavailable)?;
        let done = match e.offset() {
            Offset::Offset(n) => n,
            _ => low,
        };
        lag += u64::try_from(high.saturating_sub(done)).unwrap_or(0);
    }
    Ok(lag)
}

impl KafkaEventBus {
    /// The lag of consumer group `group` on `topic`, summed over every
    /// partition, read from outside the group: a client with the group's id
    /// that never subscribes asks for its committed offsets without joining
    /// (no rebalance for the members). For tests and operators waiting until
    /// a group has caught up.
    pub async fn group_lag(&self, topic: &str, group: &str) -> Result<u64, BusError> {
        let topic = self.name(topic);
        let timeout = self.timeout();
        let reader: rdkafka::consumer::BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.config.brokers)
            .set("group.id", self.name(group))
            .set("enable.auto.commit", "false")
            .set("socket.timeout.ms", self.config.call_timeout_ms.to_string())
            .create()
            .map_err(unavailable)?;
        let metadata = reader
            .fetch_metadata(Some(&topic), timeout)
            .map_err(unavailable)?;
        let mut partitions = TopicPartitionList::new();
        for t in metadata.topics() {
            for p in t.partitions() {
                partitions.add_partition(&topic, p.id());
            }
        }
        committed_lag(&reader, partitions, timeout)
    }
}

/// Counts the consumer's assignments, so the consumer knows when the
/// broker starts its partitions again at the committed offsets; and keeps
/// the member's lag from librdkafka's statistics (see [`STATS_INTERVAL_MS`]).
#[derive(Debug)]
pub struct Assignments {
    generation: AtomicU64,
    /// Messages after the committed offsets in the assigned partitions, as
    /// of the last statistics report; [`LAG_UNKNOWN`] before the first.
    lag: AtomicU64,
}

/// `Assignments::lag` before any statistics arrived.
const LAG_UNKNOWN: u64 = u64::MAX;

/// How often librdkafka reports a consumer's statistics (on its own
/// thread): the lag the worker's gauge shows, with no blocking query.
pub const STATS_INTERVAL_MS: u64 = 1_000;

impl Default for Assignments {
    fn default() -> Self {
        Self {
            generation: AtomicU64::new(0),
            lag: AtomicU64::new(LAG_UNKNOWN),
        }
    }
}

/// The committed lag of the partitions this member is assigned, from one
/// statistics report: the high watermark minus the committed offset (minus
/// the low watermark where the group has not committed), as `lag()` counts.
fn lag_from_stats(statistics: &rdkafka::Statistics) -> u64 {
    let mut lag = 0u64;
    for topic in statistics.topics.values() {
        for p in topic.partitions.values() {
            if p.partition < 0 || !p.desired || p.hi_offset < 0 {
                continue;
            }
            let done = if p.committed_offset >= 0 {
                p.committed_offset
            } else {
                p.lo_offset.max(0)
            };
            lag += u64::try_from(p.hi_offset.saturating_sub(done)).unwrap_or(0);
        }
    }
    lag
}

impl ClientContext for Assignments {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.lag
            .store(lag_from_stats(&statistics), Ordering::Relaxed);
    }
}

impl ConsumerContext for Assignments {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// One member of a consumer group.
pub struct KafkaConsumer {
    consumer: StreamConsumer<Assignments>,
    timeout: Duration,
    prefix_len: usize,
    /// The subscribed topic's full (prefixed) name, for commits.
    topic: String,
    /// Each partition delivers from its committed offset on, in order, with
    /// no record skipped (see `continuity`: a broker defect).
    continuity: Continuity,
    /// The assignment `continuity` belongs to.
    seen_assignment: u64,
}

impl std::fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConsumer").finish_non_exhaustive()
    }
}

impl KafkaConsumer {
    fn delivery(&self, m: &BorrowedMessage<'_>) -> Delivery {
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        let v = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                        (h.key.to_owned(), v.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Delivery {
            topic: m
                .topic()
                .get(self.prefix_len..)
                .unwrap_or_default()
                .to_owned(),
            partition: u32::try_from(m.partition()).unwrap_or(0),
            offset: u64::try_from(m.offset()).unwrap_or(0),
            key: m
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default(),
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers,
        }
    }
}

impl KafkaConsumer {
    /// Keeps of `batch` what continues each partition where it must: drops
    /// records before the expected offset, and on a gap seeks the partition
    /// back and drops its later records (they come again after the seek).
    fn continuous(&mut self, batch: Vec<Delivery>) -> Result<Vec<Delivery>, BusError> {
        let generation = self.consumer.context().generation.load(Ordering::SeqCst);
        if generation != self.seen_assignment {
            self.continuity.clear();
            self.seen_assignment = generation;
        }
        let mut kept = Vec::with_capacity(batch.len());
        let mut held_back: BTreeSet<i32> = BTreeSet::new();
        for d in batch {
            let partition = i32::try_from(d.partition).unwrap_or(0);
            let offset = i64::try_from(d.offset).unwrap_or(i64::MAX);
            if held_back.contains(&partition) {
                continue;
            }
            if !self.continuity.knows(partition) {
                let committed = self.committed(partition)?;
                self.continuity
                    .start(partition, committed.unwrap_or(offset));
            }
            match self.continuity.check(partition, offset) {
                Next::Deliver => kept.push(d),
                Next::Duplicate => {}
                Next::Lost { missing } => {
                    tracing::error!(topic = %self.topic, partition, offset, missing, "records missing from the log were skipped");
                    kept.push(d);
                }
                Next::Gap { seek_to } => {
                    tracing::warn!(topic = %self.topic, partition, offset, seek_to, "the broker skipped records: fetching them again");
                    held_back.insert(partition);
                    self.consumer
                        .seek(
                            &self.topic,
                            partition,
                            Offset::Offset(seek_to),
                            self.timeout,
                        )
                        .map_err(unavailable)?;
                }
            }
        }
        Ok(kept)
    }

    /// The group's committed offset of `partition` (None: nothing committed).
    fn committed(&self, partition: i32) -> Result<Option<i64>, BusError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, partition);
        let committed = self
            .consumer
            .committed_offsets(tpl, self.timeout)
            .map_err(unavailable)?;
        Ok(committed.elements().first().and_then(|e| match e.offset() {
            Offset::Offset(n) => Some(n),
            _ => None,
        }))
    }
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, wait_ms: u64) -> Result<Vec<Delivery>, BusError> {
        let mut out = Vec::new();
        let first =
            tokio::time::timeout(Duration::from_millis(wait_ms), self.consumer.recv()).await;
        match first {
            Err(_) => return Ok(out),
            Ok(Err(e)) => return Err(unavailable(e)),
            Ok(Ok(m)) => out.push(self.delivery(&m)),
        }
        // Take what is already fetched, without waiting again.
        while out.len() < max {
            match tokio::time::timeout(Duration::ZERO, self.consumer.recv()).await {
                Ok(Ok(m)) => out.push(self.delivery(&m)),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "kafka consumer error after a fetch");
                    break;
                }
                Err(_) => break,
            }
        }
        self.continuous(out)
    }

    async fn commit(&mut self, d: &Delivery) -> Result<(), BusError> {
        let mut tpl = TopicPartitionList::new();
        let next = i64::try_from(d.offset).unwrap_or(i64::MAX - 1) + 1;
        tpl.add_partition_offset(
            &self.topic,
            i32::try_from(d.partition).unwrap_or(0),
            Offset::Offset(next),
        )
        .map_err(unavailable)?;
        self.consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(unavailable)
    }

    /// One commit for the batch: the highest offset of each partition.
    async fn commit_all(&mut self, ds: &[Delivery]) -> Result<(), BusError> {
        let mut next: BTreeMap<u32, i64> = BTreeMap::new();
        for d in ds {
            let n = i64::try_from(d.offset).unwrap_or(i64::MAX - 1) + 1;
            let e = next.entry(d.partition).or_insert(n);
            *e = (*e).max(n);
        }
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (p, n) in next {
            tpl.add_partition_offset(
                &self.topic,
                i32::try_from(p).unwrap_or(0),
                Offset::Offset(n),
            )
            .map_err(unavailable)?;
        }
        self.consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(unavailable)
    }

    async fn lag(&mut self) -> Result<Option<u64>, BusError> {
        // librdkafka answers these synchronously: a short bound, so a broker
        // that is away holds this task briefly (the caller then backs off).
        let timeout = self.timeout.min(LAG_CALL_TIMEOUT);
        let assigned = self.consumer.assignment().map_err(unavailable)?;
        if assigned.count() == 0 {
            return Ok(Some(0));
        }
        committed_lag(&self.consumer, assigned, timeout).map(Some)
    }

    fn known_lag(&self) -> Option<u64> {
        match self.consumer.context().lag.load(Ordering::Relaxed) {
            LAG_UNKNOWN => None,
            lag => Some(lag),
        }
    }

    async fn rewind(&mut self) -> Result<(), BusError> {
        self.continuity.clear();
        let assigned = self.consumer.assignment().map_err(unavailable)?;
        if assigned.count() == 0 {
            return Ok(());
        }
        let committed = self
            .consumer
            .committed_offsets(assigned, self.timeout)
            .map_err(unavailable)?;
        let mut seek = TopicPartitionList::new();
        for e in committed.elements() {
            // No commit yet: back to the start (auto.offset.reset=earliest).
            let offset = match e.offset() {
                Offset::Offset(n) => Offset::Offset(n),
                _ => Offset::Beginning,
            };
            seek.add_partition_offset(e.topic(), e.partition(), offset)
                .map_err(unavailable)?;
        }
        let result = self
            .consumer
            .seek_partitions(seek, self.timeout)
            .map_err(unavailable)?;
        for e in result.elements() {
            if let Err(err) = e.error() {
                return Err(unavailable(format!(
                    "seek {}[{}] failed: {err}",
                    e.topic(),
                    e.partition()
                )));
            }
        }
        Ok(())
    }
}
