//! Bridges: several hubs that act as one.
//!
//! One hub process holds tens of thousands of spokes. Past that, run several
//! hubs behind a load balancer and join them with a [`Bridge`]: then
//! [`Hub::dispatch`] on any hub reaches the matching spokes on every hub,
//! exactly once each; with [`HubConfig::relay`](crate::HubConfig::relay) on,
//! a spoke's event on hub A reaches the spokes on hub B; and, with
//! [`Scope::Cluster`], [`Hub::subscribe`] on any hub sees what spokes sent to
//! the other hubs.
//!
//! - [`RedisBridge`] (cargo feature `redis`) carries envelopes over Redis
//!   pub/sub, the engine the original TypeScript library's Redis adapter
//!   uses. This is the one to deploy.
//! - [`MemoryBridge`] joins hubs in one process: for tests, and for trying a
//!   cluster out.
//! - A hub without a bridge ([`Hub::new`]) has none of this and pays nothing
//!   for it: one `Option` checked per dispatch.
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use wshub::bridge::{RedisBridge, RedisBridgeConfig};
//! use wshub::{Hub, HubConfig};
//!
//! let bridge = RedisBridge::new(RedisBridgeConfig::new("redis://127.0.0.1:6379/"))?;
//! let hub = Hub::with_bridge(HubConfig::default().relay(true), bridge);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! hub.serve(listener).await?;
//! # Ok(()) }
//! ```
//!
//! ## What travels between hubs
//! A hub publishes the envelope it already encoded for its own spokes, as
//! JSON, with a few fields of its own added at the end, which the wire
//! protocol lets hubs ignore and which are never forwarded to a spoke:
//!
//! ```json
//! {"type":"chat.message","id":"room-1","payload":{"text":"hi"},"node":"3f9a0c21d4e5b687","seq":42,"spoke":7}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `node` | the publishing hub's [`NodeId`]: a hub skips what it published itself, so it never delivers its own dispatch twice |
//! | `seq` | the publishing hub's count of its publications, from 1: a gap tells the receiving hub how many it [missed](BridgeStats::missed) |
//! | `spoke` | present when a spoke sent the event (its id on that hub); absent for a [`Hub::dispatch`] |
//! | `relay` | `false` when the event is only for [`Scope::Cluster`] subscribers, not for spokes (a spoke's event on a hub that does not relay) |
//!
//! A message without these fields is an envelope from outside, and is
//! delivered like a dispatch: another program can publish into the hubs
//! (with Redis, a plain `PUBLISH wshub:chat.message:room-1 '{"type":…}'`).
//! What arrives is checked like what a spoke sends (JSON, shape, the
//! 128-level nesting limit, no `hub.` types); what fails is counted in
//! [`BridgeStats::rejected`] and dropped.
//!
//! Events from other hubs are delivered to this hub's spokes as the other
//! hub decided (a dispatch, or a relayed spoke event), and to this hub's
//! [`Hub::subscribe`] streams (with no [`origin`](crate::Event::origin))
//! only if they came from a spoke and this hub's
//! [`HubConfig::subscribe_scope`](crate::HubConfig::subscribe_scope) is
//! [`Scope::Cluster`]. Give every hub of a cluster the same settings.
//!
//! ## Backpressure
//! Publishing never waits for the network: [`Bridge::publish`] hands the
//! message to a bounded queue or drops it, and counts what it dropped
//! ([`BridgeStats::publish_dropped`]). Remote events enter the hub the way a
//! dispatch does, so a slow spoke is handled by the hub's own
//! [slow-spoke policy](crate::HubConfig::slow_spoke_policy), and a full
//! subscription lags as it always does.
//!
//! ## Faults
//! A bridge is **at most once**, as Redis pub/sub is. While the link to
//! other hubs is down, every hub goes on serving its own spokes without a
//! pause, and what is published in that time is **not** delivered to the
//! other hubs, then or later: it is counted as
//! [`BridgeStats::publish_dropped`] on the hub that published it. Nothing
//! is buffered for later, so nothing grows while the link is down. The
//! bridge reconnects by itself, with backoff, and cross-hub delivery
//! resumes; the outage is logged and counted
//! ([`BridgeStats::outages`], [`BridgeStats::reconnects`]), and every
//! other hub counts what it missed from this one
//! ([`BridgeStats::missed`]) once messages flow again. Nothing is
//! ever delivered twice: a message that may or may not have reached Redis
//! is not sent again.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use serde::Deserialize;
use serde_json::Value;

