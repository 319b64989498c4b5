//! Who may do what: API keys for producers and administrators, run-scoped tokens for
//! browsers, single-use approval links, CORS, and per-key / per-client limits.
//!
//! With no API keys configured the server is in loopback mode: every request must come from
//! a loopback address, and anything goes (a non-loopback bind refuses to start unless
//! explicitly allowed), within the browser protections of [`browser`]. With keys, the guard
//! ([`guard`]) works out who is calling and the permission extractors ([`access`]) decide
//! what they may do. Secrets (keys, the signing secret, tokens) are never logged or echoed.

pub mod token;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use subtle::ConstantTimeEq;

pub use token::{ApprovalGrant, Rights, Scope, Signer};

use crate::config::Config;

/// Authentication and limits for one server.
pub struct Auth {
    keys: Vec<Vec<u8>>,
    /// Signs run tokens and approval links.
    pub signer: Signer,
    /// Lifetime of run tokens handed out at start.
    pub token_ttl: i64,
    rate: Option<DefaultKeyedRateLimiter<usize>>,
    /// Per run token and per anonymous IP.
    client_rate: Option<DefaultKeyedRateLimiter<String>>,
    client_checks: AtomicU64,
    pub(crate) max_sse_per_client: usize,
    /// FLOWGATE_ALLOW_INSECURE: without keys, serve non-loopback clients too (e.g. behind
    /// Docker's port mapping, where the peer is the bridge address).
    allow_remote: bool,
    pub(crate) sse_clients: Arc<Mutex<HashMap<String, usize>>>,
    /// The configured listen address (a keyless server answers to it as a Host).
    pub bind: SocketAddr,
    /// Extra Host names a keyless server answers to.
    pub allowed_hosts: Vec<String>,
    /// Configured CORS origins.
    pub cors_origins: Vec<String>,
    /// Always mark the token cookie `Secure`.
    pub secure_cookies: bool,
    /// Seconds an approval link may outlive the token that minted it.
    pub link_grace: i64,
}

/// Why the server refuses to start with this configuration.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// Listening beyond loopback with nobody required to authenticate.
    #[error(
        "refusing to listen on {0} without API keys: set FLOWGATE_API_KEYS, bind to 127.0.0.1, \
         or set FLOWGATE_ALLOW_INSECURE=true"
    )]
    OpenBind(SocketAddr),
    /// A CORS origin list mixing `*` with credentials is refused.
    #[error("FLOWGATE_CORS_ORIGINS: invalid origin {0:?}")]
    BadOrigin(String),
}

