//! `flowgate tail` in a pseudo-terminal, as a person watches a run.

use std::time::Duration;

use serde_json::json;

use crate::{flowgate, has_colour, percentages, Pty, Server};

#[tokio::test]
async fn tail_in_a_terminal_fills_the_bar_of_a_tokens_run_and_prints_its_text() {
    let server = Server::start().await;
    server
        .start_run(
            "tok-1",
            "tokens",
            json!({"words": 30, "rate": 30.0, "seed": 3}),
        )
        .await;
    let mut tail = Pty::spawn(&["tail", "tok-1", "--url", &server.base], &[]);
    let code = tail.wait_exit(Duration::from_secs(60)).await;
    let text = tail.text();
    assert_eq!(code, 0, "{text}");
    let run = server.run("tok-1").await;
    let words = run["output"]["text"].as_str().unwrap();
    assert!(text.contains(words), "the whole text once: {text}");
    let shown = percentages(&text);
    assert_eq!(
        shown.last(),
        Some(&100),
        "the bar ends full: {shown:?} in {text}"
    );
    assert!(text.contains("SUCCESS"), "{text}");
    // A terminal gets colour.
    assert!(has_colour(&tail.raw()), "{:?}", tail.raw());
}

#[tokio::test]
async fn tail_shows_the_approval_prompt_and_flowgate_approve_decides_it() {
    let server = Server::start().await;
    server
        .start_run("ap-1", "approval", json!({"title": "Ship release 7"}))
        .await;
    let mut tail = Pty::spawn(&["tail", "ap-1", "--url", &server.base], &[]);
    tail.wait_for("Approval needed: Ship release 7", Duration::from_secs(30))
        .await;
    tail.wait_for("waiting for approval", Duration::from_secs(30))
        .await;
    tail.wait_for("flowgate approve ap-1", Duration::from_secs(5))
        .await;
    tail.wait_for("flowgate reject ap-1", Duration::from_secs(5))
        .await;
    let approve = flowgate(
        &["approve", "ap-1", "--comment", "go ahead", "--as", "alice"],
        &[("FLOWGATE_URL", &server.base)],
    )
    .await;
    assert!(approve.status.success(), "{approve:?}");
    assert_eq!(
        String::from_utf8_lossy(&approve.stdout).trim(),
        "approved run ap-1 as alice"
    );
    let code = tail.wait_exit(Duration::from_secs(30)).await;
    let text = tail.text();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Approved by alice — “go ahead”"), "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
    assert_eq!(server.run("ap-1").await["output"]["approved"], true);
}

#[tokio::test]
async fn flowgate_reject_ends_the_run_rejected_and_a_finished_run_takes_no_decision() {
    let server = Server::start().await;
    server.start_run("ap-2", "approval", json!({})).await;
    let url = [("FLOWGATE_URL", server.base.as_str())];
    let mut tail = Pty::spawn(&["tail", "ap-2"], &url);
    tail.wait_for("Approval needed", Duration::from_secs(30))
        .await;
    let reject = flowgate(
        &["reject", "ap-2", "--comment", "not today", "--as", "bob"],
        &url,
    )
    .await;
    assert!(reject.status.success(), "{reject:?}");
    tail.wait_exit(Duration::from_secs(30)).await;
    let text = tail.text();
    assert!(text.contains("Rejected by bob — “not today”"), "{text}");
    assert_eq!(server.run("ap-2").await["output"]["approved"], false);
    // The run has finished: approving now sends nothing and says so.
    let again = flowgate(&["approve", "ap-2", "--as", "bob"], &url).await;
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("run ap-2 has already finished (SUCCESS"),
        "{err}"
    );
    assert!(err.contains("nothing sent"), "{err}");
}

#[tokio::test]
async fn no_colour_with_no_color_set_even_on_a_terminal() {
    let server = Server::start().await;
    server
        .start_run("tok-2", "tokens", json!({"words": 5, "rate": 50.0}))
        .await;
    let mut tail = Pty::spawn(
        &["tail", "tok-2", "--url", &server.base],
        &[("NO_COLOR", "1")],
    );
    assert_eq!(tail.wait_exit(Duration::from_secs(60)).await, 0);
    assert!(!has_colour(&tail.raw()), "{:?}", tail.raw());
    assert_eq!(percentages(&tail.text()).last(), Some(&100));
}
