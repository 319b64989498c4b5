//! The request guard: admits the peer, applies the keyless server's browser protections
//! ([`super::browser`]), finds the credential (bearer header, `?token=` or the
//! `flowgate_token` cookie), works out the [`Caller`] and rate-limits it, and hands it to the
//! handler in the request's extensions.
//!
//! It never looks at the path: what the caller may do is decided by the permission
//! extractors in [`super::access`], from the values the handler itself uses.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{forbidden, identify, Caller, Who};
use crate::error::ApiError;
use crate::http::AppState;

/// The credential presented, if any: `Authorization: Bearer`, then `?token=`, then the cookie.
/// Also says whether it came from the query string.
pub fn credential(headers: &HeaderMap, query: Option<&str>) -> Option<(String, bool)> {
    if let Some(h) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = h.strip_prefix("Bearer ") {
            return Some((t.trim().to_string(), false));
        }
    }
    if let Some(q) = query {
        if let Some((_, v)) = form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "token") {
            return Some((v.into_owned(), true));
        }
    }
    let cookies = headers.get_all(header::COOKIE);
    for c in cookies.iter().filter_map(|v| v.to_str().ok()) {
        for part in c.split(';') {
            if let Some(v) = part.trim().strip_prefix("flowgate_token=") {
                return Some((v.to_string(), false));
            }
        }
    }
    None
}

/// The client identity that per-client limits count against.
fn client_id(who: &Who, peer: Option<SocketAddr>) -> String {
    let ip = peer.map(|p| p.ip().to_string()).unwrap_or_default();
    match who {
        Who::Key(i) => format!("key:{i}"),
        Who::Run(c) => format!("run:{}:{ip}", c.run),
        Who::Tags(c) => format!("tags:{}:{ip}", c.tags.join(",")),
        _ => format!("ip:{ip}"),
    }
}

fn rate_limited(wait: std::time::Duration, what: &str) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests for this {what}"),
    )
    .with_header("retry-after", secs.to_string())
    .into_response()
}

/// The middleware.
pub async fn guard(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let auth = app.auth.clone();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if !auth.admits(peer) {
        return forbidden("this server accepts loopback clients only (no API keys configured)")
            .into_response();
    }
    if auth.open() {
        let authority = req.uri().authority().map(|a| a.as_str().to_string());
        let checked = super::browser::check(&auth, req.method(), req.headers(), authority);
        if let Err(e) = checked {
            return e.into_response();
        }
    }
    let presented = credential(req.headers(), req.uri().query());
    let who = identify(&auth, presented.as_ref().map(|(c, _)| c.as_str()));
    let limited = match (&who, &presented) {
        (Who::Key(i), _) => auth.check_key_rate(*i).map_err(|w| (w, "API key")),
        (Who::Run(_) | Who::Tags(_), Some((token, _))) => auth
            .check_client_rate(&format!("token:{token}"))
            .map_err(|w| (w, "run token")),
        _ => auth
            .check_client_rate(&format!(
                "ip:{}",
                peer.map(|p| p.ip().to_string()).unwrap_or_default()
            ))
            .map_err(|w| (w, "client")),
    };
    if let Err((wait, what)) = limited {
        return rate_limited(wait, what);
    }
    let caller = Caller {
        client: client_id(&who, peer),
        who,
        credential: presented.as_ref().map(|(c, _)| c.clone()),
        cookie: Default::default(),
        token_in_query: presented.as_ref().is_some_and(|(_, q)| *q),
    };
    let cookie_slot = caller.cookie.clone();
    let secure = auth.secure_cookies
        || req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    if matches!(caller.who, Who::Tags(_)) {
        // A tag token is checked against the run's tags, which takes a read.
        req.extensions_mut().insert(app.store.clone());
    }
    req.extensions_mut().insert(caller);
    let mut resp = next.run(req).await;
    let run = cookie_slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let (Some(run), Some((token, true))) = (run, presented) {
        let flag = if secure { "; Secure" } else { "" };
        let c = format!(
            "flowgate_token={token}; Path=/v1/workflows/{run}; HttpOnly; SameSite=Lax{flag}"
        );
        if let Ok(v) = c.parse() {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_order_and_decoded() {
        let mut h = HeaderMap::new();
        assert_eq!(
            credential(&h, Some("a=1&token=run.x%2Ey.z")),
            Some(("run.x.y.z".into(), true))
        );
        h.insert(header::COOKIE, "a=b; flowgate_token=t1".parse().unwrap());
        assert_eq!(credential(&h, None), Some(("t1".into(), false)));
        h.insert(header::AUTHORIZATION, "Bearer k".parse().unwrap());
        assert_eq!(credential(&h, Some("token=q")), Some(("k".into(), false)));
    }
}
