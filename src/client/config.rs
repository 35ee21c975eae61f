//! [`ClientConfig`]: every setting of a [`Client`](super::Client), with its default.

use std::fmt;
use std::time::Duration;

use crate::config::FrameKind;

/// The settings of a [`Client`](super::Client). Build it with
/// [`ClientConfig::default`] and the consuming setters:
///
/// ```
/// use std::time::Duration;
/// use wshub::ClientConfig;
///
/// let config = ClientConfig::default()
///     .bearer_token("s3cret")
///     .queue_capacity(64)
///     .backoff(Duration::from_millis(100), Duration::from_secs(5));
/// assert_eq!(config.queue_capacity, 64);
/// // The token never shows in `Debug` output (nor in any log line).
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Sent as `Authorization: Bearer <token>` with every upgrade request.
    /// Default: none.
    pub bearer_token: Option<String>,
    /// How many dispatched events may wait to be written: while the client
    /// is disconnected, and while the socket is slower than the dispatcher.
    /// One more is refused with [`DispatchError::Full`](super::DispatchError::Full),
    /// which hands it back. Besides these, the batch being written when a
    /// connection broke (at most 256 events) is kept to be written again
    /// after the reconnection. Default: 1024.
    pub queue_capacity: usize,
    /// How many events a [`ClientSubscription`](super::ClientSubscription)
    /// holds before it lags. Default: 1024.
    pub subscription_capacity: usize,
    /// The wait before the first reconnection attempt. Each failed attempt
    /// doubles it, up to [`max_backoff`](Self::max_backoff); a connection that
    /// succeeds starts it over. The wait actually taken is drawn at random
    /// between half of it and all of it (jitter), so that many clients of
    /// one restarted hub do not all come back at once. Default: 200 ms.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts (before jitter). Default: 30 s.
    pub max_backoff: Duration,
    /// How long one attempt (TCP, TLS and the HTTP upgrade) may take.
    /// Default: 10 s.
    pub connect_timeout: Duration,
    /// How often the client pings the hub. Default: 20 s.
    pub ping_interval: Duration,
    /// How long the hub may show no sign of life (no frame of any kind,
    /// pongs included) before the client drops the connection and
    /// reconnects. Default: 60 s.
    pub ping_timeout: Duration,
    /// How long [`Client::close`](super::Client::close) waits for the hub's
    /// answering close frame. Default: 2 s.
    pub close_timeout: Duration,
    /// The frame kind events are sent in. Default: [`FrameKind::Text`].
    pub frame_kind: FrameKind,
    /// The largest message the client accepts from the hub, in bytes; a
    /// larger one drops the connection (and the client reconnects).
    /// Default: 16 MiB.
    pub max_message_size: usize,
    /// Certificates trusted for `wss://` in addition to the webpki roots,
    /// for a hub whose certificate a private authority signed: each one PEM
    /// (one or more `CERTIFICATE` blocks) or DER. One that cannot be read
    /// fails every `wss://` attempt with a `TLS setup` error naming it.
    /// Default: none.
    pub root_certificates: Vec<Vec<u8>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            bearer_token: None,
            queue_capacity: 1024,
            subscription_capacity: 1024,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            ping_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(2),
            frame_kind: FrameKind::Text,
            max_message_size: 16 * 1024 * 1024,
            root_certificates: Vec::new(),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "<redacted>"))
            .field("queue_capacity", &self.queue_capacity)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("connect_timeout", &self.connect_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("frame_kind", &self.frame_kind)
            .field("max_message_size", &self.max_message_size)
            .field("root_certificates", &self.root_certificates.len())
            .finish()
    }
}

impl ClientConfig {
    setters! {
        /// Sets [`queue_capacity`](Self::queue_capacity) (at least 1).
        queue_capacity: usize;
        /// Sets [`subscription_capacity`](Self::subscription_capacity) (at least 1).
        subscription_capacity: usize;
        /// Sets [`connect_timeout`](Self::connect_timeout).
        connect_timeout: Duration;
        /// Sets [`close_timeout`](Self::close_timeout).
        close_timeout: Duration;
        /// Sets [`frame_kind`](Self::frame_kind).
        frame_kind: FrameKind;
        /// Sets [`max_message_size`](Self::max_message_size).
        max_message_size: usize;
    }

    /// Sets [`bearer_token`](Self::bearer_token).
    #[must_use]
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// Adds a certificate (PEM or DER) to
    /// [`root_certificates`](Self::root_certificates).
    #[must_use]
    pub fn add_root_certificate(mut self, certificate: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(certificate.into());
        self
    }

    /// Sets [`initial_backoff`](Self::initial_backoff) and
    /// [`max_backoff`](Self::max_backoff).
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets [`ping_interval`](Self::ping_interval) and
    /// [`ping_timeout`](Self::ping_timeout).
    #[must_use]
    pub fn ping(mut self, interval: Duration, timeout: Duration) -> Self {
        self.ping_interval = interval;
        self.ping_timeout = timeout;
        self
    }

    /// The same settings with every capacity at least 1, the backoff at
    /// least 1 ms and no more than its maximum, and the ping timeout at
    /// least one interval.
    pub(crate) fn normalized(mut self) -> Self {
        self.queue_capacity = self.queue_capacity.max(1);
        self.subscription_capacity = self.subscription_capacity.max(1);
        self.initial_backoff = self.initial_backoff.max(Duration::from_millis(1));
        self.max_backoff = self.max_backoff.max(self.initial_backoff);
        self.ping_interval = self.ping_interval.max(Duration::from_millis(1));
        self.ping_timeout = self.ping_timeout.max(self.ping_interval);
        self
    }
}