impl Auth {
    /// Builds the policy from configuration (warns about loopback mode and a random secret).
    pub fn from_config(config: &Config) -> Result<Auth, AuthConfigError> {
        let keys: Vec<Vec<u8>> = config
            .api_keys
            .iter()
            .filter(|k| !k.is_empty())
            .map(|k| k.as_bytes().to_vec())
            .collect();
        if keys.is_empty() {
            if !config.addr.ip().is_loopback() && !config.allow_insecure {
                return Err(AuthConfigError::OpenBind(config.addr));
            }
            tracing::warn!("no FLOWGATE_API_KEYS: only loopback clients are accepted, and they may do anything");
            if config.addr.ip().is_unspecified() && config.security.allowed_hosts.is_empty() {
                tracing::warn!(
                    "without API keys only requests naming localhost, 127.0.0.1 or [::1] in Host \
                     are served; add other names (and probe addresses) to FLOWGATE_ALLOWED_HOSTS, \
                     or probe the FLOWGATE_ADMIN_ADDR listener"
                );
            }
        }
        for o in &config.cors_origins {
            if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(AuthConfigError::BadOrigin(o.clone()));
            }
        }
        let secret = match &config.secret {
            Some(s) if !s.is_empty() => s.as_bytes().to_vec(),
            _ => {
                if !keys.is_empty() {
                    tracing::warn!(
                        "FLOWGATE_SECRET is unset: a random secret is used, so run tokens and approval links \
                         die with this process and do not work on other instances"
                    );
                }
                (0..32).map(|_| rand::random::<u8>()).collect()
            }
        };
        let rate = NonZeroU32::new(config.rate_limit).map(|r| {
            let burst = NonZeroU32::new(config.rate_limit.saturating_mul(2)).unwrap_or(r);
            RateLimiter::keyed(Quota::per_second(r).allow_burst(burst))
        });
        let client = config
            .security
            .client_rate_limit
            .unwrap_or(if keys.is_empty() { 0 } else { 100 });
        let client_rate = NonZeroU32::new(client).map(|r| {
            let burst = NonZeroU32::new(client.saturating_mul(2)).unwrap_or(r);
            RateLimiter::keyed(Quota::per_second(r).allow_burst(burst))
        });
        Ok(Auth {
            client_rate,
            client_checks: AtomicU64::new(0),
            bind: config.addr,
            allowed_hosts: config.security.allowed_hosts.clone(),
            cors_origins: config.cors_origins.clone(),
            secure_cookies: config.security.secure_cookies,
            link_grace: config.security.link_grace.min(MAX_GRACE) as i64,
            keys,
            signer: Signer::new(&secret),
            token_ttl: config.token_ttl as i64,
            rate,
            max_sse_per_client: config.max_sse_per_client,
            allow_remote: config.allow_insecure,
            sse_clients: Arc::default(),
        })
    }

    /// True if a client at `peer` may be served at all.
    pub fn admits(&self, peer: Option<std::net::SocketAddr>) -> bool {
        !self.open() || self.allow_remote || peer.is_none_or(|p| p.ip().is_loopback())
    }

    /// True in loopback mode (no keys).
    pub fn open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The index of the API key `presented` matches (constant time per key).
    pub fn key_index(&self, presented: &str) -> Option<usize> {
        let p = presented.as_bytes();
        let mut found = None;
        for (i, k) in self.keys.iter().enumerate() {
            if k.len() == p.len() && bool::from(k.ct_eq(p)) {
                found = Some(i);
            }
        }
        found
    }

    /// A read-only token for a run, handed out when it is created.
    pub fn read_token(&self, run: &str) -> String {
        self.signer.run_token(run, Rights::read(self.token_ttl))
    }

    /// The token handed out when a run starts: read-only, or with `approve` limited to the
    /// grant the starter gave.
    pub fn start_token(&self, run: &str, grant: Option<ApprovalGrant>) -> String {
        match grant {
            None => self.read_token(run),
            Some(g) => self
                .signer
                .run_token(run, Rights::new(vec![Scope::Read], Some(g), self.token_ttl)),
        }
    }

    /// A short fingerprint of API key `i` (never the key): approval links minted with a key
    /// name it, and die when the key is removed.
    pub fn key_id(&self, i: usize) -> Option<String> {
        self.keys.get(i).map(|k| self.signer.fingerprint(k))
    }

    /// True if some configured key has fingerprint `id`.
    pub fn key_id_known(&self, id: &str) -> bool {
        (0..self.keys.len()).any(|i| self.key_id(i).as_deref() == Some(id))
    }

    /// Checks API key `i` against its rate limit; `Err(wait)` when over it.
    pub fn check_key_rate(&self, i: usize) -> Result<(), std::time::Duration> {
        let Some(limiter) = &self.rate else {
            return Ok(());
        };
        limiter.check_key(&i).map_err(|n| {
            n.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
        })
    }

    /// Checks a run token or an anonymous IP against the client limit.
    pub fn check_client_rate(&self, client: &str) -> Result<(), std::time::Duration> {
        let Some(limiter) = &self.client_rate else {
            return Ok(());
        };
        // Forget idle clients now and then, so the table stays small.
        if self.client_checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(&client.to_string()).map_err(|n| {
            n.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
        })
    }
}

/// Longest configurable link grace: 30 days.
const MAX_GRACE: u64 = 30 * 86400;

/// `path` fit for logs: whatever follows an `approvals` segment (an approval link's token,
/// however the path is spelled: `//v1/approvals/…`, `/v1/./approvals/…`) is replaced.
pub fn redact_path(path: &str) -> std::borrow::Cow<'_, str> {
    let lower = path.to_ascii_lowercase();
    match lower.find("approvals/") {
        Some(i) if i + "approvals/".len() < path.len() => {
            format!("{}<token>", &path[..i + "approvals/".len()]).into()
        }
        _ => path.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(tweak: impl FnOnce(&mut Config)) -> Auth {
        let mut c = Config::new("postgres://unused", "127.0.0.1:0".parse().unwrap());
        tweak(&mut c);
        Auth::from_config(&c).unwrap()
    }

    #[test]
    fn approval_tokens_never_reach_logs() {
        for p in [
            "/v1/approvals/secret",
            "//v1/approvals/secret",
            "/v1/./approvals/secret",
            "/V1/Approvals/secret",
        ] {
            let r = redact_path(p);
            assert!(!r.contains("secret"), "{p} -> {r}");
        }
        assert_eq!(redact_path("/v1/workflows/a"), "/v1/workflows/a");
    }

    #[test]
    fn loopback_mode_admits_only_loopback_unless_allowed() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let open = auth(|_| {});
        assert!(open.admits(Some(local)));
        assert!(!open.admits(Some(remote)));
        assert!(auth(|c| c.allow_insecure = true).admits(Some(remote)));
        assert!(auth(|c| c.api_keys = vec!["k".into()]).admits(Some(remote)));
        let c = Config::new("postgres://unused", "0.0.0.0:8080".parse().unwrap());
        assert!(matches!(
            Auth::from_config(&c),
            Err(AuthConfigError::OpenBind(_))
        ));
    }
}
