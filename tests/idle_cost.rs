//! An idle spoke costs a few KiB, not tungstenite's default 256 KiB.

mod support;

use support::*;
use wshub::HubConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_spoke_costs_a_few_kib() {
    const SPOKES: usize = 500;
    let hub = TestHub::start(HubConfig::default()).await;
    // Warm up the allocator and runtime with a few connections first.
    let mut warm = Vec::new();
    for _ in 0..20 {
        warm.push(RawSpoke::connect(&hub).await);
    }
    let before = rss_kib();
    let mut spokes = Vec::with_capacity(SPOKES);
    for _ in 0..SPOKES {
        // The client side is a bare TCP stream after the handshake, so what
        // grows is the hub's side (plus a socket's worth on the client).
        spokes.push(RawSpoke::connect(&hub).await);
    }
    hub.wait_until(|h| h.spoke_count() == SPOKES + 20).await;
    let per_spoke = (rss_kib().saturating_sub(before)) as f64 / SPOKES as f64;
    println!("{per_spoke:.1} KiB per idle spoke");
    assert!(per_spoke < 8.0, "{per_spoke:.1} KiB per idle spoke");
}
