//! Tag tokens: minted with an API key, they read (and with `approve` and a grant, approve)
//! every run carrying one of their tags, the live run list narrowed to them included, and
//! nothing else; past their expiry they get 401 `token_expired`.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::helpers::*;

const KEY: &str = "tag-token-test-key";

async fn keyed() -> TestApp {
    spawn_app_with(|c| {
        c.api_keys = vec![KEY.into()];
        c.secret = Some("tag-token-secret-0123456789".into());
    })
    .await
}

async fn put(app: &TestApp, id: &str, tags: Value) {
    let r = app
        .http
        .put(app.url(&format!("/v1/workflows/{id}")))
        .bearer_auth(KEY)
        .json(&json!({"workflow": "external", "tags": tags}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

async fn mint(app: &TestApp, auth: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = app.http.post(app.url("/v1/tokens")).json(&body);
    if let Some(a) = auth {
        req = req.bearer_auth(a);
    }
    req.send().await.unwrap()
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tag_token_reads_tagged_runs_and_nothing_else() {
    let app = keyed().await;
    put(&app, "mine", json!(["user:1"])).await;
    put(&app, "theirs", json!(["user:2"])).await;
    let appended = app
        .http
        .post(app.url("/v1/workflows/mine/streams/out"))
        .bearer_auth(KEY)
        .json(&json!(["hi"]))
        .send()
        .await
        .unwrap();
    assert_eq!(appended.status(), 200);

    assert_eq!(
        mint(&app, None, json!({"tags": ["user:1"]})).await.status(),
        401
    );
    let run_token = {
        let r: Value = app
            .http
            .post(app.url("/v1/workflows/mine/tokens"))
            .bearer_auth(KEY)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["token"].as_str().unwrap().to_string()
    };
    assert_eq!(
        mint(&app, Some(&run_token), json!({"tags": ["user:1"]}))
            .await
            .status(),
        403
    );
    assert_eq!(
        mint(&app, Some(KEY), json!({"tags": []})).await.status(),
        400
    );
    assert_eq!(
        mint(&app, Some(KEY), json!({"tags": ["a b"]}))
            .await
            .status(),
        400
    );
    assert_eq!(
        mint(&app, Some(KEY), json!({"tags": ["x"], "ttl_secs": 0}))
            .await
            .status(),
        400
    );

    let r = mint(
        &app,
        Some(KEY),
        json!({"tags": ["user:1"], "ttl_secs": 600}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(get(&app, &token, "/v1/workflows/mine").await.status(), 200);
    assert_eq!(
        get(&app, &token, "/v1/workflows/mine/events")
            .await
            .status(),
        200
    );
    let poll = get(
        &app,
        &token,
        "/v1/workflows/mine/streams/out/poll?timeout=0",
    )
    .await;
    assert_eq!(poll.status(), 200);
    let body: Value = poll.json().await.unwrap();
    assert_eq!(body["records"][0]["value"], "hi", "{body}");
    for path in [
        "/v1/workflows/theirs",
        "/v1/workflows/theirs/events",
        "/v1/workflows/theirs/live",
    ] {
        assert_eq!(get(&app, &token, path).await.status(), 403, "{path}");
    }
    // Writes and admin routes stay with the key.
    let w = app
        .http
        .post(app.url("/v1/workflows/mine/streams/out"))
        .bearer_auth(&token)
        .json(&json!(["x"]))
        .send()
        .await
        .unwrap();
    assert_eq!(w.status(), 403);

    // The list: only tagged runs, and another tag is refused.
    let list: Value = get(&app, &token, "/v1/workflows")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["mine"]);
    assert_eq!(
        get(&app, &token, "/v1/workflows?tag=user:2").await.status(),
        403
    );
    assert_eq!(
        get(&app, &token, "/v1/workflows?tag=user:1").await.status(),
        200
    );
}

#[tokio::test]
async fn the_live_list_with_a_tag_token_sees_only_its_runs() {
    let app = keyed().await;
    let r = mint(&app, Some(KEY), json!({"tags": ["team"]})).await;
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = app
        .http
        .get(app.url("/v1/workflows"))
        .header("accept", "text/event-stream")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut sse = resp.bytes_stream().eventsource().map(|e| e.unwrap());
    let first = tokio::time::timeout(Duration::from_secs(10), sse.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.event, "runs");
    put(&app, "outside", json!(["other"])).await;
    put(&app, "inside", json!(["team", "x"])).await;
    let ev = tokio::time::timeout(Duration::from_secs(10), sse.next())
        .await
        .unwrap()
        .unwrap();
    let run: Value = serde_json::from_str(&ev.data).unwrap();
    assert_eq!(
        run["id"], "inside",
        "the untagged run's start is not sent first: {run}"
    );
}

#[tokio::test]
async fn expired_tag_tokens_get_token_expired_and_approve_needs_the_scope() {
    let app = keyed().await;
    put(&app, "r", json!(["t"])).await;
    let short = mint(&app, Some(KEY), json!({"tags": ["t"], "ttl_secs": 1}))
        .await
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get(&app, &short, "/v1/workflows/r").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for path in ["/v1/workflows/r", "/v1/workflows"] {
        let r = get(&app, &short, path).await;
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"]["code"],
            "token_expired",
            "{path}"
        );
    }

    let read_only = mint(&app, Some(KEY), json!({"tags": ["t"]}))
        .await
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let links = |token: String| {
        let http = app.http.clone();
        let url = app.url("/v1/workflows/r/approval-links");
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(links(read_only).await, 403);
    let approver = mint(
        &app,
        Some(KEY),
        json!({"tags": ["t"], "approval": {"approvers": ["alice"]}}),
    )
    .await
    .json::<Value>()
    .await
    .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(links(approver).await, 201);
}
