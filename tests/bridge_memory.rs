//! Hubs joined in one process by `MemoryBridge`: what any bridge does, with
//! no Redis. The Redis bridge's own tests are in `redis_bridge.rs`.

#[path = "support/bridge.rs"]
mod bridge_support;
mod support;

use bridge_support::*;
use futures::StreamExt;
use serde_json::json;
use support::*;
use wshub::bridge::{Bridge, BridgeState, MemoryBridge, Publication, Scope};
use wshub::{Event, HubConfig};

#[tokio::test]
async fn a_dispatch_reaches_the_spokes_of_every_hub_once_and_the_dispatching_hub_skips_its_own() {
    let first = MemoryBridge::new(64);
    let (b, c) = (first.peer(), first.peer());
    let hubs = [
        start_bridged(HubConfig::default(), first).await,
        start_bridged(HubConfig::default(), b).await,
        start_bridged(HubConfig::default(), c).await,
    ];
    let mut spokes = Vec::new();
    for hub in &hubs {
        spokes.push(hub.connect().await);
    }

    hubs[1].hub.dispatch(Event::new("tick", "", 1)).unwrap();

    for ws in &mut spokes {
        assert_eq!(recv_text(ws).await, r#"{"type":"tick","id":"","payload":1}"#);
    }
    wait_count(&hubs[1], |s| s.own_skipped, 1).await;
    for ws in &mut spokes {
        expect_silence(ws, QUIET).await;
    }
    assert_eq!((bridge_stats(&hubs[0]).received, bridge_stats(&hubs[1]).received), (1, 0));
    assert_eq!(hubs[1].hub.stats().dispatched, 1);
    assert_eq!(hubs[0].hub.stats().dispatched, 0, "a remote event is not this hub's dispatch");
}

#[tokio::test]
async fn without_relay_and_with_local_scope_a_spokes_event_stays_on_its_hub() {
    let first = MemoryBridge::new(64);
    let peer = first.peer();
    let here = start_bridged(HubConfig::default(), first).await;
    let there = start_bridged(HubConfig::default(), peer).await;
    let mut ws = here.connect().await;

    send(&mut ws, envelope("chat.message", "1", json!("hi"))).await;
    here.wait_until(|h| h.stats().events_in == 1).await;

    assert_eq!(bridge_stats(&here).published, 0, "nothing for the other hubs to do with it");
    assert_eq!(bridge_stats(&there).received, 0);
}

#[tokio::test]
async fn a_spokes_event_for_cluster_subscribers_only_reaches_no_spoke_elsewhere() {
    let first = MemoryBridge::new(64);
    let peer = first.peer();
    let config = HubConfig::default().subscribe_scope(Scope::Cluster);
    let here = start_bridged(config.clone(), first).await;
    let there = start_bridged(config, peer).await;
    let mut seen_there = there.hub.subscribe("*").unwrap();
    let mut spoke_there = there.connect().await;
    let mut ws = here.connect().await;

    send(&mut ws, envelope("chat.message", "1", json!("hi"))).await;

    let event = tokio::time::timeout(WAIT, seen_there.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((event.topic(), event.origin()), ("chat.message:1".into(), None));
    expect_silence(&mut spoke_there, QUIET).await;
}

#[tokio::test]
async fn what_arrives_from_outside_is_checked_like_what_a_spoke_sends() {
    let outside = MemoryBridge::new(64);
    let hub = start_bridged(HubConfig::default(), outside.peer()).await;
    let mut ws = hub.connect().await;

    let deep = format!(r#"{{"type":"t","id":"","payload":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    for bad in ["not json", r#"{"type":"hub.subscribed","id":"*"}"#, r#"{"type":"","id":""}"#, &deep, r#"{"type":"t"}"#]
    {
        outside.publish(Publication::new("x", bad));
    }
    outside.publish(Publication::new("t:", r#"{"type":"t","id":"","node":"someone else","spoke":3,"z":[1]}"#));

    assert_eq!(recv_text(&mut ws).await, r#"{"type":"t","id":"","payload":null}"#);
    wait_count(&hub, |s| s.rejected, 5).await;
    assert_eq!(bridge_stats(&hub).received, 1);
}

#[tokio::test]
async fn a_hub_counts_the_messages_it_missed_from_each_other_hub_by_their_numbers() {
    let outside = MemoryBridge::new(64);
    let hub = start_bridged(HubConfig::default(), outside.peer()).await;
    let mut ws = hub.connect().await;

    for (node, seq) in [("a", 1), ("b", 7), ("a", 2), ("a", 5), ("b", 8), ("a", 9)] {
        let message = format!(r#"{{"type":"t","id":"{node}{seq}","node":"{node}","seq":{seq}}}"#);
        outside.publish(Publication::new("t:", message));
    }

    for _ in 0..6 {
        recv(&mut ws).await;
    }
    // a: 3 and 4, then 6 to 8; b: none (7 was its first seen).
    assert_eq!(bridge_stats(&hub).missed, 5);
}

#[tokio::test]
async fn a_hub_without_a_bridge_has_no_node_id_and_no_bridge_stats() {
    let hub = TestHub::start(HubConfig::default()).await;
    assert_eq!(hub.hub.node_id(), None);
    assert_eq!(hub.hub.bridge_stats(), None);
}

#[tokio::test]
async fn a_shut_down_hub_closes_its_bridge_and_receives_nothing_more() {
    let first = MemoryBridge::new(64);
    let peer = first.peer();
    let hub = start_bridged(HubConfig::default(), first).await;
    let other = start_bridged(HubConfig::default(), peer).await;

    hub.hub.shutdown().await;

    assert_eq!(bridge_stats(&hub).state, BridgeState::Closed);
    other.hub.dispatch(Event::new("t", "", ())).unwrap();
    wait_count(&other, |s| s.own_skipped, 1).await;
    assert_eq!(bridge_stats(&hub).received, 0);
}

#[tokio::test]
async fn a_dispatch_from_another_hub_reaches_the_subscribed_spokes_it_matches_and_no_others() {
    let first = MemoryBridge::new(64);
    let peer = first.peer();
    let here = start_bridged(HubConfig::default(), first).await;
    let there = start_bridged(HubConfig::default(), peer).await;
    // On the other hub: one spoke on the broadcast channel, two routed by
    // their patterns.
    let mut everything = there.connect().await;
    let mut news = there.connect().await;
    hub_subscribe(&mut news, "news:*").await;
    let mut sport = there.connect().await;
    hub_subscribe(&mut sport, "sport:*").await;

    here.hub.dispatch(Event::new("news", "1", json!("from the other hub"))).unwrap();

    for ws in [&mut everything, &mut news] {
        assert_eq!(recv(ws).await["payload"], "from the other hub");
    }
    expect_silence(&mut sport, QUIET).await;
}
