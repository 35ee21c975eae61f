//! Connections coming and going, answering one spoke, heartbeats.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use support::*;
use tokio_tungstenite::tungstenite::Message;
use wshub::{DisconnectReason, Event, HubConfig, SpokeId};

type Log = Arc<Mutex<Vec<(SpokeId, DisconnectReason)>>>;

fn record_disconnections(hub: &wshub::Hub) -> Log {
    let log: Log = Arc::default();
    let sink = log.clone();
    hub.on_disconnection(move |spoke, reason| sink.lock().unwrap().push((spoke.id(), reason.clone())));
    log
}

#[tokio::test]
async fn connections_are_tracked_and_the_hooks_fire_once_each() {
    let hub = TestHub::start(HubConfig::default()).await;
    let connected = Arc::new(Mutex::new(Vec::new()));
    let sink = connected.clone();
    hub.hub.on_connection(move |spoke| sink.lock().unwrap().push(spoke.id()));
    let gone = record_disconnections(&hub.hub);

    let mut a = hub.connect().await;
    let _b = hub.connect().await;
    assert_eq!(hub.hub.spoke_count(), 2);
    let ids: Vec<_> = hub.hub.spokes().iter().map(|s| s.id()).collect();
    assert_eq!(*connected.lock().unwrap(), ids);
    assert!(hub.hub.spokes()[0].remote_addr().is_some_and(|a| a.ip().is_loopback()));

    a.close(None).await.unwrap();
    hub.wait_until(|h| h.spoke_count() == 1).await;
    assert_eq!(hub.hub.spokes().iter().map(|s| s.id()).collect::<Vec<_>>(), [ids[1]]);
    // Give a second hook call, if there were one, time to happen.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let gone = gone.lock().unwrap().clone();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].0, ids[0]);
    assert!(matches!(gone[0].1, DisconnectReason::Closed { code: 1005, .. }), "{:?}", gone[0].1);
}

#[tokio::test]
async fn a_spoke_that_drops_its_tcp_connection_is_removed() {
    let hub = TestHub::start(HubConfig::default()).await;
    let gone = record_disconnections(&hub.hub);
    let ws = hub.connect().await;
    let stream = ws.into_inner();
    // RST instead of FIN: the abrupt kind of drop.
    if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = &stream {
        tcp.set_zero_linger().unwrap();
    }
    drop(stream);

    hub.wait_until(|h| h.spoke_count() == 0).await;
    wait_for(|| gone.lock().unwrap().len() == 1).await;
    assert_eq!(gone.lock().unwrap()[0].1, DisconnectReason::ConnectionLost);
}

#[tokio::test]
async fn a_spoke_handle_answers_one_spoke_alone() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut asker = hub.connect().await;
    let mut other = hub.connect().await;
    let mut requests = hub.hub.subscribe("request:*").unwrap();

    send(&mut asker, envelope("request", "r-1", json!({"q": 2}))).await;
    let request = next_item(&mut requests).await.unwrap();
    let spoke = hub.hub.spoke(request.origin().unwrap()).unwrap();
    spoke.dispatch(Event::new("response", request.id(), json!({"a": 4}))).unwrap();

    assert_eq!(recv(&mut asker).await, json!({"type": "response", "id": "r-1", "payload": {"a": 4}}));
    expect_silence(&mut other, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn an_answer_reaches_a_spoke_whatever_its_subscriptions() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut ws = hub.connect().await;
    hub_subscribe(&mut ws, "nothing:here").await;
    hub.hub.spokes()[0].dispatch(Event::new("answer", "1", ())).unwrap();
    assert_eq!(recv(&mut ws).await["type"], "answer");
}

#[tokio::test]
async fn spoke_close_sends_the_given_code() {
    let hub = TestHub::start(HubConfig::default()).await;
    let gone = record_disconnections(&hub.hub);
    let mut ws = hub.connect().await;
    hub.hub.spokes()[0].close(4000, "bye");
    assert_eq!(recv_close(&mut ws).await, (4000, "bye".into()));
    wait_for(|| gone.lock().unwrap().len() == 1).await;
    assert_eq!(gone.lock().unwrap()[0].1, DisconnectReason::ClosedByHub { code: 4000, reason: "bye".into() });
    hub.wait_until(|h| h.spoke_count() == 0).await;
}

