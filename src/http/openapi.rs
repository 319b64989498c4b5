//! `GET /openapi.json`: an OpenAPI 3.0 description of the whole HTTP API — every path,
//! parameter, request body and response status with its JSON schema, including the error
//! body `{"error": {code, message, field}}` and the SSE endpoints as `text/event-stream`.
//! Written by hand; a test checks it names every route and is well-formed.

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::AppState;

/// Route for `/openapi.json`.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { serve() }))
}

fn serve() -> Response {
    Json(spec()).into_response()
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn obj(props: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": props, "required": required })
}

fn path_param(name: &str, what: &str) -> Value {
    let schema = if name == "token" || name == "file" {
        json!({ "type": "string", "minLength": 1 })
    } else {
        r("Name")
    };
    json!({ "name": name, "in": "path", "required": true, "description": what, "schema": schema })
}

fn query(name: &str, what: &str) -> Value {
    let schema = match name {
        "from" | "after" => json!({ "type": "string", "pattern": "^[0-9]{1,16}$" }),
        "timeout" | "wait" => {
            json!({ "type": "string", "pattern": "^[0-9]{1,5}(\\.[0-9]{1,3})?$" })
        }
        "limit" => json!({ "type": "string", "pattern": "^[0-9]{1,3}$" }),
        _ => json!({ "type": "string" }),
    };
    json!({ "name": name, "in": "query", "required": false, "description": what, "schema": schema })
}

fn retention() -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": crate::http::finish::MAX_RETENTION_SECS,
        "description": "Seconds the run is kept once finished (0: forever; default FLOWGATE_RETENTION)" })
}

fn last_event_id() -> Value {
    json!({ "name": "Last-Event-ID", "in": "header", "required": false,
        "description": "Resume position sent by EventSource on reconnect.", "schema": { "type": "string" } })
}

fn json_body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn ok(desc: &str, schema: Value) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": schema } } })
}

fn sse(desc: &str) -> Value {
    json!({ "description": desc, "content": { "text/event-stream": { "schema": { "type": "string" } } } })
}

/// An operation: `responses` are the successes; every error status in `errors` answers
/// with the error body.
fn op(
    summary: &str,
    params: Vec<Value>,
    body: Option<Value>,
    responses: Value,
    errors: &[u16],
) -> Value {
    let mut resp = match responses {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for code in errors {
        resp.insert(
            code.to_string(),
            json!({ "description": error_text(*code), "content": { "application/json": { "schema": r("Error") } } }),
        );
    }
    let mut o = json!({ "summary": summary, "parameters": params, "responses": resp });
    if let Some(b) = body {
        o["requestBody"] = b;
    }
    o
}

fn error_text(code: u16) -> &'static str {
    match code {
        400 => "Invalid input (the field at fault is named)",
        401 => "Missing, invalid or expired credential",
        403 => "Credential not allowed here, or a non-loopback client without keys",
        404 => "No such run, key, workflow or file",
        409 => "Conflicts with the run's state",
        410 => "Expired",
        413 => "Body or value too large",
        415 => "Body is not JSON",
        422 => "Input does not match the workflow's schema",
        429 => "Rate or stream limit reached (see Retry-After)",
        _ => "Not available (starting, draining, or at capacity)",
    }
}

/// Errors any authenticated endpoint can answer with.
const AUTH: [u16; 4] = [401, 403, 429, 503];

fn errs(extra: &[u16]) -> Vec<u16> {
    let mut v: Vec<u16> = extra.to_vec();
    v.extend_from_slice(&AUTH);
    v
}

