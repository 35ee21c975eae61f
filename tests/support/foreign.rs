//! Runs a spoke this project did not write (tests/node/spoke.mjs,
//! tests/python/spoke.py) against a hub, and checks both sides.
#![allow(dead_code, unreachable_pub)]

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use wshub::{DisconnectReason, ErrorCode, Event, HubConfig};

use crate::support::{TestHub, WAIT, wait_for};

/// Runs the spoke `command` (given the hub's URL as its last argument)
/// through the script both spoke scripts follow, and asserts what the hub
/// saw and what the spoke reported.
pub async fn check_spoke_script(mut command: Command, setup_hint: &str) {
    let hub = TestHub::start(HubConfig::default()).await;
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    hub.hub.on_disconnection(move |_, reason| seen.lock().unwrap().push(reason.clone()));
    let mut received = hub.hub.subscribe("*").unwrap();

    command.arg(hub.url()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start the spoke ({e}): {setup_hint}"));
    let mut stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    let ready = tokio::time::timeout(WAIT, lines.next_line()).await.expect("no READY in time").unwrap();
    if ready.as_deref() != Some("READY") {
        let mut why = String::new();
        let _ = stderr.read_to_string(&mut why).await;
        panic!("the spoke did not get ready ({ready:?}): {why}");
    }
    // Not subscribed to `other:*`: the hub must not send it.
    hub.hub.dispatch(Event::new("other", "x", "filtered out")).unwrap();
    hub.hub.dispatch(Event::new("greeting", "node", json!({ "text": "hello node" }))).unwrap();

    let status = tokio::time::timeout(WAIT, child.wait()).await.expect("the spoke did not exit").unwrap();
    let mut why = String::new();
    let _ = stderr.read_to_string(&mut why).await;
    assert!(status.success(), "the spoke failed ({status}): {why}");

    let mut next = async || tokio::time::timeout(WAIT, received.next()).await.unwrap().unwrap().unwrap();
    let text = next().await;
    assert_eq!(text.to_json(), r#"{"type":"spoke.text","id":"1","payload":{"big":12345678901234567890123}}"#);
    let binary = next().await;
    assert_eq!(binary.to_json(), r#"{"type":"spoke.binary","id":"2","payload":[1,"two"]}"#);
    assert_eq!(next().await.topic(), "spoke.done:ok");

    let errors = hub.hub.stats().errors;
    assert_eq!(errors.get(&ErrorCode::ReservedType), Some(&1), "{errors:?}");
    assert_eq!(errors.get(&ErrorCode::InvalidJson), Some(&1), "{errors:?}");
    wait_for(|| !reasons.lock().unwrap().is_empty()).await;
    assert_eq!(reasons.lock().unwrap()[0], DisconnectReason::Closed { code: 1000, reason: "done".into() });
}
