//! `progress`: N steps of real CPU work (Fibonacci) on the blocking pool, publishing
//! `progress` (0–100), `status` and finally `result`, pausing after each step so a person
//! can watch (about 15 s with the defaults). `fanout`: a parent that runs several
//! `progress` children on the `default` queue (their ids in event `children`) and
//! aggregates their results.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::fib;
use crate::runtime::{WorkflowContext, WorkflowResult};

/// Input of `progress`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProgressInput {
    /// Number of steps.
    #[schemars(range(min = 1, max = 1000))]
    pub steps: u32,
    /// Fibonacci number computed (naively) in each step.
    #[schemars(range(min = 0, max = 40))]
    pub fib: u32,
    /// Milliseconds to pause after each step (a recorded `pause` step), so a person can
    /// watch the bar move.
    #[schemars(range(min = 0, max = 10000))]
    pub pause_ms: u64,
}

impl Default for ProgressInput {
    fn default() -> Self {
        ProgressInput {
            steps: 10,
            fib: 27,
            pause_ms: 1500,
        }
    }
}

/// A recorded pause of `ms` milliseconds (nothing when 0).
async fn pause(ctx: &WorkflowContext, ms: u64) -> WorkflowResult<()> {
    if ms == 0 {
        return Ok(());
    }
    let d = std::time::Duration::from_millis(ms.min(10_000));
    ctx.step("pause", || async move {
        tokio::time::sleep(d).await;
        Ok::<_, std::convert::Infallible>(())
    })
    .await
}

/// Output of `progress`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressOutput {
    /// Steps run.
    pub steps: u32,
    /// Sum of every step's result.
    pub sum: u64,
}

/// The `progress` workflow.
pub async fn progress(
    ctx: WorkflowContext,
    input: ProgressInput,
) -> WorkflowResult<ProgressOutput> {
    let steps = input.steps.clamp(1, 1000);
    let n = input.fib.min(40);
    ctx.set_event("progress", 0).await?;
    ctx.set_event("status", "starting").await?;
    let mut sum = 0u64;
    for i in 0..steps {
        let v: u64 = ctx
            .step_blocking("fib", move || Ok::<_, String>(fib(n)))
            .await?;
        sum = sum.wrapping_add(v);
        pause(&ctx, input.pause_ms).await?;
        ctx.set_event("progress", (i + 1) * 100 / steps).await?;
        ctx.set_event("status", format!("step {} of {steps}", i + 1))
            .await?;
    }
    let out = ProgressOutput { steps, sum };
    ctx.set_event("status", "done").await?;
    ctx.set_event("result", &out).await?;
    Ok(out)
}

/// Input of `fanout`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FanoutInput {
    /// Number of `progress` children.
    #[schemars(range(min = 1, max = 32))]
    pub children: u32,
    /// Fibonacci number of each child's steps.
    #[schemars(range(min = 0, max = 40))]
    pub fib: u32,
    /// Milliseconds each child pauses after each of its steps.
    #[schemars(range(min = 0, max = 10000))]
    pub pause_ms: u64,
}

impl Default for FanoutInput {
    fn default() -> Self {
        FanoutInput {
            children: 4,
            fib: 25,
            pause_ms: 4000,
        }
    }
}

/// Steps of each `fanout` child.
pub const CHILD_STEPS: u32 = 3;

/// The `fanout` workflow.
pub async fn fanout(ctx: WorkflowContext, input: FanoutInput) -> WorkflowResult<Value> {
    let children = input.children.clamp(1, 32);
    ctx.set_event("progress", 0).await?;
    ctx.set_event("status", format!("starting {children} children"))
        .await?;
    let mut handles = Vec::new();
    for _ in 0..children {
        let child_input = json!({"steps": CHILD_STEPS, "fib": input.fib.min(40),
            "pause_ms": input.pause_ms.min(10_000)});
        handles.push(ctx.start_child("progress", child_input).await?);
    }
    let ids: Vec<&str> = handles.iter().map(|h| h.id.as_str()).collect();
    ctx.set_event("children", &ids).await?;
    let mut results = Vec::new();
    for (i, h) in handles.iter().enumerate() {
        let out: Value = ctx.child_result(h).await?;
        results.push(json!({"id": h.id, "output": out}));
        let done = i as u32 + 1;
        ctx.set_event("progress", done * 100 / children).await?;
        ctx.set_event("status", format!("{done} of {children} children done"))
            .await?;
    }
    Ok(json!({"children": children, "results": results}))
}
