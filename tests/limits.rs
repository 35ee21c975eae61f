//! Limits that protect the hub from its spokes: rate, subscriptions,
//! pattern length, and revoking a spoke.

mod support;

use std::sync::{Arc, Mutex};

use serde_json::json;
use support::*;
use wshub::{DisconnectReason, ErrorCode, HubConfig, RateLimit};

#[tokio::test]
async fn a_spoke_over_its_rate_limit_gets_rate_limited_and_its_event_is_not_delivered() {
    let hub = TestHub::start(HubConfig::default().rate_limit(Some(RateLimit::per_second(1).burst(2)))).await;
    let mut sub = hub.hub.subscribe("*").unwrap();
    let mut ws = hub.connect().await;
    for i in 0..3 {
        send(&mut ws, envelope("e", &i.to_string(), json!(null))).await;
    }
    let err = recv(&mut ws).await;
    assert_eq!((err["type"].as_str(), err["id"].as_str()), (Some("hub.error"), Some("rate_limited")));
    let delivered: Vec<_> = futures::StreamExt::take(&mut sub, 2).map(|e| e.unwrap().id().to_owned()).collect().await;
    assert_eq!(delivered, ["0", "1"]);
    hub.wait_until(|h| h.stats().events_in == 2).await;
    assert_eq!(hub.hub.stats().errors.get(&ErrorCode::RateLimited), Some(&1));
    assert_eq!(hub.hub.spoke_count(), 1, "one refusal does not close the spoke");
}

use futures::StreamExt as _;

#[tokio::test]
async fn a_spoke_that_keeps_flooding_is_closed_with_1008() {
    let limit = RateLimit::per_second(1).burst(1).strikes(5);
    let hub = TestHub::start(HubConfig::default().rate_limit(Some(limit))).await;
    let gone = Arc::new(Mutex::new(Vec::new()));
    let sink = gone.clone();
    hub.hub.on_disconnection(move |_, r| sink.lock().unwrap().push(r.clone()));
    let mut bystander = hub.connect().await;
    let mut ws = hub.connect().await;
    for _ in 0..6 {
        send(&mut ws, envelope("flood", "", json!(null))).await;
    }
    assert_eq!(recv_close(&mut ws).await.0, 1008);
    wait_for(|| !gone.lock().unwrap().is_empty()).await;
    assert_eq!(*gone.lock().unwrap(), [DisconnectReason::RateLimited]);
    hub.hub.dispatch(wshub::Event::new("after", "", ())).unwrap();
    assert_eq!(recv(&mut bystander).await["type"], "after");
}

#[tokio::test]
async fn a_spoke_may_hold_only_so_many_subscriptions() {
    let hub = TestHub::start(HubConfig::default().max_subscriptions_per_spoke(2)).await;
    let mut ws = hub.connect().await;
    hub_subscribe(&mut ws, "a:*").await;
    hub_subscribe(&mut ws, "b:*").await;
    hub_subscribe(&mut ws, "a:*").await; // holding it already costs nothing
    send(&mut ws, json!({"type": "hub.subscribe", "id": "c:*"}).to_string()).await;
    let err = recv(&mut ws).await;
    assert_eq!((err["type"].as_str(), err["id"].as_str()), (Some("hub.error"), Some("forbidden")));
    assert_eq!(hub.hub.spokes()[0].patterns(), Some(vec!["a:*".to_owned(), "b:*".to_owned()]));
}

#[tokio::test]
async fn a_refused_first_subscription_leaves_the_spoke_receiving_everything() {
    let hub = TestHub::start(HubConfig::default().max_subscriptions_per_spoke(0)).await;
    let mut ws = hub.connect().await;
    send(&mut ws, json!({"type": "hub.subscribe", "id": "a:*"}).to_string()).await;
    assert_eq!(recv(&mut ws).await["id"], "forbidden");
    assert_eq!(hub.hub.spokes()[0].patterns(), None, "it never subscribed");
    hub.hub.dispatch(wshub::Event::new("b", "1", ())).unwrap();
    assert_eq!(recv(&mut ws).await["type"], "b");
}

#[tokio::test]
async fn a_pattern_longer_than_the_limit_is_an_invalid_pattern() {
    let hub = TestHub::start(HubConfig::default().max_pattern_length(16)).await;
    let mut ws = hub.connect().await;
    hub_subscribe(&mut ws, &"x".repeat(16)).await;
    send(&mut ws, json!({"type": "hub.subscribe", "id": "x".repeat(17)}).to_string()).await;
    let err = recv(&mut ws).await;
    assert_eq!(err["id"], "invalid_pattern");
}

#[tokio::test]
async fn revoking_a_spoke_closes_it_with_1008() {
    let hub = TestHub::start(HubConfig::default()).await;
    let gone = Arc::new(Mutex::new(Vec::new()));
    let sink = gone.clone();
    hub.hub.on_disconnection(move |_, r| sink.lock().unwrap().push(r.clone()));
    let mut ws = hub.connect().await;
    let id = hub.hub.spokes()[0].id();

    assert!(hub.hub.revoke(id));
    assert_eq!(recv_close(&mut ws).await, (1008, "revoked".into()));
    wait_for(|| !gone.lock().unwrap().is_empty()).await;
    assert_eq!(*gone.lock().unwrap(), [DisconnectReason::Revoked]);
    assert!(!hub.hub.revoke(id), "a spoke that has gone cannot be revoked");
}
