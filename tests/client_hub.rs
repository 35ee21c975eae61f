//! A `Client` against a `Hub`, both ways, over loopback sockets.
#![cfg(feature = "client")]

#[path = "support/client.rs"]
mod client_support;
mod support;

use std::time::Duration;

use client_support::{acknowledged, fast, next_event};
use futures::StreamExt;
use serde_json::json;
use support::{TestHub, WAIT, wait_for};
use wshub::client::DispatchError;
use wshub::{Client, Event, FrameKind, HubConfig};

async fn recv_hub(sub: &mut wshub::Subscription) -> Event {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(event))) => event,
        other => panic!("expected an event on the hub, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_dispatch_reaches_the_hubs_subscribers() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut greetings = hub.hub.subscribe("greeting:*").unwrap();
    let client = Client::connect(&hub.url(), fast()).await.unwrap();

    client.dispatch(Event::new("greeting", "room-1", json!({"text": "hi", "n": 12345678901234567890123u128}))).unwrap();

    let event = recv_hub(&mut greetings).await;
    assert_eq!(event.topic(), "greeting:room-1");
    assert_eq!(
        event.to_json(),
        r#"{"type":"greeting","id":"room-1","payload":{"text":"hi","n":12345678901234567890123}}"#
    );
    let spokes = hub.hub.spokes();
    assert_eq!(event.origin(), Some(spokes[0].id()));
}

#[tokio::test]
async fn a_client_can_send_binary_frames() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut events = hub.hub.subscribe("*").unwrap();
    let client = Client::connect(&hub.url(), fast().frame_kind(FrameKind::Binary)).await.unwrap();
    client.dispatch(Event::new("bin", "1", "payload")).unwrap();
    assert_eq!(recv_hub(&mut events).await.payload(), "payload");
    assert!(hub.hub.stats().errors.is_empty(), "{:?}", hub.hub.stats());
}

#[tokio::test]
async fn a_hub_dispatch_reaches_a_client_stream() {
    let hub = TestHub::start(HubConfig::default()).await;
    let client = Client::connect(&hub.url(), fast()).await.unwrap();
    let mut news = client.subscribe("news:*").unwrap();
    acknowledged(&news).await;

    hub.hub.dispatch(Event::new("news", "42", json!({"headline": "hub speaks"}))).unwrap();

    let event = next_event(&mut news).await;
    assert_eq!(event, Event::new("news", "42", json!({"headline": "hub speaks"})));
    assert_eq!(event.origin(), None);
}

#[tokio::test]
async fn one_dispatch_fans_out_to_many_clients() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut clients = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..25 {
        let client = Client::connect(&hub.url(), fast()).await.unwrap();
        let sub = client.subscribe("tick:").unwrap();
        acknowledged(&sub).await;
        clients.push(client);
        streams.push(sub);
    }
    assert_eq!(hub.hub.spoke_count(), 25);

    hub.hub.dispatch(Event::new("tick", "", 1)).unwrap();
    hub.hub.dispatch(Event::new("tick", "", 2)).unwrap();

    for sub in &mut streams {
        assert_eq!(next_event(sub).await.payload(), 1);
        assert_eq!(next_event(sub).await.payload(), 2);
    }
}

#[tokio::test]
async fn subscriptions_filter_on_the_hub_side() {
    let hub = TestHub::start(HubConfig::default()).await;
    let client = Client::connect(&hub.url(), fast()).await.unwrap();
    let mut wanted = client.subscribe("wanted:*").unwrap();
    acknowledged(&wanted).await;
    assert_eq!(hub.hub.spokes()[0].patterns(), Some(vec!["wanted:*".to_owned()]));
    let frames_before = hub.hub.stats().events_out;

    for i in 0..100 {
        hub.hub.dispatch(Event::new("unwanted", i.to_string(), i)).unwrap();
    }
    hub.hub.dispatch(Event::new("wanted", "last", ())).unwrap();
    assert_eq!(next_event(&mut wanted).await.topic(), "wanted:last");

    // The connection writes in order and counts each batch at its flush, so
    // once the frame for `wanted:last` is counted, any frame before it is too.
    wait_for(|| hub.hub.stats().events_out > frames_before).await;
    assert_eq!(hub.hub.stats().events_out - frames_before, 1, "only the wanted event went over the wire");
}

