//! [`Hub::serve`]: accept TCP connections, upgrade them, hand them to the hub.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use crate::hub::Hub;

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type UpgradeCheck = Arc<dyn Fn(&Request) -> Result<(), StatusCode> + Send + Sync>;

impl Hub {
    /// Accepts TCP connections on `listener`, performs each WebSocket
    /// upgrade (within [`HubConfig::handshake_timeout`](crate::HubConfig::handshake_timeout)),
    /// sets `TCP_NODELAY` and [accepts](Hub::accept_from) the spoke.
    ///
    /// The returned [`Serve`] runs when awaited, until the hub
    /// [shuts down](Hub::shutdown); add
    /// [`with_graceful_shutdown`](Serve::with_graceful_shutdown) to shut the
    /// hub down when a signal arrives.
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let hub = wshub::Hub::new(Default::default());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// hub.serve(listener)
    ///     .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.ok(); })
    ///     .await
    /// # }
    /// ```
    pub fn serve(self, listener: TcpListener) -> Serve {
        Serve { hub: self, listener, signal: None, check: None }
    }
}

/// The future of [`Hub::serve`]: `.await` it.
#[must_use = "a Serve does nothing until it is awaited"]
pub struct Serve {
    hub: Hub,
    listener: TcpListener,
    signal: Option<BoxFuture>,
    check: Option<UpgradeCheck>,
}

impl Serve {
    /// When `signal` completes, stop accepting and [shut the hub
    /// down](Hub::shutdown); the future then completes once the shutdown has.
    pub fn with_graceful_shutdown<F>(mut self, signal: F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.signal = Some(Box::pin(signal));
        self
    }

    /// Runs `check` on every upgrade request (its headers and URI) before
    /// the WebSocket handshake is answered. `Err(status)` answers that
    /// status with no WebSocket and closes the connection: 403 for an
    /// `Origin` off an allow-list, 401 for a missing or wrong token, in that
    /// order (the wire protocol's "Authentication"). A refused upgrade is
    /// logged with its status only, never the request (a token may be in
    /// its query or headers), and is not counted in
    /// [`HubStats::upgrade_failures`](crate::HubStats::upgrade_failures).
    /// Default: no check.
    ///
    /// ```no_run
    /// use wshub::tokio_tungstenite::tungstenite::http::{StatusCode, header};
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let hub = wshub::Hub::new(Default::default());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// hub.serve(listener)
    ///     .with_upgrade_check(|request| {
    ///         let origin = request.headers().get(header::ORIGIN);
    ///         if origin.is_some_and(|o| o != "https://app.example.com") {
    ///             return Err(StatusCode::FORBIDDEN);
    ///         }
    ///         let bearer = request.headers().get(header::AUTHORIZATION);
    ///         if bearer.is_none_or(|b| b != "Bearer s3cret") {
    ///             return Err(StatusCode::UNAUTHORIZED);
    ///         }
    ///         Ok(())
    ///     })
    ///     .await
    /// # }
    /// ```
    pub fn with_upgrade_check<F>(mut self, check: F) -> Self
    where
        F: Fn(&Request) -> Result<(), StatusCode> + Send + Sync + 'static,
    {
        self.check = Some(Arc::new(check));
        self
    }

    async fn run(self) -> io::Result<()> {
        let Serve { hub, listener, signal, check } = self;
        let mut signal = signal.unwrap_or_else(|| Box::pin(std::future::pending()));
        let mut shutdown = hub.inner().shutdown.subscribe();
        loop {
            tokio::select! {
                () = &mut signal => {
                    hub.shutdown().await;
                    return Ok(());
                }
                _ = async { shutdown.wait_for(Option::is_some).await.map(|_| ()) } => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let (hub, check) = (hub.clone(), check.clone());
                        tokio::spawn(async move { upgrade(hub, stream, addr, check).await });
                    }
                    Err(error) => {
                        // Out of file descriptors and the like: wait, then go on.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }
}

async fn upgrade(hub: Hub, stream: TcpStream, addr: std::net::SocketAddr, check: Option<UpgradeCheck>) {
    let _ = stream.set_nodelay(true);
    let config = hub.config();
    let mut refused = None;
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        match check.as_deref().map_or(Ok(()), |check| check(request)) {
            Ok(()) => Ok(response),
            Err(status) => {
                refused = Some(status);
                let mut refusal = ErrorResponse::new(None);
                *refusal.status_mut() = status;
                Err(refusal)
            }
        }
    };
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config.websocket_config()));
    match tokio::time::timeout(config.handshake_timeout, handshake).await {
        Ok(Ok(ws)) => {
            hub.accept_from(ws, addr);
        }
        Ok(Err(_)) if refused.is_some() => {
            tracing::debug!(%addr, status = ?refused, "upgrade refused");
        }
        Ok(Err(error)) => {
            hub.inner().stats.upgrade_failures.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%addr, %error, "upgrade failed");
        }
        Err(_) => {
            hub.inner().stats.upgrade_failures.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%addr, "upgrade timed out");
        }
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl fmt::Debug for Serve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve").field("listener", &self.listener).finish_non_exhaustive()
    }
}
