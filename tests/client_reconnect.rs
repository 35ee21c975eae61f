//! A `Client` across hub restarts, while disconnected, and when closed.
#![cfg(feature = "client")]

#[path = "support/client.rs"]
mod client_support;
mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use client_support::{acknowledged, fast, next_event, wait_state};
use futures::StreamExt;
use support::{WAIT, wait_for};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use wshub::client::{ConnectError, ConnectionState, Disconnect, DispatchError};
use wshub::{Client, DisconnectReason, Event, Hub, HubConfig};

/// A hub serving on `addr` (port 0 for any free port).
async fn serve_on(addr: SocketAddr) -> (Hub, SocketAddr, JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let hub = Hub::new(HubConfig::default());
    let serving = tokio::spawn(hub.clone().serve(listener).into_future());
    (hub, addr, serving)
}

/// Shuts a hub down and waits until its port is free again.
async fn stop(hub: Hub, serving: JoinHandle<std::io::Result<()>>) {
    hub.shutdown().await;
    tokio::time::timeout(WAIT, serving).await.expect("serve did not stop").unwrap().unwrap();
}

/// A loopback address nothing listens on (it was free a moment ago).
async fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap()
}

#[tokio::test]
async fn client_resubscribes_after_the_hub_restarts() {
    let (hub, addr, serving) = serve_on("127.0.0.1:0".parse().unwrap()).await;
    let client = Client::connect(&format!("ws://{addr}/"), fast()).await.unwrap();
    let mut news = client.subscribe("news:*").unwrap();
    acknowledged(&news).await;
    hub.dispatch(Event::new("news", "1", "before")).unwrap();
    assert_eq!(next_event(&mut news).await.payload(), "before");

    stop(hub, serving).await;
    let state = wait_state(&client, |s| matches!(s, ConnectionState::Disconnected { .. })).await;
    assert!(matches!(state, ConnectionState::Disconnected { .. }), "{state:?}");

    // Dispatched during the outage: queued.
    client.dispatch(Event::new("during", "outage", "queued")).unwrap();

    // A new hub on the same port: the client finds it and subscribes again,
    // with no code of ours, then writes what was queued.
    let listener = TcpListener::bind(addr).await.expect("bind the same port again");
    let hub = Hub::new(HubConfig::default());
    let mut queued = hub.subscribe("during:*").unwrap();
    let _serving = tokio::spawn(hub.clone().serve(listener).into_future());
    acknowledged(&news).await;
    let event = tokio::time::timeout(WAIT, queued.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(event.topic(), "during:outage");
    assert_eq!(hub.spokes().len(), 1);
    assert_eq!(hub.spokes()[0].patterns(), Some(vec!["news:*".to_owned()]));
    hub.dispatch(Event::new("other", "1", "filtered out")).unwrap();
    hub.dispatch(Event::new("news", "2", "after")).unwrap();
    assert_eq!(next_event(&mut news).await.payload(), "after", "the same stream goes on");
}

#[tokio::test]
async fn the_state_stream_shows_a_restart() {
    let (hub, addr, serving) = serve_on("127.0.0.1:0".parse().unwrap()).await;
    let client = Client::connect(&format!("ws://{addr}/"), fast()).await.unwrap();
    let mut states = client.states();
    assert_eq!(states.next().await, Some(ConnectionState::Connected));

    stop(hub, serving).await;
    let next = tokio::time::timeout(WAIT, states.next()).await.unwrap().unwrap();
    assert_eq!(
        next,
        ConnectionState::Disconnected { reason: Disconnect::Closed { code: 1001, reason: "hub shutting down".into() } }
    );
    // Nobody listens: attempts fail, and say so.
    let failed =
        wait_state(&client, |s| matches!(s, ConnectionState::Disconnected { reason: Disconnect::ConnectFailed(_) }))
            .await;
    assert!(matches!(failed, ConnectionState::Disconnected { .. }));

    let (_hub, _, _serving) = serve_on(addr).await;
    wait_state(&client, ConnectionState::is_connected).await;
    assert!(client.state().is_connected());
}

#[tokio::test]
async fn the_state_is_connecting_while_an_attempt_waits_for_the_hub() {
    // A hub that takes the TCP connection but has not answered the upgrade yet.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = Client::new(&format!("ws://{addr}/"), fast()).unwrap();
    let (tcp, _) = tokio::time::timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let mut states = client.states();
    assert_eq!(states.next().await, Some(ConnectionState::Connecting));

    let hub = Hub::new(HubConfig::default());
    hub.accept(tokio_tungstenite::accept_async(tcp).await.unwrap());
    let next = tokio::time::timeout(WAIT, states.next()).await.unwrap();
    assert_eq!(next, Some(ConnectionState::Connected));
}

#[tokio::test]
async fn dispatches_while_disconnected_are_queued_up_to_the_bound_then_handed_back() {
    let addr = free_addr().await;
    let client = Client::new(&format!("ws://{addr}/"), fast().queue_capacity(3)).unwrap();
    for i in 0..3 {
        client.dispatch(Event::new("queued", i.to_string(), i)).unwrap();
    }
    match client.dispatch(Event::new("queued", "3", 3)) {
        Err(DispatchError::Full(event)) => assert_eq!(event, Event::new("queued", "3", 3)),
        other => panic!("the fourth event should come back: {other:?}"),
    }
    assert!(!client.state().is_connected());

    // Once a hub is there, the queue is written, in order.
    let (hub, _, _serving) = serve_on(addr).await;
    let mut queued = hub.subscribe("queued:*").unwrap();
    for i in 0..3 {
        let event = tokio::time::timeout(WAIT, queued.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(event.id(), i.to_string());
    }
    // And there is room again.
    client.dispatch(Event::new("queued", "4", 4)).unwrap();
    let event = tokio::time::timeout(WAIT, queued.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(event.id(), "4");
}

#[tokio::test]
async fn close_sends_1000_and_ends_every_stream() {
    let (hub, addr, _serving) = serve_on("127.0.0.1:0".parse().unwrap()).await;
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    hub.on_disconnection(move |_, reason| seen.lock().unwrap().push(reason.clone()));
    let mut received = hub.subscribe("last:*").unwrap();
    let client = Client::connect(&format!("ws://{addr}/"), fast()).await.unwrap();
    let mut sub = client.subscribe("x:*").unwrap();
    let states = client.states();
    let mut errors = client.hub_errors();
    acknowledged(&sub).await;

    client.dispatch(Event::new("last", "1", "written before the close")).unwrap();
    let unsent = tokio::time::timeout(WAIT, client.close()).await.unwrap();
    assert!(unsent.is_empty(), "{unsent:?}");

    assert_eq!(tokio::time::timeout(WAIT, received.next()).await.unwrap().unwrap().unwrap().id(), "1");
    wait_for(|| !reasons.lock().unwrap().is_empty()).await;
    assert_eq!(reasons.lock().unwrap()[0], DisconnectReason::Closed { code: 1000, reason: String::new() });
    assert_eq!(tokio::time::timeout(WAIT, sub.next()).await.unwrap(), None);
    assert_eq!(tokio::time::timeout(WAIT, errors.next()).await.unwrap(), None);
    let rest: Vec<_> = tokio::time::timeout(WAIT, states.collect()).await.unwrap();
    assert_eq!(rest.last(), Some(&ConnectionState::Closed));
    assert!(matches!(client.dispatch(Event::new("late", "", ())), Err(DispatchError::Closed(_))));
    assert_eq!(client.subscribe("y:*").unwrap().next().await, None, "a stream made after close ends at once");
}

#[tokio::test]
async fn close_while_disconnected_hands_back_the_queued_events() {
    let addr = free_addr().await;
    let client = Client::new(&format!("ws://{addr}/"), fast()).unwrap();
    client.dispatch(Event::new("a", "1", ())).unwrap();
    client.dispatch(Event::new("a", "2", ())).unwrap();
    let unsent = tokio::time::timeout(WAIT, client.close()).await.unwrap();
    let ids: Vec<&str> = unsent.iter().map(Event::id).collect();
    assert_eq!(ids, ["1", "2"]);
    assert_eq!(client.state(), ConnectionState::Closed);
}

#[tokio::test]
async fn dropping_the_last_handle_closes_the_connection_with_1000() {
    let (hub, addr, _serving) = serve_on("127.0.0.1:0".parse().unwrap()).await;
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    hub.on_disconnection(move |_, reason| seen.lock().unwrap().push(reason.clone()));
    let client = Client::connect(&format!("ws://{addr}/"), fast()).await.unwrap();
    let mut sub = client.subscribe("x:*").unwrap();
    let clone = client.clone();
    drop(client);
    assert_eq!(hub.spoke_count(), 1, "a clone keeps it open");
    drop(clone);
    assert_eq!(tokio::time::timeout(WAIT, sub.next()).await.unwrap(), None);
    wait_for(|| !reasons.lock().unwrap().is_empty()).await;
    let reason = reasons.lock().unwrap()[0].clone();
    assert!(matches!(reason, DisconnectReason::Closed { code: 1000, .. }), "{reason:?}");
}

#[tokio::test]
async fn connect_fails_when_no_hub_listens() {
    let addr = free_addr().await;
    match Client::connect(&format!("ws://{addr}/"), fast()).await {
        Err(ConnectError::Failed(Disconnect::ConnectFailed(_))) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn urls_that_are_not_websocket_urls_are_refused() {
    for url in ["http://127.0.0.1:1/", "not a url", ""] {
        assert!(matches!(Client::new(url, fast()), Err(ConnectError::InvalidUrl { .. })), "{url:?}");
    }
    let bad_token = fast().bearer_token("line\nbreak");
    assert!(matches!(Client::new("ws://127.0.0.1:1/", bad_token), Err(ConnectError::InvalidToken)));
}