use crate::config::HubConfig;
use crate::event::{Event, MAX_DEPTH, nesting_depth};
use crate::hub::{Hub, HubInner, Outgoing};
use crate::spoke::SpokeId;
use crate::stats::Stats;

mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use memory::MemoryBridge;
#[cfg(feature = "redis")]
pub use redis::{RedisBridge, RedisBridgeConfig, RedisBridgeError};

/// Carries encoded envelopes between hubs.
///
/// A hub calls [`start`](Self::start) once, when it is made
/// ([`Hub::with_bridge`]), [`publish`](Self::publish) for everything the
/// other hubs should see, and [`close`](Self::close) when it shuts down. The
/// bridge hands what other hubs published to the [`Inbound`] it was
/// started with. Implementations: [`RedisBridge`], [`MemoryBridge`].
pub trait Bridge: fmt::Debug + Send + Sync + 'static {
    /// Starts carrying messages from other hubs to `inbound`, in tasks of
    /// the bridge's own. Called once, inside a tokio runtime.
    fn start(&self, inbound: Inbound);

    /// Publishes one message to every hub. Must return at once: it may
    /// queue the message in a bounded queue, or drop it and count it, but
    /// never wait on the network or buffer without bound.
    fn publish(&self, publication: Publication);

    /// The bridge's state and its transport counters. The hub adds its own
    /// counts of what it received ([`Hub::bridge_stats`]).
    fn stats(&self) -> BridgeStats;

    /// Stops the bridge: nothing more is published or received. Called by
    /// [`Hub::shutdown`]; dropping the bridge does the same.
    fn close(&self) {}
}

/// One message for the other hubs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Publication {
    /// The event's topic, `type:id` (a Redis bridge publishes on
    /// `<prefix><topic>`).
    pub topic: String,
    /// The JSON text to publish: the envelope, with the bridge fields
    /// described in the [module docs](self#what-travels-between-hubs).
    pub message: String,
}

impl Publication {
    /// A publication of `message` on `topic`: what a hub makes for its
    /// bridge, and what a test or a tool may hand a bridge to publish as if
    /// from outside.
    pub fn new(topic: impl Into<String>, message: impl Into<String>) -> Self {
        Self { topic: topic.into(), message: message.into() }
    }
}

/// Which events a hub's [`Hub::subscribe`] streams see when the hub has a
/// bridge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// Only what this hub's own spokes send (the default). Every hub runs
    /// its own subscribers, so a handler that answers requests runs once
    /// per event, on the hub the request arrived at.
    #[default]
    Local,
    /// What any spoke of any hub sends. Every hub publishes its spokes'
    /// events even when it does not relay, and each hub's subscribers see
    /// every spoke's event: a handler subscribed on N hubs runs N times.
    Cluster,
}

/// The id of one hub in a cluster, random for each hub: how a hub knows its
/// own publications when they come back.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(u64);

impl NodeId {
    fn random() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // A randomly keyed hasher over the time, the process and a counter.
        Self(RandomState::new().hash_one((std::time::SystemTime::now(), std::process::id(), n)))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

/// The state of a bridge's link to the other hubs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BridgeState {
    /// Not connected yet (Redis may not be up): trying.
    #[default]
    Connecting,
    /// Publishing and receiving.
    Connected,
    /// The link was lost; trying again, with backoff.
    Disconnected,
    /// Closed for good ([`Hub::shutdown`]).
    Closed,
}

impl BridgeState {
    /// A short name: `connecting`, `connected`, `disconnected`, `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Closed => "closed",
        }
    }
}

/// A snapshot of a bridge's state and counters, from [`Hub::bridge_stats`].
/// Every count is since the hub was made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeStats {
    /// The link's state now.
    pub state: BridgeState,
    /// Messages this hub published that the bridge handed on (for Redis:
    /// that Redis acknowledged).
    pub published: u64,
    /// Messages this hub did not publish because the link was down or the
    /// publish queue was full: events the other hubs never receive.
    pub publish_dropped: u64,
    /// Times the link was lost.
    pub outages: u64,
    /// Times the link came back after it was lost.
    pub reconnects: u64,
    /// Messages from other hubs (or from outside) delivered to this hub.
    pub received: u64,
    /// Messages other hubs published that never reached this hub: counted
    /// from the gaps in each hub's `seq` numbers, when the next message from
    /// that hub arrives. During an outage this counts what was lost on the
    /// way to this hub, whether the publisher dropped it or Redis had no
    /// subscription of this hub to give it to.
    pub missed: u64,
    /// This hub's own publications that came back and were skipped.
    pub own_skipped: u64,
    /// Messages received that were not valid envelopes, or had a `hub.`
    /// type: dropped.
    pub rejected: u64,
}

