//! Event bus conformance: per-key order, at-least-once delivery with
//! committed offsets (one at a time or a batch), redelivery after a consumer restart or rewind, one
//! delivery per group, independent groups, and consumer lag.
//!
//! Factory contract: a fresh broker (or fresh topic names) with no messages.
//! Topics are created on first use.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use ticketing_domain::ports::{Consumer, Delivery, EventBus, OutgoingMessage};

const TOPIC: &str = "conformance";
/// Longest wait for messages that must arrive (tokio time).
const ARRIVE_MS: u64 = 5_000;

fn msg(key: &str, n: u32) -> OutgoingMessage {
    OutgoingMessage {
        topic: TOPIC.into(),
        key: key.into(),
        payload: n.to_be_bytes().to_vec(),
        headers: vec![("n".into(), n.to_string())],
    }
}

fn num(d: &Delivery) -> u32 {
    u32::from_be_bytes(d.payload[..4].try_into().unwrap())
}

/// Polls until `want` messages arrived. Bounded: at most 50 polls that
/// bring nothing (each waits up to `ARRIVE_MS`), and `want` polls in all —
/// a bus may hand out small batches (the simulator's, over its network,
/// while the producer is still sending) without being wrong.
async fn take(c: &mut Box<dyn Consumer>, want: usize) -> Vec<Delivery> {
    let mut got = Vec::new();
    let mut empty_polls = 0;
    for _ in 0..want.max(1) + 50 {
        if got.len() >= want || empty_polls >= 50 {
            break;
        }
        let batch = c.poll(want - got.len(), ARRIVE_MS).await.unwrap();
        empty_polls += usize::from(batch.is_empty());
        got.extend(batch);
    }
    assert_eq!(got.len(), want, "messages delivered");
    got
}

/// A member of group `g` that has been delivered messages 0..5, all on key
/// `k` (one partition), none committed.
async fn five_delivered(bus: &dyn EventBus) -> (Box<dyn Consumer>, Vec<Delivery>) {
    let mut c = bus.subscribe(TOPIC, "g").await.unwrap();
    for n in 0..5u32 {
        bus.publish(msg("k", n)).await.unwrap();
    }
    let got = take(&mut c, 5).await;
    (c, got)
}

/// Nothing more arrives within a short wait.
async fn nothing_more(c: &mut Box<dyn Consumer>) {
    let extra = c.poll(10, 300).await.unwrap();
    assert!(
        extra.is_empty(),
        "unexpected redelivery: {:?}",
        extra.iter().map(num).collect::<Vec<_>>()
    );
}

/// Each key's messages arrive in publish order.
pub async fn per_key_order_is_kept<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn EventBus>>,
{
    let bus = make().await;
    let mut c = bus.subscribe(TOPIC, "g").await.unwrap();
    for n in 0..60u32 {
        bus.publish(msg(&format!("key-{}", n % 3), n))
            .await
            .unwrap();
    }
    let got = take(&mut c, 60).await;
    let mut by_key: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for d in &got {
        assert_eq!(
            d.headers,
            vec![("n".to_owned(), num(d).to_string())],
            "headers travel"
        );
        by_key.entry(d.key.clone()).or_default().push(num(d));
    }
    for (key, ns) in by_key {
        let mut sorted = ns.clone();
        sorted.sort_unstable();
        assert_eq!(ns, sorted, "order of {key}");
        assert_eq!(ns.len(), 20);
    }
}

