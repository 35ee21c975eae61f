#![cfg(feature = "server")]
//! The binary's life: its arguments (a bad one is a one-line error and a
//! non-zero exit before anything is bound), `/metrics` figures that move as
//! traffic flows, and a graceful shutdown on SIGTERM or SIGINT.

#[path = "support/server.rs"]
mod server;
mod support;

use std::process::Stdio;

use serde_json::json;
use server::{NodeSpoke, Server, metric_in, until};
use support::{envelope, recv, recv_close, send};

/// Runs the binary to its end with these arguments and variables; returns
/// its exit code and stderr.
async fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wshub"));
    for (key, _) in std::env::vars() {
        if key.starts_with("WSHUB_") {
            command.env_remove(key);
        }
    }
    command.args(args).envs(env.iter().copied()).stdin(Stdio::null()).kill_on_drop(true);
    let output = tokio::time::timeout(support::WAIT, command.output()).await.expect("exit in time").expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), stdout, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Arguments, variables, and the flag the message must name.
type Case = (&'static [&'static str], &'static [(&'static str, &'static str)], &'static str);

#[tokio::test]
async fn a_bad_flag_or_value_exits_with_one_line_and_a_non_zero_code() {
    let cases: [Case; 9] = [
        (&["--bogus"], &[], "--bogus"),
        (&["--max-connections", "lots"], &[], "--max-connections"),
        (&["--max-connections", "0"], &[], "--max-connections"),
        (&["--listen", "nowhere"], &[], "--listen"),
        (&["--heartbeat-interval", "10 fortnights"], &[], "--heartbeat-interval"),
        (&["--heartbeat-interval", "30s", "--heartbeat-timeout", "10s"], &[], "--heartbeat-timeout"),
        (&["--allowed-origin", "example.com"], &[], "--allowed-origin"),
        (&[], &[("WSHUB_MAX_MESSAGE_SIZE", "1TiB")], "--max-message-size"),
        (&[], &[("WSHUB_SLOW_SPOKE_POLICY", "pray")], "--slow-spoke-policy"),
    ];
    for (args, env, names) in cases {
        // Were a bad argument let through, the binary would bind port 1 (or
        // fail to, with exit code 1) instead of exiting with 2 at once.
        let mut all = vec!["--listen", "127.0.0.1:1"];
        if args.first() == Some(&"--listen") {
            all.clear();
        }
        all.extend_from_slice(args);
        let (code, stdout, stderr) = run(&all, env).await;
        assert_eq!(code, Some(2), "{args:?} {env:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?} {env:?}: not one line:\n{stderr}");
        assert!(stderr.starts_with("wshub: ") && stderr.contains(names), "{args:?} {env:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: printed {stdout}");
    }
}

#[tokio::test]
async fn help_and_version_exit_zero() {
    let (code, stdout, _) = run(&["--help"], &[]).await;
    assert_eq!(code, Some(0));
    for flag in ["--listen", "--token", "--allowed-origin", "--max-connections", "--echo", "WSHUB_LOG"] {
        assert!(stdout.contains(flag), "--help does not mention {flag}");
    }
    let (code, stdout, _) = run(&["--version"], &[]).await;
    assert_eq!((code, stdout.trim()), (Some(0), concat!("wshub ", env!("CARGO_PKG_VERSION"))));
}

#[tokio::test]
async fn a_port_in_use_says_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, stdout, stderr) = run(&["--listen", &addr], &[]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains(&addr) && stderr.contains("already in use"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
}

#[tokio::test]
async fn it_prints_the_bound_address_and_the_dashboard_url() {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wshub"));
    command.env("WSHUB_LISTEN", "127.0.0.1:0").stdout(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().expect("start");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().expect("stdout")));
    let first = tokio::time::timeout(support::WAIT, lines.next_line()).await.expect("in time").expect("read");
    let second = tokio::time::timeout(support::WAIT, lines.next_line()).await.expect("in time").expect("read");
    let addr = first.as_deref().and_then(|l| l.strip_prefix("wshub listening on 127.0.0.1:")).expect("the address");
    assert_eq!(second, Some(format!("dashboard: http://127.0.0.1:{addr}/")));
    child.kill().await.expect("kill");
}

