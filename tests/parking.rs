//! Parked spokes: a spoke that never subscribed and has nothing of its own
//! to write is written to by its shard's flusher; whatever the flusher
//! cannot finish goes back to the spoke's task. Nothing is lost, reordered
//! or split on the way, whatever the socket takes at a time.
//!
//! In-memory sockets that take a few dozen bytes per write make every batch
//! a partial write, so that the flusher hands spokes back all the time.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{SinkExt, StreamExt};
use support::{WAIT, wait_for};
use tokio::io::DuplexStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use wshub::{Event, Hub, HubConfig};

const EVENTS: usize = 400;

/// Payload sizes, cycled: copied frames, and frames of 1 KiB and more that
/// the batch shares instead of copying.
const SIZES: [usize; 5] = [8, 300, 1_500, 70, 5_000];

fn event(i: usize) -> Event {
    Event::new("parked", i.to_string(), "x".repeat(SIZES[i % SIZES.len()]))
}

/// A spoke of `hub` whose socket takes at most `bytes` bytes per write.
async fn narrow_spoke(hub: &Hub, bytes: usize) -> WebSocketStream<DuplexStream> {
    let (near, far) = tokio::io::duplex(bytes);
    hub.accept(WebSocketStream::from_raw_socket(near, Role::Server, Some(hub.config().websocket_config())).await);
    WebSocketStream::from_raw_socket(far, Role::Client, None).await
}

/// Dispatches [`EVENTS`] events, letting the flusher and the tasks run in between.
async fn dispatch_all(hub: &Hub) {
    for i in 0..EVENTS {
        hub.dispatch(event(i)).unwrap();
        if i % 7 == 0 {
            tokio::task::yield_now().await;
        }
    }
}

/// Reads events until all [`EVENTS`] have come, checking each is the next
/// one, whole; returns how many pongs came among them.
async fn read_all(
    spoke: &mut (impl futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> usize {
    let mut pongs = 0;
    let mut next = 0;
    while next < EVENTS {
        match tokio::time::timeout(WAIT, spoke.next()).await.expect("nothing arrived in time") {
            Some(Ok(Message::Text(text))) => {
                let value: serde_json::Value = serde_json::from_str(&text).expect("a whole envelope");
                assert_eq!(value["id"], next.to_string(), "event {next} comes next");
                assert_eq!(value["payload"].as_str().map(str::len), Some(SIZES[next % SIZES.len()]));
                next += 1;
            }
            Some(Ok(Message::Pong(_))) => pongs += 1,
            other => panic!("after {next} events: {other:?}"),
        }
    }
    pongs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spokes_whose_sockets_take_a_few_bytes_at_a_time_get_every_event_whole_and_in_order() {
    let hub = Hub::new(HubConfig::default().broadcast_capacity(EVENTS));
    let mut spokes = Vec::new();
    for bytes in [16, 64, 100, 4096] {
        spokes.push(narrow_spoke(&hub, bytes).await);
    }
    let readers: Vec<_> = spokes.into_iter().map(|mut s| tokio::spawn(async move { read_all(&mut s).await })).collect();

    dispatch_all(&hub).await;

    for reader in readers {
        reader.await.unwrap();
    }
    // Counted once a batch is written, which the spoke may have read first.
    wait_for(|| hub.stats().events_out == 4 * EVENTS as u64).await;
    let stats = hub.stats();
    assert_eq!((stats.lagged, stats.dropped), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pongs_answered_while_the_flusher_writes_never_split_an_event_frame() {
    let hub = Hub::new(HubConfig::default().broadcast_capacity(EVENTS));
    let (mut pings, mut spoke) = narrow_spoke(&hub, 48).await.split();
    // Pings all along: tungstenite answers each while the spoke's task
    // reads, which is when the flusher may be halfway through a frame.
    let done = Arc::new(AtomicBool::new(false));
    let pinger = tokio::spawn({
        let done = done.clone();
        async move {
            let mut i = 0u32;
            while !done.load(Ordering::Relaxed)
                && pings.send(Message::Ping(Bytes::from(i.to_be_bytes().to_vec()))).await.is_ok()
            {
                i += 1;
                tokio::task::yield_now().await;
            }
            pings
        }
    });
    let reader = tokio::spawn(async move {
        let pongs = read_all(&mut spoke).await;
        done.store(true, Ordering::Relaxed);
        // The pongs of the last pings, read so that the pinger is not held up.
        tokio::spawn(async move { while spoke.next().await.is_some() {} });
        pongs
    });

    dispatch_all(&hub).await;

    let pongs = reader.await.unwrap();
    drop(pinger.await.unwrap());
    assert!(pongs > 0, "the spoke's pings were answered");
    wait_for(|| hub.stats().events_out == EVENTS as u64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_spoke_that_subscribes_gets_what_its_pattern_matches_from_then_on() {
    let hub = Hub::new(HubConfig::default());
    let mut spoke = narrow_spoke(&hub, 4096).await;
    hub.dispatch(Event::new("before", "1", ())).unwrap();
    assert!(matches!(spoke.next().await, Some(Ok(Message::Text(t))) if t.contains("before")));

    // Parked by now (it wrote everything it was due); subscribing unparks it.
    let subscribe = serde_json::json!({ "type": "hub.subscribe", "id": "wanted:*", "payload": null });
    spoke.send(Message::text(subscribe.to_string())).await.unwrap();
    assert!(matches!(spoke.next().await, Some(Ok(Message::Text(t))) if t.contains("hub.subscribed")));
    hub.dispatch(Event::new("unwanted", "1", ())).unwrap();
    hub.dispatch(Event::new("wanted", "1", ())).unwrap();

    match tokio::time::timeout(WAIT, spoke.next()).await.unwrap() {
        Some(Ok(Message::Text(text))) => assert!(text.contains(r#""type":"wanted""#), "{text}"),
        other => panic!("{other:?}"),
    }
}
