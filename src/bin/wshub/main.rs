//! `wshub`: the standalone WebSocket pub/sub server. Spokes connect to `/ws`
//! and every valid event one sends is relayed to every other spoke whose
//! subscriptions match; `/` is a live dashboard, `/metrics` Prometheus
//! metrics, `/healthz` a health check. `wshub --help` lists every flag.

mod app;
mod cli;
mod metrics;

use std::io::{self, IsTerminal};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use wshub::Hub;
use wshub::axum::Endpoint;
use wshub::bridge::RedisBridge;

use crate::cli::{Cli, LogFormat};
use crate::metrics::Metrics;

fn main() -> ExitCode {
    // Every argument is checked before anything is bound.
    let cli = match Cli::parse_or_exit_code() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wshub: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

fn init_logging(cli: &Cli) {
    // The filter was checked when the arguments were parsed.
    let filter = EnvFilter::builder().parse_lossy(&cli.log);
    let ansi = io::stderr().is_terminal();
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(io::stderr).with_ansi(ansi);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Human => logs.init(),
    }
}

async fn run(cli: Cli) -> ExitCode {
    let listener = match TcpListener::bind(cli.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("wshub: cannot listen on {}: {}", cli.listen, describe(&error));
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!("wshub: cannot read the bound address: {error}");
            return ExitCode::FAILURE;
        }
    };

    let hub = match cli.redis_bridge() {
        // The URL was checked when the arguments were parsed; Redis itself
        // may come up later: the bridge connects in the background.
        Some(config) => match RedisBridge::new(config) {
            Ok(bridge) => Hub::with_bridge(cli.hub_config(), bridge),
            Err(error) => {
                eprintln!("wshub: --redis-url: {error}");
                return ExitCode::from(2);
            }
        },
        None => Hub::new(cli.hub_config()),
    };
    hub.on_connection(|spoke| {
        tracing::info!(spoke = %spoke.id(), remote_addr = ?spoke.remote_addr(), "spoke connected");
    });
    hub.on_disconnection(|spoke, reason| {
        tracing::info!(spoke = %spoke.id(), ?reason, "spoke disconnected");
    });
    let metrics = Arc::new(Metrics::new(hub.clone()));
    let mut endpoint = Endpoint::new(hub.clone());
    if let Some(token) = &cli.token {
        endpoint = endpoint.token(token.clone());
    }
    for origin in &cli.allowed_origin {
        endpoint = endpoint.allowed_origin(origin.clone());
    }
    if let Some(max) = cli.max_connections {
        endpoint = endpoint.max_connections(max.get());
    }
    let counting = metrics.clone();
    endpoint = endpoint.on_failed_upgrade(move |failure| {
        // Never the token, nor the query string that may carry it.
        tracing::info!(reason = failure.reason(), %failure, "upgrade refused");
        counting.upgrade_failed(failure);
    });
    let app = app::router(endpoint, metrics);

    let shown = shown_addr(addr);
    if !cli.allowed_origin.is_empty() && !cli.allowed_origin.iter().any(|o| *o == format!("http://{shown}")) {
        tracing::warn!(
            "the dashboard's own origin, http://{shown}, is not in --allowed-origin: the dashboard cannot connect"
        );
    }
    // Tests and scripts read the first line to learn the bound address.
    println!("wshub listening on {addr}");
    println!("dashboard: http://{shown}/");
    tracing::info!(
        %addr,
        relay = true,
        echo = cli.echo,
        token = cli.token.is_some(),
        redis = cli.redis_url.is_some(),
        node = ?hub.node_id(),
        "wshub started"
    );

    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let shutting_down = hub.clone();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            signal().await;
            tracing::info!("shutting down: flushing queued events, then closing every spoke with 1001");
            shutting_down.shutdown().await;
        })
        .await;
    match served {
        Ok(()) => {
            tracing::info!("wshub stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("wshub: the server failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// An address a browser can open: `127.0.0.1` for an unspecified IPv4 one,
/// `[::1]` for IPv6.
fn shown_addr(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => format!("127.0.0.1:{}", v4.port()),
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => format!("[::1]:{}", v6.port()),
        other => other.to_string(),
    }
}

fn describe(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => "the address is already in use (is another server on that port?)".into(),
        io::ErrorKind::AddrNotAvailable => "the address is not available on this machine".into(),
        io::ErrorKind::PermissionDenied => "permission denied (ports below 1024 need privileges)".into(),
        _ => error.to_string(),
    }
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
