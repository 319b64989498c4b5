//! Signed tokens: run-scoped read tokens for browsers and single-use approval links.
//!
//! Format: `<kind>.<base64url(JSON claims)>.<base64url(HMAC-SHA256)>`, signed with the
//! server secret. Verification is constant-time (hmac's `verify_slice`) and checks the kind,
//! the signature, then the expiry. Nothing here touches the database.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this kind, bad encoding, or a bad signature.
    #[error("invalid token")]
    Invalid,
    /// Signed by us but past its expiry.
    #[error("token expired")]
    Expired,
}

/// What a run token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Status, events, streams and `/live` of the run.
    Read,
    /// Minting approval links for the run.
    Approve,
    /// Cancelling the run.
    Cancel,
}

/// Who may be asked to approve a run, and on which topic: fixed by whoever started it (or
/// by an API key holder minting a token). A token's `approve` scope mints links only within
/// its grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalGrant {
    /// The message topic decisions are sent on.
    pub topic: String,
    /// The approvers links may be minted for.
    pub approvers: Vec<String>,
}

/// Claims of a run token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunClaims {
    /// Run id.
    pub run: String,
    /// Allowed actions.
    pub scopes: Vec<Scope>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// What the `approve` scope covers; without it the token mints nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalGrant>,
}

/// Claims of a tag token: every run carrying one of `tags`, including the live run list
/// narrowed to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagClaims {
    /// Runs carrying any of these tags.
    pub tags: Vec<String>,
    /// Allowed actions on those runs.
    pub scopes: Vec<Scope>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// What the `approve` scope covers; without it the token mints nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalGrant>,
}

/// Claims of an approval link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalClaims {
    /// Run id.
    pub run: String,
    /// Message topic the decision is sent on.
    pub topic: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// Who the link was minted for (N-of-M approvals count distinct approvers).
    pub approver: String,
    /// Shared by the approve and reject links of one approver: using either spends both.
    pub nonce: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Fingerprint of the API key that minted the link, if one did: the link dies with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<secret>)")
    }
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Signer {
    /// A signer for `secret`.
    pub fn new(secret: &[u8]) -> Signer {
        Signer {
            key: secret.to_vec(),
        }
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(data);
        mac
    }

    /// Signs claims as a token of `kind`.
    pub fn sign<T: Serialize>(&self, kind: &str, claims: &T) -> String {
        let body = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signed = format!("{kind}.{body}");
        let sig = B64.encode(self.mac(signed.as_bytes()).finalize().into_bytes());
        format!("{signed}.{sig}")
    }

    /// Verifies a token of `kind` and returns its claims; `exp` is checked by `expiry`.
    pub fn verify<T: DeserializeOwned>(
        &self,
        kind: &str,
        token: &str,
        expiry: impl Fn(&T) -> i64,
    ) -> Result<T, TokenError> {
        if token.len() > 4096 {
            return Err(TokenError::Invalid);
        }
        let (signed, sig) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let (k, body) = signed.split_once('.').ok_or(TokenError::Invalid)?;
        if k != kind {
            return Err(TokenError::Invalid);
        }
        let sig = B64.decode(sig).map_err(|_| TokenError::Invalid)?;
        self.mac(signed.as_bytes())
            .verify_slice(&sig)
            .map_err(|_| TokenError::Invalid)?;
        let bytes = B64.decode(body).map_err(|_| TokenError::Invalid)?;
        let claims: T = serde_json::from_slice(&bytes).map_err(|_| TokenError::Invalid)?;
        if expiry(&claims) < now() {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// A run token.
    pub fn run_token(&self, run: &str, scopes: Vec<Scope>, ttl_secs: i64) -> String {
        self.run_token_with(run, scopes, None, ttl_secs)
    }

    /// A run token with an approval grant.
    pub fn run_token_with(
        &self,
        run: &str,
        scopes: Vec<Scope>,
        approval: Option<ApprovalGrant>,
        ttl_secs: i64,
    ) -> String {
        self.sign(
            "run",
            &RunClaims {
                run: run.to_string(),
                scopes,
                exp: now() + ttl_secs,
                approval,
            },
        )
    }

    /// A short keyed fingerprint of `secret` (identifies an API key without revealing it).
    pub fn fingerprint(&self, secret: &[u8]) -> String {
        let mut mac = self.mac(b"key-fingerprint:");
        mac.update(secret);
        B64.encode(&mac.finalize().into_bytes()[..12])
    }

    /// Verifies a run token.
    pub fn verify_run(&self, token: &str) -> Result<RunClaims, TokenError> {
        self.verify("run", token, |c: &RunClaims| c.exp)
    }

    /// Signs a tag token.
    pub fn tag_token(&self, claims: &TagClaims) -> String {
        self.sign("tags", claims)
    }

    /// Verifies a tag token.
    pub fn verify_tags(&self, token: &str) -> Result<TagClaims, TokenError> {
        self.verify("tags", token, |c: &TagClaims| c.exp)
    }

    /// Verifies an approval link token.
    pub fn verify_approval(&self, token: &str) -> Result<ApprovalClaims, TokenError> {
        self.verify("approval", token, |c: &ApprovalClaims| c.exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_tamper_expire() {
        let s = Signer::new(b"k1");
        let t = s.run_token("run-a", vec![Scope::Read], 60);
        assert_eq!(s.verify_run(&t).unwrap().run, "run-a");
        assert_eq!(Signer::new(b"k2").verify_run(&t), Err(TokenError::Invalid));
        let mut bad = t.clone();
        bad.insert(5, 'x');
        assert_eq!(s.verify_run(&bad), Err(TokenError::Invalid));
        // A run token is not an approval link.
        assert!(s.verify_approval(&t).is_err());
        let old = s.run_token("run-a", vec![Scope::Read], -1);
        assert_eq!(s.verify_run(&old), Err(TokenError::Expired));
        assert_eq!(s.verify_run("run.a.b"), Err(TokenError::Invalid));
        assert_eq!(s.verify_run(""), Err(TokenError::Invalid));
    }

    #[test]
    fn claims_cannot_be_swapped() {
        let s = Signer::new(b"k");
        let a = s.run_token("a", vec![Scope::Read], 60);
        let b = s.run_token("b", vec![Scope::Read], 60);
        let (ab, _) = a.rsplit_once('.').unwrap();
        let (_, bs) = b.rsplit_once('.').unwrap();
        assert_eq!(
            s.verify_run(&format!("{ab}.{bs}")),
            Err(TokenError::Invalid)
        );
    }
}
