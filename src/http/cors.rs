//! The CORS layer for `FLOWGATE_CORS_ORIGINS`: the configured origins with credentials, or
//! `*` without; the Durable Streams protocol's request and response headers included.

use crate::config::Config;

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
        .allow_headers(
            [
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_NONE_MATCH,
                HeaderName::from_static("last-event-id"),
            ]
            .into_iter()
            .chain(static_names(crate::http::durable_streams::REQUEST_HEADERS))
            .collect::<Vec<_>>(),
        )
        .expose_headers(
            [
                header::LOCATION,
                header::RETRY_AFTER,
                header::ETAG,
                header::CONTENT_TYPE,
            ]
            .into_iter()
            .chain(static_names(crate::http::durable_streams::RESPONSE_HEADERS))
            .collect::<Vec<_>>(),
        );
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

/// Header names given as static strings.
fn static_names(names: &'static [&'static str]) -> impl Iterator<Item = axum::http::HeaderName> {
    names.iter().map(|h| axum::http::HeaderName::from_static(h))
}
