//! Three `wshub` processes on one `redis-server`: relay and outside
//! publishers across processes, exactly once; Redis going away and coming
//! back; the bridge in `/metrics`.
#![cfg(all(feature = "server", feature = "redis"))]

#[path = "support/redis.rs"]
mod redis_server;
#[path = "support/server.rs"]
mod server;
mod support;

use redis_server::RedisServer;
use serde_json::{Value, json};
use server::Server;
use support::*;

const CONNECTED: &str = r#"wshub_bridge_state{state="connected"}"#;
const DISCONNECTED: &str = r#"wshub_bridge_state{state="disconnected"}"#;

/// Waits until the server's `/metrics` shows `sample` at `value`.
async fn wait_metric(server: &Server, sample: &str, value: f64) {
    tokio::time::timeout(WAIT, async {
        while server.metric(sample).await != value {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{sample} did not reach {value}"));
}

async fn hubs(redis: &RedisServer, n: usize) -> Vec<Server> {
    let url = redis.url();
    let mut servers = Vec::new();
    for _ in 0..n {
        servers.push(Server::start_with_env(&["--redis-url", &url], &[]).await);
    }
    for server in &servers {
        wait_metric(server, CONNECTED, 1.0).await;
    }
    servers
}

async fn next(ws: &mut Ws) -> (String, Value) {
    let v = recv(ws).await;
    (v["type"].as_str().unwrap_or_default().to_owned(), v["payload"].clone())
}

#[tokio::test]
async fn three_wshub_processes_on_one_redis_relay_every_spokes_event_to_every_process_exactly_once() {
    let redis = RedisServer::start().await;
    let servers = hubs(&redis, 3).await;
    let mut sender = servers[0].connect().await;
    let mut others = vec![servers[0].connect().await, servers[1].connect().await, servers[2].connect().await];

    for i in 0..30 {
        send(&mut sender, envelope("chat.message", "room-1", json!(i))).await;
    }
    wait_metric(&servers[0], "wshub_bridge_published_total", 30.0).await;
    // From outside, after Redis took all 30: a duplicate would come before it.
    redis.cli(&["PUBLISH", "wshub:end:", r#"{"type":"end","id":""}"#]).await;

    for ws in &mut others {
        for i in 0..30 {
            assert_eq!(next(ws).await, ("chat.message".into(), json!(i)));
        }
        assert_eq!(next(ws).await.0, "end");
    }
    assert_eq!(next(&mut sender).await.0, "end", "no echo from any process");
    for server in &servers[1..] {
        assert_eq!(server.metric("wshub_bridge_received_total").await, 31.0);
    }
    assert_eq!(servers[0].metric("wshub_bridge_received_total").await, 1.0, "its own 30 skipped");
}

#[tokio::test]
async fn wshub_processes_keep_serving_their_spokes_while_redis_is_down_and_rejoin_when_it_is_back() {
    let mut redis = RedisServer::start().await;
    let servers = hubs(&redis, 2).await;
    let (mut a1, mut a2) = (servers[0].connect().await, servers[0].connect().await);
    let mut b = servers[1].connect().await;

    send(&mut a1, envelope("before", "", json!(0))).await;
    assert_eq!(next(&mut a2).await.0, "before");
    assert_eq!(next(&mut b).await.0, "before");

    redis.kill();
    wait_metric(&servers[0], DISCONNECTED, 1.0).await;
    wait_metric(&servers[1], DISCONNECTED, 1.0).await;
    send(&mut a1, envelope("during", "", json!(1))).await;
    assert_eq!(next(&mut a2).await, ("during".into(), json!(1)), "local relay goes on");
    wait_metric(&servers[0], "wshub_bridge_publish_dropped_total", 1.0).await;

    redis.restart().await;
    wait_metric(&servers[0], CONNECTED, 1.0).await;
    wait_metric(&servers[1], CONNECTED, 1.0).await;
    send(&mut a1, envelope("after", "", json!(2))).await;
    assert_eq!(next(&mut a2).await, ("after".into(), json!(2)));
    assert_eq!(next(&mut b).await, ("after".into(), json!(2)), "nothing from the outage, then the next event");
    for server in &servers {
        assert_eq!(server.metric("wshub_bridge_outages_total").await, 1.0);
        assert_eq!(server.metric("wshub_bridge_reconnects_total").await, 1.0);
    }
    assert_eq!(servers[1].metric("wshub_bridge_missed_total").await, 1.0, "B counts the one it never got");
}

#[tokio::test]
async fn a_wshub_process_without_redis_url_shows_no_bridge_metrics() {
    let server = Server::start(&[]).await;
    let (_, body) = server.get("/metrics").await;
    assert!(!body.contains("wshub_bridge_"), "{body}");
}

#[tokio::test]
async fn a_bad_redis_url_is_refused_before_anything_starts() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_wshub"))
        .args(["--redis-url", "http://user:secret@example/"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--redis-url") && !stderr.contains("secret"), "{stderr}");
}
