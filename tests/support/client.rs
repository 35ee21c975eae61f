//! Helpers for the `Client` tests: waiting on its streams, and a fake hub
//! (a bare tokio-tungstenite server) for what a wshub hub never sends.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use wshub::client::{ClientSubscription, ConnectionState};
use wshub::{Client, ClientConfig, Event};

use crate::support::WAIT;

/// Settings that reconnect quickly, for tests.
pub fn fast() -> ClientConfig {
    ClientConfig::default().backoff(Duration::from_millis(10), Duration::from_millis(200))
}

/// The next event of `sub`; fails the test on a lag, an end, or after [`WAIT`].
pub async fn next_event(sub: &mut ClientSubscription) -> Event {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(lagged))) => panic!("{:?} lagged: {lagged}", sub.pattern()),
        Ok(None) => panic!("{:?} ended", sub.pattern()),
        Err(_) => panic!("no event on {:?} in time", sub.pattern()),
    }
}

/// Waits until the hub has acknowledged `sub`'s pattern.
pub async fn acknowledged(sub: &ClientSubscription) {
    tokio::time::timeout(WAIT, sub.acknowledged()).await.expect("no acknowledgement in time").expect("client closed");
}

/// Waits, on the client's state stream, for a state that satisfies `pred`.
pub async fn wait_state(client: &Client, pred: impl Fn(&ConnectionState) -> bool) -> ConnectionState {
    let mut states = client.states();
    tokio::time::timeout(WAIT, async {
        while let Some(state) = states.next().await {
            if pred(&state) {
                return state;
            }
        }
        panic!("the state stream ended");
    })
    .await
    .expect("state not reached in time")
}

/// A server that is not wshub: it accepts WebSocket upgrades and hands each
/// connection to the test, which sends whatever it likes.
pub struct FakeHub {
    pub listener: TcpListener,
    pub addr: SocketAddr,
}

impl FakeHub {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        Self { listener, addr }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Accepts the next upgrade.
    pub async fn accept(&self) -> WebSocketStream<TcpStream> {
        self.accept_checked(|_| Ok(())).await.expect("the upgrade was refused")
    }

    /// Accepts the next connection; `check` looks at the upgrade request and
    /// may refuse it with an HTTP status (then `None`).
    pub async fn accept_checked(
        &self,
        check: impl FnOnce(&Request) -> Result<(), u16> + Unpin,
    ) -> Option<WebSocketStream<TcpStream>> {
        let (tcp, _) =
            tokio::time::timeout(WAIT, self.listener.accept()).await.expect("no connection").expect("accept");
        let callback = |request: &Request, response: Response| match check(request) {
            Ok(()) => Ok(response),
            Err(status) => {
                let mut refusal = ErrorResponse::new(None);
                *refusal.status_mut() = status.try_into().expect("a status");
                Err(refusal)
            }
        };
        tokio_tungstenite::accept_hdr_async(tcp, callback).await.ok()
    }
}
