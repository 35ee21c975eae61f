#![cfg(feature = "axum")]
//! `wshub::axum` nested in a user's own axum app: the upgrade hands the socket
//! to the hub, which relays and dispatches through it like any spoke.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use futures::StreamExt;
use serde_json::json;
use support::{WAIT, envelope, recv, send, upgrade_offering_compression, wait_for};
use tokio::net::TcpListener;
use wshub::axum::{Endpoint, UpgradeFailure};
use wshub::{Event, Hub, HubConfig};

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    addr
}

#[tokio::test]
async fn a_nested_router_hands_upgraded_sockets_to_the_hub() {
    let hub = Hub::new(HubConfig::default().relay(true));
    let app = Router::new().route("/", get(|| async { "home" })).nest("/ws", wshub::axum::router(hub.clone()));
    let addr = serve(app).await;

    let (mut a, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.expect("upgrade");
    let (mut b, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.expect("upgrade");
    wait_for(|| hub.spoke_count() == 2).await;
    let spokes = hub.spokes();
    assert!(spokes.iter().all(|s| s.remote_addr().is_some_and(|r| r.ip() == addr.ip())), "{spokes:?}");

    // The hub dispatches to them, and relays between them.
    hub.dispatch(Event::new("hello", "", json!(1))).expect("dispatch");
    assert_eq!(recv(&mut a).await["type"], "hello");
    assert_eq!(recv(&mut b).await["type"], "hello");
    let mut from_spokes = hub.subscribe("*").expect("pattern");
    send(&mut a, envelope("chat", "1", json!("hi"))).await;
    assert_eq!(recv(&mut b).await["payload"], "hi");
    let seen = tokio::time::timeout(WAIT, from_spokes.next()).await.expect("in time").expect("open").expect("no lag");
    assert_eq!(seen.topic(), "chat:1");
    assert_eq!(hub.stats().upgrade_failures, 0);
}

#[tokio::test]
async fn an_endpoint_refuses_by_policy_and_reports_every_failure() {
    let hub = Hub::new(HubConfig::default());
    let failures = Arc::new(Mutex::new(Vec::new()));
    let seen = failures.clone();
    let endpoint = Endpoint::new(hub.clone())
        .token("t")
        .allowed_origin("https://good.test")
        .max_connections(1)
        .on_failed_upgrade(move |f| seen.lock().expect("lock").push(f.clone()));
    let app = Router::new().route("/socket", endpoint.into_method_router());
    let addr = serve(app).await;
    let url = format!("ws://{addr}/socket?token=t");

    let status = |result: Result<_, tokio_tungstenite::tungstenite::Error>| match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Ok(_) => 101,
        Err(other) => panic!("{other}"),
    };
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut evil = url.as_str().into_client_request().expect("request");
    evil.headers_mut().insert("origin", "https://evil.test".parse().expect("value"));
    assert_eq!(status(tokio_tungstenite::connect_async(evil).await.map(|_| ())), 403);
    let no_token = format!("ws://{addr}/socket");
    assert_eq!(status(tokio_tungstenite::connect_async(no_token).await.map(|_| ())), 401);
    let (_first, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("the first fits");
    assert_eq!(status(tokio_tungstenite::connect_async(url.as_str()).await.map(|_| ())), 503);

    let failures = failures.lock().expect("lock").clone();
    assert_eq!(failures, [UpgradeFailure::Origin, UpgradeFailure::Token, UpgradeFailure::ConnectionLimit]);
    // Policy refusals are not upgrade failures.
    assert_eq!(hub.stats().upgrade_failures, 0);
}

#[tokio::test]
async fn a_request_that_is_not_an_upgrade_is_counted_as_a_failed_upgrade() {
    let hub = Hub::new(HubConfig::default());
    let addr = serve(Router::new().nest("/ws", wshub::axum::router(hub.clone()))).await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("write");
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
    assert_eq!(hub.stats().upgrade_failures, 1);
}

#[tokio::test]
async fn the_endpoint_does_not_negotiate_compression() {
    let hub = Hub::new(HubConfig::default());
    let addr = serve(Router::new().nest("/ws", wshub::axum::router(hub.clone()))).await;
    let response = upgrade_offering_compression(&format!("ws://{addr}/ws")).await;
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers().get("sec-websocket-extensions"), None);
}
