//! [`Client`]: a spoke for Rust services, the other half of the hub.
//!
//! A client connects to a hub (a wshub [`Hub`](crate::Hub), or any server
//! that speaks the wire protocol) at a `ws://` or `wss://` URL, and offers
//! the same stream-shaped API as the hub: [`Client::dispatch`] sends an
//! event, [`Client::subscribe`] returns a [`ClientSubscription`] stream of
//! the events that match a pattern.
//!
//! ```no_run
//! use futures::StreamExt;
//! use wshub::{Client, ClientConfig, Event};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("ws://127.0.0.1:8080/", ClientConfig::default()).await?;
//! let mut prices = client.subscribe("price:*")?;
//! client.dispatch(Event::new("price.request", "btc", ()))?;
//! while let Some(Ok(price)) = prices.next().await {
//!     println!("{}: {}", price.id(), price.payload());
//! }
//! # Ok(()) }
//! ```
//!
//! `wss://` goes through rustls with the `ring` provider and the webpki
//! root certificates: no system OpenSSL is needed.
//!
//! ## Subscriptions
//! Each pattern with at least one live stream is sent to the hub as
//! `hub.subscribe`, so the hub sends only what matches; dropping the last
//! stream of a pattern sends `hub.unsubscribe`. Several streams may share a
//! pattern, and each gets every matching event. Events are filtered here as
//! well, so against a hub that knows no control envelopes (and sends
//! everything) the streams show the same. While no stream lives, the hub
//! sends everything (the wire protocol's default) and the client discards it.
//!
//! The hub's `hub.error`s arrive on [`Client::hub_errors`] as values.
//!
//! ## Reconnecting
//! When the connection drops, or an attempt fails, the client waits and
//! tries again, for as long as it lives: first after about
//! [`ClientConfig::initial_backoff`], doubling after each failure up to
//! [`ClientConfig::max_backoff`], each wait drawn at random between half and
//! all of that (jitter). After every reconnection it sends `hub.subscribe`
//! for each pattern that has a stream, before any queued event, with no
//! code of yours; the streams go on (they do not end when the connection
//! drops). [`Client::states`] shows each step
//! ([`Connecting`](ConnectionState::Connecting),
//! [`Connected`](ConnectionState::Connected),
//! [`Disconnected { reason }`](ConnectionState::Disconnected)).
//!
//! What happens to events meanwhile:
//! - **Dispatched by you** while disconnected: queued, up to
//!   [`ClientConfig::queue_capacity`]; one more is refused with
//!   [`DispatchError::Full`], which hands it back. The queue is written, in
//!   order, once the client is connected again. An event whose write failed
//!   when the connection broke is written again after the reconnection, so
//!   the hub may see such an event twice, but never not at all without the
//!   client knowing.
//! - **Sent by the hub** while this client was disconnected: not seen. The
//!   state stream tells when that may have happened.
//!
//! ## Closing
//! [`Client::close`] writes what is queued (while connected), then closes
//! the connection with a close frame carrying 1000 and waits, within
//! [`ClientConfig::close_timeout`], for the hub's answer. It returns the
//! events that could not be written (those queued while disconnected), so
//! that nothing is lost silently. Then every [`ClientSubscription`] ends
//! after the events it holds, [`ConnectionStates`] ends after
//! [`ConnectionState::Closed`], [`HubErrors`] ends, and
//! [`Client::dispatch`] fails with [`DispatchError::Closed`].
//!
//! Dropping the last clone of a `Client` closes it the same way, in the
//! background; events it could not write are then logged (their number, at
//! `warn` level) and dropped.

mod config;
mod error;
mod state;
mod stream;
mod task;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_stream::wrappers::{BroadcastStream, WatchStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;

use crate::event::Event;
use crate::pattern::{Pattern, PatternError};
use crate::protocol::RESERVED_PREFIX;
use crate::subscription::Listeners;

pub use config::ClientConfig;
pub use error::{ClientClosed, ConnectError, DispatchError, HubError};
pub use state::{ConnectionState, Disconnect};
pub use stream::{ClientSubscription, ConnectionStates, HubErrors};

use stream::PatternHold;
use task::Task;

/// How many `hub.error`s a [`HubErrors`] stream holds before it lags.
pub const HUB_ERRORS_CAPACITY: usize = 64;

/// A spoke that connects to a hub: see the [module docs](self) for
/// reconnecting and closing.
///
/// A `Client` is a cheap handle: clone it into every task that dispatches
/// or subscribes. The connection lives in a task of its own until
/// [`close`](Self::close) is called or the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

/// Closes the client when the last `Client` clone goes.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close.send_replace(true);
    }
}

