//! One connection's frame handling: the bytes are what a client sends after
//! the WebSocket handshake, into `Hub::accept` over an in-memory pipe. The
//! hub must end the connection by itself, run the disconnection hook once,
//! close only with the protocol's codes for bad input, leave no spoke
//! behind, and hand its streams only valid user events.
#![no_main]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wshub::tokio_tungstenite::WebSocketStream;
use wshub::tokio_tungstenite::tungstenite::protocol::Role;
use wshub::{DisconnectReason, Hub, HubConfig, RateLimit};

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(run(data));
});

async fn run(data: &[u8]) {
    // The first byte picks the settings, so that relay and the limits are fuzzed too.
    let (settings, data) = data.split_first().unwrap_or((&0, data));
    let mut config = HubConfig::default()
        .max_message_size(512)
        .close_timeout(Duration::from_millis(50))
        .relay(settings & 1 != 0)
        .max_subscriptions_per_spoke(4)
        .max_pattern_length(32);
    if settings & 2 != 0 {
        config = config.rate_limit(Some(RateLimit::per_second(1000).burst(8).strikes(4)));
    }
    let hub = Hub::new(config);
    let hooks = Arc::new(AtomicUsize::new(0));
    let reasons: Arc<Mutex<Vec<DisconnectReason>>> = Arc::default();
    let (h, r) = (hooks.clone(), reasons.clone());
    hub.on_disconnection(move |_, reason| {
        h.fetch_add(1, Ordering::SeqCst);
        r.lock().unwrap().push(reason.clone());
    });
    let mut events = hub.subscribe("*").unwrap();

    let (client, server) = tokio::io::duplex(8 * 1024);
    let server = WebSocketStream::from_raw_socket(server, Role::Server, Some(hub.config().websocket_config())).await;
    hub.accept(server);
    let (mut read, mut write) = tokio::io::split(client);
    let drain = tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = read.read_to_end(&mut sink).await;
    });
    let _ = write.write_all(data).await;
    let _ = write.shutdown().await;
    tokio::time::timeout(Duration::from_secs(10), drain).await.expect("the hub ends the connection").unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while hub.spoke_count() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the spoke leaves the hub");

    assert_eq!(hooks.load(Ordering::SeqCst), 1, "the disconnection hook runs once");
    let reason = reasons.lock().unwrap()[0].clone();
    assert!(!matches!(reason, DisconnectReason::Internal(_)), "{reason:?}");
    let stats = hub.stats();
    assert_eq!(stats.connections, 0);
    assert!(hub.spokes().is_empty());
    for code in stats.closes.keys() {
        assert!([1002, 1007, 1008, 1009].contains(code), "closed with {code} ({reason:?})");
    }
    hub.shutdown().await;
    while let Some(Ok(event)) = events.next().await {
        assert!(!event.event_type().is_empty() && !event.event_type().starts_with("hub."), "{event:?}");
    }
}
