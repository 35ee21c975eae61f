//! The command line: every flag, its `WSHUB_*` variable and its default.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tracing_subscriber::EnvFilter;
use wshub::{FrameKind, HubConfig, RateLimit, SlowSpokePolicy};

/// wshub: a WebSocket pub/sub hub. Every event a spoke sends on /ws is
/// relayed to every other spoke whose subscriptions match; the dashboard is
/// at /, Prometheus metrics at /metrics, a health check at /healthz.
///
/// Every flag can also be set by the environment variable named beside it.
/// Durations take a unit (`500ms`, `20s`, `5m`, `1h`; a bare number is in
/// seconds); sizes may take one (`65536`, `64KiB`, `1MiB`).
#[derive(Debug, Parser)]
#[command(name = "wshub", version, about, long_about)]
pub(crate) struct Cli {
    /// The address to listen on; port 0 picks a free port (the bound
    /// address is printed on stdout).
    #[arg(long, env = "WSHUB_LISTEN", value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,

    /// Require this bearer token on /ws and /api/spokes, given as
    /// `Authorization: Bearer <token>` or `?token=<token>`; without it the
    /// upgrade gets 401. Default: no token. /healthz and /metrics stay open.
    #[arg(long, env = "WSHUB_TOKEN", value_name = "TOKEN", hide_env_values = true, value_parser = token)]
    pub(crate) token: Option<String>,

    /// Allow WebSocket upgrades from this browser origin
    /// (`scheme://host[:port]`); repeat the flag, or separate with commas in
    /// the variable. With any, other origins get 403 (list the dashboard's
    /// own origin to keep it working); requests without `Origin` are let
    /// through. Default: every origin.
    #[arg(long, env = "WSHUB_ALLOWED_ORIGIN", value_name = "ORIGIN", value_delimiter = ',', value_parser = origin)]
    pub(crate) allowed_origin: Vec<String>,

    /// Refuse upgrades (HTTP 503) while this many spokes are connected.
    /// Default: no limit.
    #[arg(long, env = "WSHUB_MAX_CONNECTIONS", value_name = "N")]
    pub(crate) max_connections: Option<NonZeroUsize>,

    /// The largest message a spoke may send, all fragments together; a
    /// larger one closes it with 1009.
    #[arg(long, env = "WSHUB_MAX_MESSAGE_SIZE", value_name = "SIZE", default_value = "64KiB", value_parser = size)]
    pub(crate) max_message_size: usize,

    /// Send a spoke's own events back to it too (when its subscriptions
    /// match). Default: off.
    #[arg(long, env = "WSHUB_ECHO")]
    pub(crate) echo: bool,

    /// Send events in binary frames (of the same UTF-8 JSON) instead of
    /// text frames. Default: off.
    #[arg(long, env = "WSHUB_BINARY_FRAMES")]
    pub(crate) binary_frames: bool,

    /// What happens to a spoke that falls more than --broadcast-capacity
    /// events behind: `disconnect` closes it with 1013; `skip` skips it ahead
    /// and sends it `hub.lagged` with the number it missed.
    #[arg(long, env = "WSHUB_SLOW_SPOKE_POLICY", value_name = "POLICY", default_value = "disconnect")]
    pub(crate) slow_spoke_policy: Policy,

    /// How many dispatched events the hub holds for the slowest spoke.
    #[arg(long, env = "WSHUB_BROADCAST_CAPACITY", value_name = "N", default_value = "1024")]
    pub(crate) broadcast_capacity: NonZeroUsize,

    /// How many events sent to one spoke alone may wait for it.
    #[arg(long, env = "WSHUB_SPOKE_QUEUE_CAPACITY", value_name = "N", default_value = "256")]
    pub(crate) spoke_queue_capacity: NonZeroUsize,

    /// How long one batch of writes to a spoke may take before it is judged
    /// too slow and closed with 1013.
    #[arg(long, env = "WSHUB_WRITE_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub(crate) write_timeout: Duration,

    /// How often the hub pings every spoke.
    #[arg(long, env = "WSHUB_HEARTBEAT_INTERVAL", value_name = "DURATION", default_value = "20s", value_parser = duration)]
    pub(crate) heartbeat_interval: Duration,

