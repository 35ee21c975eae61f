//! [`ConnectionState`]: where a client's connection stands, and
//! [`Disconnect`]: why it is down.

use std::fmt;

/// Where a [`Client`](super::Client)'s connection stands, from
/// [`Client::state`](super::Client::state) and
/// [`Client::states`](super::Client::states).
///
/// The states go `Connecting` → `Connected` → `Disconnected` → `Connecting`
/// → …, and end with `Closed` after [`Client::close`](super::Client::close).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// An attempt to connect is under way.
    Connecting,
    /// Connected: the upgrade is done. The client writes its subscriptions
    /// first, then what was queued, then events flow both ways.
    Connected,
    /// Not connected; the client waits out its backoff and tries again.
    Disconnected {
        /// Why the last connection ended, or the last attempt failed.
        reason: Disconnect,
    },
    /// Closed for good: the client will not connect again.
    Closed,
}

impl ConnectionState {
    /// Whether the state is [`Connected`](Self::Connected).
    pub fn is_connected(&self) -> bool {
        matches!(self, Self::Connected)
    }
}

/// Why a client is not connected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disconnect {
    /// The attempt to connect failed: the TCP connection, TLS, or the
    /// upgrade (the text says which), or it took longer than
    /// [`ClientConfig::connect_timeout`](super::ClientConfig::connect_timeout).
    ConnectFailed(String),
    /// The hub answered the upgrade with an HTTP error status: 401 for a
    /// missing or wrong token, 403 for a refused origin, 503 at its
    /// connection limit.
    Rejected {
        /// The HTTP status.
        status: u16,
    },
    /// The hub closed the connection with a close frame (1001: it is
    /// shutting down; 1013: try again later; …).
    Closed {
        /// The close code (1005 where the frame carried none).
        code: u16,
        /// The reason text.
        reason: String,
    },
    /// The connection broke without a close frame.
    ConnectionLost(String),
    /// The hub showed no sign of life, or took no data, within
    /// [`ClientConfig::ping_timeout`](super::ClientConfig::ping_timeout).
    TimedOut,
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConnectFailed(why) => write!(f, "connecting failed: {why}"),
            Self::Rejected { status } => write!(f, "the hub refused the upgrade with HTTP {status}"),
            Self::Closed { code, reason } if reason.is_empty() => write!(f, "the hub closed with {code}"),
            Self::Closed { code, reason } => write!(f, "the hub closed with {code} ({reason})"),
            Self::ConnectionLost(why) => write!(f, "the connection was lost: {why}"),
            Self::TimedOut => f.write_str("the hub showed no sign of life in time"),
        }
    }
}
