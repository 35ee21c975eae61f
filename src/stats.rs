//! Counters every hub keeps, and [`HubStats`], a snapshot of them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::protocol::ErrorCode;

/// A snapshot of a hub's counters, from [`Hub::stats`](crate::Hub::stats).
/// Every count is since the hub was made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Spokes connected now.
    pub connections: u64,
    /// Spokes accepted in all.
    pub connections_total: u64,
    /// Events dispatched by the hub (each counted once, whatever the number of spokes).
    pub dispatched: u64,
    /// Valid user events received from spokes.
    pub events_in: u64,
    /// Messages received from spokes, valid or not.
    pub messages_in: u64,
    /// Bytes of messages received from spokes.
    pub bytes_in: u64,
    /// Frames written to spokes: one per event per spoke, control envelopes included.
    pub events_out: u64,
    /// Bytes of those frames' payloads.
    pub bytes_out: u64,
    /// Times a spoke fell behind its bounds (each lag counted once).
    pub lagged: u64,
    /// Events a lagging spoke did not receive, under either policy.
    pub dropped: u64,
    /// Events a [`Subscription`](crate::Subscription) did not receive because it was full.
    pub subscription_dropped: u64,
    /// HTTP upgrades that failed (bad request, timeout) in [`Hub::serve`](crate::Hub::serve)
    /// or the axum integration (`wshub::axum`, which does not count policy refusals here).
    pub upgrade_failures: u64,
    /// `hub.error` envelopes sent, by code.
    pub errors: BTreeMap<ErrorCode, u64>,
    /// Connections the hub closed, by the close code it sent.
    pub closes: BTreeMap<u16, u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) connections_total: AtomicU64,
    pub(crate) dispatched: AtomicU64,
    pub(crate) events_in: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) events_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) lagged: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) subscription_dropped: AtomicU64,
    pub(crate) upgrade_failures: AtomicU64,
    errors: [AtomicU64; ErrorCode::ALL.len()],
    closes: Mutex<BTreeMap<u16, u64>>,
}

impl Stats {
    pub(crate) fn error(&self, code: ErrorCode) {
        let index = ErrorCode::ALL.iter().position(|c| *c == code).unwrap_or(0);
        self.errors[index].fetch_add(1, Relaxed);
    }

    pub(crate) fn closed_with(&self, code: u16) {
        *self.closes.lock().unwrap_or_else(|e| e.into_inner()).entry(code).or_default() += 1;
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, connections: u64) -> HubStats {
        let load = |c: &AtomicU64| c.load(Relaxed);
        HubStats {
            connections,
            connections_total: load(&self.connections_total),
            dispatched: load(&self.dispatched),
            events_in: load(&self.events_in),
            messages_in: load(&self.messages_in),
            bytes_in: load(&self.bytes_in),
            events_out: load(&self.events_out),
            bytes_out: load(&self.bytes_out),
            lagged: load(&self.lagged),
            dropped: load(&self.dropped),
            subscription_dropped: load(&self.subscription_dropped),
            upgrade_failures: load(&self.upgrade_failures),
            errors: ErrorCode::ALL
                .iter()
                .zip(&self.errors)
                .map(|(code, n)| (*code, load(n)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            closes: self.closes.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}
