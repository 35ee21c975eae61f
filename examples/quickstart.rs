//! A hub on 127.0.0.1:8080 (or the address given as the first argument)
//! that relays what its spokes send, answers `ping` requests to the asking
//! spoke alone, and tells every spoke the time each second.
//!
//! ```sh
//! cargo run --release --example quickstart
//! # then, from any WebSocket client (here Node's `ws`):
//! # node -e 'const ws=new (require("ws"))("ws://127.0.0.1:8080");
//! #   ws.on("open",()=>ws.send(JSON.stringify({type:"ping",id:"1",payload:{}})));
//! #   ws.on("message",m=>console.log(String(m)))'
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use wshub::{Event, Hub, HubConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let hub = Hub::new(HubConfig::default().relay(true));
    hub.on_connection(|spoke| println!("+ spoke {} from {:?}", spoke.id(), spoke.remote_addr()));
    hub.on_disconnection(|spoke, reason| println!("- spoke {}: {reason:?}", spoke.id()));

    // Requests are answered to the spoke that asked, and to no other.
    let mut pings = hub.subscribe("ping:*").expect("a valid pattern");
    let answering = hub.clone();
    tokio::spawn(async move {
        while let Some(item) = pings.next().await {
            let Ok(ping) = item else { continue };
            if let Some(spoke) = ping.origin().and_then(|id| answering.spoke(id)) {
                let _ = spoke.dispatch(Event::new("pong", ping.id(), ping.payload().clone()));
            }
        }
    });

    // Every spoke hears the time (those that subscribed to something else do not).
    let ticking = hub.clone();
    tokio::spawn(async move {
        let mut every_second = tokio::time::interval(Duration::from_secs(1));
        loop {
            every_second.tick().await;
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
            let _ = ticking.dispatch(Event::new("tick", "", now));
        }
    });

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("wshub quickstart hub on ws://{}/ (Ctrl-C to stop)", listener.local_addr()?);
    hub.serve(listener)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await
}
