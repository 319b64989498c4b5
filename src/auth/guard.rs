//! The request guard: classifies each request, finds its credential (bearer header,
//! `?token=` or the `flowgate_token` cookie), and allows, refuses (401/403/429), or counts
//! it against the per-client SSE limit.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::token::{Scope, TokenError};
use super::Auth;
use crate::error::ApiError;
use crate::http::AppState;

/// What a request needs.
#[derive(Debug, PartialEq, Eq)]
pub enum Need {
    /// Anyone (the page, health, approval links which carry their own signature).
    Public,
    /// An API key, or a run token with `scope` for this run.
    Run(String, Scope),
    /// An API key, or a DBOS run token with `scope` for this DBOS run (the id decoded).
    DbosRun(String, Scope),
    /// An API key.
    Admin,
}

/// Classifies a request by method and path.
pub fn classify(method: &Method, path: &str) -> Need {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        [""] | ["runs", ..] | ["static", ..] | ["healthz"] | ["readyz"] | ["openapi.json"] => {
            Need::Public
        }
        ["v1", "approvals", ..] | ["v1", "dbos", "approvals", ..] | ["dbos", "runs", ..] => {
            Need::Public
        }
        ["v1", "dbos", "workflows", id, "approval-links"] if method == Method::POST => {
            Need::DbosRun(decode(id), Scope::Approve)
        }
        ["v1", "dbos", "workflows", id]
        | ["v1", "dbos", "workflows", id, "events" | "streams" | "live", ..]
            if method == Method::GET || method == Method::HEAD =>
        {
            Need::DbosRun(decode(id), Scope::Read)
        }
        ["v1", "workflows", id, "approval-links"] if method == Method::POST => {
            Need::Run(id.to_string(), Scope::Approve)
        }
        ["v1", "workflows", id] | ["v1", "workflows", id, "events" | "streams" | "live", ..]
            if method == Method::GET || method == Method::HEAD =>
        {
            Need::Run(id.to_string(), Scope::Read)
        }
        // A workflow stream read through the Durable Streams mapping.
        ["v1", "stream", "workflows", id, _, ..]
            if method == Method::GET || method == Method::HEAD =>
        {
            Need::Run(id.to_string(), Scope::Read)
        }
        _ => Need::Admin,
    }
}

/// A percent-encoded path segment (DBOS ids may hold any character).
fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// True for requests that open an SSE response.
fn is_sse(req: &Request) -> bool {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    req.method() == Method::GET
        && (accept.contains("text/event-stream")
            || path.ends_with("/live")
            || query.contains("live=sse")
            || (path.contains("/streams/")
                && !path.ends_with("/poll")
                && (path.starts_with("/v1/workflows/") || path.starts_with("/v1/dbos/workflows/"))))
}

/// The credential presented, if any.
fn credential(req: &Request) -> Option<String> {
    if let Some(h) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = h.strip_prefix("Bearer ") {
            return Some(t.trim().to_string());
        }
    }
    if let Some(q) = req.uri().query() {
        for pair in q.split('&') {
            if let Some(v) = pair.strip_prefix("token=") {
                return Some(v.to_string());
            }
        }
    }
    let cookies = req.headers().get_all(header::COOKIE);
    for c in cookies.iter().filter_map(|v| v.to_str().ok()) {
        for part in c.split(';') {
            if let Some(v) = part.trim().strip_prefix("flowgate_token=") {
                return Some(v.to_string());
            }
        }
    }
    None
}

fn unauthorized(msg: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg)
        .with_header("www-authenticate", "Bearer")
}

fn forbidden(msg: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", msg)
}

/// Who the request is, as far as limits are concerned.
enum Principal {
    Key(usize),
    Run(String),
    Anonymous,
}

fn decide(auth: &Auth, need: &Need, cred: Option<&str>) -> Result<Principal, ApiError> {
    let key = cred.and_then(|c| auth.key_index(c));
    if let Some(i) = key {
        return Ok(Principal::Key(i));
    }
    match need {
        Need::Public => Ok(Principal::Anonymous),
        Need::Admin => match cred {
            None => Err(unauthorized(
                "an API key is required (Authorization: Bearer <key>)",
            )),
            Some(c) if auth.signer.verify_run(c).is_ok() => {
                Err(forbidden("a run token cannot do this; use an API key"))
            }
            Some(_) => Err(unauthorized("invalid API key")),
        },
        Need::Run(run, scope) => {
            let Some(c) = cred else {
                return Err(unauthorized(
                    "a run token (?token=, cookie flowgate_token) or an API key is required",
                ));
            };
            match auth.signer.verify_run(c) {
                Ok(claims) if &claims.run == run && claims.scopes.contains(scope) => {
                    Ok(Principal::Run(claims.run))
                }
                Ok(_) => Err(forbidden("this token is for another run or action")),
                Err(TokenError::Expired) => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "token_expired",
                    "the run token has expired",
                )),
                Err(TokenError::Invalid) => Err(unauthorized("invalid token")),
            }
        }
        Need::DbosRun(run, scope) => {
            let Some(c) = cred else {
                return Err(unauthorized(
                    "a DBOS run token (?token=) or an API key is required",
                ));
            };
            let kind = crate::http::dbos::RUN_TOKEN_KIND;
            match auth
                .signer
                .verify(kind, c, |c: &super::token::RunClaims| c.exp)
            {
                Ok(claims) if &claims.run == run && claims.scopes.contains(scope) => {
                    Ok(Principal::Run(format!("dbos:{}", claims.run)))
                }
                Ok(_) => Err(forbidden("this token is for another run or action")),
                Err(TokenError::Expired) => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "token_expired",
                    "the run token has expired",
                )),
                Err(TokenError::Invalid) => Err(unauthorized(
                    "invalid token (a flowgate run token does not open DBOS runs)",
                )),
            }
        }
    }
}

