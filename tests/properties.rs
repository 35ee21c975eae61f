//! Properties of everything that parses what a spoke sends, over random
//! input: the envelope decoder never panics and classifies every input the
//! way the wire protocol says; valid envelopes keep their type, id and
//! payload; patterns accept, refuse and match exactly as a reference matcher
//! written from the protocol's grammar does; and a connection fed random
//! frames always ends cleanly.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use wshub::{DecodeError, DisconnectReason, Event, Hub, HubConfig, Pattern};

// --- the reference classification of an envelope ----------------------------

/// What the wire protocol says a message is.
#[derive(Debug, PartialEq)]
enum Class {
    Envelope,
    InvalidEnvelope,
    InvalidJson,
}

/// The protocol's rule, applied to the parsed JSON: an object with a
/// non-empty string `type` and a string `id` is an envelope.
fn reference_class(bytes: &[u8]) -> Class {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Class::InvalidJson;
    };
    match value {
        Value::Object(map) => match (map.get("type"), map.get("id")) {
            (Some(Value::String(t)), Some(Value::String(_))) if !t.is_empty() => Class::Envelope,
            _ => Class::InvalidEnvelope,
        },
        _ => Class::InvalidEnvelope,
    }
}

fn class_of(decoded: &Result<Event, DecodeError>) -> Class {
    match decoded {
        Ok(_) => Class::Envelope,
        Err(DecodeError::InvalidEnvelope(_)) => Class::InvalidEnvelope,
        Err(DecodeError::InvalidJson(_)) => Class::InvalidJson,
        Err(other) => panic!("an error the protocol does not name: {other}"),
    }
}

// --- random JSON ------------------------------------------------------------

/// Numbers of every kind, huge ones included (they must keep every digit).
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "[1-9][0-9]{20,60}".prop_map(|digits| serde_json::from_str(&digits).unwrap()),
        "-?[1-9][0-9]{0,5}\\.[0-9]{1,40}[eE][+-]?[0-9]{1,3}".prop_map(|n| serde_json::from_str(&n).unwrap()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        any::<String>().prop_map(Value::String),
        "[\\[\\]{}\"\\\\:,]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(any::<String>(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What may stand in an envelope's `type` or `id`: strings mostly, and
/// sometimes not.
fn field() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => any::<String>().prop_map(|s| Some(Value::String(s))),
        2 => Just(Some(Value::String(String::new()))),
        1 => Just(None),
        1 => json_value().prop_map(Some),
    ]
}

