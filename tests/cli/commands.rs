//! `run`, `finish`, `tail` off a terminal, and errors, with the output captured.

use serde_json::{json, Value};

use crate::{flowgate, percentages, Server};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn run_prints_the_address_of_the_runs_page() {
    let server = Server::start().await;
    let out = flowgate(
        &[
            "run",
            "progress",
            "--id",
            "p-1",
            "--input",
            r#"{"steps": 1}"#,
        ],
        &[("FLOWGATE_URL", &server.base)],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let page = format!("{}/runs/p-1", server.base);
    assert_eq!(printed["page"], page.as_str());
    let r = reqwest::get(&page).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<html"));
}

#[tokio::test]
async fn tail_off_a_terminal_writes_plain_lines_without_escape_codes() {
    let server = Server::start().await;
    server
        .start_run("tok-3", "tokens", json!({"words": 10, "rate": 50.0}))
        .await;
    let out = flowgate(&["tail", "tok-3", "--url", &server.base], &[]).await;
    assert!(out.status.success(), "{out:?}");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !stdout.contains('\x1b') && !stderr.contains('\x1b'),
        "{out:?}"
    );
    assert!(
        !stderr.contains('\r'),
        "no in-place redraws in a pipe: {stderr:?}"
    );
    assert_eq!(percentages(&stderr).last(), Some(&100), "{stderr}");
    let words = server.run("tok-3").await["output"]["text"].clone();
    assert!(stdout.contains(words.as_str().unwrap()), "{stdout}");
}

#[tokio::test]
async fn server_logs_written_to_a_file_carry_no_escape_codes() {
    let mut server = Server::start().await;
    server
        .start_run("p-2", "progress", json!({"steps": 1}))
        .await;
    server.stop();
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\x1b'), "{log:?}");
}

#[tokio::test]
async fn a_refused_connection_is_reported_once_on_one_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [
        vec!["tail", "r-1"],
        vec!["run", "progress"],
        vec!["approve", "r-1"],
        vec!["finish", "r-1"],
    ] {
        let out = flowgate(&args, &[("FLOWGATE_URL", &url)]).await;
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
        assert_eq!(err.matches(&url).count(), 1, "{err}");
        assert!(
            err.starts_with("flowgate: cannot reach the flowgate server"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn finish_ends_an_external_run() {
    let server = Server::start().await;
    let http = reqwest::Client::new();
    let r = http
        .put(format!("{}/v1/workflows/ext-1", server.base))
        .json(&json!({"workflow": "external"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let env = [("FLOWGATE_URL", server.base.as_str())];
    let out = flowgate(&["finish", "ext-1", "--output", r#"{"rows": 3}"#], &env).await;
    assert!(out.status.success(), "{out:?}");
    let run = server.run("ext-1").await;
    assert_eq!(run["status"], "SUCCESS");
    assert_eq!(run["output"], json!({"rows": 3}));
    // Bad input is a clear error naming the problem.
    let bad = flowgate(&["finish", "ext-1", "--output", "{nope"], &env).await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("--output is not valid JSON"));
    let bad = flowgate(&["finish", "ext-1", "--status", "DONE"], &env).await;
    assert!(
        text(&bad.stderr).contains("must be SUCCESS, ERROR or CANCELLED"),
        "{bad:?}"
    );
}
