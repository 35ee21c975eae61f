//! The event envelope `{"type", "id", "payload"}`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spoke::SpokeId;

/// An event: the envelope `{"type", "id", "payload"}` of the wire protocol.
///
/// Its topic is `type + ":" + id`. Events that arrive from a spoke also carry
/// the [`SpokeId`] they came from ([`Event::origin`]); the origin is never
/// written to the wire.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use wshub::Event;
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct Message { text: String }
///
/// let event = Event::try_new("chat.message", "room-1", &Message { text: "hi".into() })?;
/// assert_eq!(event.topic(), "chat.message:room-1");
/// assert_eq!(event.payload_as::<Message>()?, Message { text: "hi".into() });
/// assert_eq!(event.to_json(), r#"{"type":"chat.message","id":"room-1","payload":{"text":"hi"}}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Event {
    event_type: String,
    id: String,
    payload: Value,
    origin: Option<SpokeId>,
}

impl Event {
    /// An event whose payload is already a JSON value (anything `Into<Value>`:
    /// `serde_json::json!(..)`, a string, a number, `()` for `null`).
    pub fn new(event_type: impl Into<String>, id: impl Into<String>, payload: impl Into<Value>) -> Self {
        Self { event_type: event_type.into(), id: id.into(), payload: payload.into(), origin: None }
    }

    /// An event whose payload is any `T: Serialize`.
    ///
    /// # Errors
    /// When `T`'s `Serialize` impl fails (a map with non-string keys, say).
    pub fn try_new<T: Serialize + ?Sized>(
        event_type: impl Into<String>,
        id: impl Into<String>,
        payload: &T,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self::new(event_type, id, serde_json::to_value(payload)?))
    }

    /// The `type` field: the kind of event.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The `id` field: the correlation key (a room, a request id). May be empty.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The topic, `type:id`.
    pub fn topic(&self) -> String {
        let mut topic = String::with_capacity(self.event_type.len() + 1 + self.id.len());
        topic.push_str(&self.event_type);
        topic.push(':');
        topic.push_str(&self.id);
        topic
    }

    /// The payload, `null` where the envelope had none.
    pub fn payload(&self) -> &Value {
        &self.payload
    }

    /// Takes the payload out of the event.
    pub fn into_payload(self) -> Value {
        self.payload
    }

    /// Deserializes the payload into `T`.
    ///
    /// # Errors
    /// When the payload does not have `T`'s shape.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.payload)
    }

    /// The spoke this event came from, for events received from a spoke;
    /// `None` for events made in this process.
    pub fn origin(&self) -> Option<SpokeId> {
        self.origin
    }

    /// The envelope as JSON text, the way the hub sends it: exactly the
    /// fields `type`, `id` and `payload`.
    pub fn to_json(&self) -> String {
        // Serializing strings and a `Value` into a `Vec` cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes an envelope from JSON (UTF-8) bytes.
    ///
    /// Fields other than `type`, `id` and `payload` are ignored; a missing
    /// payload becomes `null`.
    ///
    /// # Errors
    /// [`DecodeError::InvalidJson`] for bytes that are not JSON (or nest
    /// deeper than 128 levels), [`DecodeError::InvalidEnvelope`] for JSON of
    /// the wrong shape (not an object, a missing or non-string `type` or
    /// `id`, an empty `type`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        // JSON text is UTF-8 (RFC 8259); the parser checks only the strings
        // it keeps. (A spoke's frames are checked before they get here.)
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(DecodeError::InvalidJson(e.to_string()));
        }
        let wire = decode(bytes)?;
        Ok(Self::new(wire.event_type, wire.id, wire.payload))
    }

    pub(crate) fn with_origin(mut self, origin: SpokeId) -> Self {
        self.origin = Some(origin);
        self
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Event");
        d.field("type", &self.event_type).field("id", &self.id).field("payload", &self.payload);
        if let Some(origin) = self.origin {
            d.field("origin", &origin);
        }
        d.finish()
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireOut { event_type: &self.event_type, id: &self.id, payload: &self.payload }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireIn::deserialize(deserializer)?;
        if wire.event_type.is_empty() {
            return Err(serde::de::Error::custom("`type` may not be empty"));
        }
        Ok(Self::new(wire.event_type, wire.id, wire.payload))
    }
}

/// Why bytes from a spoke are not an envelope.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not JSON (or not UTF-8, or nest deeper than 128 levels).
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The bytes are JSON but not an envelope.
    #[error("invalid envelope: {0}")]
    InvalidEnvelope(String),
}

/// The envelope as the hub writes it.
#[derive(Serialize)]
pub(crate) struct WireOut<'a> {
    #[serde(rename = "type")]
    pub(crate) event_type: &'a str,
    pub(crate) id: &'a str,
    pub(crate) payload: &'a Value,
}

/// The envelope as a spoke sends it; strings borrow from the frame where
/// they hold no escapes.
#[derive(Deserialize)]
pub(crate) struct WireIn<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) event_type: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) id: Cow<'a, str>,
    #[serde(default)]
    pub(crate) payload: Value,
}

/// The deepest nesting of arrays and objects the wire protocol accepts.
pub(crate) const MAX_DEPTH: usize = 128;

