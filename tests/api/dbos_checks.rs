//! The DBOS source's edges: bad input is a 4xx (never a 5xx), tokens do not cross between
//! DBOS runs or into flowgate runs, and unsupported schemas are refused at start without
//! showing the DBOS database's credentials.

use serde_json::{json, Value};

use crate::dbos_support::*;
use crate::helpers::*;

#[tokio::test]
async fn dbos_bad_input_is_4xx_and_pickled_values_are_marked() {
    let Some((app, mut dbos)) = spawn_with_dbos(true, |_| {}).await else {
        return;
    };
    dbos.start("wf-bad", 1, 0).await;
    let get = |path: String| app.http.get(app.url(&path)).send();
    for path in [
        "/v1/dbos/workflows/nope",
        "/v1/dbos/workflows/nope/events",
        "/v1/dbos/workflows/nope/events/progress?timeout=0",
        "/v1/dbos/workflows/nope/streams/output",
        "/v1/dbos/workflows/nope/streams/output/poll?timeout=0",
        "/v1/dbos/workflows/nope/live",
    ] {
        let r = get(path.to_string()).await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "run_not_found", "{path}");
    }
    let long = "x".repeat(600);
    for (path, field) in [
        (format!("/v1/dbos/workflows/{long}"), "id"),
        (
            "/v1/dbos/workflows/wf-bad/streams/output?from=-1".into(),
            "from",
        ),
        (
            "/v1/dbos/workflows/wf-bad/streams/output?from=99".into(),
            "from",
        ),
        (
            "/v1/dbos/workflows/wf-bad/events/progress?timeout=x".into(),
            "timeout",
        ),
        ("/v1/dbos/workflows?limit=0".into(), "limit"),
        ("/v1/dbos/workflows/a%0Ab".into(), "id"),
    ] {
        let r = get(path.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["field"], field, "{path}");
    }
    let r = app
        .http
        .post(app.url("/v1/dbos/workflows/wf-bad/messages"))
        .body("not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The pickled event (DBOS's default serialization) is never unpickled.
    let ev: Value = get("/v1/dbos/workflows/wf-bad/events/pickled".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ev["value"], json!({"undecodable": "py_pickle"}));
    let list: Value = get("/v1/dbos/workflows?workflow=demo".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["workflows"][0]["id"], "wf-bad");
    dbos.quit().await;
}

#[tokio::test]
async fn dbos_tokens_open_one_dbos_run_only() {
    let key = "dbos-test-key";
    let Some((app, mut dbos)) = spawn_with_dbos(true, |c| c.api_keys = vec![key.into()]).await
    else {
        return;
    };
    dbos.start("wf-a", 1, 0).await;
    dbos.start("wf-b", 1, 0).await;
    let mint = |path: &str| {
        app.http
            .post(app.url(path))
            .bearer_auth(key)
            .json(&json!({}))
            .send()
    };
    let t: Value = mint("/v1/dbos/workflows/wf-a/tokens")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = t["token"].as_str().unwrap().to_string();
    let get = |path: &str, tok: &str| app.http.get(app.url(path)).bearer_auth(tok).send();
    assert_eq!(
        get("/v1/dbos/workflows/wf-a", &token)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get("/v1/dbos/workflows/wf-b", &token)
            .await
            .unwrap()
            .status(),
        403
    );
    let s = get("/v1/workflows/wf-a", &token).await.unwrap().status();
    assert_eq!(s, 401, "a DBOS token does not open a flowgate run");
    // And a flowgate run token for a run of the same name does not open the DBOS run.
    let r = app
        .http
        .put(app.url("/v1/workflows/wf-a"))
        .bearer_auth(key)
        .json(&json!({"workflow": "external"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let f: Value = mint("/v1/workflows/wf-a/tokens")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ftoken = f["token"].as_str().unwrap();
    assert_eq!(
        get("/v1/workflows/wf-a", ftoken).await.unwrap().status(),
        200
    );
    assert_eq!(
        get("/v1/dbos/workflows/wf-a", ftoken)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        get("/v1/dbos/workflows", &token).await.unwrap().status(),
        401
    );
    dbos.quit().await;
}

#[tokio::test]
async fn dbos_routes_without_a_source_are_404() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/v1/dbos/workflows/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "dbos_not_configured");
}

#[tokio::test]
async fn dbos_schema_missing_or_sharded_is_refused_without_credentials() {
    let db = fresh_database().await;
    // Trust auth ignores the password: it is only there to prove it never shows.
    let with_password = db.replacen("postgres@", "postgres:s3cret-pw@", 1);
    let start = |url: String| {
        let mut c = flowgate::Config::new(db.clone(), "127.0.0.1:0".parse().unwrap());
        c.dbos.url = Some(url);
        flowgate::start(c)
    };
    let err = start(with_password.clone())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no DBOS system schema"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    let Some(dbos) = DbosProc::launch(true).await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&dbos.db_url).await.unwrap();
    let info = flowgate::dbos::schema::check(&pool, "dbos").await.unwrap();
    assert!(
        info.listen_notify && info.has_enqueue && info.version >= 109,
        "{info:?}"
    );
    sqlx::query("ALTER TABLE dbos.workflow_status ADD COLUMN shard_key text")
        .execute(&pool)
        .await
        .unwrap();
    let err = start(dbos.db_url.clone()).await.err().unwrap().to_string();
    assert!(err.contains("sharded"), "{err}");
    let mut bad = flowgate::Config::new(db.clone(), "127.0.0.1:0".parse().unwrap());
    bad.dbos.url = Some(dbos.db_url.clone());
    bad.dbos.schema = "no\"pe".into();
    let err = flowgate::start(bad).await.err().unwrap().to_string();
    assert!(err.contains("plain identifier"), "{err}");
    pool.close().await;
    dbos.quit().await;
}

#[tokio::test]
async fn dbos_status_trigger_replaces_the_status_re_read() {
    let Some(mut dbos) = DbosProc::launch(true).await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&dbos.db_url).await.unwrap();
    flowgate::dbos::trigger::install(&pool, "dbos")
        .await
        .unwrap();
    let url = dbos.db_url.clone();
    // No status re-reads (the trigger is there) and no re-check for two minutes: the
    // SUCCESS below can only come from the trigger's notification.
    let app = spawn_app_with(|c| {
        c.dbos.url = Some(url);
        c.dbos.recheck = Some(120.0);
    })
    .await;
    dbos.start("wf-trig", 1, 0).await;
    let mut live = app.sse("/v1/dbos/workflows/wf-trig/live", None).await;
    let r = app
        .http
        .post(app.url("/v1/dbos/workflows/wf-trig/messages"))
        .json(&json!({"topic": "approval", "body": {"approved": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut finished = false;
    while !finished {
        let ev = tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut live))
            .await
            .expect("a SUCCESS status frame, notified by the trigger")
            .unwrap();
        finished = ev.event == "status" && ev.data.contains("\"SUCCESS\"");
    }
    flowgate::dbos::trigger::remove(&pool, "dbos")
        .await
        .unwrap();
    let info = flowgate::dbos::schema::check(&pool, "dbos").await.unwrap();
    assert!(!info.status_trigger);
    pool.close().await;
    dbos.quit().await;
}
