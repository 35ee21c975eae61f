//! [`Hub`]: fan-out to every spoke, and streams of what every spoke sends.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::WebSocketStream;

use crate::bridge::Link;
use crate::config::{FrameKind, HubConfig};
use crate::connection::Connection;
use crate::error::SendError;
use crate::event::{Event, encode_into};
use crate::park::Flushers;
use crate::pattern::{Pattern, PatternError};
use crate::protocol::RESERVED_PREFIX;
use crate::routes::Routes;
use crate::spoke::{DisconnectReason, Spoke, SpokeId, SpokeShared};
use crate::stats::{HubStats, Stats};
use crate::subscription::{Listeners, Subscription};

type ConnectionHook = Arc<dyn Fn(&Spoke) + Send + Sync>;
type DisconnectionHook = Arc<dyn Fn(&Spoke, &DisconnectReason) + Send + Sync>;

/// A WebSocket pub/sub hub.
///
/// A `Hub` is a cheap handle (an `Arc` inside): clone it into every task
/// that dispatches or subscribes.
///
/// - [`dispatch`](Self::dispatch) fans an event out to every connected
///   spoke. The envelope is serialized **once**; one
///   `tokio::sync::broadcast` channel carries the shared bytes to every
///   connection. A spoke with nothing else to write is *parked*: its
///   receiver is read by a flusher (one per worker thread), which writes a
///   dispatch to every parked spoke in one pass without waking their tasks,
///   and hands a spoke back to its task when its socket does not take
///   everything at once. A spoke that sent `hub.subscribe` leaves that
///   channel for a queue of its own, which the dispatch fills only with
///   what its patterns match: an event that k of N subscribed spokes want
///   wakes k tasks, not N.
/// - [`subscribe`](Self::subscribe) merges what every spoke sends into a
///   [`Subscription`] stream filtered by topic pattern.
/// - [`accept`](Self::accept) takes a connection whose HTTP upgrade is done;
///   [`serve`](Self::serve) accepts TCP connections and upgrades them itself.
///
/// ```no_run
/// use futures::StreamExt;
/// use wshub::{Event, Hub, HubConfig};
///
/// # async fn run() -> std::io::Result<()> {
/// let hub = Hub::new(HubConfig::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// tokio::spawn(hub.clone().serve(listener).into_future());
///
/// let mut messages = hub.subscribe("chat.message:*").expect("a valid pattern");
/// while let Some(Ok(event)) = messages.next().await {
///     // Answer everyone.
///     let _ = hub.dispatch(Event::new("chat.echo", event.id(), event.payload().clone()));
/// }
/// # Ok(()) }
/// ```
///
/// ## Backpressure
/// The hub never waits for a spoke. A dispatched event is held (once, shared)
/// until every spoke has been written it or skipped past it; a spoke more
/// than [`HubConfig::broadcast_capacity`] events behind (on the channel, or
/// in its own queue once it subscribed) has *lagged*, and
/// [`HubConfig::slow_spoke_policy`] applies: by default it is closed with
/// 1013; under [`SlowSpokePolicy::Skip`](crate::SlowSpokePolicy::Skip) it
/// skips ahead and receives `hub.lagged` with the number it missed. A spoke
/// whose socket takes longer than [`HubConfig::write_timeout`] to accept one
/// batch is closed with 1013 too (a parked spoke whose socket is full is
/// handed back to its task first, which waits for it that long). Either way it is counted in
/// [`HubStats::lagged`] and logged. So a stalled spoke costs at most
/// `broadcast_capacity` shared envelopes plus its own write buffer, and the
/// other spokes neither wait nor lose anything.
///
/// Each spoke is written in batches: its task, or its flusher while it is
/// parked, takes every frame already waiting for it and writes them in one
/// (vectored) write.
///
/// ## Closing
/// Every spoke that goes away, by a close frame, a dropped TCP connection, a
/// heartbeat timeout or the hub's own close, is removed from
/// [`spokes`](Self::spokes) and the disconnection hooks run exactly once, with
/// a [`DisconnectReason`]. [`shutdown`](Self::shutdown) flushes what was
/// queued for each spoke, closes it with 1001, and ends every
/// [`Subscription`].
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

