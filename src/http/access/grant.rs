//! Approval authority: who may mint approval links for a run, for which approvers and on
//! which topic, and how long those links may live.
//!
//! - An API key holder (or a keyless server's local client) mints links for anyone on any
//!   topic; each link names the key's fingerprint and stops working when the key is removed.
//! - A run token mints only within the [`ApprovalGrant`] it carries: the approvers and topic
//!   whoever started the run gave (`approval` in `POST /v1/workflows`, or in
//!   `POST /v1/workflows/{id}/tokens` with a key). A token without a grant mints nothing.
//! - A link minted by a token expires no later than the token (plus `FLOWGATE_LINK_GRACE`).

use serde::Deserialize;

use super::{forbidden, Caller, Who};
use crate::auth::token::{ApprovalGrant, Rights, RunClaims, TagClaims};
use crate::auth::Auth;
use crate::error::ApiError;
use crate::ids::{Topic, MAX_NAME_LEN};

/// Most approvers per grant or request.
pub const MAX_APPROVERS: usize = 50;

/// Topic of approval decisions when none is named.
pub const DEFAULT_TOPIC: &str = "approval";

/// `{topic?, approvers}` as given at start or to the token endpoint.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(as = ApprovalGrant)]
pub struct GrantBody {
    #[schema(value_type = Option<crate::http::openapi::schema::Name>)]
    topic: Option<String>,
    #[schema(value_type = crate::http::openapi::schema::Approvers)]
    approvers: Vec<String>,
}

/// A character that must not appear in an approver name: controls, and the invisible
/// formatting characters that make one name look like another.
fn bad_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// Longest lifetime of a token or link: 30 days.
pub const MAX_TTL: i64 = 30 * 86400;

/// A token's or link's lifetime in seconds: `ttl_secs`, else `default`; 1 to [`MAX_TTL`].
pub fn ttl(ttl_secs: Option<i64>, default: i64) -> Result<i64, ApiError> {
    let ttl = ttl_secs.unwrap_or(default);
    if !(1..=MAX_TTL).contains(&ttl) {
        return Err(ApiError::invalid(
            "ttl_secs",
            format!("must be 1 to {MAX_TTL} seconds"),
        ));
    }
    Ok(ttl)
}

/// Validates approver names (1 to [`MAX_APPROVERS`] names of 1 to `MAX_NAME_LEN` bytes,
/// no control or invisible formatting characters).
pub fn check_approvers(approvers: &[String]) -> Result<(), ApiError> {
    if approvers.is_empty() || approvers.len() > MAX_APPROVERS {
        return Err(ApiError::invalid(
            "approvers",
            format!("must list 1 to {MAX_APPROVERS} names"),
        ));
    }
    for a in approvers {
        if a.is_empty() || a.len() > MAX_NAME_LEN {
            return Err(ApiError::invalid(
                "approvers",
                format!("names must be 1 to {MAX_NAME_LEN} bytes"),
            ));
        }
        if a.chars().any(bad_char) {
            return Err(ApiError::invalid(
                "approvers",
                "names may not contain control or invisible formatting characters",
            ));
        }
    }
    Ok(())
}

impl GrantBody {
    /// The validated grant.
    pub fn parse(self) -> Result<ApprovalGrant, ApiError> {
        let topic = self.topic.unwrap_or_else(|| DEFAULT_TOPIC.into());
        let topic = Topic::parse(topic).map_err(|e| ApiError::invalid("approval.topic", e))?;
        check_approvers(&self.approvers).map_err(|e| e.with_field("approval.approvers"))?;
        Ok(ApprovalGrant {
            topic: topic.to_string(),
            approvers: self.approvers,
        })
    }
}

/// What a mint request may produce: topic, approvers, latest expiry, minting key.
pub struct Mint {
    /// The decision topic.
    pub topic: String,
    /// The approvers to mint links for.
    pub approvers: Vec<String>,
    /// No link may expire after this (Unix seconds).
    pub exp_cap: Option<i64>,
    /// Fingerprint of the minting key.
    pub key: Option<String>,
}

/// Decides what `caller` may mint, given the requested topic and approvers.
pub fn authorize(
    auth: &Auth,
    caller: &Caller,
    topic: Option<String>,
    approvers: Option<Vec<String>>,
) -> Result<Mint, ApiError> {
    match &caller.who {
        Who::Local | Who::Key(_) => {
            let key = match caller.who {
                Who::Key(i) => auth.key_id(i),
                _ => None,
            };
            Ok(Mint {
                topic: topic.unwrap_or_else(|| DEFAULT_TOPIC.into()),
                approvers: approvers.unwrap_or_else(|| vec!["approver".into()]),
                exp_cap: None,
                key,
            })
        }
        Who::Run(RunClaims { rights, .. }) | Who::Tags(TagClaims { rights, .. }) => {
            let Rights { approval, exp, .. } = rights;
            let Some(grant) = approval else {
                return Err(forbidden("this token may not mint approval links"));
            };
            let topic = topic.unwrap_or_else(|| grant.topic.clone());
            if topic != grant.topic {
                return Err(forbidden("this token mints links for another topic"));
            }
            let approvers = approvers.unwrap_or_else(|| grant.approvers.clone());
            if approvers.iter().any(|a| !grant.approvers.contains(a)) {
                return Err(forbidden(
                    "this token may not mint links for these approvers",
                ));
            }
            Ok(Mint {
                topic,
                approvers,
                exp_cap: Some(exp.saturating_add(auth.link_grace)),
                key: None,
            })
        }
        _ => Err(forbidden("no approval authority")),
    }
}
