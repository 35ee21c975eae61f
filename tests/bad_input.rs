//! What a spoke may send that the hub cannot take: each gets the protocol's
//! answer, nothing panics, and the other spokes notice nothing.

mod support;

use serde_json::json;
use support::*;
use wshub::{ErrorCode, Event, HubConfig};

/// Sends `input` from one spoke; asserts the `hub.error` code, that the same
/// connection still works, and that a bystander still gets events.
async fn assert_rejected(input: tokio_tungstenite::tungstenite::Message, code: &str) {
    use futures::SinkExt;
    let hub = TestHub::start(HubConfig::default()).await;
    let mut sub = hub.hub.subscribe("*").unwrap();
    let mut bystander = hub.connect().await;
    let mut ws = hub.connect().await;

    ws.send(input).await.unwrap();
    let err = recv(&mut ws).await;
    assert_eq!(err["type"], "hub.error", "{err}");
    assert_eq!(err["id"], code, "{err}");
    assert!(err["payload"]["message"].as_str().is_some_and(|m| !m.is_empty()));

    // The connection stays open and works.
    send(&mut ws, envelope("ok", "", json!(1))).await;
    let event = futures::StreamExt::next(&mut sub).await.unwrap().unwrap();
    assert_eq!(event.event_type(), "ok", "the rejected message was not delivered");
    hub.hub.dispatch(Event::new("still", "here", ())).unwrap();
    assert_eq!(recv(&mut bystander).await["type"], "still");
    assert_eq!(recv(&mut ws).await["type"], "still");
    let stats = hub.hub.stats();
    assert_eq!(stats.errors.values().sum::<u64>(), 1);
    assert_eq!(hub.hub.spoke_count(), 2);
}

fn text(s: &str) -> tokio_tungstenite::tungstenite::Message {
    tokio_tungstenite::tungstenite::Message::text(s)
}

#[tokio::test]
async fn invalid_json_gets_invalid_json() {
    assert_rejected(text("{not json"), "invalid_json").await;
}

