//! The HTTP `Client` and the `run` / `tail` commands against an in-process server.

use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use flowgate::client::{Client, ClientError, StartOptions};

use crate::runtime_support::*;

#[tokio::test]
async fn client_starts_awaits_messages_reads_events_and_follows_streams() {
    let app = spawn_runtime_app(|_| {}).await;
    let client = Client::new(&app.base);

    let opts = StartOptions {
        wait: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let done = client
        .start(
            "progress",
            &json!({"steps": 2, "fib": 5, "pause_ms": 0}),
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(done.status, "SUCCESS");
    assert_eq!(done.output, Some(json!({"steps": 2, "sum": 10})));

    let run = client
        .start("approval", &json!({}), &StartOptions::default())
        .await
        .unwrap();
    let (value, version) = client
        .wait_event(&run.id, "status", 0, Duration::from_secs(10))
        .await
        .unwrap()
        .expect("status event");
    assert_eq!(value, json!("waiting for approval"));
    assert!(version > 0);
    client
        .send(
            &run.id,
            "approval",
            &json!({"approved": false, "comment": "no"}),
            Some("k1"),
        )
        .await
        .unwrap();
    let out = client
        .result(&run.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        (&out["approved"], &out["comment"], &out["outcome"]),
        (&json!(false), &json!("no"), &json!("rejected"))
    );
    let events = client.events(&run.id).await.unwrap();
    assert_eq!(events["decision"]["value"]["comment"], "no");

    let run = client
        .enqueue("default", "tokens", &json!({"words": 12, "rate": 200.0}))
        .await
        .unwrap();
    assert_eq!(run.status, "ENQUEUED");
    let all: Vec<_> = client.follow_stream(&run.id, "output", 0).collect().await;
    assert_eq!(all.len(), 12);
    let text: String = all
        .iter()
        .map(|r| r.as_ref().unwrap().value.as_str().unwrap().to_string())
        .collect();
    let out = client
        .result(&run.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(out["text"], Value::String(text));
    // Resume from an offset: exactly the rest, in order.
    let rest: Vec<i64> = client
        .follow_stream(&run.id, "output", 9)
        .map(|r| r.unwrap().offset)
        .collect()
        .await;
    assert_eq!(rest, [9, 10, 11]);

    let err = client
        .start("nope", &json!({}), &StartOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Api { status: 404, .. }), "{err}");
}

fn cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flowgate"))
        .args(args)
        .output()
        .expect("run flowgate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn run_and_tail_commands() {
    let app = spawn_runtime_app(|_| {}).await;
    let base = app.base.clone();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        cli(&[
            "run",
            "progress",
            "--input",
            r#"{"steps": 2, "fib": 5, "pause_ms": 0}"#,
            "--wait",
            "--url",
            &base,
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "SUCCESS");
    assert_eq!(v["output"]["sum"], 10);

    let base = app.base.clone();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        cli(&[
            "run",
            "tokens",
            "--input",
            r#"{"words": 8, "rate": 40}"#,
            "--url",
            &base,
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = app.base.clone();
    let tail_id = id.clone();
    let (ok, out) = tokio::task::spawn_blocking(move || cli(&["tail", &tail_id, "--url", &base]))
        .await
        .unwrap();
    assert!(ok, "{out}");
    let row = finished(&app.http, &app.base, &id, Duration::from_secs(10)).await;
    let text = row["output"]["text"].as_str().unwrap();
    assert!(
        out.starts_with(text),
        "tail printed {out:?}, text is {text:?}"
    );

    let base = app.base.clone();
    let (ok, _) = tokio::task::spawn_blocking(move || {
        cli(&["run", "progress", "--input", "{not json", "--url", &base])
    })
    .await
    .unwrap();
    assert!(!ok);
}