/// Objects shaped more or less like envelopes, with extra fields.
fn envelope_like() -> impl Strategy<Value = Value> {
    (field(), field(), proptest::option::of(json_value()), btree_map("[a-z]{1,8}", json_value(), 0..3)).prop_map(
        |(ty, id, payload, extra)| {
            let mut map = Map::new();
            for (k, v) in extra {
                map.insert(k, v);
            }
            if let Some(ty) = ty {
                map.insert("type".into(), ty);
            }
            if let Some(id) = id {
                map.insert("id".into(), id);
            }
            if let Some(payload) = payload {
                map.insert("payload".into(), payload);
            }
            Value::Object(map)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic_the_decoder_and_are_classified_as_the_protocol_says(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..256),
            // JSON-ish noise reaches deeper into the parser than random bytes.
            "[\\[\\]{}\":,0-9a-z \\\\.eE+-]{0,64}".prop_map(String::into_bytes),
        ]
    ) {
        let decoded = Event::from_json(&bytes);
        prop_assert_eq!(class_of(&decoded), reference_class(&bytes));
    }

    #[test]
    fn random_json_is_classified_as_the_protocol_says(value in prop_oneof![json_value(), envelope_like()]) {
        let text = value.to_string();
        prop_assert_eq!(class_of(&Event::from_json(text.as_bytes())), reference_class(text.as_bytes()));
    }

    #[test]
    fn a_valid_envelope_keeps_its_type_id_and_payload(
        ty in "[^\\u{0}]{1,16}",
        id in any::<String>(),
        payload in proptest::option::of(json_value()),
        extra in btree_map("x[a-z]{0,4}", json_value(), 0..3),
    ) {
        let mut map: Map<String, Value> = extra.into_iter().collect();
        map.insert("type".into(), json!(ty));
        map.insert("id".into(), json!(id));
        if let Some(p) = &payload {
            map.insert("payload".into(), p.clone());
        }
        let text = Value::Object(map).to_string();
        let event = Event::from_json(text.as_bytes()).expect("a valid envelope");
        prop_assert_eq!(event.event_type(), ty.as_str());
        prop_assert_eq!(event.id(), id.as_str());
        let payload = payload.unwrap_or(Value::Null);
        prop_assert_eq!(event.payload(), &payload);
        // Forwarded without changing its value: same text, digits and key order kept.
        let expected = format!(r#"{{"type":{},"id":{},"payload":{}}}"#, json!(ty), json!(id), payload);
        prop_assert_eq!(event.to_json(), expected);
    }

    #[test]
    fn a_damaged_envelope_never_panics_and_is_classified_as_the_protocol_says(
        value in envelope_like(),
        cut in any::<prop::sample::Index>(),
        insert in any::<u8>(),
        at in any::<prop::sample::Index>(),
    ) {
        let mut bytes = value.to_string().into_bytes();
        let at = at.index(bytes.len() + 1);
        bytes.insert(at, insert);
        bytes.truncate(cut.index(bytes.len()) + 1);
        prop_assert_eq!(class_of(&Event::from_json(&bytes)), reference_class(&bytes));
    }
}

#[test]
fn deep_nesting_is_invalid_json_and_never_overflows_the_stack() {
    for depth in [127, 128, 129, 1_000, 10_000, 100_000] {
        let nested = format!(r#"{{"type":"t","id":"","payload":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
        let decoded = Event::from_json(nested.as_bytes());
        // The envelope object is one level of its own.
        assert_eq!(class_of(&decoded), if depth < 128 { Class::Envelope } else { Class::InvalidJson }, "{depth}");
        let unclosed = "{".repeat(depth);
        assert_eq!(class_of(&Event::from_json(unclosed.as_bytes())), Class::InvalidJson, "{depth}");
    }
}

// --- patterns against a reference matcher -----------------------------------

/// The grammar of docs/wire-protocol.md, "Topic patterns", read literally.
mod reference {
    pub(crate) fn valid(pattern: &str) -> bool {
        if pattern == "*" {
            return true;
        }
        if pattern.len() >= 2 && pattern.ends_with(":*") {
            let ty = &pattern[..pattern.len() - 2];
            return !ty.is_empty() && !ty.contains('*');
        }
        !pattern.is_empty() && !pattern.contains('*')
    }

    /// Whether a valid `pattern` matches the event of this type and id.
    pub(crate) fn matches(pattern: &str, ty: &str, id: &str) -> bool {
        if pattern == "*" {
            return true;
        }
        if pattern.len() >= 2 && pattern.ends_with(":*") {
            return ty == &pattern[..pattern.len() - 2];
        }
        pattern == format!("{ty}:{id}")
    }
}

/// Short strings over a small alphabet, so that patterns and topics collide often.
fn small(min: usize) -> impl Strategy<Value = String> {
    vec(prop_oneof![Just('a'), Just('b'), Just(':'), Just('*'), Just('.')], min..6).prop_map(String::from_iter)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn patterns_are_accepted_and_refused_as_the_grammar_says(text in prop_oneof![small(0), any::<String>()]) {
        prop_assert_eq!(Pattern::new(&text).is_ok(), reference::valid(&text), "{:?}", text);
    }

    #[test]
    fn a_pattern_set_matches_exactly_the_topics_the_reference_matches(
        patterns in vec(small(0), 0..6),
        events in vec((small(1), small(0)), 1..16),
    ) {
        let valid: Vec<String> = patterns.into_iter().filter(|p| reference::valid(p)).collect();
        let parsed: Vec<Pattern> = valid.iter().map(|p| Pattern::new(p).unwrap()).collect();
        for (ty, id) in &events {
            let topic = format!("{ty}:{id}");
            let ours = parsed.iter().any(|p| p.matches(ty, &topic));
            let theirs = valid.iter().any(|p| reference::matches(p, ty, id));
            prop_assert_eq!(ours, theirs, "patterns {:?}, type {:?}, id {:?}", valid, ty, id);
        }
    }
}

// --- the same, end to end through a spoke's connection ----------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A spoke on an in-memory duplex pipe: the hub's side is accepted, the
/// client's side returned.
async fn duplex_spoke(hub: &Hub) -> WebSocketStream<tokio::io::DuplexStream> {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let server = WebSocketStream::from_raw_socket(server, Role::Server, Some(hub.config().websocket_config())).await;
    hub.accept(server);
    WebSocketStream::from_raw_socket(client, Role::Client, None).await
}

async fn next_json(ws: &mut WebSocketStream<tokio::io::DuplexStream>) -> Value {
    loop {
        match tokio::time::timeout(support::WAIT, ws.next()).await.expect("a message in time") {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_spoke_receives_exactly_the_dispatched_events_its_patterns_match(
        patterns in vec(small(0), 0..5),
        events in vec((small(1), small(0)), 1..24),
    ) {
        runtime().block_on(async {
            let hub = Hub::new(HubConfig::default());
            let mut ws = duplex_spoke(&hub).await;
            // `end:*` closes the run; no random type can be `end`.
            let mut held = vec!["end:*".to_owned()];
            for p in &patterns {
                ws.send(Message::text(json!({"type": "hub.subscribe", "id": p}).to_string())).await.unwrap();
                let answer = next_json(&mut ws).await;
                if reference::valid(p) {
                    assert_eq!((answer["type"].as_str(), answer["id"].as_str()), (Some("hub.subscribed"), Some(p.as_str())));
                    held.push(p.clone());
                } else {
                    assert_eq!((answer["type"].as_str(), answer["id"].as_str()), (Some("hub.error"), Some("invalid_pattern")));
                }
            }
            ws.send(Message::text(json!({"type": "hub.subscribe", "id": "end:*"}).to_string())).await.unwrap();
            assert_eq!(next_json(&mut ws).await["type"], "hub.subscribed");

            let mut expected = Vec::new();
            for (i, (ty, id)) in events.iter().enumerate() {
                hub.dispatch(Event::new(ty.as_str(), id.as_str(), i)).unwrap();
                if held.iter().any(|p| reference::matches(p, ty, id)) {
                    expected.push(i);
                }
            }
            hub.dispatch(Event::new("end", "", ())).unwrap();
            let mut received = Vec::new();
            loop {
                let v = next_json(&mut ws).await;
                if v["type"] == "end" {
                    break;
                }
                received.push(v["payload"].as_u64().unwrap() as usize);
            }
            assert_eq!(received, expected, "held {held:?}, events {events:?}");
        });
    }
}

// --- random frames into one connection --------------------------------------

/// One client frame with random header bits; sometimes unmasked, sometimes
/// claiming more bytes than follow.
fn random_frame() -> impl Strategy<Value = Vec<u8>> {
    let payload = prop_oneof![
        3 => vec(any::<u8>(), 0..40),
        2 => any::<String>().prop_map(String::into_bytes),
        2 => envelope_like().prop_map(|v| v.to_string().into_bytes()),
        1 => Just(br#"{"type":"hub.subscribe","id":"a:*"}"#.to_vec()),
        1 => vec(any::<u8>(), 120..300),
    ];
    (
        prop_oneof![4 => prop_oneof![Just(0x0u8), Just(0x1), Just(0x2), Just(0x8), Just(0x9), Just(0xA)], 1 => 0u8..16],
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.95),
        payload,
        prop::bool::weighted(0.05),
    )
        .prop_map(|(opcode, fin, rsv, masked, payload, short)| {
            let mut bytes = support::frame(opcode, &payload, fin, if rsv { 0b010 } else { 0 }, masked);
            if short && !payload.is_empty() {
                bytes.truncate(bytes.len() - 1);
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_frames_end_the_connection_cleanly_and_leave_the_hub_consistent(
        frames in vec(random_frame(), 0..12),
    ) {
        runtime().block_on(async {
            let hub = Hub::new(HubConfig::default().max_message_size(256).close_timeout(Duration::from_millis(200)));
            let gone: Arc<Mutex<Vec<DisconnectReason>>> = Arc::default();
            let sink = gone.clone();
            hub.on_disconnection(move |_, reason| sink.lock().unwrap().push(reason.clone()));
            let mut events = hub.subscribe("*").unwrap();

            let (client, server) = tokio::io::duplex(16 * 1024);
            let server = WebSocketStream::from_raw_socket(server, Role::Server, Some(hub.config().websocket_config())).await;
            hub.accept(server);
            let (mut read, mut write) = tokio::io::split(client);
            let drain = tokio::spawn(async move {
                let mut sink = Vec::new();
                let _ = read.read_to_end(&mut sink).await;
            });
            for frame in &frames {
                if write.write_all(frame).await.is_err() {
                    break; // the hub closed first
                }
            }
            let _ = write.shutdown().await;
            tokio::time::timeout(support::WAIT, drain).await.expect("the hub ends the connection").unwrap();
            tokio::time::timeout(support::WAIT, async {
                while hub.spoke_count() > 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .expect("the spoke leaves the hub");

            let reasons = gone.lock().unwrap().clone();
            assert_eq!(reasons.len(), 1, "the disconnection hook runs once: {reasons:?}");
            assert!(!matches!(reasons[0], DisconnectReason::Internal(_)), "{reasons:?}");
            let stats = hub.stats();
            assert_eq!(stats.connections, 0);
            let allowed: BTreeMap<u16, u64> =
                stats.closes.iter().filter(|(code, _)| [1002, 1007, 1009].contains(*code)).map(|(c, n)| (*c, *n)).collect();
            assert_eq!(stats.closes, allowed, "only the protocol's codes for bad frames");
            // Whatever reached the hub's streams is a valid user event.
            hub.shutdown().await;
            while let Some(Ok(event)) = events.next().await {
                assert!(!event.event_type().is_empty() && !event.event_type().starts_with("hub."), "{event:?}");
            }
        });
    }
}
