//! A load generator for WebSocket pub/sub relays: wshub, and the peers
//! `bench/compare.sh` measures it against.
//!
//! It opens N subscriber and P publisher connections to a relay (every
//! connection receives what every other one sends), publishes envelopes of B
//! bytes whose payload carries the send time, and prints one JSON line:
//! deliveries per second, messages lost, send-to-receive latency percentiles
//! (HDR histogram), and, given `--server-pid`, the server's CPU time and RSS
//! over the measured phase (from `/proc`).
//!
//! ```sh
//! cargo run --release --example loadgen -- --url ws://127.0.0.1:8080/ --subscribers 1000 --size 64 --duration 5
//! cargo run --release --example loadgen -- --url ws://127.0.0.1:8080/ --subscribers 1000 --rate 200
//! cargo run --release --example loadgen -- --url ws://127.0.0.1:8080/ --idle 5000 --server-pid 1234
//! cargo run --release --example loadgen -- table results.jsonl   # the table compare.sh prints
//! ```
//!
//! It runs on one thread (pin it to a core of its own), and speaks just enough
//! WebSocket to load a server cheaply: a plain HTTP upgrade, frames parsed in
//! place without a copy per message, client frames masked with a zero key
//! (RFC 6455 requires a mask, not an unpredictable one from a non-browser).
//! Pings are not answered: runs are far shorter than any heartbeat timeout.
//!
//! Without `--rate`, publishing is as fast as the relay delivers: at most
//! `--window` events are in flight (sent but not yet received by every
//! connection), so no relay is pushed past its buffers and "lost" means lost.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;

const USAGE: &str = "\
loadgen --url ws://HOST:PORT/PATH [options]
  --subscribers N   connections that only receive (default 100)
  --publishers P    connections that publish (and receive the others') (default 1)
  --stalled K       connections that never read after the upgrade (default 0)
  --size B          bytes per envelope (default 64)
  --duration S      seconds of publishing at most (default 5)
  --events M        events to publish at most, all publishers together (default: no limit)
  --rate R          events per second, all publishers together (default: as fast as the window allows)
  --window W        events in flight at most without --rate (default 64)
  --idle N          memory mode: open N connections, publish nothing, report server KiB per connection
  --server-pid PID  read the server's CPU time and RSS from /proc
  --label TEXT      copied into the JSON line (repeatable as key=value)
loadgen table FILE  print the comparison table from the JSON lines in FILE";

/// Linux reports utime and stime in USER_HZ ticks, 100 a second on every
/// architecture's user ABI.
const TICKS_PER_SEC: f64 = 100.0;
const READ_BUFFER: usize = 32 * 1024;
/// A run stops waiting for deliveries after this long without one.
const DRAIN_IDLE: Duration = Duration::from_secs(3);
/// And after this long in all, whatever happens.
const DRAIN_MAX: Duration = Duration::from_secs(60);
const CONNECT_CONCURRENCY: usize = 64;

#[derive(Clone, Debug)]
struct Args {
    addr: SocketAddr,
    host: String,
    path: String,
    subscribers: usize,
    publishers: usize,
    stalled: usize,
    size: usize,
    duration: Duration,
    events: u64,
    rate: f64,
    window: u64,
    idle: usize,
    server_pid: Option<u32>,
    labels: BTreeMap<String, String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut url = None;
    let mut a = Args {
        addr: "127.0.0.1:8080".parse().expect("an address"),
        host: String::new(),
        path: "/".into(),
        subscribers: 100,
        publishers: 1,
        stalled: 0,
        size: 64,
        duration: Duration::from_secs(5),
        events: u64::MAX,
        rate: 0.0,
        window: 64,
        idle: 0,
        server_pid: None,
        labels: BTreeMap::new(),
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
        }
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--subscribers" => a.subscribers = num(&flag, value()?)?,
            "--publishers" => a.publishers = num(&flag, value()?)?,
            "--stalled" => a.stalled = num(&flag, value()?)?,
            "--size" => a.size = num(&flag, value()?)?,
            "--duration" => a.duration = Duration::from_secs_f64(num(&flag, value()?)?),
            "--events" => a.events = num(&flag, value()?)?,
            "--rate" => a.rate = num(&flag, value()?)?,
            "--window" => a.window = num::<u64>(&flag, value()?)?.max(1),
            "--idle" => a.idle = num(&flag, value()?)?,
            "--server-pid" => a.server_pid = Some(num(&flag, value()?)?),
            "--label" => {
                let v = value()?;
                let (k, v) = v.split_once('=').unwrap_or(("label", &v));
                a.labels.insert(k.to_owned(), v.to_owned());
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let url = url.ok_or_else(|| format!("--url is required\n{USAGE}"))?;
    let rest = url.strip_prefix("ws://").ok_or("only ws:// URLs")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    a.addr = host.parse().map_err(|_| format!("the URL's host must be IP:PORT, not {host}"))?;
    a.host = host.to_owned();
    a.path = path.to_owned();
    a.publishers = a.publishers.max(1);
    Ok(a)
}

fn main() {
    let mut argv = std::env::args().skip(1).peekable();
    if argv.peek().map(String::as_str) == Some("table") {
        let file = argv.nth(1).unwrap_or_else(|| exit_with(USAGE));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| exit_with(&format!("{file}: {e}")));
        print!("{}", table(&text));
        return;
    }
    let args = parse_args(argv).unwrap_or_else(|e| exit_with(&e));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&rt, async move { if args.idle > 0 { idle(&args).await } else { run(&args).await } });
    match report {
        Ok(line) => println!("{line}"),
        Err(e) => exit_with(&format!("loadgen: {e}")),
    }
    // Thousands of open connections: leave without tearing each one down.
    std::process::exit(0);
}

