//! The client's named streams: [`ClientSubscription`], [`ConnectionStates`]
//! and [`HubErrors`].

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};

use crate::event::Event;
use crate::pattern::Pattern;
use crate::subscription::{Lagged, Subscription};

use super::error::{ClientClosed, HubError};
use super::state::ConnectionState;
use super::{Shared, lock};

/// The events from the hub whose topic matches a pattern, from
/// [`Client::subscribe`](super::Client::subscribe).
///
/// Each item is an [`Event`], or a [`Lagged`] in the place where events went
/// missing: this stream was full (it holds
/// [`ClientConfig::subscription_capacity`](super::ClientConfig::subscription_capacity)
/// events), or the hub skipped events for this client (`hub.lagged`; the
/// count is then what the hub skipped for the whole connection, not all of
/// which need have matched this pattern).
///
/// While it lives, the hub is asked (`hub.subscribe`) to send this client
/// the events that match, after every reconnection too; the events are also
/// filtered here, so a hub that ignores `hub.subscribe` sends more but this
/// stream shows the same. Dropping the last stream of a pattern sends
/// `hub.unsubscribe`.
///
/// It ends (yields `None`) once the client is closed, after the events it
/// already holds. It does not end when the connection drops: it goes on
/// after the client reconnects.
pub struct ClientSubscription {
    pub(super) inner: Subscription,
    pub(super) hold: PatternHold,
}

impl ClientSubscription {
    /// The pattern this stream filters by.
    pub fn pattern(&self) -> &Pattern {
        self.inner.pattern()
    }

    /// Receives the next item; `None` once the stream has ended.
    ///
    /// Cancel safe: in `tokio::select!`, an item is never lost when another
    /// branch wins.
    pub async fn recv(&mut self) -> Option<Result<Event, Lagged>> {
        self.inner.recv().await
    }

    /// Waits until the hub has acknowledged this pattern (`hub.subscribed`)
    /// on the current connection: every event dispatched on the hub after
    /// that is filtered by it. After a reconnection it waits for the new
    /// acknowledgement.
    ///
    /// A hub that does not know control envelopes never acknowledges: bound
    /// the wait with a timeout there.
    ///
    /// # Errors
    /// [`ClientClosed`] when the client closes first.
    pub async fn acknowledged(&self) -> Result<(), ClientClosed> {
        let mut acked = self.hold.shared.acked.subscribe();
        let pattern = self.pattern().as_str();
        match acked.wait_for(|a| a.closed || a.patterns.contains(pattern)).await {
            Ok(a) if !a.closed => Ok(()),
            _ => Err(ClientClosed),
        }
    }
}

impl Stream for ClientSubscription {
    type Item = Result<Event, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl fmt::Debug for ClientSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSubscription").field("pattern", self.pattern()).finish_non_exhaustive()
    }
}

/// Counts the live streams of one pattern; the last one to go tells the
/// connection task to send `hub.unsubscribe`.
pub(super) struct PatternHold {
    pub(super) shared: Arc<Shared>,
    pub(super) pattern: Pattern,
}

impl Drop for PatternHold {
    fn drop(&mut self) {
        let mut patterns = lock(&self.shared.patterns);
        if let Some(count) = patterns.get_mut(&self.pattern) {
            *count -= 1;
            if *count == 0 {
                patterns.remove(&self.pattern);
                self.shared.patterns_changed.notify_one();
            }
        }
    }
}

/// The client's [`ConnectionState`], from
/// [`Client::states`](super::Client::states): first the state it is in now,
/// then each change.
///
/// Like a `tokio::sync::watch` receiver, a reader slower than the changes
/// sees the latest state, not every one in between. It ends after
/// [`ConnectionState::Closed`].
pub struct ConnectionStates {
    pub(super) inner: WatchStream<ConnectionState>,
}

impl Stream for ConnectionStates {
    type Item = ConnectionState;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ConnectionState>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl fmt::Debug for ConnectionStates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionStates").finish_non_exhaustive()
    }
}

/// The `hub.error`s the hub sends this client, from
/// [`Client::hub_errors`](super::Client::hub_errors), from the moment the
/// stream was made.
///
/// It holds [`HUB_ERRORS_CAPACITY`](super::HUB_ERRORS_CAPACITY) errors; a
/// reader further behind gets `Err(Lagged { missed })` in their place. It
/// ends when the client is closed.
pub struct HubErrors {
    pub(super) inner: BroadcastStream<HubError>,
}

impl Stream for HubErrors {
    type Item = Result<HubError, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|item| item.map(|r| r.map_err(|BroadcastStreamRecvError::Lagged(missed)| Lagged { missed })))
    }
}

impl fmt::Debug for HubErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubErrors").finish_non_exhaustive()
    }
}