fn schemas() -> Value {
    json!({
        "Name": { "type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9_.:@-]+$" },
        "ApprovalGrant": obj(json!({ "topic": r("Name"),
            "approvers": { "type": "array", "minItems": 1, "maxItems": 50, "items": { "type": "string", "minLength": 1, "maxLength": 128 } } }), &["approvers"]),
        "Error": obj(json!({ "error": obj(json!({
            "code": { "type": "string" },
            "message": { "type": "string" },
            "field": { "type": "string", "nullable": true }
        }), &["code", "message", "field"]) }), &["error"]),
        "Run": obj(json!({
            "id": { "type": "string" }, "workflow": { "type": "string" }, "status": { "type": "string" },
            "output": { "nullable": true }, "error": { "nullable": true },
            "tags": { "type": "array", "items": { "type": "string" } },
            "created_at": { "type": "string" }, "updated_at": { "type": "string" },
            "outcome": { "type": "string", "nullable": true,
                "description": "How a finished run ended: succeeded, failed, cancelled, or what the workflow reported (e.g. rejected, timed_out)" },
            "started_at": { "type": "string", "nullable": true }, "finished_at": { "type": "string", "nullable": true },
            "parent_id": { "type": "string", "nullable": true }
        }), &["id", "workflow", "status"]),
        "Tags": { "type": "array", "maxItems": 10, "items": { "type": "string", "minLength": 1, "maxLength": 64,
            "pattern": "^[A-Za-z0-9_.:@-]+$" } },
        "Started": obj(json!({ "id": { "type": "string" }, "status": { "type": "string" }, "token": { "type": "string" } }), &["id", "status"]),
        "Event": obj(json!({ "value": {}, "version": { "type": "integer" } }), &["value", "version"]),
        "Links": obj(json!({ "links": { "type": "array", "items": obj(json!({
            "approver": { "type": "string" }, "approve_url": { "type": "string" },
            "reject_url": { "type": "string" }, "expires_at": { "type": "integer" }
        }), &["approver", "approve_url", "reject_url", "expires_at"]) } }), &["links"]),
    })
}

