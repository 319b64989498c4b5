//! `/openapi.json`: served without credentials, names every route the server answers, and
//! every operation documents its error statuses with the shared error body.

use serde_json::Value;

use crate::helpers::*;

/// Every (method, path) the router serves.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/runs/{id}"),
    ("get", "/static/{file}"),
    ("get", "/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/v1/workflows"),
    ("get", "/v1/workflows"),
    ("get", "/v1/workflow-types"),
    ("get", "/v1/workflows/{id}"),
    ("put", "/v1/workflows/{id}"),
    ("post", "/v1/workflows/{id}/cancel"),
    ("get", "/v1/workflows/{id}/access"),
    ("post", "/v1/workflows/{id}/share"),
    ("post", "/v1/workflows/{id}/finish"),
    ("get", "/v1/workflows/{id}/events"),
    ("get", "/v1/workflows/{id}/events/{key}"),
    ("put", "/v1/workflows/{id}/events/{key}"),
    ("post", "/v1/workflows/{id}/messages"),
    ("get", "/v1/workflows/{id}/streams/{key}"),
    ("post", "/v1/workflows/{id}/streams/{key}"),
    ("get", "/v1/workflows/{id}/streams/{key}/poll"),
    ("post", "/v1/workflows/{id}/streams/{key}/close"),
    ("get", "/v1/workflows/{id}/live"),
    ("post", "/v1/workflows/{id}/approval-links"),
    ("post", "/v1/workflows/{id}/tokens"),
    ("post", "/v1/tokens"),
    ("get", "/v1/approvals/{token}"),
    ("post", "/v1/approvals/{token}"),
    ("get", "/v1/dbos/workflows"),
    ("post", "/v1/dbos/workflows"),
    ("get", "/v1/dbos/workflows/{id}"),
    ("get", "/v1/dbos/workflows/{id}/events"),
    ("get", "/v1/dbos/workflows/{id}/events/{key}"),
    ("get", "/v1/dbos/workflows/{id}/streams/{key}"),
    ("get", "/v1/dbos/workflows/{id}/streams/{key}/poll"),
    ("get", "/v1/dbos/workflows/{id}/live"),
    ("post", "/v1/dbos/workflows/{id}/messages"),
    ("post", "/v1/dbos/workflows/{id}/tokens"),
    ("post", "/v1/dbos/workflows/{id}/approval-links"),
    ("get", "/v1/dbos/approvals/{token}"),
    ("post", "/v1/dbos/approvals/{token}"),
    ("get", "/dbos/runs/{id}"),
];

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_describes_every_route_and_error() {
    let app = spawn_app_with(|c| c.api_keys = vec!["openapi-key".into()]).await;
    let r = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200, "public, even with keys");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in ROUTES {
        let op = &paths[*path][*method];
        assert!(op.is_object(), "{method} {path} is not described");
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{method} {path}"
        );
        for (code, resp) in responses {
            if code.starts_with('4') {
                assert_eq!(
                    resp["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {code}"
                );
            }
        }
        let template_params = path.matches('{').count();
        let declared = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "path")
            .count();
        assert_eq!(template_params, declared, "{method} {path} path parameters");
    }
    let described: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(described, ROUTES.len(), "no operation the server lacks");
    let sse = &paths["/v1/workflows/{id}/live"]["get"]["responses"]["200"]["content"];
    assert!(sse["text/event-stream"].is_object());
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} resolves"
        );
    }
    let err = &doc["components"]["schemas"]["Error"]["properties"]["error"];
    assert_eq!(
        err["required"],
        serde_json::json!(["code", "message", "field"])
    );
}

/// Found by schemathesis: a `\u0000` inside JSON strings was a 500 (Postgres refuses it).
#[tokio::test]
async fn nul_characters_in_values_are_a_400() {
    let app = crate::runtime_support::spawn_runtime_app(|_| {}).await;
    app.create_run("r").await;
    let nul = serde_json::json!({"text": "a\u{0}b"});
    let minted: Value = app
        .http
        .post(app.url("/v1/workflows/r/approval-links"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = minted["links"][0]["approve_url"]
        .as_str()
        .unwrap()
        .to_string();
    let requests = [
        ("PUT", "/v1/workflows/r/events/e".to_string(), nul.clone()),
        (
            "POST",
            "/v1/workflows/r/messages".into(),
            serde_json::json!({"topic": "t", "body": nul}),
        ),
        (
            "POST",
            "/v1/workflows/r/messages".into(),
            serde_json::json!({"topic": "t", "body": 1, "idempotency_key": "k\u{0}"}),
        ),
        (
            "POST",
            "/v1/workflows".into(),
            serde_json::json!({"workflow": "approval", "input": {"title": "a\u{0}b"}}),
        ),
        ("POST", link, serde_json::json!({"comment": "a\u{0}b"})),
    ];
    for (method, path, body) in requests {
        let r = app
            .http
            .request(method.parse().unwrap(), app.url(&path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            (400..500).contains(&status),
            "{method} {path}: {status} {v}"
        );
        assert!(v["error"]["code"].is_string(), "{method} {path}: {v}");
    }
    // A record with a NUL is stored or refused with a 4xx, never a 500.
    let r = app
        .http
        .post(app.url("/v1/workflows/r/streams/s"))
        .json(&[nul])
        .send()
        .await
        .unwrap();
    assert!(r.status().as_u16() < 500, "{}", r.status());
}
