//! `approval`: publishes a request, waits for an `approval` message
//! `{"approved": bool, "comment": string}` with a timeout, and finishes accordingly.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::runtime::{WorkflowContext, WorkflowResult};

/// Input of `approval`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalInput {
    /// What is to be approved.
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    /// Seconds to wait for a decision.
    #[schemars(range(min = 1, max = 86400))]
    pub timeout_secs: u64,
}

impl Default for ApprovalInput {
    fn default() -> Self {
        ApprovalInput {
            title: "Deploy to production".into(),
            timeout_secs: 300,
        }
    }
}

/// The decision (also the output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Approved or rejected.
    pub approved: bool,
    /// Why.
    pub comment: String,
}

/// The `approval` workflow.
pub async fn approval(ctx: WorkflowContext, input: ApprovalInput) -> WorkflowResult<Decision> {
    ctx.set_event("request", json!({"title": input.title}))
        .await?;
    ctx.set_event("status", "waiting for approval").await?;
    let timeout = Duration::from_secs(input.timeout_secs.clamp(1, 86400));
    let msg: Option<Value> = ctx.recv("approval", timeout).await?;
    let (decision, body) = match msg {
        Some(body) => {
            let d = Decision {
                approved: body
                    .get("approved")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                comment: body
                    .get("comment")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            };
            (d, body)
        }
        None => {
            let d = Decision {
                approved: false,
                comment: "timed out".into(),
            };
            let body = serde_json::to_value(&d)?;
            (d, body)
        }
    };
    ctx.set_event("decision", body).await?;
    let status = match (&decision.approved, decision.comment.as_str()) {
        (true, _) => "approved",
        (false, "timed out") => "timed out",
        (false, _) => "rejected",
    };
    ctx.set_event("status", status).await?;
    ctx.set_event("progress", 100).await?;
    Ok(decision)
}
