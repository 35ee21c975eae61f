//! # wshub
//!
//! A WebSocket pub/sub hub for tokio. Spokes (browsers, Node, Python and Rust
//! services) connect over WebSocket and exchange JSON envelopes
//! `{"type", "id", "payload"}` whose topic is `type:id`. The hub:
//!
//! - fans an event out to every connected spoke ([`Hub::dispatch`]),
//!   encoding it once;
//! - merges what every spoke sends into streams filtered by topic
//!   ([`Hub::subscribe`]), which compose with `StreamExt`;
//! - tracks each connection's life ([`Hub::on_connection`],
//!   [`Hub::on_disconnection`]), can answer one spoke alone
//!   ([`Spoke::dispatch`]), and bounds what a slow spoke may cost
//!   ([`HubConfig::slow_spoke_policy`]).
//!
//! The wire contract, which existing TypeScript spokes speak unchanged, is
//! in `docs/wire-protocol.md`.
//!
//! ## Quick start
//!
//! ```no_run
//! use futures::StreamExt;
//! use wshub::{Event, Hub, HubConfig};
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let hub = Hub::new(HubConfig::default());
//!     hub.on_connection(|spoke| println!("spoke {} connected", spoke.id()));
//!
//!     // Every `ping:*` event from any spoke is answered to that spoke alone.
//!     let mut pings = hub.subscribe("ping:*").expect("a valid pattern");
//!     let answering = hub.clone();
//!     tokio::spawn(async move {
//!         while let Some(Ok(ping)) = pings.next().await {
//!             let spoke = ping.origin().and_then(|id| answering.spoke(id));
//!             if let Some(spoke) = spoke {
//!                 let _ = spoke.dispatch(Event::new("pong", ping.id(), ping.payload().clone()));
//!             }
//!         }
//!     });
//!
//!     // And every spoke hears the time.
//!     let ticking = hub.clone();
//!     tokio::spawn(async move {
//!         let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
//!         loop {
//!             tick.tick().await;
//!             let _ = ticking.dispatch(Event::new("tick", "", "now"));
//!         }
//!     });
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     hub.serve(listener)
//!         .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.ok(); })
//!         .await
//! }
//! ```

#[macro_use]
mod macros;
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(any(feature = "client", feature = "redis"))]
mod backoff;
mod batch;
pub mod bridge;
#[cfg(feature = "client")]
pub mod client;
mod config;
mod connection;
mod error;
mod event;
mod hub;
mod park;
mod pattern;
pub mod protocol;
mod rate;
mod routes;
mod serve;
mod spoke;
mod stats;
mod subscription;

#[cfg(feature = "client")]
pub use client::{Client, ClientConfig};
pub use config::{FrameKind, HubConfig, SlowSpokePolicy};
pub use error::SendError;
pub use event::{DecodeError, Event};
pub use hub::Hub;
pub use pattern::{Pattern, PatternError};
pub use protocol::ErrorCode;
pub use rate::RateLimit;
pub use serve::Serve;
pub use spoke::{DisconnectReason, Spoke, SpokeId};
pub use stats::HubStats;
pub use subscription::{Lagged, Subscription};

/// The tungstenite this crate is built on, re-exported so that callers of
/// [`Hub::accept`] use the same version.
pub use tokio_tungstenite;
