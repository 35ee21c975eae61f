//! [`RedisBridge`]: hubs in many processes, joined by Redis pub/sub.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{MissedTickBehavior, timeout};

use super::{Bridge, BridgeState, BridgeStats, Inbound, Publication, Received, closed};
use crate::backoff::backoff;

/// The most publications sent to Redis in one pipeline.
const MAX_BATCH: usize = 256;

/// The settings of a [`RedisBridge`], built with [`RedisBridgeConfig::new`]
/// and the consuming setters. Its `Debug` output hides the URL's password.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisBridgeConfig {
    /// The Redis server, as a `redis://[user:password@]host[:port][/db]`
    /// URL (`rediss://` is not supported: the crate is built without TLS
    /// for Redis). No default.
    pub url: String,
    /// What every channel name begins with: a hub publishes an event on
    /// `<prefix><type>:<id>` and subscribes to `<prefix>*`. Default:
    /// `wshub:`.
    pub prefix: String,
    /// How many publications may wait for the publisher task; one more is
    /// dropped and counted. Default: 1024.
    pub publish_queue_capacity: usize,
    /// The first wait before reconnecting; it doubles with every failed
    /// attempt, up to [`max_backoff`](Self::max_backoff), and each wait is
    /// drawn between half and all of that. Default: 100 ms.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts. Default: 5 s.
    pub max_backoff: Duration,
    /// How long one connection attempt (TCP, handshake, `PSUBSCRIBE`) may
    /// take. Default: 5 s.
    pub connect_timeout: Duration,
    /// How long Redis may take to answer a command (`PUBLISH`, `PING`)
    /// before the connection is judged lost. Default: 5 s.
    pub response_timeout: Duration,
    /// How often an idle connection is checked with `PING`, so that a
    /// Redis that went silent is noticed. Default: 5 s.
    pub health_check_interval: Duration,
}

impl RedisBridgeConfig {
    /// The defaults, for the Redis server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "wshub:".into(),
            publish_queue_capacity: 1024,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            health_check_interval: Duration::from_secs(5),
        }
    }

    /// Sets [`prefix`](Self::prefix).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`initial_backoff`](Self::initial_backoff) and
    /// [`max_backoff`](Self::max_backoff).
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    setters! {
        /// Sets [`publish_queue_capacity`](Self::publish_queue_capacity) (at least 1).
        publish_queue_capacity: usize;
        /// Sets [`connect_timeout`](Self::connect_timeout).
        connect_timeout: Duration;
        /// Sets [`response_timeout`](Self::response_timeout).
        response_timeout: Duration;
        /// Sets [`health_check_interval`](Self::health_check_interval).
        health_check_interval: Duration;
    }

    /// The pattern a hub subscribes to: the prefix, with Redis's glob
    /// characters escaped, then `*`.
    fn pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + 2);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }
}

impl fmt::Debug for RedisBridgeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBridgeConfig")
            .field("url", &redacted(&self.url))
            .field("prefix", &self.prefix)
            .field("publish_queue_capacity", &self.publish_queue_capacity)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("health_check_interval", &self.health_check_interval)
            .finish()
    }
}

