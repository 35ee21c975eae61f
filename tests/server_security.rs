#![cfg(feature = "server")]
//! The server's secrets and upgrade paths, from the reliability issue: only
//! `/ws` upgrades, and only past the origin and token checks; the token (and
//! a wrong token a client sent) appears in no human-format log line at
//! trace level and nowhere in `/metrics`, whatever happened on the way.

#[path = "support/server.rs"]
mod server;
mod support;

use futures::SinkExt;
use serde_json::json;
use server::Server;
use support::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const TOKEN: &str = "r3l1ab1l1ty-s3cret";

/// The HTTP status an upgrade request to `path` gets: 101 if it upgraded.
async fn upgrade_status(server: &Server, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = format!("ws://{}{path}", server.addr).into_client_request().unwrap();
    for (name, value) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = name.parse().unwrap();
        request.headers_mut().insert(name, HeaderValue::from_str(value).unwrap());
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await.expect("timeout") {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("{path}: {other}"),
    }
}

#[tokio::test]
async fn only_ws_upgrades_and_only_past_the_origin_and_token_checks() {
    let server = Server::start(&["--token", TOKEN, "--allowed-origin", "https://good.test"]).await;
    let bearer = format!("Bearer {TOKEN}");
    // Every other route refuses to upgrade, even with the token.
    for path in ["/", "/api/spokes", "/healthz", "/metrics", "/nope", "/ws/extra"] {
        let with_query = format!("{path}?token={TOKEN}");
        for (path, headers) in [(path, vec![("Authorization", bearer.as_str())]), (with_query.as_str(), vec![])] {
            let status = upgrade_status(&server, path, &headers).await;
            assert_ne!(status, 101, "{path} upgraded");
        }
    }
    // `/ws`, in the protocol's order: origin, then token.
    let ws = "/ws";
    assert_eq!(upgrade_status(&server, ws, &[("Origin", "https://evil.test"), ("Authorization", &bearer)]).await, 403);
    assert_eq!(upgrade_status(&server, ws, &[("Origin", "https://good.test")]).await, 401);
    assert_eq!(upgrade_status(&server, &format!("{ws}?token={TOKEN}x"), &[]).await, 401);
    assert_eq!(upgrade_status(&server, ws, &[("Origin", "https://good.test"), ("Authorization", &bearer)]).await, 101);
    assert_eq!(upgrade_status(&server, &format!("{ws}?token={TOKEN}"), &[]).await, 101);
}

#[tokio::test]
async fn human_logs_at_trace_level_and_metrics_never_carry_the_token() {
    let log = server::scratch_dir().join(format!("wshub-human-{}.log", std::process::id()));
    let args = ["--token", TOKEN, "--log", "trace", "--rate-limit", "20", "--max-pattern-length", "64"];
    let mut server = Server::start_logging_to(&args, &[], &log).await;
    let wrong = format!("?token=wrong-{TOKEN}");
    assert_eq!(server.connect_with(&wrong, &[]).await.err(), Some(401));
    assert_eq!(server.connect_with("", &[("Authorization", &format!("Bearer {TOKEN}-wrong"))]).await.err(), Some(401));
    let mut a = server.connect_with(&format!("?token={TOKEN}"), &[]).await.expect("query token");
    let mut b = server.connect_with("", &[("Authorization", &format!("Bearer {TOKEN}"))]).await.expect("header token");
    assert_eq!(server.get(&format!("/api/spokes?token={TOKEN}")).await.0, 200);
    assert_eq!(server.get(&format!("/api/spokes?token=x{TOKEN}")).await.0, 401);
    // Errors, limits and closes, each of which is logged.
    send(&mut a, "{not json").await;
    assert_eq!(recv(&mut a).await["id"], "invalid_json");
    send(&mut a, json!({"type": "hub.subscribe", "id": format!("{}:*", "p".repeat(70))}).to_string()).await;
    assert_eq!(recv(&mut a).await["id"], "invalid_pattern");
    for i in 0..100 {
        let _ =
            a.send(tokio_tungstenite::tungstenite::Message::text(envelope("flood", &i.to_string(), json!(i)))).await;
    }
    assert_eq!(recv_close(&mut a).await.0, 1008);
    let (_, metrics) = server.get("/metrics").await;
    server.signal("TERM");
    assert_eq!(recv_close(&mut b).await.0, 1001);
    drop(b);
    assert_eq!(server.wait().await.code(), Some(0));

    let text = std::fs::read_to_string(&log).expect("read the log");
    let _ = std::fs::remove_file(&log);
    for expected in ["upgrade refused", "spoke connected", "closing spoke"] {
        assert!(text.contains(expected), "no `{expected}` in the log:\n{text}");
    }
    assert!(!text.contains(TOKEN), "the token is in the log:\n{text}");
    assert!(metrics.contains("wshub_rejections_total"), "{metrics}");
    assert!(!metrics.contains(TOKEN), "the token is in the metrics:\n{metrics}");
}
