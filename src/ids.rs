//! Validated names: run ids, event/stream keys, message topics, and stream offsets.
//!
//! Every name that reaches SQL or a NOTIFY payload passes through here first. The charset
//! excludes `|` (the payload separator) and the length limit keeps every payload far below
//! Postgres' 8000-byte NOTIFY limit. Nothing here touches the database.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest id, key or topic accepted.
pub const MAX_NAME_LEN: usize = 128;

/// Why a name or offset was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    /// The name was empty.
    #[error("must not be empty")]
    Empty,
    /// The name was longer than [`MAX_NAME_LEN`].
    #[error("must be at most {MAX_NAME_LEN} characters")]
    TooLong,
    /// The name had a character outside `A-Z a-z 0-9 _ - . : @`.
    #[error("may only contain A-Z, a-z, 0-9 and _ - . : @")]
    BadChar,
}

fn check(s: &str) -> Result<(), InvalidName> {
    if s.is_empty() {
        return Err(InvalidName::Empty);
    }
    if s.len() > MAX_NAME_LEN {
        return Err(InvalidName::TooLong);
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '@');
    if !s.chars().all(ok) {
        return Err(InvalidName::BadChar);
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `s`.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidName> {
                let s = s.into();
                check(&s)?;
                Ok(Self(s))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A workflow run id.
    RunId
);
name_type!(
    /// An event key or a stream key within a run.
    Key
);
name_type!(
    /// A message topic.
    Topic
);
name_type!(
    /// A registered workflow name.
    WorkflowName
);

impl RunId {
    /// A fresh random run id.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

/// Why an offset was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a non-negative integer below 2^53")]
pub struct InvalidOffset;

/// Largest offset or version accepted from a client (fits a JavaScript number exactly).
pub const MAX_OFFSET: i64 = (1 << 53) - 1;

/// Parses a stream offset or event version given by a client: decimal digits only.
pub fn parse_offset(s: &str) -> Result<i64, InvalidOffset> {
    let s = s.trim();
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidOffset);
    }
    let v: i64 = s.parse().map_err(|_| InvalidOffset)?;
    if v > MAX_OFFSET {
        return Err(InvalidOffset);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(RunId::parse("run-1.a:b@c_d").is_ok());
        assert_eq!(RunId::parse(""), Err(InvalidName::Empty));
        assert_eq!(Key::parse("a|b"), Err(InvalidName::BadChar));
        assert_eq!(Key::parse("a b"), Err(InvalidName::BadChar));
        assert_eq!(Topic::parse("é"), Err(InvalidName::BadChar));
        assert_eq!(Key::parse("x".repeat(129)), Err(InvalidName::TooLong));
        assert!(Key::parse("x".repeat(128)).is_ok());
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("0"), Ok(0));
        assert_eq!(parse_offset(" 42 "), Ok(42));
        assert!(parse_offset("-1").is_err());
        assert!(parse_offset("1e3").is_err());
        assert!(parse_offset("").is_err());
        assert!(parse_offset("9007199254740992").is_err());
        assert!(parse_offset("99999999999999999999").is_err());
    }
}
