//! Response bodies more than one route answers with. Each is what the handler serializes
//! and what `/openapi.json` describes, so the two cannot drift apart.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::http::openapi::schema::Decision;
use crate::store::runs::RunSummary;
use crate::store::{RunRow, RunStatus};

/// A run's id and status.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdStatus {
    /// Run id.
    pub id: String,
    /// Its status.
    pub status: RunStatus,
}

/// A stored event's version.
#[derive(Debug, Serialize, ToSchema)]
pub struct Version {
    /// Version of the value just written.
    pub version: i64,
}

/// A started run.
#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    /// Run id.
    pub id: String,
    /// Its status.
    pub status: RunStatus,
    /// A token to read the run (and decide, with an approval grant); absent on a 202 after
    /// `?wait`, which answers a start already made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A page of runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// Newest first.
    pub workflows: Vec<RunSummary>,
    /// The `cursor` of the next page, if this one was full.
    pub next_cursor: Option<String>,
}

/// A registered workflow.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowTypeInfo {
    /// Its name.
    pub name: String,
    /// JSON Schema of its input.
    pub input_schema: Value,
}

/// Registered workflows.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowTypes {
    /// Every workflow not hidden.
    pub workflows: Vec<WorkflowTypeInfo>,
}

/// DBOS workflows.
#[derive(Debug, Serialize, ToSchema)]
pub struct DbosRuns {
    /// Newest first.
    pub workflows: Vec<RunRow>,
}

/// A run token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Minted {
    /// The token.
    pub token: String,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
}

/// One approver's pair of single-use links.
#[derive(Debug, Serialize, ToSchema)]
pub struct Link {
    /// Who the links are for.
    pub approver: String,
    /// Path that approves.
    pub approve_url: String,
    /// Path that rejects.
    pub reject_url: String,
    /// When both expire (Unix seconds).
    pub expires_at: i64,
}

/// Approval links, one pair per approver.
#[derive(Debug, Serialize, ToSchema)]
pub struct Links {
    /// In the order the approvers were given.
    pub links: Vec<Link>,
}

/// A message sent to a DBOS workflow.
#[derive(Debug, Serialize, ToSchema)]
pub struct DbosQueued {
    /// DBOS's message id.
    pub message_id: String,
    /// True if its idempotency key was used before (nothing new was sent).
    pub duplicate: bool,
}

/// An approval link, described.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkInfo {
    /// `dbos` for a link to a DBOS workflow; absent for a flowgate run's.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub source: Option<&'static str>,
    /// Run id.
    pub run: String,
    /// Message topic the decision is sent on.
    pub topic: String,
    /// What using the link decides.
    #[schema(value_type = Decision)]
    pub decision: String,
    /// Who the link was minted for.
    pub approver: String,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
    /// The first use of either of this approver's links, if any.
    #[schema(required = true)]
    pub used: Option<FirstUse>,
}

/// The first use of an approver's pair of links.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirstUse {
    /// What it decided.
    #[schema(value_type = Decision)]
    pub decision: String,
    /// The comment sent with it.
    pub comment: Option<String>,
    /// When (flowgate runs; DBOS does not record it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_at: Option<String>,
    /// Who (DBOS runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
}

/// Whether using a link recorded its decision or found one already taken.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UseStatus {
    /// This use decided.
    Recorded,
    /// An earlier use of this approver's links decided; `decision` is that one.
    AlreadyDecided,
}

/// The answer to using an approval link.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkUsed {
    /// Recorded now, or decided before.
    pub status: UseStatus,
    /// The decision that stands.
    #[schema(value_type = Decision)]
    pub decision: String,
    /// Recorded: the message sent (a number for flowgate runs, DBOS's message id, a
    /// string, for DBOS workflows).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub message_id: Option<Value>,
    /// Already decided: the first decision's comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<Option<String>>,
    /// Already decided, flowgate runs: when the first decision was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_at: Option<String>,
}

impl LinkUsed {
    /// This use decided `decision`, sent as message `message_id`.
    pub fn recorded(decision: String, message_id: Value) -> LinkUsed {
        LinkUsed {
            status: UseStatus::Recorded,
            decision,
            message_id: Some(message_id),
            comment: None,
            used_at: None,
        }
    }

    /// An earlier use decided `decision` with `comment` (at `used_at`, where recorded).
    pub fn already(decision: String, comment: Option<String>, used_at: Option<String>) -> LinkUsed {
        LinkUsed {
            status: UseStatus::AlreadyDecided,
            decision,
            message_id: None,
            comment: Some(comment),
            used_at,
        }
    }
}
