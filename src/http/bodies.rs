//! Response bodies more than one route answers with. Each is what the handler serializes
//! and what `/openapi.json` describes, so the two cannot drift apart.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

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
