//! A soak of the hub, on demand: steady dispatch to well-behaved spokes
//! while others churn around them (clean closes, resets, garbage, oversized
//! messages, stalled readers, senders), for as many minutes as asked. Prints
//! what held and what was lost.
//!
//! ```sh
//! bash scripts/soak.sh 5          # or:
//! cargo run --release --example soak -- 5
//! ```

#[path = "../tests/support/soak.rs"]
mod soak;

use std::time::Duration;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let minutes: f64 = std::env::args().nth(1).and_then(|m| m.parse().ok()).unwrap_or(5.0);
    let steady = std::env::var("SOAK_STEADY").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    let churners = std::env::var("SOAK_CHURNERS").ok().and_then(|n| n.parse().ok()).unwrap_or(64);
    let rate = std::env::var("SOAK_RATE").ok().and_then(|n| n.parse().ok()).unwrap_or(500);
    eprintln!("soak: {minutes} min, {steady} steady spokes, {churners} churners, {rate} events/s");
    let report =
        soak::run(soak::Settings { duration: Duration::from_secs_f64(minutes * 60.0), steady, churners, rate }).await;
    println!("{}", report.line());
    if report.lost() > 0 || report.spokes_after != steady {
        eprintln!("soak FAILED: {report:?}");
        std::process::exit(1);
    }
}