/// Uncommitted messages are delivered again to the group's next consumer;
/// committed ones are not.
pub async fn restart_resumes_from_the_committed_offset<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn EventBus>>,
{
    let bus = make().await;
    for n in 0..10u32 {
        bus.publish(msg("one-key", n)).await.unwrap();
    }
    let mut c = bus.subscribe(TOPIC, "g").await.unwrap();
    let got = take(&mut c, 10).await;
    assert_eq!(
        got.iter().map(num).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    c.commit(&got[3]).await.unwrap();
    drop(c);
    let mut c = bus.subscribe(TOPIC, "g").await.unwrap();
    let again = take(&mut c, 6).await;
    assert_eq!(
        again.iter().map(num).collect::<Vec<_>>(),
        (4..10).collect::<Vec<_>>()
    );
    c.commit(again.last().unwrap()).await.unwrap();
    drop(c);
    // Committed up to the end: a restart sees only new messages.
    let mut c = bus.subscribe(TOPIC, "g").await.unwrap();
    nothing_more(&mut c).await;
    bus.publish(msg("one-key", 10)).await.unwrap();
    let new = take(&mut c, 1).await;
    assert_eq!(num(&new[0]), 10);
}

/// A consumer that committed in the middle of a large producer batch, then
/// went away, is followed by a member that resumes right after the commit —
/// promptly (the heart of at-least-once delivery; a Kafka-protocol broker
/// was seen to stall a resumed group for minutes in exactly this case).
pub async fn restart_mid_batch_resumes_promptly<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn EventBus>>,
{
    const TOTAL: u32 = 3_000;
    const FIRST: usize = 1_000;
    /// Generous for any healthy broker; far below the stall that was seen.
    const RESUME_WITHIN_MS: u64 = 30_000;
    let bus = make().await;
    // Published concurrently so a batching producer sends large batches.
    let mut publishing = tokio::task::JoinSet::new();
    for chunk in 0..10u32 {
        let bus = bus.clone();
        publishing.spawn(async move {
            for n in (chunk * 300)..(chunk * 300 + 300) {
                bus.publish(msg("batch-key", n)).await.unwrap();
            }
        });
    }
    let mut c = bus.subscribe(TOPIC, "g").await.unwrap();
    let first = take(&mut c, FIRST).await;
    c.commit(first.last().unwrap()).await.unwrap();
    while let Some(done) = publishing.join_next().await {
        done.unwrap();
    }
    drop(c);
    let mut c = bus.subscribe(TOPIC, "g").await.unwrap();
    let start = tokio::time::Instant::now();
    let mut rest = Vec::new();
    while rest.len() < TOTAL as usize - FIRST
        && start.elapsed() < std::time::Duration::from_millis(RESUME_WITHIN_MS)
    {
        rest.extend(c.poll(TOTAL as usize, 500).await.unwrap());
    }
    let mut all: Vec<u32> = first.iter().chain(rest.iter()).map(num).collect();
    assert_eq!(
        all.len(),
        TOTAL as usize,
        "after the restart {} of {} messages arrived within {RESUME_WITHIN_MS} ms",
        rest.len(),
        TOTAL as usize - FIRST
    );
    let (last, resumed) = (first.last().unwrap(), &rest[0]);
    assert_eq!(
        (resumed.partition, resumed.offset),
        (last.partition, last.offset + 1),
        "resumes right after the committed offset"
    );
    all.sort_unstable();
    assert_eq!(all, (0..TOTAL).collect::<Vec<_>>());
}

/// `commit_all` of a prefix of what was delivered covers, in each partition,
/// up to the last delivery of it in the prefix: the group's next member
/// gets exactly the rest.
pub async fn committing_a_batch_covers_each_partition<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn EventBus>>,
{
    let bus = make().await;
    let mut c = bus.subscribe(TOPIC, "g").await.unwrap();
    for n in 0..24u32 {
        bus.publish(msg(&format!("key-{}", n % 6), n))
            .await
            .unwrap();
    }
    let got = take(&mut c, 24).await;
    let prefix = &got[..15];
    c.commit_all(prefix).await.unwrap();
    c.commit_all(&[]).await.unwrap();
    drop(c);
    let mut covered: BTreeMap<u32, u64> = BTreeMap::new();
    for d in prefix {
        let e = covered.entry(d.partition).or_insert(d.offset);
        *e = (*e).max(d.offset);
    }
    let mut want: Vec<u32> = got
        .iter()
        .filter(|d| covered.get(&d.partition).is_none_or(|top| d.offset > *top))
        .map(num)
        .collect();
    want.sort_unstable();
    // At least once: a member may see a message twice (a rebalance), so
    // poll until every distinct one came (bounded: 50 polls with nothing).
    let mut c = bus.subscribe(TOPIC, "g").await.unwrap();
    let mut again = std::collections::BTreeSet::new();
    let mut empty_polls = 0;
    while again.len() < want.len() && empty_polls < 50 {
        let batch = c.poll(24, ARRIVE_MS).await.unwrap();
        empty_polls += usize::from(batch.is_empty());
        again.extend(batch.iter().map(num));
    }
    let again: Vec<u32> = again.into_iter().collect();
    assert_eq!(again, want, "redelivered after a batch commit");
}

/// `rewind` delivers everything uncommitted again (duplicate delivery).
pub async fn rewind_redelivers_uncommitted<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn EventBus>>,
{
    let bus = make().await;
    let (mut c, got) = five_delivered(bus.as_ref()).await;
    c.commit(&got[1]).await.unwrap();
    c.rewind().await.unwrap();
    let again = take(&mut c, 3).await;
    assert_eq!(again.iter().map(num).collect::<Vec<_>>(), vec![2, 3, 4]);
}

/// Each group gets every message. Within a group, members share the
/// partitions and every message reaches some member; a message is never
/// delivered again within the group once a commit covering it succeeded.
/// (Before that, a rebalance may hand it to another member: at least once.)
pub async fn groups_are_independent_and_members_share<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn EventBus>>,
{
    let bus = make().await;
    let mut a1 = bus.subscribe(TOPIC, "a").await.unwrap();
    let mut a2 = bus.subscribe(TOPIC, "a").await.unwrap();
    let mut b = bus.subscribe(TOPIC, "b").await.unwrap();
    for n in 0..40u32 {
        bus.publish(msg(&format!("key-{n}"), n)).await.unwrap();
    }
    let all_b = take(&mut b, 40).await;
    let mut nums_b: Vec<u32> = all_b.iter().map(num).collect();
    nums_b.sort_unstable();
    assert_eq!(
        nums_b,
        (0..40).collect::<Vec<_>>(),
        "group b gets everything"
    );

    // Group a: every delivery is committed at once; track, per partition,
    // the next offset the group has durably committed.
    let mut committed: BTreeMap<u32, u64> = BTreeMap::new();
    let mut seen: std::collections::BTreeSet<u32> = std::collections::BTreeSet::new();
    for _ in 0..100 {
        if seen.len() >= 40 {
            break;
        }
        for member in [&mut a1, &mut a2] {
            for d in member.poll(40, 100).await.unwrap() {
                let floor = committed.get(&d.partition).copied().unwrap_or(0);
                assert!(
                    d.offset >= floor,
                    "message {} (partition {}, offset {}) delivered again after a commit up to {floor}",
                    num(&d),
                    d.partition,
                    d.offset
                );
                seen.insert(num(&d));
                if member.commit(&d).await.is_ok() {
                    let next = committed.entry(d.partition).or_insert(0);
                    *next = (*next).max(d.offset + 1);
                }
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        (0..40).collect::<Vec<_>>(),
        "every message reaches group a"
    );
}

/// Lag counts the member's messages after the group's committed offset and
/// falls as commits cover them.
pub async fn lag_counts_what_the_group_has_not_committed<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn EventBus>>,
{
    let bus = make().await;
    let (mut c, got) = five_delivered(bus.as_ref()).await;
    assert_eq!(c.lag().await.unwrap(), Some(5), "nothing committed");
    c.commit(&got[1]).await.unwrap();
    assert_eq!(c.lag().await.unwrap(), Some(3), "two committed");
    c.commit(&got[4]).await.unwrap();
    assert_eq!(c.lag().await.unwrap(), Some(0), "all committed");
    bus.publish(msg("k", 5)).await.unwrap();
    assert_eq!(c.lag().await.unwrap(), Some(1), "a new message");
}

/// `event_bus_suite!(make)` runs every case; `event_bus_suite!(make,
/// known_broker_defect = "why")` marks `restart_mid_batch_resumes_promptly`
/// ignored with that reason (reported as skipped, never as passed) for a
/// broker known to fail it.
#[macro_export]
macro_rules! event_bus_suite {
    (@suite $make:expr, $(#[$restart:meta])*) => {
        mod event_bus_conformance {
            use super::*;
            #[tokio::test]
            async fn per_key_order_is_kept() {
                $crate::event_bus::per_key_order_is_kept($make).await
            }
            #[tokio::test]
            async fn restart_resumes_from_the_committed_offset() {
                $crate::event_bus::restart_resumes_from_the_committed_offset($make).await
            }
            #[tokio::test]
            $(#[$restart])*
            async fn restart_mid_batch_resumes_promptly() {
                $crate::event_bus::restart_mid_batch_resumes_promptly($make).await
            }
            #[tokio::test]
            async fn committing_a_batch_covers_each_partition() {
                $crate::event_bus::committing_a_batch_covers_each_partition($make).await
            }
            #[tokio::test]
            async fn rewind_redelivers_uncommitted() {
                $crate::event_bus::rewind_redelivers_uncommitted($make).await
            }
            #[tokio::test]
            async fn groups_are_independent_and_members_share() {
                $crate::event_bus::groups_are_independent_and_members_share($make).await
            }
            #[tokio::test]
            async fn lag_counts_what_the_group_has_not_committed() {
                $crate::event_bus::lag_counts_what_the_group_has_not_committed($make).await
            }
        }
    };
    ($make:expr) => {
        $crate::event_bus_suite!(@suite $make,);
    };
    ($make:expr, known_broker_defect = $why:literal) => {
        $crate::event_bus_suite!(@suite $make, #[ignore = $why]);
    };
}
