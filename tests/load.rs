//! The hub holds 10,000 concurrent spokes on a 2-core machine while it
//! dispatches, and every spoke receives every event.
//!
//! The spokes run in a second process (this test binary again, running the
//! ignored test `load_spokes`), as real clients would: 20,000 sockets in one
//! process would not fit the machine's hard limit on open files (20,000,
//! which root cannot raise here). Each process raises its soft limit to what
//! it needs where the hard limit allows.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use wshub::{Event, HubConfig};

/// 10,000, or `WSHUB_LOAD_SPOKES`.
fn spokes() -> usize {
    std::env::var("WSHUB_LOAD_SPOKES").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000)
}
const EVENTS: usize = 20;

/// Raises the soft limit on open files to `needed`, or says why it cannot.
fn raise_open_file_limit(needed: u64) {
    let (soft, hard) = rlimit::Resource::NOFILE.get().expect("getrlimit");
    if soft >= needed {
        return;
    }
    rlimit::Resource::NOFILE.set(needed, hard.max(needed)).unwrap_or_else(|e| {
        panic!("this test needs {needed} open files (soft limit {soft}, hard {hard}); raise them with `ulimit -n {needed}`: {e}")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_holds_10_000_spokes_while_dispatching_and_every_spoke_receives_every_event() {
    let count = spokes();
    raise_open_file_limit(count as u64 + 1_000);
    let hub = TestHub::start(HubConfig::default()).await;
    let rss_before = rss_kib();

    let mut clients = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "load_spokes", "--ignored", "--nocapture", "--test-threads=1"])
        .env("WSHUB_LOAD_URL", hub.url())
        .env("WSHUB_LOAD_SPOKES", count.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the spokes' process starts");
    let mut lines = BufReader::new(clients.stdout.take().unwrap()).lines();
    let started = Instant::now();
    report(&mut lines, "load: connected").await;
    hub.wait_until(|h| h.spoke_count() == count).await;
    let connected_in = started.elapsed();
    let per_spoke = rss_kib().saturating_sub(rss_before) as f64 / count as f64;

    // Dispatch while all of them are held.
    let started = Instant::now();
    for i in 0..EVENTS {
        let queued = hub.hub.dispatch(Event::new("load", i.to_string(), serde_json::json!({"n": i}))).unwrap();
        assert_eq!(queued, count);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered: usize = report(&mut lines, "load: delivered").await.parse().unwrap();
    let delivered_in = started.elapsed();
    assert_eq!(delivered, count * EVENTS);
    assert_eq!(hub.hub.spoke_count(), count, "every spoke is still held");
    // Counted once a batch is written, which a spoke may have read first.
    wait_for(|| hub.hub.stats().events_out == (count * EVENTS) as u64).await;
    let stats = hub.hub.stats();
    assert!(stats.closes.is_empty() && stats.lagged == 0, "{stats:?}");

    // Let the spokes go: their process ends when its stdin does.
    drop(clients.stdin.take());
    assert!(clients.wait().await.unwrap().success(), "the spokes' process passed");
    hub.wait_until(|h| h.spoke_count() == 0).await;
    println!(
        "reliability: load | {count} concurrent spokes on 2 cores (a second process of clients), connected in {:.1} s, {EVENTS} events dispatched to all | all {count} held, {delivered} of {} deliveries in {:.1} s, {per_spoke:.1} KiB per spoke on the hub (debug build) | 0",
        connected_in.as_secs_f64(),
        count * EVENTS,
        delivered_in.as_secs_f64(),
    );
}

/// The rest of the line the spokes' process prints after `what`.
async fn report(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>, what: &str) -> String {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the spokes' process said no `{what}` in time"))
            .unwrap()
            .unwrap_or_else(|| panic!("the spokes' process ended before `{what}`"));
        // libtest may have begun the line with `test load_spokes ... `.
        if let Some(at) = line.find(what) {
            return line[at + what.len()..].trim().to_owned();
        }
    }
}

/// The client side of the load test, in a process of its own: connects
/// 10,000 spokes (or `WSHUB_LOAD_SPOKES`) to `WSHUB_LOAD_URL`, says so, says how many events they
/// received once each has received `EVENTS`, and holds them until its stdin
/// closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the load test as its second process"]
async fn load_spokes() {
    let Ok(url) = std::env::var("WSHUB_LOAD_URL") else { return };
    let count = spokes();
    raise_open_file_limit(count as u64 + 1_000);
    let client_config = WebSocketConfig::default().read_buffer_size(4 * 1024).write_buffer_size(0);
    let delivered = Arc::new(AtomicUsize::new(0));
    // 200 handshakes at a time; each spoke reads on in its own task.
    let spokes: Vec<_> = futures::stream::iter(0..count)
        .map(|_| {
            let url = url.clone();
            async move {
                tokio_tungstenite::connect_async_with_config(url, Some(client_config), true).await.expect("connect").0
            }
        })
        .buffer_unordered(200)
        .map(|mut ws| {
            let delivered = delivered.clone();
            tokio::spawn(async move {
                for i in 0..EVENTS {
                    let text = loop {
                        match tokio::time::timeout(Duration::from_secs(120), ws.next()).await.expect("an event in time")
                        {
                            Some(Ok(Message::Text(t))) => break t,
                            Some(Ok(_)) => continue,
                            other => panic!("expected event {i}, got {other:?}"),
                        }
                    };
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(v["id"], i.to_string(), "every event, in order");
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
                ws
            })
        })
        .collect()
        .await;
    println!("load: connected");
    let mut held = Vec::with_capacity(count);
    for spoke in spokes {
        held.push(spoke.await.expect("a spoke received every event"));
    }
    println!("load: delivered {}", delivered.load(Ordering::Relaxed));
    // Hold them until the hub's side has looked (it closes our stdin).
    let mut rest = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut rest).await;
    drop(held);
}
