//! The axum integration (feature `axum`): an endpoint that upgrades an HTTP
//! request to a WebSocket and hands it to a [`Hub`].
//!
//! axum's own `WebSocketUpgrade` yields axum's `WebSocket`, which the hub
//! cannot take; this endpoint does the upgrade itself (RFC 6455 §4.2) and
//! builds a [`tokio_tungstenite::WebSocketStream`] with the hub's
//! [`websocket_config`](crate::HubConfig::websocket_config), so there is one
//! tungstenite in the dependency tree, the hub's.
//!
//! ```no_run
//! use axum::Router;
//! use wshub::{Hub, HubConfig};
//!
//! # async fn run() -> std::io::Result<()> {
//! let hub = Hub::new(HubConfig::default().relay(true));
//! let app: Router = Router::new().nest("/ws", wshub::axum::router(hub.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
//! # }
//! ```
//!
//! With [`into_make_service_with_connect_info`](::axum::Router::into_make_service_with_connect_info)
//! the hub knows each spoke's address ([`Spoke::remote_addr`](crate::Spoke::remote_addr)).
//! Set `TCP_NODELAY` on accepted sockets with axum's
//! [`ListenerExt::tap_io`](::axum::serve::ListenerExt::tap_io).
//!
//! ## Checks at the upgrade
//!
//! An [`Endpoint`] checks, in the wire protocol's order: the `Origin`
//! against its allow-list (403), the bearer token (401), then the connection
//! limit (503). By default there is no allow-list, no token and no limit.
//! Each refusal or failure is reported to
//! [`on_failed_upgrade`](Endpoint::on_failed_upgrade) as an
//! [`UpgradeFailure`]; those that are not a policy refusal are also counted in
//! [`HubStats::upgrade_failures`](crate::HubStats::upgrade_failures).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ::axum::Router;
use ::axum::body::Body;
use ::axum::extract::{ConnectInfo, Request};
use ::axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::{MethodRouter, any};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::hub::Hub;

/// A router with one route, `/`, that upgrades `GET` requests and hands the
/// socket to `hub`; other methods get 405. [`nest`](::axum::Router::nest) it
/// where the WebSocket should live. No token, origin list or limit: build an
/// [`Endpoint`] for those.
pub fn router<S>(hub: Hub) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Endpoint::new(hub).into_router()
}

type FailureHook = Arc<dyn Fn(&UpgradeFailure) + Send + Sync>;

/// A WebSocket endpoint for a [`Hub`], with the checks the wire protocol puts
/// at the upgrade. Cheap to clone; every clone shares the connection count.
///
/// ```
/// use axum::Router;
/// use wshub::axum::Endpoint;
/// use wshub::{Hub, HubConfig};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let hub = Hub::new(HubConfig::default().relay(true));
/// let ws = Endpoint::new(hub)
///     .token("s3cret")
///     .allowed_origin("https://app.example.com")
///     .max_connections(10_000)
///     .on_failed_upgrade(|failure| eprintln!("upgrade refused: {}", failure.reason()));
/// let app: Router = Router::new().route("/ws", ws.into_method_router());
/// # }
/// ```
#[derive(Clone)]
pub struct Endpoint {
    hub: Hub,
    token: Option<Arc<str>>,
    allowed_origins: Option<Arc<[String]>>,
    max_connections: Option<usize>,
    /// Upgrades past the checks whose spoke the hub has not accepted yet.
    pending: Arc<AtomicUsize>,
    on_failed_upgrade: Option<FailureHook>,
}

impl Endpoint {
    /// An endpoint for `hub`, with no token, no origin allow-list and no
    /// connection limit.
    pub fn new(hub: Hub) -> Self {
        Self {
            hub,
            token: None,
            allowed_origins: None,
            max_connections: None,
            pending: Arc::default(),
            on_failed_upgrade: None,
        }
    }

