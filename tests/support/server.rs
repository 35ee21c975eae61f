//! The harness of the `server_*` tests: the real `wshub` binary on a free
//! loopback port, plain HTTP requests, and Node spokes (the `ws` package)
//! and a headless Chromium page driven over stdin/stdout.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::support::{WAIT, Ws, recv, send};

/// The repository's root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A running `wshub` binary, killed when dropped.
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    /// Starts `wshub --listen 127.0.0.1:0 ARGS…` with no `WSHUB_*` variable
    /// but those in `env`, and reads the bound address from its first line.
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(args, env, Stdio::inherit()).await
    }

    /// [`start_with_env`](Self::start_with_env), with the binary's stderr
    /// (its logs) written to `log` instead of the test's.
    pub async fn start_logging_to(args: &[&str], env: &[(&str, &str)], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("create the log file");
        Self::spawn(args, env, Stdio::from(file)).await
    }

    async fn spawn(args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wshub"));
        command.arg("--listen").arg("127.0.0.1:0").args(args);
        for (key, _) in std::env::vars() {
            if key.starts_with("WSHUB_") {
                command.env_remove(key);
            }
        }
        command.envs(env.iter().copied()).env("WSHUB_LOG", "wshub=debug,warn");
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr).kill_on_drop(true);
        let mut child = command.spawn().expect("start the wshub binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("wshub printed nothing in time")
            .expect("read wshub's stdout")
            .expect("wshub exited before printing its address");
        let addr = first
            .strip_prefix("wshub listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .parse()
            .expect("a socket address");
        // Keep reading stdout so that the binary never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { addr, child }
    }

    pub async fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[]).await
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Connects a tokio-tungstenite spoke and waits until the hub serves it.
    pub async fn connect(&self) -> Ws {
        self.connect_with("", &[]).await.unwrap_or_else(|status| panic!("upgrade refused with {status}"))
    }

    /// Connects with `query` appended to `/ws` and extra request headers;
    /// `Err(status)` when the upgrade is refused. On success the hub is
    /// serving the spoke (see [`ready`]).
    pub async fn connect_with(&self, query: &str, headers: &[(&str, &str)]) -> Result<Ws, u16> {
        let mut request = format!("{}{query}", self.ws_url()).into_client_request().expect("a request");
        for (name, value) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName = name.parse().expect("a header name");
            request.headers_mut().insert(name, HeaderValue::from_str(value).expect("a header value"));
        }
        let connected = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await.expect("timeout");
        match connected {
            Ok((mut ws, _)) => {
                ready(&mut ws).await;
                Ok(ws)
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(other) => panic!("connect failed: {other}"),
        }
    }

    /// One HTTP/1.1 request; returns the status and the body.
    pub async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut tcp = TcpStream::connect(self.addr).await.expect("tcp connect");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Content-Length: 0\r\n\r\n");
        tcp.write_all(head.as_bytes()).await.expect("write request");
        let mut raw = Vec::new();
        tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw)).await.expect("response in time").expect("read");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status =
            text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad response: {text}"));
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, &[]).await
    }

    /// The value of one sample of `/metrics` (`name` with its labels, as
    /// written: `wshub_rejections_total{reason="token"}`).
    pub async fn metric(&self, sample: &str) -> f64 {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        metric_in(&body, sample).unwrap_or_else(|| panic!("no sample {sample} in:\n{body}"))
    }

    /// Sends a signal (`TERM`, `INT`) to the binary.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("the binary is running");
        let status = std::process::Command::new("kill").arg("-s").arg(name).arg(pid.to_string()).status();
        assert!(status.expect("run kill").success(), "kill -s {name} {pid} failed");
    }

    /// Waits for the binary to exit.
    pub async fn wait(&mut self) -> ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait()).await.expect("wshub did not exit in time").expect("wait")
    }
}

