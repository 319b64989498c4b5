//! The complete embedding example of docs/runtime.md: a `report` workflow next to the demo
//! workflows, enqueued through the Rust API. Run with `cargo run --example report`.

use std::time::Duration;

use flowgate::runtime::{StepOptions, WorkflowContext, WorkflowError, WorkflowResult};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Deserialize, JsonSchema)]
#[serde(default)]
struct ReportInput {
    /// Rows to crunch.
    #[schemars(range(min = 1, max = 1000000))]
    rows: u64,
}
impl Default for ReportInput {
    fn default() -> Self {
        ReportInput { rows: 1000 }
    }
}

#[derive(Serialize)]
struct Report {
    total: u64,
    approved: bool,
}

async fn report(ctx: WorkflowContext, input: ReportInput) -> WorkflowResult<Report> {
    ctx.set_event("status", "fetching").await?;
    // Async work, retried 3 times with exponential backoff; recorded once it succeeds.
    let rows: Vec<u64> = ctx
        .step_with(
            "fetch",
            StepOptions::retries(3, Duration::from_millis(200)),
            || async { Ok::<_, String>((0..input.rows).collect()) },
        )
        .await?;
    // CPU work on the bounded blocking pool: the HTTP server stays responsive.
    let total: u64 = ctx
        .step_blocking("sum", move || Ok::<_, String>(rows.iter().sum()))
        .await?;
    for word in ["total", "is", "ready"] {
        ctx.write_stream("output", format!("{word} ")).await?;
    }
    ctx.close_stream("output").await?;
    ctx.set_event("status", "waiting for approval").await?;
    // Consumes exactly one message, in the transaction that records this step.
    let decision: Option<serde_json::Value> =
        ctx.recv("approval", Duration::from_secs(3600)).await?;
    let approved = decision
        .map(|d| d["approved"] == json!(true))
        .unwrap_or(false);
    if !approved {
        return Err(WorkflowError::failed("not approved"));
    }
    ctx.sleep(Duration::from_secs(1)).await?; // durable: a replay sleeps only what is left
    let child = ctx
        .start_child("progress", json!({"steps": 2, "pause_ms": 0}))
        .await?;
    let _child_out: serde_json::Value = ctx.child_result(&child).await?;
    ctx.set_event("result", json!({"total": total})).await?;
    Ok(Report { total, approved })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let workflows = flowgate::demo::builder(false) // or flowgate::runtime::Runtime::builder()
        .workflow("report", report)
        .queue("reports", 4); // at most 4 at once in this process
    let mut config = flowgate::Config::new(
        "postgres://postgres@127.0.0.1:5432/postgres",
        "127.0.0.1:8080".parse()?,
    );
    config.runtime.queues.push("reports:4:10".into()); // and 10 across all processes
    let app = flowgate::app::start_with(config, Some(workflows)).await?;
    let rt = app.state.runtime.clone().expect("runtime");
    let run = rt
        .start(flowgate::runtime::StartRequest {
            workflow: "report".into(),
            input: json!({"rows": 10}),
            id: Some(flowgate::ids::RunId::parse("report-1")?),
            queue: Some("reports".into()),
            retention_secs: None,
            tags: flowgate::tags::Tags::parse(vec!["reports".into()])?,
        })
        .await?;
    println!("started {}", run.id);
    app.wait().await;
    Ok(())
}
