//! Several hubs behind a load balancer, joined by Redis: one hub per
//! process, each with its own spokes, acting as one.
//!
//! ```text
//! redis-server --port 6379 --save '' &               # Debian's redis-server
//! cargo run --example multi_hub --features redis -- 127.0.0.1:8081
//! cargo run --example multi_hub --features redis -- 127.0.0.1:8082
//! redis-cli PUBLISH wshub:news: '{"type":"news","id":"","payload":"from outside"}'
//! ```
//!
//! Connect a spoke to each port (the `subscribe_client` example, `websocat`,
//! a browser): what one spoke sends reaches the spokes of both hubs (relay
//! is on); every hub sends a `clock` event every 5 seconds, which reaches
//! every spoke on every hub exactly once; the `PUBLISH` above reaches them
//! all. `chat.message:*` events from any hub's spokes are printed by every
//! hub (cluster-wide subscriptions). Each hub prints its bridge's counters
//! every 5 seconds. Stop Redis and start it again: each hub keeps serving
//! its own spokes, its counters show the outage (`state: Disconnected`,
//! `outages`, `publish_dropped`), and it rejoins by itself (`Connected`,
//! `reconnects`).
//!
//! The Redis URL comes from `WSHUB_REDIS_URL` (default `redis://127.0.0.1:6379/`).

use std::time::Duration;

use futures::StreamExt;
use wshub::bridge::{RedisBridge, RedisBridgeConfig, Scope};
use wshub::{Event, Hub, HubConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8081".into());
    let redis_url = std::env::var("WSHUB_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());

    let bridge = RedisBridge::new(RedisBridgeConfig::new(redis_url))?;
    let config = HubConfig::default().relay(true).subscribe_scope(Scope::Cluster);
    let hub = Hub::with_bridge(config, bridge);
    println!("hub {} on ws://{addr}/", hub.node_id().expect("a bridged hub"));

    // Sees what spokes send to any hub of the cluster.
    let mut chat = hub.subscribe("chat.message:*")?;
    tokio::spawn(async move {
        while let Some(Ok(event)) = chat.next().await {
            let from = match event.origin() {
                Some(spoke) => format!("spoke {spoke} of this hub"),
                None => "a spoke of another hub".into(),
            };
            println!("{} from {from}: {}", event.topic(), event.payload());
        }
    });

    // Every spoke of every hub hears every hub's clock, once.
    let clock = hub.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let from = clock.node_id().map(|n| n.to_string()).unwrap_or_default();
            let _ = clock.dispatch(Event::new("clock", from, clock.spoke_count()));
            println!("{:?}", clock.bridge_stats().expect("a bridged hub"));
        }
    });

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    hub.serve(listener)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}
