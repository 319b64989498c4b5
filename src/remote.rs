//! The client commands other than `tail`: `run` (start, print the run and its page
//! address), `approve` / `reject` (decide an approval as the page does), and `finish` (end
//! an external run).

use serde_json::Value;

use crate::client::{Client, Decided, StartOptions};

fn json_arg(flag: &str, text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{flag} is not valid JSON: {e}"))
}

/// `flowgate run`: starts a workflow and prints `{id, status, page}`, or with `wait` its
/// result too. `page` is the run's page address (with a read token when the client holds an
/// API key, since a browser has none).
pub async fn run(
    client: &Client,
    workflow: &str,
    input: &str,
    opts: StartOptions,
) -> anyhow::Result<()> {
    let input = json_arg("--input", input)?;
    let wait = opts.wait;
    let started = client.start(workflow, &input, &opts).await?;
    let token = started.token.clone().filter(|_| client.has_api_key());
    let page = client.page_url(&started.id, token.as_deref());
    let mut info = started;
    if let Some(w) = wait {
        if !info.is_finished() {
            info = client.get(&info.id, Some(w)).await?;
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&info.summary(Some(page)))?
    );
    if info.is_finished() && info.status != "SUCCESS" {
        anyhow::bail!("run {} ended {}", info.id, info.status);
    }
    Ok(())
}

/// `flowgate approve` / `flowgate reject`: sends the decision once, as `approver`; a run
/// that has already finished gets nothing.
pub async fn decide(
    client: &Client,
    id: &str,
    approve: bool,
    approver: &str,
    topic: &str,
    comment: &str,
) -> anyhow::Result<()> {
    let verb = if approve { "approved" } else { "rejected" };
    let run = client.get(id, None).await?;
    if run.is_finished() {
        let outcome = run.outcome.map(|o| format!(", {o}")).unwrap_or_default();
        anyhow::bail!(
            "run {id} has already finished ({}{outcome}); nothing sent",
            run.status
        );
    }
    match client.decide(id, approve, approver, topic, comment).await? {
        Decided::Recorded => {
            println!("{verb} run {id} as {approver}");
            Ok(())
        }
        Decided::AlreadyDecided { decision, comment } => {
            let first = if decision == "approve" {
                "approved"
            } else {
                "rejected"
            };
            let comment = comment
                .filter(|c| !c.is_empty())
                .map(|c| format!(" — “{c}”"))
                .unwrap_or_default();
            println!("{approver} already {first} run {id}{comment}; nothing sent");
            if first != verb {
                anyhow::bail!("{approver} already decided otherwise");
            }
            Ok(())
        }
    }
}

/// `flowgate finish`: ends an external run with `status` and an optional output or error.
pub async fn finish(
    client: &Client,
    id: &str,
    status: &str,
    output: Option<&str>,
    error: Option<&str>,
) -> anyhow::Result<()> {
    let output = output.map(|o| json_arg("--output", o)).transpose()?;
    let error = error.map(|e| json_arg("--error", e)).transpose()?;
    let status = status.to_ascii_uppercase();
    let answer = client
        .finish(id, &status, output.as_ref(), error.as_ref())
        .await?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}