pub(crate) struct HubInner {
    pub(crate) config: HubConfig,
    /// Every spoke that never subscribed reads dispatched events here.
    pub(crate) events: broadcast::Sender<Arc<Outgoing>>,
    /// The spokes that subscribed, found by topic (`crate::routes`).
    pub(crate) routes: Routes,
    /// Write for the spokes that are parked (`crate::park`).
    pub(crate) flushers: Flushers,
    pub(crate) spokes: Mutex<HashMap<SpokeId, Spoke>>,
    /// The number of connected spokes, watched by `shutdown`.
    pub(crate) count: watch::Sender<usize>,
    pub(crate) listeners: Arc<Listeners>,
    pub(crate) stats: Stats,
    /// `Some(deadline)` once the hub is shutting down.
    pub(crate) shutdown: watch::Sender<Option<Instant>>,
    next_id: AtomicU64,
    on_connection: RwLock<Vec<ConnectionHook>>,
    on_disconnection: RwLock<Vec<DisconnectionHook>>,
    /// The bridge to other hubs, if any (`crate::bridge`).
    pub(crate) bridge: Option<Link>,
    /// Turns taken by the connection tasks, for the tests of parking.
    #[cfg(test)]
    pub(crate) turns: AtomicU64,
}

/// One encoded envelope, shared by every connection that sends it.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// `type:id`.
    pub(crate) topic: Box<str>,
    /// The length of `type` in `topic`.
    pub(crate) type_len: usize,
    /// The spoke the event came from, when relayed.
    pub(crate) origin: Option<SpokeId>,
    pub(crate) frame: Frame,
}

impl Outgoing {
    pub(crate) fn encode(event: &Event, origin: Option<SpokeId>, kind: FrameKind) -> Result<Self, &'static str> {
        if event.event_type().is_empty() {
            return Err("the type is empty");
        }
        if event.event_type().starts_with(RESERVED_PREFIX) {
            return Err("types beginning with `hub.` are reserved for the hub");
        }
        let frame = Frame::build(kind, |buf| encode_into(buf, event.event_type(), event.id(), event.payload()));
        Ok(Self { topic: event.topic().into(), type_len: event.event_type().len(), origin, frame })
    }

    /// A control envelope from the hub (`hub.lagged`, …).
    pub(crate) fn control(text: &str, kind: FrameKind) -> Frame {
        Frame::build(kind, |buf| buf.extend_from_slice(text.as_bytes()))
    }

    pub(crate) fn event_type(&self) -> &str {
        &self.topic[..self.type_len]
    }
}

/// The longest header of an unmasked WebSocket frame: two bytes, then a
/// 64-bit length.
const MAX_HEADER: usize = 10;

/// A whole WebSocket frame from the hub, header and payload, built once and
/// written as it is to every spoke: frames from a server are not masked, so
/// the bytes are the same for all of them.
pub(crate) struct Frame {
    /// The header ends at `MAX_HEADER`; it starts at `start`.
    bytes: Vec<u8>,
    start: usize,
}

impl Frame {
    /// A final frame of `kind` whose payload `payload` appends.
    fn build(kind: FrameKind, payload: impl FnOnce(&mut Vec<u8>)) -> Self {
        let mut bytes = Vec::with_capacity(MAX_HEADER + 128);
        bytes.resize(MAX_HEADER, 0);
        payload(&mut bytes);
        let len = bytes.len() - MAX_HEADER;
        let opcode = match kind {
            FrameKind::Binary => 0x2,
            _ => 0x1,
        };
        let mut header = [0u8; MAX_HEADER];
        header[0] = 0x80 | opcode; // FIN
        let header_len = if len < 126 {
            header[1] = len as u8;
            2
        } else if let Ok(len) = u16::try_from(len) {
            header[1] = 126;
            header[2..4].copy_from_slice(&len.to_be_bytes());
            4
        } else {
            header[1] = 127;
            header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        };
        let start = MAX_HEADER - header_len;
        bytes[start..MAX_HEADER].copy_from_slice(&header[..header_len]);
        Self { bytes, start }
    }

