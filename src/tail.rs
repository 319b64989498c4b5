//! `flowgate run` and `flowgate tail`: the client side of the command line, on [`Client`].
//!
//! `tail` follows a run in the terminal: a progress bar for the `progress` event, the
//! `output` stream's tokens as they arrive, and the outcome when the run ends.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::client::{Client, RunInfo, StartOptions};

/// `flowgate run`: starts a workflow and prints `{id, status}`, or with `wait` its result.
pub async fn run(
    client: &Client,
    workflow: &str,
    input: &str,
    opts: StartOptions,
) -> anyhow::Result<()> {
    let input: Value = serde_json::from_str(input)
        .map_err(|e| anyhow::anyhow!("--input is not valid JSON: {e}"))?;
    let wait = opts.wait;
    let mut info = client.start(workflow, &input, &opts).await?;
    if let Some(w) = wait {
        if !info.is_finished() {
            info = client.get(&info.id, Some(w)).await?;
        }
    }
    println!("{}", serde_json::to_string_pretty(&summary(&info))?);
    if info.is_finished() && info.status != "SUCCESS" {
        anyhow::bail!("run {} ended {}", info.id, info.status);
    }
    Ok(())
}

fn summary(info: &RunInfo) -> Value {
    let mut v = serde_json::json!({"id": info.id, "status": info.status});
    if let Some(o) = &info.output {
        v["output"] = o.clone();
    }
    if let Some(e) = &info.error {
        v["error"] = e.clone();
    }
    v
}

enum Line {
    Progress(i64),
    Token(String),
}

/// Renders a 30-character progress bar.
pub fn bar(pct: i64) -> String {
    let pct = pct.clamp(0, 100);
    let filled = (pct * 30 / 100) as usize;
    format!(
        "[{}{}] {pct:>3}%",
        "#".repeat(filled),
        ".".repeat(30 - filled)
    )
}

/// `flowgate tail`: follows run `id` until it ends.
pub async fn tail(client: &Client, id: &str) -> anyhow::Result<()> {
    let first = client.get(id, None).await?;
    let (tx, mut rx) = mpsc::channel::<Line>(256);
    let progress = {
        let (client, id, tx) = (client.clone(), id.to_string(), tx.clone());
        tokio::spawn(async move {
            let mut after = 0;
            while let Ok(ev) = client
                .wait_event(&id, "progress", after, Duration::from_secs(30))
                .await
            {
                if let Some((value, version)) = ev {
                    after = version;
                    if tx
                        .send(Line::Progress(value.as_i64().unwrap_or(0)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        })
    };
    let streaming = Arc::new(AtomicBool::new(false));
    let mut tokens = {
        let (client, id, streaming) = (client.clone(), id.to_string(), streaming.clone());
        tokio::spawn(async move {
            let records = client.follow_stream(&id, "output", 0);
            futures::pin_mut!(records);
            while let Some(Ok(r)) = records.next().await {
                streaming.store(true, Ordering::SeqCst);
                let text = match r.value {
                    Value::String(s) => s,
                    other => format!("{other}\n"),
                };
                if tx.send(Line::Token(text)).await.is_err() {
                    return;
                }
            }
        })
    };
    let printer = tokio::spawn(async move {
        let (mut bar_shown, mut tokens_seen) = (false, false);
        while let Some(line) = rx.recv().await {
            match line {
                Line::Progress(p) if !tokens_seen => {
                    eprint!("\r{}", bar(p));
                    bar_shown = true;
                }
                Line::Progress(_) => {}
                Line::Token(t) => {
                    if bar_shown && !tokens_seen {
                        eprintln!();
                    }
                    tokens_seen = true;
                    print!("{t}");
                    let _ = std::io::stdout().flush();
                }
            }
        }
        if tokens_seen {
            println!();
        } else if bar_shown {
            eprintln!();
        }
    });
    let mut info = first;
    while !info.is_finished() {
        info = client.get(id, Some(Duration::from_secs(60))).await?;
    }
    // A run with an `output` stream closes it before it ends: print it to the end. Give
    // the last progress event a moment, then stop the followers.
    let grace = if streaming.load(Ordering::SeqCst) {
        Duration::from_secs(10)
    } else {
        Duration::from_millis(300)
    };
    let _ = tokio::time::timeout(grace, &mut tokens).await;
    progress.abort();
    tokens.abort();
    let _ = printer.await;
    println!("{}", serde_json::to_string_pretty(&summary(&info))?);
    if info.status != "SUCCESS" {
        anyhow::bail!("run {id} ended {}", info.status);
    }
    Ok(())
}
