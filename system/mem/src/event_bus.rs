//! In-memory event bus: the reference model of the Kafka adapter.
//!
//! Topics have a fixed number of partitions; a message's partition is a
//! stable hash of its key, so one key's messages keep their order. Consumer
//! groups keep committed offsets; live members share partitions
//! (partition `p` goes to member `p mod n` in join order) and every
//! membership change is a rebalance: members restart their new partitions
//! from the committed offsets. Uncommitted messages are therefore delivered
//! again — at least once, as in Kafka.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use ticketing_domain::ports::{BusError, Consumer, Delivery, EventBus, OutgoingMessage};
use tokio::sync::Notify;

#[derive(Debug, Clone)]
struct Stored {
    key: String,
    payload: Vec<u8>,
    headers: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct Group {
    committed: BTreeMap<u32, u64>,
    /// Member ids in join order.
    members: Vec<u64>,
    generation: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// topic -> partitions -> messages (offset = index).
    topics: BTreeMap<String, Vec<Vec<Stored>>>,
    /// (topic, group) -> group state.
    groups: BTreeMap<(String, String), Group>,
    next_member: u64,
    /// When false, every call fails with `Unavailable` (an outage, for tests).
    down: bool,
}

impl Inner {
    /// Messages in `partitions` of `topic` after `group`'s committed offsets.
    fn lag(&self, topic: &str, group: &str, partitions: impl Iterator<Item = u32>) -> u64 {
        let Some(parts) = self.topics.get(topic) else {
            return 0;
        };
        let committed = self.groups.get(&(topic.to_owned(), group.to_owned()));
        partitions
            .map(|p| {
                let end = parts.get(p as usize).map_or(0, |ms| ms.len() as u64);
                let done = committed
                    .and_then(|g| g.committed.get(&p).copied())
                    .unwrap_or(0);
                end.saturating_sub(done)
            })
            .sum()
    }
}

/// The in-memory [`EventBus`].
#[derive(Debug, Clone)]
pub struct MemEventBus {
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
    partitions: u32,
}

impl Default for MemEventBus {
    fn default() -> Self {
        Self::new(4)
    }
}

/// FNV-1a: stable across runs and platforms, unlike `DefaultHasher`.
fn partition_for(key: &str, partitions: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % partitions
}

impl MemEventBus {
    pub fn new(partitions: u32) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner::default())),
            notify: Arc::new(Notify::new()),
            partitions: partitions.max(1),
        }
    }

    /// Simulates a broker outage (true) or its end (false). Nothing stored
    /// is lost: this models an acks=all broker that is unreachable.
    pub fn set_down(&self, down: bool) {
        crate::lock(&self.inner).down = down;
        self.notify.notify_waiters();
    }

    /// Total messages in a topic (all partitions) — for tests and audits.
    pub fn topic_len(&self, topic: &str) -> usize {
        crate::lock(&self.inner)
            .topics
            .get(topic)
            .map_or(0, |ps| ps.iter().map(Vec::len).sum())
    }

    /// Every payload in `topic`, partition by partition (for audits).
    pub fn payloads(&self, topic: &str) -> Vec<Vec<u8>> {
        crate::lock(&self.inner)
            .topics
            .get(topic)
            .map(|ps| ps.iter().flatten().map(|m| m.payload.clone()).collect())
            .unwrap_or_default()
    }

    /// Messages in `topic` not yet committed by `group` (consumer lag).
    pub fn lag(&self, topic: &str, group: &str) -> u64 {
        let inner = crate::lock(&self.inner);
        let partitions = inner.topics.get(topic).map_or(0, |ps| ps.len() as u32);
        inner.lag(topic, group, 0..partitions)
    }

    fn topic<'a>(inner: &'a mut Inner, topic: &str, partitions: u32) -> &'a mut Vec<Vec<Stored>> {
        inner
            .topics
            .entry(topic.to_owned())
            .or_insert_with(|| vec![Vec::new(); partitions as usize])
    }
}

