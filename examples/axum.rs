//! A wshub hub inside your own axum app: `cargo run --example axum`, then
//! connect a WebSocket client to ws://127.0.0.1:3000/ws.
use axum::{Router, routing::get};
use wshub::{Hub, HubConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let hub = Hub::new(HubConfig::default().relay(true));
    let app = Router::new().route("/", get(|| async { "hello" })).nest("/ws", wshub::axum::router(hub));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
}