    /// How long a spoke may show no sign of life before it is closed with
    /// 1008; at least the heartbeat interval.
    #[arg(long, env = "WSHUB_HEARTBEAT_TIMEOUT", value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub(crate) heartbeat_timeout: Duration,

    /// How many messages per second each spoke may send (bursts of up to
    /// one second's worth); over it a message is refused with `hub.error`
    /// `rate_limited`, and 32 refusals in a row close the spoke with 1008.
    /// 0, the default, sets no limit.
    #[arg(long, env = "WSHUB_RATE_LIMIT", value_name = "N", default_value = "0")]
    pub(crate) rate_limit: u32,

    /// How many patterns one spoke may subscribe to; one more is refused
    /// with `hub.error` `forbidden`.
    #[arg(long, env = "WSHUB_MAX_SUBSCRIPTIONS", value_name = "N", default_value = "64")]
    pub(crate) max_subscriptions: NonZeroUsize,

    /// The longest pattern a spoke may send, in bytes; a longer one is
    /// refused with `hub.error` `invalid_pattern`.
    #[arg(long, env = "WSHUB_MAX_PATTERN_LENGTH", value_name = "BYTES", default_value = "256")]
    pub(crate) max_pattern_length: NonZeroUsize,

    /// Join the other hubs that use this Redis server
    /// (`redis://[user:password@]host[:port][/db]`): an event dispatched or
    /// relayed on any of them reaches the spokes of all, exactly once.
    /// Redis pub/sub is at most once: while Redis is down each hub serves its
    /// own spokes, and what is published meanwhile is not delivered across
    /// hubs. Default: no Redis, one hub on its own.
    #[arg(long, env = "WSHUB_REDIS_URL", value_name = "URL", hide_env_values = true)]
    pub(crate) redis_url: Option<String>,

    /// What the Redis channels' names begin with: each event is published on
    /// `<prefix><type>:<id>`. Hubs that should act as one use the same.
    #[arg(long, env = "WSHUB_REDIS_PREFIX", value_name = "PREFIX", default_value = "wshub:")]
    pub(crate) redis_prefix: String,

    /// On SIGINT or SIGTERM, how long to flush what is queued for each
    /// spoke before closing it with 1001.
    #[arg(long, env = "WSHUB_SHUTDOWN_TIMEOUT", value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub(crate) shutdown_timeout: Duration,

    /// What to log, as tracing filter directives: a level (`error`, `warn`,
    /// `info`, `debug`, `trace`) or `wshub=debug,info` and the like. Logs go
    /// to stderr.
    #[arg(long, env = "WSHUB_LOG", value_name = "FILTER", default_value = "info", value_parser = log_filter)]
    pub(crate) log: String,

    /// How log lines look.
    #[arg(long, env = "WSHUB_LOG_FORMAT", value_name = "FORMAT", default_value = "human")]
    pub(crate) log_format: LogFormat,
}

/// The slow-spoke policy, as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Policy {
    /// Close a spoke that lags with 1013.
    Disconnect,
    /// Skip it ahead and tell it with `hub.lagged`.
    Skip,
}

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

impl Cli {
    /// Parses the arguments and the `WSHUB_*` variables. On a bad one,
    /// prints a one-line message to stderr and returns the exit code; help
    /// and version are printed as usual.
    pub(crate) fn parse_or_exit_code() -> Result<Self, ExitCode> {
        let cli = match Self::try_parse() {
            Ok(cli) => cli,
            Err(error) => {
                use clap::error::ErrorKind;
                if matches!(
                    error.kind(),
                    ErrorKind::DisplayHelp
                        | ErrorKind::DisplayVersion
                        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                ) {
                    let _ = error.print();
                    return Err(ExitCode::SUCCESS);
                }
                let rendered = error.render().to_string();
                let line = rendered.lines().next().unwrap_or("invalid arguments");
                eprintln!("wshub: {} (see --help)", line.trim_start_matches("error: "));
                return Err(ExitCode::from(2));
            }
        };
        if let Err(message) = cli.validate() {
            eprintln!("wshub: {message}");
            return Err(ExitCode::from(2));
        }
        Ok(cli)
    }

