//! What the run view reads besides outputs: the outcome a workflow reports beside its
//! output ([`WorkflowContext::set_outcome`]), and each step's start time and the note that
//! puts it on the live timeline once recorded.

use chrono::{DateTime, Utc};

use super::context::WorkflowContext;
use super::steps;
use super::{WorkflowError, WorkflowResult};
use crate::note::NoteKind;

impl WorkflowContext {
    /// Reports how the run ends, beside its output (e.g. `rejected`, `timed_out`): 1 to 64 of
    /// `a-z`, `0-9` and `_`, starting with a letter. Kept when the workflow returns `Ok`;
    /// otherwise the outcome is `succeeded`. Not a step: a replay reports it again.
    pub fn set_outcome(&self, outcome: &str) -> WorkflowResult<()> {
        crate::store::runs::check_outcome(outcome)
            .map_err(|e| WorkflowError::failed(format!("outcome: {e}")))?;
        *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome.to_string());
        Ok(())
    }

    /// The outcome reported with [`set_outcome`](Self::set_outcome), if any.
    pub(crate) fn outcome(&self) -> Option<String> {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Notes that step `n` starts now.
    pub(crate) fn mark_taken(&self, n: i32) {
        self.taken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(n, Utc::now());
    }

    /// When step `n` was taken (now, if it was not taken through [`Self::take_step`]).
    pub(crate) fn taken_at(&self, n: i32) -> DateTime<Utc> {
        self.taken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&n)
            .unwrap_or_else(Utc::now)
    }

    /// Step `n` named `name`, started when it was taken.
    pub(crate) fn step_id<'a>(&self, n: i32, name: &'a str) -> steps::StepId<'a> {
        steps::StepId {
            step: n,
            name,
            started: self.taken_at(n),
        }
    }

    /// Announces that step `n` was recorded (for the live timeline).
    pub(crate) fn step_recorded(&self, n: i32) {
        self.publish(NoteKind::Step, "", i64::from(n));
    }
}
