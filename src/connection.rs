//! One spoke's task: reads what it sends, writes what it is due, in batches.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Instant;

use futures::task::{ArcWake, AtomicWaker, waker_ref};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};
use tokio::time::{MissedTickBehavior, timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

use crate::config::SlowSpokePolicy;
use crate::event::{DecodeError, Event, decode};
use crate::hub::{Frame, HubInner, Outgoing};
use crate::park::{Holder, Shard, Wire};
use crate::pattern::Pattern;
use crate::protocol::{self, ErrorCode, RESERVED_PREFIX, close_code};
use crate::rate::{Meter, Verdict};
use crate::routes::Queue;
use crate::spoke::{DisconnectReason, Spoke};
use crate::stats::Stats;

/// The most frames written in one batch before the task flushes and looks
/// at its other work (reads, heartbeats) again.
const MAX_BATCH: usize = 256;

/// `Err` ends the connection, for the reason inside.
type Step = Result<(), DisconnectReason>;

/// What woke the task to write: an event from its inbox, or (`None`)
/// answers, a hand back, a pong owed.
type First = Option<Result<Arc<Outgoing>, RecvError>>;

/// Where a spoke's dispatched events come from: the hub's broadcast channel
/// until its first `hub.subscribe`, then a queue of its own that the hub's
/// routes fill with what its patterns match (`crate::routes`).
enum Inbox {
    Everything(broadcast::Receiver<Arc<Outgoing>>),
    /// The broadcast receiver is with the shard's flusher (`crate::park`).
    Parked,
    Routed(Queue),
}

impl Inbox {
    async fn recv(&mut self) -> Result<Arc<Outgoing>, RecvError> {
        match self {
            Self::Everything(events) => events.recv().await,
            // The routes hold the sender until the spoke has gone.
            Self::Routed(queue) => match queue.recv().await {
                Some(out) => Ok(out),
                None => std::future::pending().await,
            },
            // The flusher writes; the task hears of it only if it hands back.
            Self::Parked => std::future::pending().await,
        }
    }

    fn try_recv(&mut self) -> Result<Arc<Outgoing>, TryRecvError> {
        match self {
            Self::Everything(events) => events.try_recv(),
            Self::Routed(queue) => queue.try_recv().map_err(|_| TryRecvError::Empty),
            Self::Parked => Err(TryRecvError::Empty),
        }
    }
}

pub(crate) struct Connection<S> {
    hub: Arc<HubInner>,
    spoke: Spoke,
    /// The socket, the batch, and who writes (shared with the flusher).
    wire: Arc<Wire<S>>,
    /// The shard whose flusher writes for the spoke while it is parked;
    /// `None` once it has subscribed.
    shard: Option<Arc<Shard>>,
    inbox: Inbox,
    shutdown: watch::Receiver<Option<Instant>>,
    /// `None` until the spoke's first `hub.subscribe`; until then it receives everything.
    patterns: Option<Vec<Pattern>>,
    last_seen: Instant,
    /// The spoke's rate limit, where the hub sets one.
    meter: Option<Meter>,
    /// Tells whether the read side has anything new since it was last
    /// found pending ([`ReadWake`]).
    read_wake: Arc<ReadWake>,
    /// Frames and bytes written since the last flush, added to the hub's
    /// counters once per batch.
    frames_out: u64,
    bytes_out: u64,
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub(crate) fn new(
        hub: Arc<HubInner>,
        spoke: Spoke,
        ws: WebSocketStream<S>,
        events: broadcast::Receiver<Arc<Outgoing>>,
    ) -> Self {
        let shutdown = hub.shutdown.subscribe();
        let vectored = ws.get_ref().is_write_vectored();
        let wire = Arc::new(Wire::new(spoke.clone(), ws, vectored));
        let shard = hub.flushers.seat(&hub, spoke.id(), wire.clone());
        Self {
            meter: hub.config.rate_limit.map(Meter::new),
            hub,
            spoke,
            wire,
            shard: Some(shard),
            inbox: Inbox::Everything(events),
            shutdown,
            patterns: None,
            last_seen: Instant::now(),
            read_wake: Arc::new(ReadWake { woken: AtomicBool::new(true), task: AtomicWaker::new() }),
            frames_out: 0,
            bytes_out: 0,
        }
    }

    /// Serves the spoke until it goes; then removes it from the hub and runs
    /// the disconnection hooks, once, whatever ended the task.
    pub(crate) async fn run(mut self) {
        let mut done =
            Departure { hub: self.hub.clone(), spoke: self.spoke.clone(), shard: self.shard.clone(), reason: None };
        let reason = self.serve().await;
        // Every close the hub starts is sent here, in one place.
        if let Some(code) = reason.hub_close_code() {
            // Boxed, like the other once-per-connection paths, so that they
            // do not add to the size every idle spoke's task keeps.
            Box::pin(self.close_with(code, close_text(&reason))).await;
        }
        done.reason = Some(reason);
    }

    async fn serve(&mut self) -> DisconnectReason {
        let config = &self.hub.config;
        let period = config.heartbeat_interval;
        let mut heartbeat = tokio::time::interval_at((Instant::now() + period).into(), period);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);

        // One waiter for close requests and the shutdown, kept across turns
        // (and made anew only once it fired): not registered again on every
        // wake.
        let shared = self.spoke.shared.clone();
        let mut attention = std::pin::pin!(shared.attention.notified());
        loop {
            #[cfg(test)]
            self.hub.turns.fetch_add(1, Ordering::Relaxed);
            let shutting_down = *self.shutdown.borrow_and_update();
            if let Some(deadline) = shutting_down {
                Box::pin(self.shut_down(deadline)).await;
                return DisconnectReason::Shutdown;
            }
            if let Err(reason) = self.settle().await {
                return reason;
            }
            let step = tokio::select! {
                () = &mut attention => {
                    attention.set(shared.attention.notified());
                    // Left in place: a later request is not a first one.
                    let request = shared.close.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    match request {
                        Some(why) => Err(why),
                        None if self.spoke.shared.has_answers() => self.write_batch(None).await,
                        // The shutdown, or the flusher handing the spoke
                        // back: the loop's next turn sees it.
                        None => Ok(()),
                    }
                }
                // Boxed, like every write below (`timed_write`): each of these
                // futures is some 700 bytes, which every idle spoke's task
                // would otherwise keep room for; one allocation per message
                // read or batch written is the price.
                message = read_when_woken(&self.wire, &self.read_wake) => Box::pin(self.on_message(message)).await,
                first = self.inbox.recv() => self.write_batch(Some(first)).await,
                _ = heartbeat.tick() => self.on_heartbeat().await,
            };
            if let Err(reason) = step {
                return reason;
            }
        }
    }

    // --- reading -------------------------------------------------------------

    async fn on_message(&mut self, message: Option<Result<Message, WsError>>) -> Step {
        let message = match message {
            None => return Err(DisconnectReason::ConnectionLost),
            Some(Err(error)) => return Err(self.on_read_error(error)),
            Some(Ok(message)) => message,
        };
        self.last_seen = Instant::now();
        if let (Message::Text(_) | Message::Binary(_), Some(meter)) = (&message, &mut self.meter) {
            match meter.check(self.last_seen) {
                Verdict::Allow => {}
                Verdict::Refuse => {
                    self.count_in(message.len());
                    return self.reply_error(ErrorCode::RateLimited, "over the rate limit; message dropped").await;
                }
                Verdict::Close => {
                    self.count_in(message.len());
                    self.hub.stats.error(ErrorCode::RateLimited);
                    return Err(DisconnectReason::RateLimited);
                }
            }
        }
        match message {
            Message::Text(text) => self.on_data(text.as_bytes()).await,
            Message::Binary(bytes) => match std::str::from_utf8(&bytes) {
                Ok(_) => self.on_data(&bytes).await,
                Err(_) => {
                    self.count_in(bytes.len());
                    self.reply_error(ErrorCode::InvalidJson, "a binary frame must hold UTF-8 JSON").await
                }
            },
            Message::Close(frame) => {
                let (code, reason) = match frame {
                    Some(frame) => (u16::from(frame.code), frame.reason.as_str().to_owned()),
                    None => (1005, String::new()),
                };
                // Reading on sends tungstenite's reply and ends at the TCP close.
                self.unpark();
                let close_timeout = self.hub.config.close_timeout;
                let _ = timeout(close_timeout, self.read_to_end()).await;
                Err(DisconnectReason::Closed { code, reason })
            }
            // tungstenite answers pings by itself (the read marked the wire
            // as owing its pong); both are signs of life.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
        }
    }

    fn on_read_error(&self, error: WsError) -> DisconnectReason {
        tracing::debug!(spoke = %self.spoke.id(), %error, "read error");
        match error {
            WsError::Capacity(CapacityError::MessageTooLong { .. }) => DisconnectReason::MessageTooBig,
            WsError::Utf8(_) => DisconnectReason::InvalidUtf8,
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
            | WsError::Io(_)
            | WsError::ConnectionClosed
            | WsError::AlreadyClosed => DisconnectReason::ConnectionLost,
            WsError::Protocol(_) | WsError::Capacity(_) | WsError::AttackAttempt => DisconnectReason::ProtocolError,
            other => DisconnectReason::Internal(other.to_string()),
        }
    }

    fn count_in(&self, len: usize) {
        let stats = &self.hub.stats;
        stats.messages_in.fetch_add(1, Ordering::Relaxed);
        Stats::add(&stats.bytes_in, len as u64);
    }

    async fn on_data(&mut self, bytes: &[u8]) -> Step {
        self.count_in(bytes.len());
        let wire = match decode(bytes) {
            Ok(wire) => wire,
            Err(DecodeError::InvalidJson(why)) => return self.reply_error(ErrorCode::InvalidJson, &why).await,
            Err(DecodeError::InvalidEnvelope(why)) => {
                return self.reply_error(ErrorCode::InvalidEnvelope, &why).await;
            }
        };
        if wire.event_type.starts_with(RESERVED_PREFIX) {
            return match &*wire.event_type {
                protocol::SUBSCRIBE => self.on_subscribe(&wire.id).await,
                protocol::UNSUBSCRIBE => self.on_unsubscribe(&wire.id).await,
                other => {
                    let why = format!("`{other}`: types beginning with `hub.` are reserved for the hub");
                    self.reply_error(ErrorCode::ReservedType, &why).await
                }
            };
        }
        self.hub.stats.events_in.fetch_add(1, Ordering::Relaxed);
        let event = Event::new(wire.event_type, wire.id, wire.payload).with_origin(self.spoke.id());
        let missed = self.hub.listeners.deliver(&event);
        Stats::add(&self.hub.stats.subscription_dropped, missed);
        let relayed = if self.hub.config.relay {
            Outgoing::encode(&event, Some(self.spoke.id()), self.hub.config.frame_kind).ok()
        } else {
            None
        };
        if let Some(bridge) = &self.hub.bridge {
            bridge.publish_spoke_event(&self.hub.config, &event, relayed.as_ref());
        }
        if let Some(out) = relayed {
            self.hub.broadcast(out);
        }
        Ok(())
    }

    async fn on_subscribe(&mut self, text: &str) -> Step {
        let pattern = match self.parse_pattern(text) {
            Ok(pattern) => pattern,
            Err(why) => return self.reply_error(ErrorCode::InvalidPattern, &why).await,
        };
        let max = self.hub.config.max_subscriptions_per_spoke;
        let held = self.patterns.as_deref().unwrap_or_default();
        if !held.contains(&pattern) {
            if held.len() >= max {
                // Refused: the spoke's patterns, and where it reads from, stay as they were.
                let why = format!("a spoke may hold at most {max} subscriptions");
                return self.reply_error(ErrorCode::Forbidden, &why).await;
            }
            self.patterns.get_or_insert_with(Vec::new).push(pattern);
        }
        self.route();
        self.publish_patterns();
        self.reply(protocol::subscribed(text)).await
    }

    async fn on_unsubscribe(&mut self, text: &str) -> Step {
        let pattern = match self.parse_pattern(text) {
            Ok(pattern) => pattern,
            Err(why) => return self.reply_error(ErrorCode::InvalidPattern, &why).await,
        };
        if let Some(patterns) = &mut self.patterns {
            patterns.retain(|p| *p != pattern);
            self.route();
        }
        self.publish_patterns();
        self.reply(protocol::unsubscribed(text)).await
    }

    fn parse_pattern(&self, text: &str) -> Result<Pattern, String> {
        let max = self.hub.config.max_pattern_length;
        if text.len() > max {
            return Err(format!("a pattern may be at most {max} bytes long"));
        }
        Pattern::new(text).map_err(|e| e.to_string())
    }

    /// Gives the hub's routes the spoke's patterns; the first time, the
    /// spoke leaves the broadcast channel for a queue of its own.
    fn route(&mut self) {
        self.unpark();
        let patterns = self.patterns.as_deref().unwrap_or_default();
        let hub = &self.hub;
        match &mut self.inbox {
            Inbox::Everything(events) => {
                let queue = hub.routes.join(&self.spoke, events, patterns, &hub.config, &hub.stats);
                self.inbox = Inbox::Routed(queue);
                // The routes wake it for what it wants: it is never parked again.
                if let Some(shard) = self.shard.take() {
                    shard.unseat(self.spoke.id());
                }
            }
            Inbox::Routed(_) => hub.routes.update(self.spoke.id(), patterns),
            Inbox::Parked => unreachable!("unparked above"),
        }
    }

    /// Copies the patterns where [`Spoke::patterns`] can see them.
    fn publish_patterns(&self) {
        let shown = self.patterns.as_ref().map(|ps| ps.iter().map(|p| p.as_str().to_owned()).collect());
        *self.spoke.shared.patterns.lock().unwrap_or_else(|e| e.into_inner()) = shown;
    }

    async fn reply_error(&mut self, code: ErrorCode, message: &str) -> Step {
        self.hub.stats.error(code);
        tracing::debug!(spoke = %self.spoke.id(), %code, message, "rejected a message");
        self.reply(protocol::error_envelope(code, message)).await
    }

    /// Writes one control envelope now (it answers what the spoke just sent).
    async fn reply(&mut self, text: String) -> Step {
        let frame = Outgoing::control(&text, self.hub.config.frame_kind);
        self.timed_write(async |c: &mut Self| {
            c.feed_control(&frame).await?;
            c.flush().await
        })
        .await
    }

    // --- writing -------------------------------------------------------------

    /// Whether this spoke should receive an event from its inbox. The
    /// routes matched a routed event against the spoke's patterns and its
    /// origin when they queued it; the broadcast channel, which only spokes
    /// that never subscribed read, leaves the origin to check.
    fn wants(&self, out: &Outgoing) -> bool {
        match self.inbox {
            Inbox::Routed(_) => true,
            Inbox::Everything(_) | Inbox::Parked => self.hub.config.echo || out.origin != Some(self.spoke.id()),
        }
    }

    // --- parking (`crate::park`) ---------------------------------------------

    /// At the top of every turn: writes what the flusher handed back (or a
    /// pong tungstenite owes), then parks the spoke if it has nothing left
    /// to write.
    async fn settle(&mut self) -> Step {
        let owed = {
            let wire = self.wire.lock();
            wire.ws_dirty || !wire.batch.is_empty() || matches!(wire.holder, Holder::Returned(_))
        };
        if owed {
            self.timed_write(async |c: &mut Self| {
                c.drain().await?;
                c.flush().await
            })
            .await?;
        }
        self.park();
        Ok(())
    }

    /// Hands the broadcast receiver to the shard's flusher, if the spoke
    /// never subscribed and has nothing waiting.
    fn park(&mut self) {
        let (Inbox::Everything(events), Some(shard)) = (&self.inbox, &self.shard) else { return };
        if !events.is_empty() || !shard.is_running() {
            return;
        }
        let mut wire = self.wire.lock();
        if wire.ws_dirty || !wire.batch.is_empty() {
            return;
        }
        let Inbox::Everything(events) = std::mem::replace(&mut self.inbox, Inbox::Parked) else { return };
        // An event sent since the look above may have missed the flusher's
        // pass: this asks for another.
        if !events.is_empty() {
            shard.wake();
        }
        wire.holder = Holder::Flusher(events);
    }

    /// Takes the broadcast receiver back from the flusher: from here on
    /// only the task writes, until it parks again.
    fn unpark(&mut self) {
        if let Inbox::Parked = self.inbox {
            let mut wire = self.wire.lock();
            match std::mem::replace(&mut wire.holder, Holder::Task) {
                Holder::Flusher(events) | Holder::Returned(events) => self.inbox = Inbox::Everything(events),
                Holder::Task => unreachable!("a parked spoke's receiver is with the flusher"),
            }
        }
    }

    /// Writes `first` and everything else already waiting, then flushes once.
    async fn write_batch(&mut self, first: First) -> Step {
        self.timed_write(async move |c: &mut Self| {
            match first {
                Some(Ok(out)) => c.write_event(&out).await?,
                Some(Err(RecvError::Lagged(missed))) => c.on_lag(missed).await?,
                Some(Err(RecvError::Closed)) => return Err(DisconnectReason::Shutdown),
                None => {}
            }
            c.drain().await?;
            c.flush().await
        })
        .await
    }

    /// Feeds every frame already waiting, without flushing.
    async fn drain(&mut self) -> Step {
        for _ in 0..MAX_BATCH {
            match self.inbox.try_recv() {
                Ok(out) => self.write_event(&out).await?,
                Err(TryRecvError::Lagged(missed)) => self.on_lag(missed).await?,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        for _ in 0..MAX_BATCH {
            let Some(out) = self.spoke.shared.next_answer() else { break };
            self.feed(&out).await?;
        }
        let missed = self.spoke.shared.missed.swap(0, Ordering::Relaxed);
        if missed > 0 {
            self.count_lag(missed);
            self.feed_control(&Outgoing::control(&protocol::lagged(missed), self.hub.config.frame_kind)).await?;
        }
        Ok(())
    }

    async fn write_event(&mut self, out: &Arc<Outgoing>) -> Step {
        if self.wants(out) { self.feed(out).await } else { Ok(()) }
    }

    async fn on_lag(&mut self, missed: u64) -> Step {
        self.count_lag(missed);
        tracing::warn!(spoke = %self.spoke.id(), missed, policy = ?self.spoke.shared.policy, "spoke lagged");
        match self.hub.config.slow_spoke_policy {
            SlowSpokePolicy::Skip => {
                self.feed_control(&Outgoing::control(&protocol::lagged(missed), self.hub.config.frame_kind)).await
            }
            _ => Err(DisconnectReason::TooSlow),
        }
    }

    fn count_lag(&self, missed: u64) {
        self.hub.stats.lagged.fetch_add(1, Ordering::Relaxed);
        Stats::add(&self.hub.stats.dropped, missed);
    }

    /// Adds an event's frame to the batch: shared as it is where it is
    /// large and the socket takes vectored writes, copied otherwise.
    async fn feed(&mut self, out: &Arc<Outgoing>) -> Step {
        let shared = self.wire.shares(&out.frame).then_some(out);
        self.feed_frame(&out.frame, shared).await
    }

    /// Adds a copy of a frame from the hub (an acknowledgement, an error,
    /// `hub.lagged`) to the batch.
    async fn feed_control(&mut self, frame: &Frame) -> Step {
        self.feed_frame(frame, None).await
    }

    /// Adds a frame to the batch, writing the batch first if the frame
    /// would take it past its bounds; one lock when there is room.
    async fn feed_frame(&mut self, frame: &Frame, shared: Option<&Arc<Outgoing>>) -> Step {
        self.count_out(frame);
        let limit = self.hub.config.write_buffer_size;
        let added = {
            let mut wire = self.wire.lock();
            let room = !wire.must_write_before(frame, shared.is_some(), limit);
            if room {
                wire.push(frame, shared);
            }
            room
        };
        if !added {
            self.write_batch_out().await?;
            self.wire.lock().push(frame, shared);
        }
        Ok(())
    }

    fn count_out(&mut self, frame: &Frame) {
        self.frames_out += 1;
        self.bytes_out += frame.payload_len() as u64;
    }

    /// Writes the frames gathered so far to the socket, in one (vectored)
    /// write where the socket takes them.
    ///
    /// Events bypass tungstenite's `Sink`: their frames were built once at
    /// dispatch ([`Frame`]) and go out as they are, with no per-spoke
    /// framing or `Message`: copied into the batch, or for large ones on a
    /// socket that takes vectored writes, written from the shared frame
    /// itself ([`crate::batch::Batch`]). tungstenite still
    /// writes pings, pongs and the close frame; what it may hold (a pong it
    /// owes) is flushed first, and the batch is written whole before the
    /// socket is read again ([`read_when_woken`]), so the two never
    /// interleave. The flusher of a parked spoke keeps to the same rules.
    ///
    /// What the socket took leaves the batch at once, so a write cut off by
    /// the write timeout or the shutdown's deadline leaves in the batch
    /// exactly what is still owed, and the close frame follows it whole.
    async fn write_batch_out(&mut self) -> Step {
        self.wire
            .with(|wire, cx| {
                if wire.ws_dirty {
                    std::task::ready!(wire.ws.poll_flush_unpin(cx)).map_err(write_error)?;
                    wire.ws_dirty = false;
                }
                wire.poll_write_batch(cx).map_err(|()| DisconnectReason::ConnectionLost)
            })
            .await
    }

    async fn flush(&mut self) -> Step {
        let mut result = self.write_batch_out().await;
        if result.is_ok() {
            // Nothing for TCP; a TLS stream writes its record here.
            result = self
                .wire
                .with(|wire, cx| Pin::new(wire.ws.get_mut()).poll_flush(cx))
                .await
                .map_err(|_| DisconnectReason::ConnectionLost);
        }
        let stats = &self.hub.stats;
        Stats::add(&stats.events_out, std::mem::take(&mut self.frames_out));
        Stats::add(&stats.bytes_out, std::mem::take(&mut self.bytes_out));
        result
    }

    /// Runs a write within the write timeout: a spoke that does not take its
    /// frames in time is too slow. Boxed: with its timers it is the largest
    /// future of the task, and a parked spoke's task writes little.
    async fn timed_write<F>(&mut self, write: F) -> Step
    where
        F: AsyncFnOnce(&mut Self) -> Step,
    {
        Box::pin(self.timed_write_unboxed(write)).await
    }

    async fn timed_write_unboxed<F>(&mut self, write: F) -> Step
    where
        F: AsyncFnOnce(&mut Self) -> Step,
    {
        self.unpark();
        let limit = self.hub.config.write_timeout;
        // Once the hub is shutting down, the write may go on only until the
        // shutdown's deadline; the loop's next turn then closes the spoke.
        let mut shutdown = self.shutdown.clone();
        let write = write(self);
        tokio::pin!(write);
        // Most batches are taken by the socket at once: then no clock is
        // read, no timer set and no watch registered.
        if let Poll::Ready(written) = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
            return written;
        }
        let write = timeout(limit, write);
        tokio::pin!(write);
        tokio::select! {
            biased;
            written = &mut write => written.unwrap_or(Err(DisconnectReason::TooSlow)),
            deadline = async { shutdown.wait_for(Option::is_some).await.ok().and_then(|d| *d) } => {
                let deadline = deadline.unwrap_or_else(Instant::now);
                match timeout_at(deadline.into(), &mut write).await {
                    Ok(written) => written.unwrap_or(Err(DisconnectReason::TooSlow)),
                    Err(_) => Ok(()),
                }
            }
        }
    }

    async fn on_heartbeat(&mut self) -> Step {
        if self.last_seen.elapsed() > self.hub.config.heartbeat_timeout {
            return Err(DisconnectReason::HeartbeatTimeout);
        }
        self.timed_write(async |c: &mut Self| {
            c.flush().await?;
            c.send(Message::Ping(Bytes::new())).await.map_err(write_error)
        })
        .await
    }

    // --- closing -------------------------------------------------------------

    /// Writes everything queued before the shutdown, within its deadline.
    async fn shut_down(&mut self, deadline: Instant) {
        self.unpark();
        let _ = timeout_at(deadline.into(), async {
            loop {
                let before = self.frames_out;
                self.drain().await?;
                let wrote = self.frames_out > before;
                self.flush().await?;
                if !wrote {
                    return Ok::<_, DisconnectReason>(());
                }
            }
        })
        .await;
    }

    /// Sends a close frame and waits (within the close timeout) for the
    /// spoke's own. The TCP connection closes when the task ends.
    async fn close_with(&mut self, code: u16, reason: &str) {
        self.hub.stats.closed_with(code);
        if code != close_code::GOING_AWAY {
            tracing::info!(spoke = %self.spoke.id(), code, reason, "closing spoke");
        }
        self.unpark();
        let frame = CloseFrame { code: code.into(), reason: reason.into() };
        let close_timeout = self.hub.config.close_timeout;
        let _ = timeout(close_timeout, async {
            // The frames gathered before the close go first.
            if self.write_batch_out().await.is_err() {
                return;
            }
            if self.send(Message::Close(Some(frame))).await.is_ok() {
                self.read_to_end().await;
            }
        })
        .await;
    }

    /// Sends a message through tungstenite (a ping, the close frame).
    async fn send(&self, message: Message) -> Result<(), WsError> {
        let mut message = Some(message);
        self.wire
            .with(|wire, cx| {
                if let Some(m) = message.take() {
                    if let Err(error) = std::task::ready!(wire.ws.poll_ready_unpin(cx)) {
                        return Poll::Ready(Err(error));
                    }
                    wire.ws.start_send_unpin(m)?;
                }
                wire.ws.poll_flush_unpin(cx)
            })
            .await
    }

    /// Reads (and drops) what the spoke sends until its connection ends.
    async fn read_to_end(&self) {
        while let Some(Ok(_)) = self.wire.with(|wire, cx| wire.ws.poll_next_unpin(cx)).await {}
    }
}

/// The next message, like `ws.next()`; but the socket is read only when its
/// waker fired since it was last found pending, so that a wake to write (one
/// per event, for most spokes) does not poll the read side too. Cancel safe,
/// as `ws.next()` is.
async fn read_when_woken<S>(wire: &Wire<S>, wake: &Arc<ReadWake>) -> Option<Result<Message, WsError>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    std::future::poll_fn(|cx| {
        wake.task.register(cx.waker());
        // Cleared before the poll: a wake during it is not lost.
        if !wake.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let mut wire = wire.lock();
        if !wire.batch.is_empty() {
            // What a parked spoke's flusher could not finish goes out before
            // tungstenite may write (a pong) while reading: the task writes
            // it at the top of its next turn, which the flusher woke it for.
            wake.woken.store(true, Ordering::Release);
            return Poll::Pending;
        }
        let waker = waker_ref(wake);
        let polled = wire.ws.poll_next_unpin(&mut std::task::Context::from_waker(&waker));
        if let Poll::Ready(Some(Ok(Message::Ping(_) | Message::Close(_)))) = &polled {
            // tungstenite's reply may still be in its buffer: until it is
            // flushed, the flusher writes nothing.
            wire.ws_dirty = true;
        }
        if polled.is_ready() {
            // tungstenite may hold more frames read already: no wake would
            // come for them.
            wake.woken.store(true, Ordering::Release);
        }
        polled
    })
    .await
}

