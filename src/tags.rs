//! Run tags: up to [`MAX_TAGS`] labels per run, each 1–64 characters of the id charset,
//! validated once at the edge. Lists filter on them and tag-scoped tokens grant access by
//! them. Nothing here touches the database.

use serde::Serialize;

use crate::ids::{InvalidName, RunId};

/// Most tags one run may carry.
pub const MAX_TAGS: usize = 10;

/// Longest tag.
pub const MAX_TAG_LEN: usize = 64;

/// Why a tag list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTags {
    /// More than [`MAX_TAGS`].
    #[error("at most {MAX_TAGS} tags")]
    TooMany,
    /// One tag was longer than [`MAX_TAG_LEN`].
    #[error("each tag must be 1 to {MAX_TAG_LEN} characters")]
    TooLong,
    /// One tag was empty or had a character outside the id charset.
    #[error("tag: {0}")]
    Name(#[from] InvalidName),
}

/// A validated, de-duplicated tag list (in the order given).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Tags(Vec<String>);

impl Tags {
    /// Validates a list of tags.
    pub fn parse(list: Vec<String>) -> Result<Tags, InvalidTags> {
        if list.len() > MAX_TAGS {
            return Err(InvalidTags::TooMany);
        }
        let mut out: Vec<String> = Vec::with_capacity(list.len());
        for t in list {
            let tag = parse_one(&t)?;
            if !out.contains(&tag) {
                out.push(tag);
            }
        }
        Ok(Tags(out))
    }

    /// The tags as a slice (for binding as `text[]`).
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when any of `wanted` is among these tags.
    pub fn intersects(&self, wanted: &[String]) -> bool {
        self.0.iter().any(|t| wanted.contains(t))
    }
}

/// Validates one tag.
pub fn parse_one(tag: &str) -> Result<String, InvalidTags> {
    if tag.len() > MAX_TAG_LEN {
        return Err(InvalidTags::TooLong);
    }
    Ok(RunId::parse(tag)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ten_distinct_and_drops_repeats() {
        let ten: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        assert_eq!(Tags::parse(ten).unwrap().as_slice().len(), 10);
        let dup = Tags::parse(vec!["a".into(), "a".into(), "b".into()]).unwrap();
        assert_eq!(dup.as_slice(), ["a", "b"]);
    }

    #[test]
    fn refuses_bad_lists() {
        let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        assert_eq!(Tags::parse(eleven), Err(InvalidTags::TooMany));
        assert_eq!(Tags::parse(vec!["x".repeat(65)]), Err(InvalidTags::TooLong));
        assert!(Tags::parse(vec!["".into()]).is_err());
        assert!(Tags::parse(vec!["a|b".into()]).is_err());
        assert!(Tags::parse(vec!["user 1".into()]).is_err());
    }
}