/// What [`Inbound::receive`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// Handed to this hub's spokes and subscribers.
    Delivered,
    /// This hub's own publication: skipped.
    Own,
    /// Not a valid envelope: dropped and counted.
    Rejected,
    /// The hub is gone or shutting down: the bridge may stop.
    HubClosed,
}

/// Where a bridge hands the messages it receives: a handle to one hub that
/// does not keep the hub alive.
#[derive(Clone)]
pub struct Inbound {
    hub: Weak<HubInner>,
}

impl Inbound {
    /// Decodes one message from another hub (or from outside) and delivers
    /// it: to this hub's spokes, and to its subscribers when it came from a
    /// spoke and the hub's scope is [`Scope::Cluster`]. Never waits.
    pub fn receive(&self, message: &[u8]) -> Received {
        let Some(hub) = self.hub.upgrade() else {
            return Received::HubClosed;
        };
        if hub.shutdown.borrow().is_some() {
            return Received::HubClosed;
        }
        let Some(link) = &hub.bridge else {
            return Received::HubClosed;
        };
        let received = link.receive(&hub, message);
        let counter = match received {
            Received::Delivered => &link.received,
            Received::Own => &link.own_skipped,
            _ => &link.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        received
    }

    /// Whether the hub is gone or shutting down, so that nothing more will be
    /// delivered.
    pub fn is_closed(&self) -> bool {
        self.hub.upgrade().is_none_or(|hub| hub.shutdown.borrow().is_some())
    }
}

impl fmt::Debug for Inbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbound").field("closed", &self.is_closed()).finish()
    }
}

/// A hub's end of its bridge.
pub(crate) struct Link {
    bridge: Box<dyn Bridge>,
    node: NodeId,
    /// `node` as text, compared with what arrives.
    node_text: Box<str>,
    received: AtomicU64,
    own_skipped: AtomicU64,
    rejected: AtomicU64,
    missed: AtomicU64,
    /// The number of the last publication. Held while the publication is
    /// handed to the bridge, so that numbers reach it in order.
    seq: Mutex<u64>,
    /// The last number seen from each other hub.
    last_seen: Mutex<HashMap<Box<str>, u64>>,
}

/// How many other hubs' numbers a hub remembers; past that it forgets them
/// all (and counts no gap for each one's next message).
const MAX_NODES: usize = 4096;

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link").field("bridge", &self.bridge).field("node", &self.node).finish_non_exhaustive()
    }
}

/// What the bridge fields of a received message say, next to the envelope.
#[derive(Deserialize)]
struct RemoteIn<'a> {
    #[serde(rename = "type", borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default)]
    payload: Value,
    #[serde(default, borrow)]
    node: Option<Cow<'a, str>>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    spoke: Option<u64>,
    #[serde(default = "yes")]
    relay: bool,
}

fn yes() -> bool {
    true
}

impl Link {
    fn new(bridge: Box<dyn Bridge>) -> Self {
        let node = NodeId::random();
        Self {
            bridge,
            node,
            node_text: node.to_string().into(),
            received: AtomicU64::new(0),
            own_skipped: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            seq: Mutex::new(0),
            last_seen: Mutex::default(),
        }
    }

    /// Publishes what [`Hub::dispatch`] just encoded.
    pub(crate) fn publish_dispatch(&self, out: &Outgoing) {
        self.publish(out, None, true);
    }

    /// Publishes a spoke's event when the other hubs want it: relayed to
    /// their spokes (`relayed` is the envelope already encoded for this
    /// hub's own spokes), or for their subscribers only (cluster scope).
    pub(crate) fn publish_spoke_event(&self, config: &HubConfig, event: &Event, relayed: Option<&Outgoing>) {
        let Some(spoke) = event.origin() else { return };
        match relayed {
            Some(out) => self.publish(out, Some(spoke), true),
            None if config.subscribe_scope == Scope::Cluster => {
                if let Ok(out) = Outgoing::encode(event, Some(spoke), config.frame_kind) {
                    self.publish(&out, Some(spoke), false);
                }
            }
            None => {}
        }
    }