    /// What no single flag's parser can see.
    fn validate(&self) -> Result<(), String> {
        if self.heartbeat_timeout < self.heartbeat_interval {
            return Err(format!(
                "--heartbeat-timeout ({}) must be at least --heartbeat-interval ({})",
                show(self.heartbeat_timeout),
                show(self.heartbeat_interval)
            ));
        }
        // Checked here rather than by a value parser, whose error would
        // repeat the URL, and with it a password.
        if let Some(config) = self.redis_bridge() {
            if wshub::bridge::RedisBridge::new(config).is_err() {
                return Err("--redis-url: not a redis://[user:password@]host[:port][/db] URL".into());
            }
        }
        Ok(())
    }

    /// The Redis bridge's settings, with `--redis-url`.
    pub(crate) fn redis_bridge(&self) -> Option<wshub::bridge::RedisBridgeConfig> {
        let url = self.redis_url.as_ref()?;
        Some(wshub::bridge::RedisBridgeConfig::new(url.clone()).prefix(self.redis_prefix.clone()))
    }

    /// The hub's settings: relaying on, as the server always does.
    pub(crate) fn hub_config(&self) -> HubConfig {
        HubConfig::default()
            .relay(true)
            .echo(self.echo)
            .frame_kind(if self.binary_frames { FrameKind::Binary } else { FrameKind::Text })
            .max_message_size(self.max_message_size)
            .slow_spoke_policy(match self.slow_spoke_policy {
                Policy::Disconnect => SlowSpokePolicy::Disconnect,
                Policy::Skip => SlowSpokePolicy::Skip,
            })
            .broadcast_capacity(self.broadcast_capacity.get())
            .spoke_queue_capacity(self.spoke_queue_capacity.get())
            .write_timeout(self.write_timeout)
            .heartbeat(self.heartbeat_interval, self.heartbeat_timeout)
            .shutdown_timeout(self.shutdown_timeout)
            .rate_limit((self.rate_limit > 0).then(|| RateLimit::per_second(self.rate_limit)))
            .max_subscriptions_per_spoke(self.max_subscriptions.get())
            .max_pattern_length(self.max_pattern_length.get())
    }
}

fn show(d: Duration) -> String {
    format!("{d:?}")
}

fn token(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("the token is empty".into());
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the token may not contain spaces or control characters".into());
    }
    Ok(s.to_owned())
}

/// `scheme://host[:port]`, as a browser sends it in `Origin`: lowercased,
/// with no path and no trailing slash.
fn origin(s: &str) -> Result<String, String> {
    let s = s.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = s.split_once("://").ok_or("expected scheme://host[:port]")?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("expected an http or https origin, not `{scheme}://`"));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ', '*']) {
        return Err("expected scheme://host[:port], with no path, query or user".into());
    }
    // After an IPv6 literal's `]`, or anywhere in another host, a `:` starts the port.
    let after_host = match rest.strip_prefix('[') {
        Some(v6) => v6.split_once(']').ok_or("an IPv6 host needs its closing `]`")?.1,
        None => rest,
    };
    match after_host.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_err() => Err(format!("`{port}` is not a port")),
        _ => Ok(s),
    }
}

/// A number of seconds, or a number with `ms`, `s`, `m` or `h`; above zero.
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| "expected a duration such as 500ms, 20s, 5m or 1h".to_owned())?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => return Err(format!("unknown unit `{other}` (use ms, s, m or h)")),
    };
    if d.is_zero() {
        return Err("must be above zero".into());
    }
    Ok(d)
}

/// Bytes, optionally with `B`, `KiB`/`K`/`KB` or `MiB`/`M`/`MB` (all powers
/// of 1024); above zero.
pub(crate) fn size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: usize = number.parse().map_err(|_| "expected a size such as 65536, 64KiB or 1MiB".to_owned())?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        other => return Err(format!("unknown unit `{other}` (use B, KiB or MiB)")),
    };
    let bytes = n.checked_mul(factor).ok_or("too large")?;
    if bytes == 0 {
        return Err("must be above zero".into());
    }
    Ok(bytes)
}

