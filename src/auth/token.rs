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

/// What a run or tag token allows, and until when. Flattened into the claims, so the
/// signed JSON keeps its flat form (`{"run", "scopes", "exp", "approval"?}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rights {
    /// Allowed actions.
    pub scopes: Vec<Scope>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// What the `approve` scope covers; without it the token mints nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalGrant>,
}

impl Rights {
    /// `scopes` for `ttl_secs` from now; `approve` is added when there is a grant.
    pub fn new(mut scopes: Vec<Scope>, approval: Option<ApprovalGrant>, ttl_secs: i64) -> Rights {
        if approval.is_some() && !scopes.contains(&Scope::Approve) {
            scopes.push(Scope::Approve);
        }
        Rights {
            scopes,
            exp: now() + ttl_secs,
            approval,
        }
    }

    /// Read only, for `ttl_secs`.
    pub fn read(ttl_secs: i64) -> Rights {
        Rights::new(vec![Scope::Read], None, ttl_secs)
    }
}

/// Claims of a run token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunClaims {
    /// Run id.
    pub run: String,
    /// What it allows.
    #[serde(flatten)]
    pub rights: Rights,
}

/// Claims of a tag token: every run carrying one of `tags`, including the live run list
/// narrowed to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagClaims {
    /// Runs carrying any of these tags.
    pub tags: Vec<String>,
    /// What it allows on those runs.
    #[serde(flatten)]
    pub rights: Rights,
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

    /// A run token for `run`.
    pub fn run_token(&self, run: &str, rights: Rights) -> String {
        self.sign(
            "run",
            &RunClaims {
                run: run.to_string(),
                rights,
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
        self.verify("run", token, |c: &RunClaims| c.rights.exp)
    }

    /// Signs a tag token.
    pub fn tag_token(&self, claims: &TagClaims) -> String {
        self.sign("tags", claims)
    }

    /// Verifies a tag token.
    pub fn verify_tags(&self, token: &str) -> Result<TagClaims, TokenError> {
        self.verify("tags", token, |c: &TagClaims| c.rights.exp)
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
        let t = s.run_token("run-a", Rights::read(60));
        assert_eq!(s.verify_run(&t).unwrap().run, "run-a");
        assert_eq!(Signer::new(b"k2").verify_run(&t), Err(TokenError::Invalid));
        let mut bad = t.clone();
        bad.insert(5, 'x');
        assert_eq!(s.verify_run(&bad), Err(TokenError::Invalid));
        // A run token is not an approval link.
        assert!(s.verify_approval(&t).is_err());
        let old = s.run_token("run-a", Rights::read(-1));
        assert_eq!(s.verify_run(&old), Err(TokenError::Expired));
        assert_eq!(s.verify_run("run.a.b"), Err(TokenError::Invalid));
        assert_eq!(s.verify_run(""), Err(TokenError::Invalid));
    }

    /// Tokens already handed out must keep verifying: the claims' JSON (field names, order,
    /// an absent grant left out) is part of the signed format.
    #[test]
    fn token_format_is_stable() {
        let s = Signer::new(b"format");
        let grant = ApprovalGrant {
            topic: "approval".into(),
            approvers: vec!["ana".into()],
        };
        let rights = |scopes, approval| Rights {
            scopes,
            exp: 4_000_000_000,
            approval,
        };
        let run = RunClaims {
            run: "r1".into(),
            rights: rights(vec![Scope::Read, Scope::Approve], Some(grant)),
        };
        let tags = TagClaims {
            tags: vec!["team-a".into()],
            rights: rights(vec![Scope::Read], None),
        };
        let t_run = "run.eyJydW4iOiJyMSIsInNjb3BlcyI6WyJyZWFkIiwiYXBwcm92ZSJdLCJleHAiOjQwMDAwMDAwMDAsImFwcHJvdmFsIjp7InRvcGljIjoiYXBwcm92YWwiLCJhcHByb3ZlcnMiOlsiYW5hIl19fQ.5u4fgqJJy7DlpzI3yhDb1b1cpqnE7IH45Vt3LEiv9kI";
        let t_tags = "tags.eyJ0YWdzIjpbInRlYW0tYSJdLCJzY29wZXMiOlsicmVhZCJdLCJleHAiOjQwMDAwMDAwMDB9.WER3--Pe3dXC2Y7RXtUvytIAw5haQZCbJr7oqdILjZ0";
        assert_eq!(s.sign("run", &run), t_run);
        assert_eq!(s.sign("tags", &tags), t_tags);
        assert_eq!(s.verify_run(t_run), Ok(run));
        assert_eq!(s.verify_tags(t_tags), Ok(tags));
    }

    #[test]
    fn claims_cannot_be_swapped() {
        let s = Signer::new(b"k");
        let a = s.run_token("a", Rights::read(60));
        let b = s.run_token("b", Rights::read(60));
        let (ab, _) = a.rsplit_once('.').unwrap();
        let (_, bs) = b.rsplit_once('.').unwrap();
        assert_eq!(
            s.verify_run(&format!("{ab}.{bs}")),
            Err(TokenError::Invalid)
        );
    }
}
