//! The envelope decoder: any bytes give an event or one of the two decode
//! errors, never a panic; a decoded event encodes to an envelope that
//! decodes to the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wshub::{DecodeError, Event};

fuzz_target!(|data: &[u8]| {
    match Event::from_json(data) {
        Ok(event) => {
            assert!(!event.event_type().is_empty());
            let again = Event::from_json(event.to_json().as_bytes()).expect("an encoded event decodes");
            assert_eq!(again, event);
        }
        Err(DecodeError::InvalidJson(_) | DecodeError::InvalidEnvelope(_)) => {}
        Err(other) => panic!("an error the protocol does not name: {other}"),
    }
});
