//! Topic patterns: `*`, `type:*` and exact topics.

use std::fmt;
use std::str::FromStr;

/// A topic pattern, as the wire protocol defines it.
///
/// | pattern                | matches                                  |
/// |------------------------|------------------------------------------|
/// | `chat.message:room-1`  | exactly that topic                       |
/// | `chat.message:*`       | every id of type `chat.message`          |
/// | `*`                    | every topic                              |
///
/// A `*` anywhere else makes a pattern invalid, and so does an empty one.
/// Types may contain `:`: `a:b:*` matches every event whose type is `a:b`.
///
/// ```
/// use wshub::Pattern;
///
/// let p: Pattern = "chat.message:*".parse()?;
/// assert!(p.matches("chat.message", "chat.message:room-1"));
/// assert!(!p.matches("chat.typing", "chat.typing:room-1"));
/// assert!("chat.*".parse::<Pattern>().is_err());
/// # Ok::<(), wshub::PatternError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    kind: Kind,
    text: Box<str>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    All,
    /// `T:*`: the type is the text minus its last two characters.
    Type,
    Topic,
}

/// The reason a pattern was refused: it is empty, or has a `*` where the
/// grammar allows none.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern {pattern:?}: {why}")]
pub struct PatternError {
    pattern: String,
    why: &'static str,
}

impl PatternError {
    /// The pattern that was refused.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    fn new(pattern: &str, why: &'static str) -> Self {
        Self { pattern: pattern.to_owned(), why }
    }
}

impl Pattern {
    /// Parses a pattern; see the type's docs for the grammar.
    pub fn new(text: &str) -> Result<Self, PatternError> {
        let kind = if text.is_empty() {
            return Err(PatternError::new(text, "a pattern may not be empty"));
        } else if text == "*" {
            Kind::All
        } else if let Some(ty) = text.strip_suffix(":*") {
            if ty.is_empty() {
                return Err(PatternError::new(text, "the type before `:*` may not be empty"));
            }
            if ty.contains('*') {
                return Err(PatternError::new(text, "`*` may appear only as `*` or at the end as `:*`"));
            }
            Kind::Type
        } else if text.contains('*') {
            return Err(PatternError::new(text, "`*` may appear only as `*` or at the end as `:*`"));
        } else {
            Kind::Topic
        };
        Ok(Self { kind, text: text.into() })
    }

    /// Whether an event of type `event_type` and topic `topic`
    /// (`type + ":" + id`) matches.
    #[inline]
    pub fn matches(&self, event_type: &str, topic: &str) -> bool {
        match self.kind {
            Kind::All => true,
            Kind::Type => event_type == &self.text[..self.text.len() - 2],
            Kind::Topic => topic == &*self.text,
        }
    }

    /// The pattern as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// What the pattern looks an event up by, for the hub's routes.
    pub(crate) fn key(&self) -> Key<'_> {
        match self.kind {
            Kind::All => Key::All,
            Kind::Type => Key::Type(&self.text[..self.text.len() - 2]),
            Kind::Topic => Key::Topic(&self.text),
        }
    }
}

/// A pattern as a key: every event, every event of a type, or one topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key<'a> {
    All,
    Type(&'a str),
    Topic(&'a str),
}

impl FromStr for Pattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for Pattern {
    type Error = PatternError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for Pattern {
    type Error = PatternError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl TryFrom<&String> for Pattern {
    type Error = PatternError;

    fn try_from(s: &String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<&Pattern> for Pattern {
    fn from(p: &Pattern) -> Self {
        p.clone()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_accepts_the_three_forms() {
        assert!(Pattern::new("*").unwrap().matches("x", "x:1"));
        let ty = Pattern::new("a:b:*").unwrap();
        assert!(ty.matches("a:b", "a:b:1"));
        assert!(ty.matches("a:b", "a:b:"));
        assert!(!ty.matches("a", "a:b:1"), "T:* compares the type field, not a prefix");
        let exact = Pattern::new("tick:").unwrap();
        assert!(exact.matches("tick", "tick:"));
        assert!(!exact.matches("tick", "tick:1"));
    }

    #[test]
    fn grammar_rejects_misplaced_stars_and_empty() {
        for bad in ["", ":*", "a*", "*:*", "a:*:*", "**", "a:b*", "*a"] {
            assert!(Pattern::new(bad).is_err(), "{bad:?} should be invalid");
        }
    }
}
