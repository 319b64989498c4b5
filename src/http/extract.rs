//! Extractors whose rejections are our JSON errors, plus parsing helpers for names and
//! offsets taken from paths, queries and headers.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::http::access::AdminKey;
use crate::ids::{self, InvalidName, Key, RunId};

/// JSON body; a body that is not `application/json` (or `…+json`) is a 415, malformed JSON
/// a 400 naming the problem, an oversize body a 413.
pub struct ApiJson<T>(pub T);

/// 415 unless the request says its body is JSON (a browser cannot send that cross-site
/// without a CORS preflight).
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let media = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(crate::http::durable_streams::media_type)
        .unwrap_or_default();
    let json = media == "application/json"
        || (media.starts_with("application/") && media.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON with Content-Type: application/json",
        )
        .with_field("Content-Type"))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        require_json(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON with a helpful error, naming a missing or invalid field where serde says it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let msg = e.to_string();
        let field = msg.split('`').nth(1).map(str::to_string);
        let mut err = ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("invalid JSON body: {msg}"),
        );
        if let Some(f) = field.filter(|_| msg.contains("field")) {
            err = err.with_field(f);
        }
        err
    })
}

fn body_error(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "request body exceeds the size limit",
        )
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", r.body_text())
    }
}

/// Defines extractor `$name` around axum's `$inner`, its rejection a 400 with `$code`.
macro_rules! bad_request_extractor {
    ($(#[$doc:meta])* $name:ident($inner:ident, $code:literal)) => {
        $(#[$doc])*
        pub struct $name<T>(pub T);

        impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for $name<T> {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                $inner::<T>::from_request_parts(parts, state)
                    .await
                    .map(|$inner(v)| $name(v))
                    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, $code, e.body_text()))
            }
        }
    };
}

bad_request_extractor!(
    /// Query string.
    ApiQuery(Query, "invalid_query")
);
bad_request_extractor!(
    /// Path parameters.
    ApiPath(Path, "invalid_path")
);

/// Path parameters that are names, each validated as [`PathNames::check`] says (a 400
/// naming the parameter otherwise).
pub struct Names<N>(pub N);

/// What [`Names`] extracts: `Raw` as the path has it, checked into `Self`.
pub trait PathNames: Sized {
    /// The parameters as strings.
    type Raw: DeserializeOwned + Send;
    /// Validates each, naming the failing one.
    fn check(raw: Self::Raw) -> Result<Self, ApiError>;
}

impl<S: Send + Sync, N: PathNames> FromRequestParts<S> for Names<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiPath(raw) = ApiPath::<N::Raw>::from_request_parts(parts, state).await?;
        N::check(raw).map(Names)
    }
}

/// `{id}`: a run id.
impl PathNames for RunId {
    type Raw = String;
    fn check(id: String) -> Result<Self, ApiError> {
        name("id", id, RunId::parse)
    }
}

/// `{id}`, `{key}`: a run id and an event or stream key.
impl PathNames for (RunId, Key) {
    type Raw = (String, String);
    fn check((id, key): (String, String)) -> Result<Self, ApiError> {
        Ok((name("id", id, RunId::parse)?, name("key", key, Key::parse)?))
    }
}

/// What every admin write under a named path takes, checked in this order: an API key
/// ([`AdminKey`]: 401/403 first), the path's names ([`Names`]) and a JSON body
/// ([`ApiJson`]).
pub struct AdminWrite<N, B>(pub N, pub B);

impl<S: Send + Sync, N: PathNames + Send, B: DeserializeOwned> FromRequest<S> for AdminWrite<N, B> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        AdminKey::from_request_parts(&mut parts, state).await?;
        let Names(names) = Names::<N>::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let ApiJson(body) = ApiJson::<B>::from_request(req, state).await?;
        Ok(AdminWrite(names, body))
    }
}

/// `deserialize_with` for an optional field: JSON `null` reads as absent (the default), as
/// the document's nullable schema says.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    Ok(<Option<T> as serde::Deserialize>::deserialize(d)?.unwrap_or_default())
}

/// Validates a name from the request, naming the field on failure.
pub fn name<T>(
    field: &str,
    value: String,
    parse: fn(String) -> Result<T, InvalidName>,
) -> Result<T, ApiError> {
    parse(value).map_err(|e| ApiError::invalid(field, e))
}

/// Parses an optional offset/version parameter.
pub fn offset(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| ids::parse_offset(v).map_err(|e| ApiError::invalid(field, e)))
        .transpose()
}

/// Parses `timeout` seconds, capped at `max`: a finite non-negative number, else 400. The
/// cap applies before the conversion, so no number is too large.
pub fn timeout(
    value: Option<&str>,
    default: f64,
    max: std::time::Duration,
) -> Result<std::time::Duration, ApiError> {
    let secs = match value {
        None => default,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => s,
            _ => {
                return Err(ApiError::invalid(
                    "timeout",
                    "must be a non-negative number of seconds",
                ))
            }
        },
    };
    Ok(std::time::Duration::from_secs_f64(
        secs.min(max.as_secs_f64()),
    ))
}

/// The `Last-Event-ID` header as an offset, if present.
pub fn last_event_id(headers: &axum::http::HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get("last-event-id") {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| ApiError::invalid("Last-Event-ID", "must be ASCII"))?;
            if s.trim().is_empty() {
                return Ok(None);
            }
            offset("Last-Event-ID", Some(s))
        }
    }
}

/// Validates a run's tags, naming the field `tags` on failure.
pub fn tags(list: Vec<String>) -> Result<crate::tags::Tags, ApiError> {
    crate::tags::Tags::parse(list).map_err(|e| ApiError::invalid("tags", e.to_string()))
}
