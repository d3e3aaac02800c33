//! The bus consumer loop (`ticketing_services::worker::consume`): one
//! order's messages in order, different orders concurrently, every message
//! committed after its effect.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_domain::messages::{BusMessage, Envelope};
use ticketing_domain::ports::{EventBus, OutgoingMessage};
use ticketing_domain::{HoldId, MessageId, OrderId};
use ticketing_mem::MemEventBus;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

fn message(order: &str, n: u32) -> OutgoingMessage {
    let env = Envelope {
        message_id: MessageId(format!("{order}-{n}")),
        trace_id: None,
        body: BusMessage::ConfirmSeats {
            order_id: OrderId(order.into()),
            hold_id: HoldId(format!("h{n}")),
        },
    };
    OutgoingMessage {
        topic: "t".into(),
        key: order.into(),
        payload: env.to_bytes(),
        headers: Vec::new(),
    }
}

#[tokio::test]
async fn a_slow_order_does_not_hold_up_other_orders_and_its_own_stay_in_order() {
    // One partition: every message below is in one batch of one partition.
    let bus = MemEventBus::new(1);
    for m in [
        message("a", 1),
        message("b", 1),
        message("a", 2),
        message("b", 2),
    ] {
        bus.publish(m).await.unwrap();
    }
    let release_a = Arc::new(Notify::new());
    let b_done = Arc::new(Notify::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shutdown = CancellationToken::new();
    let handler = {
        let (release_a, b_done, seen) = (release_a.clone(), b_done.clone(), seen.clone());
        move |env: Envelope| {
            let (release_a, b_done, seen) = (release_a.clone(), b_done.clone(), seen.clone());
            async move {
                let id = env.message_id.0.clone();
                if id == "a-1" {
                    release_a.notified().await;
                }
                seen.lock().unwrap().push(id.clone());
                if id == "b-2" {
                    b_done.notify_one();
                }
                Ok(())
            }
        }
    };
    let worker = tokio::spawn(ticketing_services::worker::consume(
        Arc::new(bus.clone()),
        "t",
        "g",
        shutdown.clone(),
        handler,
    ));
    tokio::time::timeout(Duration::from_secs(10), b_done.notified())
        .await
        .expect("order b handled while order a's first message still runs");
    assert_eq!(*seen.lock().unwrap(), ["b-1", "b-2"]);
    release_a.notify_one();
    // Bounded wait for every message to be handled and committed.
    for _ in 0..500 {
        if bus.lag("t", "g") == 0 && seen.lock().unwrap().len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*seen.lock().unwrap(), ["b-1", "b-2", "a-1", "a-2"]);
    assert_eq!(bus.lag("t", "g"), 0, "all four committed");
    shutdown.cancel();
    worker.await.unwrap();
}