/// The waker the read side of a connection is polled with: it marks the
/// read side as having something new, then wakes the connection's task.
struct ReadWake {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl ArcWake for ReadWake {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.woken.store(true, Ordering::Release);
        arc_self.task.wake();
    }
}

/// The reason text of the close frame the hub sends for `reason`.
fn close_text(reason: &DisconnectReason) -> &str {
    match reason {
        DisconnectReason::HeartbeatTimeout => "heartbeat timeout",
        DisconnectReason::RateLimited => "rate limit exceeded",
        DisconnectReason::Revoked => "revoked",
        DisconnectReason::TooSlow => "too slow",
        DisconnectReason::MessageTooBig => "message too big",
        DisconnectReason::InvalidUtf8 => "text frame is not UTF-8",
        DisconnectReason::ProtocolError => "protocol error",
        DisconnectReason::ClosedByHub { reason, .. } => reason,
        DisconnectReason::Shutdown => "hub shutting down",
        _ => "internal error",
    }
}

fn write_error(error: WsError) -> DisconnectReason {
    match error {
        WsError::Io(_) | WsError::ConnectionClosed | WsError::AlreadyClosed => DisconnectReason::ConnectionLost,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake | ProtocolError::SendAfterClosing) => {
            DisconnectReason::ConnectionLost
        }
        WsError::WriteBufferFull(_) => DisconnectReason::TooSlow,
        other => DisconnectReason::Internal(other.to_string()),
    }
}

