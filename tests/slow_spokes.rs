//! A spoke that stops reading costs bounded memory and never slows or
//! starves the others.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use support::*;
use tokio_tungstenite::tungstenite::Message;
use wshub::{DisconnectReason, Event, HubConfig, SlowSpokePolicy};

const EVENTS: usize = 20_000;
const PAYLOAD: usize = 1024;

/// Reads `n` events in order, checking each one's sequence number and
/// publishing its progress.
async fn read_all(mut ws: Ws, n: usize, progress: Arc<AtomicUsize>) {
    for i in 0..n {
        let v = recv(&mut ws).await;
        assert_eq!(v["id"], i.to_string(), "events arrive complete and in order");
        progress.store(i + 1, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoke_that_stops_reading_does_not_slow_or_starve_the_others() {
    // The stalled spoke's task blocks on its full socket; the write timeout is
    // what frees it. Long enough that a busy machine does not take a slow
    // reader for a stalled one.
    let config = HubConfig::default().broadcast_capacity(1024).write_timeout(Duration::from_secs(3));
    let hub = TestHub::start(config).await;
    let gone = Arc::new(Mutex::new(Vec::new()));
    let sink = gone.clone();
    hub.hub.on_disconnection(move |_, reason| sink.lock().unwrap().push(reason.clone()));

    let stalled = hub.connect().await; // never read from
    let readers: Vec<_> = futures::future::join_all((0..3).map(|_| hub.connect())).await;
    let progress: Vec<_> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let readers: Vec<_> =
        readers.into_iter().zip(&progress).map(|(ws, p)| tokio::spawn(read_all(ws, EVENTS, p.clone()))).collect();
    let rss_before = rss_kib();

    let payload = json!("x".repeat(PAYLOAD));
    let started = std::time::Instant::now();
    for i in 0..EVENTS {
        // Keep within the broadcast capacity of the slowest *reading* spoke
        // (this test's readers are slow, debug-built JSON parsers); the
        // stalled spoke falls behind all the same.
        while progress.iter().any(|p| p.load(Ordering::Relaxed) + 512 < i) {
            assert!(readers.iter().all(|r| !r.is_finished()), "a reader stopped before the end");
            assert!(started.elapsed() < Duration::from_secs(120), "the readers stopped making progress");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        hub.hub.dispatch(Event::new("load", i.to_string(), payload.clone())).unwrap();
    }
    for reader in readers {
        tokio::time::timeout(Duration::from_secs(60), reader).await.expect("readers finish").unwrap();
    }

    // About 20 MiB went to each reader; the stalled spoke was closed, not buffered for.
    wait_for(|| gone.lock().unwrap().contains(&DisconnectReason::TooSlow)).await;
    let grown_kib = rss_kib().saturating_sub(rss_before);
    assert!(grown_kib < 16 * 1024, "the hub's memory grew by {grown_kib} KiB");
    let stats = hub.hub.stats();
    assert_eq!(stats.closes.get(&1013), Some(&1));
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_skip_policy_a_lagging_spoke_is_told_how_many_events_it_missed() {
    // On the broadcast channel (a spoke that never subscribed), and on the
    // queue of its own that a subscribed spoke reads (`hub.subscribe`).
    for pattern in [None, Some("big:*")] {
        let config = HubConfig::default()
            .broadcast_capacity(16)
            .slow_spoke_policy(SlowSpokePolicy::Skip)
            .write_timeout(Duration::from_secs(30));
        let hub = TestHub::start(config).await;
        let mut slow = hub.connect().await;
        if let Some(pattern) = pattern {
            hub_subscribe(&mut slow, pattern).await;
        }

        // Enough to fill the kernel's socket buffers, so that the spoke's task
        // blocks and the channel or queue runs past it.
        let total = 4_000;
        flood(&hub, total).await;
        // Now read everything (the spoke's task, blocked on a full socket, finds
        // out it lagged once it can write again): events plus the `hub.lagged` counts add up to all.
        let (received, missed) = read_with_lags(&mut slow, total).await;
        assert!(missed > 0, "{pattern:?}: the 16 places overflowed");
        assert_eq!(received + missed, total, "{pattern:?}");
        assert_eq!(hub.hub.stats().dropped, missed, "{pattern:?}");
        assert_eq!(hub.hub.spoke_count(), 1, "{pattern:?}: the lagging spoke is not disconnected under Skip");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoke_whose_own_queue_overflows_is_closed_with_1013() {
    let config = HubConfig::default().spoke_queue_capacity(4).write_timeout(Duration::from_secs(30));
    let hub = TestHub::start(config).await;
    let mut ws = hub.connect().await;
    let spoke = hub.hub.spokes()[0].clone();
    let big = json!("z".repeat(64 * 1024));
    let mut refused = None;
    for i in 0..10_000 {
        if let Err(e) = spoke.dispatch(Event::new("direct", i.to_string(), big.clone())) {
            refused = Some(e);
            break;
        }
        tokio::task::yield_now().await;
    }
    let refused = refused.expect("the queue filled up");
    assert!(matches!(refused, wshub::SendError::Full(_)));
    // The spoke is closed with 1013 once it reads again.
    let code = loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(code, 1013);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_cut_off_by_the_write_timeout_leaves_whole_frames_then_the_close() {
    // The stalled spoke's socket fills in the middle of an event's frame; the
    // write timeout cuts that write off. What the spoke then reads must still
    // be whole events, in order, and then the 1013 close, not a broken stream.
    let config = HubConfig::default().write_timeout(Duration::from_millis(300)).close_timeout(Duration::from_secs(20));
    let hub = TestHub::start(config).await;
    let gone = Arc::new(Mutex::new(Vec::new()));
    let sink = gone.clone();
    hub.hub.on_disconnection(move |_, reason| sink.lock().unwrap().push(reason.clone()));
    let mut ws = hub.connect().await;

    // Far more than loopback's socket buffers hold.
    let payload = json!("w".repeat(64 * 1024 - 7));
    for i in 0..600 {
        hub.hub.dispatch(Event::new("big", i.to_string(), payload.clone())).unwrap();
    }
    // The spoke does not read until its write has been cut off: the hub is then
    // waiting, within the close timeout, to write the rest and the close frame.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut next = 0;
    let code = loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("the stream goes on") {
            Some(Ok(Message::Text(text))) => {
                let v: serde_json::Value = serde_json::from_str(&text).expect("a whole envelope");
                assert_eq!(v["id"], next.to_string(), "events arrive whole and in order");
                next += 1;
            }
            Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
            other => panic!("after {next} events: {other:?}"),
        }
    };
    assert_eq!(code, 1013);
    assert!(next < 600, "the spoke was cut off, after {next} events");
    drop(ws);
    wait_for(|| gone.lock().unwrap().contains(&DisconnectReason::TooSlow)).await;
}