fn exit_with(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(2)
}

// --- the server, seen from /proc ----------------------------------------------

#[derive(Clone, Copy, Debug, Default)]
struct ServerSample {
    cpu_s: f64,
    rss_kib: u64,
}

fn server_sample(pid: Option<u32>) -> Option<ServerSample> {
    let pid = pid?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command's closing parenthesis start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some(ServerSample { cpu_s: ticks as f64 / TICKS_PER_SEC, rss_kib })
}

// --- connections --------------------------------------------------------------

/// What every connection's reader adds to.
struct Shared {
    start: Instant,
    /// Event frames received by every connection together.
    received: Cell<u64>,
    last_delivery: Cell<Option<Instant>>,
    /// Connections that ended (close frame, EOF or error) while the run went on.
    ended: Cell<u64>,
    latency_ns: RefCell<Histogram<u64>>,
    progress: Notify,
}

impl Shared {
    fn new() -> Rc<Self> {
        Rc::new(Self {
            start: Instant::now(),
            received: Cell::new(0),
            last_delivery: Cell::new(None),
            ended: Cell::new(0),
            latency_ns: RefCell::new(Histogram::new_with_bounds(1, 120_000_000_000, 3).expect("valid bounds")),
            progress: Notify::new(),
        })
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

struct Upgraded {
    stream: TcpStream,
    buf: Vec<u8>,
    filled: usize,
}

async fn connect(args: &Args) -> io::Result<Upgraded> {
    let mut stream = TcpStream::connect(args.addr).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        args.path, args.host
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; READ_BUFFER];
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed during the upgrade"));
        }
        filled += n;
        if let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            if !buf.starts_with(b"HTTP/1.1 101") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                return Err(io::Error::other(format!("upgrade refused: {head}")));
            }
            buf.copy_within(end + 4..filled, 0);
            filled -= end + 4;
            return Ok(Upgraded { stream, buf, filled });
        }
        if filled == buf.len() {
            return Err(io::Error::other("upgrade response too long"));
        }
    }
}

/// Opens `n` connections, `CONNECT_CONCURRENCY` at a time.
async fn connect_many(args: &Args, n: usize) -> io::Result<Vec<Upgraded>> {
    let results: Vec<io::Result<Upgraded>> =
        futures::stream::iter(0..n).map(|_| connect(args)).buffer_unordered(CONNECT_CONCURRENCY).collect().await;
    results.into_iter().collect()
}

