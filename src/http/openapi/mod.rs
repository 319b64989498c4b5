//! `GET /openapi.json`, generated: every route is declared once, as a handler carrying its
//! `#[utoipa::path]` (path, parameters, bodies, responses) and registered with
//! `OpenApiRouter::routes(routes!(…))`, which adds the handler to the axum router and its
//! operation to the document in the same step. [`api`] collects every module's routes;
//! [`crate::http::router`] serves its axum half and this module its document half, so a
//! route cannot be served without being described, nor described without being served.
//!
//! Schemas come from the types: request bodies derive `ToSchema` where they are parsed,
//! response shapes and constrained strings live in [`schema`], and error statuses are the
//! [`errors`] sets, each answering with the shared body `{"error": {code, message, field}}`.

pub mod errors;
pub mod schema;

use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::error::ErrorBody;

/// Every route the server answers, each with its documentation.
pub fn api() -> OpenApiRouter<AppState> {
    use super::*;
    OpenApiRouter::new()
        .merge(page::router())
        .merge(openapi::router())
        .merge(health::router())
        .merge(workflows::router())
        .merge(runs::router())
        .merge(finish::router())
        .merge(share::router())
        .merge(events::router())
        .merge(messages::router())
        .merge(streams::router())
        .merge(live::router())
        .merge(approvals::router())
        .merge(tokens::router())
        .merge(durable_streams::router())
        .merge(dbos::router())
}

/// The route serving the document.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(serve))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "The OpenAPI document", body = schema::AnyObject)))]
async fn serve() -> Response {
    ([(CONTENT_TYPE, "application/json")], document().to_string()).into_response()
}

/// The document, built once from [`api`].
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| finish(api().split_for_parts().1))
}

/// Every `(method, path)` of the API, as declared by the routes (lower-case method, OpenAPI
/// path template).
pub fn operations() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, ops) in document()["paths"].as_object().into_iter().flatten() {
        for method in ops.as_object().into_iter().flatten().map(|(m, _)| m) {
            if METHODS.contains(&method.as_str()) {
                out.push((method.clone(), path.clone()));
            }
        }
    }
    out
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Adds what no route declares: the title, the security schemes, the shared error body,
/// and operation ids derived from method and path.
fn finish(mut doc: OpenApi) -> Value {
    doc.info.title = "flowgate".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(DESCRIPTION.into());
    doc.info.license = None;
    doc.info.contact = None;
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "apiKey",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    components.add_security_scheme(
        "runToken",
        SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("token"))),
    );
    components
        .schemas
        .insert(ErrorBody::name().into(), ErrorBody::schema());
    components.schemas.extend(schema::named());
    let mut v = serde_json::to_value(&doc).unwrap_or_else(|_| json!({}));
    for (path, ops) in v["paths"].as_object_mut().into_iter().flatten() {
        for (method, op) in ops.as_object_mut().into_iter().flatten() {
            if METHODS.contains(&method.as_str()) {
                op["operationId"] = json!(operation_id(method, path));
            }
        }
    }
    v
}

const DESCRIPTION: &str = "Durable workflows and a live gateway on Postgres. Authenticate with \
    `Authorization: Bearer <API key>`, or a run token (bearer, `?token=`, cookie \
    `flowgate_token`) for one run's reads and approval links.";

/// `get /v1/workflows/{id}/live` → `get_v1_workflows_id_live`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_string();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        id.extend(
            part.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .map(|c| if c == '-' { '_' } else { c }),
        );
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_follow_the_path() {
        assert_eq!(
            operation_id("get", "/v1/workflows/{id}/live"),
            "get_v1_workflows_id_live"
        );
        assert_eq!(
            operation_id("post", "/v1/workflows/{id}/approval-links"),
            "post_v1_workflows_id_approval_links"
        );
    }

    #[test]
    fn every_operation_has_a_unique_id() {
        let ops = operations();
        let mut ids: Vec<String> = ops.iter().map(|(m, p)| operation_id(m, p)).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), ops.len());
    }
}
