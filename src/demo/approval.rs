//! `approval`: publishes a request, then collects `approval` messages
//! `{"approved": bool, "comment": string, "approver": string}` until `required` distinct
//! approvers approved, anyone rejected, or the timeout passed, and finishes accordingly.
//! A second message from the same approver does not count again; a message without an
//! approver name counts as one approval of its own. The run's outcome is `approved`,
//! `rejected` or `timed_out`, and the decision names who decided and when.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::runtime::{WorkflowContext, WorkflowResult};

/// Most approvals a run can ask for.
pub const MAX_REQUIRED: u32 = 50;

/// Input of `approval`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalInput {
    /// What is to be approved.
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    /// Seconds to wait for the decision (all approvals), counted from the start.
    #[schemars(range(min = 1, max = 86400))]
    pub timeout_secs: u64,
    /// Distinct approvers needed (N of M); one rejection ends the run.
    #[schemars(range(min = 1, max = 50))]
    pub required: u32,
}

impl Default for ApprovalInput {
    fn default() -> Self {
        ApprovalInput {
            title: "Deploy to production".into(),
            timeout_secs: 300,
            required: 1,
        }
    }
}

/// The decision (also the output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Approved (by `required` approvers) or rejected (by one, or by the timeout).
    pub approved: bool,
    /// How it ended: `approved`, `rejected` or `timed_out` (also the run's outcome).
    pub outcome: String,
    /// Why: the deciding message's comment, or "timed out".
    pub comment: String,
    /// Who decided: the last approver, the rejecter (absent on a timeout or when the
    /// deciding message named nobody).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When it was decided (RFC 3339).
    pub decided_at: String,
    /// Who approved, in order (messages without an approver name are not listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Who rejected, if someone did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_by: Option<String>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One message's fields; anything malformed counts as a rejection.
fn read(body: &Value) -> (bool, String, Option<String>) {
    let approved = body
        .get("approved")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let comment = body
        .get("comment")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .take(2000)
        .collect();
    let approver = body
        .get("approver")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .map(|a| a.chars().take(200).collect());
    (approved, comment, approver)
}

impl Decision {
    /// An undated decision (`decided_at` is filled in when it is recorded).
    fn new(outcome: &str, comment: String, decided_by: Option<String>) -> Decision {
        Decision {
            approved: outcome == "approved",
            outcome: outcome.into(),
            comment,
            decided_by,
            decided_at: String::new(),
            approvers: Vec::new(),
            rejected_by: None,
        }
    }
}

/// The `approval` workflow.
pub async fn approval(ctx: WorkflowContext, input: ApprovalInput) -> WorkflowResult<Decision> {
    let required = input.required.clamp(1, MAX_REQUIRED) as usize;
    let request = if required > 1 {
        json!({"title": input.title, "required": required})
    } else {
        json!({"title": input.title})
    };
    ctx.set_event("request", request).await?;
    ctx.set_event("status", "waiting for approval").await?;
    // The overall deadline is recorded once, so a replay waits only for what is left.
    let timeout_ms = input.timeout_secs.clamp(1, 86400) as i64 * 1000;
    let deadline: i64 = ctx
        .step("approval_deadline", || async {
            Ok::<_, std::convert::Infallible>(now_ms() + timeout_ms)
        })
        .await?;
    let mut decision = collect(&ctx, deadline, required).await?;
    // Recorded, so a replay reports the same time.
    decision.decided_at = ctx
        .step("decided_at", || async {
            Ok::<_, std::convert::Infallible>(chrono::Utc::now().to_rfc3339())
        })
        .await?;
    announce(&ctx, &decision).await?;
    Ok(decision)
}

/// Reads `approval` messages until `required` distinct approvers approved, anyone rejected,
/// or `deadline` (ms since the epoch) passed, reporting progress on the way.
async fn collect(
    ctx: &WorkflowContext,
    deadline: i64,
    required: usize,
) -> WorkflowResult<Decision> {
    let mut approvers: Vec<String> = Vec::new();
    let mut anonymous = 0usize;
    loop {
        // Always ask (at least 1 ms): a replay must make the same calls as the first run.
        let left = Duration::from_millis((deadline - now_ms()).max(1) as u64);
        let Some(body) = ctx.recv::<Value>("approval", left).await? else {
            let timed_out = Decision::new("timed_out", "timed out".into(), None);
            return Ok(Decision {
                approvers,
                ..timed_out
            });
        };
        let (approved, comment, approver) = read(&body);
        if !approved {
            let rejected = Decision::new("rejected", comment, approver.clone());
            return Ok(Decision {
                approvers,
                rejected_by: approver,
                ..rejected
            });
        }
        match &approver {
            Some(a) if approvers.contains(a) => continue,
            Some(a) => approvers.push(a.clone()),
            None => anonymous += 1,
        }
        let have = approvers.len() + anonymous;
        if have >= required {
            let done = Decision::new("approved", comment, approver);
            return Ok(Decision { approvers, ..done });
        }
        ctx.set_event("status", format!("{have} of {required} approvals"))
            .await?;
        ctx.set_event("progress", have * 100 / required).await?;
    }
}

/// Publishes the decision, the final status and progress, and sets the run's outcome.
async fn announce(ctx: &WorkflowContext, decision: &Decision) -> WorkflowResult<()> {
    ctx.set_event("decision", decision).await?;
    let status = match decision.outcome.as_str() {
        "approved" => "approved",
        "timed_out" => "timed out",
        _ => "rejected",
    };
    ctx.set_event("status", status).await?;
    ctx.set_event("progress", 100).await?;
    ctx.set_outcome(&decision.outcome)?;
    Ok(())
}
