//! The client's connection task: connects, reconnects with backoff, writes
//! the queue, reads what the hub sends.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::backoff::backoff;
use crate::config::FrameKind;
use crate::event::{Event, decode};
use crate::pattern::Pattern;
use crate::protocol::{self, RESERVED_PREFIX, close_code};

use super::error::HubError;
use super::state::{ConnectionState, Disconnect};
use super::{ClientConfig, Shared, lock, request};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The most queued events written in one batch before one flush.
const MAX_BATCH: usize = 256;

/// How a connection ended.
enum Ended {
    /// [`Client::close`](super::Client::close) closed it.
    Closing,
    /// It dropped; the client reconnects.
    Lost(Disconnect),
}

pub(crate) struct Task {
    shared: Arc<Shared>,
    url: String,
    queue: mpsc::Receiver<Event>,
    state: watch::Sender<ConnectionState>,
    errors: broadcast::Sender<HubError>,
    close: watch::Receiver<bool>,
    /// Events taken from the queue whose write has not been seen to succeed:
    /// written first on the next connection.
    pending: VecDeque<Event>,
}

impl Task {
    pub(crate) fn new(
        shared: Arc<Shared>,
        url: String,
        queue: mpsc::Receiver<Event>,
        state: watch::Sender<ConnectionState>,
        errors: broadcast::Sender<HubError>,
        close: watch::Receiver<bool>,
    ) -> Self {
        Self { shared, url, queue, state, errors, close, pending: VecDeque::new() }
    }