#[tokio::test]
async fn metrics_figures_move_as_traffic_flows() {
    let server = Server::start(&[]).await;
    let (status, before) = server.get("/metrics").await;
    assert_eq!(status, 200);
    let value = |text: &str, sample: &str| metric_in(text, sample).unwrap_or_else(|| panic!("no {sample}"));
    assert_eq!(value(&before, "wshub_connections"), 0.0);
    assert_eq!(value(&before, "wshub_events_in_total"), 0.0);

    let mut a = server.connect().await;
    let mut node = NodeSpoke::connect(&server.ws_url()).await;
    assert_eq!(server.metric("wshub_connections").await, 2.0);
    assert_eq!(server.metric("wshub_connections_accepted_total").await, 2.0);

    let event = envelope("load", "1", json!("x".repeat(100)));
    for _ in 0..5 {
        send(&mut a, event.clone()).await;
        assert_eq!(node.recv().await["type"], "load");
    }
    node.send("not json").await;
    assert_eq!(node.recv().await["id"], "invalid_json");

    let (_, after) = server.get("/metrics").await;
    assert_eq!(value(&after, "wshub_events_in_total"), 5.0);
    // 5 events and the two readiness messages (hub.unsubscribe), and "not json".
    assert_eq!(value(&after, "wshub_messages_in_total"), 8.0);
    assert!(value(&after, "wshub_bytes_in_total") >= 5.0 * event.len() as f64);
    assert_eq!(value(&after, "wshub_events_dispatched_total"), 5.0);
    assert_eq!(value(&after, r#"wshub_errors_total{code="invalid_json"}"#), 1.0);
    // The hub adds a batch's frames after the flush: the node spoke may have
    // them before the counter moves.
    until(|| async {
        let (_, text) = server.get("/metrics").await;
        value(&text, "wshub_events_out_total") >= 5.0
            && value(&text, "wshub_bytes_out_total") >= 5.0 * event.len() as f64
    })
    .await;
    assert_eq!(value(&after, "wshub_lagged_total"), 0.0);
    assert_eq!(value(&after, "wshub_dropped_total"), 0.0);

    drop(a);
    until(|| async { server.metric("wshub_connections").await == 1.0 }).await;
}

#[tokio::test]
async fn sigterm_flushes_and_closes_every_spoke_with_1001_then_exits_zero() {
    let mut server = Server::start(&[]).await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    let mut node = NodeSpoke::connect(&server.ws_url()).await;
    // b and the Node spoke read nothing until the signal: what the server
    // took from a is queued for them when it comes.
    const EVENTS: usize = 200;
    for i in 0..EVENTS {
        send(&mut a, envelope("last", &i.to_string(), json!(i))).await;
    }
    until(|| async { server.metric("wshub_events_in_total").await == EVENTS as f64 }).await;
    server.signal("TERM");
    for i in 0..EVENTS {
        assert_eq!(recv(&mut b).await["id"], i.to_string(), "queued before the signal, flushed after it");
    }
    assert_eq!(recv_close(&mut b).await.0, 1001);
    for i in 0..EVENTS {
        assert_eq!(node.recv().await["id"], i.to_string());
    }
    assert_eq!(node.recv_close().await, 1001);
    assert_eq!(recv_close(&mut a).await.0, 1001);
    drop((a, b, node));
    let status = server.wait().await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn sigint_shuts_down_gracefully_too() {
    let mut server = Server::start(&[]).await;
    let mut a = server.connect().await;
    server.signal("INT");
    assert_eq!(recv_close(&mut a).await.0, 1001);
    drop(a);
    assert_eq!(server.wait().await.code(), Some(0));
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_and_never_carry_the_token() {
    let log = server::scratch_dir().join(format!("wshub-json-{}.log", std::process::id()));
    let args = ["--token", "t0ps3cret", "--log-format", "json", "--log", "trace"];
    let mut server = Server::start_logging_to(&args, &[], &log).await;
    assert_eq!(server.connect_with("?token=wrong-t0ps3cret", &[]).await.err(), Some(401));
    let mut a = server.connect_with("?token=t0ps3cret", &[]).await.expect("query token");
    let mut b = server.connect_with("", &[("Authorization", "Bearer t0ps3cret")]).await.expect("header token");
    assert_eq!(server.get("/api/spokes?token=t0ps3cret").await.0, 200);
    send(&mut a, envelope("x", "", json!(1))).await;
    assert_eq!(recv(&mut b).await["type"], "x");
    server.signal("TERM");
    assert_eq!(recv_close(&mut a).await.0, 1001);
    drop((a, b));
    assert_eq!(server.wait().await.code(), Some(0));

    let text = std::fs::read_to_string(&log).expect("read the log");
    let _ = std::fs::remove_file(&log);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    for expected in ["wshub started", "upgrade refused", "spoke connected", "spoke disconnected", "wshub stopped"] {
        assert!(messages.contains(&expected), "no `{expected}` in {messages:?}");
    }
    assert!(!text.contains("t0ps3cret"), "the token is in the logs:\n{text}");
}
