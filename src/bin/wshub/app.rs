//! The server's routes.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use wshub::Hub;
use wshub::axum::Endpoint;

use crate::metrics::Metrics;

/// The dashboard: one self-contained page, a spoke of the hub itself.
const DASHBOARD: &str = include_str!("dashboard.html");

#[derive(Clone)]
struct App {
    hub: Hub,
    endpoint: Endpoint,
    metrics: Arc<Metrics>,
}

/// Every route:
///
/// - `GET /`: the dashboard;
/// - `GET /ws`: the WebSocket endpoint;
/// - `GET /api/spokes`: the spokes and counters the dashboard shows (guarded
///   by the token, like `/ws`);
/// - `GET /healthz`: 200 `ok`, or 503 while shutting down;
/// - `GET /metrics`: the Prometheus text exposition.
///
/// A wrong method gets 405, an unknown path 404.
pub(crate) fn router(endpoint: Endpoint, metrics: Arc<Metrics>) -> Router {
    let hub = endpoint.hub().clone();
    let app = App { hub, endpoint: endpoint.clone(), metrics };
    Router::new()
        .route("/", get(dashboard))
        .route("/ws", endpoint.into_method_router())
        .route("/api/spokes", get(spokes))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .with_state(app)
}

async fn dashboard() -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], DASHBOARD).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn healthz(State(app): State<App>) -> Response {
    if app.hub.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        "ok\n".into_response()
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    let content_type = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
    ([(header::CONTENT_TYPE, content_type)], app.metrics.render()).into_response()
}

async fn spokes(State(app): State<App>, request: Request) -> Response {
    if !app.endpoint.authorized(&request) {
        let mut response = (StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n").into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let spokes: Vec<Value> = app
        .hub
        .spokes()
        .iter()
        .map(|spoke| {
            let since = spoke.connected_at().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
            json!({
                "id": spoke.id().as_u64(),
                "remote_addr": spoke.remote_addr().map(|a| a.to_string()),
                "connected_at_ms": since as u64,
                "patterns": spoke.patterns(),
                "queued": spoke.queued(),
            })
        })
        .collect();
    let stats = app.hub.stats();
    axum::Json(json!({
        "connections": spokes.len(),
        "spokes": spokes,
        "stats": {
            "connections_accepted": stats.connections_total,
            "events_in": stats.events_in,
            "events_out": stats.events_out,
            "bytes_in": stats.bytes_in,
            "bytes_out": stats.bytes_out,
            "lagged": stats.lagged,
            "dropped": stats.dropped,
        },
        "config": { "echo": app.hub.config().echo },
    }))
    .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}
