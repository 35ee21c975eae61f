//! `Hub::dispatch`: one event, every connected spoke.

mod support;

use futures::StreamExt;
use serde_json::json;
use support::*;
use tokio_tungstenite::tungstenite::Message;
use wshub::{Event, FrameKind, HubConfig, SendError};

#[tokio::test]
async fn dispatch_reaches_every_connected_spoke() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut spokes = Vec::new();
    for _ in 0..3 {
        spokes.push(hub.connect().await);
    }

    let queued = hub.hub.dispatch(Event::new("chat.message", "room-1", json!({"text": "hi"}))).unwrap();

    assert_eq!(queued, 3);
    for ws in &mut spokes {
        assert_eq!(recv_text(ws).await, r#"{"type":"chat.message","id":"room-1","payload":{"text":"hi"}}"#);
    }
    assert_eq!(hub.hub.stats().dispatched, 1);
    assert_eq!(hub.hub.stats().events_out, 3);
}

#[tokio::test]
async fn dispatch_with_no_spokes_queues_for_none() {
    let hub = TestHub::start(HubConfig::default()).await;
    assert_eq!(hub.hub.dispatch(Event::new("tick", "", ())).unwrap(), 0);
}

#[tokio::test]
async fn events_arrive_in_dispatch_order() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut ws = hub.connect().await;
    for i in 0..500 {
        hub.hub.dispatch(Event::new("n", i.to_string(), i)).unwrap();
    }
    for i in 0..500 {
        assert_eq!(recv(&mut ws).await["payload"], i);
    }
}

#[tokio::test]
async fn dispatch_sends_text_frames_by_default_and_binary_when_configured() {
    let text_hub = TestHub::start(HubConfig::default()).await;
    let mut ws = text_hub.connect().await;
    text_hub.hub.dispatch(Event::new("t", "1", ())).unwrap();
    assert!(matches!(ws.next().await, Some(Ok(Message::Text(_)))));

    let binary_hub = TestHub::start(HubConfig::default().frame_kind(FrameKind::Binary)).await;
    let mut ws = binary_hub.connect().await;
    binary_hub.hub.dispatch(Event::new("t", "1", ())).unwrap();
    match ws.next().await {
        Some(Ok(Message::Binary(b))) => assert_eq!(&b[..], br#"{"type":"t","id":"1","payload":null}"#),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

#[tokio::test]
async fn dispatch_refuses_reserved_and_empty_types_and_hands_the_event_back() {
    let hub = TestHub::start(HubConfig::default()).await;
    let err = hub.hub.dispatch(Event::new("hub.subscribed", "x", ())).unwrap_err();
    assert!(matches!(err, SendError::InvalidEvent(..)));
    assert_eq!(err.into_event().event_type(), "hub.subscribed");
    assert!(matches!(hub.hub.dispatch(Event::new("", "x", ())), Err(SendError::InvalidEvent(..))));
}

#[tokio::test]
async fn a_spoke_connected_after_a_dispatch_does_not_receive_it() {
    let hub = TestHub::start(HubConfig::default()).await;
    hub.hub.dispatch(Event::new("old", "", ())).unwrap();
    let mut ws = hub.connect().await;
    hub.hub.dispatch(Event::new("new", "", ())).unwrap();
    assert_eq!(recv(&mut ws).await["type"], "new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_small_and_large_arrive_whole_and_in_order() {
    // Small frames are copied into each spoke's batch, large ones written
    // from the frame every spoke shares: mixed, they must still arrive as
    // they were dispatched.
    let hub = TestHub::start(HubConfig::default().broadcast_capacity(4096)).await;
    let mut spokes = vec![hub.connect().await, hub.connect().await];
    let sizes = [10usize, 1_000, 1_024, 5_000, 70_000, 3];
    const EVENTS: usize = 600;
    for i in 0..EVENTS {
        let text = "s".repeat(sizes[i % sizes.len()]);
        assert_eq!(hub.hub.dispatch(Event::new("sized", i.to_string(), json!(text))).unwrap(), 2);
    }
    for ws in &mut spokes {
        for i in 0..EVENTS {
            let v = recv(ws).await;
            assert_eq!(v["id"], i.to_string(), "in order");
            assert_eq!(v["payload"].as_str().unwrap().len(), sizes[i % sizes.len()], "whole");
        }
    }
}