    /// Requires this bearer token, in `Authorization: Bearer <token>` or the
    /// query parameter `?token=<token>`; without it the upgrade gets 401.
    /// Default: no token required.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into().into());
        self
    }

    /// Adds `origin` (`scheme://host[:port]`, compared exactly, ASCII case
    /// aside) to the allow-list. Once there is a list, a request whose
    /// `Origin` is not on it gets 403; a request without `Origin` (not a
    /// browser) is let through. Default: no list, every origin allowed.
    #[must_use]
    pub fn allowed_origin(mut self, origin: impl Into<String>) -> Self {
        let mut origins = self.allowed_origins.as_deref().map(<[String]>::to_vec).unwrap_or_default();
        origins.push(origin.into());
        self.allowed_origins = Some(origins.into());
        self
    }

    /// At most this many spokes connected to the hub at once; past it the
    /// upgrade gets 503. Default: no limit.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = Some(max);
        self
    }

    /// Runs `hook` for every upgrade that is refused or fails, with the
    /// reason. The hook runs on the request's task, or on the connection's
    /// when the failure comes after the 101 answer.
    #[must_use]
    pub fn on_failed_upgrade<F>(mut self, hook: F) -> Self
    where
        F: Fn(&UpgradeFailure) + Send + Sync + 'static,
    {
        self.on_failed_upgrade = Some(Arc::new(hook));
        self
    }

    /// Whether `request` carries the endpoint's [`token`](Self::token)
    /// (always, when none is required): to guard other routes, such as a
    /// page that lists spokes, with the same token.
    pub fn authorized<B>(&self, request: &::axum::http::Request<B>) -> bool {
        self.token.as_deref().is_none_or(|token| has_token(request, token))
    }

    /// The hub this endpoint feeds.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// A method router for one route: `GET` upgrades, any other method
    /// gets 405.
    pub fn into_method_router<S>(self) -> MethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        any(move |request: Request| {
            let endpoint = self.clone();
            async move { endpoint.handle(request).await }
        })
    }

    /// A router with this endpoint at `/`, to [`nest`](::axum::Router::nest).
    pub fn into_router<S>(self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Router::new().route("/", self.into_method_router())
    }

    /// Answers one request: 101 and a spoke for the hub when every check
    /// passes, otherwise the error status (see [`UpgradeFailure::status`]).
    /// Never panics on any request.
    pub async fn handle(&self, mut request: Request) -> Response {
        let key = match self.check(&request) {
            Ok(key) => key,
            Err(failure) => return self.refuse(failure),
        };
        let slot = match self.reserve() {
            Some(slot) => slot,
            None => return self.refuse(UpgradeFailure::ConnectionLimit),
        };
        let on_upgrade = hyper::upgrade::on(&mut request);
        let remote_addr = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
        let endpoint = self.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let hub = &endpoint.hub;
            let upgraded = tokio::time::timeout(hub.config().handshake_timeout, on_upgrade).await;
            let upgraded = match upgraded {
                Ok(Ok(upgraded)) => upgraded,
                Ok(Err(error)) => return endpoint.failed(UpgradeFailure::Io(error.to_string())),
                Err(_) => return endpoint.failed(UpgradeFailure::Io("the upgrade timed out".into())),
            };
            let config = hub.config().websocket_config();
            let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
            match remote_addr {
                Some(addr) => hub.accept_from(ws, addr),
                None => hub.accept(ws),
            };
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        // The accept key is base64: always a valid header value.
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }

    /// Every check before the limit; returns the `Sec-WebSocket-Key`.
    fn check(&self, request: &Request) -> Result<HeaderValue, UpgradeFailure> {
        if request.method() != Method::GET {
            return Err(UpgradeFailure::Method);
        }
        let headers = request.headers();
        if let (Some(allowed), Some(origin)) = (&self.allowed_origins, headers.get(header::ORIGIN)) {
            let origin = origin.as_bytes();
            if !allowed.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(origin)) {
                return Err(UpgradeFailure::Origin);
            }
        }
        if !self.authorized(request) {
            return Err(UpgradeFailure::Token);
        }
        if self.hub.is_shutting_down() {
            return Err(UpgradeFailure::ShuttingDown);
        }
        if !header_has_token(headers, header::CONNECTION, "upgrade")
            || !header_has_token(headers, header::UPGRADE, "websocket")
        {
            return Err(UpgradeFailure::NotUpgrade);
        }
        if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
            return Err(UpgradeFailure::Version);
        }
        match headers.get(header::SEC_WEBSOCKET_KEY) {
            Some(key) if !key.is_empty() => Ok(key.clone()),
            _ => Err(UpgradeFailure::Key),
        }
    }

    /// Takes a place under the connection limit, held until the hub has
    /// accepted the spoke (or the upgrade failed).
    fn reserve(&self) -> Option<Slot> {
        let slot = Slot(self.pending.clone());
        let pending_before = self.pending.fetch_add(1, Ordering::AcqRel);
        match self.max_connections {
            Some(max) if self.hub.spoke_count() + pending_before >= max => None,
            _ => Some(slot),
        }
    }

    fn refuse(&self, failure: UpgradeFailure) -> Response {
        self.failed(failure.clone());
        failure.into_response()
    }

    fn failed(&self, failure: UpgradeFailure) {
        if !failure.is_refusal() {
            self.hub.inner().stats.upgrade_failures.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(reason = failure.reason(), %failure, "websocket upgrade refused");
        if let Some(hook) = &self.on_failed_upgrade {
            hook(&failure);
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token itself.
        f.debug_struct("Endpoint")
            .field("hub", &self.hub)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("allowed_origins", &self.allowed_origins)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// A place under the connection limit.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why an [`Endpoint`] did not hand a connection to the hub.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeFailure {
    /// The `Origin` is not on the allow-list (403).
    Origin,
    /// The bearer token is missing or wrong (401).
    Token,
    /// The hub is at its connection limit (503).
    ConnectionLimit,
    /// The hub is shutting down (503).
    ShuttingDown,
    /// The method is not `GET` (405).
    Method,
    /// Not a WebSocket upgrade: `Connection: upgrade` or `Upgrade: websocket`
    /// is missing (426).
    NotUpgrade,
    /// `Sec-WebSocket-Version` is missing or not 13 (426).
    Version,
    /// `Sec-WebSocket-Key` is missing (400).
    Key,
    /// The connection failed or timed out after the 101 answer.
    Io(String),
}

impl UpgradeFailure {
    /// A short `snake_case` name for logs and metric labels: `origin`,
    /// `token`, `connection_limit`, `shutting_down`, `method`, `not_upgrade`,
    /// `version`, `key`, `io`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Origin => "origin",
            Self::Token => "token",
            Self::ConnectionLimit => "connection_limit",
            Self::ShuttingDown => "shutting_down",
            Self::Method => "method",
            Self::NotUpgrade => "not_upgrade",
            Self::Version => "version",
            Self::Key => "key",
            Self::Io(_) => "io",
        }
    }

    /// The HTTP status the request was answered with; `None` for
    /// [`Io`](Self::Io), which comes after the 101.
    pub fn status(&self) -> Option<StatusCode> {
        Some(match self {
            Self::Origin => StatusCode::FORBIDDEN,
            Self::Token => StatusCode::UNAUTHORIZED,
            Self::ConnectionLimit | Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Self::Method => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotUpgrade | Self::Version => StatusCode::UPGRADE_REQUIRED,
            Self::Key => StatusCode::BAD_REQUEST,
            Self::Io(_) => return None,
        })
    }

    /// Whether this is a policy refusal (origin, token, limit, shutdown) of
    /// a well-formed request, rather than a failed upgrade.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Origin | Self::Token | Self::ConnectionLimit | Self::ShuttingDown)
    }
}

