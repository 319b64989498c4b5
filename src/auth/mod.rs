//! Who may do what: API keys for producers and administrators, run-scoped tokens for
//! browsers, single-use approval links, CORS, and per-key / per-client limits.
//!
//! With no API keys configured the server is in loopback mode: every request must come from
//! a loopback address, and anything goes (a non-loopback bind refuses to start unless
//! explicitly allowed). With keys, the guard classifies each request by method and path.
//! Secrets (keys, the signing secret, tokens) are never logged or echoed.

pub mod approvals;
pub mod guard;
pub mod token;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use subtle::ConstantTimeEq;

pub use token::{Scope, Signer};

use crate::config::Config;

/// Authentication and limits for one server.
pub struct Auth {
    keys: Vec<Vec<u8>>,
    /// Signs run tokens and approval links.
    pub signer: Signer,
    /// Lifetime of run tokens handed out at start.
    pub token_ttl: i64,
    rate: Option<DefaultKeyedRateLimiter<usize>>,
    max_sse_per_client: usize,
    /// FLOWGATE_ALLOW_INSECURE: without keys, serve non-loopback clients too (e.g. behind
    /// Docker's port mapping, where the peer is the bridge address).
    allow_remote: bool,
    sse_clients: Arc<Mutex<HashMap<String, usize>>>,
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
        Ok(Auth {
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

    /// A read token for a run, handed out when it is created.
    pub fn read_token(&self, run: &str) -> String {
        self.signer
            .run_token(run, vec![Scope::Read, Scope::Approve], self.token_ttl)
    }
}

/// `path` fit for logs: the token of an approval link (`/v1/approvals/{token}`) is replaced.
pub fn redact_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/v1/approvals/") {
        Some(rest) if !rest.is_empty() => "/v1/approvals/<token>".into(),
        _ => path.into(),
    }
}

/// Builds the CORS layer: the configured origins with credentials, or `*` without.
pub fn cors(config: &Config) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if config.cors_origins.is_empty() {
        return None;
    }
    let base = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::HEAD,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([header::LOCATION, header::RETRY_AFTER]);
    if config.cors_origins.iter().any(|o| o == "*") {
        // `*` is never combined with credentials.
        return Some(base.allow_origin(AllowOrigin::any()));
    }
    let origins: Vec<HeaderValue> = config
        .cors_origins
        .iter()
        .filter_map(|o| o.parse().ok())
        .collect();
    Some(
        base.allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true),
    )
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
