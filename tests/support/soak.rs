//! A soak: a hub dispatching at a steady rate to well-behaved spokes while
//! other spokes churn around them, connecting and leaving in every way a
//! network allows, sending garbage, oversized messages, or nothing while
//! they stop reading. At the end it reports what held and what was lost.
//!
//! Shared by `tests/soak.rs` (seconds, in CI) and `examples/soak.rs`
//! (minutes, on demand: `bash scripts/soak.sh MINUTES`).
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use wshub::{Event, Hub, HubConfig};

/// How long and how hard.
#[derive(Clone, Debug)]
pub struct Settings {
    pub duration: Duration,
    /// Well-behaved spokes, connected all along; half of them subscribe.
    pub steady: usize,
    /// Churning spokes alive at once.
    pub churners: usize,
    /// Events dispatched per second.
    pub rate: u32,
}

/// What happened.
#[derive(Debug)]
pub struct Report {
    pub settings: Settings,
    pub elapsed: Duration,
    pub churn_cycles: u64,
    pub churn_by_kind: BTreeMap<&'static str, u64>,
    pub dispatched: u64,
    /// Events every steady spoke should have received, summed.
    pub expected: u64,
    pub received: u64,
    pub closes: BTreeMap<u16, u64>,
    pub spokes_after: usize,
    pub tasks_before: usize,
    pub tasks_after: usize,
    pub rss_before_kib: u64,
    /// RSS sampled ten times during the run, after the first tenth (the
    /// warm-up): a plateau, not a slope, is what bounded memory looks like.
    pub rss_during_kib: Vec<u64>,
    pub rss_after_kib: u64,
}

impl Report {
    pub fn lost(&self) -> u64 {
        self.expected - self.received
    }

    /// One line for `docs/reliability.md`.
    pub fn line(&self) -> String {
        let s = &self.settings;
        format!(
            "reliability: soak, {:.1} min | {} churn cycles ({}) around {} steady spokes, {} events at {}/s | all {} steady spokes kept, {} of {} deliveries; hub closes {:?}; spokes after {}, tasks {} -> {}, RSS (hub and clients in one process) {} KiB before, {} KiB during (sampled every tenth of the run), {} KiB after | {}",
            self.elapsed.as_secs_f64() / 60.0,
            self.churn_cycles,
            self.churn_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
            s.steady,
            self.dispatched,
            s.rate,
            s.steady,
            self.received,
            self.expected,
            self.closes,
            self.spokes_after,
            self.tasks_before,
            self.tasks_after,
            self.rss_before_kib,
            self.rss_during_kib.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
            self.rss_after_kib,
            self.lost(),
        )
    }
}

