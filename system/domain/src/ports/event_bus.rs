use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum BusError {
    /// The broker did not answer or refused; for `publish` the message may or
    /// may not be stored (at-least-once: the caller retries). Retryable.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
}

/// A message to publish. Messages with the same `key` land on the same
/// partition and are delivered in publish order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// A delivered message with its position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// Publish/subscribe with offsets, Kafka-shaped.
#[async_trait]
pub trait EventBus: Send + Sync + std::fmt::Debug {
    /// Appends a message and returns `(partition, offset)` once the broker
    /// has acknowledged it durably (acks=all). Only then may an outbox row be
    /// marked sent.
    async fn publish(&self, msg: OutgoingMessage) -> Result<(u32, u64), BusError>;

    /// Joins consumer group `group` on `topic`. Partitions are shared among
    /// the group's live members; a new member starts each partition at the
    /// group's committed offset.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError>;
}

/// One member of a consumer group.
///
/// Delivery is at least once: anything not committed is delivered again to
/// whoever owns the partition next (after `rewind`, a restart or a
/// rebalance). Within a partition, messages arrive in offset order.
#[async_trait]
pub trait Consumer: Send + std::fmt::Debug {
    /// Up to `max` messages from this member's partitions, waiting up to
    /// `wait_ms` (tokio time) when none are ready. May return fewer or none.
    async fn poll(&mut self, max: usize, wait_ms: u64) -> Result<Vec<Delivery>, BusError>;

    /// Commits `d` and everything before it in its partition. Call only after
    /// the message's effect is durable.
    async fn commit(&mut self, d: &Delivery) -> Result<(), BusError>;

    /// Commits every delivery of `ds` (each, and everything before it in its
    /// partition) — in one broker round trip where the adapter can; by
    /// default, [`Consumer::commit`] on each in order. Call only after every
    /// one's effect is durable.
    async fn commit_all(&mut self, ds: &[Delivery]) -> Result<(), BusError> {
        for d in ds {
            self.commit(d).await?;
        }
        Ok(())
    }

    /// Goes back to the committed offsets: uncommitted messages come again.
    async fn rewind(&mut self) -> Result<(), BusError>;

    /// Consumer lag: messages in this member's partitions (as of its last
    /// poll) after the group's committed offsets. `None` where the adapter
    /// cannot tell (the simulator's remote bus). For metrics: it may cost a
    /// broker round trip per partition, so callers ask rarely.
    async fn lag(&mut self) -> Result<Option<u64>, BusError> {
        Ok(None)
    }

    /// The lag this member already knows, without asking anyone: the same
    /// count as [`Consumer::lag`], as of the adapter's last report from the
    /// broker (Kafka: librdkafka's statistics, once a second). `None` when
    /// the adapter keeps no such figure (then callers ask [`Consumer::lag`]).
    /// What the worker's `bus_consumer_lag` gauge reads where it can: a
    /// blocking round trip per partition every second stalls the consumer.
    fn known_lag(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    /// A consumer with only the required methods: it records commits.
    #[derive(Debug, Default)]
    struct Recording {
        committed: Vec<u64>,
    }

    #[async_trait]
    impl Consumer for Recording {
        async fn poll(&mut self, _max: usize, _wait_ms: u64) -> Result<Vec<Delivery>, BusError> {
            Ok(Vec::new())
        }
        async fn commit(&mut self, d: &Delivery) -> Result<(), BusError> {
            if d.offset == 99 {
                return Err(BusError::Unavailable("refused".into()));
            }
            self.committed.push(d.offset);
            Ok(())
        }
        async fn rewind(&mut self) -> Result<(), BusError> {
            Ok(())
        }
    }

    /// These futures never wait: one poll finishes them.
    fn now<T>(f: impl Future<Output = T>) -> T {
        match std::pin::pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the future waited"),
        }
    }

    fn at(offset: u64) -> Delivery {
        Delivery {
            topic: "t".into(),
            partition: 0,
            offset,
            key: "k".into(),
            payload: Vec::new(),
            headers: Vec::new(),
        }
    }

    #[test]
    fn commit_all_by_default_commits_each_in_order_and_stops_at_a_failure() {
        let mut c = Recording::default();
        now(c.commit_all(&[at(3), at(1), at(7)])).expect("commits");
        assert_eq!(c.committed, vec![3, 1, 7]);
        let refused = now(c.commit_all(&[at(8), at(99), at(9)]));
        assert!(refused.is_err());
        assert_eq!(c.committed, vec![3, 1, 7, 8], "nothing after the failure");
    }

    #[test]
    fn an_adapter_without_a_lag_figure_says_so() {
        let mut c = Recording::default();
        assert_eq!(now(c.lag()).expect("answers"), None);
        assert_eq!(c.known_lag(), None);
    }
}
