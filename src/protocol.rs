//! What the wire protocol fixes: error codes, close codes and the hub's
//! control envelopes. The full text is `docs/wire-protocol.md`.

use std::fmt;

use serde_json::{Value, json};

use crate::event::encode;

/// The prefix every type reserved for the hub begins with.
pub const RESERVED_PREFIX: &str = "hub.";

/// A spoke asks for events matching the pattern in `id`.
pub(crate) const SUBSCRIBE: &str = "hub.subscribe";
/// A spoke drops the pattern in `id`.
pub(crate) const UNSUBSCRIBE: &str = "hub.unsubscribe";
/// The hub could not take what a spoke sent; the code is in `id`.
#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub(crate) const ERROR: &str = "hub.error";
/// The hub acknowledges a `hub.subscribe`.
#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub(crate) const SUBSCRIBED: &str = "hub.subscribed";
/// The hub acknowledges a `hub.unsubscribe`.
#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub(crate) const UNSUBSCRIBED: &str = "hub.unsubscribed";
/// The hub skipped events for a slow spoke.
#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub(crate) const LAGGED: &str = "hub.lagged";

/// The codes a `hub.error` envelope carries in its `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The message is not JSON, not UTF-8, or nests deeper than 128 levels.
    InvalidJson,
    /// Valid JSON of the wrong shape.
    InvalidEnvelope,
    /// A user event whose type begins with `hub.`.
    ReservedType,
    /// A `hub.subscribe` / `hub.unsubscribe` with a pattern the grammar refuses.
    InvalidPattern,
    /// The spoke sent faster than its rate limit allows.
    RateLimited,
    /// The spoke may not do what it asked.
    Forbidden,
}

impl ErrorCode {
    /// Every code, in the order of the wire protocol's list.
    pub const ALL: [ErrorCode; 6] = [
        Self::InvalidJson,
        Self::InvalidEnvelope,
        Self::ReservedType,
        Self::InvalidPattern,
        Self::RateLimited,
        Self::Forbidden,
    ];

    /// The code for its wire form (`invalid_json`, …); `None` for a code
    /// this version does not know.
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn from_wire(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// The code as it stands on the wire: `invalid_json`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidEnvelope => "invalid_envelope",
            Self::ReservedType => "reserved_type",
            Self::InvalidPattern => "invalid_pattern",
            Self::RateLimited => "rate_limited",
            Self::Forbidden => "forbidden",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The close codes the hub sends (RFC 6455 §7.4, as the wire protocol uses them).
pub mod close_code {
    /// Normal close.
    pub const NORMAL: u16 = 1000;
    /// The hub is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame RFC 6455 forbids.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame that is not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Policy: revoked, or a limit other than size was broken (a heartbeat
    /// timeout among them).
    pub const POLICY: u16 = 1008;
    /// A message larger than the maximum message size.
    pub const TOO_BIG: u16 = 1009;
    /// An internal error in the hub.
    pub const INTERNAL: u16 = 1011;
    /// Try again later: at the connection limit, or too slow to keep up.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// `hub.subscribe` (`subscribe == true`) or `hub.unsubscribe` for `pattern`,
/// as a spoke sends it.
#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub(crate) fn subscription_change(subscribe: bool, pattern: &str) -> String {
    encode(if subscribe { SUBSCRIBE } else { UNSUBSCRIBE }, pattern, &Value::Null)
}

pub(crate) fn error_envelope(code: ErrorCode, message: &str) -> String {
    encode("hub.error", code.as_str(), &json!({ "message": message }))
}

pub(crate) fn subscribed(pattern: &str) -> String {
    encode("hub.subscribed", pattern, &Value::Null)
}

pub(crate) fn unsubscribed(pattern: &str) -> String {
    encode("hub.unsubscribed", pattern, &Value::Null)
}

pub(crate) fn lagged(missed: u64) -> String {
    encode("hub.lagged", "", &json!({ "missed": missed }))
}