#[async_trait]
impl EventBus for MemEventBus {
    async fn publish(&self, msg: OutgoingMessage) -> Result<(u32, u64), BusError> {
        let mut inner = crate::lock(&self.inner);
        if inner.down {
            return Err(BusError::Unavailable("broker down".into()));
        }
        let p = partition_for(&msg.key, self.partitions);
        let part = &mut Self::topic(&mut inner, &msg.topic, self.partitions)[p as usize];
        part.push(Stored {
            key: msg.key,
            payload: msg.payload,
            headers: msg.headers,
        });
        let offset = part.len() as u64 - 1;
        drop(inner);
        self.notify.notify_waiters();
        Ok((p, offset))
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        let mut inner = crate::lock(&self.inner);
        if inner.down {
            return Err(BusError::Unavailable("broker down".into()));
        }
        Self::topic(&mut inner, topic, self.partitions);
        inner.next_member += 1;
        let member = inner.next_member;
        let g = inner
            .groups
            .entry((topic.to_owned(), group.to_owned()))
            .or_default();
        g.members.push(member);
        g.generation += 1;
        drop(inner);
        self.notify.notify_waiters();
        Ok(Box::new(MemConsumer {
            bus: self.clone(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            member,
            generation: 0,
            positions: BTreeMap::new(),
        }))
    }
}

/// One member of a consumer group on a [`MemEventBus`]. Dropping it leaves
/// the group (a rebalance).
#[derive(Debug)]
pub struct MemConsumer {
    bus: MemEventBus,
    topic: String,
    group: String,
    member: u64,
    /// The group generation `positions` was computed for.
    generation: u64,
    /// Next offset to deliver, per assigned partition.
    positions: BTreeMap<u32, u64>,
}

impl MemConsumer {
    fn key(&self) -> (String, String) {
        (self.topic.clone(), self.group.clone())
    }

