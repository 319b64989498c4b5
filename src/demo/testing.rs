//! Hidden workflows for the integration tests, registered only with `--test-workflows`:
//! `crashy` (many short steps with side effects counted in a stream, stream writes and
//! two `recv`s, to be killed mid-run) and `probe` (holds a queue slot and logs when it
//! starts and stops, to check concurrency limits from outside) and `flaky` (a step that
//! fails a given number of times, to check retries). `flowgate bench` drives `pingpong`
//! (message wake-up measured inside the workflow) and `noop` (queue throughput).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ids::{Key, RunId};
use crate::runtime::{RuntimeBuilder, StepOptions, WorkflowContext, WorkflowError, WorkflowResult};

/// Registers the hidden test workflows.
pub fn register(b: RuntimeBuilder) -> RuntimeBuilder {
    b.hidden_workflow("crashy", crashy)
        .hidden_workflow("probe", probe)
        .hidden_workflow("flaky", flaky)
        .hidden_workflow("pingpong", pingpong)
        .hidden_workflow("noop", noop)
}

/// Input of `pingpong`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PingPongInput {
    /// Messages to receive.
    #[schemars(range(min = 1, max = 10000))]
    pub n: u32,
}

fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// `pingpong`: receives `n` messages on topic `ping`, each `{"t": unix µs when sent}`; after
/// each, sets event `pong` to `{"i", "us"}` where `us` is the time from `t` to the moment
/// `recv` returned. Returns the list of those times.
pub async fn pingpong(ctx: WorkflowContext, input: PingPongInput) -> WorkflowResult<Vec<i64>> {
    let mut lat = Vec::new();
    for i in 0..input.n.min(10_000) {
        let m: Option<Value> = ctx.recv("ping", Duration::from_secs(60)).await?;
        let got = unix_micros();
        let sent = m
            .and_then(|v| v["t"].as_i64())
            .ok_or_else(|| WorkflowError::failed("no ping"))?;
        lat.push(got - sent);
        ctx.set_event("pong", json!({"i": i, "us": got - sent}))
            .await?;
    }
    Ok(lat)
}

/// Input of `noop`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct NoopInput {}

/// `noop`: one recorded step that does nothing.
pub async fn noop(ctx: WorkflowContext, _input: NoopInput) -> WorkflowResult<u32> {
    ctx.step("one", || async { Ok::<_, String>(1u32) }).await
}

/// Input of `crashy`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CrashyInput {
    /// Steps.
    #[schemars(range(min = 1, max = 1000))]
    pub steps: u32,
    /// Milliseconds each step takes.
    #[schemars(range(max = 10000))]
    pub delay_ms: u64,
    /// Steps after which one message on topic `m` is received.
    pub recv_at: Vec<u32>,
}

impl Default for CrashyInput {
    fn default() -> Self {
        CrashyInput {
            steps: 20,
            delay_ms: 100,
            recv_at: vec![3, 12],
        }
    }
}

/// Appends `value` to stream `key` of `run` directly: an unrecorded side effect.
async fn effect(ctx: &WorkflowContext, run: &str, key: &str, value: Value) -> Result<(), String> {
    let run = RunId::parse(run).map_err(|e| e.to_string())?;
    let key = Key::parse(key).map_err(|e| e.to_string())?;
    let bytes = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    ctx.store()
        .append(&run, &key, &[bytes])
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `crashy`: each step logs a side effect to stream `effects` (outside the step record),
/// then the workflow records one `output` record per step; it receives one message on
/// topic `m` after each step listed in `recv_at`.
pub async fn crashy(ctx: WorkflowContext, input: CrashyInput) -> WorkflowResult<Value> {
    let mut got = Vec::new();
    for i in 0..input.steps {
        let c = ctx.clone();
        let delay = Duration::from_millis(input.delay_ms);
        ctx.step("work", || {
            let c = c.clone();
            async move {
                effect(&c, c.id(), "effects", json!(i)).await?;
                tokio::time::sleep(delay).await;
                Ok::<_, String>(i)
            }
        })
        .await?;
        ctx.write_stream("output", i).await?;
        if input.recv_at.contains(&i) {
            let m: Option<Value> = ctx.recv("m", Duration::from_secs(120)).await?;
            got.push(m.ok_or_else(|| WorkflowError::failed("no message"))?);
        }
    }
    ctx.close_stream("output").await?;
    Ok(json!({"steps": input.steps, "got": got}))
}

/// Input of `probe`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProbeInput {
    /// Run whose stream `load` logs `{"id", "d": ±1}` when a probe starts and stops.
    pub tracker: String,
    /// Milliseconds to hold the slot.
    #[serde(default)]
    #[schemars(range(max = 10000))]
    pub hold_ms: u64,
}

/// `probe`: logs +1, holds its queue slot for `hold_ms`, logs -1.
pub async fn probe(ctx: WorkflowContext, input: ProbeInput) -> WorkflowResult<Value> {
    let c = ctx.clone();
    ctx.step("hold", || {
        let c = c.clone();
        let tracker = input.tracker.clone();
        async move {
            effect(&c, &tracker, "load", json!({"id": c.id(), "d": 1})).await?;
            tokio::time::sleep(Duration::from_millis(input.hold_ms)).await;
            effect(&c, &tracker, "load", json!({"id": c.id(), "d": -1})).await
        }
    })
    .await?;
    Ok(json!({"id": ctx.id()}))
}

/// Input of `flaky`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FlakyInput {
    /// Failures before the step succeeds.
    #[schemars(range(max = 100))]
    pub fail_times: u32,
    /// Attempts the step may make.
    #[schemars(range(min = 1, max = 100))]
    pub max_attempts: u32,
}

/// `flaky`: one step with retries that fails `fail_times` times first.
pub async fn flaky(ctx: WorkflowContext, input: FlakyInput) -> WorkflowResult<Value> {
    let tries = std::sync::atomic::AtomicU32::new(0);
    let opts = StepOptions::retries(input.max_attempts, Duration::from_millis(10));
    let made = ctx
        .step_with("flaky", opts, || {
            let n = tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                if n <= input.fail_times {
                    Err(format!("failure {n}"))
                } else {
                    Ok(n)
                }
            }
        })
        .await?;
    Ok(json!({"tries": made}))
}
