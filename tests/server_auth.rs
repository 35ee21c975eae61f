#![cfg(feature = "server")]
//! Auth and limits at the upgrade, as the wire protocol says: origin (403),
//! then token (401), then the connection limit (503); and every route
//! answers a wrong method or path with the right status.

#[path = "support/server.rs"]
mod server;
mod support;

use serde_json::json;
use server::{NodeSpoke, Server};

#[tokio::test]
async fn without_the_token_the_upgrade_gets_401() {
    let server = Server::start(&["--token", "s3cret"]).await;
    assert_eq!(server.connect_with("", &[]).await.err(), Some(401));
    assert_eq!(server.connect_with("?token=wrong", &[]).await.err(), Some(401));
    assert_eq!(server.connect_with("", &[("Authorization", "Bearer s3cre")]).await.err(), Some(401));
    assert_eq!(server.connect_with("", &[("Authorization", "Basic s3cret")]).await.err(), Some(401));
    assert_eq!(NodeSpoke::connect_with(&server.ws_url(), json!({})).await.err(), Some(401));
    assert_eq!(server.metric(r#"wshub_rejections_total{reason="token"}"#).await, 5.0);
    assert_eq!(server.metric("wshub_connections_accepted_total").await, 0.0);
}

#[tokio::test]
async fn the_token_is_taken_from_the_header_or_the_query() {
    let server = Server::start_with_env(&[], &[("WSHUB_TOKEN", "s3cret")]).await;
    assert!(server.connect_with("", &[("Authorization", "Bearer s3cret")]).await.is_ok());
    assert!(server.connect_with("?token=s3cret", &[]).await.is_ok());
    let node = NodeSpoke::connect_with(&server.ws_url(), json!({ "Authorization": "Bearer s3cret" })).await;
    assert!(node.is_ok());
    let node = NodeSpoke::connect_with(&format!("{}?token=s3cret", server.ws_url()), json!({})).await;
    assert!(node.is_ok());
}

#[tokio::test]
async fn an_origin_outside_the_allow_list_gets_403() {
    let server =
        Server::start(&["--allowed-origin", "https://good.test", "--allowed-origin", "http://127.0.0.1:9"]).await;
    assert_eq!(server.connect_with("", &[("Origin", "https://evil.test")]).await.err(), Some(403));
    assert_eq!(server.connect_with("", &[("Origin", "https://good.test.evil.test")]).await.err(), Some(403));
    assert_eq!(server.connect_with("", &[("Origin", "http://good.test")]).await.err(), Some(403));
    let node = NodeSpoke::connect_with(&server.ws_url(), json!({ "Origin": "https://evil.test" })).await;
    assert_eq!(node.err(), Some(403));
    assert!(server.connect_with("", &[("Origin", "https://good.test")]).await.is_ok());
    assert!(server.connect_with("", &[("Origin", "http://127.0.0.1:9")]).await.is_ok());
    // No Origin: not a browser, not refused for that.
    assert!(server.connect_with("", &[]).await.is_ok());
    assert_eq!(server.metric(r#"wshub_rejections_total{reason="origin"}"#).await, 4.0);
}

#[tokio::test]
async fn the_origin_is_checked_before_the_token() {
    let server = Server::start(&["--allowed-origin", "https://good.test", "--token", "t"]).await;
    assert_eq!(server.connect_with("", &[("Origin", "https://evil.test")]).await.err(), Some(403));
    assert_eq!(server.connect_with("", &[("Origin", "https://good.test")]).await.err(), Some(401));
    assert!(server.connect_with("?token=t", &[("Origin", "https://good.test")]).await.is_ok());
}

#[tokio::test]
async fn past_the_connection_limit_the_upgrade_gets_503() {
    let server = Server::start(&["--max-connections", "2", "--token", "t"]).await;
    let first = server.connect_with("?token=t", &[]).await.expect("first");
    let _second = NodeSpoke::connect_with(&format!("{}?token=t", server.ws_url()), json!({})).await.expect("second");
    assert_eq!(server.connect_with("?token=t", &[]).await.err(), Some(503));
    let node = NodeSpoke::connect_with(&format!("{}?token=t", server.ws_url()), json!({})).await;
    assert_eq!(node.err(), Some(503));
    // The token is checked before the limit.
    assert_eq!(server.connect_with("", &[]).await.err(), Some(401));
    assert_eq!(server.metric(r#"wshub_rejections_total{reason="connection_limit"}"#).await, 2.0);

    // A place frees up when a spoke leaves.
    drop(first);
    server::until(|| async { server.metric("wshub_connections").await == 1.0 }).await;
    assert!(server.connect_with("?token=t", &[]).await.is_ok());
}

#[tokio::test]
async fn the_spoke_list_needs_the_token_but_health_and_metrics_do_not() {
    let server = Server::start(&["--token", "s3cret"]).await;
    assert_eq!(server.get("/api/spokes").await.0, 401);
    assert_eq!(server.get("/api/spokes?token=nope").await.0, 401);
    let (status, body) = server.request("GET", "/api/spokes", &[("Authorization", "Bearer s3cret")]).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).expect("JSON")["connections"], 0);
    assert_eq!(server.get("/api/spokes?token=s3cret").await.0, 200);
    assert_eq!(server.get("/healthz").await, (200, "ok\n".to_owned()));
    let (status, metrics) = server.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(!metrics.contains("s3cret"));
    // The dashboard page itself holds nothing secret: it asks for the token.
    assert_eq!(server.get("/").await.0, 200);
}

#[tokio::test]
async fn every_route_answers_a_wrong_method_or_path_with_the_right_status() {
    let server = Server::start(&[]).await;
    for (method, path, status) in [
        ("GET", "/", 200),
        ("HEAD", "/", 200),
        ("POST", "/", 405),
        ("DELETE", "/healthz", 405),
        ("POST", "/metrics", 405),
        ("PUT", "/api/spokes", 405),
        ("POST", "/ws", 405),
        ("GET", "/ws", 426),
        ("GET", "/nope", 404),
        ("GET", "/ws/extra", 404),
        ("GET", "/%ff%fe", 404),
        ("BREW", "/", 405),
    ] {
        assert_eq!(server.request(method, path, &[]).await.0, status, "{method} {path}");
    }
    let upgrade = [("Connection", "Upgrade"), ("Upgrade", "websocket")];
    let version =
        [upgrade[0], upgrade[1], ("Sec-WebSocket-Version", "8"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")];
    assert_eq!(server.request("GET", "/ws", &version).await.0, 426);
    let no_key = [upgrade[0], upgrade[1], ("Sec-WebSocket-Version", "13")];
    assert_eq!(server.request("GET", "/ws", &no_key).await.0, 400);
    assert_eq!(server.metric(r#"wshub_upgrade_failures_total{reason="not_upgrade"}"#).await, 1.0);
    assert_eq!(server.metric(r#"wshub_upgrade_failures_total{reason="version"}"#).await, 1.0);
    assert_eq!(server.metric(r#"wshub_upgrade_failures_total{reason="key"}"#).await, 1.0);
    assert_eq!(server.metric(r#"wshub_upgrade_failures_total{reason="method"}"#).await, 1.0);
    // Still serving.
    assert_eq!(server.get("/healthz").await.0, 200);
    assert!(server.connect_with("", &[]).await.is_ok());
}