    /// Connects (unless handed a connection), serves, reconnects, until closed.
    pub(crate) async fn run(mut self, mut ws: Option<Ws>) {
        let mut attempt = 0u32;
        let mut close = self.close.clone();
        loop {
            if *close.borrow_and_update() {
                // Closed before the task first ran: the connection made by
                // `Client::connect` is closed properly too.
                if let Some(ws) = ws.take() {
                    self.close_now(ws).await;
                }
                break;
            }
            let connected = match ws.take() {
                Some(ws) => Ok(ws),
                None => {
                    self.set_state(ConnectionState::Connecting);
                    tokio::select! {
                        result = connect(&self.url, &self.shared.config) => result,
                        _ = close.wait_for(|closing| *closing) => break,
                    }
                }
            };
            let reason = match connected {
                Ok(ws) => {
                    attempt = 0;
                    self.set_state(ConnectionState::Connected);
                    match self.serve(ws).await {
                        Ended::Closing => break,
                        Ended::Lost(reason) => reason,
                    }
                }
                Err(reason) => reason,
            };
            tracing::debug!(url = %self.url, %reason, "disconnected from the hub");
            self.set_state(ConnectionState::Disconnected { reason });
            attempt = attempt.saturating_add(1);
            let config = &self.shared.config;
            let wait = backoff(config.initial_backoff, config.max_backoff, attempt);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = close.wait_for(|closing| *closing) => break,
            }
        }
        self.finish();
    }

    /// Publishes `state` if it differs from the current one.
    fn set_state(&self, state: ConnectionState) {
        self.state.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
    }

    /// Hands back what was not written, ends every stream, says `Closed`.
    fn finish(mut self) {
        self.queue.close();
        let mut unsent: Vec<Event> = self.pending.drain(..).collect();
        while let Ok(event) = self.queue.try_recv() {
            unsent.push(event);
        }
        if !unsent.is_empty() && Arc::strong_count(&self.shared) == 1 {
            // No handle and no stream is left to take them.
            tracing::warn!(url = %self.url, unsent = unsent.len(), "client dropped with events it could not send");
        }
        lock(&self.shared.unsent).extend(unsent);
        self.shared.acked.send_modify(|a| {
            a.closed = true;
            a.patterns.clear();
        });
        self.shared.listeners.close();
        lock(&self.shared.errors).take();
        self.set_state(ConnectionState::Closed);
    }

    /// Serves one connection until it drops or the client closes.
    async fn serve(&mut self, mut ws: Ws) -> Ended {
        let config = &self.shared.config;
        let (interval, ping_timeout) = (config.ping_interval, config.ping_timeout);
        let mut sent = HashSet::new();
        // Subscriptions first, then whatever waited for the connection.
        if let Err(reason) = self.sync_patterns(&mut ws, &mut sent).await {
            return Ended::Lost(reason);
        }
        if let Err(reason) = self.write_queue(&mut ws).await {
            return Ended::Lost(reason);
        }
        let mut last_seen = Instant::now();
        let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut close = self.close.clone();
        loop {
            if *close.borrow_and_update() {
                return self.close_now(ws).await;
            }
            let step = tokio::select! {
                _ = close.changed() => Ok(()),
                message = ws.next() => {
                    last_seen = Instant::now();
                    self.on_message(message, &mut ws).await
                }
                () = self.shared.patterns_changed.notified() => self.sync_patterns(&mut ws, &mut sent).await,
                Some(event) = self.queue.recv() => {
                    self.pending.push_back(event);
                    self.write_queue(&mut ws).await
                }
                _ = ping.tick() => {
                    if last_seen.elapsed() > ping_timeout {
                        Err(Disconnect::TimedOut)
                    } else {
                        self.write(&mut ws, |ws| Box::pin(async move {
                            ws.feed(Message::Ping(Bytes::new())).await?;
                            ws.flush().await
                        })).await
                    }
                }
            };
            if let Err(reason) = step {
                self.shared.acked.send_modify(|a| a.patterns.clear());
                return Ended::Lost(reason);
            }
        }
    }

    async fn on_message(&mut self, message: Option<Result<Message, WsError>>, ws: &mut Ws) -> Result<(), Disconnect> {
        let message = match message {
            None => return Err(Disconnect::ConnectionLost("the connection ended".into())),
            Some(Err(error)) => return Err(Disconnect::ConnectionLost(error.to_string())),
            Some(Ok(message)) => message,
        };
        match message {
            Message::Text(text) => self.on_data(text.as_bytes()),
            Message::Binary(bytes) => self.on_data(&bytes),
            Message::Close(frame) => {
                let (code, reason) = match frame {
                    Some(frame) => (u16::from(frame.code), frame.reason.as_str().to_owned()),
                    None => (1005, String::new()),
                };
                // Reading on sends tungstenite's answering close frame and
                // ends at the TCP close.
                let close_timeout = self.shared.config.close_timeout;
                let _ = timeout(close_timeout, async { while let Some(Ok(_)) = ws.next().await {} }).await;
                return Err(Disconnect::Closed { code, reason });
            }
            // tungstenite answers pings by itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        Ok(())
    }

    /// One envelope from the hub: an event for the streams, or a control
    /// envelope. Anything else is logged and skipped.
    fn on_data(&self, bytes: &[u8]) {
        let wire = match decode(bytes) {
            Ok(wire) => wire,
            Err(error) => {
                tracing::warn!(url = %self.url, %error, "skipped a message from the hub that is not an envelope");
                return;
            }
        };
        if !wire.event_type.starts_with(RESERVED_PREFIX) {
            let event = Event::new(wire.event_type, wire.id, wire.payload);
            self.shared.listeners.deliver(&event);
            return;
        }
        match &*wire.event_type {
            protocol::ERROR => {
                let message = match &wire.payload {
                    Value::Object(fields) => fields.get("message").and_then(Value::as_str).unwrap_or_default(),
                    _ => "",
                };
                tracing::debug!(url = %self.url, code = %wire.id, message, "the hub refused a message");
                let _ = self.errors.send(HubError::new(wire.id, message));
            }
            protocol::SUBSCRIBED => {
                let pattern = wire.id.into_owned();
                self.shared.acked.send_if_modified(|a| a.patterns.insert(pattern));
            }
            protocol::UNSUBSCRIBED => {
                self.shared.acked.send_if_modified(|a| a.patterns.remove(&*wire.id));
            }
            protocol::LAGGED => {
                let missed = wire.payload.get("missed").and_then(Value::as_u64).unwrap_or(0);
                tracing::debug!(url = %self.url, missed, "the hub skipped events for this client");
                if missed > 0 {
                    self.shared.listeners.lag_all(missed);
                }
            }
            // A later protocol's envelope, or a hub that relays other spokes'
            // control envelopes: nothing for this client.
            other => tracing::trace!(url = %self.url, r#type = other, "skipped a control envelope"),
        }
    }

    /// Sends `hub.unsubscribe` / `hub.subscribe` for the difference between
    /// the patterns that have streams and those sent on this connection.
    async fn sync_patterns(&mut self, ws: &mut Ws, sent: &mut HashSet<Pattern>) -> Result<(), Disconnect> {
        let wanted: HashSet<Pattern> = lock(&self.shared.patterns).keys().cloned().collect();
        let mut changes: Vec<Message> = Vec::new();
        for gone in sent.difference(&wanted) {
            self.shared.acked.send_if_modified(|a| a.patterns.remove(gone.as_str()));
            changes.push(self.message(protocol::subscription_change(false, gone.as_str())));
        }
        for new in wanted.difference(sent) {
            changes.push(self.message(protocol::subscription_change(true, new.as_str())));
        }
        *sent = wanted;
        if changes.is_empty() {
            return Ok(());
        }
        self.write(ws, |ws| {
            Box::pin(async move {
                for change in changes {
                    ws.feed(change).await?;
                }
                ws.flush().await
            })
        })
        .await
    }

    /// Writes the pending events and what else is queued, in batches, until
    /// the queue is empty. An event leaves `pending` only once its batch
    /// was flushed.
    async fn write_queue(&mut self, ws: &mut Ws) -> Result<(), Disconnect> {
        loop {
            while self.pending.len() < MAX_BATCH {
                match self.queue.try_recv() {
                    Ok(event) => self.pending.push_back(event),
                    Err(_) => break,
                }
            }
            if self.pending.is_empty() {
                return Ok(());
            }
            let batch: Vec<Message> = self.pending.iter().map(|e| self.message(e.to_json())).collect();
            self.write(ws, |ws| {
                Box::pin(async move {
                    for message in batch {
                        ws.feed(message).await?;
                    }
                    ws.flush().await
                })
            })
            .await?;
            self.pending.clear();
        }
    }

    /// Runs one write, within the ping timeout: a hub that takes no data for
    /// that long is as good as gone.
    async fn write<F>(&self, ws: &mut Ws, write: F) -> Result<(), Disconnect>
    where
        F: for<'a> FnOnce(&'a mut Ws) -> futures::future::BoxFuture<'a, Result<(), WsError>>,
    {
        match timeout(self.shared.config.ping_timeout, write(ws)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Disconnect::ConnectionLost(error.to_string())),
            Err(_) => Err(Disconnect::TimedOut),
        }
    }

    fn message(&self, text: String) -> Message {
        match self.shared.config.frame_kind {
            FrameKind::Binary => Message::Binary(Bytes::from(text)),
            _ => Message::Text(Utf8Bytes::from(text)),
        }
    }

    /// Writes what is queued, sends close 1000, waits for the hub's answer.
    async fn close_now(&mut self, mut ws: Ws) -> Ended {
        let close_timeout = self.shared.config.close_timeout;
        let _ = timeout(close_timeout, async {
            self.write_queue(&mut ws).await.ok()?;
            let frame = CloseFrame { code: close_code::NORMAL.into(), reason: "".into() };
            ws.send(Message::Close(Some(frame))).await.ok()?;
            while let Some(Ok(_)) = ws.next().await {}
            Some(())
        })
        .await;
        Ended::Closing
    }
}