/// The URL without what comes before an `@` (a user and password).
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Why a [`RedisBridge`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisBridgeError {
    /// The URL is not a Redis URL this crate can use.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
}

/// A [`Bridge`] over Redis pub/sub (cargo feature `redis`).
///
/// Each hub publishes on `<prefix><topic>` and receives with one
/// `PSUBSCRIBE <prefix>*`, on two connections of its own; any program can
/// publish an envelope into the hubs with a plain `PUBLISH`. See the
/// [module docs](super) for what travels and what each hub does with it.
///
/// [`RedisBridge::new`] only checks the URL: the connections are made in the
/// background once a hub starts the bridge, so a hub whose Redis is not up
/// yet serves its own spokes and joins the others when Redis appears.
///
/// ## Backpressure
/// [`publish`](Bridge::publish) puts the message in a queue of
/// [`publish_queue_capacity`](RedisBridgeConfig::publish_queue_capacity)
/// and returns; a task sends what waits in pipelines of up to 256
/// `PUBLISH`es. When the queue is full, or the connection is down, the
/// message is dropped and counted in
/// [`BridgeStats::publish_dropped`]. Messages from Redis are decoded and
/// handed to the hub as they arrive, without waiting for any spoke. (redis-rs
/// reads a subscription into a channel of its own that has no bound; it stays
/// short because this handling never waits, and a hub that cannot keep up
/// with Redis is a hub whose spokes lag first, under its slow-spoke policy.)
///
/// ## Faults
/// Redis pub/sub is at most once, and so is this bridge. When Redis goes
/// away (or stops answering `PING` within
/// [`response_timeout`](RedisBridgeConfig::response_timeout)):
///
/// - every hub goes on serving its own spokes, without a pause;
/// - the outage is logged (`warn`) and counted in
///   [`BridgeStats::outages`], and the state turns
///   [`Disconnected`](BridgeState::Disconnected);
/// - what a hub publishes until it is connected again is dropped and counted
///   in [`BridgeStats::publish_dropped`], including what was waiting in the
///   queue and a pipeline whose answer never came (it may or may not have
///   reached Redis; it is never sent twice). Nothing published during the
///   outage is delivered to the other hubs later;
/// - the bridge reconnects with exponential backoff and jitter, subscribes
///   again, and counts a [reconnect](BridgeStats::reconnects) once both its
///   connections are back; cross-hub delivery resumes with no action from
///   the user. Either connection's loss makes the other check itself at
///   once, so an idle one does not wait for its next health check to learn
///   that Redis restarted, and `Connected` always means both are new.
///
/// Memory stays bounded throughout: the queue holds at most
/// `publish_queue_capacity` messages and is emptied while Redis is down.
pub struct RedisBridge {
    config: Arc<RedisBridgeConfig>,
    client: redis::Client,
    queue: mpsc::Sender<Publication>,
    /// Taken by `start`.
    queued: Mutex<Option<mpsc::Receiver<Publication>>>,
    shared: Arc<Shared>,
    closed: watch::Sender<bool>,
}

impl RedisBridge {
    /// A bridge to the Redis server in `config`. It connects when a hub
    /// starts it ([`Hub::with_bridge`](crate::Hub::with_bridge)).
    ///
    /// # Errors
    /// When the URL is not a valid Redis URL.
    pub fn new(config: RedisBridgeConfig) -> Result<Self, RedisBridgeError> {
        let client =
            redis::Client::open(config.url.as_str()).map_err(|e| RedisBridgeError::InvalidUrl(e.to_string()))?;
        let (queue, queued) = mpsc::channel(config.publish_queue_capacity.max(1));
        Ok(Self {
            config: Arc::new(config),
            client,
            queue,
            queued: Mutex::new(Some(queued)),
            shared: Arc::default(),
            closed: watch::Sender::new(false),
        })
    }

    /// The bridge's settings.
    pub fn config(&self) -> &RedisBridgeConfig {
        &self.config
    }
}

impl Bridge for RedisBridge {
    fn start(&self, inbound: Inbound) {
        let Some(queued) = self.queued.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let task = Task {
            config: self.config.clone(),
            client: self.client.clone(),
            shared: self.shared.clone(),
            closed: self.closed.subscribe(),
        };
        tokio::spawn(task.clone().publisher(queued));
        tokio::spawn(task.subscriber(inbound));
    }

    fn publish(&self, publication: Publication) {
        let shared = &self.shared;
        if !shared.publisher_up.load(Ordering::Acquire) {
            shared.publish_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.queue.try_send(publication).is_err() {
            shared.publish_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn stats(&self) -> BridgeStats {
        let shared = &self.shared;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BridgeStats {
            state: shared.links().state,
            published: load(&shared.published),
            publish_dropped: load(&shared.publish_dropped),
            outages: load(&shared.outages),
            reconnects: load(&shared.reconnects),
            ..BridgeStats::default()
        }
    }

    fn close(&self) {
        self.closed.send_replace(true);
        self.shared.publisher_up.store(false, Ordering::Release);
        self.shared.links().state = BridgeState::Closed;
    }
}

impl Drop for RedisBridge {
    fn drop(&mut self) {
        self.closed.send_replace(true);
    }
}

impl fmt::Debug for RedisBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBridge").field("config", &self.config).field("stats", &self.stats()).finish()
    }
}

/// What the bridge and its two tasks share.
#[derive(Default)]
struct Shared {
    /// Read by `publish` on every call: whether to queue or drop.
    publisher_up: AtomicBool,
    links: Mutex<Links>,
    published: AtomicU64,
    publish_dropped: AtomicU64,
    outages: AtomicU64,
    reconnects: AtomicU64,
    /// Rings one side when the other lost its connection: it checks its own
    /// at once instead of at its next health check. An idle side would
    /// otherwise learn of a Redis restart only then, and the bridge would
    /// report `Connected` on a dead connection meanwhile.
    check_publisher: Notify,
    check_subscriber: Notify,
}

#[derive(Default)]
struct Links {
    publisher: bool,
    subscriber: bool,
    state: BridgeState,
    down_since: Option<Instant>,
}

#[derive(Clone, Copy, Debug)]
enum Side {
    Publisher,
    Subscriber,
}

impl Shared {
    fn links(&self) -> std::sync::MutexGuard<'_, Links> {
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that one connection came up or went down; the bridge is
    /// connected when both are.
    fn set(&self, side: Side, up: bool, why: &str) {
        let mut links = self.links();
        if links.state == BridgeState::Closed {
            return;
        }
        match side {
            Side::Publisher => links.publisher = up,
            Side::Subscriber => links.subscriber = up,
        }
        if let Side::Publisher = side {
            self.publisher_up.store(up, Ordering::Release);
        }
        if !up {
            match side {
                Side::Publisher => self.check_subscriber.notify_one(),
                Side::Subscriber => self.check_publisher.notify_one(),
            }
        }
        let connected = links.publisher && links.subscriber;
        match (links.state, connected) {
            (BridgeState::Connected, false) => {
                links.state = BridgeState::Disconnected;
                links.down_since = Some(Instant::now());
                self.outages.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    ?side,
                    why,
                    "redis bridge: lost Redis; local delivery goes on, cross-hub delivery is paused and what is \
                     published meanwhile is dropped; reconnecting"
                );
            }
            (BridgeState::Disconnected, true) => {
                links.state = BridgeState::Connected;
                self.reconnects.fetch_add(1, Ordering::Relaxed);
                let outage = links.down_since.take().map(|t| t.elapsed());
                tracing::info!(?outage, "redis bridge: reconnected and subscribed; cross-hub delivery resumed");
            }
            (BridgeState::Connecting, true) => {
                links.state = BridgeState::Connected;
                tracing::info!("redis bridge: connected and subscribed");
            }
            _ => {}
        }
    }
}

/// What each of the bridge's two tasks holds.
#[derive(Clone)]
struct Task {
    config: Arc<RedisBridgeConfig>,
    client: redis::Client,
    shared: Arc<Shared>,
    closed: watch::Receiver<bool>,
}

/// Why a connection ended.
enum End {
    Closed,
    Lost(String),
}

impl Task {
    /// Connects, publishes what is queued, and starts again when the
    /// connection is lost, until the bridge closes.
    async fn publisher(mut self, mut queue: mpsc::Receiver<Publication>) {
        let mut attempt = 0u32;
        loop {
            let connecting = async {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.config.connect_timeout))
                    .set_response_timeout(Some(self.config.response_timeout));
                self.client.get_multiplexed_async_connection_with_config(&config).await
            };
            let connected = tokio::select! {
                () = closed(&mut self.closed) => return,
                connected = timeout(self.config.connect_timeout, connecting) => connected,
            };
            match connected {
                Ok(Ok(mut connection)) => {
                    // What was queued while the connection was down is not
                    // sent late: at most once means nothing from an outage.
                    self.drop_queued(&mut queue);
                    self.shared.set(Side::Publisher, true, "connected");
                    attempt = 0;
                    match self.publish_until_lost(&mut connection, &mut queue).await {
                        End::Closed => return,
                        End::Lost(why) => {
                            self.shared.set(Side::Publisher, false, &why);
                            self.drop_queued(&mut queue);
                        }
                    }
                }
                Ok(Err(error)) => self.connect_failed(Side::Publisher, attempt, &error.to_string()),
                Err(_) => self.connect_failed(Side::Publisher, attempt, "timed out"),
            }
            attempt += 1;
            if !self.wait(attempt).await {
                return;
            }
        }
    }

    async fn publish_until_lost(
        &mut self,
        connection: &mut MultiplexedConnection,
        queue: &mut mpsc::Receiver<Publication>,
    ) -> End {
        let config = self.config.clone();
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut channel = String::new();
        let mut health = tokio::time::interval(config.health_check_interval);
        health.set_missed_tick_behavior(MissedTickBehavior::Delay);
        health.reset();
        loop {
            tokio::select! {
                () = closed(&mut self.closed) => return End::Closed,
                n = queue.recv_many(&mut batch, MAX_BATCH) => {
                    if n == 0 {
                        return End::Closed;
                    }
                    let mut pipe = redis::pipe();
                    for publication in &batch {
                        channel.clear();
                        channel.push_str(&config.prefix);
                        channel.push_str(&publication.topic);
                        pipe.cmd("PUBLISH").arg(channel.as_str()).arg(publication.message.as_str()).ignore();
                    }
                    let sent = timeout(config.response_timeout, pipe.exec_async(connection)).await;
                    batch.clear();
                    match sent {
                        Ok(Ok(())) => {
                            self.shared.published.fetch_add(n as u64, Ordering::Relaxed);
                            health.reset();
                        }
                        Ok(Err(error)) => {
                            self.shared.publish_dropped.fetch_add(n as u64, Ordering::Relaxed);
                            return End::Lost(format!("PUBLISH failed: {error}"));
                        }
                        Err(_) => {
                            self.shared.publish_dropped.fetch_add(n as u64, Ordering::Relaxed);
                            return End::Lost("PUBLISH timed out".into());
                        }
                    }
                }
                () = self.shared.check_publisher.notified() => health.reset_immediately(),
                _ = health.tick() => {
                    let ping = redis::cmd("PING");
                    match timeout(config.response_timeout, ping.query_async::<redis::Value>(connection)).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => return End::Lost(format!("PING failed: {error}")),
                        Err(_) => return End::Lost("PING timed out".into()),
                    }
                }
            }
        }
    }

    /// Empties the queue, counting what it held as dropped.
    fn drop_queued(&self, queue: &mut mpsc::Receiver<Publication>) {
        let mut dropped = 0u64;
        while queue.try_recv().is_ok() {
            dropped += 1;
        }
        if dropped > 0 {
            self.shared.publish_dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// Connects, subscribes, hands every message to the hub, and starts
    /// again when the connection is lost, until the bridge or the hub closes.
    async fn subscriber(mut self, inbound: Inbound) {
        let pattern = self.config.pattern();
        let mut attempt = 0u32;
        loop {
            let connecting = async {
                let mut pubsub = self.client.get_async_pubsub().await?;
                pubsub.psubscribe(&pattern).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            let connected = tokio::select! {
                () = closed(&mut self.closed) => return,
                connected = timeout(self.config.connect_timeout, connecting) => connected,
            };
            match connected {
                Ok(Ok(pubsub)) => {
                    self.shared.set(Side::Subscriber, true, "subscribed");
                    attempt = 0;
                    match self.receive_until_lost(pubsub, &inbound).await {
                        End::Closed => return,
                        End::Lost(why) => self.shared.set(Side::Subscriber, false, &why),
                    }
                }
                Ok(Err(error)) => self.connect_failed(Side::Subscriber, attempt, &error.to_string()),
                Err(_) => self.connect_failed(Side::Subscriber, attempt, "timed out"),
            }
            if inbound.is_closed() {
                return;
            }
            attempt += 1;
            if !self.wait(attempt).await {
                return;
            }
        }
    }

    async fn receive_until_lost(&mut self, pubsub: redis::aio::PubSub, inbound: &Inbound) -> End {
        let (mut sink, mut messages) = pubsub.split();
        let config = self.config.clone();
        let mut health = tokio::time::interval(config.health_check_interval);
        health.set_missed_tick_behavior(MissedTickBehavior::Delay);
        health.reset();
        loop {
            tokio::select! {
                () = closed(&mut self.closed) => return End::Closed,
                message = messages.next() => match message {
                    Some(message) => {
                        if inbound.receive(message.get_payload_bytes()) == Received::HubClosed {
                            return End::Closed;
                        }
                        health.reset();
                    }
                    None => return End::Lost("the subscription connection closed".into()),
                },
                () = self.shared.check_subscriber.notified() => health.reset_immediately(),
                _ = health.tick() => {
                    // A subscribed connection answers PING with an array: any answer will do.
                    match timeout(config.response_timeout, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => return End::Lost(format!("PING failed: {error}")),
                        Err(_) => return End::Lost("PING timed out".into()),
                    }
                }
            }
        }
    }

    fn connect_failed(&self, side: Side, attempt: u32, why: &str) {
        // Said once at `warn` per outage; every further attempt at `debug`.
        if attempt == 0 {
            tracing::warn!(?side, why, "redis bridge: cannot connect to Redis; retrying with backoff");
        } else {
            tracing::debug!(?side, attempt, why, "redis bridge: cannot connect to Redis");
        }
    }

    /// Waits before attempt `attempt`; false if the bridge closed meanwhile.
    async fn wait(&mut self, attempt: u32) -> bool {
        let wait = backoff(self.config.initial_backoff, self.config.max_backoff, attempt);
        tokio::select! {
            () = closed(&mut self.closed) => false,
            () = tokio::time::sleep(wait) => true,
        }
    }
}