/// What the handle, the streams and the connection task share.
pub(crate) struct Shared {
    config: ClientConfig,
    queue: mpsc::Sender<Event>,
    /// Every pattern with a live stream, and how many streams it has.
    patterns: Mutex<HashMap<Pattern, usize>>,
    patterns_changed: Notify,
    listeners: Arc<Listeners>,
    acked: watch::Sender<Acked>,
    state: watch::Receiver<ConnectionState>,
    /// Taken (and so dropped) when the client closes, which ends every
    /// [`HubErrors`].
    errors: Mutex<Option<broadcast::Sender<HubError>>>,
    close: watch::Sender<bool>,
    /// The events the task could not write before it ended.
    unsent: Mutex<Vec<Event>>,
}

/// The patterns the hub has acknowledged on the current connection.
#[derive(Debug, Default)]
pub(crate) struct Acked {
    patterns: HashSet<String>,
    closed: bool,
}

impl Client {
    /// A client for the hub at `url` (`ws://…` or `wss://…`). It starts
    /// connecting in the background at once, and reconnects by itself
    /// whenever it has to: dispatches made before it is connected are
    /// queued. Use [`connect`](Self::connect) to wait for the first
    /// connection, and to fail if it cannot be made.
    ///
    /// # Errors
    /// [`ConnectError::InvalidUrl`] for a URL that is not `ws://` or
    /// `wss://`, [`ConnectError::InvalidToken`] for a bearer token that cannot
    /// be sent in a header.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(url: &str, config: ClientConfig) -> Result<Self, ConnectError> {
        let config = config.normalized();
        request(url, &config)?;
        Ok(Self::start(url.to_owned(), config, None))
    }

    /// Connects to the hub at `url` and returns the client once connected;
    /// from then on it reconnects by itself, as [`new`](Self::new)'s does.
    ///
    /// # Errors
    /// As [`new`](Self::new), and [`ConnectError::Failed`] when the first
    /// attempt fails (the hub is not there, refused the upgrade, …).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn connect(url: &str, config: ClientConfig) -> Result<Self, ConnectError> {
        let config = config.normalized();
        request(url, &config)?;
        let ws = task::connect(url, &config).await.map_err(ConnectError::Failed)?;
        Ok(Self::start(url.to_owned(), config, Some(ws)))
    }

    fn start(url: String, config: ClientConfig, ws: Option<task::Ws>) -> Self {
        let (queue_tx, queue_rx) = mpsc::channel(config.queue_capacity);
        let initial = if ws.is_some() { ConnectionState::Connected } else { ConnectionState::Connecting };
        let (state_tx, state_rx) = watch::channel(initial);
        let (errors_tx, _) = broadcast::channel(HUB_ERRORS_CAPACITY);
        let (close_tx, close_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            config,
            queue: queue_tx,
            patterns: Mutex::default(),
            patterns_changed: Notify::new(),
            listeners: Arc::default(),
            acked: watch::Sender::new(Acked::default()),
            state: state_rx,
            errors: Mutex::new(Some(errors_tx.clone())),
            close: close_tx,
            unsent: Mutex::default(),
        });
        let task = Task::new(shared.clone(), url, queue_rx, state_tx, errors_tx, close_rx);
        tokio::spawn(task.run(ws));
        Self { handle: Arc::new(Handle { shared }) }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// The client's settings.
    pub fn config(&self) -> &ClientConfig {
        &self.shared().config
    }

    /// Queues `event` to be sent to the hub, and returns at once. Events are
    /// written in the order they were dispatched; while the client is
    /// disconnected they wait (see [Reconnecting](self#reconnecting)).
    ///
    /// # Errors
    /// Hands the event back in [`DispatchError::Full`] when the queue is
    /// full, in [`DispatchError::Closed`] once the client is closed, and in
    /// [`DispatchError::InvalidEvent`] for an empty type or one beginning
    /// with `hub.` (the hub would refuse it).
    pub fn dispatch(&self, event: Event) -> Result<(), DispatchError> {
        if event.event_type().is_empty() {
            return Err(DispatchError::InvalidEvent(event, "the type is empty"));
        }
        if event.event_type().starts_with(RESERVED_PREFIX) {
            return Err(DispatchError::InvalidEvent(event, "types beginning with `hub.` are reserved for the hub"));
        }
        if *self.shared().close.borrow() {
            return Err(DispatchError::Closed(event));
        }
        self.shared().queue.try_send(event).map_err(|e| match e {
            mpsc::error::TrySendError::Full(event) => DispatchError::Full(event),
            mpsc::error::TrySendError::Closed(event) => DispatchError::Closed(event),
        })
    }

    /// A stream of the events from the hub whose topic matches `pattern`
    /// (`type:id`, `type:*` or `*`). The hub is asked for them with
    /// `hub.subscribe` (now, or as soon as the client is connected); see
    /// [`ClientSubscription`] for lag, sharing and when it ends. A stream
    /// made after [`close`](Self::close) ends at once.
    ///
    /// # Errors
    /// When `pattern` is not a valid pattern.
    pub fn subscribe<P>(&self, pattern: P) -> Result<ClientSubscription, PatternError>
    where
        P: TryInto<Pattern, Error = PatternError>,
    {
        let pattern = pattern.try_into()?;
        let shared = &self.handle.shared;
        let inner = shared.listeners.subscribe(pattern.clone(), None, shared.config.subscription_capacity);
        {
            let mut patterns = lock(&shared.patterns);
            let count = patterns.entry(pattern.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                shared.patterns_changed.notify_one();
            }
        }
        Ok(ClientSubscription { inner, hold: PatternHold { shared: shared.clone(), pattern } })
    }

    /// The `hub.error`s the hub sends from now on, as values.
    pub fn hub_errors(&self) -> HubErrors {
        let rx = match &*lock(&self.shared().errors) {
            Some(tx) => tx.subscribe(),
            // Closed: a stream that ends at once.
            None => broadcast::channel(1).1,
        };
        HubErrors { inner: BroadcastStream::new(rx) }
    }

    /// The state the connection is in now.
    pub fn state(&self) -> ConnectionState {
        self.shared().state.borrow().clone()
    }

    /// The connection's state now, then each change, until the client is
    /// closed; see [`ConnectionStates`].
    pub fn states(&self) -> ConnectionStates {
        ConnectionStates { inner: WatchStream::new(self.shared().state.clone()) }
    }

    /// Waits until the client is connected (at once if it is).
    ///
    /// # Errors
    /// [`ClientClosed`] when the client closes first.
    pub async fn connected(&self) -> Result<(), ClientClosed> {
        let mut state = self.shared().state.clone();
        match state.wait_for(|s| matches!(s, ConnectionState::Connected | ConnectionState::Closed)).await {
            Ok(s) if s.is_connected() => Ok(()),
            _ => Err(ClientClosed),
        }
    }

    /// Closes the client: see [Closing](self#closing). Returns the events
    /// that were dispatched but could not be written, in order (empty when
    /// the client was connected and the hub took them all). Calling it again,
    /// or on another clone, waits for the same close and returns nothing more.
    ///
    /// Cancel safe: the close goes on in the background.
    pub async fn close(&self) -> Vec<Event> {
        let shared = self.shared();
        shared.close.send_replace(true);
        let mut state = shared.state.clone();
        let _ = state.wait_for(|s| *s == ConnectionState::Closed).await;
        std::mem::take(&mut *lock(&shared.unsent))
    }
}

/// The upgrade request for `url`, with the token; checks both.
fn request(url: &str, config: &ClientConfig) -> Result<Request, ConnectError> {
    let invalid = |why: String| ConnectError::InvalidUrl { url: url.to_owned(), why };
    let mut request = url.into_client_request().map_err(|e| invalid(e.to_string()))?;
    match request.uri().scheme_str() {
        Some("ws" | "wss") => {}
        _ => return Err(invalid("the scheme must be ws:// or wss://".into())),
    }
    if let Some(token) = &config.bearer_token {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ConnectError::InvalidToken)?;
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    Ok(request)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("state", &self.state()).finish_non_exhaustive()
    }
}
