//! [`Routes`]: the spokes that sent `hub.subscribe`, found by topic.
//!
//! A spoke that never subscribed receives every event through the hub's
//! broadcast channel. Its first `hub.subscribe` moves it off the channel to
//! a queue of its own, and from then on a dispatch finds it here by the
//! event's topic: exact topics and types in hash maps, `*` in a list. An
//! event that k of N subscribed spokes want is queued k times and wakes k
//! tasks, not N.
//!
//! ## Order
//! [`Routes::send`] sends on the broadcast channel and looks up the routes
//! under one read lock; a spoke moves from the channel to its queue under
//! the write lock ([`Routes::join`]), and what the channel still held for
//! it (and its patterns match) goes into the queue first. So every event
//! reaches a spoke by one path or the other, once, in the order it was
//! dispatched.
//!
//! An event is matched once, when it is queued: what was queued before a
//! `hub.unsubscribe` took effect is still written, as it was dispatched
//! before the spoke's acknowledgement.
//!
//! ## Bounds
//! A spoke's queue holds [`HubConfig::broadcast_capacity`](crate::HubConfig::broadcast_capacity)
//! events, as the channel does for the spokes on it. An event that does not
//! fit has been missed, and the slow-spoke policy applies
//! ([`Spoke::fell_behind`]): under `Disconnect` the spoke is closed with
//! 1013, under `Skip` its task tells it with `hub.lagged`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::config::HubConfig;
use crate::hub::Outgoing;
use crate::pattern::{Key, Pattern};
use crate::spoke::{Spoke, SpokeId};
use crate::stats::Stats;

/// The queue a routed spoke's task reads its dispatched events from.
pub(crate) type Queue = mpsc::Receiver<Arc<Outgoing>>;

/// The routing table of a hub: every spoke that subscribed, by pattern.
#[derive(Default)]
pub(crate) struct Routes {
    table: RwLock<Table>,
}

#[derive(Default)]
struct Table {
    /// Routes of exact topics (`type:id`), by topic.
    topics: HashMap<Box<str>, Vec<Route>>,
    /// Routes of `type:*`, by type.
    types: HashMap<Box<str>, Vec<Route>>,
    /// Routes of `*`.
    all: Vec<Route>,
    /// Every routed spoke, with the patterns its routes were made from.
    members: HashMap<SpokeId, Member>,
}

struct Member {
    route: Route,
    patterns: Vec<Pattern>,
}

/// A routed spoke, as a pattern of its leads to it: its queue is the one
/// in its shared state (`SpokeShared::routed`), set when it joined.
#[derive(Clone)]
struct Route {
    spoke: Spoke,
}

impl Routes {
    /// Queues `out` for every spoke on `events` (those that never
    /// subscribed) and for every routed spoke that one of its patterns
    /// leads to; the origin of a relayed event is skipped unless `echo`.
    /// Returns how many spokes it was queued for.
    pub(crate) fn send(
        &self,
        events: &broadcast::Sender<Arc<Outgoing>>,
        out: Outgoing,
        echo: bool,
        stats: &Stats,
    ) -> usize {
        let out = Arc::new(out);
        // Held across both, so that a spoke joining the routes sees each
        // event on exactly one of the two paths.
        let table = read(&self.table);
        if table.members.is_empty() {
            return events.send(out).unwrap_or(0);
        }
        let everyone = events.send(out.clone()).unwrap_or(0);
        everyone + table.route(&out, echo, stats)
    }

