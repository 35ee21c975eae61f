//! Parked spokes: a spoke with nothing of its own to write leaves its
//! broadcast receiver to a flusher, which writes what the channel brings
//! without waking the spoke's task.
//!
//! Every dispatch used to wake every spoke's task, each to read the channel
//! and write one batch: at a fixed rate, one wake, one poll and one waiter
//! registration per delivery. Now a spoke that never subscribed, once it has
//! written everything it was due, is *parked*: its task hands its receiver to
//! the flusher of its shard and then waits only for what is its own (reads,
//! answers to it alone, heartbeats, close requests). A dispatch wakes each
//! shard's flusher once; the flusher goes through its parked spokes, reads
//! each one's receiver as the task would (the same echo rule, the same
//! [`Batch`]) and writes the batch with one (vectored) write from its own
//! turn. This is how uWebSockets writes a publish into its corked sockets;
//! here the broadcast channel is still what carries the event to every
//! spoke, and each spoke still reads it at its own pace.
//!
//! Whatever the flusher cannot finish goes back to the task, with nothing
//! lost and nothing reordered: a socket that did not take the whole batch
//! (the rest stays in the batch, which is written before anything else,
//! tungstenite's own frames included), a receiver that lagged, a pong
//! tungstenite may still owe. The task then writes within the write timeout,
//! as it always has, so the slow-spoke policy is the same for a parked spoke
//! as for any other.
//!
//! Each runtime that accepts spokes has one shard per worker thread, and a
//! spoke is seated in a shard of the runtime its task runs on, so that the
//! writes of a dispatch are spread as the spokes' tasks were, and no spoke
//! waits on a runtime other than its own. Spokes that sent `hub.subscribe`
//! are not parked: the routes (`crate::routes`) wake only the k spokes an
//! event is for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio_tungstenite::WebSocketStream;

use crate::batch::{self, Batch};
use crate::hub::{Frame, HubInner, Outgoing};
use crate::spoke::{Spoke, SpokeId};
use crate::stats::Stats;

/// The most frames the flusher writes to one spoke in one pass before it
/// goes on to the next spoke (and comes back in another pass).
const MAX_PER_PASS: usize = 256;

/// One spoke's connection, shared by its task and its shard's flusher.
///
/// The lock is held for one poll at a time, never across an `await`; who may
/// write is [`WireState::holder`]'s to say.
pub(crate) struct Wire<S> {
    spoke: Spoke,
    /// Whether the socket takes vectored writes ([`Batch`]).
    vectored: bool,
    state: Mutex<WireState<S>>,
}

pub(crate) struct WireState<S> {
    pub(crate) ws: WebSocketStream<S>,
    /// The frames gathered for the next write. Whatever is in it goes out
    /// before anything else is written or read.
    pub(crate) batch: Batch,
    /// Whether tungstenite may hold bytes of its own to write (a pong, the
    /// reply to a close): then only the task writes, after flushing them.
    pub(crate) ws_dirty: bool,
    pub(crate) holder: Holder,
}

/// Who writes the spoke's events, and holds its broadcast receiver.
pub(crate) enum Holder {
    /// The task: the spoke has subscribed, or has something of its own to
    /// write. The receiver, if any, is the task's.
    Task,
    /// The flusher: the spoke is parked.
    Flusher(broadcast::Receiver<Arc<Outgoing>>),
    /// Handed back by the flusher, which could not finish; the task takes
    /// the receiver at its next turn.
    Returned(broadcast::Receiver<Arc<Outgoing>>),
}

