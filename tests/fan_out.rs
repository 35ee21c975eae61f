//! `Hub::dispatch`: one event, every connected spoke.

mod support;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::StreamExt;
use serde_json::json;
use support::*;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use wshub::{Event, FrameKind, Hub, HubConfig, SendError};

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

/// The hub's side of an in-memory connection, counting the write calls
/// the hub makes on it.
struct CountingWrites {
    inner: DuplexStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for CountingWrites {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingWrites {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn the_events_waiting_for_a_spoke_go_out_in_one_write() {
    let hub = Hub::new(HubConfig::default());
    let (near, far) = tokio::io::duplex(256 * 1024);
    let writes = Arc::new(AtomicUsize::new(0));
    let near = CountingWrites { inner: near, writes: writes.clone() };
    hub.accept(WebSocketStream::from_raw_socket(near, Role::Server, Some(hub.config().websocket_config())).await);
    let mut spoke = WebSocketStream::from_raw_socket(far, Role::Client, None).await;

    // On this one-thread runtime the spoke's task runs only once the test
    // waits: by then all 100 events are waiting for it.
    for i in 0..100 {
        hub.dispatch(Event::new("batched", i.to_string(), json!(i))).unwrap();
    }
    for i in 0..100 {
        match tokio::time::timeout(WAIT, spoke.next()).await.unwrap() {
            Some(Ok(Message::Text(text))) => assert!(text.contains(&format!(r#""id":"{i}""#)), "{text}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(writes.load(Ordering::Relaxed), 1, "100 events of 60 bytes, one write");
}
