//! [`HubConfig`]: every setting of a hub, with its default.

use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::bridge::Scope;
use crate::rate::RateLimit;

/// What the hub does with a spoke that falls further behind than the
/// broadcast capacity (or its own queue) allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowSpokePolicy {
    /// Close the spoke with code 1013 ("try again later"). The default: a
    /// spoke either sees every event or knows, by the close, that it did not.
    #[default]
    Disconnect,
    /// Skip the spoke ahead to the oldest event still held and send it a
    /// `hub.lagged` envelope with the number of events it missed.
    Skip,
}

/// The kind of WebSocket frame the hub sends events in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameKind {
    /// Text frames (the default, what the original TypeScript spokes expect).
    #[default]
    Text,
    /// Binary frames holding the same UTF-8 JSON.
    Binary,
}

/// The settings of a [`Hub`](crate::Hub). Build it with [`HubConfig::default`]
/// and the consuming setters:
///
/// ```
/// use std::time::Duration;
/// use wshub::{HubConfig, SlowSpokePolicy};
///
/// let config = HubConfig::default()
///     .broadcast_capacity(4096)
///     .slow_spoke_policy(SlowSpokePolicy::Skip)
///     .heartbeat(Duration::from_secs(10), Duration::from_secs(30));
/// assert_eq!(config.broadcast_capacity, 4096);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HubConfig {
    /// How many dispatched events the broadcast channel holds for the slowest
    /// spoke, and the queue of a spoke that subscribed holds for it. A spoke
    /// further behind than this has lagged, and
    /// [`slow_spoke_policy`](Self::slow_spoke_policy) applies. Memory: this
    /// many shared encoded envelopes at most on the channel, whatever the
    /// number of spokes, and as many references to them in each queue.
    /// Default: 1024.
    pub broadcast_capacity: usize,
    /// How many events sent to one spoke alone ([`Spoke::dispatch`](crate::Spoke::dispatch))
    /// may wait for it. Default: 256.
    pub spoke_queue_capacity: usize,
    /// What happens to a spoke that lags. Default: [`SlowSpokePolicy::Disconnect`].
    pub slow_spoke_policy: SlowSpokePolicy,
    /// How long one batch of writes to a spoke may take before the spoke is
    /// judged too slow and closed with 1013. Default: 10 s.
    pub write_timeout: Duration,
    /// The largest message a spoke may send, in bytes, all fragments
    /// together; a message of exactly this size is accepted, a larger one
    /// closes the spoke with 1009. Default: 64 KiB.
    pub max_message_size: usize,
    /// How often the hub pings every spoke. Default: 20 s.
    pub heartbeat_interval: Duration,
    /// How long a spoke may show no sign of life (no frame of any kind,
    /// pongs included) before the hub closes it with 1008. Default: 60 s.
    pub heartbeat_timeout: Duration,
    /// How long [`Hub::shutdown`](crate::Hub::shutdown) waits for spokes to
    /// be flushed and closed before it drops the rest. Default: 5 s.
    pub shutdown_timeout: Duration,
    /// How long the hub waits for a spoke's close frame after sending its
    /// own, before dropping the TCP connection. Default: 2 s.
    pub close_timeout: Duration,
    /// How long [`Hub::serve`](crate::Hub::serve) allows for the HTTP
    /// upgrade of a new connection. Default: 10 s.
    pub handshake_timeout: Duration,
    /// Whether an event from a spoke is also dispatched to the other
    /// spokes (see the wire protocol's "Relaying"). Default: `false` in the
    /// library; the `wshub` server turns it on.
    pub relay: bool,
    /// With [`relay`](Self::relay), whether the sender receives its own
    /// event too (if its subscriptions match). Default: `false`.
    pub echo: bool,
    /// The frame kind events are sent in. Default: [`FrameKind::Text`].
    pub frame_kind: FrameKind,
    /// How many events a [`Subscription`](crate::Subscription) holds before
    /// it lags. Default: 1024.
    pub subscription_capacity: usize,
    /// How many messages each spoke may send; `None` for no limit. Default:
    /// `None` (the `wshub` server's `--rate-limit` sets one).
    pub rate_limit: Option<RateLimit>,
    /// How many patterns one spoke may hold with `hub.subscribe`; one more
    /// is answered with `hub.error` `forbidden`. Default: 64.
    pub max_subscriptions_per_spoke: usize,
    /// The longest pattern a spoke may send, in bytes; a longer one is
    /// answered with `hub.error` `invalid_pattern`. Default: 256.
    pub max_pattern_length: usize,
    /// The size of each connection's read buffer, in bytes. Default: 2 KiB
    /// (tungstenite's own default, 128 KiB, is costly for many spokes).
    pub read_buffer_size: usize,
    /// How many bytes of frames a connection copies into its batch before it
    /// writes the batch to the socket. Frames of 1 KiB and more are not
    /// copied where the socket takes vectored writes (TCP does): the batch
    /// refers to the frame every spoke shares, and one write takes up to 64
    /// frames or 256 KiB. Default: 16 KiB.
    pub write_buffer_size: usize,
    /// With a [bridge](crate::bridge), whether [`Hub::subscribe`](crate::Hub::subscribe)
    /// streams also see what spokes send to the other hubs. Default:
    /// [`Scope::Local`].
    pub subscribe_scope: Scope,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            broadcast_capacity: 1024,
            spoke_queue_capacity: 256,
            slow_spoke_policy: SlowSpokePolicy::Disconnect,
            write_timeout: Duration::from_secs(10),
            max_message_size: 64 * 1024,
            heartbeat_interval: Duration::from_secs(20),
            heartbeat_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(5),
            close_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(10),
            relay: false,
            echo: false,
            frame_kind: FrameKind::Text,
            subscription_capacity: 1024,
            rate_limit: None,
            max_subscriptions_per_spoke: 64,
            max_pattern_length: 256,
            read_buffer_size: 2 * 1024,
            write_buffer_size: 16 * 1024,
            subscribe_scope: Scope::Local,
        }
    }
}