/// The middleware.
pub async fn guard(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let auth = app.auth.clone();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if !auth.admits(peer) {
        return forbidden("this server accepts loopback clients only (no API keys configured)")
            .into_response();
    }
    let need = classify(req.method(), req.uri().path());
    let cred = credential(&req);
    let principal = if auth.open() {
        Principal::Anonymous
    } else {
        match decide(&auth, &need, cred.as_deref()) {
            Ok(p) => p,
            Err(e) => return e.into_response(),
        }
    };
    if let (Principal::Key(i), Some(limiter)) = (&principal, &auth.rate) {
        if let Err(not_until) = limiter.check_key(i) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests for this API key",
            )
            .with_header("retry-after", secs.to_string())
            .into_response();
        }
    }
    let client = match &principal {
        Principal::Key(i) => format!("key:{i}"),
        Principal::Run(r) => format!(
            "run:{r}:{}",
            peer.map(|p| p.ip().to_string()).unwrap_or_default()
        ),
        Principal::Anonymous => format!(
            "ip:{}",
            peer.map(|p| p.ip().to_string()).unwrap_or_default()
        ),
    };
    let sse_slot = if is_sse(&req) {
        match SseSlot::take(&auth, client) {
            Some(s) => Some(s),
            None => {
                return ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_streams",
                    "too many open streams for this client",
                )
                .with_header("retry-after", "5")
                .into_response()
            }
        }
    } else {
        None
    };
    let set_cookie = match (&principal, &need) {
        (Principal::Run(run), Need::Run(..))
            if req.uri().query().is_some_and(|q| q.contains("token=")) =>
        {
            cred.map(|c| {
                format!("flowgate_token={c}; Path=/v1/workflows/{run}; HttpOnly; SameSite=Lax")
            })
        }
        _ => None,
    };
    let mut resp = next.run(req).await;
    if let Some(c) = set_cookie.and_then(|c| c.parse().ok()) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    match sse_slot {
        Some(slot) => resp.map(|body| {
            Body::from_stream(body.into_data_stream().map(move |chunk| {
                let _held = &slot;
                chunk
            }))
        }),
        None => resp,
    }
}

/// One open SSE response counted against its client; released on drop.
struct SseSlot {
    auth: Arc<Auth>,
    client: String,
}

impl SseSlot {
    fn take(auth: &Arc<Auth>, client: String) -> Option<SseSlot> {
        let mut m = auth.sse_clients.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(client.clone()).or_insert(0);
        if *n >= auth.max_sse_per_client {
            return None;
        }
        *n += 1;
        Some(SseSlot {
            auth: auth.clone(),
            client,
        })
    }
}

impl Drop for SseSlot {
    fn drop(&mut self) {
        let mut m = self
            .auth
            .sse_clients
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify(&Method::GET, "/"), Need::Public);
        assert_eq!(classify(&Method::GET, "/runs/abc"), Need::Public);
        assert_eq!(classify(&Method::GET, "/metrics"), Need::Admin);
        assert_eq!(
            classify(&Method::GET, "/v1/workflows/a/live"),
            Need::Run("a".into(), Scope::Read)
        );
        assert_eq!(
            classify(&Method::GET, "/v1/workflows/a/streams/s/poll"),
            Need::Run("a".into(), Scope::Read)
        );
        assert_eq!(
            classify(&Method::GET, "/v1/workflows/a"),
            Need::Run("a".into(), Scope::Read)
        );
        assert_eq!(
            classify(&Method::POST, "/v1/workflows/a/streams/s"),
            Need::Admin
        );
        assert_eq!(
            classify(&Method::POST, "/v1/workflows/a/messages"),
            Need::Admin
        );
        assert_eq!(
            classify(&Method::POST, "/v1/workflows/a/approval-links"),
            Need::Run("a".into(), Scope::Approve)
        );
        assert_eq!(classify(&Method::GET, "/v1/workflows"), Need::Admin);
        assert_eq!(classify(&Method::POST, "/v1/workflows"), Need::Admin);
        assert_eq!(classify(&Method::POST, "/v1/approvals/x"), Need::Public);
        assert_eq!(classify(&Method::GET, "/v1/stream/x"), Need::Admin);
        assert_eq!(
            classify(&Method::GET, "/v1/stream/workflows/a/tokens"),
            Need::Run("a".into(), Scope::Read)
        );
        assert_eq!(
            classify(&Method::POST, "/v1/stream/workflows/a/tokens"),
            Need::Admin
        );
        assert_eq!(
            classify(&Method::GET, "/v1/dbos/workflows/wf%3A%3Aa/streams/out"),
            Need::DbosRun("wf::a".into(), Scope::Read)
        );
        assert_eq!(
            classify(&Method::POST, "/v1/dbos/workflows/a/approval-links"),
            Need::DbosRun("a".into(), Scope::Approve)
        );
        assert_eq!(
            classify(&Method::POST, "/v1/dbos/workflows/a/messages"),
            Need::Admin
        );
        assert_eq!(classify(&Method::GET, "/v1/dbos/workflows"), Need::Admin);
        assert_eq!(
            classify(&Method::POST, "/v1/dbos/approvals/x"),
            Need::Public
        );
        assert_eq!(classify(&Method::GET, "/dbos/runs/x"), Need::Public);
    }
}