    /// Moves `spoke` off the broadcast channel: from now on it receives
    /// what `patterns` lead to, in the queue returned. What `events` still
    /// held for it that `patterns` match is queued first (the caller drops
    /// `events` afterwards).
    pub(crate) fn join(
        &self,
        spoke: &Spoke,
        events: &mut broadcast::Receiver<Arc<Outgoing>>,
        patterns: &[Pattern],
        config: &HubConfig,
        stats: &Stats,
    ) -> Queue {
        let (queue, receiver) = mpsc::channel(config.broadcast_capacity.max(1));
        let route = Route { spoke: spoke.clone() };
        let wanted = |out: &Outgoing| {
            (config.echo || out.origin != Some(spoke.id()))
                && patterns.iter().any(|p| p.matches(out.event_type(), &out.topic))
        };
        let mut table = write(&self.table);
        // No dispatch runs while the write lock is held: the channel holds
        // everything dispatched before this moment, and nothing after it.
        loop {
            match events.try_recv() {
                Ok(out) if !wanted(&out) => {}
                Ok(out) => {
                    if queue.try_send(out).is_err() {
                        spoke.missed_events(1, stats);
                    }
                }
                Err(TryRecvError::Lagged(missed)) => spoke.missed_events(missed, stats),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        let _ = spoke.shared.routed.set(queue);
        table.insert(Member { route, patterns: patterns.to_vec() });
        receiver
    }

    /// Replaces the patterns of a routed spoke.
    pub(crate) fn update(&self, id: SpokeId, patterns: &[Pattern]) {
        let mut table = write(&self.table);
        if let Some(member) = table.remove(id) {
            table.insert(Member { route: member.route, patterns: patterns.to_vec() });
        }
    }

    /// Takes a spoke that has gone out of the routes, if it was in them.
    pub(crate) fn remove(&self, id: SpokeId) {
        if read(&self.table).members.contains_key(&id) {
            write(&self.table).remove(id);
        }
    }
}

impl Table {
    fn insert(&mut self, member: Member) {
        for pattern in &member.patterns {
            let route = member.route.clone();
            match pattern.key() {
                Key::All => self.all.push(route),
                Key::Type(ty) => self.types.entry(ty.into()).or_default().push(route),
                Key::Topic(topic) => self.topics.entry(topic.into()).or_default().push(route),
            }
        }
        self.members.insert(member.route.spoke.id(), member);
    }

    fn remove(&mut self, id: SpokeId) -> Option<Member> {
        let member = self.members.remove(&id)?;
        for pattern in &member.patterns {
            match pattern.key() {
                Key::All => self.all.retain(|r| r.spoke.id() != id),
                Key::Type(ty) => unlink(&mut self.types, ty, id),
                Key::Topic(topic) => unlink(&mut self.topics, topic, id),
            }
        }
        Some(member)
    }

    /// Queues `out` for every routed spoke it matches, once each.
    fn route(&self, out: &Arc<Outgoing>, echo: bool, stats: &Stats) -> usize {
        let lists = [self.topics.get(&*out.topic), self.types.get(out.event_type()), Some(&self.all)];
        let mut lists = lists.into_iter().flatten().filter(|list| !list.is_empty());
        let offered = |routes: &mut dyn Iterator<Item = &Route>| routes.filter(|r| r.offer(out, echo, stats)).count();
        match (lists.next(), lists.next()) {
            (None, _) => 0,
            (Some(only), None) => offered(&mut only.iter()),
            (Some(first), Some(second)) => {
                // A spoke may match by more than one of its patterns.
                let mut routes: Vec<&Route> = first.iter().chain(second).chain(lists.flatten()).collect();
                routes.sort_unstable_by_key(|r| r.spoke.id());
                routes.dedup_by_key(|r| r.spoke.id());
                offered(&mut routes.into_iter())
            }
        }
    }
}

impl Route {
    /// Queues `out` for this spoke; whether it was.
    fn offer(&self, out: &Arc<Outgoing>, echo: bool, stats: &Stats) -> bool {
        if !echo && out.origin == Some(self.spoke.id()) {
            return false;
        }
        let Some(queue) = self.spoke.shared.routed.get() else { return false };
        match queue.try_send(out.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.spoke.missed_events(1, stats);
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

fn unlink(routes: &mut HashMap<Box<str>, Vec<Route>>, key: &str, id: SpokeId) {
    if let Some(list) = routes.get_mut(key) {
        list.retain(|r| r.spoke.id() != id);
        if list.is_empty() {
            routes.remove(key);
        }
    }
}

fn read(table: &RwLock<Table>) -> RwLockReadGuard<'_, Table> {
    table.read().unwrap_or_else(|e| e.into_inner())
}

fn write(table: &RwLock<Table>) -> RwLockWriteGuard<'_, Table> {
    table.write().unwrap_or_else(|e| e.into_inner())
}
