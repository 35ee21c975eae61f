//! `Hub::subscribe` and `Spoke::subscribe`: what spokes send, as streams.

mod support;

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use support::*;
use wshub::{HubConfig, Lagged};

#[tokio::test]
async fn events_from_any_spoke_reach_the_hub_subscription_with_their_origin() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut sub = hub.hub.subscribe("chat.message:room-1").unwrap();
    let mut a = hub.connect().await;
    let mut b = hub.connect().await;
    let ids: Vec<_> = hub.hub.spokes().iter().map(|s| s.id()).collect();

    send(&mut a, envelope("chat.message", "room-1", json!("from a"))).await;
    let first = next_item(&mut sub).await.unwrap();
    send(&mut b, envelope("chat.message", "room-1", json!("from b"))).await;
    let second = next_item(&mut sub).await.unwrap();

    assert_eq!(first.payload(), &json!("from a"));
    assert_eq!(first.origin(), Some(ids[0]));
    assert_eq!(second.payload(), &json!("from b"));
    assert_eq!(second.origin(), Some(ids[1]));
}

#[tokio::test]
async fn hub_subscriptions_filter_by_pattern() {
    let hub = TestHub::start(HubConfig::default()).await;
    let exact = hub.hub.subscribe("chat.message:room-1").unwrap();
    let by_type = hub.hub.subscribe("chat.message:*").unwrap();
    let all = hub.hub.subscribe("*").unwrap();
    let mut ws = hub.connect().await;

    for (ty, id) in
        [("chat.message", "room-1"), ("chat.message", "room-2"), ("chat.typing", "room-1"), ("chat.message", "")]
    {
        send(&mut ws, envelope(ty, id, json!(null))).await;
    }
    // A marker that only `*` sees, sent last: once it arrives, every earlier event has been delivered.
    send(&mut ws, envelope("marker", "", json!(null))).await;

    let topics = |events: Vec<wshub::Event>| events.iter().map(|e| e.topic()).collect::<Vec<_>>();
    let all: Vec<_> = all.map(Result::unwrap).take(5).collect().await;
    assert_eq!(
        topics(all),
        ["chat.message:room-1", "chat.message:room-2", "chat.typing:room-1", "chat.message:", "marker:"]
    );
    let exact: Vec<_> = exact.map(Result::unwrap).take(1).collect().await;
    assert_eq!(topics(exact), ["chat.message:room-1"]);
    let by_type: Vec<_> = by_type.map(Result::unwrap).take(3).collect().await;
    assert_eq!(topics(by_type), ["chat.message:room-1", "chat.message:room-2", "chat.message:"]);
}

#[tokio::test]
async fn hub_subscribe_refuses_an_invalid_pattern() {
    let hub = TestHub::start(HubConfig::default()).await;
    assert!(hub.hub.subscribe("chat.*").is_err());
    assert!(hub.hub.subscribe("").is_err());
}

#[tokio::test]
async fn subscriptions_compose_with_stream_combinators() {
    let hub = TestHub::start(HubConfig::default()).await;
    let sub = hub.hub.subscribe("n:*").unwrap();
    let mut ws = hub.connect().await;
    for i in 0..10 {
        send(&mut ws, envelope("n", &i.to_string(), json!(i))).await;
    }
    let evens = sub
        .filter_map(|item| async move { item.ok()?.payload_as::<i64>().ok() })
        .filter(|n| std::future::ready(n % 2 == 0))
        .take(3);
    // tokio-stream's `timeout` composes too: every item within WAIT.
    let evens: Vec<i64> = tokio_stream::StreamExt::timeout(evens, WAIT).map(|r| r.expect("in time")).collect().await;
    assert_eq!(evens, [0, 2, 4]);
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_told_how_many_events_it_missed() {
    let hub = TestHub::start(HubConfig::default().subscription_capacity(2)).await;
    let mut sub = hub.hub.subscribe("n:*").unwrap();
    let mut ws = hub.connect().await;
    for i in 0..5 {
        send(&mut ws, envelope("n", "", json!(i))).await;
    }
    hub.wait_until(|h| h.stats().subscription_dropped == 3).await;
    send(&mut ws, envelope("n", "", json!(5))).await;

    assert_eq!(next_item(&mut sub).await.unwrap().payload(), &json!(0));
    assert_eq!(next_item(&mut sub).await.unwrap().payload(), &json!(1));
    assert_eq!(next_item(&mut sub).await, Err(Lagged { missed: 3 }));
    assert_eq!(next_item(&mut sub).await.unwrap().payload(), &json!(5));
}

#[tokio::test]
async fn a_spoke_subscription_sees_only_that_spoke_and_ends_when_it_leaves() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut a = hub.connect().await;
    let mut b = hub.connect().await;
    let spoke_a = hub.hub.spokes()[0].clone();
    let mut from_a = spoke_a.subscribe("*").unwrap();

    send(&mut b, envelope("x", "from-b", json!(null))).await;
    send(&mut a, envelope("x", "from-a", json!(null))).await;
    let event = next_item(&mut from_a).await.unwrap();
    assert_eq!(event.id(), "from-a");
    assert_eq!(event.origin(), Some(spoke_a.id()));

    a.close(None).await.unwrap();
    let end = tokio::time::timeout(WAIT, from_a.next()).await.expect("the stream ends");
    assert!(end.is_none());
}

#[tokio::test]
async fn dropping_a_subscription_stops_delivery_to_it() {
    let hub = TestHub::start(HubConfig::default().subscription_capacity(1)).await;
    let sub = hub.hub.subscribe("*").unwrap();
    drop(sub);
    let mut ws = hub.connect().await;
    for _ in 0..3 {
        send(&mut ws, envelope("x", "", json!(null))).await;
    }
    hub.wait_until(|h| h.stats().events_in == 3).await;
    // A live subscription of capacity 1 would have dropped two of them.
    assert_eq!(hub.hub.stats().subscription_dropped, 0);
}

#[tokio::test]
async fn events_from_spokes_keep_their_payload_exactly() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut sub = hub.hub.subscribe("*").unwrap();
    let mut ws = hub.connect().await;
    let text = r#"{"type":"t","id":"x","payload":{"z":12345678901234567890123,"a":1.5e+400,"s":"é\u0000"}}"#;
    send(&mut ws, text).await;
    let event = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(
        event.to_json(),
        r#"{"type":"t","id":"x","payload":{"z":12345678901234567890123,"a":1.5e+400,"s":"é\u0000"}}"#
    );
}

#[tokio::test]
async fn messages_that_arrive_together_are_all_read() {
    // 100 envelopes in one TCP write: the socket wakes the hub once, and
    // tungstenite holds what it read beyond the first message.
    let hub = TestHub::start(HubConfig::default()).await;
    let mut sub = hub.hub.subscribe("together:*").unwrap();
    let mut raw = RawSpoke::connect(&hub).await;
    let frames: Vec<u8> = (0..100)
        .flat_map(|i| frame(0x1, envelope("together", &i.to_string(), json!(i)).as_bytes(), true, 0, true))
        .collect();
    raw.write(&frames).await;
    for i in 0..100 {
        let event = tokio::time::timeout(WAIT, sub.next()).await.expect("in time").unwrap().unwrap();
        assert_eq!(event.id(), i.to_string());
    }
}
