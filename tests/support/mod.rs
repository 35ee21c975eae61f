//! The harness every integration test shares: a hub served on
//! `127.0.0.1:0`, plain tokio-tungstenite spokes, and raw frames for the
//! inputs a well-behaved client library will not send.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wshub::{Hub, HubConfig};

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A hub serving on a free loopback port.
pub struct TestHub {
    pub hub: Hub,
    pub addr: SocketAddr,
    pub serving: JoinHandle<std::io::Result<()>>,
}

impl TestHub {
    pub async fn start(config: HubConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hub = Hub::new(config);
        let serving = tokio::spawn(hub.clone().serve(listener).into_future());
        Self { hub, addr, serving }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Connects a spoke and waits until the hub has registered it: this
    /// spoke, found by its address, not any (connections made at the same
    /// time finish their handshakes in any order).
    pub async fn connect(&self) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(self.url()).await.expect("connect");
        let here = match ws.get_ref() {
            MaybeTlsStream::Plain(tcp) => tcp.local_addr().expect("local address"),
            _ => unreachable!("the test hub is plain TCP"),
        };
        self.wait_until(|hub| hub.spokes().iter().any(|spoke| spoke.remote_addr() == Some(here))).await;
        ws
    }

    /// Waits, polling the hub's own state, until `cond` holds.
    pub async fn wait_until(&self, cond: impl Fn(&Hub) -> bool) {
        wait_for(|| cond(&self.hub)).await;
    }
}

/// The next item of `stream`; fails the test after [`WAIT`], or if the stream
/// ends.
pub async fn next_item<S: futures::Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(WAIT, stream.next()).await.expect("nothing arrived in time").expect("the stream ended")
}

/// Polls `cond` every few milliseconds until it holds; fails the test after [`WAIT`].
pub async fn wait_for(mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("condition not reached in time");
}

pub fn envelope(ty: &str, id: &str, payload: Value) -> String {
    serde_json::json!({ "type": ty, "id": id, "payload": payload }).to_string()
}

pub async fn send(ws: &mut Ws, text: impl Into<String>) {
    ws.send(Message::text(text.into())).await.expect("send");
}

/// The next data message as JSON (pings and pongs skipped).
pub async fn recv(ws: &mut Ws) -> Value {
    let text = recv_text(ws).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The next data message's text, exactly as it came.
pub async fn recv_text(ws: &mut Ws) -> String {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next()).await.expect("no message in time");
        match message {
            Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
            Some(Ok(Message::Binary(b))) => return String::from_utf8(b.to_vec()).expect("utf-8"),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a data message, got {other:?}"),
        }
    }
}

/// Asserts nothing but pings arrives within `d`.
pub async fn expect_silence(ws: &mut Ws, d: Duration) {
    let _ = tokio::time::timeout(d, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected silence, got {other:?}"),
            }
        }
    })
    .await;
}

/// Reads until the hub's close frame; returns its code and reason.
pub async fn recv_close(ws: &mut Ws) -> (u16, String) {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next()).await.expect("no close in time");
        match message {
            Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                return (u16::from(code), reason.as_str().to_owned());
            }
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Dispatches `total` events of 16 KiB as fast as the hub takes them, enough
/// to fill a spoke's socket buffers when it does not read meanwhile.
pub async fn flood(hub: &TestHub, total: u64) {
    let payload = serde_json::json!("y".repeat(16 * 1024));
    for i in 0..total {
        hub.hub.dispatch(wshub::Event::new("big", i.to_string(), payload.clone())).unwrap();
        if i % 16 == 0 {
            tokio::task::yield_now().await;
        }
    }
}

/// Reads until the events received and the `hub.lagged` counts add up to
/// `total`, checking the events stay in order; returns (received, missed).
pub async fn read_with_lags(ws: &mut Ws, total: u64) -> (u64, u64) {
    let (mut received, mut missed, mut last) = (0u64, 0u64, -1i64);
    while received + missed < total {
        let v = recv(ws).await;
        if v["type"] == "hub.lagged" {
            assert_eq!(v["id"], "");
            missed += v["payload"]["missed"].as_u64().unwrap();
        } else {
            let i: i64 = v["id"].as_str().unwrap().parse().unwrap();
            assert!(i > last, "events stay in order");
            last = i;
            received += 1;
        }
    }
    (received, missed)
}

/// Upgrades at `url` offering permessage-deflate, as browsers do; returns
/// the hub's answer to the upgrade.
pub async fn upgrade_offering_compression(url: &str) -> tokio_tungstenite::tungstenite::handshake::client::Response {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().expect("a request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits".parse().unwrap());
    let (_ws, response) = tokio_tungstenite::connect_async(request).await.expect("upgrade");
    response
}

/// Subscribes a spoke on the hub side and waits for the acknowledgement.
pub async fn hub_subscribe(ws: &mut Ws, pattern: &str) {
    send(ws, serde_json::json!({ "type": "hub.subscribe", "id": pattern }).to_string()).await;
    let ack = recv(ws).await;
    assert_eq!(ack["type"], "hub.subscribed", "{ack}");
    assert_eq!(ack["id"], pattern);
}

/// A spoke on a raw socket: the WebSocket handshake is done, then the test
/// writes bytes of its own choosing.
pub struct RawSpoke {
    pub stream: TcpStream,
}

impl RawSpoke {
    pub async fn connect(hub: &TestHub) -> Self {
        let tcp = TcpStream::connect(hub.addr).await.expect("tcp connect");
        let here = tcp.local_addr().expect("local address");
        let (ws, _) = tokio_tungstenite::client_async(hub.url(), tcp).await.expect("handshake");
        // This spoke, by its address (see `TestHub::connect`).
        hub.wait_until(|h| h.spokes().iter().any(|spoke| spoke.remote_addr() == Some(here))).await;
        Self { stream: ws.into_inner() }
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("raw write");
    }

    /// Reads frames from the hub until a close frame; returns its code.
    pub async fn recv_close(self) -> u16 {
        let mut ws =
            WebSocketStream::from_raw_socket(self.stream, tokio_tungstenite::tungstenite::protocol::Role::Client, None)
                .await;
        loop {
            match tokio::time::timeout(WAIT, ws.next()).await.expect("no close in time") {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}

/// One WebSocket frame, as a client sends it (masked unless `masked` is false).
pub fn frame(opcode: u8, payload: &[u8], fin: bool, rsv: u8, masked: bool) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x12, 0x34, 0x56, 0x78];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// The resident set size of this process, in KiB (Linux).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
