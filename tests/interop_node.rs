//! Node peers built with the `ws` package from npm (locked in
//! tests/node/package-lock.json, installed by scripts/setup.d/10-node.sh):
//! a Node spoke against the hub, and the Rust `Client` against a Node hub
//! that speaks the envelope format the way the original TypeScript hub does.

#[path = "support/client.rs"]
#[cfg(feature = "client")]
mod client_support;
#[path = "support/foreign.rs"]
mod foreign;
mod support;

use tokio::process::Command;

const SETUP: &str = "install Node and run `bash scripts/setup.d/10-node.sh` (or scripts/test.sh) first";

fn node(script: &str) -> Command {
    let mut node = Command::new("node");
    node.arg(format!("{}/tests/node/{script}", env!("CARGO_MANIFEST_DIR")));
    node
}

#[tokio::test]
async fn a_node_ws_spoke_sends_text_and_binary_subscribes_and_receives() {
    foreign::check_spoke_script(node("spoke.mjs"), SETUP).await;
}

#[cfg(feature = "client")]
mod against_a_node_hub {
    use std::process::Stdio;
    use std::time::Duration;

    use futures::StreamExt;
    use serde_json::json;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::process::Child;
    use wshub::{Client, Event};

    use super::client_support::{fast, next_event};
    use super::support::WAIT;
    use super::{SETUP, node};

    /// Starts tests/node/ts-hub.mjs; returns it (killed on drop) and its URL.
    async fn start_ts_hub() -> (Child, String) {
        let mut command = node("ts-hub.mjs");
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).kill_on_drop(true);
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start node ({e}): {SETUP}"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(WAIT, lines.next_line()).await.expect("no PORT line").unwrap();
        let port = line.as_deref().and_then(|l| l.strip_prefix("PORT ")).expect("a PORT line").to_owned();
        (child, format!("ws://127.0.0.1:{port}/"))
    }

    #[tokio::test]
    async fn the_client_filters_locally_when_the_hub_ignores_subscriptions() {
        let (_hub, url) = start_ts_hub().await;
        let alice = Client::connect(&url, fast()).await.unwrap();
        let bob = Client::connect(&url, fast()).await.unwrap();
        let mut prices = alice.subscribe("price:*").unwrap();
        let mut everything = alice.subscribe("*").unwrap();
        let mut chat = bob.subscribe("chat:*").unwrap();

        bob.dispatch(Event::new("news", "1", "not a price")).unwrap();
        bob.dispatch(Event::new("price", "btc", json!({ "usd": 1 }))).unwrap();
        bob.dispatch(Event::new("price", "eth", json!({ "usd": 2 }))).unwrap();

        // The Node hub sends alice everything (her `*` stream shows it) ...
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(next_event(&mut everything).await.topic());
        }
        assert_eq!(got, ["news:1", "price:btc", "price:eth"]);
        // ... and her `price:*` stream shows only prices, in order.
        assert_eq!(next_event(&mut prices).await, Event::new("price", "btc", json!({ "usd": 1 })));
        assert_eq!(next_event(&mut prices).await.topic(), "price:eth");

        // The other way: alice to bob.
        alice.dispatch(Event::new("chat", "room", "hi bob")).unwrap();
        assert_eq!(next_event(&mut chat).await.payload(), "hi bob");

        // The Node hub never acknowledges `hub.subscribe`; it fanned the
        // envelopes out instead, and the clients skipped them.
        assert!(tokio::time::timeout(Duration::from_millis(100), prices.acknowledged()).await.is_err());
        assert!(alice.state().is_connected() && bob.state().is_connected());
        assert!(tokio::time::timeout(Duration::from_millis(50), prices.next()).await.is_err(), "no more prices");
    }
}
