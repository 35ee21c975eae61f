//! Hubs joined by a bridge, served on free loopback ports.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use tokio::net::TcpListener;
use wshub::bridge::{Bridge, BridgeState, BridgeStats};
use wshub::{Hub, HubConfig};

use crate::support::{TestHub, wait_for};

/// A hub with `bridge`, serving on a free loopback port.
pub async fn start_bridged(config: HubConfig, bridge: impl Bridge) -> TestHub {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hub = Hub::with_bridge(config, bridge);
    let serving = tokio::spawn(hub.clone().serve(listener).into_future());
    TestHub { hub, addr, serving }
}

pub fn bridge_stats(hub: &TestHub) -> BridgeStats {
    hub.hub.bridge_stats().expect("a hub with a bridge")
}

/// Waits until the hub's bridge is in `state`.
pub async fn wait_bridge(hub: &TestHub, state: BridgeState) {
    wait_for(|| bridge_stats(hub).state == state).await;
}

/// Waits until `count` of the hub's bridge stats reaches `n`, and checks it
/// goes no further for a moment.
pub async fn wait_count(hub: &TestHub, count: impl Fn(&BridgeStats) -> u64, n: u64) {
    wait_for(|| count(&bridge_stats(hub)) >= n).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(count(&bridge_stats(hub)), n, "{:?}", bridge_stats(hub));
}

/// Short enough for tests.
pub const QUIET: Duration = Duration::from_millis(200);
