//! Default deny: on a server with API keys, every operation in `/openapi.json` answers 401
//! to a request without credentials, except the few that are public by design. A route
//! added without a permission extractor (see `src/http/access/mod.rs`) fails here.

use serde_json::Value;

use crate::helpers::*;

const PUBLIC: &[&str] = &[
    "GET /",
    "GET /runs/{id}",
    "GET /static/{file}",
    "GET /openapi.json",
    "GET /healthz",
    "GET /readyz",
    "GET /v1/approvals/{token}",
    "POST /v1/approvals/{token}",
    "GET /v1/stream/__ds/jwks.json",
    "OPTIONS /v1/stream/{path}",
    "GET /dbos/runs/{id}",
    "GET /v1/dbos/approvals/{token}",
    "POST /v1/dbos/approvals/{token}",
];

#[tokio::test]
async fn every_operation_but_the_public_ones_needs_a_credential() {
    let app = spawn_app_with(|c| c.api_keys = vec!["k-0123456789abcdef".into()]).await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let op = format!("{} {path}", method.to_uppercase());
            if PUBLIC.contains(&op.as_str()) {
                continue;
            }
            let concrete = path.replace("{path}", "s").replace(['{', '}'], "");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app
                .http
                .request(m, app.url(&concrete))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{op} without a credential");
            checked += 1;
        }
    }
    assert!(checked >= 45, "only {checked} operations checked");
}
