//! The routes of `/v1/stream/…`, each method a documented handler. Every one of them hands
//! the whole request to [`super::http::dispatch`], so the protocol's behaviour (access
//! before validation, its own 404 and 405 answers for unknown subscription resources and
//! methods) is the same whichever route matched; the routes exist to describe the API.
//!
//! The stream path may hold `/`: it is the `{*path}` wildcard, written `{path}` in the
//! document. The reserved `__ds/` routes are static, so they take precedence.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::subs::{AckBody, LinkBody, SubBody};
use crate::error::ApiError;
use crate::http::access::Caller;
use crate::http::openapi::errors::*;
use crate::http::openapi::schema::*;
use crate::http::AppState;

/// Prefix of every route here.
pub const PREFIX: &str = "/v1/stream/";

/// Everything a stream handler reads from a request; the stream path is taken from the
/// URI (percent-decoded as `Path` decodes it), whichever route matched.
pub struct StreamRequest {
    pub(crate) app: AppState,
    pub(crate) caller: Caller,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
}

impl FromRequest<AppState> for StreamRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, app).await?;
        let raw = parts.uri.path().strip_prefix(PREFIX).unwrap_or_default();
        let path = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| ApiError::invalid("path", "not UTF-8 once decoded"))?
            .into_owned();
        Ok(StreamRequest {
            app: app.clone(),
            caller,
            method: parts.method,
            uri: parts.uri,
            path,
            headers: parts.headers,
            body,
        })
    }
}

/// Every route under `/v1/stream/`; a method a route does not list still reaches the
/// dispatcher (which answers 405 the protocol's way).
pub fn router() -> OpenApiRouter<AppState> {
    let any = |r: UtoipaMethodRouter<AppState>| r.map(|m| m.fallback(forward));
    let router = OpenApiRouter::new()
        .routes(any(routes!(jwks)))
        .routes(any(routes!(sub_put, sub_get, sub_delete)))
        .routes(any(routes!(sub_link)))
        .routes(any(routes!(sub_callback)))
        .routes(any(routes!(sub_ack)))
        .routes(any(routes!(sub_claim)))
        .routes(any(routes!(sub_release)));
    let router = wildcard(router, any(routes!(sub_unlink)));
    wildcard(
        router,
        any(routes!(read, head, create, append, delete, preflight)),
    )
}

/// Registers routes whose last parameter, `{path}`, is a wildcard that may hold `/`.
fn wildcard(
    router: OpenApiRouter<AppState>,
    (schemas, paths, method_router): UtoipaMethodRouter<AppState>,
) -> OpenApiRouter<AppState> {
    let mut wild = OpenApiRouter::new();
    for (path, item) in paths.paths {
        wild = wild.route(&path.replace("{path}", "{*path}"), method_router.clone());
        let doc = wild.get_openapi_mut();
        doc.paths.paths.insert(path, item);
        let components = doc.components.get_or_insert_with(Default::default);
        components.schemas.extend(schemas.clone());
    }
    router.merge(wild)
}

async fn forward(req: StreamRequest) -> Response {
    super::http::dispatch(req).await
}

/// Reads a stream.
#[utoipa::path(get, path = "/v1/stream/{path}",
    summary = "Read a stream from ?offset: catch-up, long-poll (live=long-poll) or SSE (live=sse)",
    description = "Answers carry Stream-Next-Offset, Stream-Cursor, Stream-Up-To-Date and Stream-Closed. Workflow streams are readable at workflows/{run}/{key}.",
    params(("path" = StreamPath, Path, description = "Stream path (may contain /)"),
        ("offset" = Option<String>, Query, description = "Start: -1 (the beginning), now, or a Stream-Next-Offset"),
        ("live" = Option<LiveMode>, Query, description = "Wait for data: long-poll or sse (needs offset)"),
        ("cursor" = Option<String>, Query, description = "The last Stream-Cursor (for caches)"),
        ("If-None-Match" = Option<String>, Header, description = "ETag of a previous read")),
    responses(
        (status = 200, description = "Data from the offset (SSE with live=sse)",
            content((serde_json::Value = "*/*"), (String = "text/event-stream"))),
        (status = 204, description = "Long-poll timed out with no new data"),
        (status = 304, description = "Unchanged since If-None-Match"),
        StreamRead))]