/// The document.
pub fn spec() -> Value {
    let id = || path_param("id", "Run id");
    let key = || path_param("key", "Event or stream key");
    let timeout = || query("timeout", "Seconds to wait (capped by FLOWGATE_MAX_WAIT)");
    let wait = || query("wait", "Seconds to wait for the run to finish");
    let from = || query("from", "First offset to read");
    let page = |ct: &str| json!({ "description": "The page", "content": { ct: { "schema": { "type": "string" } } } });
    let paths = json!({
        "/": { "get": op("The page", vec![], None, json!({ "200": page("text/html") }), &[]) },
        "/runs/{id}": { "get": op("The page, showing one run", vec![path_param("file", "Run id").tap_name("id")], None, json!({ "200": page("text/html") }), &[]) },
        "/static/{file}": { "get": op("A page asset", vec![path_param("file", "File name")], None, json!({ "200": {
            "description": "The asset", "content": { "text/css": { "schema": { "type": "string" } }, "text/javascript": { "schema": { "type": "string" } } } } }), &[404]) },
        "/openapi.json": { "get": op("This document", vec![], None, json!({ "200": ok("OpenAPI 3", json!({ "type": "object" })) }), &[]) },
        "/healthz": { "get": op("Liveness", vec![], None, json!({ "200": ok("Alive", obj(json!({
            "status": { "type": "string" }, "uptime_s": { "type": "integer" }, "memory_mb": { "type": "number" } }), &["status"])) }), &[]) },
        "/readyz": { "get": op("Readiness", vec![], None, {
            let ready = obj(json!({ "ready": { "type": "boolean" }, "database": { "type": "boolean" },
                "listener": { "type": "boolean" }, "draining": { "type": "boolean" } }), &["ready"]);
            json!({ "200": ok("Ready", ready.clone()), "503": ok("Not ready", ready) }) }, &[]) },
        "/metrics": { "get": op("Prometheus metrics", vec![], None, json!({ "200": {
            "description": "Metrics", "content": { "text/plain": { "schema": { "type": "string" } } } } }), &errs(&[])) },
        "/v1/workflows": {
            "post": op("Start a workflow", vec![wait()], Some(json_body(obj(json!({
                "workflow": r("Name"), "input": {}, "id": r("Name"), "queue": r("Name"), "tags": r("Tags"),
                "retention_secs": retention(), "approval": r("ApprovalGrant") }), &["workflow"]))),
                json!({ "200": ok("Already started with this input, or finished within ?wait", json!({ "oneOf": [r("Started"), r("Run")] })),
                        "201": ok("Started", r("Started")), "202": ok("Still running after ?wait", r("Started")) }),
                &errs(&[400, 404, 409, 413, 415, 422])),
            "get": op("List runs, newest first; with Accept: text/event-stream the live list (`runs`, then a `run` per change)",
                vec![query("status", "Filter by status"), query("workflow", "Filter by workflow"), query("tag", "Only runs with this tag"),
                query("limit", "Page size"), query("cursor", "Next page"), query("since", "Live list position to resume after (SSE)"), last_event_id()], None,
                json!({ "200": { "description": "A page of runs, or the live list as SSE", "content": {
                    "application/json": { "schema": obj(json!({ "workflows": { "type": "array", "items": r("Run") },
                        "next_cursor": { "type": "string", "nullable": true } }), &["workflows"]) },
                    "text/event-stream": { "schema": { "type": "string" } } } } }), &errs(&[400, 404])),
        },
        "/v1/workflow-types": { "get": op("Registered workflows and their input schemas", vec![], None,
            json!({ "200": ok("Workflow types", obj(json!({ "workflows": { "type": "array", "items": obj(json!({
                "name": { "type": "string" }, "input_schema": {} }), &["name"]) } }), &["workflows"])) }), &errs(&[404])) },
        "/v1/workflows/{id}": {
            "get": op("A run's status, output or error", vec![id(), wait()], None, json!({ "200": ok("The run", r("Run")) }), &errs(&[400, 404])),
            "put": op("Create a run for an external producer", vec![id()], Some(json_body(obj(json!({ "workflow": r("Name"), "tags": r("Tags"),
                "retention_secs": retention(), "approval": r("ApprovalGrant") }), &["workflow"]))),
                { let s = obj(json!({ "id": { "type": "string" }, "workflow": { "type": "string" }, "created": { "type": "boolean" },
                    "token": { "type": "string" } }), &["id", "workflow", "created", "token"]);
                  json!({ "200": ok("Exists", s.clone()), "201": ok("Created", s) }) }, &errs(&[400, 409, 413, 415])),
        },
        "/v1/workflows/{id}/finish": { "post": op("Mark an external run finished (pages and ?wait waiters see it)", vec![id()],
            Some(json_body(obj(json!({ "status": { "type": "string", "enum": ["SUCCESS", "ERROR", "CANCELLED"] },
                "output": {}, "error": {}, "outcome": { "type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$" } }), &["status"]))),
            json!({ "200": ok("Finished (or already finished with this status)", obj(json!({ "id": { "type": "string" }, "status": { "type": "string" } }), &["id", "status"])) }),
            &errs(&[400, 404, 409, 413, 415])) },
        "/v1/workflows/{id}/cancel": { "post": op("Cancel a run", vec![id()], None,
            json!({ "200": ok("Cancelled (or already finished)", obj(json!({ "id": { "type": "string" }, "status": { "type": "string" } }), &["id", "status"])) }),
            &errs(&[400, 404, 409])) },
        "/v1/workflows/{id}/access": { "get": op("What the caller may do with this run (for showing buttons)", vec![id()], None,
            json!({ "200": ok("Allowed actions", obj(json!({ "read": { "type": "boolean" }, "approve": { "type": "boolean" },
                "cancel": { "type": "boolean" }, "approvers": { "type": "array", "nullable": true, "items": { "type": "string" } } }),
                &["read", "approve", "cancel", "approvers"])) }), &errs(&[400, 404])) },
        "/v1/workflows/{id}/share": { "post": op("A read-only link to this run", vec![id()], None,
            json!({ "200": ok("The link", obj(json!({ "path": { "type": "string" }, "token": { "type": "string", "nullable": true },
                "expires_at": { "type": "integer", "nullable": true } }), &["path", "token", "expires_at"])) }), &errs(&[400, 404])) },
        "/v1/workflows/{id}/events": { "get": op("All events, or with Accept: text/event-stream an SSE of changes", vec![id(),
            query("after", "Version to resume after (SSE)"), timeout(), last_event_id()], None,
            json!({ "200": { "description": "Events by key, or an SSE of `event` frames",
                "content": { "application/json": { "schema": { "type": "object", "additionalProperties": r("Event") } },
                    "text/event-stream": { "schema": { "type": "string" } } } } }), &errs(&[400, 404])) },
        "/v1/workflows/{id}/events/{key}": {
            "get": op("An event once its version passes ?after", vec![id(), key(), query("after", "Version already seen"), timeout()], None,
                json!({ "200": ok("The event", r("Event")), "204": { "description": "Timed out" } }), &errs(&[400, 404])),
            "put": op("Set an event (the body is its JSON value)", vec![id(), key()], Some(json_body(json!({}))),
                json!({ "200": ok("Stored", obj(json!({ "version": { "type": "integer" } }), &["version"])) }), &errs(&[400, 404, 409, 413, 415])),
        },
        "/v1/workflows/{id}/messages": { "post": op("Send a message to a run", vec![id()], Some(json_body(obj(json!({
            "topic": r("Name"), "body": {}, "idempotency_key": { "type": "string" } }), &["topic", "body"]))),
            json!({ "202": ok("Queued", obj(json!({ "message_id": { "type": "integer" }, "duplicate": { "type": "boolean" } }), &["message_id", "duplicate"])) }),
            &errs(&[400, 404, 409, 413, 415])) },
        "/v1/workflows/{id}/streams/{key}": {
            "get": op("Follow a stream (SSE: records, then `end`; `end` with `expired: true` if the run is removed by retention meanwhile)", vec![id(), key(), from(), last_event_id()], None,
                json!({ "200": sse("Records as `id: offset`, `data: value`") }), &errs(&[400, 404, 410])),
            "post": op("Append a JSON array of records", vec![id(), key()], Some(json_body(json!({ "type": "array", "items": {} }))),
                json!({ "200": ok("Appended", obj(json!({ "first_offset": { "type": "integer" }, "next": { "type": "integer" } }), &["first_offset", "next"])) }),
                &errs(&[400, 404, 409, 413, 415])),
        },
        "/v1/workflows/{id}/streams/{key}/poll": { "get": op("Records from ?from, waiting up to ?timeout for the first", vec![id(), key(), from(), timeout()], None,
            json!({ "200": ok("Records", obj(json!({ "records": { "type": "array", "items": obj(json!({ "offset": { "type": "integer" }, "value": {} }), &["offset", "value"]) },
                "next": { "type": "integer" }, "closed": { "type": "boolean" }, "expired": { "type": "boolean" } }), &["records", "next", "closed"])) }), &errs(&[400, 404, 410])) },
        "/v1/workflows/{id}/streams/{key}/close": { "post": op("Close a stream (idempotent)", vec![id(), key()], None,
            json!({ "200": ok("Closed", obj(json!({ "next": { "type": "integer" }, "closed": { "type": "boolean" } }), &["next", "closed"])) }), &errs(&[400, 404])) },
        "/v1/workflows/{id}/live": { "get": op("Status, events and every stream of a run on one SSE connection", vec![id(),
            query("cursor", "Resume position (the last SSE id)"), last_event_id()], None,
            json!({ "200": sse("`status`, `event`, `record`, `close`, `step` and `limit` frames") }), &errs(&[400, 404])) },
        "/v1/workflows/{id}/approval-links": { "post": op("Mint approve/reject links per approver", vec![id()],
            Some(json_body(obj(json!({ "topic": r("Name"), "ttl_secs": { "type": "integer", "minimum": 1, "maximum": 2592000 },
                "approvers": { "type": "array", "minItems": 1, "maxItems": 50, "items": { "type": "string", "minLength": 1, "maxLength": 128 } } }), &[]))),
            json!({ "201": ok("Links", r("Links")) }), &errs(&[400, 404, 413, 415])) },
        "/v1/workflows/{id}/tokens": { "post": op("Mint a run token", vec![id()],
            Some(json_body(obj(json!({ "scopes": { "type": "array", "items": { "type": "string", "enum": ["read", "approve", "cancel"] } },
                "ttl_secs": { "type": "integer", "minimum": 1, "maximum": 2592000 }, "approval": r("ApprovalGrant") }), &[]))),
            json!({ "201": ok("Token", obj(json!({ "token": { "type": "string" }, "expires_at": { "type": "integer" } }), &["token", "expires_at"])) }),
            &errs(&[400, 404, 413, 415])) },
        "/v1/tokens": { "post": op("Mint a tag token (reads, and with a grant approves, every run carrying one of its tags)", vec![],
            Some(json_body(obj(json!({ "tags": { "type": "array", "minItems": 1, "maxItems": 10, "items": { "type": "string", "minLength": 1,
                    "maxLength": 64, "pattern": "^[A-Za-z0-9_.:@-]+$" } },
                "scopes": { "type": "array", "minItems": 1, "items": { "type": "string", "enum": ["read", "approve", "cancel"] } },
                "ttl_secs": { "type": "integer", "minimum": 1, "maximum": 2592000 }, "approval": r("ApprovalGrant") }), &["tags"]))),
            json!({ "201": ok("Token", obj(json!({ "token": { "type": "string" }, "expires_at": { "type": "integer" },
                "tags": { "type": "array", "items": { "type": "string" } },
                "scopes": { "type": "array", "items": { "type": "string" } } }), &["token", "expires_at"])) }),
            &errs(&[400, 413, 415])) },
        "/v1/approvals/{token}": {
            "get": op("Describe an approval link (no side effect)", vec![path_param("token", "The link's token")], None,
                json!({ "200": ok("The link", obj(json!({ "run": { "type": "string" }, "topic": { "type": "string" },
                    "decision": { "type": "string", "enum": ["approve", "reject"] }, "approver": { "type": "string" },
                    "expires_at": { "type": "integer" }, "used": { "type": "object", "nullable": true } }), &["run", "topic", "decision", "approver", "expires_at", "used"])) }),
                &[403, 410, 429, 503]),
            "post": op("Use an approval link: the decision is sent once", vec![path_param("token", "The link's token")],
                Some(json!({ "required": false, "content": { "application/json": { "schema": obj(json!({ "comment": { "type": "string", "maxLength": 2000 } }), &[]) } } })),
                json!({ "200": ok("Recorded, or already decided", obj(json!({ "status": { "type": "string", "enum": ["recorded", "already_decided"] },
                    "decision": { "type": "string" }, "message_id": { "type": "integer" }, "comment": { "type": "string", "nullable": true },
                    "used_at": { "type": "string" } }), &["status", "decision"])) }),
                &[400, 403, 404, 410, 413, 415, 429, 503]),
        },
    });
    let mut paths = paths;
    super::dbos::openapi::extend(&mut paths);
    if let Some(all) = paths.as_object_mut() {
        for (path, ops) in all.iter_mut() {
            for (method, op) in ops.as_object_mut().into_iter().flatten() {
                op["operationId"] = json!(operation_id(method, path));
            }
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": { "title": "flowgate", "version": env!("CARGO_PKG_VERSION"),
            "description": "Durable workflows and a live gateway on Postgres. Authenticate with `Authorization: Bearer <API key>`, or a run token (bearer, `?token=`, cookie `flowgate_token`) for one run's reads and approval links." },
        "components": { "schemas": schemas(), "securitySchemes": {
            "apiKey": { "type": "http", "scheme": "bearer" },
            "runToken": { "type": "apiKey", "in": "query", "name": "token" } } },
        "paths": paths,
    })
}

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

trait TapName {
    fn tap_name(self, name: &str) -> Value;
}

impl TapName for Value {
    fn tap_name(mut self, name: &str) -> Value {
        self["name"] = json!(name);
        self
    }
}