/// One sample's value in a text exposition.
pub fn metric_in(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(sample)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// Waits until the hub serves this spoke: `hub.unsubscribe` of a pattern
/// it does not hold is acknowledged and changes nothing (wire protocol).
pub async fn ready(ws: &mut Ws) {
    send(ws, json!({ "type": "hub.unsubscribe", "id": "wshub.test.ready:" }).to_string()).await;
    let ack = recv(ws).await;
    assert_eq!(ack["type"], "hub.unsubscribed", "{ack}");
}

/// Installs `tests/node`'s packages from its lock file (once, whichever
/// test process gets there first; the others wait on the lock).
pub fn ensure_node_packages() {
    let status = std::process::Command::new("flock")
        .arg(root().join("tests/node/.install.lock"))
        .arg("bash")
        .arg("scripts/setup.d/10-node.sh")
        .current_dir(root())
        .stdout(Stdio::null())
        .status()
        .expect("run scripts/setup.d/10-node.sh");
    assert!(status.success(), "npm ci in tests/node failed");
}

/// A Node process speaking JSON lines: commands in on stdin, reports out on
/// stdout.
pub struct NodeProcess {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl NodeProcess {
    pub fn spawn(script: &str, args: &[&str]) -> Self {
        ensure_node_packages();
        let mut child = Command::new("node")
            .arg(root().join("tests/node").join(script))
            .args(args)
            .current_dir(root().join("tests/node"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take().expect("piped stdin");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Self { child, stdin, lines }
    }

    pub async fn command(&mut self, command: Value) {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await.expect("write to node");
        self.stdin.flush().await.expect("flush to node");
    }

    /// The next report line, as JSON.
    pub async fn report(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("no report from node in time")
            .expect("read node's stdout")
            .expect("node exited");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("node printed a non-JSON line ({e}): {line}"))
    }

    pub async fn wait(&mut self) -> ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait()).await.expect("node did not exit in time").expect("wait")
    }
}

/// A spoke in Node, on the `ws` package (`tests/node/driven_spoke.mjs`).
pub struct NodeSpoke(NodeProcess);

impl NodeSpoke {
    /// Connects to `url` with these request headers; `Err(status)` when the
    /// upgrade is refused. On success the hub is serving it.
    pub async fn connect_with(url: &str, headers: Value) -> Result<Self, u16> {
        let mut node = NodeProcess::spawn("driven_spoke.mjs", &[url, &headers.to_string()]);
        let first = node.report().await;
        match first["event"].as_str() {
            Some("open") => {}
            Some("http") => return Err(first["status"].as_u64().expect("a status") as u16),
            _ => panic!("node spoke did not open: {first}"),
        }
        let mut spoke = Self(node);
        spoke.send(&json!({ "type": "hub.unsubscribe", "id": "wshub.test.ready:" }).to_string()).await;
        let ack = spoke.recv().await;
        assert_eq!(ack["type"], "hub.unsubscribed", "{ack}");
        Ok(spoke)
    }

    pub async fn connect(url: &str) -> Self {
        Self::connect_with(url, json!({})).await.unwrap_or_else(|status| panic!("upgrade refused with {status}"))
    }

    /// Sends `text` in a text frame.
    pub async fn send(&mut self, text: &str) {
        self.0.command(json!({ "send": text })).await;
    }

    /// Sends `text` in a binary frame.
    pub async fn send_binary(&mut self, text: &str) {
        self.0.command(json!({ "send": text, "binary": true })).await;
    }

    /// The next message, parsed; panics on a close.
    pub async fn recv(&mut self) -> Value {
        self.recv_frame().await.1
    }

    /// The next message: whether it came in a binary frame, and its JSON.
    pub async fn recv_frame(&mut self) -> (bool, Value) {
        let report = self.0.report().await;
        assert_eq!(report["event"], "message", "expected a message, got {report}");
        let json = serde_json::from_str(report["data"].as_str().expect("text")).expect("JSON from the hub");
        (report["binary"] == true, json)
    }

    /// Waits for the connection's close; returns its code.
    pub async fn recv_close(&mut self) -> u16 {
        loop {
            let report = self.0.report().await;
            match report["event"].as_str() {
                Some("close") => return report["code"].as_u64().expect("a code") as u16,
                Some("message") => continue,
                _ => panic!("expected a close, got {report}"),
            }
        }
    }
}

/// A headless Chromium page driven by playwright-core (`tests/node/dashboard.mjs`).
pub struct Browser(NodeProcess);

impl Browser {
    pub async fn open(url: &str) -> Self {
        assert!(
            Path::new("/usr/bin/chromium").exists(),
            "Debian's chromium is not installed: run scripts/setup.d/00-apt.sh (bash scripts/test.sh does)"
        );
        let mut browser = Self(NodeProcess::spawn("dashboard.mjs", &[url]));
        let opened = browser.0.report().await;
        assert_eq!(opened["ok"], "opened", "{opened}");
        browser
    }

    /// Runs one page command; panics with the page's error if it fails.
    pub async fn run(&mut self, command: Value) -> Value {
        self.0.command(command.clone()).await;
        let report = self.0.report().await;
        assert!(report.get("error").is_none(), "{command} failed: {report}");
        report
    }

    pub async fn close(mut self) {
        self.0.command(json!({ "cmd": "close" })).await;
        let _ = self.0.wait().await;
    }
}

/// Where tests may write files (screenshots).
pub fn scratch_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Polls `cond` every few milliseconds until it holds, for what only shows
/// in a later scrape (a counter added after a write); fails after [`WAIT`].
pub async fn until<F, Fut>(mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    tokio::time::timeout(WAIT, async {
        while !cond().await {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition not reached in time");
}
