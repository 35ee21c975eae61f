//! Hubs joined by the Redis bridge, against a real `redis-server` started
//! for each test: dispatch, relay and subscriptions across hubs, exactly
//! once; outside publishers; Redis going away and coming back.
#![cfg(feature = "redis")]

#[path = "support/bridge.rs"]
mod bridge_support;
#[path = "support/redis.rs"]
mod redis_server;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bridge_support::*;
use futures::StreamExt;
use redis_server::RedisServer;
use serde_json::{Value, json};
use support::*;
use wshub::bridge::{BridgeState, RedisBridge, RedisBridgeConfig, Scope};
use wshub::{Event, HubConfig};

/// Settings that notice an outage and reconnect quickly, for tests.
fn bridge_config(url: &str) -> RedisBridgeConfig {
    RedisBridgeConfig::new(url)
        .backoff(Duration::from_millis(20), Duration::from_millis(300))
        .connect_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(2))
        .health_check_interval(Duration::from_millis(500))
}

async fn hub_on(redis_url: &str, config: HubConfig) -> TestHub {
    start_bridged(config, RedisBridge::new(bridge_config(redis_url)).unwrap()).await
}

/// `n` hubs on one Redis, each connected and subscribed.
async fn cluster(redis: &RedisServer, n: usize, config: HubConfig) -> Vec<TestHub> {
    let mut hubs = Vec::new();
    for _ in 0..n {
        hubs.push(hub_on(&redis.url(), config.clone()).await);
    }
    for hub in &hubs {
        wait_bridge(hub, BridgeState::Connected).await;
    }
    hubs
}

/// Reads the next data message; its `type` and `payload`.
async fn next(ws: &mut Ws) -> (String, Value) {
    let v = recv(ws).await;
    (v["type"].as_str().unwrap_or_default().to_owned(), v["payload"].clone())
}

#[tokio::test]
async fn a_dispatch_on_one_hub_reaches_spokes_on_every_hub_exactly_once() {
    let redis = RedisServer::start().await;
    let hubs = cluster(&redis, 3, HubConfig::default()).await;
    let mut spokes = Vec::new();
    for hub in &hubs {
        spokes.push(hub.connect().await);
        spokes.push(hub.connect().await);
    }

    for i in 0..50 {
        hubs[0].hub.dispatch(Event::new("tick", "", i)).unwrap();
    }
    // Redis has taken all 50 before the marker, published from another hub:
    // anything duplicated would arrive before it. Hub 1 has passed the 50 on
    // to its spokes before its own marker, which reaches them without Redis.
    wait_count(&hubs[0], |s| s.published, 50).await;
    wait_count(&hubs[1], |s| s.received, 50).await;
    hubs[1].hub.dispatch(Event::new("end", "", ())).unwrap();

    for ws in &mut spokes {
        for i in 0..50 {
            assert_eq!(next(ws).await, ("tick".into(), json!(i)));
        }
        assert_eq!(next(ws).await.0, "end");
        expect_silence(ws, QUIET).await;
    }
    // Hub 0 skipped its own 50 when they came back, and received hub 1's marker.
    let own = bridge_stats(&hubs[0]);
    assert_eq!((own.own_skipped, own.received), (50, 1), "{own:?}");
    assert_eq!(bridge_stats(&hubs[2]).received, 51);
}

#[tokio::test]
async fn with_relay_a_spokes_event_reaches_spokes_on_every_hub_exactly_once_and_not_its_sender() {
    let redis = RedisServer::start().await;
    let hubs = cluster(&redis, 3, HubConfig::default().relay(true)).await;
    let mut sender = hubs[0].connect().await;
    let mut others = vec![hubs[0].connect().await, hubs[1].connect().await, hubs[2].connect().await];

    for i in 0..20 {
        send(&mut sender, envelope("chat.message", "room-1", json!(i))).await;
    }
    wait_count(&hubs[0], |s| s.published, 20).await;
    hubs[2].hub.dispatch(Event::new("end", "", ())).unwrap();

    for ws in &mut others {
        for i in 0..20 {
            assert_eq!(next(ws).await, ("chat.message".into(), json!(i)));
        }
        assert_eq!(next(ws).await.0, "end");
        expect_silence(ws, QUIET).await;
    }
    assert_eq!(next(&mut sender).await.0, "end", "the sender gets no echo from any hub");
}