/// Removes the spoke from the hub when the task ends, however it ends (a
/// panic, or the runtime dropping the task, included).
struct Departure {
    hub: Arc<HubInner>,
    spoke: Spoke,
    /// The shard the spoke was seated in (`crate::park`), which holds its
    /// socket until it lets go.
    shard: Option<Arc<Shard>>,
    reason: Option<DisconnectReason>,
}

impl Drop for Departure {
    fn drop(&mut self) {
        let reason =
            self.reason.take().unwrap_or_else(|| DisconnectReason::Internal("the connection task was stopped".into()));
        if let Some(shard) = &self.shard {
            shard.unseat(self.spoke.id());
        }
        self.hub.remove(&self.spoke, &reason);
    }
}
#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;

    /// Every idle spoke keeps its task's future: reading a message and
    /// every write are boxed so that it stays small. It was 1,440 bytes
    /// with them inline; what is left is the connection's own state (184
    /// bytes), the select over what the task waits for, and the one waiter
    /// for close requests and the shutdown kept across turns.
    #[tokio::test]
    async fn the_connection_task_stays_small() {
        let hub = crate::Hub::new(Default::default());
        let inner = hub.inner().clone();
        let ws = WebSocketStream::from_raw_socket(tokio::io::duplex(64).0, Role::Server, None).await;
        let spoke = hub.accept(WebSocketStream::from_raw_socket(tokio::io::duplex(64).0, Role::Server, None).await);
        let connection = Connection::new(inner.clone(), spoke, ws, inner.events.subscribe());
        let size = std::mem::size_of_val(&connection.run());
        assert!(size <= 896, "the connection task's future is {size} bytes");
    }
}