    /// Re-syncs the assignment after a rebalance; returns the fetched batch.
    fn fetch(&mut self, max: usize) -> Result<Vec<Delivery>, BusError> {
        let partitions = self.bus.partitions;
        let inner = crate::lock(&self.bus.inner);
        if inner.down {
            return Err(BusError::Unavailable("broker down".into()));
        }
        let key = self.key();
        let g = inner
            .groups
            .get(&key)
            .ok_or_else(|| BusError::Unavailable("consumer group vanished".into()))?;
        if g.generation != self.generation {
            let n = g.members.len() as u32;
            let idx = g.members.iter().position(|m| *m == self.member);
            self.positions = match idx {
                Some(i) => (0..partitions)
                    .filter(|p| p % n == i as u32)
                    .map(|p| (p, g.committed.get(&p).copied().unwrap_or(0)))
                    .collect(),
                None => BTreeMap::new(),
            };
            self.generation = g.generation;
        }
        let empty = Vec::new();
        let parts = inner.topics.get(&self.topic).unwrap_or(&empty);
        let mut out = Vec::new();
        // Round-robin across partitions so one busy key cannot starve others.
        let mut progressed = true;
        while out.len() < max && progressed {
            progressed = false;
            for (p, pos) in self.positions.iter_mut() {
                if out.len() >= max {
                    break;
                }
                if let Some(m) = parts.get(*p as usize).and_then(|ms| ms.get(*pos as usize)) {
                    out.push(Delivery {
                        topic: self.topic.clone(),
                        partition: *p,
                        offset: *pos,
                        key: m.key.clone(),
                        payload: m.payload.clone(),
                        headers: m.headers.clone(),
                    });
                    *pos += 1;
                    progressed = true;
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Consumer for MemConsumer {
    async fn poll(&mut self, max: usize, wait_ms: u64) -> Result<Vec<Delivery>, BusError> {
        let notify = self.bus.notify.clone();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(wait_ms);
        // Bounded: at most one fetch per wake-up until the deadline.
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let batch = self.fetch(max)?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn lag(&mut self) -> Result<Option<u64>, BusError> {
        let inner = crate::lock(&self.bus.inner);
        if inner.down {
            return Err(BusError::Unavailable("broker down".into()));
        }
        let mine = self.positions.keys().copied();
        Ok(Some(inner.lag(&self.topic, &self.group, mine)))
    }

    async fn commit(&mut self, d: &Delivery) -> Result<(), BusError> {
        let mut inner = crate::lock(&self.bus.inner);
        if inner.down {
            return Err(BusError::Unavailable("broker down".into()));
        }
        let key = self.key();
        let g = inner
            .groups
            .get_mut(&key)
            .ok_or_else(|| BusError::Unavailable("consumer group vanished".into()))?;
        // As in Kafka, a member fenced by a rebalance cannot commit.
        if g.generation != self.generation || !self.positions.contains_key(&d.partition) {
            return Err(BusError::Unavailable(
                "partition reassigned by a rebalance".into(),
            ));
        }
        g.committed.insert(d.partition, d.offset + 1);
        Ok(())
    }

    async fn rewind(&mut self) -> Result<(), BusError> {
        // Forget positions: the next fetch recomputes them from committed.
        self.generation = 0;
        Ok(())
    }
}

impl Drop for MemConsumer {
    fn drop(&mut self) {
        let key = self.key();
        let mut inner = crate::lock(&self.bus.inner);
        if let Some(g) = inner.groups.get_mut(&key) {
            g.members.retain(|m| *m != self.member);
            g.generation += 1;
        }
        drop(inner);
        self.bus.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(key: &str, n: u8) -> OutgoingMessage {
        OutgoingMessage {
            topic: "t".into(),
            key: key.into(),
            payload: vec![n],
            headers: vec![],
        }
    }

    #[tokio::test]
    async fn uncommitted_messages_come_again_after_restart() {
        let bus = MemEventBus::new(2);
        for i in 0..5 {
            bus.publish(msg("k", i)).await.unwrap();
        }
        let mut c = bus.subscribe("t", "g").await.unwrap();
        let got = c.poll(10, 10).await.unwrap();
        assert_eq!(
            got.iter().map(|d| d.payload[0]).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        c.commit(&got[1]).await.unwrap();
        drop(c);
        let mut c2 = bus.subscribe("t", "g").await.unwrap();
        let again = c2.poll(10, 10).await.unwrap();
        assert_eq!(
            again.iter().map(|d| d.payload[0]).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        assert_eq!(bus.lag("t", "g"), 3);
    }

    #[tokio::test]
    async fn two_members_split_partitions_and_see_each_message_once() {
        let bus = MemEventBus::new(4);
        let mut a = bus.subscribe("t", "g").await.unwrap();
        let mut b = bus.subscribe("t", "g").await.unwrap();
        for i in 0..40u8 {
            bus.publish(msg(&format!("key{i}"), i)).await.unwrap();
        }
        let mut seen: Vec<u8> = Vec::new();
        seen.extend(a.poll(100, 10).await.unwrap().iter().map(|d| d.payload[0]));
        let from_a = seen.len();
        seen.extend(b.poll(100, 10).await.unwrap().iter().map(|d| d.payload[0]));
        seen.sort_unstable();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
        assert!(from_a > 0 && from_a < 40, "both members got work: {from_a}");
    }

    #[tokio::test]
    async fn outage_refuses_publish_and_keeps_data() {
        let bus = MemEventBus::new(1);
        bus.publish(msg("k", 1)).await.unwrap();
        bus.set_down(true);
        assert!(bus.publish(msg("k", 2)).await.is_err());
        bus.set_down(false);
        let mut c = bus.subscribe("t", "g").await.unwrap();
        assert_eq!(c.poll(10, 10).await.unwrap().len(), 1);
    }
}
