//! Spokes that fail in the ways networks fail: a storm of connections
//! coming and going by every kind of exit, a peer that goes silent without
//! closing (half-open), a spoke that stops reading while events flow. After
//! each, the hub's connection count, its tasks and the process's memory are
//! back where they were, and the well-behaved spokes lost nothing.
//!
//! Each test prints a `reliability:` line that `scripts/reliability.sh`
//! gathers into `docs/reliability.md`.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::json;
use support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use wshub::{DisconnectReason, Event, HubConfig};

/// Tasks alive on this test's runtime: the hub's, the test's own, none else.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

fn count_disconnections(hub: &wshub::Hub) -> Arc<Mutex<Vec<DisconnectReason>>> {
    let gone: Arc<Mutex<Vec<DisconnectReason>>> = Arc::default();
    let sink = gone.clone();
    hub.on_disconnection(move |_, reason| sink.lock().unwrap().push(reason.clone()));
    gone
}

/// One spoke's life in the storm, ended in one of five ways.
async fn one_cycle(hub: &TestHub, i: usize) {
    match i % 5 {
        // A clean close.
        0 => {
            let (mut ws, _) = tokio_tungstenite::connect_async(hub.url()).await.expect("connect");
            ws.close(None).await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
        }
        // A TCP reset.
        1 => {
            let (ws, _) = tokio_tungstenite::connect_async(hub.url()).await.expect("connect");
            if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
                tcp.set_zero_linger().unwrap();
            }
            drop(ws);
        }
        // A FIN without a close frame.
        2 => drop(tokio_tungstenite::connect_async(hub.url()).await.expect("connect")),
        // An event, then gone.
        3 => {
            let (mut ws, _) = tokio_tungstenite::connect_async(hub.url()).await.expect("connect");
            ws.send(tokio_tungstenite::tungstenite::Message::text(envelope("storm", &i.to_string(), json!(i))))
                .await
                .unwrap();
            drop(ws);
        }
        // A TCP connection that never upgrades, closed at once.
        _ => drop(TcpStream::connect(hub.addr).await.expect("tcp connect")),
    }
}