    /// The frame as it goes on the wire.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// The payload: the envelope's JSON.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.bytes[MAX_HEADER..]
    }

    /// The length of the payload (the envelope's JSON).
    pub(crate) fn payload_len(&self) -> usize {
        self.bytes.len() - MAX_HEADER
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame").field("len", &self.as_bytes().len()).finish()
    }
}

impl Hub {
    /// A hub with these settings. Nothing runs until spokes are
    /// [accepted](Self::accept) or [served](Self::serve).
    pub fn new(config: HubConfig) -> Self {
        Self::build(config, None)
    }

    pub(crate) fn build(config: HubConfig, bridge: Option<Link>) -> Self {
        let config = config.normalized();
        let (events, _) = broadcast::channel(config.broadcast_capacity);
        let inner = Arc::new(HubInner {
            config,
            events,
            routes: Routes::default(),
            flushers: Flushers::default(),
            spokes: Mutex::default(),
            count: watch::Sender::new(0),
            listeners: Arc::default(),
            stats: Stats::default(),
            shutdown: watch::Sender::new(None),
            next_id: AtomicU64::new(1),
            on_connection: RwLock::default(),
            on_disconnection: RwLock::default(),
            bridge,
            #[cfg(test)]
            turns: AtomicU64::new(0),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            inner.flushers.start(&inner);
        }
        Self { inner }
    }

    /// The hub's settings.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Sends `event` to every connected spoke whose subscriptions match it
    /// (a spoke that never sent `hub.subscribe` receives everything).
    ///
    /// The envelope is encoded once here; every spoke's write shares the
    /// bytes. Returns the number of spokes the event was queued for: every
    /// spoke that never subscribed, and each subscribed spoke one of whose
    /// patterns matches. It never waits: see [Backpressure](Self#backpressure).
    ///
    /// # Errors
    /// Hands the event back in [`SendError::InvalidEvent`] for an empty type
    /// or one beginning with `hub.`, and in [`SendError::Closed`] once the hub
    /// is shutting down.
    pub fn dispatch(&self, event: Event) -> Result<usize, SendError> {
        if self.is_shutting_down() {
            return Err(SendError::Closed(event));
        }
        match Outgoing::encode(&event, None, self.inner.config.frame_kind) {
            Ok(out) => {
                if let Some(bridge) = &self.inner.bridge {
                    bridge.publish_dispatch(&out);
                }
                Ok(self.inner.broadcast(out))
            }
            Err(why) => Err(SendError::InvalidEvent(event, why)),
        }
    }

    /// A stream of the events any spoke sends whose topic matches `pattern`
    /// (`type:id`, `type:*` or `*`), each with its [`origin`](Event::origin).
    /// Dropping the stream unsubscribes. See [`Subscription`] for when it lags
    /// and when it ends.
    ///
    /// # Errors
    /// When `pattern` is not a valid pattern.
    pub fn subscribe<P>(&self, pattern: P) -> Result<Subscription, PatternError>
    where
        P: TryInto<Pattern, Error = PatternError>,
    {
        let pattern = pattern.try_into()?;
        Ok(self.inner.listeners.subscribe(pattern, None, self.inner.config.subscription_capacity))
    }

    /// Takes a WebSocket whose HTTP upgrade is done and serves it as a
    /// spoke, in a task of its own; returns the spoke's handle. The
    /// connection hooks have run when this returns.
    ///
    /// Build the stream with [`HubConfig::websocket_config`], so that the
    /// hub's size limits hold for it, and set `TCP_NODELAY` on its socket.
    /// It must be the server's side of the connection (`Role::Server`, as
    /// `accept_async` and axum make it): the hub writes each event's frame,
    /// built once for every spoke, unmasked, as a server's frames are.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn accept<S>(&self, ws: WebSocketStream<S>) -> Spoke
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.accept_inner(ws, None)
    }

