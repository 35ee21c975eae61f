#![cfg(feature = "server")]
//! The dashboard in a real headless Chromium (Debian's `chromium`, driven by
//! playwright-core): it is a spoke itself, shows the spokes as they come,
//! logs what they send, and dispatches from its form.

#[path = "support/server.rs"]
mod server;
mod support;

use serde_json::json;
use server::{Browser, Server, scratch_dir};
use support::{envelope, recv, send};

#[tokio::test]
async fn the_dashboard_shows_spokes_and_events_and_sends_from_its_form() {
    let server = Server::start(&[]).await;
    let mut page = Browser::open(&server.http_url()).await;
    // The page is a spoke itself.
    page.run(json!({ "cmd": "waitText", "selector": "#spoke-count", "text": "1" })).await;

    let mut rust = server.connect().await;
    page.run(json!({ "cmd": "waitText", "selector": "#spoke-count", "text": "2" })).await;
    let rows = page.run(json!({ "cmd": "count", "selector": "#spokes tr" })).await;
    assert_eq!(rows["ok"], 2);

    send(&mut rust, envelope("chat.message", "room-7", json!({ "text": "from rust" }))).await;
    page.run(json!({ "cmd": "waitLog", "topic": "chat.message:room-7", "contains": "from rust", "dir": "in" })).await;

    page.run(json!({
        "cmd": "send", "type": "chat.message", "id": "room-8", "payload": "{\"text\": \"from the browser\"}"
    }))
    .await;
    let got = recv(&mut rust).await;
    assert_eq!(got, json!({ "type": "chat.message", "id": "room-8", "payload": { "text": "from the browser" } }));
    page.run(
        json!({ "cmd": "waitLog", "topic": "chat.message:room-8", "contains": "from the browser", "dir": "sent" }),
    )
    .await;

    // A subscription shows in the spoke list.
    support::hub_subscribe(&mut rust, "chat.message:*").await;
    page.run(json!({ "cmd": "waitLog", "topic": "chat.message:room-7", "contains": "from rust" })).await;
    page.run(json!({ "cmd": "waitText", "selector": "#spokes tr:last-child code", "text": "chat.message:*" })).await;

    let shot = scratch_dir().join("dashboard.png");
    page.run(json!({ "cmd": "screenshot", "path": shot })).await;

    // The topic filter keeps only what matches.
    page.run(json!({ "cmd": "fill", "selector": "#filter", "value": "chat.message:room-8" })).await;
    let hidden = page.run(json!({ "cmd": "count", "selector": "#log li[data-topic=\"chat.message:room-7\"]" })).await;
    assert_eq!(hidden["ok"], 0);
    let shown = page.run(json!({ "cmd": "count", "selector": "#log li[data-topic=\"chat.message:room-8\"]" })).await;
    assert_eq!(shown["ok"], 1);
    page.run(json!({ "cmd": "fill", "selector": "#filter", "value": "chat.message:*" })).await;
    let all = page.run(json!({ "cmd": "count", "selector": "#log li" })).await;
    assert_eq!(all["ok"], 2);

    // The count falls when a spoke leaves.
    drop(rust);
    page.run(json!({ "cmd": "waitText", "selector": "#spoke-count", "text": "1" })).await;
    let errors = page.run(json!({ "cmd": "errors" })).await;
    assert_eq!(errors["ok"], json!([]), "the page threw");
    page.close().await;
}

#[tokio::test]
async fn with_a_token_the_dashboard_asks_for_it_and_keeps_working() {
    let server = Server::start(&["--token", "s3cret"]).await;
    let mut page = Browser::open(&server.http_url()).await;
    page.run(json!({ "cmd": "waitText", "selector": "#status", "text": "token required" })).await;
    assert_eq!(page.run(json!({ "cmd": "visible", "selector": "#token-panel" })).await["ok"], true);

    page.run(json!({ "cmd": "fill", "selector": "#token-input", "value": "wrong" })).await;
    page.run(json!({ "cmd": "click", "selector": "#token-button" })).await;
    page.run(json!({ "cmd": "waitText", "selector": "#token-error", "text": "That token was refused." })).await;

    page.run(json!({ "cmd": "fill", "selector": "#token-input", "value": "s3cret" })).await;
    page.run(json!({ "cmd": "click", "selector": "#token-button" })).await;
    page.run(json!({ "cmd": "waitText", "selector": "#spoke-count", "text": "1" })).await;

    let mut rust = server.connect_with("?token=s3cret", &[]).await.expect("the token is accepted");
    page.run(json!({ "cmd": "waitText", "selector": "#spoke-count", "text": "2" })).await;
    page.run(json!({ "cmd": "send", "type": "ping", "id": "", "payload": "42" })).await;
    assert_eq!(recv(&mut rust).await, json!({ "type": "ping", "id": "", "payload": 42 }));
    send(&mut rust, envelope("pong", "", json!(43))).await;
    page.run(json!({ "cmd": "waitLog", "topic": "pong:", "contains": "43", "dir": "in" })).await;
    page.close().await;
}
