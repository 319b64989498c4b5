//! Approval authority: who may mint approval links, for which approvers and topic, is fixed
//! by whoever started the run (the `approval` grant given at start or by a key-holder's
//! token); a read-only token mints nothing; a link never outlives what minted it.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::runtime_support::spawn_runtime_app;

const KEY: &str = "test-key-0123456789";
const SECRET: &str = "test-secret-0123456789abcdef";

async fn keyed() -> TestApp {
    spawn_app_with(|c| {
        c.api_keys = vec![KEY.into()];
        c.secret = Some(SECRET.into());
    })
    .await
}

async fn put_run(app: &TestApp, id: &str) -> String {
    let r = app
        .http
        .put(app.url(&format!("/v1/workflows/{id}")))
        .bearer_auth(KEY)
        .json(&json!({"workflow": "external"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn mint(app: &TestApp, run: &str, cred: &str, body: Value) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(&format!("/v1/workflows/{run}/approval-links")))
        .bearer_auth(cred)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn token_with(app: &TestApp, run: &str, body: Value) -> (String, i64) {
    let r = app
        .http
        .post(app.url(&format!("/v1/workflows/{run}/tokens")))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    (
        v["token"].as_str().unwrap().to_string(),
        v["expires_at"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn a_read_only_token_mints_nothing() {
    let app = keyed().await;
    let token = put_run(&app, "r").await;
    let (s, v) = mint(&app, "r", &token, json!({})).await;
    assert_eq!(s, 403, "{v}");
    let (read, _) = token_with(&app, "r", json!({"scopes": ["read"]})).await;
    assert_eq!(mint(&app, "r", &read, json!({})).await.0, 403);
}

#[tokio::test]
async fn a_token_mints_only_the_approvers_and_topic_it_was_granted() {
    let app = keyed().await;
    put_run(&app, "r").await;
    let grant = json!({"approval": {"topic": "approval", "approvers": ["alice", "bob"]}});
    let (token, _) = token_with(&app, "r", grant).await;
    let forged = json!({"approvers": ["alice", "bob", "carol"]});
    assert_eq!(mint(&app, "r", &token, forged).await.0, 403);
    let other_topic = json!({"topic": "payment", "approvers": ["alice"]});
    assert_eq!(mint(&app, "r", &token, other_topic).await.0, 403);
    let (s, v) = mint(&app, "r", &token, json!({})).await;
    assert_eq!(s, 201, "{v}");
    let names: Vec<&str> = v["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["approver"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let (s, _) = mint(&app, "r", &token, json!({"approvers": ["bob"]})).await;
    assert_eq!(s, 201);
}

#[tokio::test]
async fn the_starter_fixes_the_approvers_at_start() {
    let app = spawn_runtime_app(|c| {
        c.api_keys = vec![KEY.into()];
        c.secret = Some(SECRET.into());
    })
    .await;
    let r = app
        .http
        .post(app.url("/v1/workflows"))
        .bearer_auth(KEY)
        .json(&json!({"workflow": "approval", "input": {"required": 2},
                      "approval": {"approvers": ["alice", "bob"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let (run, token) = (v["id"].as_str().unwrap(), v["token"].as_str().unwrap());
    let (s, _) = mint(&app, run, token, json!({"approvers": ["mallory"]})).await;
    assert_eq!(s, 403);
    let (s, v) = mint(&app, run, token, json!({"topic": "approval"})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["links"].as_array().unwrap().len(), 2);
    // Without a grant at start, the token handed out only reads.
    let r = app
        .http
        .post(app.url("/v1/workflows"))
        .bearer_auth(KEY)
        .json(&json!({"workflow": "approval", "input": {}}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let (run, token) = (v["id"].as_str().unwrap(), v["token"].as_str().unwrap());
    assert_eq!(mint(&app, run, token, json!({})).await.0, 403);
}

#[tokio::test]
async fn a_link_never_outlives_the_token_that_minted_it() {
    let app = keyed().await;
    put_run(&app, "r").await;
    let grant = json!({"ttl_secs": 2, "approval": {"approvers": ["alice"]}});
    let (token, token_exp) = token_with(&app, "r", grant).await;
    let (s, v) = mint(&app, "r", &token, json!({"ttl_secs": 30 * 86400})).await;
    assert_eq!(s, 201, "{v}");
    let exp = v["links"][0]["expires_at"].as_i64().unwrap();
    assert!(
        exp <= token_exp,
        "link expires at {exp}, token at {token_exp}"
    );
}

#[tokio::test]
async fn a_link_dies_with_the_key_that_minted_it() {
    let mut app = keyed().await;
    put_run(&app, "r").await;
    let (s, v) = mint(&app, "r", KEY, json!({"approvers": ["alice"]})).await;
    assert_eq!(s, 201, "{v}");
    let url = v["links"][0]["approve_url"].as_str().unwrap().to_string();
    app.stop().await;
    let rotated = spawn_on(&app.db_url, |c| {
        c.api_keys = vec!["a-new-key-0123456789".into()];
        c.secret = Some(SECRET.into());
    })
    .await;
    let r = rotated.http.post(rotated.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), 410, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn approver_names_with_control_characters_are_refused() {
    let app = spawn_app().await;
    app.create_run("r").await;
    for bad in ["al\u{0}ice", "bob\n", "\u{7f}", "c\u{202e}arol"] {
        let r = app
            .http
            .post(app.url("/v1/workflows/r/approval-links"))
            .json(&json!({"approvers": [bad]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad:?}");
    }
}
