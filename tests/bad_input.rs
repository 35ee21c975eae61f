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
    let event = next_item(&mut sub).await.unwrap();
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
    let event = next_item(&mut sub).await.unwrap();
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
    assert!(next_item(&mut sub).await.is_ok());
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
    let mut bystander = hub.connect().await;
    let mut raw = RawSpoke::connect(&hub).await;
    let half = vec![b' '; MAX / 2 + 1];
    raw.write(&frame(0x1, &half, false, 0, true)).await;
    raw.write(&frame(0x0, &half, true, 0, true)).await;
    assert_eq!(raw.recv_close().await, 1009);
    still_serves(&hub, &mut bystander).await;
    assert_eq!(hub.hub.stats().closes.get(&1009), Some(&1));
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
    let event = next_item(&mut sub).await.unwrap();
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
    assert_eq!(hub.hub.stats().closes.get(&1007), Some(&1));
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
    let mut bystander = hub.connect().await;
    let mut raw = RawSpoke::connect(&hub).await;
    raw.write(&frame(0x9, b"x", false, 0, true)).await;
    assert_eq!(raw.recv_close().await, 1002);
    still_serves(&hub, &mut bystander).await;
    assert_eq!(hub.hub.stats().closes.get(&1002), Some(&1));
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

// --- what the issue of reliability adds -------------------------------------

#[tokio::test]
async fn huge_numbers_are_forwarded_with_every_digit() {
    let hub = TestHub::start(HubConfig::default().relay(true)).await;
    let mut sub = hub.hub.subscribe("*").unwrap();
    let mut receiver = hub.connect().await;
    let mut sender = hub.connect().await;
    let digits = "9".repeat(10_000);
    let text = format!(
        r#"{{"type":"num","id":"","payload":[{digits},-{digits}.{digits},1e999999999,-1E-999999999,0.{digits}e+7]}}"#
    );
    send(&mut sender, text.clone()).await;
    // Every digit is kept; an exponent is written the one way serde_json
    // writes it (`e`, with its sign), which is the same value.
    let kept = text.replace("1e999999999", "1e+999999999").replace("1E-", "1e-");
    let event = next_item(&mut sub).await.unwrap();
    assert_eq!(event.to_json(), kept);
    assert_eq!(recv_text(&mut receiver).await, kept, "relayed unchanged");
    assert!(hub.hub.stats().errors.is_empty());
}

#[tokio::test]
async fn a_string_just_under_the_default_maximum_is_delivered_and_just_over_closes_with_1009() {
    let hub = TestHub::start(HubConfig::default()).await;
    let max = hub.hub.config().max_message_size;
    let mut sub = hub.hub.subscribe("*").unwrap();
    let mut bystander = hub.connect().await;
    let mut ws = hub.connect().await;
    // Escaped characters count as the bytes they take on the wire.
    let under = sized_envelope(max - 1).replacen("xxxxxx", "\\u00e9", 1);
    assert_eq!(under.len(), max - 1);
    send(&mut ws, under).await;
    let event = next_item(&mut sub).await.unwrap();
    let shell = envelope("big", "", json!("")).len();
    assert_eq!(event.payload().as_str().unwrap().chars().count(), max - 1 - shell - 5);

    send(&mut ws, sized_envelope(max + 1)).await;
    assert_eq!(recv_close(&mut ws).await.0, 1009);
    still_serves(&hub, &mut bystander).await;
    let stats = hub.hub.stats();
    assert_eq!((stats.events_in, stats.closes.get(&1009)), (1, Some(&1)));
}

#[tokio::test]
async fn binary_garbage_gets_invalid_json_for_every_frame_and_the_connection_stays_open() {
    use futures::SinkExt;
    let hub = TestHub::start(HubConfig::default()).await;
    let mut bystander = hub.connect().await;
    let mut ws = hub.connect().await;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for n in 0..64 {
        // xorshift: reproducible garbage, each frame led by a byte no UTF-8 text has.
        let mut garbage = vec![0xff];
        for _ in 0..(n * 13 % 200) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            garbage.push(seed as u8);
        }
        ws.send(tokio_tungstenite::tungstenite::Message::binary(garbage)).await.unwrap();
    }
    for _ in 0..64 {
        assert_eq!(recv(&mut ws).await["id"], "invalid_json");
    }
    hub.hub.dispatch(Event::new("after", "", ())).unwrap();
    assert_eq!(recv(&mut bystander).await["type"], "after");
    assert_eq!(recv(&mut ws).await["type"], "after", "the garbage sender is still served");
    let stats = hub.hub.stats();
    assert_eq!((stats.errors.get(&ErrorCode::InvalidJson), stats.messages_in, stats.events_in), (Some(&64), 64, 0));
    assert_eq!(hub.hub.spoke_count(), 2);
}

#[tokio::test]
async fn bytes_that_are_not_frames_at_all_close_with_1002() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut bystander = hub.connect().await;
    let mut raw = RawSpoke::connect(&hub).await;
    // An HTTP request where a frame belongs: `G` is a frame header with a reserved bit set.
    raw.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(raw.recv_close().await, 1002);
    still_serves(&hub, &mut bystander).await;
    assert_eq!(hub.hub.stats().closes.get(&1002), Some(&1));
}

