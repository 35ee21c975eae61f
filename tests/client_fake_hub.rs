//! A `Client` against servers that are not wshub: what a well-behaved hub
//! never sends, tokens, TLS, a hub that stops answering.
#![cfg(feature = "client")]

#[path = "support/client.rs"]
mod client_support;
mod support;

use std::time::Duration;

use client_support::{FakeHub, fast, next_event, wait_state};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use wshub::client::{ConnectError, ConnectionState, Disconnect};
use wshub::{Client, ErrorCode, Event};

use support::WAIT;

#[tokio::test]
async fn hub_errors_arrive_as_values_on_their_own_stream() {
    let fake = FakeHub::start().await;
    let url = fake.url();
    let connecting = tokio::spawn(async move { Client::connect(&url, fast()).await.unwrap() });
    let mut ws = fake.accept().await;
    let client = connecting.await.unwrap();
    let mut errors = client.hub_errors();

    let refusal = r#"{"type":"hub.error","id":"rate_limited","payload":{"message":"slow down"}}"#;
    ws.send(Message::text(refusal)).await.unwrap();
    ws.send(Message::text(r#"{"type":"hub.error","id":"from_the_future"}"#)).await.unwrap();

    let first = tokio::time::timeout(WAIT, errors.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.code(), Some(ErrorCode::RateLimited));
    assert_eq!(first.message(), "slow down");
    let second = tokio::time::timeout(WAIT, errors.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((second.code(), second.code_str(), second.message()), (None, "from_the_future", ""));
    assert!(client.state().is_connected(), "a hub.error leaves the connection open");
}

#[tokio::test]
async fn garbage_from_the_hub_is_skipped_without_dropping_the_connection() {
    let fake = FakeHub::start().await;
    let url = fake.url();
    let connecting = tokio::spawn(async move { Client::connect(&url, fast()).await.unwrap() });
    let mut ws = fake.accept().await;
    let client = connecting.await.unwrap();
    let mut all = client.subscribe("*").unwrap();

    for junk in [
        Message::text("not json"),
        Message::text("[1,2,3]"),
        Message::text(r#"{"type":"","id":"x"}"#),
        Message::text(r#"{"type":"t"}"#),
        Message::text(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000))),
        Message::binary(vec![0xff, 0xfe, 0x00]),
        Message::text(r#"{"type":"hub.subscribe","id":"*"}"#),
        Message::text(r#"{"type":"hub.lagged","id":"","payload":"not a count"}"#),
    ] {
        ws.send(junk).await.unwrap();
    }
    ws.send(Message::text(r#"{"type":"ok","id":"1","payload":[1]}"#)).await.unwrap();
    assert_eq!(next_event(&mut all).await, Event::new("ok", "1", serde_json::json!([1])));
    assert!(client.state().is_connected());
}

#[tokio::test]
async fn hub_lagged_reaches_every_stream_as_a_lag() {
    let fake = FakeHub::start().await;
    let url = fake.url();
    let connecting = tokio::spawn(async move { Client::connect(&url, fast()).await.unwrap() });
    let mut ws = fake.accept().await;
    let client = connecting.await.unwrap();
    let mut a = client.subscribe("a:*").unwrap();
    let mut b = client.subscribe("b:*").unwrap();

    ws.send(Message::text(r#"{"type":"hub.lagged","id":"","payload":{"missed":7}}"#)).await.unwrap();
    ws.send(Message::text(r#"{"type":"a","id":"1"}"#)).await.unwrap();

    let lag = tokio::time::timeout(WAIT, a.next()).await.unwrap().unwrap();
    assert_eq!(lag.unwrap_err().missed, 7);
    assert_eq!(next_event(&mut a).await.topic(), "a:1");
    let lag = tokio::time::timeout(WAIT, b.next()).await.unwrap().unwrap();
    assert_eq!(lag.unwrap_err().missed, 7);
}

#[tokio::test]
async fn the_bearer_token_goes_in_the_authorization_header() {
    let fake = FakeHub::start().await;
    let check = |request: &tokio_tungstenite::tungstenite::handshake::server::Request| match request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some("Bearer right") => Ok(()),
        _ => Err(401),
    };

    let url = fake.url();
    let wrong = tokio::spawn(async move { Client::connect(&url, fast().bearer_token("wrong")).await });
    assert!(fake.accept_checked(check).await.is_none());
    match wrong.await.unwrap() {
        Err(ConnectError::Failed(Disconnect::Rejected { status: 401 })) => {}
        other => panic!("{other:?}"),
    }

    let url = fake.url();
    let right = tokio::spawn(async move { Client::connect(&url, fast().bearer_token("right")).await });
    assert!(fake.accept_checked(check).await.is_some());
    assert!(right.await.unwrap().is_ok());
}

#[tokio::test]
async fn wss_urls_go_through_tls() {
    // A plain WebSocket server cannot answer a TLS handshake: the attempt
    // fails in TLS, before any upgrade, which shows the client spoke TLS
    // (and that rustls is set up without a process-wide provider).
    let fake = FakeHub::start().await;
    let url = format!("wss://{}/", fake.addr);
    let attempt = tokio::spawn(async move { Client::connect(&url, fast()).await });
    assert!(fake.accept_checked(|_| Ok(())).await.is_none(), "no upgrade happened");
    match attempt.await.unwrap() {
        Err(ConnectError::Failed(Disconnect::ConnectFailed(why))) => {
            assert!(why.to_lowercase().contains("tls") || why.contains("corrupt"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_hub_that_stops_answering_is_dropped_and_the_client_reconnects() {
    let fake = FakeHub::start().await;
    let config = fast().ping(Duration::from_millis(20), Duration::from_millis(100));
    let client = Client::new(&fake.url(), config).unwrap();
    // Accepted, then never read: no pong ever comes back.
    let _silent = fake.accept().await;
    let state = wait_state(&client, |s| matches!(s, ConnectionState::Disconnected { .. })).await;
    assert_eq!(state, ConnectionState::Disconnected { reason: Disconnect::TimedOut });
    let _second = fake.accept().await;
}