/// One attempt to connect, within the connect timeout.
pub(crate) async fn connect(url: &str, config: &ClientConfig) -> Result<Ws, Disconnect> {
    let request = request(url, config).map_err(|e| Disconnect::ConnectFailed(e.to_string()))?;
    let connector =
        if request.uri().scheme_str() == Some("wss") { tls(&config.root_certificates)? } else { Connector::Plain };
    let limits = WebSocketConfig::default()
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_message_size));
    let attempt = tokio_tungstenite::connect_async_tls_with_config(request, Some(limits), true, Some(connector));
    match timeout(config.connect_timeout, attempt).await {
        Ok(Ok((ws, _response))) => Ok(ws),
        Ok(Err(WsError::Http(response))) => Err(Disconnect::Rejected { status: response.status().as_u16() }),
        Ok(Err(error)) => Err(Disconnect::ConnectFailed(error.to_string())),
        Err(_) => Err(Disconnect::ConnectFailed("timed out".into())),
    }
}

/// rustls with the `ring` provider, named here rather than taken from the
/// process default (which is ambiguous when a second provider is linked),
/// trusting the webpki roots and the configured `extra` ones.
fn tls(extra: &[Vec<u8>]) -> Result<Connector, Disconnect> {
    let mut roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for (i, bytes) in extra.iter().enumerate() {
        let unreadable = |why: String| Disconnect::ConnectFailed(format!("TLS setup: root certificate {i}: {why}"));
        let certificates: Vec<CertificateDer<'static>> = if bytes.starts_with(b"-----BEGIN") {
            CertificateDer::pem_slice_iter(bytes).collect::<Result<_, _>>().map_err(|e| unreadable(e.to_string()))?
        } else {
            vec![CertificateDer::from(bytes.clone())]
        };
        if certificates.is_empty() {
            return Err(unreadable("no CERTIFICATE block".into()));
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|e| unreadable(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Disconnect::ConnectFailed(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}
