//! Effects of a workflow on the outside: setting events, appending and closing streams,
//! sending messages. Each is a step recorded in the same transaction as the effect itself
//! (stream appends through the group commit), so a replay returns the recorded result and
//! does nothing again; the wake-up note is published after the commit. The statements are
//! in [`crate::store::events`], [`crate::store::streams`] and [`crate::store::messages`].

use serde::Serialize;
use serde_json::json;
use sqlx::PgConnection;

use super::context::WorkflowContext;
use super::steps::{self, decode};
use super::{WorkflowError, WorkflowResult};
use crate::error::StoreError;
use crate::ids::{Key, RunId, Topic};
use crate::note::{Note, NoteKind};
use crate::store::batch::{Outcome, StepFence};
use crate::store::{events, messages, streams};

impl WorkflowContext {
    /// Sets event `key` of this run; returns its version.
    pub async fn set_event(&self, key: &str, value: impl Serialize) -> WorkflowResult<i64> {
        let key = Key::parse(key).map_err(|e| WorkflowError::failed(format!("event key: {e}")))?;
        self.step_in_tx(
            &format!("set_event:{key}"),
            async |tx, _| {
                let value = serde_json::to_value(value)?;
                Ok((
                    events::set_event_in(tx, &self.id, key.as_str(), &value).await?,
                    (),
                ))
            },
            |version, ()| self.publish(NoteKind::Event, key.as_str(), version),
        )
        .await
    }

    /// Appends one record to stream `key`; returns its offset.
    pub async fn write_stream(&self, key: &str, value: impl Serialize) -> WorkflowResult<i64> {
        self.write_stream_batch(key, &[value]).await
    }

    /// Appends records in order to stream `key` in one transaction; returns the first offset.
    pub async fn write_stream_batch<V: Serialize>(
        &self,
        key: &str,
        values: &[V],
    ) -> WorkflowResult<i64> {
        let key = Key::parse(key).map_err(|e| WorkflowError::failed(format!("stream key: {e}")))?;
        let name = format!("write_stream:{key}");
        let (n, rec) = self.take_step(&name)?;
        if let Some(r) = rec {
            return decode(&name, r);
        }
        // Recorded inside the batch (its start is not kept: stream steps are not timed).
        self.taken_at(n);
        let payloads = values
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<Vec<_>, _>>()?;
        // One transaction for the fence, the records, the step and the wake-up, shared
        // with whatever else this process is writing at the moment.
        let fence = StepFence {
            executor: self.executor().to_string(),
            step: n,
            name,
        };
        let outcome = self
            .rt
            .inner
            .notifier
            .group()
            .step_append(self.id.as_ref(), &key, payloads, fence)
            .await?;
        match outcome {
            Outcome::Done { pos, .. } => Ok(pos),
            Outcome::Cancelled => Err(WorkflowError::Cancelled),
            Outcome::Superseded => Err(WorkflowError::Superseded),
            Outcome::RunNotFound => Err(StoreError::RunNotFound.into()),
            Outcome::Conflict => {
                Err(StoreError::Conflict(format!("stream {}/{key} is closed", self.id)).into())
            }
        }
    }

    /// Closes stream `key` (idempotent); returns its final length.
    pub async fn close_stream(&self, key: &str) -> WorkflowResult<i64> {
        let key = Key::parse(key).map_err(|e| WorkflowError::failed(format!("stream key: {e}")))?;
        self.step_in_tx(
            &format!("close_stream:{key}"),
            async |tx, _| {
                Ok((
                    streams::close_stream_in(tx, &self.id, key.as_str()).await?,
                    (),
                ))
            },
            |next, ()| {
                let closed = next | crate::replica::CLOSED_FLAG;
                self.publish(NoteKind::Stream, key.as_str(), closed);
            },
        )
        .await
    }

    /// Sends `body` to `topic` of run `to`, exactly once; returns the message id.
    pub async fn send(&self, to: &str, topic: &str, body: impl Serialize) -> WorkflowResult<i64> {
        let to = RunId::parse(to).map_err(|e| WorkflowError::failed(format!("run id: {e}")))?;
        let topic =
            Topic::parse(topic).map_err(|e| WorkflowError::failed(format!("topic: {e}")))?;
        self.step_in_tx(
            &format!("send:{topic}"),
            async |tx, n| {
                let body = serde_json::to_value(body)?;
                let dedup = format!("{}#{n}", self.id);
                Ok(messages::send_in(tx, to.as_str(), topic.as_str(), &body, Some(&dedup)).await?)
            },
            |id, duplicate| {
                if !duplicate {
                    let note = Note::new(NoteKind::Message, to.as_str(), topic.as_str(), id);
                    self.rt.inner.notifier.publish(note);
                }
            },
        )
        .await
    }

    /// Step `name` whose effect is a write in the run's step transaction: a replay returns
    /// what was recorded; otherwise `write` runs in the transaction (given the step
    /// number), its number is recorded as the step's output and committed with it, then
    /// `committed` sees it with what else `write` returned.
    async fn step_in_tx<X>(
        &self,
        name: &str,
        write: impl AsyncFnOnce(&mut PgConnection, i32) -> WorkflowResult<(i64, X)>,
        committed: impl FnOnce(i64, X),
    ) -> WorkflowResult<i64> {
        let (n, rec) = self.take_step(name)?;
        if let Some(r) = rec {
            return decode(name, r);
        }
        let mut tx = steps::begin(self.store(), &self.id, self.executor()).await?;
        let (value, extra) = write(&mut tx, n).await?;
        let sid = self.step_id(n, name);
        steps::record(&mut tx, &self.id, sid, Some(&json!(value)), None).await?;
        tx.commit().await?;
        committed(value, extra);
        Ok(value)
    }
}