    /// [`accept`](Self::accept), for a peer whose address is known.
    pub fn accept_from<S>(&self, ws: WebSocketStream<S>, remote_addr: SocketAddr) -> Spoke
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.accept_inner(ws, Some(remote_addr))
    }

    fn accept_inner<S>(&self, ws: WebSocketStream<S>, remote_addr: Option<SocketAddr>) -> Spoke
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let inner = &self.inner;
        let config = &inner.config;
        let id = SpokeId(inner.next_id.fetch_add(1, Ordering::Relaxed));
        let spoke = Spoke {
            shared: Arc::new(SpokeShared {
                id,
                remote_addr,
                connected_at: SystemTime::now(),
                answers: Mutex::default(),
                answers_capacity: config.spoke_queue_capacity,
                routed: std::sync::OnceLock::new(),
                missed: AtomicU64::new(0),
                close: Mutex::new(None),
                attention: tokio::sync::Notify::new(),
                patterns: Mutex::new(None),
                listeners: inner.listeners.clone(),
                policy: config.slow_spoke_policy,
                subscription_capacity: config.subscription_capacity,
                frame_kind: config.frame_kind,
            }),
        };
        // Subscribe before the spoke is visible, so that every dispatch after
        // `accept` returns reaches it.
        let events = inner.events.subscribe();
        {
            let mut spokes = inner.spokes.lock().unwrap_or_else(|e| e.into_inner());
            spokes.insert(id, spoke.clone());
            inner.count.send_replace(spokes.len());
        }
        inner.stats.connections_total.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(spoke = %id, ?remote_addr, "spoke connected");
        // Cloned out of the lock, so that a hook may add hooks.
        let hooks = read(&inner.on_connection).clone();
        for hook in &hooks {
            hook(&spoke);
        }
        let connection = Connection::new(inner.clone(), spoke.clone(), ws, events);
        tokio::spawn(connection.run());
        spoke
    }

    /// Closes one spoke with 1008 ("revoked"), after what is already queued
    /// for it; its disconnection reason is [`DisconnectReason::Revoked`].
    /// Returns whether the spoke was connected.
    pub fn revoke(&self, id: SpokeId) -> bool {
        match self.spoke(id) {
            Some(spoke) => {
                spoke.request_close(DisconnectReason::Revoked);
                true
            }
            None => false,
        }
    }

    /// Runs `hook` for every spoke accepted from now on, before its first
    /// message is read. Hooks run in the order they were added.
    pub fn on_connection<F>(&self, hook: F)
    where
        F: Fn(&Spoke) + Send + Sync + 'static,
    {
        self.inner.on_connection.write().unwrap_or_else(|e| e.into_inner()).push(Arc::new(hook));
    }

    /// Runs `hook` exactly once for every spoke that goes away from now on,
    /// with the reason, after it has left [`spokes`](Self::spokes).
    pub fn on_disconnection<F>(&self, hook: F)
    where
        F: Fn(&Spoke, &DisconnectReason) + Send + Sync + 'static,
    {
        self.inner.on_disconnection.write().unwrap_or_else(|e| e.into_inner()).push(Arc::new(hook));
    }

    /// The spokes connected now, in the order they connected.
    pub fn spokes(&self) -> Vec<Spoke> {
        let mut spokes: Vec<Spoke> = lock(&self.inner.spokes).values().cloned().collect();
        spokes.sort_by_key(Spoke::id);
        spokes
    }

    /// One connected spoke, by id.
    pub fn spoke(&self, id: SpokeId) -> Option<Spoke> {
        lock(&self.inner.spokes).get(&id).cloned()
    }

    /// How many spokes are connected now.
    pub fn spoke_count(&self) -> usize {
        *self.inner.count.borrow()
    }

    /// A snapshot of the hub's counters.
    pub fn stats(&self) -> HubStats {
        self.inner.stats.snapshot(self.spoke_count() as u64)
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.borrow().is_some()
    }

    /// Shuts the hub down: every spoke receives what was already queued for
    /// it, then a close frame with 1001; every [`Subscription`] ends; later
    /// dispatches fail with [`SendError::Closed`] and [`serve`](Self::serve)
    /// stops accepting. A spoke that cannot take its queue within
    /// [`HubConfig::shutdown_timeout`] is closed then, and dropped within one
    /// more [`HubConfig::close_timeout`]. Returns once every spoke is gone.
    ///
    /// Calling it again waits again; it is cancel safe (the shutdown goes on).
    pub async fn shutdown(&self) {
        let config = &self.inner.config;
        let deadline = Instant::now() + config.shutdown_timeout;
        self.inner.shutdown.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = Some(deadline);
                true
            } else {
                false
            }
        });
        // Every task looks at the shutdown at its next turn; this wakes the
        // idle ones. A spoke accepted after this sees it at its first turn.
        for spoke in lock(&self.inner.spokes).values() {
            spoke.shared.attention.notify_one();
        }
        self.inner.listeners.close();
        if let Some(bridge) = &self.inner.bridge {
            bridge.close();
        }
        // Every connection task is done by the deadline plus one close
        // timeout; the extra second is a safety net, not a wait.
        let mut count = self.inner.count.subscribe();
        let limit = config.shutdown_timeout + config.close_timeout + Duration::from_secs(1);
        let _ = tokio::time::timeout(limit, count.wait_for(|n| *n == 0)).await;
    }

    pub(crate) fn inner(&self) -> &Arc<HubInner> {
        &self.inner
    }
}