#[tokio::test]
async fn with_cluster_scope_hub_subscribe_sees_what_spokes_send_to_other_hubs() {
    let redis = RedisServer::start().await;
    let hubs = cluster(&redis, 2, HubConfig::default().subscribe_scope(Scope::Cluster)).await;
    let mut here = hubs[0].hub.subscribe("chat.message:*").unwrap();
    let mut there = hubs[1].hub.subscribe("chat.message:*").unwrap();
    let mut quiet_spoke = hubs[0].connect().await;
    let mut ws = hubs[1].connect().await;

    send(&mut ws, envelope("chat.message", "room-1", json!({"text": "hi"}))).await;

    let local = tokio::time::timeout(WAIT, there.next()).await.unwrap().unwrap().unwrap();
    assert!(local.origin().is_some());
    let remote = tokio::time::timeout(WAIT, here.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(remote.to_json(), r#"{"type":"chat.message","id":"room-1","payload":{"text":"hi"}}"#);
    assert_eq!(remote.origin(), None, "a spoke of another hub has no id here");
    // Without relay, it is for subscribers only: no spoke receives it.
    expect_silence(&mut quiet_spoke, QUIET).await;
    assert!(tokio::time::timeout(QUIET, here.next()).await.is_err(), "exactly once");
}

#[tokio::test]
async fn with_local_scope_hub_subscribe_sees_only_its_own_spokes() {
    let redis = RedisServer::start().await;
    let hubs = cluster(&redis, 2, HubConfig::default().relay(true)).await;
    let mut here = hubs[0].hub.subscribe("*").unwrap();
    let mut spoke_here = hubs[0].connect().await;
    let mut ws = hubs[1].connect().await;

    send(&mut ws, envelope("chat.message", "room-1", json!("hi"))).await;

    // Relayed to this hub's spoke, which shows the event has been handled here...
    assert_eq!(next(&mut spoke_here).await, ("chat.message".into(), json!("hi")));
    // ...and it did not reach this hub's subscription.
    assert!(futures::FutureExt::now_or_never(here.next()).is_none());
}

#[tokio::test]
async fn an_outside_redis_cli_publish_reaches_spokes_on_every_hub() {
    let redis = RedisServer::start().await;
    let hubs = cluster(&redis, 2, HubConfig::default()).await;
    let mut a = hubs[0].connect().await;
    let mut b = hubs[1].connect().await;

    let receivers = redis
        .cli(&[
            "PUBLISH",
            "wshub:chat.message:room-1",
            r#"{"type":"chat.message","id":"room-1","payload":{"n":12345678901234567890123},"extra":true}"#,
        ])
        .await;

    assert_eq!(receivers, "2", "both hubs are subscribed");
    for ws in [&mut a, &mut b] {
        // Extra fields dropped, every digit kept: as from a spoke.
        assert_eq!(
            recv_text(ws).await,
            r#"{"type":"chat.message","id":"room-1","payload":{"n":12345678901234567890123}}"#
        );
    }
}

#[tokio::test]
async fn garbage_published_into_redis_is_counted_and_reaches_no_spoke() {
    let redis = RedisServer::start().await;
    let hubs = cluster(&redis, 1, HubConfig::default()).await;
    let mut ws = hubs[0].connect().await;

    for bad in ["not json", r#"{"type":"hub.lagged","id":""}"#, r#"{"id":"x"}"#, "[1,2]"] {
        redis.cli(&["PUBLISH", "wshub:x", bad]).await;
    }
    redis.cli(&["PUBLISH", "wshub:ok:", r#"{"type":"ok","id":""}"#]).await;

    assert_eq!(recv_text(&mut ws).await, r#"{"type":"ok","id":"","payload":null}"#);
    let stats = bridge_stats(&hubs[0]);
    assert_eq!((stats.rejected, stats.received), (4, 1), "{stats:?}");
}

#[tokio::test]
async fn hubs_publish_the_envelope_json_on_prefix_and_topic_channels() {
    let redis = RedisServer::start().await;
    let config = bridge_config(&redis.url()).prefix("app[1]:");
    let hub = start_bridged(HubConfig::default(), RedisBridge::new(config).unwrap()).await;
    wait_bridge(&hub, BridgeState::Connected).await;
    let mut ws = hub.connect().await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut watcher = client.get_async_pubsub().await.unwrap();
    watcher.psubscribe("*").await.unwrap();

    hub.hub.dispatch(Event::new("chat.message", "room-1", json!({"text": "hi"}))).unwrap();

    let message = tokio::time::timeout(WAIT, watcher.on_message().next()).await.unwrap().unwrap();
    assert_eq!(message.get_channel_name(), "app[1]:chat.message:room-1");
    let published: Value = serde_json::from_slice(message.get_payload_bytes()).unwrap();
    let node = hub.hub.node_id().unwrap().to_string();
    assert_eq!(
        published,
        json!({"type": "chat.message", "id": "room-1", "payload": {"text": "hi"}, "node": node, "seq": 1})
    );
    // The glob characters of the prefix are escaped: another prefix does not reach the hub.
    assert_eq!(recv(&mut ws).await["type"], "chat.message");
    assert_eq!(redis.cli(&["PUBLISH", "app1:t:", r#"{"type":"t","id":""}"#]).await, "1", "the watcher only");
    assert_eq!(redis.cli(&["PUBLISH", "wshub:t:", r#"{"type":"t","id":""}"#]).await, "1", "the watcher only");
    assert_eq!(redis.cli(&["PUBLISH", "app[1]:t:", r#"{"type":"t","id":""}"#]).await, "2");
    assert_eq!(recv(&mut ws).await["type"], "t");
}

#[tokio::test]
async fn redis_killed_mid_stream_and_restarted_local_delivery_never_stops_and_cross_hub_delivery_resumes() {
    let mut redis = RedisServer::start().await;
    let hubs = cluster(&redis, 2, HubConfig::default()).await;
    let mut a = hubs[0].connect().await;
    let mut b = hubs[1].connect().await;

    // A steady stream from hub A, numbered, through the whole outage.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let producer = tokio::spawn({
        let (hub, stop, sent) = (hubs[0].hub.clone(), stop.clone(), sent.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let n = sent.fetch_add(1, Ordering::Relaxed);
                hub.dispatch(Event::new("n", "", n)).unwrap();
            }
        }
    });
    let mut a_next = 0u64;
    let mut b_seen: Vec<u64> = Vec::new();
    // Reads both spokes until `until` holds; A's spoke must see every number, in order.
    macro_rules! read_until {
        ($until:expr) => {
            tokio::time::timeout(WAIT, async {
                loop {
                    tokio::select! {
                        (_, n) = next(&mut a) => {
                            assert_eq!(n, json!(a_next), "local delivery lost or reordered an event");
                            a_next += 1;
                        }
                        (_, n) = next(&mut b) => b_seen.push(n.as_u64().unwrap()),
                    }
                    if $until(a_next, &b_seen) {
                        break;
                    }
                }
            })
            .await
            .expect("not reached in time")
        };
    }

    read_until!(|_, b: &Vec<u64>| b.len() >= 20);
    redis.kill();
    wait_bridge(&hubs[0], BridgeState::Disconnected).await;
    wait_bridge(&hubs[1], BridgeState::Disconnected).await;
    let killed_at = a_next;
    // Local delivery goes on while Redis is down.
    read_until!(|a, _| a >= killed_at + 100);
    let b_before = b_seen.len();

    redis.restart().await;
    wait_bridge(&hubs[0], BridgeState::Connected).await;
    wait_bridge(&hubs[1], BridgeState::Connected).await;
    let restarted_at = sent.load(Ordering::Relaxed);
    // Cross-hub delivery resumes, with no action from anyone.
    read_until!(|_, b: &Vec<u64>| b.last().is_some_and(|n| *n > restarted_at + 20));
    stop.store(true, Ordering::Relaxed);
    producer.await.unwrap();
    let total = sent.load(Ordering::Relaxed);
    read_until!(|a, _| a == total);
    wait_for(|| {
        let s = bridge_stats(&hubs[0]);
        s.published + s.publish_dropped >= total
    })
    .await;
    hubs[0].hub.dispatch(Event::new("end", "", ())).unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            match next(&mut b).await {
                (t, _) if t == "end" => break,
                (_, n) => b_seen.push(n.as_u64().unwrap()),
            }
        }
    })
    .await
    .unwrap();

    // Nothing duplicated, nothing reordered; what was lost was lost during the outage.
    assert!(b_seen.windows(2).all(|w| w[0] < w[1]), "B saw a number twice or out of order");
    assert!(b_seen.len() > b_before, "B saw nothing after the restart");
    let lost: Vec<u64> = (0..total).filter(|n| b_seen.binary_search(n).is_err()).collect();
    assert!(
        !lost.is_empty() && lost.iter().all(|n| *n >= killed_at.saturating_sub(50) && *n <= restarted_at + 50),
        "{lost:?}"
    );
    // Hub B counted every event it lost; hub A counted what it could not publish.
    let (a_stats, b_stats) = (bridge_stats(&hubs[0]), bridge_stats(&hubs[1]));
    assert_eq!(b_stats.missed, lost.len() as u64, "{b_stats:?}");
    assert!(a_stats.publish_dropped > 0 && a_stats.publish_dropped <= lost.len() as u64, "{a_stats:?}");
    assert_eq!((a_stats.outages, a_stats.reconnects), (1, 1), "{a_stats:?}");
    assert_eq!((b_stats.outages, b_stats.reconnects), (1, 1), "{b_stats:?}");
}

#[tokio::test]
async fn after_a_restart_a_hub_that_had_published_nothing_publishes_again_at_once() {
    // Health checks far apart: only the other connection's loss can tell the
    // idle publishing connection that the Redis it knew is gone.
    let redis_config = |url: &str| bridge_config(url).health_check_interval(Duration::from_secs(60));
    let mut redis = RedisServer::start().await;
    let (a, b) = (
        start_bridged(HubConfig::default(), RedisBridge::new(redis_config(&redis.url())).unwrap()).await,
        start_bridged(HubConfig::default(), RedisBridge::new(redis_config(&redis.url())).unwrap()).await,
    );
    wait_bridge(&a, BridgeState::Connected).await;
    wait_bridge(&b, BridgeState::Connected).await;
    let mut on_a = a.connect().await;

    redis.kill();
    wait_bridge(&b, BridgeState::Disconnected).await;
    redis.restart().await;
    wait_bridge(&a, BridgeState::Connected).await;
    wait_bridge(&b, BridgeState::Connected).await;

    // Connected means both connections are new: B's first dispatch since
    // the restart goes through.
    b.hub.dispatch(Event::new("after", "restart", 1)).unwrap();
    assert_eq!(next(&mut on_a).await, ("after".into(), json!(1)));
    let stats = bridge_stats(&b);
    assert_eq!((stats.outages, stats.reconnects, stats.publish_dropped), (1, 1, 0), "{stats:?}");
}

#[tokio::test]
async fn memory_stays_bounded_and_dispatch_never_waits_while_redis_is_down() {
    let mut redis = RedisServer::start().await;
    let hubs = cluster(&redis, 1, HubConfig::default()).await;
    redis.kill();
    wait_bridge(&hubs[0], BridgeState::Disconnected).await;

    let before = rss_kib();
    let payload = "x".repeat(1024);
    let started = std::time::Instant::now();
    for i in 0..100_000u64 {
        hubs[0].hub.dispatch(Event::new("bulk", i.to_string(), payload.as_str())).unwrap();
        if i % 1000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let took = started.elapsed();
    let grown = rss_kib().saturating_sub(before);

    // 100,000 envelopes of 1 KiB would be about 100 MiB if anything kept them.
    assert!(grown < 20 * 1024, "RSS grew by {grown} KiB while Redis was down");
    assert!(took < Duration::from_secs(20), "dispatch waited on Redis: {took:?}");
    wait_count(&hubs[0], |s| s.publish_dropped, 100_000).await;
}

#[tokio::test]
async fn a_hub_that_starts_before_redis_serves_its_spokes_and_joins_when_redis_appears() {
    let port = RedisServer::unused_port();
    let url = redis_server::url(port);
    let early = hub_on(&url, HubConfig::default()).await;
    let mut ws = early.connect().await;

    early.hub.dispatch(Event::new("local", "", 1)).unwrap();
    assert_eq!(next(&mut ws).await, ("local".into(), json!(1)));
    assert_eq!(bridge_stats(&early).state, BridgeState::Connecting);
    assert_eq!(bridge_stats(&early).publish_dropped, 1);

    let _redis = RedisServer::start_on(port).await;
    let late = hub_on(&url, HubConfig::default()).await;
    wait_bridge(&early, BridgeState::Connected).await;
    wait_bridge(&late, BridgeState::Connected).await;
    let mut other = late.connect().await;
    early.hub.dispatch(Event::new("across", "", 2)).unwrap();
    assert_eq!(next(&mut other).await, ("across".into(), json!(2)));
    assert_eq!(next(&mut ws).await, ("across".into(), json!(2)));
    assert_eq!(bridge_stats(&early).reconnects, 0, "a first connection is not a reconnection");
}

#[tokio::test]
async fn shutting_a_hub_down_closes_its_bridge() {
    let redis = RedisServer::start().await;
    let hubs = cluster(&redis, 1, HubConfig::default()).await;
    hubs[0].hub.shutdown().await;
    assert_eq!(bridge_stats(&hubs[0]).state, BridgeState::Closed);
    wait_for(|| {
        // Only redis-cli itself is left connected.
        let clients = std::process::Command::new("redis-cli")
            .args(["-p", &redis.port().to_string(), "CLIENT", "LIST"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
            .unwrap_or(0);
        clients == 1
    })
    .await;
}