#[tokio::test]
async fn control_frames_with_oversize_payloads_close_with_1002_or_1009_over_the_maximum_message_size() {
    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("ping of 126 bytes", frame(0x9, &[7; 126], true, 0, true), 1002),
        ("pong of 4,000 bytes", frame(0xA, &[7; 4_000], true, 0, true), 1002),
        ("close of 200 bytes", frame(0x8, &[0x03, 0xe8].repeat(100), true, 0, true), 1002),
        // Over the maximum message size, the size rule is the one that answers.
        ("ping of 70,000 bytes, over the maximum", frame(0x9, &[7; 70_000], true, 0, true), 1009),
    ];
    for (what, bytes, code) in cases {
        let hub = TestHub::start(HubConfig::default()).await;
        let mut bystander = hub.connect().await;
        let mut raw = RawSpoke::connect(&hub).await;
        // The hub may close before it has read it all.
        let _ = tokio::io::AsyncWriteExt::write_all(&mut raw.stream, &bytes).await;
        assert_eq!(raw.recv_close().await, code, "{what}");
        still_serves(&hub, &mut bystander).await;
        assert_eq!(hub.hub.stats().closes.get(&code), Some(&1), "{what}");
    }
}

#[tokio::test]
async fn a_frame_header_that_promises_more_than_it_sends_is_closed_at_the_heartbeat_timeout() {
    let timeout = std::time::Duration::from_millis(300);
    let hub = TestHub::start(HubConfig::default().heartbeat(std::time::Duration::from_millis(50), timeout)).await;
    let gone = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = gone.clone();
    hub.hub.on_disconnection(move |_, r| sink.lock().unwrap().push(r.clone()));
    let bystander = hub.connect().await;
    let answering = tokio::spawn(answer_pings(bystander));
    let mut raw = RawSpoke::connect(&hub).await;
    // 1,000 bytes promised, 10 sent, then nothing.
    let mut promise = frame(0x1, &[b' '; 1000], true, 0, true);
    promise.truncate(8 + 10);
    raw.write(&promise).await;
    let started = std::time::Instant::now();
    assert_eq!(raw.recv_close().await, 1008);
    let took = started.elapsed();
    assert!(took < timeout + std::time::Duration::from_millis(500), "closed after {took:?}");
    wait_for(|| !gone.lock().unwrap().is_empty()).await;
    assert_eq!(*gone.lock().unwrap(), [wshub::DisconnectReason::HeartbeatTimeout]);
    assert_eq!(hub.hub.spoke_count(), 1, "the bystander, which answers pings, stays");
    assert_eq!(hub.hub.stats().closes.get(&1008), Some(&1));
    answering.abort();
}

#[tokio::test]
async fn a_frame_header_that_promises_more_then_hangs_up_leaves_nothing_behind() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut bystander = hub.connect().await;
    let mut raw = RawSpoke::connect(&hub).await;
    let mut promise = frame(0x2, &[b' '; 60_000], true, 0, true);
    promise.truncate(16 + 1000);
    raw.write(&promise).await;
    drop(raw);
    still_serves(&hub, &mut bystander).await;
    assert!(hub.hub.stats().closes.is_empty(), "the hub had no one to send a close frame to");
}

#[tokio::test]
async fn a_client_that_stops_mid_handshake_is_dropped_at_the_handshake_timeout_and_others_connect_meanwhile() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SLOW: usize = 20;
    let handshake_timeout = std::time::Duration::from_millis(300);
    let hub = TestHub::start(HubConfig::default().handshake_timeout(handshake_timeout)).await;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
        hub.addr
    );
    // Slowloris: each sends a few bytes of the upgrade request, then more,
    // slowly, and never finishes it.
    let started = std::time::Instant::now();
    let slow: Vec<_> = (0..SLOW)
        .map(|i| {
            let (addr, request) = (hub.addr, request.clone());
            tokio::spawn(async move {
                let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                for chunk in request.as_bytes().chunks(8).take(1 + i % 8) {
                    if tcp.write_all(chunk).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                // The hub hangs up: the read ends, with no response and no upgrade.
                let mut rest = Vec::new();
                let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut rest)).await.expect("the hub hangs up");
                assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
                started.elapsed()
            })
        })
        .collect();
    // Meanwhile a well-behaved spoke connects and is served.
    let mut ws = hub.connect().await;
    hub.hub.dispatch(wshub::Event::new("served", "", ())).unwrap();
    assert_eq!(recv(&mut ws).await["type"], "served");
    for task in slow {
        let took = task.await.unwrap();
        assert!(took >= handshake_timeout, "hung up after {took:?}");
        assert!(took < handshake_timeout * 4, "hung up after {took:?}");
    }
    hub.wait_until(|h| h.stats().upgrade_failures == SLOW as u64).await;
    assert_eq!(hub.hub.spoke_count(), 1);
}

/// Reads (so that tungstenite answers pings) until the connection ends.
async fn answer_pings(mut ws: Ws) {
    while let Some(Ok(_)) = futures::StreamExt::next(&mut ws).await {}
}
