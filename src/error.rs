//! Errors, one enum per operation; every failed send hands the event back.

use crate::event::Event;

/// Why an event could not be sent. The event comes back inside.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The spoke has disconnected, or the hub has shut down.
    #[error("the spoke or hub is closed")]
    Closed(Event),
    /// The spoke's queue is full: it is not keeping up.
    #[error("the spoke's queue is full")]
    Full(Event),
    /// The event cannot be sent: its type is empty or reserved (`hub.`).
    #[error("invalid event: {1}")]
    InvalidEvent(Event, &'static str),
}

impl SendError {
    /// Takes the event back.
    pub fn into_event(self) -> Event {
        match self {
            Self::Closed(e) | Self::Full(e) | Self::InvalidEvent(e, _) => e,
        }
    }

    /// Whether the receiver is gone for good.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }
}
