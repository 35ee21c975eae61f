//! A hub that answers requests, each to the one spoke that asked.
//!
//! ```text
//! cargo run --example request_hub                 # listens on 127.0.0.1:8080
//! cargo run --example request_hub -- 0.0.0.0:9000
//! ```
//!
//! A spoke sends `{"type":"request","id":"<request id>","payload":{"text":"hi"}}`
//! and receives `{"type":"response","id":"<request id>","payload":{"text":"HI"}}`;
//! no other spoke sees it. Try it with `cargo run --example subscribe_client`.

use futures::StreamExt;
use serde_json::json;
use wshub::{Event, Hub, HubConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let hub = Hub::new(HubConfig::default());
    hub.on_connection(|spoke| println!("spoke {} connected from {:?}", spoke.id(), spoke.remote_addr()));
    hub.on_disconnection(|spoke, reason| println!("spoke {} left: {reason:?}", spoke.id()));

    let mut requests = hub.subscribe("request:*").expect("a valid pattern");
    let answering = hub.clone();
    tokio::spawn(async move {
        while let Some(item) = requests.next().await {
            let Ok(request) = item else { continue };
            let Some(spoke) = request.origin().and_then(|id| answering.spoke(id)) else { continue };
            let text = request.payload()["text"].as_str().unwrap_or_default().to_uppercase();
            println!("spoke {} asked {:?}", spoke.id(), request.id());
            // To that spoke alone, whatever its subscriptions.
            if let Err(e) = spoke.dispatch(Event::new("response", request.id(), json!({ "text": text }))) {
                eprintln!("could not answer spoke {}: {e}", spoke.id());
            }
        }
    });

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("hub listening on ws://{}/ (ctrl-c to stop)", listener.local_addr()?);
    hub.serve(listener)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await
}
