//! `Hub::dispatch` into N in-memory spokes: the hub's cost per delivery,
//! without sockets. Each spoke is an in-memory duplex pipe whose far end is
//! drained; an iteration dispatches a burst and waits until every spoke's
//! task has written every event.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
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

criterion_group!(benches, fan_out);
criterion_main!(benches);
