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

/// A documented route whose handler hands the request to [`forward`]. `stream` routes are
/// on `/v1/stream/{path}` and take the stream path; `sub` routes are on the given path and
/// take the subscription id. Then, each optional: further `params`, optional `headers`
/// (name, schema: description), a `body` in any of the stream content types (its description);
/// from `summary` on, the rest of `#[utoipa::path]`.
macro_rules! route {
    (@fn $(#[$m:meta])* $method:ident $path:literal $name:ident $first:tt
        $(params [$($param:tt),*])?
        $(headers [$($header:literal $ty:ident: $about:literal),*])?
        $(body $body:literal)?
        summary = $($arg:tt)*) => {
        $(#[$m])*
        #[utoipa::path($method, path = $path,
            params($first $($(, $param)*)?
                $($(, ($header = Option<$ty>, Header, description = $about))*)?),
            $(request_body(description = $body, content((String = "application/octet-stream"),
                (String = "text/plain"), (serde_json::Value = "application/json"))),)?
            summary = $($arg)*)]
        async fn $name(req: StreamRequest) -> Response {
            forward(req).await
        }
    };
    ($(#[$m:meta])* stream $method:ident $name:ident $($rest:tt)*) => {
        route!(@fn $(#[$m])* $method "/v1/stream/{path}" $name
            ("path" = StreamPath, Path, description = "Stream path (may contain /)") $($rest)*);
    };
    ($(#[$m:meta])* sub $method:ident $path:literal $name:ident $($rest:tt)*) => {
        route!(@fn $(#[$m])* $method $path $name
            ("id" = Name, Path, description = "Subscription id") $($rest)*);
    };
}

route! {
    /// Reads a stream.
    stream get read
    params [
        ("offset" = Option<String>, Query, description = "Start: -1 (the beginning), now, or a Stream-Next-Offset"),
        ("live" = Option<LiveMode>, Query, description = "Wait for data: long-poll or sse (needs offset)"),
        ("cursor" = Option<String>, Query, description = "The last Stream-Cursor (for caches)")]
    headers ["If-None-Match" Opaque: "ETag of a previous read"]
    summary = "Read a stream from ?offset: catch-up, long-poll (live=long-poll) or SSE (live=sse)",
    description = "Answers carry Stream-Next-Offset, Stream-Cursor, Stream-Up-To-Date and Stream-Closed. Workflow streams are readable at workflows/{run}/{key}.",
    responses(
        (status = 200, description = "Data from the offset (SSE with live=sse)",
            content((serde_json::Value = "*/*"), (String = "text/event-stream"))),
        (status = 204, description = "Long-poll timed out with no new data"),
        (status = 304, description = "Unchanged since If-None-Match"),
        StreamRead)
}

route! {
    /// A stream's metadata.
    stream head head
    summary = "A stream's metadata, as headers",
    responses((status = 200, description = "Content-Type, Stream-Next-Offset, Stream-Closed, Stream-TTL, Stream-Expires-At"),
        StreamRead)
}

route! {
    /// Creates a stream.
    stream put create
    headers [
        "Stream-TTL" TtlHeader: "Seconds to keep the stream after its last write",
        "Stream-Expires-At" Opaque: "RFC 3339 expiry time",
        "Stream-Closed" Opaque: "true: create it closed",
        "Stream-Forked-From" Opaque: "Path or URL of the stream to fork",
        "Stream-Fork-Offset" Opaque: "Where the fork branches off"]
    body "Initial data, of the stream's content type"
    summary = "Create a stream (idempotent for the same configuration), optionally with initial data or as a fork",
    responses((status = 201, description = "Created (Location names it)"),
        (status = 200, description = "Exists with the same configuration"), StreamWrite)
}

route! {
    /// Appends to a stream.
    stream post append
    headers [
        "Stream-Seq" Opaque: "Writer sequence; must increase",
        "Stream-Closed" Opaque: "true: close the stream after this append",
        "Producer-Id" ProducerId: "Idempotent producer id (with Producer-Epoch and Producer-Seq)",
        "Producer-Epoch" ProducerNumber: "Idempotent producer epoch",
        "Producer-Seq" ProducerNumber: "Idempotent producer sequence"]
    body "Data, of the stream's content type"
    summary = "Append to a stream (a JSON stream takes a message or an array of messages), or close it with Stream-Closed: true",
    responses((status = 200, description = "Appended (a producer's first append of an epoch)"),
        (status = 204, description = "Appended, or a duplicate acknowledged"), StreamWrite)
}

route! {
    /// Deletes a stream.
    stream delete delete
    summary = "Delete a stream",
    responses((status = 204, description = "Deleted"), StreamWrite)
}

route! {
    /// The CORS preflight.
    stream options preflight
    summary = "CORS preflight (no credential needed)",
    responses((status = 204, description = "Allowed methods and headers"), StreamRead)
}

/// The webhook signing keys.
#[utoipa::path(get, path = "/v1/stream/__ds/jwks.json", summary = "Public keys that sign webhook wakes (no credential needed)",
    responses((status = 200, description = "A JWK set", content_type = "application/jwk-set+json", body = AnyObject), Auth))]
async fn jwks(req: StreamRequest) -> Response {
    forward(req).await
}

route! {
    /// Creates or confirms a subscription.
    sub put "/v1/stream/__ds/subscriptions/{id}" sub_put
    summary = "Create a subscription (webhook or pull-wake) to streams matching a pattern, or confirm an identical one",
    request_body = SubBody,
    responses((status = 201, description = "Created", body = AnyObject),
        (status = 200, description = "Exists with this configuration", body = AnyObject), SubCall)
}

route! {
    /// A subscription.
    sub get "/v1/stream/__ds/subscriptions/{id}" sub_get
    summary = "A subscription",
    responses((status = 200, description = "The subscription", body = AnyObject), SubCall)
}

route! {
    /// Deletes a subscription.
    sub delete "/v1/stream/__ds/subscriptions/{id}" sub_delete
    summary = "Delete a subscription",
    responses((status = 204, description = "Deleted"), SubCall)
}

route! {
    /// Links streams to a subscription.
    sub post "/v1/stream/__ds/subscriptions/{id}/streams" sub_link
    summary = "Link streams to a subscription explicitly", request_body = LinkBody,
    responses((status = 204, description = "Linked"), SubCall)
}

route! {
    /// Unlinks a stream from a subscription.
    sub delete "/v1/stream/__ds/subscriptions/{id}/streams/{path}" sub_unlink
    params [("path" = StreamPath, Path, description = "Stream path (may contain /)")]
    summary = "Unlink a stream from a subscription",
    responses((status = 204, description = "Unlinked"), SubCall)
}

route! {
    /// A webhook consumer acknowledges its wake.
    sub post "/v1/stream/__ds/subscriptions/{id}/callback" sub_callback
    summary = "A webhook consumer acknowledges its wake (bearer: the wake's token; 409 FENCED if not the open wake)",
    request_body = AckBody,
    responses((status = 200, description = "Acknowledged", body = AckResult), SubCall)
}

route! {
    /// A pull-wake worker acknowledges its claim.
    sub post "/v1/stream/__ds/subscriptions/{id}/ack" sub_ack
    summary = "A pull-wake worker acknowledges offsets (bearer: the claim's token; 409 FENCED if not the open wake)",
    request_body = AckBody,
    responses((status = 200, description = "Acknowledged", body = AckResult), SubCall)
}

route! {
    /// A pull-wake worker claims the open wake.
    sub post "/v1/stream/__ds/subscriptions/{id}/claim" sub_claim
    summary = "A pull-wake worker claims the open (or a new) wake: 200 with the lease, 204 with nothing to do, 409 ALREADY_CLAIMED",
    request_body = ClaimBody,
    responses((status = 200, description = "The lease", body = AnyObject),
        (status = 204, description = "Nothing to claim"), SubCall)
}

route! {
    /// A pull-wake worker gives its claim back.
    sub post "/v1/stream/__ds/subscriptions/{id}/release" sub_release
    summary = "A pull-wake worker gives its claim back; the wake stays open",
    request_body = AckBody,
    responses((status = 204, description = "Released"), SubCall)
}