async fn read(req: StreamRequest) -> Response {
    forward(req).await
}

/// A stream's metadata.
#[utoipa::path(head, path = "/v1/stream/{path}", summary = "A stream's metadata, as headers",
    params(("path" = StreamPath, Path, description = "Stream path (may contain /)")),
    responses((status = 200, description = "Content-Type, Stream-Next-Offset, Stream-Closed, Stream-TTL, Stream-Expires-At"),
        StreamRead))]
async fn head(req: StreamRequest) -> Response {
    forward(req).await
}

/// Creates a stream.
#[utoipa::path(put, path = "/v1/stream/{path}",
    summary = "Create a stream (idempotent for the same configuration), optionally with initial data or as a fork",
    params(("path" = StreamPath, Path, description = "Stream path (may contain /)"),
        ("Stream-TTL" = Option<String>, Header, description = "Seconds to keep the stream after its last write"),
        ("Stream-Expires-At" = Option<String>, Header, description = "RFC 3339 expiry time"),
        ("Stream-Closed" = Option<String>, Header, description = "true: create it closed"),
        ("Stream-Forked-From" = Option<String>, Header, description = "Path or URL of the stream to fork"),
        ("Stream-Fork-Offset" = Option<String>, Header, description = "Where the fork branches off")),
    request_body(description = "Initial data, of the stream's content type", content(
        (String = "application/octet-stream"), (String = "text/plain"), (serde_json::Value = "application/json"))),
    responses((status = 201, description = "Created (Location names it)"),
        (status = 200, description = "Exists with the same configuration"), StreamWrite))]
async fn create(req: StreamRequest) -> Response {
    forward(req).await
}

/// Appends to a stream.
#[utoipa::path(post, path = "/v1/stream/{path}",
    summary = "Append to a stream (a JSON stream takes a message or an array of messages), or close it with Stream-Closed: true",
    params(("path" = StreamPath, Path, description = "Stream path (may contain /)"),
        ("Stream-Seq" = Option<String>, Header, description = "Writer sequence; must increase"),
        ("Stream-Closed" = Option<String>, Header, description = "true: close the stream after this append"),
        ("Producer-Id" = Option<String>, Header, description = "Idempotent producer id"),
        ("Producer-Epoch" = Option<String>, Header, description = "Idempotent producer epoch"),
        ("Producer-Seq" = Option<String>, Header, description = "Idempotent producer sequence")),
    request_body(description = "Data, of the stream's content type", content(
        (String = "application/octet-stream"), (String = "text/plain"), (serde_json::Value = "application/json"))),
    responses((status = 200, description = "Appended (a producer's first append of an epoch)"),
        (status = 204, description = "Appended, or a duplicate acknowledged"), StreamWrite))]
async fn append(req: StreamRequest) -> Response {
    forward(req).await
}

/// Deletes a stream.
#[utoipa::path(delete, path = "/v1/stream/{path}", summary = "Delete a stream",
    params(("path" = StreamPath, Path, description = "Stream path (may contain /)")),
    responses((status = 204, description = "Deleted"), StreamWrite))]
async fn delete(req: StreamRequest) -> Response {
    forward(req).await
}

/// The CORS preflight.
#[utoipa::path(options, path = "/v1/stream/{path}", summary = "CORS preflight (no credential needed)",
    params(("path" = StreamPath, Path, description = "Stream path (may contain /)")),
    responses((status = 204, description = "Allowed methods and headers"), StreamRead))]
async fn preflight(req: StreamRequest) -> Response {
    forward(req).await
}

/// The webhook signing keys.
#[utoipa::path(get, path = "/v1/stream/__ds/jwks.json", summary = "Public keys that sign webhook wakes (no credential needed)",
    responses((status = 200, description = "A JWK set", content_type = "application/jwk-set+json", body = AnyObject), Auth))]
async fn jwks(req: StreamRequest) -> Response {
    forward(req).await
}

