#![cfg(feature = "server")]
//! The `wshub` binary relays: every valid envelope a spoke sends reaches every
//! other spoke whose subscriptions match, between Rust (tokio-tungstenite) and
//! Node (`ws`) spokes alike; echo only when asked.

#[path = "support/server.rs"]
mod server;
mod support;

use serde_json::json;
use server::{NodeSpoke, Server};
use support::{envelope, hub_subscribe, recv, send};

#[tokio::test]
async fn an_event_from_a_rust_spoke_reaches_a_node_spoke_and_back() {
    let server = Server::start(&[]).await;
    let mut rust = server.connect().await;
    let mut node = NodeSpoke::connect(&server.ws_url()).await;

    send(
        &mut rust,
        envelope(
            "chat.message",
            "room-1",
            json!({ "text": "from rust", "n": 12345678901234567890123u128.to_string() }),
        ),
    )
    .await;
    let got = node.recv().await;
    assert_eq!(
        got,
        json!({ "type": "chat.message", "id": "room-1", "payload": { "text": "from rust", "n": "12345678901234567890123" } })
    );

    node.send(r#"{"type":"chat.message","id":"room-2","payload":{"text":"from node","big":12345678901234567890123}}"#)
        .await;
    let got = support::recv_text(&mut rust).await;
    assert_eq!(
        got,
        r#"{"type":"chat.message","id":"room-2","payload":{"text":"from node","big":12345678901234567890123}}"#
    );
}

#[tokio::test]
async fn a_binary_frame_from_node_is_relayed_as_text() {
    let server = Server::start(&[]).await;
    let mut rust = server.connect().await;
    let mut node = NodeSpoke::connect(&server.ws_url()).await;
    node.send_binary(r#"{"type":"sensor","id":"7","payload":1.5}"#).await;
    let message = tokio::time::timeout(support::WAIT, futures::StreamExt::next(&mut rust)).await.expect("in time");
    match message {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
            assert_eq!(text.as_str(), r#"{"type":"sensor","id":"7","payload":1.5}"#);
        }
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn the_sender_does_not_hear_its_own_event_without_echo() {
    let server = Server::start(&[]).await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    send(&mut a, envelope("note", "1", json!("first"))).await;
    assert_eq!(recv(&mut b).await["payload"], "first");
    // B answers after it saw A's event: had A been sent its own, it would
    // have come before this one.
    send(&mut b, envelope("note", "2", json!("second"))).await;
    let next = recv(&mut a).await;
    assert_eq!(next["payload"], "second", "A heard {next}");
}

#[tokio::test]
async fn with_echo_the_sender_hears_its_own_event_too() {
    let server = Server::start(&["--echo"]).await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    send(&mut a, envelope("note", "1", json!("first"))).await;
    assert_eq!(recv(&mut a).await["payload"], "first");
    assert_eq!(recv(&mut b).await["payload"], "first");
}

#[tokio::test]
async fn echo_is_also_read_from_the_environment() {
    let server = Server::start_with_env(&[], &[("WSHUB_ECHO", "true")]).await;
    let mut node = NodeSpoke::connect(&server.ws_url()).await;
    node.send(r#"{"type":"note","id":"","payload":"mine"}"#).await;
    assert_eq!(node.recv().await["payload"], "mine");
}

#[tokio::test]
async fn a_subscribed_spoke_receives_only_what_matches() {
    let server = Server::start(&[]).await;
    let mut rust = server.connect().await;
    let mut node = NodeSpoke::connect(&server.ws_url()).await;
    hub_subscribe(&mut rust, "chat.message:*").await;
    node.send(r#"{"type":"hub.subscribe","id":"alert:fire"}"#).await;
    assert_eq!(node.recv().await, json!({ "type": "hub.subscribed", "id": "alert:fire", "payload": null }));

    node.send(r#"{"type":"other","id":"x","payload":1}"#).await;
    node.send(r#"{"type":"chat.message","id":"room-3","payload":2}"#).await;
    let got = recv(&mut rust).await;
    assert_eq!((got["type"].as_str(), got["payload"].as_u64()), (Some("chat.message"), Some(2)));

    send(&mut rust, envelope("alert", "flood", json!(3))).await;
    send(&mut rust, envelope("alert", "fire", json!(4))).await;
    assert_eq!(node.recv().await, json!({ "type": "alert", "id": "fire", "payload": 4 }));

    // Unsubscribed from everything, it receives nothing: not the event sent
    // then, which no pattern it ever held matches, only what its next
    // subscription matches.
    node.send(r#"{"type":"hub.unsubscribe","id":"alert:fire"}"#).await;
    assert_eq!(node.recv().await["type"], "hub.unsubscribed");
    send(&mut rust, envelope("alert", "fire", json!(5))).await;
    node.send(r#"{"type":"hub.subscribe","id":"alert:flood"}"#).await;
    assert_eq!(node.recv().await["type"], "hub.subscribed");
    send(&mut rust, envelope("alert", "flood", json!(6))).await;
    assert_eq!(node.recv().await["payload"], 6);
}

#[tokio::test]
async fn control_envelopes_and_bad_input_are_never_relayed() {
    let server = Server::start(&[]).await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    send(&mut a, r#"{"type":"hub.subscribe","id":"*"}"#).await;
    assert_eq!(recv(&mut a).await["type"], "hub.subscribed");
    send(&mut a, "not json").await;
    assert_eq!(recv(&mut a).await["id"], "invalid_json");
    send(&mut a, r#"{"type":"hub.forged","id":""}"#).await;
    assert_eq!(recv(&mut a).await["id"], "reserved_type");
    send(&mut a, envelope("real", "1", json!(null))).await;
    // B's first message is the real event: nothing before it was relayed.
    assert_eq!(recv(&mut b).await, json!({ "type": "real", "id": "1", "payload": null }));
}

#[tokio::test]
async fn binary_frames_are_sent_when_asked() {
    let server = Server::start(&["--binary-frames"]).await;
    let mut a = server.connect().await;
    let mut node = NodeSpoke::connect(&server.ws_url()).await;
    send(&mut a, envelope("t", "", json!(1))).await;
    assert_eq!(node.recv_frame().await, (true, json!({ "type": "t", "id": "", "payload": 1 })));
}

#[tokio::test]
async fn the_servers_rate_limit_refuses_a_flooding_spoke() {
    let server = Server::start(&["--rate-limit", "1"]).await;
    let mut ws = server.connect().await;
    // One message a second, in bursts of one: `connect` spent it on its
    // readiness probe, so the next message, at once, is refused.
    send(&mut ws, envelope("a", "1", json!(null))).await;
    let refused = recv(&mut ws).await;
    assert_eq!((refused["type"].as_str(), refused["id"].as_str()), (Some("hub.error"), Some("rate_limited")));
    assert_eq!(server.metric("wshub_errors_total{code=\"rate_limited\"}").await, 1.0);
    assert_eq!(server.metric("wshub_events_in_total").await, 0.0, "the refused event was not taken");
}

#[tokio::test]
async fn the_servers_subscription_cap_refuses_one_more_pattern() {
    let server = Server::start(&["--max-subscriptions", "1"]).await;
    let mut ws = server.connect().await;
    hub_subscribe(&mut ws, "a:*").await;
    send(&mut ws, json!({"type": "hub.subscribe", "id": "b:*"}).to_string()).await;
    let refused = recv(&mut ws).await;
    assert_eq!((refused["type"].as_str(), refused["id"].as_str()), (Some("hub.error"), Some("forbidden")));
}
