//! A spoke that sent `hub.subscribe` is reached through the hub's routes,
//! by its patterns, on a queue of its own: a dispatch costs what the
//! matching spokes cost, events keep their order across the first
//! subscription, and the slow-spoke policy holds on that queue too (for
//! `Skip`, in `tests/slow_spokes.rs`).

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;
use wshub::{Event, HubConfig, SlowSpokePolicy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_dispatched_while_spokes_first_subscribe_arrive_once_each_and_in_order() {
    const EVENTS: usize = 3_000;
    let hub = TestHub::start(HubConfig::default().broadcast_capacity(EVENTS)).await;
    let mut spokes = Vec::new();
    for _ in 0..8 {
        spokes.push(hub.connect().await);
    }
    let dispatching = {
        let hub = hub.hub.clone();
        tokio::spawn(async move {
            for i in 0..EVENTS {
                hub.dispatch(Event::new("seq", i.to_string(), json!(i))).unwrap();
                if i % 8 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    // Each spoke subscribes at a different moment of the stream, to a
    // pattern that matches all of it: nothing may be lost or doubled when
    // it moves from the broadcast channel to its own queue.
    let readers: Vec<_> = spokes
        .into_iter()
        .enumerate()
        .map(|(n, mut ws)| {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(500 * n as u64)).await;
                let pattern = if n % 2 == 0 { "*" } else { "seq:*" };
                send(&mut ws, json!({ "type": "hub.subscribe", "id": pattern }).to_string()).await;
                let mut next = 0;
                let mut acknowledged = false;
                while next < EVENTS {
                    let v = recv(&mut ws).await;
                    if v["type"] == "hub.subscribed" {
                        acknowledged = true;
                        continue;
                    }
                    assert_eq!(v["id"], next.to_string(), "spoke {n}: every event once, in order");
                    next += 1;
                }
                assert!(acknowledged || recv(&mut ws).await["type"] == "hub.subscribed");
            })
        })
        .collect();
    dispatching.await.unwrap();
    for reader in readers {
        tokio::time::timeout(WAIT * 3, reader).await.expect("readers finish").unwrap();
    }
    assert_eq!(hub.hub.stats().dropped, 0);
}

#[tokio::test]
async fn after_a_first_subscription_is_acknowledged_nothing_its_patterns_miss_arrives() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    // In-memory spokes on this one-thread runtime: each subscription is
    // written, then events are dispatched, before any spoke's task runs.
    // Whether a task takes the events or the subscription first varies from
    // spoke to spoke; after the acknowledgement, only what matches may come.
    let hub = wshub::Hub::new(HubConfig::default());
    let mut spokes = Vec::new();
    for _ in 0..16 {
        let (near, far) = tokio::io::duplex(64 * 1024);
        hub.accept(WebSocketStream::from_raw_socket(near, Role::Server, Some(hub.config().websocket_config())).await);
        spokes.push(WebSocketStream::from_raw_socket(far, Role::Client, None).await);
    }
    let next = async |ws: &mut WebSocketStream<tokio::io::DuplexStream>| -> serde_json::Value {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("in time") {
            Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
            other => panic!("{other:?}"),
        }
    };
    for ws in &mut spokes {
        ws.send(Message::text(json!({ "type": "hub.subscribe", "id": "wanted:*" }).to_string())).await.unwrap();
    }
    for i in 0..50 {
        hub.dispatch(Event::new("unwanted", i.to_string(), json!(null))).unwrap();
    }
    for ws in &mut spokes {
        while next(ws).await["type"] != "hub.subscribed" {}
    }
    hub.dispatch(Event::new("wanted", "next", json!(null))).unwrap();
    for ws in &mut spokes {
        assert_eq!(next(ws).await["id"], "next", "only what the pattern matches after the acknowledgement");
    }
}

#[tokio::test]
async fn a_spoke_whose_patterns_overlap_receives_each_event_once() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut ws = hub.connect().await;
    for pattern in ["chat:*", "chat:1", "*"] {
        hub_subscribe(&mut ws, pattern).await;
    }
    for (ty, id) in [("chat", "1"), ("chat", "2"), ("news", "1")] {
        assert_eq!(hub.hub.dispatch(Event::new(ty, id, json!(null))).unwrap(), 1);
    }
    for topic in ["chat:1", "chat:2", "news:1"] {
        let v = recv(&mut ws).await;
        assert_eq!(format!("{}:{}", v["type"].as_str().unwrap(), v["id"].as_str().unwrap()), topic);
    }
    expect_silence(&mut ws, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn dispatch_counts_the_spokes_that_never_subscribed_and_the_subscribed_ones_it_matches() {
    let hub = TestHub::start(HubConfig::default()).await;
    let _everything = hub.connect().await;
    let mut types = hub.connect().await;
    hub_subscribe(&mut types, "a:*").await;
    let mut topic = hub.connect().await;
    hub_subscribe(&mut topic, "b:1").await;

    let count = |ty: &str, id: &str| hub.hub.dispatch(Event::new(ty, id, json!(null))).unwrap();
    assert_eq!(count("a", "1"), 2, "the one that never subscribed, and a:*");
    assert_eq!(count("b", "1"), 2, "the one that never subscribed, and b:1");
    assert_eq!(count("b", "2"), 1, "only the one that never subscribed");

    assert_eq!(recv(&mut topic).await["id"], "1", "b:1 reached it");

    // Unsubscribing takes the route away; subscribing again puts it back.
    send(&mut topic, json!({ "type": "hub.unsubscribe", "id": "b:1" }).to_string()).await;
    assert_eq!(recv(&mut topic).await["type"], "hub.unsubscribed");
    assert_eq!(count("b", "1"), 1);
    hub_subscribe(&mut topic, "b:*").await;
    assert_eq!(count("b", "2"), 2);

    // A spoke that goes away leaves the routes.
    drop(types);
    hub.wait_until(|h| h.spoke_count() == 2).await;
    assert_eq!(count("a", "1"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_spoke_whose_queue_overflows_is_closed_with_1013_by_default() {
    // The write timeout is far off: the close comes from the full queue.
    let config = HubConfig::default().broadcast_capacity(16).write_timeout(Duration::from_secs(60));
    let hub = TestHub::start(config).await;
    let mut slow = hub.connect().await;
    hub_subscribe(&mut slow, "big:*").await;
    let mut reader = hub.connect().await;
    hub_subscribe(&mut reader, "other:*").await;

    flood(&hub, 4_000).await;
    assert_eq!(hub.hub.stats().lagged, 1, "counted once, when its queue overflowed");
    let (code, reason) = recv_close(&mut slow).await;
    assert_eq!((code, reason.as_str()), (1013, "too slow"));
    hub.wait_until(|h| h.spoke_count() == 1).await;

    // The other spoke was not held up.
    hub.hub.dispatch(Event::new("other", "1", json!(null))).unwrap();
    assert_eq!(recv(&mut reader).await["type"], "other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_spoke_that_stops_reading_shows_its_queue_filling_up_to_its_bound() {
    let config = HubConfig::default()
        .broadcast_capacity(64)
        .slow_spoke_policy(SlowSpokePolicy::Skip)
        .write_timeout(Duration::from_secs(30));
    let hub = TestHub::start(config).await;
    let mut slow = hub.connect().await;
    hub_subscribe(&mut slow, "big:*").await;
    let spoke = hub.hub.spokes()[0].clone();
    assert_eq!(spoke.queued(), 0);

    flood(&hub, 2_000).await;
    wait_for(|| spoke.queued() == 64).await;
    // Reading lets the task take its queue again.
    for _ in 0..2_000 {
        if spoke.queued() == 0 {
            return;
        }
        recv(&mut slow).await;
    }
    panic!("the queue did not empty while the spoke read");
}
