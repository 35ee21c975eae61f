//! `Hub::shutdown`: what was queued is delivered, then 1001.

mod support;

use std::time::Duration;

use futures::StreamExt;
use support::*;
use tokio::net::TcpListener;
use wshub::{DisconnectReason, Event, Hub, HubConfig, SendError};

#[tokio::test]
async fn shutdown_delivers_what_was_queued_then_closes_with_1001() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut a = hub.connect().await;
    let mut b = hub.connect().await;
    // One on the broadcast channel, one on a queue of its own (`hub.subscribe`).
    let mut c = hub.connect().await;
    hub_subscribe(&mut c, "queued:*").await;
    for i in 0..1000 {
        hub.hub.dispatch(Event::new("queued", i.to_string(), i)).unwrap();
    }
    hub.hub.spokes()[0].dispatch(Event::new("direct", "", ())).unwrap();

    let (_, ()) = tokio::join!(hub.hub.shutdown(), async {
        for (n, ws) in [&mut a, &mut b, &mut c].into_iter().enumerate() {
            let (mut seen, mut direct) = (0, 0);
            loop {
                let message = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
                match message {
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                        if t.contains(r#""type":"direct""#) {
                            direct += 1;
                        } else if t.contains("queued") {
                            seen += 1;
                        }
                    }
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => {
                        assert_eq!(u16::from(f.code), 1001);
                        break;
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(seen, 1000, "spoke {n}: every queued event came before the close");
            assert_eq!(direct, usize::from(n == 0), "spoke {n}: the answer to the first spoke alone, before the close");
        }
    });
    assert_eq!(hub.hub.spoke_count(), 0);
    assert_eq!(hub.hub.stats().closes.get(&1001), Some(&3));
}

#[tokio::test]
async fn shutdown_ends_subscriptions_and_serve_and_refuses_dispatches() {
    let hub = TestHub::start(HubConfig::default()).await;
    let mut sub = hub.hub.subscribe("*").unwrap();
    let disconnected = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = disconnected.clone();
    hub.hub.on_disconnection(move |_, r| sink.lock().unwrap().push(r.clone()));
    let mut ws = hub.connect().await;

    hub.hub.shutdown().await;

    assert_eq!(recv_close(&mut ws).await.0, 1001);
    assert!(tokio::time::timeout(WAIT, sub.next()).await.unwrap().is_none());
    tokio::time::timeout(WAIT, hub.serving).await.unwrap().unwrap().unwrap();
    assert!(matches!(hub.hub.dispatch(Event::new("late", "", ())), Err(SendError::Closed(_))));
    assert_eq!(*disconnected.lock().unwrap(), [DisconnectReason::Shutdown]);
    assert!(hub.hub.subscribe("*").unwrap().next().await.is_none(), "a subscription after shutdown is already over");
}

#[tokio::test]
async fn shutdown_does_not_wait_past_its_deadline_for_a_spoke_that_does_not_read() {
    let config =
        HubConfig::default().shutdown_timeout(Duration::from_millis(300)).close_timeout(Duration::from_millis(200));
    let hub = TestHub::start(config).await;
    let _stalled = hub.connect().await;
    let big = serde_json::json!("x".repeat(64 * 1024));
    for i in 0..500 {
        hub.hub.dispatch(Event::new("fill", i.to_string(), big.clone())).unwrap();
    }
    let started = std::time::Instant::now();
    hub.hub.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(hub.hub.spoke_count(), 0);
}

#[tokio::test]
async fn serve_with_graceful_shutdown_shuts_the_hub_down_when_the_signal_fires() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hub = Hub::new(HubConfig::default());
    let (fire, signal) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(
        hub.clone()
            .serve(listener)
            .with_graceful_shutdown(async {
                let _ = signal.await;
            })
            .into_future(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await.unwrap();
    wait_for(|| hub.spoke_count() == 1).await;
    assert_eq!(hub.dispatch(Event::new("before", "", ())).unwrap(), 1);

    fire.send(()).unwrap();
    tokio::time::timeout(WAIT, serving).await.unwrap().unwrap().unwrap();
    assert!(hub.is_shutting_down());
    let mut before = false;
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => before |= t.contains("before"),
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => {
                assert_eq!(u16::from(f.code), 1001);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    }
    assert!(before, "what was dispatched before the signal arrived before the close");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed");
}