impl fmt::Display for UpgradeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Origin => f.write_str("origin not allowed"),
            Self::Token => f.write_str("missing or wrong bearer token"),
            Self::ConnectionLimit => f.write_str("at the connection limit"),
            Self::ShuttingDown => f.write_str("the hub is shutting down"),
            Self::Method => f.write_str("a WebSocket upgrade must be a GET"),
            Self::NotUpgrade => f.write_str("not a WebSocket upgrade request"),
            Self::Version => f.write_str("unsupported Sec-WebSocket-Version (13 is supported)"),
            Self::Key => f.write_str("missing Sec-WebSocket-Key"),
            Self::Io(error) => write!(f, "the upgraded connection failed: {error}"),
        }
    }
}

impl std::error::Error for UpgradeFailure {}

impl IntoResponse for UpgradeFailure {
    fn into_response(self) -> Response {
        let status = self.status().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.to_string()).into_response();
        let headers = response.headers_mut();
        match self {
            Self::Token => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::NotUpgrade | Self::Version => {
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            Self::Method => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            Self::ConnectionLimit | Self::ShuttingDown => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

/// Whether the request carries `token`, as `Authorization: Bearer <token>`
/// or as the query parameter `token`.
fn has_token<B>(request: &::axum::http::Request<B>, token: &str) -> bool {
    bearer_token(request.headers()).is_some_and(|given| same(given.as_bytes(), token.as_bytes()))
        || query_token(request.uri()).is_some_and(|given| same(given.as_bytes(), token.as_bytes()))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers.get_all(header::AUTHORIZATION).iter().find_map(|value| {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    })
}

fn query_token(uri: &::axum::http::Uri) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct TokenQuery {
        token: Option<String>,
    }
    ::axum::extract::Query::<TokenQuery>::try_from_uri(uri).ok()?.0.token
}

/// Compares in time that depends on the lengths only, not on where the
/// first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the comma-separated header holds `token` (ASCII case aside).
fn header_has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = ::axum::http::Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).expect("a valid request")
    }

    #[test]
    fn a_token_is_taken_from_the_header_or_the_query() {
        assert!(has_token(&request("/ws", &[("authorization", "Bearer abc")]), "abc"));
        assert!(has_token(&request("/ws", &[("authorization", "bearer abc")]), "abc"));
        assert!(has_token(&request("/ws?x=1&token=a%20b", &[]), "a b"));
        assert!(!has_token(&request("/ws?token=abd", &[]), "abc"));
        assert!(!has_token(&request("/ws", &[("authorization", "Basic abc")]), "abc"));
        assert!(!has_token(&request("/ws?token=ab", &[]), "abc"));
        assert!(!has_token(&request("/ws", &[]), "abc"));
    }

    #[test]
    fn connection_header_lists_are_split_on_commas() {
        let req = request("/", &[("connection", "keep-alive, Upgrade")]);
        assert!(header_has_token(req.headers(), header::CONNECTION, "upgrade"));
        let req = request("/", &[("connection", "keep-alive, upgraded")]);
        assert!(!header_has_token(req.headers(), header::CONNECTION, "upgrade"));
    }
}
