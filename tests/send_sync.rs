//! The handles users store and share are `Send + Sync` (checked at compile time).

use wshub::{Event, Hub, HubConfig, HubStats, Pattern, SendError, Serve, Spoke, Subscription};

fn is_send_sync<T: Send + Sync>() {}
fn is_send<T: Send>() {}

#[test]
fn handles_are_send_and_sync() {
    is_send_sync::<Hub>();
    is_send_sync::<Spoke>();
    is_send_sync::<HubConfig>();
    is_send_sync::<HubStats>();
    is_send_sync::<Event>();
    is_send_sync::<Pattern>();
    is_send_sync::<SendError>();
    is_send_sync::<Subscription>();
    is_send::<Serve>();
}