/// A server frame's header: (opcode, header length, payload length).
fn frame_header(b: &[u8]) -> Option<(u8, usize, usize)> {
    if b.len() < 2 {
        return None;
    }
    let opcode = b[0] & 0x0f;
    let masked = b[1] & 0x80 != 0;
    let (len, mut header) = match b[1] & 0x7f {
        126 => (u16::from_be_bytes(b.get(2..4)?.try_into().ok()?) as usize, 4),
        127 => (u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (n as usize, 2),
    };
    if masked {
        header += 4;
    }
    (b.len() >= header + len).then_some((opcode, header, len))
}

/// The send time the publisher wrote into the payload: the digits after
/// `"t":`, near the start of the envelope.
fn sent_at(payload: &[u8]) -> Option<u64> {
    let head = &payload[..payload.len().min(128)];
    let at = head.windows(4).position(|w| w == b"\"t\":")? + 4;
    let digits = payload[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut t = 0u64;
    let mut any = false;
    for d in digits {
        t = t * 10 + u64::from(d - b'0');
        any = true;
    }
    any.then_some(t)
}

/// Counts every event frame this connection receives and records its latency.
async fn read_loop(mut rd: OwnedReadHalf, mut buf: Vec<u8>, mut filled: usize, shared: Rc<Shared>) {
    loop {
        let now = shared.now_ns();
        let mut pos = 0;
        let mut events = 0;
        {
            let mut hist = shared.latency_ns.borrow_mut();
            while let Some((opcode, header, len)) = frame_header(&buf[pos..filled]) {
                let payload = &buf[pos + header..pos + header + len];
                match opcode {
                    0x1 | 0x2 => {
                        events += 1;
                        if let Some(t) = sent_at(payload) {
                            hist.saturating_record(now.saturating_sub(t).max(1));
                        }
                    }
                    0x8 => {
                        shared.ended.set(shared.ended.get() + 1);
                        return;
                    }
                    _ => {}
                }
                pos += header + len;
            }
        }
        if events > 0 {
            shared.received.set(shared.received.get() + events);
            shared.last_delivery.set(Some(Instant::now()));
            shared.progress.notify_waiters();
        }
        buf.copy_within(pos..filled, 0);
        filled -= pos;
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match rd.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => {
                shared.ended.set(shared.ended.get() + 1);
                return;
            }
            Ok(n) => filled += n,
        }
    }
}

fn spawn_reader(conn: Upgraded, shared: &Rc<Shared>) -> OwnedWriteHalf {
    let (rd, wr) = conn.stream.into_split();
    tokio::task::spawn_local(read_loop(rd, conn.buf, conn.filled, shared.clone()));
    wr
}

/// One envelope of `size` bytes (or the smallest it can be), as a masked
/// client text frame.
fn envelope_frame(frame: &mut Vec<u8>, publisher: usize, sent_ns: u64, size: usize) {
    let head = format!(r#"{{"type":"bench","id":"p{publisher}","payload":{{"t":{sent_ns},"p":""#);
    let tail = r#""}}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    let len = head.len() + pad + tail.len();
    frame.clear();
    frame.push(0x81);
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len <= 0xffff {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    // A zero mask: the payload is its own masked form.
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(head.as_bytes());
    frame.resize(frame.len() + pad, b'x');
    frame.extend_from_slice(tail.as_bytes());
}

/// Publishing state shared by the publishers.
struct Publishing {
    sent: Cell<u64>,
    /// Deliveries each event is due: every connection but its sender and the stalled ones.
    fan_out: u64,
    first_send: Cell<Option<Instant>>,
}

/// Publishes until the run's end; hands the connection back, still open.
async fn publish(
    mut wr: OwnedWriteHalf,
    index: usize,
    args: Args,
    shared: Rc<Shared>,
    state: Rc<Publishing>,
) -> OwnedWriteHalf {
    let deadline = Instant::now() + args.duration;
    let mut frame = Vec::with_capacity(args.size + 16);
    let mut ticker = (args.rate > 0.0).then(|| {
        let period = Duration::from_secs_f64(args.publishers as f64 / args.rate);
        let mut t = tokio::time::interval(period);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    loop {
        if state.sent.get() >= args.events || Instant::now() >= deadline {
            return wr;
        }
        match &mut ticker {
            Some(t) => {
                t.tick().await;
            }
            None => {
                // Wait until fewer than `window` events are in flight.
                while state.sent.get().saturating_sub(shared.received.get() / state.fan_out.max(1)) >= args.window {
                    let waited = tokio::time::timeout(DRAIN_IDLE, shared.progress.notified()).await;
                    if waited.is_err() || Instant::now() >= deadline {
                        return wr;
                    }
                }
            }
        }
        if state.sent.get() >= args.events {
            return wr;
        }
        envelope_frame(&mut frame, index, shared.now_ns(), args.size);
        if state.first_send.get().is_none() {
            state.first_send.set(Some(Instant::now()));
        }
        state.sent.set(state.sent.get() + 1);
        if wr.write_all(&frame).await.is_err() {
            return wr;
        }
    }
}

async fn run(args: &Args) -> io::Result<Value> {
    let shared = Shared::new();
    let subscribers = connect_many(args, args.subscribers).await?;
    let publishers = connect_many(args, args.publishers).await?;
    let stalled = connect_many(args, args.stalled).await?;
    let _writers: Vec<OwnedWriteHalf> = subscribers.into_iter().map(|c| spawn_reader(c, &shared)).collect();
    let writers: Vec<OwnedWriteHalf> = publishers.into_iter().map(|c| spawn_reader(c, &shared)).collect();
    // Let the server settle its accept work before the measured phase.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let state = Rc::new(Publishing {
        sent: Cell::new(0),
        fan_out: (args.subscribers + args.publishers - 1) as u64,
        first_send: Cell::new(None),
    });
    let before = server_sample(args.server_pid);
    let rss_max = Rc::new(Cell::new(before.map_or(0, |s| s.rss_kib)));
    let sampling = {
        let (pid, rss_max) = (args.server_pid, rss_max.clone());
        tokio::task::spawn_local(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Some(s) = server_sample(pid) {
                    rss_max.set(rss_max.get().max(s.rss_kib));
                }
            }
        })
    };
    let tasks: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(i, wr)| tokio::task::spawn_local(publish(wr, i, args.clone(), shared.clone(), state.clone())))
        .collect();
    let mut open = Vec::new();
    for task in tasks {
        open.extend(task.await.ok());
    }
    let published = Instant::now();
    let expected = state.sent.get() * state.fan_out;
    // Wait for the deliveries still on their way.
    loop {
        if shared.received.get() >= expected || published.elapsed() > DRAIN_MAX {
            break;
        }
        let last = shared.last_delivery.get().unwrap_or(published).max(published);
        if last.elapsed() > DRAIN_IDLE {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), shared.progress.notified()).await;
    }
    let after = server_sample(args.server_pid);
    sampling.abort();
    if let Some(s) = after {
        rss_max.set(rss_max.get().max(s.rss_kib));
    }
    drop((stalled, open));

    let received = shared.received.get();
    let first = state.first_send.get().unwrap_or(published);
    let last = shared.last_delivery.get().unwrap_or(published);
    let elapsed = last.saturating_duration_since(first).as_secs_f64().max(1e-9);
    let hist = shared.latency_ns.borrow();
    let us = |q: f64| (hist.value_at_quantile(q) as f64 / 1000.0 * 10.0).round() / 10.0;
    let mut line = json!({
        "subscribers": args.subscribers,
        "publishers": args.publishers,
        "stalled": args.stalled,
        "size": args.size,
        "rate": args.rate,
        "sent": state.sent.get(),
        "expected": expected,
        "received": received,
        "lost": expected.saturating_sub(received),
        "ended_connections": shared.ended.get(),
        "elapsed_s": elapsed,
        "deliveries_per_s": received as f64 / elapsed,
        "p50_us": us(0.5),
        "p99_us": us(0.99),
        "p999_us": us(0.999),
        "max_us": (hist.max() as f64 / 1000.0).round(),
    });
    if let (Some(b), Some(a)) = (before, after) {
        let cpu = a.cpu_s - b.cpu_s;
        line["server_cpu_s"] = json!(cpu);
        line["cpu_us_per_delivery"] = json!(if received > 0 { cpu * 1e6 / received as f64 } else { 0.0 });
        line["rss_start_kib"] = json!(b.rss_kib);
        line["rss_max_kib"] = json!(rss_max.get());
        line["rss_end_kib"] = json!(a.rss_kib);
    }
    for (k, v) in &args.labels {
        line[k] = json!(v);
    }
    Ok(line)
}

