//! [`Hub::serve`]: accept TCP connections, upgrade them, hand them to the hub.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::hub::Hub;

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

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
        Serve { hub: self, listener, signal: None }
    }
}

/// The future of [`Hub::serve`]: `.await` it.
#[must_use = "a Serve does nothing until it is awaited"]
pub struct Serve {
    hub: Hub,
    listener: TcpListener,
    signal: Option<BoxFuture>,
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

    async fn run(self) -> io::Result<()> {
        let Serve { hub, listener, signal } = self;
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
                        let hub = hub.clone();
                        tokio::spawn(async move { upgrade(hub, stream, addr).await });
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

async fn upgrade(hub: Hub, stream: TcpStream, addr: std::net::SocketAddr) {
    let _ = stream.set_nodelay(true);
    let config = hub.config();
    let handshake = tokio_tungstenite::accept_async_with_config(stream, Some(config.websocket_config()));
    match tokio::time::timeout(config.handshake_timeout, handshake).await {
        Ok(Ok(ws)) => {
            hub.accept_from(ws, addr);
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
