//! The `/v1/dbos/…` part of `/openapi.json`: the read operations are flowgate's own
//! (same parameters, frames and bodies), re-described under `/v1/dbos` with DBOS's id
//! charset; messages, tokens, approval links and the list are described here.

use serde_json::{json, Map, Value};

use super::MAX_DBOS_NAME;

/// flowgate path → DBOS path for the operations DBOS runs share.
const SHARED: [(&str, &str, &str); 9] = [
    ("/runs/{id}", "/dbos/runs/{id}", "get"),
    ("/v1/workflows/{id}", "/v1/dbos/workflows/{id}", "get"),
    (
        "/v1/workflows/{id}/events",
        "/v1/dbos/workflows/{id}/events",
        "get",
    ),
    (
        "/v1/workflows/{id}/events/{key}",
        "/v1/dbos/workflows/{id}/events/{key}",
        "get",
    ),
    (
        "/v1/workflows/{id}/streams/{key}",
        "/v1/dbos/workflows/{id}/streams/{key}",
        "get",
    ),
    (
        "/v1/workflows/{id}/streams/{key}/poll",
        "/v1/dbos/workflows/{id}/streams/{key}/poll",
        "get",
    ),
    (
        "/v1/workflows/{id}/live",
        "/v1/dbos/workflows/{id}/live",
        "get",
    ),
    (
        "/v1/workflows/{id}/approval-links",
        "/v1/dbos/workflows/{id}/approval-links",
        "post",
    ),
    (
        "/v1/workflows/{id}/tokens",
        "/v1/dbos/workflows/{id}/tokens",
        "post",
    ),
];

fn dbos_name() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": MAX_DBOS_NAME,
        "description": "Any text without control characters, percent-encoded in the path" })
}

/// Re-describes one shared operation for DBOS runs.
fn adapt(mut op: Value) -> Value {
    if let Some(s) = op["summary"].as_str() {
        op["summary"] = json!(format!("DBOS: {s}"));
    }
    if let Some(params) = op["parameters"].as_array_mut() {
        params.retain(|p| p["name"] != "wait");
        for p in params.iter_mut().filter(|p| p["in"] == "path") {
            p["schema"] = dbos_name();
        }
    }
    op
}

fn error(desc: &str) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn with_errors(mut op: Value, codes: &[(u16, &str)]) -> Value {
    for (code, desc) in codes {
        op["responses"][code.to_string()] = error(desc);
    }
    op
}

fn own_paths() -> Vec<(&'static str, &'static str, Value)> {
    let id = json!({ "name": "id", "in": "path", "required": true, "description": "DBOS workflow id", "schema": dbos_name() });
    let token = json!({ "name": "token", "in": "path", "required": true, "description": "The link's token", "schema": { "type": "string", "minLength": 1 } });
    let q = |n: &str, d: &str| json!({ "name": n, "in": "query", "required": false, "description": d, "schema": { "type": "string" } });
    let auth = [
        (401, "Missing or invalid credential"),
        (403, "Not allowed"),
        (429, "Rate limited"),
        (503, "Not available"),
    ];
    let bad = [
        (400, "Invalid input (the field is named)"),
        (404, "No such DBOS workflow, or no DBOS source configured"),
        (413, "Too large"),
        (415, "Body is not JSON"),
    ];
    let all: Vec<(u16, &str)> = bad.iter().chain(auth.iter()).cloned().collect();
    let list = json!({ "summary": "DBOS: list workflows, newest first",
        "parameters": [q("status", "Filter by DBOS status"), q("workflow", "Filter by workflow name"),
            json!({ "name": "limit", "in": "query", "required": false, "description": "At most this many (1-1000)",
                "schema": { "type": "string", "pattern": "^(1000|[1-9][0-9]{0,2})$" } })],
        "responses": { "200": { "description": "Workflows", "content": { "application/json": { "schema": { "type": "object",
            "properties": { "workflows": { "type": "array", "items": { "$ref": "#/components/schemas/Run" } } }, "required": ["workflows"] } } } } } });
    let send = json!({ "summary": "DBOS: send a message (through dbos.send_message; idempotent by key)", "parameters": [id],
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object",
            "properties": { "topic": dbos_name(), "body": {}, "idempotency_key": dbos_name() }, "required": ["topic", "body"] } } } },
        "responses": { "202": { "description": "Sent", "content": { "application/json": { "schema": { "type": "object",
            "properties": { "message_id": { "type": "string" }, "duplicate": { "type": "boolean" } }, "required": ["message_id", "duplicate"] } } } } } });
    let start = json!({ "summary": "DBOS: start a workflow on one of the app's queues (dbos.enqueue_workflow)", "parameters": [],
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object",
            "properties": { "workflow": dbos_name(), "queue": dbos_name(), "args": { "type": "array", "items": {} },
                "kwargs": { "type": "object" }, "id": dbos_name(), "app_version": dbos_name() }, "required": ["workflow", "queue"] } } } },
        "responses": { "201": { "description": "Enqueued", "content": { "application/json": { "schema": { "type": "object",
            "properties": { "id": { "type": "string" }, "status": { "type": "string" } }, "required": ["id", "status"] } } } },
            "200": { "description": "A workflow with this id exists", "content": { "application/json": { "schema": { "type": "object" } } } } } });
    let describe = json!({ "summary": "DBOS: describe an approval link (no side effect)", "parameters": [token],
        "responses": { "200": { "description": "The link", "content": { "application/json": { "schema": { "type": "object" } } } } } });
    let use_link = json!({ "summary": "DBOS: use an approval link (sent to the workflow once)", "parameters": [token],
        "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object",
            "properties": { "comment": { "type": "string", "maxLength": 2000 } } } } } },
        "responses": { "200": { "description": "Recorded, or already decided", "content": { "application/json": { "schema": { "type": "object",
            "properties": { "status": { "type": "string", "enum": ["recorded", "already_decided"] }, "decision": { "type": "string" } },
            "required": ["status", "decision"] } } } } } });
    let link_errors = [
        (400, "Invalid comment"),
        (403, "Not a valid link"),
        (404, "No DBOS source"),
        (410, "Expired"),
        (429, "Rate limited"),
    ];
    vec![
        ("/v1/dbos/workflows", "get", with_errors(list, &all)),
        ("/v1/dbos/workflows", "post", with_errors(start, &all)),
        (
            "/v1/dbos/workflows/{id}/messages",
            "post",
            with_errors(send, &all),
        ),
        (
            "/v1/dbos/approvals/{token}",
            "get",
            with_errors(describe, &link_errors),
        ),
        (
            "/v1/dbos/approvals/{token}",
            "post",
            with_errors(use_link, &link_errors),
        ),
    ]
}

/// Adds the DBOS operations to `paths` (which already holds flowgate's).
pub fn extend(paths: &mut Value) {
    let Some(map) = paths.as_object_mut() else {
        return;
    };
    let mut added: Vec<(String, String, Value)> = SHARED
        .iter()
        .filter_map(|(from, to, method)| {
            let op = map.get(*from)?.get(*method)?.clone();
            Some((to.to_string(), method.to_string(), adapt(op)))
        })
        .collect();
    added.extend(
        own_paths()
            .into_iter()
            .map(|(p, m, op)| (p.to_string(), m.to_string(), op)),
    );
    for (path, method, op) in added {
        let entry = map.entry(path).or_insert_with(|| Value::Object(Map::new()));
        entry[method] = op;
    }
}
