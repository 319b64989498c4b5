//! `/openapi.json`: served without credentials, generated from the router's own route
//! declarations (so it names every route the server answers, and only those), and every
//! operation documents its error statuses with the shared error body.

use serde_json::Value;

use crate::helpers::*;

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

/// The router's fallbacks: a request that reaches one of these matched no route.
fn unrouted(status: u16, body: &Value) -> bool {
    let code = &body["error"]["code"];
    (status == 404 && code == "not_found" && body["error"]["message"] == "no such endpoint")
        || (status == 405 && code == "method_not_allowed")
}

/// A request for `path` with every template parameter filled in.
fn concrete(path: &str) -> String {
    path.replace("{path}", "no/such/stream")
        .replace("{id}", "no-such-run")
        .replace("{key}", "k")
        .replace("{token}", "t")
        .replace("{file}", "f")
}

#[tokio::test]
async fn openapi_describes_every_route_and_error() {
    let app = spawn_app_with(|c| c.api_keys = vec!["openapi-key".into()]).await;
    let r = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200, "public, even with keys");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // The routes, as the router declares them, and the served document name the same
    // operations.
    let routes = flowgate::http::openapi::operations();
    let paths = doc["paths"].as_object().unwrap();
    let mut served: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(|m| (m.clone(), p.clone()))
        })
        .collect();
    let mut declared = routes.clone();
    served.sort();
    declared.sort();
    assert_eq!(served, declared, "served document = declared routes");
    assert!(routes.len() >= 60, "only {} routes", routes.len());
    for (method, path) in &routes {
        let op = &paths[path][method];
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
            .map(|a| a.iter().filter(|p| p["in"] == "path").count())
            .unwrap_or(0);
        assert_eq!(template_params, declared, "{method} {path} path parameters");
        assert!(op["operationId"].is_string(), "{method} {path}");
    }
    for (path, method) in [
        ("/v1/workflows/{id}/live", "get"),
        ("/v1/workflows/{id}/streams/{key}", "get"),
        ("/v1/stream/{path}", "get"),
    ] {
        let content = &paths[path][method]["responses"]["200"]["content"];
        assert!(content["text/event-stream"].is_object(), "{path} SSE");
    }
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
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["apiKey"]["scheme"], "bearer");
    assert_eq!(schemes["runToken"]["in"], "query");
    let name = &doc["components"]["schemas"]["Name"];
    assert_eq!(name["pattern"], "^[A-Za-z0-9_.:@-]+$");
}

/// Every declared route is served: a request for it reaches a handler, not the router's
/// 404 or 405 fallback.
#[tokio::test]
async fn every_declared_route_is_served() {
    let app = spawn_app_with(|c| c.api_keys = vec!["openapi-key".into()]).await;
    let quick = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .unwrap();
    for (method, path) in flowgate::http::openapi::operations() {
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let sent = quick
            .request(m, app.url(&concrete(&path)))
            .bearer_auth("openapi-key")
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await;
        let Ok(r) = sent else {
            continue; // still streaming or waiting: a handler answered
        };
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(!unrouted(status, &body), "{method} {path}: {status} {body}");
        if method == "head" {
            assert_ne!(status, 405, "{method} {path}");
        }
    }
    // And the fallbacks do answer for what is not declared.
    let r = app.http.get(app.url("/v1/nothing")).send().await.unwrap();
    let status = r.status().as_u16();
    assert!(unrouted(status, &r.json().await.unwrap()));
}

/// Routes are only added through `routes!(…)` (which documents them): no module under
/// `src/http` builds an axum router of its own.
#[test]
fn no_route_bypasses_the_document() {
    fn scan(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                scan(&path, found);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                let l = line.trim_start();
                if l.starts_with("//") {
                    continue;
                }
                if l.contains(".route(\"") || l.contains("Router::new()") || l.contains(".nest(") {
                    found.push(format!("{}:{}: {l}", path.display(), n + 1));
                }
            }
        }
    }
    let mut found = Vec::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    scan(&root, &mut found);
    found.retain(|l| !l.contains("OpenApiRouter::new()"));
    assert!(found.is_empty(), "undocumented routes: {found:#?}");
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
