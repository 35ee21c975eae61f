//! [`Subscription`]: a stream of the events spokes send, filtered by pattern.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use crate::event::Event;
use crate::pattern::Pattern;
use crate::spoke::SpokeId;

/// A subscriber fell behind and `missed` events that matched its pattern
/// were not delivered to it.
///
/// It is an item of the stream, in the place where the events went missing:
/// the stream goes on with the next event that fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the subscriber fell behind and missed {missed} events")]
pub struct Lagged {
    /// How many matching events were not delivered.
    pub missed: u64,
}

type Item = Result<Event, Lagged>;

/// A stream of the events spokes send whose topic matches a pattern, from
/// [`Hub::subscribe`](crate::Hub::subscribe) (any spoke) or
/// [`Spoke::subscribe`](crate::Spoke::subscribe) (that spoke alone).
///
/// Each item is an [`Event`] (with its [`origin`](Event::origin)), or a
/// [`Lagged`] in the place where events went missing.
///
/// ## Backpressure
/// A subscription holds up to
/// [`HubConfig::subscription_capacity`](crate::HubConfig::subscription_capacity)
/// events. The hub never waits for a subscriber: when one is full, the
/// events that match it are counted, not queued, and the count arrives as one
/// `Err(Lagged { missed })` item before the next event that fits. Nothing is
/// lost without a count.
///
/// ## Closing
/// Dropping the stream unsubscribes. The stream ends (yields `None`) after
/// everything it already holds, when the hub shuts down, or, for a spoke's
/// subscription, when that spoke disconnects. It never ends because it lagged.
pub struct Subscription {
    rx: mpsc::Receiver<Item>,
    pattern: Pattern,
    _guard: ListenerGuard,
}

impl Subscription {
    /// The pattern this subscription filters by.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// Receives the next item; `None` once the stream has ended.
    ///
    /// Cancel safe: in `tokio::select!`, an item is never lost when another
    /// branch wins.
    pub async fn recv(&mut self) -> Option<Item> {
        self.rx.recv().await
    }
}

impl Stream for Subscription {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.rx.poll_recv(cx)
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("pattern", &self.pattern).finish_non_exhaustive()
    }
}

struct Listener {
    key: u64,
    pattern: Pattern,
    origin: Option<SpokeId>,
    tx: mpsc::Sender<Item>,
    missed: AtomicU64,
}

/// Every live subscription of a hub. Delivery reads; subscribing and
/// dropping write.
#[derive(Default)]
pub(crate) struct Listeners {
    list: RwLock<Vec<Arc<Listener>>>,
    len: AtomicUsize,
    next_key: AtomicU64,
    closed: AtomicBool,
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listeners").field("len", &self.len.load(Ordering::Relaxed)).finish()
    }
}

impl Listeners {
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        pattern: Pattern,
        origin: Option<SpokeId>,
        capacity: usize,
    ) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity);
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        if !self.closed.load(Ordering::Acquire) {
            let listener = Listener { key, pattern: pattern.clone(), origin, tx, missed: AtomicU64::new(0) };
            let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
            // Checked again under the lock, so `close` cannot miss it.
            if !self.closed.load(Ordering::Acquire) {
                list.push(Arc::new(listener));
                self.len.store(list.len(), Ordering::Relaxed);
            }
        }
        Subscription { rx, pattern, _guard: ListenerGuard { key, listeners: Arc::downgrade(self) } }
    }

    /// Hands `event` to every subscription that wants it; returns how many
    /// events were counted as missed because a subscription was full.
    pub(crate) fn deliver(&self, event: &Event) -> u64 {
        if self.len.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let topic = event.topic();
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        let mut dropped = 0;
        for listener in list.iter() {
            if listener.origin.is_some() && listener.origin != event.origin() {
                continue;
            }
            if !listener.pattern.matches(event.event_type(), &topic) {
                continue;
            }
            if !listener.offer(event) {
                dropped += 1;
            }
        }
        dropped
    }

    /// Tells every subscription that up to `missed` events went missing
    /// before its next item (the client's answer to `hub.lagged`, which does
    /// not say which patterns the skipped events matched).
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn lag_all(&self, missed: u64) {
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        for listener in list.iter() {
            let pending = listener.missed.swap(0, Ordering::AcqRel) + missed;
            if listener.tx.try_send(Err(Lagged { missed: pending })).is_err() {
                listener.missed.fetch_add(pending, Ordering::AcqRel);
            }
        }
    }

    /// Ends the subscriptions to one spoke's events.
    pub(crate) fn remove_origin(&self, origin: SpokeId) {
        self.retain(|l| l.origin != Some(origin));
    }

    /// Ends every subscription: after shutdown nothing more will arrive.
    pub(crate) fn close(&self) {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::Release);
        list.clear();
        self.len.store(0, Ordering::Relaxed);
    }

    fn retain(&self, keep: impl Fn(&Listener) -> bool) {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        list.retain(|l| keep(l));
        self.len.store(list.len(), Ordering::Relaxed);
    }
}

impl Listener {
    /// Queues `event`, first reporting what was missed before it. Returns
    /// false when the event itself had to be counted as missed.
    fn offer(&self, event: &Event) -> bool {
        let missed = self.missed.swap(0, Ordering::AcqRel);
        if missed > 0 {
            // The lag goes in first, in the place where events went missing;
            // it needs a slot of its own.
            if self.tx.try_send(Err(Lagged { missed })).is_err() {
                self.missed.fetch_add(missed + 1, Ordering::AcqRel);
                return false;
            }
        }
        if self.tx.try_send(Ok(event.clone())).is_err() {
            self.missed.fetch_add(1, Ordering::AcqRel);
            return false;
        }
        true
    }
}

struct ListenerGuard {
    key: u64,
    listeners: Weak<Listeners>,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        if let Some(listeners) = self.listeners.upgrade() {
            listeners.retain(|l| l.key != self.key);
        }
    }
}
