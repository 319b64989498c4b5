//! Secrets never reach the logs: the binary at `RUST_LOG=debug` with API keys and a secret,
//! driven with the key, run tokens (query, cookie, bearer) and approval links; its output
//! must contain none of them.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::process::Command;

use crate::helpers::{fresh_database, wait_ready_long};
use crate::procs::free_port;

const KEY: &str = "logkey-7f3a9c2e51d84b60";
const SECRET: &str = "logsecret-c0ffee1234567890abcdef";

#[tokio::test]
async fn keys_secret_and_tokens_never_appear_in_debug_logs() {
    let db = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("flowgate.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowgate"))
        .arg("serve")
        .env("DATABASE_URL", &db)
        .env("FLOWGATE_ADDR", format!("127.0.0.1:{port}"))
        .env("FLOWGATE_SHUTDOWN_DELAY", "0")
        .env("FLOWGATE_API_KEYS", format!("{KEY},second-{KEY}"))
        .env("FLOWGATE_SECRET", SECRET)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn flowgate");
    let base = format!("http://127.0.0.1:{port}");
    wait_ready_long(&base, Duration::from_secs(60)).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{base}{p}");

    let created: Value = http
        .put(url("/v1/workflows/r"))
        .bearer_auth(KEY)
        .json(&json!({"workflow": "external", "approval": {"approvers": ["alice"]}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    let r = http
        .post(url("/v1/workflows/r/streams/s"))
        .bearer_auth(KEY)
        .json(&[1, 2])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The token in the query, as a cookie, as a bearer; a wrong key; a tampered token.
    let q = http
        .get(url(&format!(
            "/v1/workflows/r/streams/s/poll?from=0&timeout=0&token={token}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(q.status(), 200);
    let c = http
        .get(url("/v1/workflows/r"))
        .header("cookie", format!("flowgate_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(c.status(), 200);
    let b = http
        .get(url("/v1/workflows/r/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(b.status(), 200);
    let wrong = http
        .get(url("/v1/workflows"))
        .bearer_auth(format!("{KEY}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let tampered = http
        .get(url(&format!("/v1/workflows/r?token={token}x")))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);
    // Approval links: minted with the token, described, used twice.
    let minted: Value = http
        .post(url("/v1/workflows/r/approval-links"))
        .bearer_auth(&token)
        .json(&json!({"approvers": ["alice"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let approve = minted["links"][0]["approve_url"]
        .as_str()
        .unwrap()
        .to_string();
    let link_token = approve.trim_start_matches("/v1/approvals/").to_string();
    assert_eq!(http.get(url(&approve)).send().await.unwrap().status(), 200);
    // However the path is spelled, the link's token stays out of the request spans.
    for odd in [
        format!("/{approve}"),
        approve.replace("/approvals/", "/./approvals/"),
    ] {
        http.get(url(&odd)).send().await.unwrap();
    }
    for _ in 0..2 {
        let r = http
            .post(url(&approve))
            .json(&json!({"comment": "ok"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    child.start_kill().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains("request"),
        "debug logs include request spans: {logs}"
    );
    let sig = token.rsplit('.').next().unwrap().to_string();
    let link_sig = link_token.rsplit('.').next().unwrap().to_string();
    for (what, secret) in [
        ("API key", KEY),
        ("secret", SECRET),
        ("run token", token.as_str()),
        ("run token signature", sig.as_str()),
        ("approval link", link_token.as_str()),
        ("approval link signature", link_sig.as_str()),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
    }
}