/// Creates or confirms a subscription.
#[utoipa::path(put, path = "/v1/stream/__ds/subscriptions/{id}",
    summary = "Create a subscription (webhook or pull-wake) to streams matching a pattern, or confirm an identical one",
    params(("id" = Name, Path, description = "Subscription id")), request_body = SubBody,
    responses((status = 201, description = "Created", body = AnyObject),
        (status = 200, description = "Exists with this configuration", body = AnyObject), SubCall))]
async fn sub_put(req: StreamRequest) -> Response {
    forward(req).await
}

/// A subscription.
#[utoipa::path(get, path = "/v1/stream/__ds/subscriptions/{id}", summary = "A subscription",
    params(("id" = Name, Path, description = "Subscription id")),
    responses((status = 200, description = "The subscription", body = AnyObject), SubCall))]
async fn sub_get(req: StreamRequest) -> Response {
    forward(req).await
}

/// Deletes a subscription.
#[utoipa::path(delete, path = "/v1/stream/__ds/subscriptions/{id}", summary = "Delete a subscription",
    params(("id" = Name, Path, description = "Subscription id")),
    responses((status = 204, description = "Deleted"), SubCall))]
async fn sub_delete(req: StreamRequest) -> Response {
    forward(req).await
}

/// Links streams to a subscription.
#[utoipa::path(post, path = "/v1/stream/__ds/subscriptions/{id}/streams", summary = "Link streams to a subscription explicitly",
    params(("id" = Name, Path, description = "Subscription id")), request_body = LinkBody,
    responses((status = 204, description = "Linked"), SubCall))]
async fn sub_link(req: StreamRequest) -> Response {
    forward(req).await
}

/// Unlinks a stream from a subscription.
#[utoipa::path(delete, path = "/v1/stream/__ds/subscriptions/{id}/streams/{path}", summary = "Unlink a stream from a subscription",
    params(("id" = Name, Path, description = "Subscription id"),
        ("path" = StreamPath, Path, description = "Stream path (may contain /)")),
    responses((status = 204, description = "Unlinked"), SubCall))]
async fn sub_unlink(req: StreamRequest) -> Response {
    forward(req).await
}

/// A webhook consumer acknowledges its wake.
#[utoipa::path(post, path = "/v1/stream/__ds/subscriptions/{id}/callback",
    summary = "A webhook consumer acknowledges its wake (bearer: the wake's token; 409 FENCED if not the open wake)",
    params(("id" = Name, Path, description = "Subscription id")), request_body = AckBody,
    responses((status = 200, description = "Acknowledged", body = AckResult), SubCall))]
async fn sub_callback(req: StreamRequest) -> Response {
    forward(req).await
}

/// A pull-wake worker acknowledges its claim.
#[utoipa::path(post, path = "/v1/stream/__ds/subscriptions/{id}/ack",
    summary = "A pull-wake worker acknowledges offsets (bearer: the claim's token; 409 FENCED if not the open wake)",
    params(("id" = Name, Path, description = "Subscription id")), request_body = AckBody,
    responses((status = 200, description = "Acknowledged", body = AckResult), SubCall))]
async fn sub_ack(req: StreamRequest) -> Response {
    forward(req).await
}

/// A pull-wake worker claims the open wake.
#[utoipa::path(post, path = "/v1/stream/__ds/subscriptions/{id}/claim",
    summary = "A pull-wake worker claims the open (or a new) wake: 200 with the lease, 204 with nothing to do, 409 ALREADY_CLAIMED",
    params(("id" = Name, Path, description = "Subscription id")), request_body = AnyObject,
    responses((status = 200, description = "The lease", body = AnyObject),
        (status = 204, description = "Nothing to claim"), SubCall))]
async fn sub_claim(req: StreamRequest) -> Response {
    forward(req).await
}

/// A pull-wake worker gives its claim back.
#[utoipa::path(post, path = "/v1/stream/__ds/subscriptions/{id}/release",
    summary = "A pull-wake worker gives its claim back; the wake stays open",
    params(("id" = Name, Path, description = "Subscription id")), request_body = AckBody,
    responses((status = 204, description = "Released"), SubCall))]
async fn sub_release(req: StreamRequest) -> Response {
    forward(req).await
}