async fn idle(args: &Args) -> io::Result<Value> {
    const WARM: usize = 100;
    let shared = Shared::new();
    // The first connections pay for the server's one-time growth (runtime,
    // allocator arenas): measure from after them.
    let warm = connect_many(args, WARM).await?;
    let mut writers: Vec<OwnedWriteHalf> = warm.into_iter().map(|c| spawn_reader(c, &shared)).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server_sample(args.server_pid);
    let started = Instant::now();
    let conns = connect_many(args, args.idle).await?;
    let connect_s = started.elapsed().as_secs_f64();
    writers.extend(conns.into_iter().map(|c| spawn_reader(c, &shared)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server_sample(args.server_pid);
    let mut line = json!({
        "idle": args.idle,
        "connect_s": connect_s,
        "ended_connections": shared.ended.get(),
    });
    if let (Some(b), Some(a)) = (before, after) {
        line["rss_start_kib"] = json!(b.rss_kib);
        line["rss_max_kib"] = json!(a.rss_kib);
        line["rss_end_kib"] = json!(a.rss_kib);
        line["idle_kib_per_conn"] = json!(a.rss_kib.saturating_sub(b.rss_kib) as f64 / args.idle as f64);
    }
    for (k, v) in &args.labels {
        line[k] = json!(v);
    }
    drop(writers);
    Ok(line)
}

// --- the table ----------------------------------------------------------------

/// The comparison table: one row per scenario and server, and after each
/// scenario wshub's ratio to each peer (for every column, below 1.0 is
/// better for wshub except deliveries/s, where above 1.0 is).
fn table(jsonl: &str) -> String {
    let rows: Vec<Value> = jsonl.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let mut scenarios: Vec<String> = Vec::new();
    for r in &rows {
        let s = r["scenario"].as_str().unwrap_or("?").to_owned();
        if !scenarios.contains(&s) {
            scenarios.push(s);
        }
    }
    let f = |r: &Value, k: &str| r.get(k).and_then(Value::as_f64);
    let cols: [(&str, &str, usize); 8] = [
        ("deliveries/s", "deliveries_per_s", 0),
        ("CPU µs/delivery", "cpu_us_per_delivery", 3),
        ("p50 µs", "p50_us", 0),
        ("p99 µs", "p99_us", 0),
        ("lost", "lost", 0),
        ("RSS start MiB", "rss_start_kib", 1),
        ("RSS max MiB", "rss_max_kib", 1),
        ("idle KiB/conn", "idle_kib_per_conn", 2),
    ];
    let mut out = String::from("| scenario | server |");
    for (name, _, _) in &cols {
        out += &format!(" {name} |");
    }
    out += "\n|---|---|";
    out += &"---:|".repeat(cols.len());
    out += "\n";
    for s in &scenarios {
        let of: Vec<&Value> = rows.iter().filter(|r| r["scenario"].as_str() == Some(s)).collect();
        for r in &of {
            out += &format!("| {s} | {} |", r["server"].as_str().unwrap_or("?"));
            for (_, key, digits) in &cols {
                let v = f(r, key).map(|v| if key.ends_with("_kib") { v / 1024.0 } else { v });
                out += &match v {
                    Some(v) => format!(" {} |", fmt_num(v, *digits)),
                    None => " |".into(),
                };
            }
            out += "\n";
        }
        let Some(wshub) = of.iter().find(|r| r["server"].as_str() == Some("wshub")) else { continue };
        for peer in of.iter().filter(|r| r["server"].as_str() != Some("wshub")) {
            out += &format!("| {s} | **wshub ÷ {}** |", peer["server"].as_str().unwrap_or("?"));
            for (_, key, _) in &cols {
                out += &match (f(wshub, key), f(peer, key)) {
                    (Some(a), Some(b)) if b != 0.0 && *key != "lost" => format!(" {:.2}× |", a / b),
                    _ => " |".into(),
                };
            }
            out += "\n";
        }
    }
    out
}

fn fmt_num(v: f64, digits: usize) -> String {
    if digits == 0 && v.abs() >= 10_000.0 {
        // Thousands separated, for reading at a glance.
        let s = format!("{:.0}", v);
        let mut grouped = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        grouped
    } else {
        format!("{v:.digits$}")
    }
}
