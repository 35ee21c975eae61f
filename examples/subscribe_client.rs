//! A client that subscribes to a pattern and prints what arrives, with its
//! connection state and any `hub.error`. It asks the hub one question first,
//! so that against `cargo run --example request_hub` there is something to see.
//!
//! ```text
//! cargo run --example subscribe_client                                  # ws://127.0.0.1:8080/, response:*
//! cargo run --example subscribe_client -- wss://hub.example.com/ws '*'
//! WSHUB_TOKEN=s3cret cargo run --example subscribe_client -- ws://127.0.0.1:8080/
//! ```
//!
//! Stop the hub and start it again: the client reconnects and subscribes
//! again by itself, and prints each state on the way.

use futures::StreamExt;
use serde_json::json;
use wshub::{Client, ClientConfig, Event};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:8080/".into());
    let pattern = args.next().unwrap_or_else(|| "response:*".into());
    let mut config = ClientConfig::default();
    if let Ok(token) = std::env::var("WSHUB_TOKEN") {
        config = config.bearer_token(token);
    }

    // `new`, not `connect`: start even if the hub is not up yet.
    let client = Client::new(&url, config)?;
    let mut events = client.subscribe(pattern.as_str())?;
    let mut states = client.states();
    let mut errors = client.hub_errors();
    client.dispatch(Event::new("request", "1", json!({ "text": "hello, hub" })))?;
    println!("subscribed to {pattern} on {url} (ctrl-c to stop)");

    loop {
        tokio::select! {
            Some(state) = states.next() => println!("[state] {state:?}"),
            Some(Ok(error)) = errors.next() => println!("[hub.error] {}: {}", error.code_str(), error.message()),
            item = events.next() => match item {
                Some(Ok(event)) => println!("{} {}", event.topic(), event.payload()),
                Some(Err(lagged)) => println!("[lagged] missed {}", lagged.missed),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let unsent = client.close().await;
    if !unsent.is_empty() {
        println!("{} events were never sent", unsent.len());
    }
    Ok(())
}
