//! Browser protections of a keyless (loopback) server, where any local client may do
//! anything: a web page the developer has open must not be able to drive it.
//!
//! - `Host` must name this machine (`localhost`, `127.0.0.1`, `[::1]`, any port), the bound
//!   address, or a configured extra name: a rebound DNS name is refused (DNS rebinding).
//! - A state-changing request (not GET, HEAD or OPTIONS) that carries an `Origin` must come
//!   from this server's own origin or a configured CORS origin.
//!
//! JSON endpoints also refuse bodies that are not `application/json` (415, in
//! [`crate::http::extract::ApiJson`]), so a cross-site form or `text/plain` fetch cannot
//! produce one; and Durable Streams answers no `Access-Control-Allow-Origin: *` unless
//! configured.

use axum::http::{header, HeaderMap, Method, StatusCode};

use crate::auth::Auth;
use crate::error::ApiError;

/// The host part of a `Host` value (`[::1]:80` → `::1`, `a:80` → `a`), lower-cased.
pub fn host_name(host: &str) -> String {
    let h = host.trim();
    let name = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        match h.rsplit_once(':') {
            Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => h,
        }
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// True if a keyless server may answer a request that names `host`.
pub fn host_allowed(auth: &Auth, host: &str) -> bool {
    let name = host_name(host);
    matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1")
        || auth.allowed_hosts.iter().any(|h| host_name(h) == name)
        || (!auth.bind.ip().is_unspecified() && auth.bind.ip().to_string() == name)
}

/// True if `origin` is this server's own (same scheme-less host and port as `Host`) or a
/// configured CORS origin.
fn origin_allowed(auth: &Auth, origin: &str, host: Option<&str>) -> bool {
    let own = host.is_some_and(|h| {
        origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| o.eq_ignore_ascii_case(h.trim()))
    });
    own || auth.cors_origins.iter().any(|o| o != "*" && o == origin)
}

/// Refuses foreign `Host`s (and a foreign authority in the request target) and cross-origin
/// state-changing requests (403).
pub fn check(
    auth: &Auth,
    method: &Method,
    headers: &HeaderMap,
    authority: Option<String>,
) -> Result<(), ApiError> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    for h in host.into_iter().chain(authority.as_deref()) {
        if !host_allowed(auth, h) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "unknown_host",
                "this keyless server answers only to localhost names (set FLOWGATE_ALLOWED_HOSTS \
                 or API keys)",
            ));
        }
    }
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if let (false, Some(origin)) = (safe, headers.get(header::ORIGIN)) {
        let origin = origin.to_str().unwrap_or("null");
        if !origin_allowed(auth, origin, host) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_origin",
                "cross-origin requests may not change a keyless server",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(host_name("[::1]:8080"), "::1");
        assert_eq!(host_name("LocalHost:1"), "localhost");
        assert_eq!(host_name("localhost."), "localhost");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("evil.example:80"), "evil.example");
    }
}
