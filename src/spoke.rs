//! [`Spoke`]: the hub's handle to one connected spoke.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use tokio::sync::{Notify, mpsc};

use crate::config::SlowSpokePolicy;
use crate::error::SendError;
use crate::event::Event;
use crate::hub::Outgoing;
use crate::pattern::{Pattern, PatternError};
use crate::protocol::close_code;
use crate::subscription::{Listeners, Subscription};

/// The id the hub gives a spoke when it connects: unique within one hub
/// for its lifetime.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpokeId(pub(crate) u64);

impl SpokeId {
    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for SpokeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpokeId({})", self.0)
    }
}

impl fmt::Display for SpokeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Why a spoke went away, as the disconnection hook hears it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The spoke closed the connection with a close frame.
    Closed {
        /// The close code it sent (1005 where it sent none).
        code: u16,
        /// The reason text it sent.
        reason: String,
    },
    /// The TCP connection ended without a close frame (reset, or EOF).
    ConnectionLost,
    /// No sign of life within the heartbeat timeout; closed with 1008.
    HeartbeatTimeout,
    /// The spoke fell behind its bounds under
    /// [`SlowSpokePolicy::Disconnect`], or a write to it took longer than
    /// the write timeout; closed with 1013.
    TooSlow,
    /// A message over the maximum size; closed with 1009.
    MessageTooBig,
    /// A text frame that was not UTF-8; closed with 1007.
    InvalidUtf8,
    /// A frame RFC 6455 forbids; closed with 1002.
    ProtocolError,
    /// [`Spoke::close`] was called.
    ClosedByHub {
        /// The close code sent.
        code: u16,
        /// The reason sent.
        reason: String,
    },
    /// The spoke sent over its rate limit too many times in a row; closed
    /// with 1008.
    RateLimited,
    /// [`Hub::revoke`](crate::Hub::revoke) was called; closed with 1008.
    Revoked,
    /// The hub shut down; closed with 1001.
    Shutdown,
    /// Something failed inside the hub; closed with 1011 where possible.
    Internal(String),
}

impl DisconnectReason {
    /// The close code the hub sent for this reason, if it started the close.
    pub fn hub_close_code(&self) -> Option<u16> {
        Some(match self {
            Self::Closed { .. } | Self::ConnectionLost => return None,
            Self::HeartbeatTimeout | Self::RateLimited | Self::Revoked => close_code::POLICY,
            Self::TooSlow => close_code::TRY_AGAIN_LATER,
            Self::MessageTooBig => close_code::TOO_BIG,
            Self::InvalidUtf8 => close_code::INVALID_PAYLOAD,
            Self::ProtocolError => close_code::PROTOCOL_ERROR,
            Self::ClosedByHub { code, .. } => *code,
            Self::Shutdown => close_code::GOING_AWAY,
            Self::Internal(_) => close_code::INTERNAL,
        })
    }
}

/// The hub's handle to one connected spoke: cheap to clone, and still safe
/// to use after the spoke has gone (sends then fail with
/// [`SendError::Closed`]).
#[derive(Clone)]
pub struct Spoke {
    pub(crate) shared: Arc<SpokeShared>,
}

pub(crate) struct SpokeShared {
    pub(crate) id: SpokeId,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) connected_at: SystemTime,
    /// Events sent to this spoke alone, waiting for its task.
    pub(crate) answers: Mutex<Answers>,
    /// How many answers may wait ([`HubConfig::spoke_queue_capacity`](crate::HubConfig::spoke_queue_capacity)).
    pub(crate) answers_capacity: usize,
    /// The spoke's own queue of dispatched events, once it subscribed: the
    /// hub's routes fill it (`crate::routes`).
    pub(crate) routed: OnceLock<mpsc::Sender<Arc<Outgoing>>>,
    /// Events that did not fit one of this spoke's queues under the skip
    /// policy, which its task tells it with the next `hub.lagged`.
    pub(crate) missed: AtomicU64,
    /// Why the spoke is to be closed, once something asked.
    pub(crate) close: Mutex<Option<DisconnectReason>>,
    /// Wakes the spoke's task to look at `close`, its answers, the hub's
    /// shutdown and what the flusher handed back.
    pub(crate) attention: Notify,
    /// The patterns as the spoke sent them; `None` until its first `hub.subscribe`.
    pub(crate) patterns: Mutex<Option<Vec<String>>>,
    pub(crate) listeners: Arc<Listeners>,
    pub(crate) policy: SlowSpokePolicy,
    pub(crate) subscription_capacity: usize,
    pub(crate) frame_kind: crate::config::FrameKind,
}

/// Events sent to one spoke alone ([`Spoke::dispatch`]). Allocates nothing
/// until the first: most spokes never get one, and every idle spoke would
/// otherwise keep a channel's first block.
#[derive(Default)]
pub(crate) struct Answers {
    queue: VecDeque<Arc<Outgoing>>,
    /// The spoke has gone: nothing more is taken.
    closed: bool,
}

impl SpokeShared {
    fn answers(&self) -> std::sync::MutexGuard<'_, Answers> {
        self.answers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next answer waiting for the spoke's task.
    pub(crate) fn next_answer(&self) -> Option<Arc<Outgoing>> {
        self.answers().queue.pop_front()
    }

    pub(crate) fn has_answers(&self) -> bool {
        !self.answers().queue.is_empty()
    }