    fn publish(&self, out: &Outgoing, spoke: Option<SpokeId>, relay: bool) {
        // The frame's payload is the envelope's JSON, text or binary frame alike.
        let Ok(text) = std::str::from_utf8(out.frame.payload()) else { return };
        // The envelope is an object: its last byte is `}`.
        let Some(body) = text.strip_suffix('}') else { return };
        let mut message = String::with_capacity(text.len() + 64);
        message.push_str(body);
        message.push_str(",\"node\":\"");
        message.push_str(&self.node_text);
        message.push_str("\",\"seq\":");
        let seq_at = message.len();
        if let Some(spoke) = spoke {
            message.push_str(",\"spoke\":");
            message.push_str(&spoke.as_u64().to_string());
        }
        if !relay {
            message.push_str(",\"relay\":false");
        }
        message.push('}');
        let mut seq = lock(&self.seq);
        *seq += 1;
        message.insert_str(seq_at, &seq.to_string());
        self.bridge.publish(Publication::new(out.topic.to_string(), message));
    }

    fn receive(&self, hub: &HubInner, bytes: &[u8]) -> Received {
        if nesting_depth(bytes) > MAX_DEPTH {
            tracing::debug!("bridge: a message nested deeper than {MAX_DEPTH} levels");
            return Received::Rejected;
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        deserializer.disable_recursion_limit();
        let remote = match RemoteIn::deserialize(&mut deserializer).and_then(|r| deserializer.end().map(|()| r)) {
            Ok(remote) => remote,
            Err(error) => {
                tracing::debug!(%error, "bridge: a message that is not an envelope");
                return Received::Rejected;
            }
        };
        match (remote.node.as_deref(), remote.seq) {
            (Some(node), _) if node == &*self.node_text => return Received::Own,
            (Some(node), Some(seq)) => self.count_gap(node, seq),
            _ => {}
        }
        let from_spoke = remote.spoke.is_some();
        let event = Event::new(remote.event_type, remote.id, remote.payload);
        let config = &hub.config;
        // Checked first, so that nothing reserved reaches a subscriber either.
        let out = match Outgoing::encode(&event, None, config.frame_kind) {
            Ok(out) => out,
            Err(why) => {
                tracing::debug!(r#type = event.event_type(), why, "bridge: an envelope the hub refuses");
                return Received::Rejected;
            }
        };
        if from_spoke && config.subscribe_scope == Scope::Cluster {
            let missed = hub.listeners.deliver(&event);
            Stats::add(&hub.stats.subscription_dropped, missed);
        }
        if remote.relay {
            // Not counted as `dispatched`: that counts this hub's own.
            let _ = hub.fan_out(out);
        }
        Received::Delivered
    }

    /// Counts the messages between the last one seen from `node` and `seq`.
    fn count_gap(&self, node: &str, seq: u64) {
        let mut last_seen = lock(&self.last_seen);
        if let Some(last) = last_seen.get_mut(node) {
            if seq > *last + 1 {
                let gap = seq - *last - 1;
                self.missed.fetch_add(gap, Ordering::Relaxed);
                tracing::debug!(node, gap, "bridge: messages from another hub were lost");
            }
            *last = (*last).max(seq);
            return;
        }
        if last_seen.len() >= MAX_NODES {
            last_seen.clear();
        }
        last_seen.insert(node.into(), seq);
    }

    pub(crate) fn close(&self) {
        self.bridge.close();
    }
}

impl Hub {
    /// A hub joined to other hubs by `bridge`: see the [`bridge`](crate::bridge)
    /// module. Nothing else changes: spokes are
    /// [accepted](Self::accept) or [served](Self::serve) as with
    /// [`Hub::new`].
    ///
    /// # Panics
    /// Outside a tokio runtime: the bridge starts its tasks here.
    pub fn with_bridge(config: HubConfig, bridge: impl Bridge) -> Self {
        let hub = Self::build(config, Some(Link::new(Box::new(bridge))));
        if let Some(link) = &hub.inner().bridge {
            link.bridge.start(Inbound { hub: Arc::downgrade(hub.inner()) });
        }
        hub
    }

    /// This hub's id among the hubs of its cluster; `None` without a bridge.
    pub fn node_id(&self) -> Option<NodeId> {
        self.inner().bridge.as_ref().map(|link| link.node)
    }

    /// The bridge's state and counters; `None` without a bridge.
    pub fn bridge_stats(&self) -> Option<BridgeStats> {
        let link = self.inner().bridge.as_ref()?;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut stats = link.bridge.stats();
        stats.received = load(&link.received);
        stats.own_skipped = load(&link.own_skipped);
        stats.rejected = load(&link.rejected);
        stats.missed = load(&link.missed);
        Some(stats)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Completes once `closed` holds `true`, or its sender is gone.
pub(crate) async fn closed(closed: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = closed.wait_for(|c| *c).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_differ() {
        let ids: std::collections::HashSet<String> = (0..100).map(|_| NodeId::random().to_string()).collect();
        assert_eq!(ids.len(), 100);
        assert!(ids.iter().all(|id| id.len() == 16));
    }
}