async fn storm(hub: &TestHub, cycles: std::ops::Range<usize>, concurrency: usize) {
    futures::stream::iter(cycles).for_each_concurrent(concurrency, |i| one_cycle(hub, i)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_connect_disconnect_storm_the_hub_is_back_to_its_baseline() {
    const CYCLES: usize = 2_000;
    let hub = TestHub::start(HubConfig::default()).await;
    let gone = count_disconnections(&hub.hub);
    let mut bystander = hub.connect().await;
    // Warm the allocator and the runtime up first.
    storm(&hub, 0..200, 32).await;
    hub.wait_until(|h| h.spoke_count() == 1).await;
    wait_for(|| gone.lock().unwrap().len() == 160).await;
    let (tasks, rss, before) = (alive_tasks(), rss_kib(), hub.hub.stats());

    let started = Instant::now();
    storm(&hub, 200..200 + CYCLES, 32).await;
    hub.wait_until(|h| h.spoke_count() == 1).await;
    let spokes = CYCLES / 5 * 4; // one cycle in five never upgrades
    wait_for(|| gone.lock().unwrap().len() == 160 + spokes).await;
    wait_for(|| alive_tasks() <= tasks).await;
    let took = started.elapsed();

    let after = hub.hub.stats();
    assert_eq!(after.connections, 1);
    assert_eq!(after.connections_total - before.connections_total, spokes as u64);
    assert_eq!(hub.hub.spokes().len(), 1);
    assert!(after.closes.is_empty(), "no spoke broke a rule: {:?}", after.closes);
    assert!(!gone.lock().unwrap().iter().any(|r| matches!(r, DisconnectReason::Internal(_))), "no internal errors");
    let grown = rss_kib().saturating_sub(rss);
    assert!(grown < 8 * 1024, "the process grew by {grown} KiB");
    // And the hub still serves.
    hub.hub.dispatch(Event::new("after", "", ())).unwrap();
    assert_eq!(recv(&mut bystander).await["type"], "after");
    println!(
        "reliability: connect/disconnect storm | {CYCLES} cycles ({spokes} spokes; clean close, TCP reset, FIN, event-then-gone, no upgrade), 32 at a time, {:.1} s | spoke count back to 1 (the bystander), tasks back to {tasks}, RSS {grown:+} KiB, {} disconnection hooks for {spokes} spokes | 0",
        took.as_secs_f64(),
        gone.lock().unwrap().len() - 160,
    );
}

/// A TCP proxy that forwards until told to go silent, then stops reading and
/// writing without closing either side: a half-open peer, as when a network
/// drops the other end without a FIN or a reset. It lets go of both sockets
/// when the sender of `silent` is dropped.
async fn blackholing_proxy(target: std::net::SocketAddr, silent: watch::Receiver<bool>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.unwrap();
        let mut upstream = TcpStream::connect(target).await.unwrap();
        let mut silent = silent;
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
            _ = silent.wait_for(|s| *s) => {}
        }
        // Hold both sockets open, answering nothing, until the test lets go.
        while silent.changed().await.is_ok() {}
        drop((client, upstream));
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_peer_that_stops_answering_pings_is_closed_within_the_heartbeat_timeout() {
    let (interval, timeout) = (Duration::from_millis(100), Duration::from_millis(500));
    let hub = TestHub::start(HubConfig::default().heartbeat(interval, timeout)).await;
    let gone = count_disconnections(&hub.hub);
    let tasks = alive_tasks();
    let rss = rss_kib();
    let mut bystander = hub.connect().await;
    let (go_silent, silent) = watch::channel(false);
    let proxy = blackholing_proxy(hub.addr, silent).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{proxy}/")).await.unwrap();
    hub.wait_until(|h| h.spoke_count() == 2).await;
    // Alive: it answers pings through the proxy well past the timeout.
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
    // The bystander answers pings too (tungstenite does, as it reads).
    let ticks = tokio::spawn(async move {
        let mut seen = 0;
        while let Some(Ok(message)) = bystander.next().await {
            if message.is_text() {
                seen += 1;
                if seen == 2 {
                    break;
                }
            }
        }
        bystander
    });
    hub.hub.dispatch(Event::new("tick", "1", ())).unwrap();
    tokio::time::sleep(timeout * 2).await;
    assert_eq!(hub.hub.spoke_count(), 2, "a peer that answers pings stays");

    let silenced = Instant::now();
    go_silent.send_replace(true);
    // Detected: the hub sends its close frame (and counts it) ...
    hub.wait_until(|h| h.stats().closes.get(&1008) == Some(&1)).await;
    let detected = silenced.elapsed();
    // ... then waits one close timeout for an answer that never comes, and drops it.
    wait_for(|| !gone.lock().unwrap().is_empty()).await;
    let removed = silenced.elapsed();
    assert_eq!(*gone.lock().unwrap(), [DisconnectReason::HeartbeatTimeout]);
    // Silent since its last pong, at most one interval before the proxy went quiet.
    assert!(detected <= timeout + interval * 2, "detected after {detected:?}");
    let close_timeout = hub.hub.config().close_timeout;
    assert!(removed <= timeout + interval * 2 + close_timeout, "removed after {removed:?}");
    hub.wait_until(|h| h.spoke_count() == 1).await;
    // The bystander, which answered its pings all along, is still served.
    hub.hub.dispatch(Event::new("tick", "2", ())).unwrap();
    let bystander = tokio::time::timeout(WAIT, ticks).await.expect("the bystander hears both ticks").unwrap();
    drop(bystander);
    hub.wait_until(|h| h.spoke_count() == 0).await;
    // Let the proxy go, and everything is back where it was.
    drop(go_silent);
    reader.abort();
    wait_for(|| alive_tasks() <= tasks).await;
    let grown = rss_kib().saturating_sub(rss);
    assert!(grown < 4 * 1024, "the process grew by {grown} KiB");
    println!(
        "reliability: half-open peer (a proxy that stops forwarding, no FIN, no reset) | 1 peer beside 1 bystander, heartbeat {} ms / timeout {} ms | closed with 1008 after {} ms of silence, removed after {} ms (one close timeout later); bystander served after it; tasks back to {}, RSS {grown:+} KiB | 0 of 2 (the bystander's)",
        interval.as_millis(),
        timeout.as_millis(),
        detected.as_millis(),
        removed.as_millis(),
        tasks,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoke_that_stops_reading_is_closed_and_everything_it_held_is_released() {
    const EVENTS: usize = 3_000;
    let config = HubConfig::default().broadcast_capacity(64).write_timeout(Duration::from_millis(500));
    let hub = TestHub::start(config).await;
    let gone = count_disconnections(&hub.hub);
    let tasks = alive_tasks();
    let rss = rss_kib();
    let stalled = hub.connect().await; // never read from
    let readers: Vec<Ws> = futures::future::join_all((0..4).map(|_| hub.connect())).await;
    let progress: Arc<Vec<AtomicUsize>> = Arc::new((0..4).map(|_| AtomicUsize::new(0)).collect());
    let readers: Vec<_> = readers
        .into_iter()
        .enumerate()
        .map(|(k, mut ws)| {
            let progress = progress.clone();
            tokio::spawn(async move {
                for i in 0..EVENTS {
                    let v = recv(&mut ws).await;
                    assert_eq!(v["id"], i.to_string(), "in order, none lost");
                    progress[k].store(i + 1, Ordering::Relaxed);
                }
                ws
            })
        })
        .collect();
    let payload = json!("p".repeat(4096));
    for i in 0..EVENTS {
        // Paced to the slowest reader, as a real publisher's rate would be
        // (and failing, not waiting for ever, if a reader stops).
        wait_for(|| progress.iter().all(|p| p.load(Ordering::Relaxed) + 32 >= i)).await;
        hub.hub.dispatch(Event::new("flow", i.to_string(), payload.clone())).unwrap();
    }
    let mut received = 0;
    for reader in readers {
        drop(tokio::time::timeout(Duration::from_secs(60), reader).await.expect("readers finish").unwrap());
        received += EVENTS;
    }
    wait_for(|| gone.lock().unwrap().contains(&DisconnectReason::TooSlow)).await;
    hub.wait_until(|h| h.spoke_count() == 0).await;
    wait_for(|| alive_tasks() <= tasks).await;
    assert_eq!(hub.hub.stats().closes.get(&1013), Some(&1));
    let grown = rss_kib().saturating_sub(rss);
    assert!(grown < 16 * 1024, "the process grew by {grown} KiB");
    drop(stalled);
    println!(
        "reliability: a spoke that stops reading while events flow | {EVENTS} events of 4 KiB to 4 readers and 1 stalled spoke | stalled spoke closed with 1013, tasks back to {tasks}, RSS {grown:+} KiB | 0 of {received}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoke_whose_connection_is_reset_is_removed_as_lost_and_leaves_nothing_behind() {
    let hub = TestHub::start(HubConfig::default()).await;
    let gone = count_disconnections(&hub.hub);
    let tasks = alive_tasks();
    let mut bystander = hub.connect().await;
    let ws = hub.connect().await;
    hub.wait_until(|h| h.spoke_count() == 2).await;
    if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        // Closing with a zero linger sends a reset, not a FIN.
        tcp.set_zero_linger().unwrap();
    }
    drop(ws);
    wait_for(|| !gone.lock().unwrap().is_empty()).await;
    assert_eq!(*gone.lock().unwrap(), [DisconnectReason::ConnectionLost]);
    hub.wait_until(|h| h.spoke_count() == 1).await;
    assert!(hub.hub.stats().closes.is_empty(), "no close frame for a connection already gone");
    hub.hub.dispatch(Event::new("after", "", ())).unwrap();
    assert_eq!(recv(&mut bystander).await["type"], "after");
    drop(bystander);
    hub.wait_until(|h| h.spoke_count() == 0).await;
    wait_for(|| alive_tasks() <= tasks).await;
}
