//! The client's errors, one enum per operation, and [`HubError`], the value
//! a `hub.error` envelope becomes.

use crate::event::Event;
use crate::protocol::ErrorCode;

use super::state::Disconnect;

/// Why [`Client::new`](super::Client::new) or
/// [`Client::connect`](super::Client::connect) gave no client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a `ws://` or `wss://` URL.
    #[error("invalid hub URL {url:?}: {why}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The bearer token cannot stand in an HTTP header (it holds a control
    /// character or a line break).
    #[error("the bearer token is not a valid HTTP header value")]
    InvalidToken,
    /// The first attempt to connect failed ([`Client::connect`](super::Client::connect) only).
    #[error("could not connect: {0}")]
    Failed(Disconnect),
}

/// Why [`Client::dispatch`](super::Client::dispatch) did not take an event.
/// The event comes back inside.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// The queue ([`ClientConfig::queue_capacity`](super::ClientConfig::queue_capacity))
    /// is full: the client has been disconnected for a while, or the hub
    /// takes events more slowly than they are dispatched.
    #[error("the client's queue is full")]
    Full(Event),
    /// The client was closed.
    #[error("the client is closed")]
    Closed(Event),
    /// The event cannot be sent: its type is empty or reserved (`hub.`).
    #[error("invalid event: {1}")]
    InvalidEvent(Event, &'static str),
}

impl DispatchError {
    /// Takes the event back.
    pub fn into_event(self) -> Event {
        match self {
            Self::Full(e) | Self::Closed(e) | Self::InvalidEvent(e, _) => e,
        }
    }

    /// Whether the client is gone for good (as opposed to full for now).
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }
}

/// The client was closed before what was awaited happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the client is closed")]
pub struct ClientClosed;

/// A `hub.error` envelope from the hub: it could not take something this
/// client sent. The connection stays open.
///
/// ```
/// # use wshub::client::HubError;
/// # fn show(error: &HubError) {
/// match error.code() {
///     Some(wshub::ErrorCode::RateLimited) => eprintln!("slow down: {}", error.message()),
///     _ => eprintln!("the hub said {}: {}", error.code_str(), error.message()),
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("hub error {code}: {message}")]
pub struct HubError {
    code: String,
    message: String,
}

impl HubError {
    pub(crate) fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }

    /// The code, where it is one this version knows.
    pub fn code(&self) -> Option<ErrorCode> {
        ErrorCode::from_wire(&self.code)
    }

    /// The code as it came (`invalid_json`, …), known or not.
    pub fn code_str(&self) -> &str {
        &self.code
    }

    /// The hub's explanation (`payload.message`); empty where it gave none.
    pub fn message(&self) -> &str {
        &self.message
    }
}
