//! Faults and the push path: listener loss, several processes on one database, and no
//! database traffic while subscribers are idle.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

async fn kill_listener(app: &TestApp) -> u64 {
    let db = app.db_url.rsplit('/').next().unwrap().to_string();
    let admin = sqlx::PgPool::connect(&admin_url()).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND application_name = 'flowgate-listener') t",
    )
    .bind(db)
    .fetch_one(&admin)
    .await
    .unwrap();
    admin.close().await;
    n as u64
}

/// SQL producers reach subscribers only through LISTEN/NOTIFY. Killing the listener's
/// backend again and again while they append loses nothing and repeats nothing, including
/// records committed while no one was listening (found by the resync, not the slow re-check).
#[tokio::test]
async fn listener_loss_loses_and_repeats_nothing() {
    let app = spawn_app_with(|c| c.recheck = 600.0).await;
    app.create_run("r").await;
    let mut subs = [
        app.sse("/v1/workflows/r/streams/s", None).await,
        app.sse("/v1/workflows/r/streams/s", None).await,
    ];
    const N: i64 = 300;
    let pool = app.pool.clone();
    let writer = tokio::spawn(async move {
        for i in 0..N {
            sqlx::query("SELECT flowgate.write_stream('r', 's', $1::jsonb)")
                .bind(json!(i))
                .execute(&pool)
                .await
                .unwrap();
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        sqlx::query("SELECT flowgate.close_stream('r', 's')")
            .execute(&pool)
            .await
            .unwrap();
    });
    let mut killed = 0;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        killed += kill_listener(&app).await;
    }
    writer.await.unwrap();
    assert!(killed >= 3, "the listener backend was terminated");
    for sub in subs.iter_mut() {
        let evs = collect_events(sub, N as usize + 1, Duration::from_secs(20)).await;
        let data: Vec<i64> = evs
            .iter()
            .filter(|e| e.event != "end")
            .map(|e| e.data.parse().unwrap())
            .collect();
        assert_eq!(data, (0..N).collect::<Vec<_>>());
        assert_eq!(evs.last().unwrap().event, "end");
    }
    let state = &app.app.as_ref().unwrap().state.listener;
    assert!(state.reconnects.load(Ordering::SeqCst) >= 3);
}

/// A record committed while the listener is down is delivered once it reconnects.
#[tokio::test]
async fn commit_while_deaf_is_delivered_after_reconnect() {
    let app = spawn_app_with(|c| c.recheck = 600.0).await;
    app.create_run("r").await;
    let mut sub = app.sse("/v1/workflows/r/streams/s", None).await;
    kill_listener(&app).await;
    sqlx::query("SELECT flowgate.write_stream('r', 's', '\"while deaf\"'::jsonb)")
        .execute(&app.pool)
        .await
        .unwrap();
    let evs = collect_events(&mut sub, 1, Duration::from_secs(15)).await;
    assert_eq!(evs.len(), 1, "delivered by the resync after reconnecting");
    assert_eq!(evs[0].data, "\"while deaf\"");
}

/// Two gateways on one database: a reader on the second sees writes made through the first.
#[tokio::test]
async fn two_processes_share_streams_and_events() {
    let a = spawn_app().await;
    let b = spawn_on(&a.db_url, |_| {}).await;
    a.create_run("r").await;
    let mut sub = b.sse("/v1/workflows/r/streams/s", None).await;
    let http = b.http.clone();
    let url = b.url("/v1/workflows/r/events/progress?after=0&timeout=30");
    let waiter = tokio::spawn(async move {
        http.get(url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..50 {
        a.append("r", "s", &[json!(i)]).await;
    }
    a.http
        .put(a.url("/v1/workflows/r/events/progress"))
        .json(&json!(42))
        .send()
        .await
        .unwrap();
    let evs = collect_events(&mut sub, 50, Duration::from_secs(10)).await;
    assert_eq!(
        evs.iter()
            .map(|e| e.data.parse::<i64>().unwrap())
            .collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
    let ev = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken across processes")
        .unwrap();
    assert_eq!(ev["value"], json!(42));
}

/// Idle subscribers cause no database statements: the push path has no polling loop.
#[tokio::test]
async fn idle_subscribers_run_no_queries() {
    let app = spawn_app().await;
    app.create_run("r").await;
    app.append("r", "s", &[json!(1)]).await;
    let mut subs = Vec::new();
    for _ in 0..5 {
        subs.push(app.sse("/v1/workflows/r/streams/s", None).await);
    }
    subs.push(app.sse("/v1/workflows/r/events", None).await);
    let http = app.http.clone();
    let url = app.url("/v1/workflows/r/streams/s/poll?from=1&timeout=10");
    let poller = tokio::spawn(async move { http.get(url).send().await.unwrap().status() });
    for s in subs.iter_mut().take(5) {
        assert_eq!(collect_events(s, 1, Duration::from_secs(5)).await.len(), 1);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let db = app.db_url.rsplit('/').next().unwrap().to_string();
    let admin = sqlx::PgPool::connect(&admin_url()).await.unwrap();
    let snapshot = || async {
        sqlx::query_as::<_, (i32, Option<String>, String)>(
            "SELECT pid, query_start::text, coalesce(state, '') FROM pg_stat_activity
             WHERE datname = $1 AND application_name LIKE 'flowgate%' ORDER BY pid",
        )
        .bind(&db)
        .fetch_all(&admin)
        .await
        .unwrap()
    };
    let before = snapshot().await;
    assert!(!before.is_empty());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = snapshot().await;
    assert_eq!(
        before, after,
        "no flowgate connection ran a statement while subscribers were idle"
    );
    assert!(!poller.is_finished());
}

/// Shutting down ends open SSE responses with a retry hint instead of waiting on them.
#[tokio::test]
async fn shutdown_ends_open_streams() {
    use futures::StreamExt;
    let mut app = spawn_app().await;
    app.create_run("r").await;
    let resp = app
        .http
        .get(app.url("/v1/workflows/r/streams/s"))
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let _ = body.next().await;
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("stop does not wait on open streams");
    let mut rest = String::new();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(5), body.next()).await
    {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        rest.contains("retry: "),
        "a retry hint before the end: {rest:?}"
    );
}