impl HubConfig {
    setters! {
        /// Sets [`broadcast_capacity`](Self::broadcast_capacity) (at least 1).
        broadcast_capacity: usize;
        /// Sets [`spoke_queue_capacity`](Self::spoke_queue_capacity) (at least 1).
        spoke_queue_capacity: usize;
        /// Sets [`slow_spoke_policy`](Self::slow_spoke_policy).
        slow_spoke_policy: SlowSpokePolicy;
        /// Sets [`write_timeout`](Self::write_timeout).
        write_timeout: Duration;
        /// Sets [`max_message_size`](Self::max_message_size).
        max_message_size: usize;
        /// Sets [`shutdown_timeout`](Self::shutdown_timeout).
        shutdown_timeout: Duration;
        /// Sets [`close_timeout`](Self::close_timeout).
        close_timeout: Duration;
        /// Sets [`handshake_timeout`](Self::handshake_timeout).
        handshake_timeout: Duration;
        /// Sets [`relay`](Self::relay).
        relay: bool;
        /// Sets [`echo`](Self::echo).
        echo: bool;
        /// Sets [`frame_kind`](Self::frame_kind).
        frame_kind: FrameKind;
        /// Sets [`subscription_capacity`](Self::subscription_capacity) (at least 1).
        subscription_capacity: usize;
        /// Sets [`rate_limit`](Self::rate_limit).
        rate_limit: Option<RateLimit>;
        /// Sets [`max_subscriptions_per_spoke`](Self::max_subscriptions_per_spoke).
        max_subscriptions_per_spoke: usize;
        /// Sets [`max_pattern_length`](Self::max_pattern_length).
        max_pattern_length: usize;
        /// Sets [`read_buffer_size`](Self::read_buffer_size).
        read_buffer_size: usize;
        /// Sets [`write_buffer_size`](Self::write_buffer_size).
        write_buffer_size: usize;
        /// Sets [`subscribe_scope`](Self::subscribe_scope).
        subscribe_scope: Scope;
    }

    /// Sets [`heartbeat_interval`](Self::heartbeat_interval) and
    /// [`heartbeat_timeout`](Self::heartbeat_timeout).
    #[must_use]
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.heartbeat_interval = interval;
        self.heartbeat_timeout = timeout;
        self
    }

    /// The tungstenite settings a connection handed to
    /// [`Hub::accept`](crate::Hub::accept) should be built with, so that the
    /// hub's size limits and buffer sizes hold for it.
    /// [`Hub::serve`](crate::Hub::serve) and the axum integration use it
    /// themselves.
    pub fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            // Backpressure beyond one batch: a frame that would grow the
            // buffer past this waits for the socket (tungstenite requires it
            // to be larger than `write_buffer_size`).
            .max_write_buffer_size(self.write_buffer_size + self.max_message_size.max(64 * 1024) * 4)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size))
    }

    /// The same settings with every capacity at least 1 and the heartbeat
    /// timeout at least one interval.
    pub(crate) fn normalized(mut self) -> Self {
        self.broadcast_capacity = self.broadcast_capacity.max(1);
        self.spoke_queue_capacity = self.spoke_queue_capacity.max(1);
        self.subscription_capacity = self.subscription_capacity.max(1);
        self.heartbeat_interval = self.heartbeat_interval.max(Duration::from_millis(1));
        self.heartbeat_timeout = self.heartbeat_timeout.max(self.heartbeat_interval);
        self
    }
}
