//! `Hub::dispatch` into N in-memory spokes: the hub's cost per delivery,
//! without sockets. Each spoke is an in-memory duplex pipe whose far end is
//! drained; an iteration dispatches a burst and waits until every event has
//! been written to every spoke (`dispatch`: spokes that never subscribed,
//! which are parked and written to by their shard's flusher; see
//! `src/park.rs`).
//!
//! `dispatch-k-of-1000`: 1,000 spokes of which k subscribed (`hub.subscribe`)
//! to the topic dispatched and the rest to another; their tasks write. The throughput is per
//! delivery (k per event): a hub whose cost follows k shows a flat time per
//! delivery across k; one whose cost follows N shows it growing as k falls.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use wshub::{Event, Hub, HubConfig};

const BURST: u64 = 64;

async fn hub_with_spokes(n: usize) -> Hub {
    let hub = Hub::new(HubConfig::default().broadcast_capacity(4096).write_timeout(Duration::from_secs(60)));
    for _ in 0..n {
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut far, &mut tokio::io::sink()).await;
        });
        let ws = WebSocketStream::from_raw_socket(near, Role::Server, Some(hub.config().websocket_config())).await;
        hub.accept(ws);
    }
    hub
}

/// `n` spokes, the first `k` subscribed to `bench:hot`, the others to `bench:cold`.
async fn hub_with_subscribed_spokes(n: usize, k: usize) -> Hub {
    let hub = Hub::new(HubConfig::default().broadcast_capacity(4096).write_timeout(Duration::from_secs(60)));
    for i in 0..n {
        let (near, far) = tokio::io::duplex(64 * 1024);
        let (mut far_rd, mut far_wr) = tokio::io::split(far);
        let pattern = if i < k { "bench:hot" } else { "bench:cold" };
        tokio::spawn(async move {
            let text = format!(r#"{{"type":"hub.subscribe","id":"{pattern}"}}"#);
            // A masked client text frame, with a zero mask.
            let mut frame = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
            frame.extend_from_slice(text.as_bytes());
            let _ = far_wr.write_all(&frame).await;
            let _ = tokio::io::copy(&mut far_rd, &mut tokio::io::sink()).await;
            drop(far_wr);
        });
        let ws = WebSocketStream::from_raw_socket(near, Role::Server, Some(hub.config().websocket_config())).await;
        hub.accept(ws);
    }
    while hub.spokes().iter().any(|s| s.patterns().is_none()) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    hub
}

fn k_of_n(c: &mut Criterion) {
    const N: usize = 1_000;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut group = c.benchmark_group("dispatch-k-of-1000");
    group.sample_size(10);
    for k in [1usize, 10, 100, 1_000] {
        let hub = rt.block_on(hub_with_subscribed_spokes(N, k));
        let event = Event::new("bench", "hot", json!({"text": "x".repeat(30)}));
        group.throughput(Throughput::Elements(BURST * k as u64));
        group.bench_with_input(BenchmarkId::new("64B-to-k-subscribed", k), &k, |b, _| {
            b.to_async(&rt).iter_custom(|iters| {
                let hub = hub.clone();
                let event = event.clone();
                async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let target = hub.stats().events_out + BURST * k as u64;
                        for _ in 0..BURST {
                            hub.dispatch(event.clone()).unwrap();
                        }
                        while hub.stats().events_out < target {
                            tokio::task::yield_now().await;
                        }
                    }
                    start.elapsed()
                }
            })
        });
        rt.block_on(hub.shutdown());
    }
    group.finish();
}

fn fan_out(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut group = c.benchmark_group("dispatch");
    group.sample_size(10);
    for n in [1usize, 100, 1_000, 10_000] {
        let hub = rt.block_on(hub_with_spokes(n));
        let event = Event::new("chat.message", "room-1", json!({"text": "x".repeat(30)}));
        group.throughput(Throughput::Elements(BURST * n as u64));
        group.bench_with_input(BenchmarkId::new("64B-to-spokes", n), &n, |b, _| {
            b.to_async(&rt).iter_custom(|iters| {
                let hub = hub.clone();
                let event = event.clone();
                async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let target = hub.stats().events_out + BURST * n as u64;
                        for _ in 0..BURST {
                            hub.dispatch(event.clone()).unwrap();
                        }
                        while hub.stats().events_out < target {
                            tokio::task::yield_now().await;
                        }
                    }
                    start.elapsed()
                }
            })
        });
        rt.block_on(hub.shutdown());
    }
    group.finish();
}

criterion_group!(benches, fan_out, k_of_n);
criterion_main!(benches);