    /// The spoke has gone: answers sent from now on are handed back, and
    /// those still waiting are dropped.
    pub(crate) fn close_answers(&self) {
        let mut answers = self.answers();
        answers.closed = true;
        answers.queue = VecDeque::new();
    }
}

impl Spoke {
    /// The spoke's id.
    pub fn id(&self) -> SpokeId {
        self.shared.id
    }

    /// The peer's address, where the hub was told it
    /// ([`Hub::serve`](crate::Hub::serve) and
    /// [`Hub::accept_from`](crate::Hub::accept_from) know it).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.shared.remote_addr
    }

    /// When the spoke connected.
    pub fn connected_at(&self) -> SystemTime {
        self.shared.connected_at
    }

    /// Whether the spoke is still connected.
    pub fn is_connected(&self) -> bool {
        !self.shared.answers().closed
    }

    /// The patterns the spoke subscribed to with `hub.subscribe`; `None` if it
    /// never did, and so receives every event.
    pub fn patterns(&self) -> Option<Vec<String>> {
        self.shared.patterns.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many events are waiting to be written to this spoke: those sent
    /// to it alone and, once it has subscribed, the dispatched events in its
    /// own queue. (What the broadcast channel holds for a spoke that never
    /// subscribed is shared by all of them and not counted here.)
    pub fn queued(&self) -> usize {
        let depth = |queue: &mpsc::Sender<Arc<Outgoing>>| queue.max_capacity() - queue.capacity();
        self.shared.answers().queue.len() + self.shared.routed.get().map_or(0, depth)
    }

    /// Sends `event` to this spoke alone (to answer one request), whatever
    /// its subscriptions. The event is queued, not yet written, when this
    /// returns.
    ///
    /// # Errors
    /// Hands the event back in [`SendError::Closed`] when the spoke has gone,
    /// in [`SendError::Full`] when its queue
    /// ([`HubConfig::spoke_queue_capacity`](crate::HubConfig::spoke_queue_capacity))
    /// is full (the slow-spoke policy then applies: under `Disconnect` the
    /// spoke is closed with 1013, under `Skip` it is told by `hub.lagged`),
    /// and in [`SendError::InvalidEvent`] for an event with an empty or
    /// reserved type.
    pub fn dispatch(&self, event: Event) -> Result<(), SendError> {
        let out = match Outgoing::encode(&event, None, self.shared.frame_kind) {
            Ok(out) => out,
            Err(why) => return Err(SendError::InvalidEvent(event, why)),
        };
        let mut answers = self.shared.answers();
        if answers.closed {
            return Err(SendError::Closed(event));
        }
        if answers.queue.len() >= self.shared.answers_capacity {
            drop(answers);
            self.fell_behind(1);
            return Err(SendError::Full(event));
        }
        answers.queue.push_back(Arc::new(out));
        drop(answers);
        // A permit is kept if the task is not waiting: it is not lost.
        self.shared.attention.notify_one();
        Ok(())
    }

    /// A stream of the events this spoke sends whose topic matches
    /// `pattern`. It ends when the spoke disconnects; see [`Subscription`].
    ///
    /// # Errors
    /// When `pattern` is not a valid pattern.
    pub fn subscribe<P>(&self, pattern: P) -> Result<Subscription, PatternError>
    where
        P: TryInto<Pattern, Error = PatternError>,
    {
        let pattern = pattern.try_into()?;
        let sub = self.shared.listeners.subscribe(pattern, Some(self.id()), self.shared.subscription_capacity);
        if !self.is_connected() {
            // It went away before we registered: end the stream now.
            self.shared.listeners.remove_origin(self.id());
        }
        Ok(sub)
    }

    /// Closes the connection with a close frame carrying `code` and `reason`,
    /// after what is already queued for it. Does nothing if it has gone.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        self.request_close(DisconnectReason::ClosedByHub { code, reason: reason.into() });
    }

    /// Asks the spoke's task to close it; whether this was the first request.
    pub(crate) fn request_close(&self, why: DisconnectReason) -> bool {
        let mut slot = self.shared.close.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return false;
        }
        *slot = Some(why);
        // A permit is kept if the task is not waiting: it is not lost.
        self.shared.attention.notify_one();
        true
    }

    /// `missed` events could not be queued for this spoke, and are lost to
    /// it: its slow-spoke policy closes it (counted here), or its task tells
    /// it with `hub.lagged` and counts them then.
    pub(crate) fn missed_events(&self, missed: u64, stats: &crate::stats::Stats) {
        if self.fell_behind(missed) {
            stats.lagged.fetch_add(1, Ordering::Relaxed);
            crate::stats::Stats::add(&stats.dropped, missed);
            tracing::warn!(spoke = %self.id(), missed, "spoke lagged; closing it");
        }
    }

    /// `missed` events did not fit one of the spoke's queues, and the
    /// slow-spoke policy applies: under `Skip` its task tells it with
    /// `hub.lagged`; under `Disconnect` it is closed with 1013. Returns
    /// whether this call asked for that close.
    pub(crate) fn fell_behind(&self, missed: u64) -> bool {
        match self.shared.policy {
            SlowSpokePolicy::Skip => {
                self.shared.missed.fetch_add(missed, Ordering::Relaxed);
                false
            }
            _ => self.request_close(DisconnectReason::TooSlow),
        }
    }
}

impl fmt::Debug for Spoke {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spoke")
            .field("id", &self.shared.id)
            .field("remote_addr", &self.shared.remote_addr)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Spoke {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Eq for Spoke {}