const KINDS: [&str; 6] = ["clean close", "reset", "garbage", "oversized", "stalled", "sender"];

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// Runs a soak on the current runtime; returns once every churner has left.
pub async fn run(settings: Settings) -> Report {
    let config = HubConfig::default()
        .max_message_size(16 * 1024)
        .broadcast_capacity(512)
        .write_timeout(Duration::from_secs(2))
        .heartbeat(Duration::from_secs(1), Duration::from_secs(3));
    let hub = Hub::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let url = format!("ws://{addr}/");
    let serving = tokio::spawn(hub.clone().serve(listener).into_future());
    let tasks_before = alive_tasks();
    let rss_before_kib = rss_kib();

    // The well-behaved spokes: each reads every event and checks the sequence.
    let mut steady = Vec::new();
    for k in 0..settings.steady {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.expect("connect");
        if k % 2 == 1 {
            for pattern in ["soak:*", "soak.end:*"] {
                ws.send(Message::text(json!({"type": "hub.subscribe", "id": pattern}).to_string())).await.unwrap();
                let ack = next_json(&mut ws).await;
                assert_eq!(ack["type"], "hub.subscribed", "{ack}");
            }
        }
        steady.push(tokio::spawn(read_sequence(ws)));
    }
    while hub.spoke_count() < settings.steady {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let started = Instant::now();
    let deadline = started + settings.duration;
    let cycles: Arc<[AtomicU64; KINDS.len()]> = Arc::default();
    let churn: Vec<_> = (0..settings.churners)
        .map(|worker| {
            let (url, cycles) = (url.clone(), cycles.clone());
            tokio::spawn(async move {
                let mut i = worker;
                while Instant::now() < deadline {
                    let kind = i % KINDS.len();
                    churn_once(&url, addr, kind).await;
                    cycles[kind].fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();

    // The dispatcher: a steady rate, measured against the clock.
    let mut dispatched = 0u64;
    let payload = json!({"text": "x".repeat(200)});
    let mut tick = tokio::time::interval(Duration::from_secs(1) / settings.rate);
    let mut rss_during_kib = Vec::new();
    let tenth = settings.duration / 10;
    let mut next_sample = started + tenth;
    while Instant::now() < deadline {
        tick.tick().await;
        if Instant::now() >= next_sample {
            rss_during_kib.push(rss_kib());
            next_sample += tenth;
        }
        hub.dispatch(Event::new("soak", dispatched.to_string(), payload.clone())).expect("dispatch");
        dispatched += 1;
    }
    hub.dispatch(Event::new("soak.end", "", dispatched)).expect("dispatch");
    for task in churn {
        task.await.expect("a churner");
    }
    let elapsed = started.elapsed();

    let mut received = 0;
    let mut steady_ws = Vec::new();
    for task in steady {
        let (n, ws) = tokio::time::timeout(Duration::from_secs(60), task).await.expect("steady spokes finish").unwrap();
        received += n;
        steady_ws.push(ws);
    }
    // Every churner is gone; the steady spokes are all still there.
    let settle = Instant::now();
    while hub.spoke_count() != settings.steady && settle.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let spokes_after = hub.spoke_count();
    drop(steady_ws);
    let settle = Instant::now();
    while (hub.spoke_count() > 0 || alive_tasks() > tasks_before) && settle.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = Report {
        settings: settings.clone(),
        elapsed,
        churn_cycles: cycles.iter().map(|c| c.load(Ordering::Relaxed)).sum(),
        churn_by_kind: KINDS.iter().zip(cycles.iter()).map(|(k, c)| (*k, c.load(Ordering::Relaxed))).collect(),
        dispatched,
        expected: dispatched * settings.steady as u64,
        received,
        closes: hub.stats().closes,
        spokes_after,
        tasks_before,
        tasks_after: alive_tasks(),
        rss_before_kib,
        rss_during_kib,
        rss_after_kib: rss_kib(),
    };
    hub.shutdown().await;
    let _ = serving.await;
    report
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn next_json(ws: &mut Ws) -> serde_json::Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("a message in time") {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).expect("JSON"),
            Some(Ok(_)) => continue,
            other => panic!("a steady spoke lost its connection: {other:?}"),
        }
    }
}

/// Reads `soak` events until `soak.end`; every one must arrive, in order.
/// Returns how many arrived, and the connection (still open).
async fn read_sequence(mut ws: Ws) -> (u64, Ws) {
    let mut next = 0u64;
    loop {
        let v = next_json(&mut ws).await;
        match v["type"].as_str() {
            Some("soak") => {
                assert_eq!(v["id"], next.to_string(), "a steady spoke's events arrive in order, none lost");
                next += 1;
            }
            Some("soak.end") => {
                assert_eq!(v["payload"], next, "a steady spoke received every event");
                return (next, ws);
            }
            _ => panic!("unexpected {v}"),
        }
    }
}

/// One churning spoke's life, of one kind.
async fn churn_once(url: &str, addr: std::net::SocketAddr, kind: usize) {
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else { return };
    match KINDS[kind] {
        "clean close" => {
            let _ = ws.close(None).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
        "reset" => {
            if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
                let _ = tcp.set_zero_linger();
            }
        }
        "garbage" => {
            let _ = ws.send(Message::text("{not json")).await;
            let _ = ws.send(Message::binary(vec![0xff, 0x00, 0xfe])).await;
            let _ = ws.send(Message::text(r#"{"type":"hub.nope","id":""}"#)).await;
            let _ = ws.close(None).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
        "oversized" => {
            let _ = ws.send(Message::text("x".repeat(17 * 1024))).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
        "stalled" => {
            // Connected, reading nothing, while events flow.
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        _ => {
            for i in 0..20 {
                let event = json!({"type": "churn", "id": i.to_string(), "payload": addr.port()}).to_string();
                if ws.send(Message::text(event)).await.is_err() {
                    break;
                }
            }
            let _ = ws.close(None).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
    }
}
