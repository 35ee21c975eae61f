//! A real `redis-server` (Debian's package) for the bridge tests: started on
//! a free loopback port for each test that needs one, killed on drop, and
//! restartable on the same port for the outage tests.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start answering.
const START_WAIT: Duration = Duration::from_secs(10);

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// A server on a free port of 127.0.0.1, answering `PING` when this returns.
    pub async fn start() -> Self {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            match Self::try_start(port).await {
                Ok(server) => return server,
                Err(why) => last = why,
            }
        }
        panic!("redis-server did not start: {last} (is Debian's redis-server installed? scripts/apt-packages.txt)");
    }

    /// A port nothing listens on, for a server that is started later.
    pub fn unused_port() -> u16 {
        free_port()
    }

    /// A server on `port`, which must be free.
    pub async fn start_on(port: u16) -> Self {
        Self::try_start(port).await.unwrap_or_else(|why| panic!("redis-server on {port}: {why}"))
    }

    async fn try_start(port: u16) -> Result<Self, String> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        let mut server = Self { port, child: Some(child) };
        let deadline = Instant::now() + START_WAIT;
        loop {
            if ping(port) {
                return Ok(server);
            }
            if let Some(status) = server.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                server.child = None;
                return Err(format!("redis-server exited: {status}"));
            }
            if Instant::now() > deadline {
                return Err("no answer to PING in time".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        url(self.port)
    }

    /// Kills the server (SIGKILL: a crash, not a shutdown) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        let fresh = Self::start_on(self.port).await;
        *self = fresh;
    }

    /// Runs `redis-cli` against this server; returns what it printed.
    pub async fn cli(&self, args: &[&str]) -> String {
        let output = tokio::process::Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .await
            .expect("cannot run redis-cli");
        assert!(output.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}/")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

fn ping(port: u16) -> bool {
    let Ok(mut tcp) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(500)));
    let mut answer = [0u8; 7];
    tcp.write_all(b"PING\r\n").is_ok() && tcp.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}