#[tokio::test]
async fn streams_share_a_pattern_and_the_last_one_dropped_unsubscribes() {
    let hub = TestHub::start(HubConfig::default()).await;
    let client = Client::connect(&hub.url(), fast()).await.unwrap();
    let mut first = client.subscribe("chat:*").unwrap();
    let mut second = client.subscribe("chat:*").unwrap();
    acknowledged(&first).await;

    hub.hub.dispatch(Event::new("chat", "a", "both see it")).unwrap();
    assert_eq!(next_event(&mut first).await.payload(), "both see it");
    assert_eq!(next_event(&mut second).await.payload(), "both see it");

    // Control envelopes are handled in order: once a later subscription is
    // acknowledged, an earlier unsubscribe has been handled too.
    drop(first);
    let barrier = client.subscribe("barrier-1:*").unwrap();
    acknowledged(&barrier).await;
    let patterns = hub.hub.spokes()[0].patterns().unwrap();
    assert!(patterns.contains(&"chat:*".to_owned()), "one stream still holds it: {patterns:?}");

    drop(second);
    let barrier = client.subscribe("barrier-2:*").unwrap();
    acknowledged(&barrier).await;
    let patterns = hub.hub.spokes()[0].patterns().unwrap();
    assert!(!patterns.contains(&"chat:*".to_owned()), "the last stream is gone: {patterns:?}");
}

#[tokio::test]
async fn a_relaying_hub_carries_events_from_one_client_to_another() {
    let hub = TestHub::start(HubConfig::default().relay(true)).await;
    let alice = Client::connect(&hub.url(), fast()).await.unwrap();
    let bob = Client::connect(&hub.url(), fast()).await.unwrap();
    let mut alice_hears = alice.subscribe("chat:*").unwrap();
    let mut bob_hears = bob.subscribe("chat:*").unwrap();
    acknowledged(&alice_hears).await;
    acknowledged(&bob_hears).await;

    alice.dispatch(Event::new("chat", "room", "from alice")).unwrap();
    assert_eq!(next_event(&mut bob_hears).await.payload(), "from alice");
    bob.dispatch(Event::new("chat", "room", "from bob")).unwrap();
    // Without echo, alice hears bob, not herself.
    assert_eq!(next_event(&mut alice_hears).await.payload(), "from bob");
    assert!(tokio::time::timeout(Duration::from_millis(50), bob_hears.next()).await.is_err(), "no echo for bob");
}

#[tokio::test]
async fn events_the_hub_would_refuse_are_handed_back() {
    let hub = TestHub::start(HubConfig::default()).await;
    let client = Client::connect(&hub.url(), fast()).await.unwrap();
    for ty in ["hub.subscribe", ""] {
        match client.dispatch(Event::new(ty, "x", 1)) {
            Err(DispatchError::InvalidEvent(event, _)) => assert_eq!(event.event_type(), ty),
            other => panic!("{ty:?}: {other:?}"),
        }
    }
    assert!("chat.*".parse::<wshub::Pattern>().is_err());
    assert!(client.subscribe("chat.*").is_err());
}

#[test]
fn client_types_can_be_shared_across_tasks() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send<T: Send + 'static>() {}
    send_sync::<Client>();
    send_sync::<wshub::ClientConfig>();
    send_sync::<wshub::client::ClientSubscription>();
    send::<wshub::client::ConnectionStates>();
    send::<wshub::client::HubErrors>();
    send_sync::<DispatchError>();
    send_sync::<wshub::client::ConnectError>();
    send_sync::<wshub::client::HubError>();
}
