//! Server-side subscriptions (`hub.subscribe` / `hub.unsubscribe`) and relaying.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;
use wshub::{Event, HubConfig};

const QUIET: Duration = Duration::from_millis(150);

#[tokio::test]
async fn a_spoke_that_never_subscribed_receives_everything() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut ws = hub.connect().await;
    hub.hub.dispatch(Event::new("a", "1", ())).unwrap();
    hub.hub.dispatch(Event::new("b", "2", ())).unwrap();
    assert_eq!(recv(&mut ws).await["type"], "a");
    assert_eq!(recv(&mut ws).await["type"], "b");
}

#[tokio::test]
async fn a_subscribed_spoke_receives_only_what_matches_its_patterns() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut ws = hub.connect().await;
    hub_subscribe(&mut ws, "chat.message:room-1").await;
    hub_subscribe(&mut ws, "presence:*").await;
    assert_eq!(hub.hub.spokes()[0].patterns(), Some(vec!["chat.message:room-1".into(), "presence:*".into()]));

    for (ty, id) in [("chat.message", "room-2"), ("chat.message", "room-1"), ("other", "x"), ("presence", "")] {
        hub.hub.dispatch(Event::new(ty, id, ())).unwrap();
    }
    assert_eq!(recv(&mut ws).await["id"], "room-1");
    assert_eq!(recv(&mut ws).await["type"], "presence");
    expect_silence(&mut ws, QUIET).await;
}

#[tokio::test]
async fn unsubscribing_from_every_pattern_means_receiving_nothing() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut ws = hub.connect().await;
    hub_subscribe(&mut ws, "*").await;
    send(&mut ws, json!({"type": "hub.unsubscribe", "id": "*"}).to_string()).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "hub.unsubscribed", "id": "*", "payload": null}));

    hub.hub.dispatch(Event::new("a", "", ())).unwrap();
    expect_silence(&mut ws, QUIET).await;

    hub_subscribe(&mut ws, "a:*").await;
    hub.hub.dispatch(Event::new("a", "", ())).unwrap();
    assert_eq!(recv(&mut ws).await["type"], "a");
}

#[tokio::test]
async fn unsubscribing_from_a_pattern_not_held_is_acknowledged_and_changes_nothing() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut ws = hub.connect().await;
    send(&mut ws, json!({"type": "hub.unsubscribe", "id": "never:*"}).to_string()).await;
    assert_eq!(recv(&mut ws).await["type"], "hub.unsubscribed");
    // Still a spoke that never subscribed: it receives everything.
    hub.hub.dispatch(Event::new("a", "", ())).unwrap();
    assert_eq!(recv(&mut ws).await["type"], "a");
    assert_eq!(hub.hub.spokes()[0].patterns(), None);
}

#[tokio::test]
async fn an_invalid_pattern_gets_an_error_and_the_spoke_stays() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut ws = hub.connect().await;
    for bad in ["", "chat.*", "*:*"] {
        send(&mut ws, json!({"type": "hub.subscribe", "id": bad}).to_string()).await;
        let err = recv(&mut ws).await;
        assert_eq!(err["type"], "hub.error");
        assert_eq!(err["id"], "invalid_pattern");
        assert!(err["payload"]["message"].is_string());
    }
    // Nothing was subscribed: it still receives everything.
    hub.hub.dispatch(Event::new("a", "", ())).unwrap();
    assert_eq!(recv(&mut ws).await["type"], "a");
    assert_eq!(hub.hub.stats().errors.get(&wshub::ErrorCode::InvalidPattern), Some(&3));
}

#[tokio::test]
async fn control_envelopes_are_not_relayed_nor_seen_by_hub_subscribers() {
    let hub = TestHub::start(HubConfig::default().relay(true)).await;
    let mut all = hub.hub.subscribe("*").unwrap();
    let mut a = hub.connect().await;
    let mut b = hub.connect().await;
    hub_subscribe(&mut a, "*").await;
    expect_silence(&mut b, QUIET).await;
    assert!(tokio::time::timeout(QUIET, futures::StreamExt::next(&mut all)).await.is_err());
}

#[tokio::test]
async fn relay_delivers_a_spokes_event_to_the_others_but_not_back() {
    let hub = TestHub::start(HubConfig::default().relay(true)).await;
    let mut a = hub.connect().await;
    let mut b = hub.connect().await;
    let mut c = hub.connect().await;
    hub_subscribe(&mut c, "other:*").await;

    let text = r#"{"type":"chat.message","id":"room-1","payload":{"n":12345678901234567890123},"extra":true}"#;
    send(&mut a, text).await;

    assert_eq!(
        recv_text(&mut b).await,
        r#"{"type":"chat.message","id":"room-1","payload":{"n":12345678901234567890123}}"#
    );
    expect_silence(&mut a, QUIET).await;
    expect_silence(&mut c, QUIET).await;
}

#[tokio::test]
async fn relay_with_echo_returns_the_event_to_its_sender_if_it_matches() {
    let hub = TestHub::start(HubConfig::default().relay(true).echo(true)).await;
    let mut a = hub.connect().await;
    send(&mut a, envelope("x", "1", json!(null))).await;
    assert_eq!(recv(&mut a).await["type"], "x");

    hub_subscribe(&mut a, "y:*").await;
    send(&mut a, envelope("x", "2", json!(null))).await;
    expect_silence(&mut a, QUIET).await;
}

#[tokio::test]
async fn without_relay_a_spokes_event_reaches_only_the_hub() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut sub = hub.hub.subscribe("*").unwrap();
    let mut a = hub.connect().await;
    let mut b = hub.connect().await;
    send(&mut a, envelope("x", "1", json!(null))).await;
    assert!(futures::StreamExt::next(&mut sub).await.is_some());
    expect_silence(&mut b, QUIET).await;
}
