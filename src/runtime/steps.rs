//! Step records: what a replay reads back, and the fenced transaction every recorded
//! operation commits in (the statements are in [`crate::store::steps`]).
//!
//! A fenced transaction first locks the run row (`FOR NO KEY UPDATE`: it serialises the
//! recording transactions of one run, which also update that row's event clock, so two
//! concurrent operations of one workflow cannot deadlock) and checks that the run is still
//! PENDING and owned by this executor. A cancel (which updates the row) therefore either
//! commits before the step, making it fail with [`WorkflowError::Cancelled`], or waits for
//! the step to commit; and an executor that was presumed dead can never record a step after
//! its run was taken over.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::{Postgres, Transaction};

use super::{WorkflowError, WorkflowResult};
use crate::store::steps::RunOwner;
use crate::store::{self, RunStatus, Store};

/// A recorded step outcome.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Step name (checked on replay to catch non-deterministic workflows).
    pub name: String,
    /// Output, if the step succeeded.
    pub output: Option<Value>,
    /// Error, if the step failed for good.
    pub error: Option<Value>,
}

/// Every recorded step of `run`.
pub async fn load(store: &Store, run: &str) -> Result<HashMap<i32, Recorded>, WorkflowError> {
    Ok(store
        .step_records(run)
        .await?
        .into_iter()
        .map(|r| {
            (
                r.step,
                Recorded {
                    name: r.name,
                    output: r.output,
                    error: r.error,
                },
            )
        })
        .collect())
}

/// Fails unless `run` is PENDING and owned by `executor` (a cheap read, no lock).
pub async fn check_owned(store: &Store, run: &str, executor: &str) -> Result<(), WorkflowError> {
    ownership(store.run_owner(run).await?, executor)
}

fn ownership(row: RunOwner, executor: &str) -> Result<(), WorkflowError> {
    match row {
        Some((RunStatus::Cancelled, _)) => Err(WorkflowError::Cancelled),
        Some((RunStatus::Pending, Some(owner))) if owner == executor => Ok(()),
        _ => Err(WorkflowError::Superseded),
    }
}

/// Begins a transaction fenced on the run's ownership (see the module docs).
pub async fn begin(
    store: &Store,
    run: &str,
    executor: &str,
) -> Result<Transaction<'static, Postgres>, WorkflowError> {
    let mut tx = store.pool.begin().await?;
    let row = store::steps::lock_run_owner(&mut tx, run).await?;
    ownership(row, executor)?;
    Ok(tx)
}

/// Step `step` of a run: its name and when it was taken (its start on the timeline).
#[derive(Debug, Clone, Copy)]
pub struct StepId<'a> {
    /// Step number.
    pub step: i32,
    /// Step name.
    pub name: &'a str,
    /// When the workflow took the step.
    pub started: DateTime<Utc>,
}

/// Records step `id` inside `tx` (a step recorded before wins; replays never overwrite).
pub async fn record(
    tx: &mut Transaction<'static, Postgres>,
    run: &str,
    id: StepId<'_>,
    output: Option<&Value>,
    error: Option<&Value>,
) -> Result<(), WorkflowError> {
    store::steps::record_step(tx, run, id.step, id.name, id.started, output, error).await?;
    Ok(())
}

/// Records a step in its own fenced transaction.
pub async fn record_alone(
    store: &Store,
    run: &str,
    executor: &str,
    id: StepId<'_>,
    output: Option<&Value>,
    error: Option<&Value>,
) -> Result<(), WorkflowError> {
    let mut tx = begin(store, run, executor).await?;
    record(&mut tx, run, id, output, error).await?;
    tx.commit().await?;
    Ok(())
}

/// Turns a recorded outcome back into the step's result.
pub(crate) fn decode<T: DeserializeOwned>(name: &str, r: Recorded) -> WorkflowResult<T> {
    match (r.output, r.error) {
        (_, Some(err)) => Err(WorkflowError::Step {
            step: name.to_string(),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("failed")
                .to_string(),
        }),
        (out, None) => Ok(serde_json::from_value(out.unwrap_or(Value::Null))?),
    }
}