impl<S> Wire<S> {
    pub(crate) fn new(spoke: Spoke, ws: WebSocketStream<S>, vectored: bool) -> Self {
        let state = WireState { ws, batch: Batch::default(), ws_dirty: false, holder: Holder::Task };
        Self { spoke, vectored, state: Mutex::new(state) }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, WireState<S>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Polls `f` with the wire locked, for one poll at a time.
    pub(crate) async fn with<R>(&self, mut f: impl FnMut(&mut WireState<S>, &mut Context<'_>) -> Poll<R>) -> R {
        std::future::poll_fn(|cx| f(&mut self.lock(), cx)).await
    }

    /// Whether an event's frame is shared with the batch rather than copied.
    pub(crate) fn shares(&self, frame: &Frame) -> bool {
        self.vectored && frame.as_bytes().len() >= batch::SHARED_FRAME_MIN
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WireState<S> {
    /// Whether the batch must be written before a frame joins it: the frame
    /// would take the copies past `copy_limit` (the write buffer size), or
    /// the batch past its bounds.
    pub(crate) fn must_write_before(&self, frame: &Frame, shared: bool, copy_limit: usize) -> bool {
        let len = frame.as_bytes().len();
        let batch = &self.batch;
        let copies_full = !shared && batch.copied_len() + len > copy_limit;
        !batch.is_empty()
            && (copies_full || batch.len() + len > batch::MAX_BYTES || batch.pieces() >= batch::MAX_SLICES)
    }

    /// Adds a frame to the batch: the event's own, shared, where `shared`
    /// is given; a copy of `frame` otherwise.
    pub(crate) fn push(&mut self, frame: &Frame, shared: Option<&Arc<Outgoing>>) {
        match shared {
            Some(out) => self.batch.share(out.clone()),
            None => self.batch.copy(frame.as_bytes()),
        }
    }

    /// Writes the batch until it is empty or the socket takes no more.
    /// `Err` means the connection is lost; the batch is then emptied.
    pub(crate) fn poll_write_batch(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        use std::io::IoSlice;
        use std::pin::Pin;
        while !self.batch.is_empty() {
            let io = Pin::new(self.ws.get_mut());
            // One piece: a plain write, which costs the kernel less.
            let written = match self.batch.single() {
                Some(bytes) => io.poll_write(cx, bytes),
                None => {
                    let mut slices = [IoSlice::new(&[]); batch::MAX_SLICES];
                    let n = self.batch.slices(&mut slices);
                    io.poll_write_vectored(cx, &slices[..n])
                }
            };
            match written {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(n)) if n > 0 => self.batch.advance(n),
                Poll::Ready(_) => {
                    self.batch.clear();
                    return Poll::Ready(Err(()));
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// A parked spoke, as its shard's flusher sees it.
pub(crate) trait Seat: Send + Sync {
    /// Writes what the spoke's receiver holds, if the spoke is parked.
    /// Returns whether it holds more than one pass writes.
    fn flush(&self, hub: &HubInner, tally: &mut Tally) -> bool;
}

impl<S> Seat for Wire<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn flush(&self, hub: &HubInner, tally: &mut Tally) -> bool {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut events = match std::mem::replace(&mut state.holder, Holder::Task) {
            Holder::Flusher(events) => events,
            other => {
                state.holder = other;
                return false;
            }
        };
        let config = &hub.config;
        // The task's waker is not at hand: a socket that is not ready is
        // the task's to wait for, with its own.
        let mut cx = Context::from_waker(Waker::noop());
        let mut hand_back = state.ws_dirty;
        let mut more = false;
        let mut fed = 0;
        while !hand_back {
            if fed == MAX_PER_PASS {
                more = !events.is_empty();
                break;
            }
            match events.try_recv() {
                Ok(out) => {
                    if !config.echo && out.origin == Some(self.spoke.id()) {
                        continue;
                    }
                    let shared = self.shares(&out.frame);
                    if state.must_write_before(&out.frame, shared, config.write_buffer_size)
                        && state.poll_write_batch(&mut cx) != Poll::Ready(Ok(()))
                    {
                        // Taken from the channel already: it joins what the
                        // task will write.
                        hand_back = true;
                    }
                    state.push(&out.frame, shared.then_some(&out));
                    tally.count(&out.frame);
                    fed += 1;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(missed)) => {
                    // As for a subscribed spoke's full queue: the policy
                    // closes the spoke, or its task says `hub.lagged`.
                    self.spoke.missed_events(missed, &hub.stats);
                    hand_back = true;
                }
                Err(TryRecvError::Closed) => hand_back = true,
            }
        }
        if state.poll_write_batch(&mut cx) != Poll::Ready(Ok(())) {
            hand_back = true;
        }
        if hand_back {
            state.holder = Holder::Returned(events);
            drop(guard);
            self.spoke.shared.attention.notify_one();
            return false;
        }
        state.holder = Holder::Flusher(events);
        more
    }
}

/// Frames and bytes a pass wrote, added to the hub's counters once.
#[derive(Default)]
pub(crate) struct Tally {
    frames: u64,
    bytes: u64,
}

impl Tally {
    fn count(&mut self, frame: &Frame) {
        self.frames += 1;
        self.bytes += frame.payload_len() as u64;
    }

    fn add_to(self, stats: &Stats) {
        if self.frames > 0 {
            Stats::add(&stats.events_out, self.frames);
            Stats::add(&stats.bytes_out, self.bytes);
        }
    }
}

/// The hub's flushers: on each runtime that accepts its spokes, one per
/// worker thread, each writing for its shard of that runtime's spokes.
/// Started with the hub (on the runtime it is made on) or with the first
/// spoke a runtime accepts; stopped when the hub is dropped. Keeping each
/// runtime's spokes with its own flushers means no spoke waits for a
/// runtime that is idle (a current-thread runtime nobody drives) or gone.
#[derive(Default)]
pub(crate) struct Flushers {
    runtimes: RwLock<Vec<Runtime>>,
}

/// The flushers on one runtime.
struct Runtime {
    id: tokio::runtime::Id,
    shards: Box<[Arc<Shard>]>,
}

#[derive(Default)]
pub(crate) struct Shard {
    wake: Notify,
    /// Set when the hub is dropped: the flusher ends.
    stopped: AtomicBool,
    /// Set when the flusher has ended, the hub's drop or its runtime's
    /// shutdown ending it (and with it the tasks of the spokes seated here):
    /// no spoke parks here any more.
    gone: AtomicBool,
    seats: RwLock<HashMap<SpokeId, Arc<dyn Seat>>>,
}

impl Shard {
    /// Asks for a pass: a permit is kept if the flusher is busy, so a
    /// dispatch during a pass gets a pass after it.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Whether the shard's flusher still runs: a spoke parks only then.
    pub(crate) fn is_running(&self) -> bool {
        !self.gone.load(Ordering::Acquire)
    }

    /// Takes a spoke out of the shard: it has subscribed, or gone.
    pub(crate) fn unseat(&self, id: SpokeId) {
        self.seats.write().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}

/// Marks the shard's flusher as gone when it ends, however it ends (its
/// runtime dropping it, polled or not, included).
struct Gone(Arc<Shard>);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.gone.store(true, Ordering::Release);
    }
}

impl Flushers {
    /// Starts the flushers on the current runtime, if they are not running
    /// there yet.
    pub(crate) fn start(&self, hub: &Arc<HubInner>) {
        self.shard(hub, SpokeId(0));
    }

    /// Seats a spoke in its shard on the current runtime; returns the shard.
    pub(crate) fn seat(&self, hub: &Arc<HubInner>, id: SpokeId, seat: Arc<dyn Seat>) -> Arc<Shard> {
        let shard = self.shard(hub, id);
        shard.seats.write().unwrap_or_else(|e| e.into_inner()).insert(id, seat);
        shard
    }

    /// The shard of the current runtime's flushers that spoke `id` belongs
    /// to, starting them (one per worker thread) if they are not running.
    fn shard(&self, hub: &Arc<HubInner>, id: SpokeId) -> Arc<Shard> {
        let handle = tokio::runtime::Handle::current();
        let here = handle.id();
        let pick = |runtime: &Runtime| runtime.shards[id.0 as usize % runtime.shards.len()].clone();
        let running = |runtime: &Runtime| runtime.id == here && runtime.shards[0].is_running();
        if let Some(runtime) = self.runtimes.read().unwrap_or_else(|e| e.into_inner()).iter().find(|r| running(r)) {
            return pick(runtime);
        }
        let mut runtimes = self.runtimes.write().unwrap_or_else(|e| e.into_inner());
        // Those whose runtime has gone are left to the spokes seated there.
        runtimes.retain(|r| r.shards[0].is_running());
        if let Some(runtime) = runtimes.iter().find(|r| running(r)) {
            return pick(runtime);
        }
        let workers = handle.metrics().num_workers().max(1);
        let shards: Box<[Arc<Shard>]> = (0..workers)
            .map(|_| {
                let shard = Arc::new(Shard::default());
                // Unconstrained: a pass writes to every parked spoke of the
                // shard in one poll, which tokio's cooperative budget would
                // cut off (with `Pending`) after 128 writes.
                let gone = Gone(shard.clone());
                handle.spawn(tokio::task::unconstrained(flusher(gone, Arc::downgrade(hub))));
                shard
            })
            .collect();
        let runtime = Runtime { id: here, shards };
        let shard = pick(&runtime);
        runtimes.push(runtime);
        shard
    }

    /// Something was sent on the broadcast channel.
    pub(crate) fn wake(&self) {
        for runtime in self.runtimes.read().unwrap_or_else(|e| e.into_inner()).iter() {
            for shard in &runtime.shards {
                shard.wake();
            }
        }
    }
}

impl Drop for Flushers {
    fn drop(&mut self) {
        for runtime in self.runtimes.get_mut().unwrap_or_else(|e| e.into_inner()).iter() {
            for shard in &runtime.shards {
                shard.stopped.store(true, Ordering::Release);
                shard.wake();
            }
        }
    }
}

/// One shard's flusher: a pass over its parked spokes per wake.
async fn flusher(gone: Gone, hub: Weak<HubInner>) {
    // Taken as an argument, so that it is dropped with the future even if
    // the runtime never polls it.
    let shard = gone.0.clone();
    let _gone = gone;
    loop {
        shard.wake.notified().await;
        if shard.stopped.load(Ordering::Acquire) {
            return;
        }
        let Some(hub) = hub.upgrade() else { return };
        let mut tally = Tally::default();
        let mut more = false;
        for seat in shard.seats.read().unwrap_or_else(|e| e.into_inner()).values() {
            more |= seat.flush(&hub, &mut tally);
        }
        tally.add_to(&hub.stats);
        drop(hub);
        if more {
            shard.wake();
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;
    use crate::{Event, Hub, HubConfig};

    /// What parking is for: a dispatch to spokes that never subscribed is
    /// written by their shard's flusher, and their tasks are not woken for
    /// it. Without parking every event wakes every task: 20 × 10 turns.
    #[tokio::test]
    async fn a_dispatch_to_parked_spokes_is_written_without_waking_their_tasks() {
        const SPOKES: usize = 20;
        const EVENTS: usize = 10;
        let hub = Hub::new(HubConfig::default());
        let mut spokes = Vec::new();
        for _ in 0..SPOKES {
            let (near, far) = tokio::io::duplex(64 * 1024);
            hub.accept(WebSocketStream::from_raw_socket(near, Role::Server, None).await);
            spokes.push(WebSocketStream::from_raw_socket(far, Role::Client, None).await);
        }
        let turns = || hub.inner().turns.load(Ordering::Relaxed);
        // Every task takes its first turn, and parks at the end of it.
        while turns() < SPOKES as u64 {
            tokio::task::yield_now().await;
        }
        let before = turns();
        for i in 0..EVENTS {
            hub.dispatch(Event::new("parked", i.to_string(), i)).unwrap();
            // On this one-thread runtime, everything woken runs now.
            tokio::task::yield_now().await;
        }
        for spoke in &mut spokes {
            for i in 0..EVENTS {
                match spoke.next().await {
                    Some(Ok(Message::Text(text))) => assert!(text.contains(&format!(r#""id":"{i}""#)), "{text}"),
                    other => panic!("{other:?}"),
                }
            }
        }
        let woken = turns() - before;
        assert!(woken < SPOKES as u64, "{woken} task turns for {EVENTS} events to {SPOKES} parked spokes");
        assert_eq!(hub.stats().events_out, (SPOKES * EVENTS) as u64, "the flusher counts what it writes");
    }

    /// Accepts two spokes on the current runtime, dispatches three events,
    /// and fails unless each spoke receives all three, in order, in time.
    async fn dispatch_and_read(hub: &Hub) {
        const EVENTS: usize = 3;
        let mut readers = Vec::new();
        for _ in 0..2 {
            let (near, far) = tokio::io::duplex(64 * 1024);
            hub.accept(WebSocketStream::from_raw_socket(near, Role::Server, None).await);
            let mut spoke = WebSocketStream::from_raw_socket(far, Role::Client, None).await;
            readers.push(tokio::spawn(async move {
                for i in 0..EVENTS {
                    let next = tokio::time::timeout(std::time::Duration::from_secs(5), spoke.next()).await;
                    match next.expect("the event arrives") {
                        Some(Ok(Message::Text(text))) => assert!(text.contains(&format!(r#""id":"{i}""#)), "{text}"),
                        other => panic!("{other:?}"),
                    }
                }
            }));
        }
        tokio::task::yield_now().await;
        for i in 0..EVENTS {
            hub.dispatch(Event::new("elsewhere", i.to_string(), i)).unwrap();
            tokio::task::yield_now().await;
        }
        for reader in readers {
            reader.await.unwrap();
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// A hub made on one runtime and serving spokes on another: the spokes
    /// are written by flushers on their own runtime, not by those of the
    /// first, which nobody drives here.
    #[test]
    fn spokes_accepted_on_another_runtime_are_written_there_while_the_first_is_idle() {
        let first = runtime();
        let hub = first.block_on(async { Hub::new(HubConfig::default()) });
        runtime().block_on(dispatch_and_read(&hub));
        drop(first);
    }

    #[test]
    fn a_hub_that_outlives_the_runtime_it_started_on_still_reaches_its_spokes() {
        let hub = runtime().block_on(async { Hub::new(HubConfig::default()) });
        // That runtime, and the flushers on it, are gone.
        runtime().block_on(dispatch_and_read(&hub));
    }
}