#[tokio::test]
async fn sending_to_a_spoke_that_left_hands_the_event_back() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut ws = hub.connect().await;
    let spoke = hub.hub.spokes()[0].clone();
    ws.close(None).await.unwrap();
    hub.wait_until(|h| h.spoke_count() == 0).await;
    assert!(!spoke.is_connected());
    let err = spoke.dispatch(Event::new("late", "", ())).unwrap_err();
    assert!(err.is_closed());
    assert_eq!(err.into_event().event_type(), "late");
}

#[tokio::test]
async fn hub_and_spokes_talk_both_ways_at_once() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut from_spokes = hub.hub.subscribe("up:*").unwrap();
    let mut spokes = Vec::new();
    for _ in 0..4 {
        spokes.push(hub.connect().await);
    }
    const N: usize = 200;
    // Every spoke sends N events while reading the hub's N; the hub dispatches
    // N while reading the spokes' 4·N.
    let dispatcher = {
        let hub = hub.hub.clone();
        tokio::spawn(async move {
            for i in 0..N {
                hub.dispatch(Event::new("down", "", i)).unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let talkers: Vec<_> = spokes
        .into_iter()
        .enumerate()
        .map(|(k, ws)| {
            tokio::spawn(async move {
                let (mut tx, mut rx) = ws.split();
                let sender = tokio::spawn(async move {
                    for i in 0..N {
                        tx.send(Message::text(envelope("up", &k.to_string(), json!(i)))).await.unwrap();
                    }
                    tx
                });
                let mut got = 0;
                while got < N {
                    match tokio::time::timeout(WAIT, rx.next()).await.unwrap() {
                        Some(Ok(Message::Text(t))) => {
                            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                            assert_eq!(v["payload"], got);
                            got += 1;
                        }
                        Some(Ok(_)) => {}
                        other => panic!("{other:?}"),
                    }
                }
                let _ = sender.await.unwrap();
            })
        })
        .collect();
    let mut per_spoke = [0usize; 4];
    for _ in 0..4 * N {
        let event = tokio::time::timeout(WAIT, from_spokes.next()).await.unwrap().unwrap().unwrap();
        let k: usize = event.id().parse().unwrap();
        assert_eq!(event.payload(), &json!(per_spoke[k]), "each spoke's events arrive in order");
        per_spoke[k] += 1;
    }
    dispatcher.await.unwrap();
    for t in talkers {
        t.await.unwrap();
    }
    assert_eq!(per_spoke, [N; 4]);
}

#[tokio::test]
async fn the_hub_pings_and_closes_a_spoke_that_shows_no_sign_of_life() {
    let config = HubConfig::default().heartbeat(Duration::from_millis(50), Duration::from_millis(300));
    let hub = TestHub::start(config).await;
    let gone = record_disconnections(&hub.hub);
    let mut alive = hub.connect().await;
    let silent = hub.connect().await;

    // A spoke that reads answers pings (tungstenite replies with pongs).
    let pings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = pings.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = alive.next().await {
            if m.is_ping() {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });

    // The silent one never reads, so never answers: it is gone, with 1008.
    wait_for(|| gone.lock().unwrap().iter().any(|(_, r)| *r == DisconnectReason::HeartbeatTimeout)).await;
    // Well past the timeout, the live spoke is still there and has been pinged all along.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(gone.lock().unwrap().len(), 1, "the live spoke stays");
    assert_eq!(hub.hub.spoke_count(), 1);
    assert!(pings.load(std::sync::atomic::Ordering::Relaxed) >= 5);
    assert_eq!(hub.hub.stats().closes.get(&1008), Some(&1));
    drop(silent);
    reader.abort();
}

#[tokio::test]
async fn the_hub_answers_a_spokes_ping() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut ws = hub.connect().await;
    ws.send(Message::Ping(b"are you there".to_vec().into())).await.unwrap();
    let pong = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Pong(data))) = ws.next().await {
                return data;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(&pong[..], b"are you there");
}

#[tokio::test]
async fn the_hub_does_not_negotiate_compression() {
    let hub = TestHub::start(HubConfig::default()).await;
    let response = upgrade_offering_compression(&hub.url()).await;
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers().get("sec-websocket-extensions"), None);
}
