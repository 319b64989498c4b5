//! Sharing a run: a read-only link reads but cannot approve or cancel; `/access` tells a
//! page which buttons the API would honour; cancelling takes a key or the `cancel` scope.

use serde_json::json;

use crate::run_view::call;
use crate::runtime_support::*;

const KEY: &str = "run-view-key-5d1e";

#[tokio::test]
async fn a_share_link_reads_but_cannot_approve_or_cancel() {
    let app = spawn_runtime_app(|c| {
        c.api_keys = vec![KEY.into()];
        c.secret = Some("run-view-secret-77aa".into());
    })
    .await;
    let body = json!({"workflow": "approval", "input": {"timeout_secs": 120},
        "approval": {"approvers": ["ann"]}});
    let (status, v) = call(&app, "POST", "/v1/workflows", Some(body), KEY).await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let starter = v["token"].as_str().unwrap().to_string();
    let (_, access) = call(
        &app,
        "GET",
        &format!("/v1/workflows/{id}/access"),
        None,
        &starter,
    )
    .await;
    assert_eq!(
        access,
        json!({"read": true, "approve": true, "cancel": false, "approvers": ["ann"]})
    );
    let (_, admin) = call(
        &app,
        "GET",
        &format!("/v1/workflows/{id}/access"),
        None,
        KEY,
    )
    .await;
    assert_eq!(
        admin,
        json!({"read": true, "approve": true, "cancel": true, "approvers": null})
    );

    let (status, shared) = call(
        &app,
        "POST",
        &format!("/v1/workflows/{id}/share"),
        None,
        &starter,
    )
    .await;
    assert_eq!(status, 200, "{shared}");
    let token = shared["token"].as_str().unwrap().to_string();
    assert_eq!(shared["path"], format!("/runs/{id}?token={token}"));
    assert!(shared["expires_at"].as_i64().is_some());
    let (_, access) = call(
        &app,
        "GET",
        &format!("/v1/workflows/{id}/access"),
        None,
        &token,
    )
    .await;
    assert_eq!(
        access,
        json!({"read": true, "approve": false, "cancel": false, "approvers": []})
    );
    let (status, _) = call(&app, "GET", &format!("/v1/workflows/{id}"), None, &token).await;
    assert_eq!(status, 200, "the link reads the run");
    let mint = json!({"topic": "approval", "approvers": ["ann"]});
    let (status, v) = call(
        &app,
        "POST",
        &format!("/v1/workflows/{id}/approval-links"),
        Some(mint),
        &token,
    )
    .await;
    assert_eq!(status, 403, "a read-only link cannot approve: {v}");
    let (status, v) = call(
        &app,
        "POST",
        &format!("/v1/workflows/{id}/cancel"),
        None,
        &token,
    )
    .await;
    assert_eq!(status, 403, "nor cancel: {v}");
    let (status, _) = call(&app, "POST", "/v1/workflows/other/share", None, &token).await;
    assert_eq!(status, 403, "nor share another run");

    // Cancelling takes an API key or a token given the `cancel` scope.
    let (status, v) = call(
        &app,
        "POST",
        &format!("/v1/workflows/{id}/cancel"),
        None,
        &starter,
    )
    .await;
    assert_eq!(status, 403, "{v}");
    let body = json!({"scopes": ["read", "cancel"]});
    let (status, v) = call(
        &app,
        "POST",
        &format!("/v1/workflows/{id}/tokens"),
        Some(body),
        KEY,
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let canceller = v["token"].as_str().unwrap();
    let (_, access) = call(
        &app,
        "GET",
        &format!("/v1/workflows/{id}/access"),
        None,
        canceller,
    )
    .await;
    assert_eq!(access["cancel"], true);
    let (status, v) = call(
        &app,
        "POST",
        &format!("/v1/workflows/{id}/cancel"),
        None,
        canceller,
    )
    .await;
    assert_eq!((status, v["status"].as_str()), (200, Some("CANCELLED")));
}

#[tokio::test]
async fn a_keyless_server_shares_the_bare_address() {
    let app = spawn_runtime_app(|_| {}).await;
    app.create_run("plain-1").await;
    let (status, v) = call(&app, "POST", "/v1/workflows/plain-1/share", None, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"path": "/runs/plain-1", "token": null, "expires_at": null})
    );
    let (status, v) = call(&app, "POST", "/v1/workflows/nope/share", None, "").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("run_not_found"))
    );
}
