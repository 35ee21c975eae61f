//! `/metrics`: the hub's counters and the server's refusals, in the
//! Prometheus text exposition format (through `prometheus-client`).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use wshub::Hub;
use wshub::axum::UpgradeFailure;
use wshub::bridge::{BridgeState, BridgeStats};

/// One label: `reason`.
type Reason = [(&'static str, &'static str); 1];

/// Every refusal reason, shown at 0 before the first.
const REFUSALS: [&str; 4] = ["origin", "token", "connection_limit", "shutting_down"];
/// Every upgrade failure reason, shown at 0 before the first.
const FAILURES: [&str; 5] = ["method", "not_upgrade", "version", "key", "io"];

/// The server's metrics registry.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    rejections: Family<Reason, Counter>,
    upgrade_failures: Family<Reason, Counter>,
}

impl Metrics {
    pub(crate) fn new(hub: Hub) -> Self {
        let mut registry = Registry::with_prefix("wshub");
        let rejections = Family::<Reason, Counter>::default();
        let upgrade_failures = Family::<Reason, Counter>::default();
        for reason in REFUSALS {
            let _ = rejections.get_or_create(&[("reason", reason)]);
        }
        for reason in FAILURES {
            let _ = upgrade_failures.get_or_create(&[("reason", reason)]);
        }
        registry.register(
            "rejections",
            "WebSocket upgrades refused by policy: origin (403), token (401), connection_limit and shutting_down (503)",
            rejections.clone(),
        );
        registry.register(
            "upgrade_failures",
            "WebSocket upgrades that failed: method (405), not_upgrade and version (426), key (400), io (after the 101)",
            upgrade_failures.clone(),
        );
        registry.register_collector(Box::new(HubCollector(hub)));
        Self { registry, rejections, upgrade_failures }
    }

    /// Counts a refused or failed upgrade under its reason.
    pub(crate) fn upgrade_failed(&self, failure: &UpgradeFailure) {
        let family = if failure.is_refusal() { &self.rejections } else { &self.upgrade_failures };
        family.get_or_create(&[("reason", failure.reason())]).inc();
    }

    /// The text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

/// Every state the bridge can be in, each shown as a 0/1 gauge.
const BRIDGE_STATES: [BridgeState; 4] =
    [BridgeState::Connecting, BridgeState::Connected, BridgeState::Disconnected, BridgeState::Closed];

/// The Redis bridge's state and counters (with `--redis-url`).
fn encode_bridge(encoder: &mut DescriptorEncoder, stats: &BridgeStats) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(0i64).metric_type();
    let mut states = encoder.encode_descriptor(
        "bridge_state",
        "The Redis bridge's state: 1 for the state it is in (connecting, connected, disconnected, closed)",
        None,
        gauge,
    )?;
    for state in BRIDGE_STATES {
        ConstGauge::new(i64::from(stats.state == state)).encode(states.encode_family(&[("state", state.as_str())])?)?;
    }
    let counters: [(&str, &str, u64); 7] = [
        ("bridge_published", "Events this hub published to Redis that Redis acknowledged", stats.published),
        (
            "bridge_publish_dropped",
            "Events this hub did not publish because Redis was down or the queue was full: the other hubs never get them",
            stats.publish_dropped,
        ),
        ("bridge_received", "Events from other hubs, or from outside, delivered here", stats.received),
        (
            "bridge_missed",
            "Events other hubs published that never reached this hub (gaps in their numbers)",
            stats.missed,
        ),
        ("bridge_rejected", "Messages from Redis that were not valid envelopes: dropped", stats.rejected),
        ("bridge_outages", "Times the connection to Redis was lost", stats.outages),
        ("bridge_reconnects", "Times the connection to Redis came back after it was lost", stats.reconnects),
    ];
    for (name, help, value) in counters {
        let counter = ConstCounter::new(value);
        counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
    }
    Ok(())
}

/// Reads the hub's counters on every scrape.
#[derive(Debug)]
struct HubCollector(Hub);

impl Collector for HubCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.stats();
        let gauge = ConstGauge::new(i64::try_from(stats.connections).unwrap_or(i64::MAX));
        gauge.encode(encoder.encode_descriptor("connections", "Spokes connected now", None, gauge.metric_type())?)?;

        let counters: [(&str, &str, u64); 10] = [
            ("connections_accepted", "Spokes accepted since the server started", stats.connections_total),
            ("events_dispatched", "Events fanned out to the spokes, each counted once", stats.dispatched),
            ("messages_in", "Messages received from spokes, valid or not", stats.messages_in),
            ("events_in", "Valid events received from spokes", stats.events_in),
            ("bytes_in", "Bytes of messages received from spokes", stats.bytes_in),
            (
                "events_out",
                "Frames written to spokes, one per event per spoke, control envelopes included",
                stats.events_out,
            ),
            ("bytes_out", "Bytes of the envelopes written to spokes (frame payloads)", stats.bytes_out),
            ("lagged", "Times a spoke fell behind its bounds", stats.lagged),
            ("dropped", "Events a lagging spoke did not receive", stats.dropped),
            (
                "subscription_dropped",
                "Events an in-process subscription did not receive because it was full",
                stats.subscription_dropped,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }

        let kind = ConstCounter::new(0u64).metric_type();
        if let Some(bridge) = self.0.bridge_stats() {
            encode_bridge(&mut encoder, &bridge)?;
        }
        let mut errors = encoder.encode_descriptor("errors", "hub.error envelopes sent, by code", None, kind)?;
        for (code, n) in &stats.errors {
            ConstCounter::new(*n).encode(errors.encode_family(&[("code", code.as_str())])?)?;
        }
        let mut closes =
            encoder.encode_descriptor("closes", "Connections the hub closed, by close code", None, kind)?;
        for (code, n) in &stats.closes {
            ConstCounter::new(*n).encode(closes.encode_family(&[("code", code.to_string())])?)?;
        }
        Ok(())
    }
}
