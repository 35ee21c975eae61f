//! `Hub::serve` with an upgrade check: the wire protocol's token and origin
//! rules hold on the library's own upgrade path, and a token shows up in no
//! log line and no counter.

mod support;

use std::sync::{Arc, Mutex};

use support::*;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{StatusCode, header};
use wshub::{Hub, HubConfig};

const TOKEN: &str = "s3cret-t0ken-7f1c";
const ORIGIN: &str = "https://app.example.com";

/// The wire protocol's "Authentication": origin (403), then the token, as
/// `Authorization: Bearer …` or `?token=…` (401).
fn check(request: &tokio_tungstenite::tungstenite::handshake::server::Request) -> Result<(), StatusCode> {
    if request.headers().get(header::ORIGIN).is_some_and(|o| o != ORIGIN) {
        return Err(StatusCode::FORBIDDEN);
    }
    let bearer = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let query = request.uri().query().unwrap_or("");
    let in_query = query.split('&').any(|kv| kv.strip_prefix("token=") == Some(TOKEN));
    if bearer == Some(&format!("Bearer {TOKEN}")) || in_query { Ok(()) } else { Err(StatusCode::UNAUTHORIZED) }
}

async fn start() -> (Hub, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let hub = Hub::new(HubConfig::default());
    tokio::spawn(hub.clone().serve(listener).with_upgrade_check(check).into_future());
    (hub, url)
}

/// The HTTP status of an upgrade with these extra headers: 101 when it worked.
async fn upgrade(url: &str, headers: &[(header::HeaderName, &str)]) -> u16 {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(name.clone(), value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_ws, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("{other}"),
    }
}

#[tokio::test]
async fn an_upgrade_without_the_token_gets_401_and_no_websocket() {
    let (hub, url) = start().await;
    assert_eq!(upgrade(&url, &[]).await, 401);
    assert_eq!(upgrade(&url, &[(header::AUTHORIZATION, "Bearer wrong")]).await, 401);
    assert_eq!(upgrade(&format!("{url}?token=wrong"), &[]).await, 401);
    assert_eq!(hub.stats().connections_total, 0);
    assert_eq!(hub.stats().upgrade_failures, 0, "a refusal is policy, not a failure");
}

#[tokio::test]
async fn the_token_is_taken_as_a_bearer_header_or_a_query_parameter() {
    let (hub, url) = start().await;
    assert_eq!(upgrade(&url, &[(header::AUTHORIZATION, &format!("Bearer {TOKEN}"))]).await, 101);
    assert_eq!(upgrade(&format!("{url}?token={TOKEN}"), &[]).await, 101);
    wait_for(|| hub.stats().connections_total == 2).await;
}

#[tokio::test]
async fn an_origin_off_the_list_gets_403_before_the_token_is_looked_at() {
    let (hub, url) = start().await;
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        upgrade(&url, &[(header::ORIGIN, "https://evil.example.com"), (header::AUTHORIZATION, &bearer)]).await,
        403
    );
    assert_eq!(upgrade(&url, &[(header::ORIGIN, "https://evil.example.com")]).await, 403);
    assert_eq!(upgrade(&url, &[(header::ORIGIN, ORIGIN), (header::AUTHORIZATION, &bearer)]).await, 101);
    // No Origin at all (not a browser) is not refused for that.
    assert_eq!(upgrade(&url, &[(header::AUTHORIZATION, &bearer)]).await, 101);
    wait_for(|| hub.stats().connections_total == 2).await;
}

/// A tracing subscriber that keeps every event's fields as text.
#[derive(Default)]
struct Recorder(Arc<Mutex<String>>);

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        span.record(&mut Writer(self.0.clone()));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Writer(self.0.clone()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        event.record(&mut Writer(self.0.clone()));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

struct Writer(Arc<Mutex<String>>);

impl tracing::field::Visit for Writer {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let line = format!("{}={value:?}\n", field.name());
        self.0.lock().unwrap().push_str(&line);
    }
}

#[test]
fn the_token_appears_in_no_log_line_and_no_counter() {
    let log = Arc::new(Mutex::new(String::new()));
    let _logging = tracing::subscriber::set_default(Recorder(log.clone()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (hub, url) = start().await;
        assert_eq!(upgrade(&format!("{url}?token={TOKEN}x"), &[]).await, 401);
        assert_eq!(upgrade(&url, &[(header::AUTHORIZATION, &format!("Bearer {TOKEN}x"))]).await, 401);
        assert_eq!(upgrade(&format!("{url}?token={TOKEN}"), &[]).await, 101);
        wait_for(|| hub.stats().connections_total == 1).await;
        let spoke = hub.spokes()[0].clone();
        hub.revoke(spoke.id());
        wait_for(|| hub.spoke_count() == 0).await;
        let shown = format!("{:?} {:?} {:?}", hub.stats(), hub, spoke);
        assert!(!shown.contains(TOKEN), "{shown}");
    });
    let log = log.lock().unwrap();
    assert!(log.contains("upgrade refused"), "the refusals were logged:\n{log}");
    assert!(!log.contains(TOKEN), "the token is in the log:\n{log}");
}
