//! The smallest relay: every spoke's event goes to every other spoke, which
//! is what the `wshub` server does on `/ws`. `bench/compare.sh` measures it
//! until the server binary is on this branch.
//!
//! ```sh
//! cargo run --release --example relay -- 127.0.0.1:8080
//! ```

use wshub::{Hub, HubConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let hub = Hub::new(HubConfig::default().relay(true));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("relaying on ws://{}/", listener.local_addr()?);
    hub.serve(listener)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await
}
