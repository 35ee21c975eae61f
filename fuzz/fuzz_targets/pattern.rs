//! Patterns: the input is a pattern, a type and an id separated by NUL
//! bytes. Parsing never panics, accepts exactly what the grammar allows,
//! and matching agrees with the grammar read literally.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wshub::Pattern;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\0');
    let (pattern, ty, id) = (parts.next().unwrap_or(""), parts.next().unwrap_or("t"), parts.next().unwrap_or(""));
    let type_pattern = pattern.strip_suffix(":*");
    let valid = pattern == "*"
        || type_pattern.is_some_and(|t| !t.is_empty() && !t.contains('*'))
        || (!pattern.is_empty() && !pattern.contains('*'));
    match Pattern::new(pattern) {
        Ok(p) => {
            assert!(valid, "{pattern:?} was accepted");
            assert_eq!(p.as_str(), pattern);
            let topic = format!("{ty}:{id}");
            let expected = match type_pattern {
                _ if pattern == "*" => true,
                Some(t) => t == ty,
                None => pattern == topic,
            };
            assert_eq!(p.matches(ty, &topic), expected, "{pattern:?} against {topic:?}");
        }
        Err(e) => {
            assert!(!valid, "{pattern:?} was refused: {e}");
            assert_eq!(e.pattern(), pattern);
        }
    }
});