fn log_filter(s: &str) -> Result<String, String> {
    EnvFilter::builder().parse(s).map(|_| s.to_owned()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_hubs_own_with_relay_on() {
        let cli = Cli::try_parse_from(["wshub"]).expect("no arguments parse");
        let ours = cli.hub_config();
        let theirs = HubConfig::default();
        assert!(ours.relay);
        assert!(!ours.echo);
        assert_eq!(ours.max_message_size, theirs.max_message_size);
        assert_eq!(ours.slow_spoke_policy, theirs.slow_spoke_policy);
        assert_eq!(ours.broadcast_capacity, theirs.broadcast_capacity);
        assert_eq!(ours.spoke_queue_capacity, theirs.spoke_queue_capacity);
        assert_eq!(ours.write_timeout, theirs.write_timeout);
        assert_eq!(ours.heartbeat_interval, theirs.heartbeat_interval);
        assert_eq!(ours.heartbeat_timeout, theirs.heartbeat_timeout);
        assert_eq!(ours.shutdown_timeout, theirs.shutdown_timeout);
        assert_eq!(ours.frame_kind, theirs.frame_kind);
        assert_eq!(cli.listen, "127.0.0.1:8080".parse().expect("an address"));
    }

    #[test]
    fn limits_reach_the_hub_config() {
        let cli = Cli::try_parse_from([
            "wshub",
            "--rate-limit",
            "50",
            "--max-subscriptions",
            "3",
            "--max-pattern-length",
            "32",
        ])
        .expect("each flag parses");
        let config = cli.hub_config();
        assert_eq!(config.rate_limit, Some(RateLimit::per_second(50)));
        assert_eq!(config.max_subscriptions_per_spoke, 3);
        assert_eq!(config.max_pattern_length, 32);
        let off = Cli::try_parse_from(["wshub"]).expect("no arguments parse").hub_config();
        assert_eq!(off.rate_limit, None);
        assert!(Cli::try_parse_from(["wshub", "--max-subscriptions", "0"]).is_err());
        assert!(Cli::try_parse_from(["wshub", "--rate-limit", "-1"]).is_err());
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("20"), Ok(Duration::from_secs(20)));
        assert_eq!(duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(duration("0s").is_err());
        assert!(duration("ten").is_err());
        assert!(duration("10 fortnights").is_err());
        assert!(duration("-1s").is_err());
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(size("65536"), Ok(65536));
        assert_eq!(size("64KiB"), Ok(65536));
        assert_eq!(size("1MiB"), Ok(1 << 20));
        assert_eq!(size("2k"), Ok(2048));
        assert!(size("0").is_err());
        assert!(size("1GiB").is_err());
        assert!(size("99999999999999999999").is_err());
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(origin("https://App.Example.com/"), Ok("https://app.example.com".into()));
        assert_eq!(origin("http://127.0.0.1:8080"), Ok("http://127.0.0.1:8080".into()));
        assert_eq!(origin("http://[::1]:8080"), Ok("http://[::1]:8080".into()));
        assert_eq!(origin("http://[::1]"), Ok("http://[::1]".into()));
        assert!(origin("example.com").is_err());
        assert!(origin("ftp://example.com").is_err());
        assert!(origin("https://example.com/path").is_err());
        assert!(origin("https://example.com:http").is_err());
    }

    #[test]
    fn a_heartbeat_timeout_shorter_than_the_interval_is_refused() {
        let cli = Cli::try_parse_from(["wshub", "--heartbeat-interval", "30s", "--heartbeat-timeout", "10s"])
            .expect("each flag parses");
        assert!(cli.validate().is_err());
    }

    #[test]
    fn repeated_origins_are_all_kept() {
        let cli = Cli::try_parse_from([
            "wshub",
            "--allowed-origin",
            "http://a.test",
            "--allowed-origin",
            "http://b.test,http://c.test",
        ])
        .expect("origins parse");
        assert_eq!(cli.allowed_origin, ["http://a.test", "http://b.test", "http://c.test"]);
    }
}