#[tokio::test]
async fn json_nested_10000_deep_gets_invalid_json() {
    let deep = format!(r#"{{"type":"t","id":"","payload":{}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    assert_rejected(text(&deep), "invalid_json").await;
}

#[tokio::test]
async fn a_wrong_shape_gets_invalid_envelope() {
    for shape in [
        r#"[1,2,3]"#,
        r#"["t","x"]"#,
        r#"{"id":"x"}"#,
        r#"{"type":"t"}"#,
        r#"{"type":7,"id":"x"}"#,
        r#"{"type":"","id":"x"}"#,
    ] {
        assert_rejected(text(shape), "invalid_envelope").await;
    }
}

#[tokio::test]
async fn a_reserved_type_gets_reserved_type() {
    assert_rejected(text(r#"{"type":"hub.error","id":"x"}"#), "reserved_type").await;
}

#[tokio::test]
async fn a_binary_frame_that_is_not_utf8_gets_invalid_json() {
    assert_rejected(tokio_tungstenite::tungstenite::Message::binary(vec![0xff, 0xfe, 0x00]), "invalid_json").await;
}

#[tokio::test]
async fn a_binary_frame_of_utf8_json_is_an_event_like_text() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut sub = hub.hub.subscribe("*").unwrap();
    let mut ws = hub.connect().await;
    futures::SinkExt::send(&mut ws, tokio_tungstenite::tungstenite::Message::binary(envelope("bin", "1", json!("é"))))
        .await
        .unwrap();
    let event = futures::StreamExt::next(&mut sub).await.unwrap().unwrap();
    assert_eq!((event.event_type(), event.payload()), ("bin", &json!("é")));
}

const MAX: usize = 1024;

fn sized_envelope(total: usize) -> String {
    let shell = envelope("big", "", json!(""));
    let pad = total - shell.len();
    envelope("big", "", json!("x".repeat(pad)))
}

#[tokio::test]
async fn a_message_of_exactly_the_maximum_size_is_accepted() {
    let hub = TestHub::start(HubConfig::default().max_message_size(MAX)).await;
    let mut sub = hub.hub.subscribe("*").unwrap();
    let mut ws = hub.connect().await;
    let message = sized_envelope(MAX);
    assert_eq!(message.len(), MAX);
    send(&mut ws, message).await;
    assert!(futures::StreamExt::next(&mut sub).await.unwrap().is_ok());
}

#[tokio::test]
async fn a_message_over_the_maximum_size_closes_the_spoke_with_1009() {
    let hub = TestHub::start(HubConfig::default().max_message_size(MAX)).await;
    let mut bystander = hub.connect().await;
    let mut ws = hub.connect().await;
    send(&mut ws, sized_envelope(MAX + 1)).await;
    assert_eq!(recv_close(&mut ws).await.0, 1009);
    still_serves(&hub, &mut bystander).await;
    assert_eq!(hub.hub.stats().closes.get(&1009), Some(&1));
}

#[tokio::test]
async fn a_fragmented_message_over_the_maximum_size_closes_with_1009() {
    let hub = TestHub::start(HubConfig::default().max_message_size(MAX)).await;
    let mut raw = RawSpoke::connect(&hub).await;
    let half = vec![b' '; MAX / 2 + 1];
    raw.write(&frame(0x1, &half, false, 0, true)).await;
    raw.write(&frame(0x0, &half, true, 0, true)).await;
    assert_eq!(raw.recv_close().await, 1009);
}

#[tokio::test]
async fn a_fragmented_message_within_the_maximum_is_one_event() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut sub = hub.hub.subscribe("*").unwrap();
    let mut raw = RawSpoke::connect(&hub).await;
    let message = envelope("frag", "1", json!("joined"));
    let (a, b) = message.as_bytes().split_at(10);
    raw.write(&frame(0x1, a, false, 0, true)).await;
    raw.write(&frame(0x9, b"ping between", true, 0, true)).await;
    raw.write(&frame(0x0, b, true, 0, true)).await;
    let event = futures::StreamExt::next(&mut sub).await.unwrap().unwrap();
    assert_eq!(event.payload(), &json!("joined"));
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut bystander = hub.connect().await;
    let mut raw = RawSpoke::connect(&hub).await;
    raw.write(&frame(0x1, b"{\"type\":\"\xff\xfe\"}", true, 0, true)).await;
    assert_eq!(raw.recv_close().await, 1007);
    still_serves(&hub, &mut bystander).await;
}

#[tokio::test]
async fn frames_rfc_6455_forbids_close_with_1002() {
    let cases: [(&str, Vec<u8>); 6] = [
        ("reserved bits", frame(0x1, b"{}", true, 0b100, true)),
        ("reserved data opcode", frame(0x3, b"{}", true, 0, true)),
        ("reserved control opcode", frame(0xB, b"", true, 0, true)),
        ("unmasked client frame", frame(0x1, b"{}", true, 0, false)),
        ("ping over 125 bytes", frame(0x9, &[0u8; 126], true, 0, true)),
        ("continuation with nothing to continue", frame(0x0, b"{}", true, 0, true)),
    ];
    for (what, bytes) in cases {
        let hub = TestHub::start(HubConfig::default()).await;
        let mut bystander = hub.connect().await;
        let mut raw = RawSpoke::connect(&hub).await;
        raw.write(&bytes).await;
        assert_eq!(raw.recv_close().await, 1002, "{what}");
        still_serves(&hub, &mut bystander).await;
        assert_eq!(hub.hub.stats().closes.get(&1002), Some(&1), "{what}");
    }
}

#[tokio::test]
async fn a_fragmented_control_frame_closes_with_1002() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut raw = RawSpoke::connect(&hub).await;
    raw.write(&frame(0x9, b"x", false, 0, true)).await;
    assert_eq!(raw.recv_close().await, 1002);
}

#[tokio::test]
async fn every_rejection_is_counted() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut ws = hub.connect().await;
    for bad in ["nope", "[]", r#"{"type":"hub.x","id":""}"#, r#"{"type":"hub.subscribe","id":"a*"}"#] {
        send(&mut ws, bad).await;
        recv(&mut ws).await;
    }
    let errors = hub.hub.stats().errors;
    for code in [ErrorCode::InvalidJson, ErrorCode::InvalidEnvelope, ErrorCode::ReservedType, ErrorCode::InvalidPattern]
    {
        assert_eq!(errors.get(&code), Some(&1), "{code}");
    }
}

async fn still_serves(hub: &TestHub, bystander: &mut Ws) {
    hub.wait_until(|h| h.spoke_count() == 1).await;
    hub.hub.dispatch(Event::new("after", "", ())).unwrap();
    assert_eq!(recv(bystander).await["type"], "after");
}