impl HubInner {
    /// Counts one dispatch of this hub's own and fans it out.
    pub(crate) fn broadcast(&self, out: Outgoing) -> usize {
        self.stats.dispatched.fetch_add(1, Ordering::Relaxed);
        self.fan_out(out)
    }

    /// Hands one encoded envelope to every spoke that never subscribed and
    /// to every subscribed spoke it matches; returns how many.
    pub(crate) fn fan_out(&self, out: Outgoing) -> usize {
        let reached = self.routes.send(&self.events, out, self.config.echo, &self.stats);
        self.flushers.wake();
        reached
    }

    /// Called once for every spoke whose task has ended.
    pub(crate) fn remove(&self, spoke: &Spoke, reason: &DisconnectReason) {
        // Out of the routes before it is out of the count, so that a dispatch
        // after the count fell does not count it.
        self.routes.remove(spoke.id());
        // Before its listeners go: a `Spoke::subscribe` that comes after
        // them sees the spoke gone, and ends its stream itself.
        spoke.shared.close_answers();
        {
            let mut spokes = lock(&self.spokes);
            spokes.remove(&spoke.id());
            self.count.send_replace(spokes.len());
        }
        self.listeners.remove_origin(spoke.id());
        tracing::debug!(spoke = %spoke.id(), ?reason, "spoke disconnected");
        let hooks = read(&self.on_disconnection).clone();
        for hook in &hooks {
            hook(spoke, reason);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("spokes", &self.spoke_count())
            .field("shutting_down", &self.is_shutting_down())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    use super::*;

    /// A frame built once at dispatch has the bytes tungstenite would write,
    /// for every length encoding.
    #[test]
    fn frames_are_what_tungstenite_writes() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 100_000] {
            let payload = "x".repeat(len);
            for (kind, data) in [(FrameKind::Text, Data::Text), (FrameKind::Binary, Data::Binary)] {
                let ours = Outgoing::control(&payload, kind);
                let mut theirs = Vec::new();
                WsFrame::message(payload.clone(), OpCode::Data(data), true).format(&mut theirs).unwrap();
                assert_eq!(ours.as_bytes(), &theirs[..], "length {len}, {kind:?}");
                assert_eq!(ours.payload_len(), len);
            }
        }
    }
}
