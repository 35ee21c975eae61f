//! [`MemoryBridge`]: hubs in one process, joined by a broadcast channel.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use super::{Bridge, BridgeState, BridgeStats, Inbound, Publication, Received};

/// A bridge between hubs in one process: for tests, and for trying a
/// cluster out without Redis. Every hub needs a bridge of its own; make the
/// first with [`MemoryBridge::new`] and the others with
/// [`peer`](Self::peer), which joins the same in-memory channel.
///
/// ```
/// use wshub::bridge::MemoryBridge;
/// use wshub::{Event, Hub, HubConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let a = MemoryBridge::new(1024);
/// let b = a.peer();
/// let hub_a = Hub::with_bridge(HubConfig::default(), a);
/// let hub_b = Hub::with_bridge(HubConfig::default(), b);
/// // Reaches the spokes of both hubs.
/// hub_a.dispatch(Event::new("tick", "", 1)).unwrap();
/// # let _ = hub_b;
/// # }
/// ```
///
/// It behaves like [`RedisBridge`](super::RedisBridge) without the network:
/// at most once, and bounded: a hub whose bridge task falls more than
/// `capacity` messages behind misses the oldest (counted in its
/// [`missed`](BridgeStats::missed), as any gap is). It is never disconnected.
pub struct MemoryBridge {
    bus: broadcast::Sender<Arc<Publication>>,
    shared: Arc<Shared>,
    closed: watch::Sender<bool>,
    /// Subscribed when the bridge is made, so that nothing published after
    /// `new`/`peer` returns is missed; taken by `start`.
    receiver: Mutex<Option<broadcast::Receiver<Arc<Publication>>>>,
}

#[derive(Default)]
struct Shared {
    published: AtomicU64,
    closed: AtomicBool,
}

impl MemoryBridge {
    /// The first bridge of a new in-memory cluster, holding up to `capacity`
    /// messages for its slowest member (at least 1).
    pub fn new(capacity: usize) -> Self {
        let (bus, _) = broadcast::channel(capacity.max(1));
        Self::on(bus)
    }

    /// Another bridge on the same in-memory channel, for another hub.
    pub fn peer(&self) -> Self {
        Self::on(self.bus.clone())
    }

    fn on(bus: broadcast::Sender<Arc<Publication>>) -> Self {
        let receiver = Mutex::new(Some(bus.subscribe()));
        Self { bus, shared: Arc::default(), closed: watch::Sender::new(false), receiver }
    }
}

impl Bridge for MemoryBridge {
    fn start(&self, inbound: Inbound) {
        let Some(mut rx) = self.receiver.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let mut closed = self.closed.subscribe();
        tokio::spawn(async move {
            loop {
                let publication = tokio::select! {
                    () = super::closed(&mut closed) => return,
                    publication = rx.recv() => publication,
                };
                match publication {
                    Ok(publication) => {
                        if inbound.receive(publication.message.as_bytes()) == Received::HubClosed {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        // The hub counts the gap when the next message arrives.
                        tracing::warn!(missed, "memory bridge: fell behind, messages missed");
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    fn publish(&self, publication: Publication) {
        if self.shared.closed.load(Ordering::Relaxed) {
            return;
        }
        // Every member, this one too, receives it: the hub skips its own.
        if self.bus.send(Arc::new(publication)).is_ok() {
            self.shared.published.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn stats(&self) -> BridgeStats {
        let closed = self.shared.closed.load(Ordering::Relaxed);
        BridgeStats {
            state: if closed { BridgeState::Closed } else { BridgeState::Connected },
            published: self.shared.published.load(Ordering::Relaxed),
            ..BridgeStats::default()
        }
    }

    fn close(&self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.closed.send_replace(true);
    }
}

impl Drop for MemoryBridge {
    fn drop(&mut self) {
        self.closed.send_replace(true);
    }
}

impl fmt::Debug for MemoryBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBridge").field("stats", &self.stats()).finish_non_exhaustive()
    }
}