/// Decodes one envelope, telling bad JSON from JSON of the wrong shape.
pub(crate) fn decode(bytes: &[u8]) -> Result<WireIn<'_>, DecodeError> {
    if nesting_depth(bytes) > MAX_DEPTH {
        return Err(DecodeError::InvalidJson(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    // serde_json's own limit stops one level short of the protocol's (it
    // refuses a 128th level); the depth is checked above instead, so its
    // recursion stays within 128 levels.
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    deserializer.disable_recursion_limit();
    let parsed = WireIn::deserialize(&mut deserializer).and_then(|wire| deserializer.end().map(|()| wire));
    match parsed {
        // serde's derived struct impl also takes a sequence, `["type","id"]`;
        // the protocol's envelope is an object only.
        Ok(_) if first_non_whitespace(bytes) != Some(b'{') => {
            Err(DecodeError::InvalidEnvelope("an envelope is a JSON object".into()))
        }
        Ok(wire) if wire.event_type.is_empty() => Err(DecodeError::InvalidEnvelope("`type` may not be empty".into())),
        Ok(wire) => Ok(wire),
        Err(e) => {
            // A shape error can be found before a syntax error further on,
            // and a shape error can look like a syntax error (`[1,2,3,4]`
            // has "trailing characters" for a three-field struct): only the
            // parse of the whole input as JSON tells them apart.
            let mut deserializer = serde_json::Deserializer::from_slice(bytes);
            deserializer.disable_recursion_limit();
            match IgnoredAny::deserialize(&mut deserializer).and_then(|_| deserializer.end()) {
                Ok(()) => Err(DecodeError::InvalidEnvelope(e.to_string())),
                Err(syntax) => Err(DecodeError::InvalidJson(syntax.to_string())),
            }
        }
    }
}

/// The first byte that is not JSON whitespace.
fn first_non_whitespace(bytes: &[u8]) -> Option<u8> {
    bytes.iter().copied().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// How deeply arrays and objects nest in `bytes`, brackets inside strings
/// not counted. Malformed JSON gets some number; the parser refuses it after.
pub(crate) fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Encodes an envelope once, into text every connection can share.
pub(crate) fn encode(event_type: &str, id: &str, payload: &Value) -> String {
    serde_json::to_string(&WireOut { event_type, id, payload }).unwrap_or_default()
}

/// Appends the envelope's JSON to `buf`.
pub(crate) fn encode_into(buf: &mut Vec<u8>, event_type: &str, id: &str, payload: &Value) {
    // Serializing strings and a `Value` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(buf, &WireOut { event_type, id, payload });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_payload_is_null_and_extra_fields_are_dropped() {
        let e = Event::from_json(br#"{"type":"t","id":"","extra":1}"#).unwrap();
        assert_eq!(e.payload(), &Value::Null);
        assert_eq!(e.topic(), "t:");
        assert_eq!(e.to_json(), r#"{"type":"t","id":"","payload":null}"#);
    }

    #[test]
    fn numbers_keep_every_digit() {
        let text =
            r#"{"type":"t","id":"x","payload":{"n":12345678901234567890123,"f":0.1000000000000000055511151231257827}}"#;
        let e = Event::from_json(text.as_bytes()).unwrap();
        assert_eq!(e.to_json(), text);
    }

    #[test]
    fn shape_errors_are_told_from_syntax_errors() {
        for (input, json_ok) in [
            (&br#"{"type":"t""#[..], false),
            (b"[1,2]", true),
            (br#"["t","x"]"#, true),
            (br#" ["t","x",{"a":1}]"#, true),
            (br#"["t","x",null,null]"#, true),
            (br#"{"type":"t","id":"x","payload":null,"type":"u"}"#, true),
            (br#"{"type":5,"id":"x"} garbage"#, false),
            (br#"{"type":5,"id":"x"}"#, true),
            (br#"{"id":"x"}"#, true),
            (br#"{"type":"t"}"#, true),
            (br#"{"type":"","id":"x"}"#, true),
            (b"\xff\xfe", false),
        ] {
            match decode(input) {
                Err(DecodeError::InvalidEnvelope(_)) => assert!(json_ok, "{input:?}"),
                Err(DecodeError::InvalidJson(_)) => assert!(!json_ok, "{input:?}"),
                Ok(_) => panic!("{input:?} decoded"),
            }
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_invalid_json_wherever_they_stand() {
        for input in [&b"{\"type\":\"t\",\"id\":\"\",\"extra\":\"\x80\"}"[..], b"{\"type\":\"\x80\",\"id\":null}"] {
            assert!(matches!(Event::from_json(input), Err(DecodeError::InvalidJson(_))), "{input:?}");
        }
    }

    #[test]
    fn nesting_limit_is_128_levels() {
        let nested =
            |depth: usize| format!(r#"{{"type":"t","id":"","payload":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
        // The envelope object is one level, so a payload of depth 127 is 128 in all.
        assert!(decode(nested(127).as_bytes()).is_ok());
        assert!(matches!(decode(nested(128).as_bytes()), Err(DecodeError::InvalidJson(_))));
        assert!(matches!(decode(nested(10_000).as_bytes()), Err(DecodeError::InvalidJson(_))));
        // Brackets inside strings do not count.
        let in_string = format!(r#"{{"type":"t","id":"{}","payload":"\"{}"}}"#, "[".repeat(500), "{".repeat(500));
        assert!(decode(in_string.as_bytes()).is_ok());
    }
}
