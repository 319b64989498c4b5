//! Operations that wait: `recv`, durable `sleep`, children. Each subscribes to the hub
//! *before* reading the database, then sleeps until a note says something changed — there
//! is no polling loop. A deadline is recorded as a step first, so after a crash the wait
//! ends when it would have, not a full timeout later. A cancel (a status note on the run)
//! interrupts the wait. The statements are in [`crate::store::messages`] and
//! [`crate::store::run_writes`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::context::{ChildHandle, WorkflowContext};
use super::steps;
use super::steps::decode;
use super::{WorkflowError, WorkflowResult, DEFAULT_QUEUE};
use crate::hub::{RunSubscription, RunUpdate};
use crate::ids::{RunId, Topic, WorkflowName};
use crate::note::NoteKind;
use crate::store::run_writes::{self, NewChild};
use crate::store::{messages, RunStatus};
use crate::tags::Tags;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn until(deadline_ms: i64) -> tokio::time::Instant {
    let left = (deadline_ms - now_ms()).max(0) as u64;
    tokio::time::Instant::now() + Duration::from_millis(left)
}

impl WorkflowContext {
    /// Records (or reads back) the deadline `timeout` from now, as step `name`.
    async fn deadline(&self, name: &str, timeout: Duration) -> WorkflowResult<i64> {
        let (n, rec) = self.take_step(name)?;
        if let Some(r) = rec {
            return decode(name, r);
        }
        let at = now_ms().saturating_add(timeout.as_millis().min(i64::MAX as u128) as i64);
        steps::record_alone(
            self.store(),
            &self.id,
            self.executor(),
            self.step_id(n, name),
            Some(&json!(at)),
            None,
        )
        .await?;
        Ok(at)
    }

    /// Sleeps durably: a replay after a crash sleeps only what is left.
    pub async fn sleep(&self, duration: Duration) -> WorkflowResult<()> {
        let at = self.deadline("sleep", duration).await?;
        if at - now_ms() < 1000 {
            // Too short to be worth watching for a cancel (checked before the next step).
            tokio::select! {
                _ = tokio::time::sleep_until(until(at)) => return Ok(()),
                _ = self.rt.inner.shutdown.cancelled() => return Err(WorkflowError::Superseded),
            }
        }
        let mut own = self.rt.inner.hub.subscribe_run(&self.id);
        tokio::select! {
            _ = tokio::time::sleep_until(until(at)) => Ok(()),
            e = cancelled(&mut own) => Err(e),
            _ = self.rt.inner.shutdown.cancelled() => Err(WorkflowError::Superseded),
        }
    }

    /// Waits up to `timeout` for one message on `topic` and consumes it, exactly once: the
    /// message is marked consumed in the transaction that records this step. `None` on
    /// timeout.
    pub async fn recv<T: DeserializeOwned>(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> WorkflowResult<Option<T>> {
        let topic =
            Topic::parse(topic).map_err(|e| WorkflowError::failed(format!("topic: {e}")))?;
        let at = self
            .deadline(&format!("recv_deadline:{topic}"), timeout)
            .await?;
        let name = format!("recv:{topic}");
        let (n, rec) = self.take_step(&name)?;
        let got: Value = match rec {
            Some(r) => decode(&name, r)?,
            None => self.consume(n, &name, topic.as_str(), at).await?,
        };
        match got.get("message") {
            Some(Value::Null) | None => Ok(None),
            Some(body) => Ok(Some(serde_json::from_value(body.clone())?)),
        }
    }

    async fn consume(&self, n: i32, name: &str, topic: &str, at: i64) -> WorkflowResult<Value> {
        // Subscribe first, so a message committed after the read below still wakes us.
        let mut sub = self.rt.inner.hub.subscribe_run(&self.id);
        loop {
            let mut tx = steps::begin(self.store(), &self.id, self.executor()).await?;
            let body = messages::consume_next(&mut tx, &self.id, topic).await?;
            if body.is_some() || now_ms() >= at {
                let out = json!({ "message": body });
                steps::record(&mut tx, &self.id, self.step_id(n, name), Some(&out), None).await?;
                tx.commit().await?;
                self.step_recorded(n);
                return Ok(out);
            }
            tx.rollback().await?;
            let deadline = until(at);
            loop {
                tokio::select! {
                    _ = self.rt.inner.shutdown.cancelled() => return Err(WorkflowError::Superseded),
                    _ = tokio::time::sleep_until(deadline) => break,
                    u = sub.recv() => match u {
                        Some(RunUpdate::Message(t)) if t.is_empty() || &*t == topic => break,
                        Some(RunUpdate::Status(row)) if row.status == RunStatus::Cancelled => {
                            return Err(WorkflowError::Cancelled)
                        }
                        None => break,
                        Some(_) => {}
                    },
                }
            }
        }
    }

    /// Starts `workflow` as a child of this run on the `default` queue.
    pub async fn start_child<I: Serialize>(
        &self,
        workflow: &str,
        input: I,
    ) -> WorkflowResult<ChildHandle> {
        self.start_child_on(DEFAULT_QUEUE, workflow, input).await
    }

    /// Starts `workflow` as a child of this run on `queue` (recorded: a replay does not start
    /// it again). The child carries its parent's tags.
    pub async fn start_child_on<I: Serialize>(
        &self,
        queue: &str,
        workflow: &str,
        input: I,
    ) -> WorkflowResult<ChildHandle> {
        self.start_child_tagged(queue, workflow, input, &[]).await
    }

    /// Like [`start_child_on`](Self::start_child_on), with `tags` added to the parent's
    /// (at most [`MAX_TAGS`](crate::tags::MAX_TAGS) in all, the child's own first).
    pub async fn start_child_tagged<I: Serialize>(
        &self,
        queue: &str,
        workflow: &str,
        input: I,
        tags: &[&str],
    ) -> WorkflowResult<ChildHandle> {
        let own = Tags::parse(tags.iter().map(|t| t.to_string()).collect())
            .map_err(|e| WorkflowError::failed(format!("child tags: {e}")))?;
        let wf = WorkflowName::parse(workflow)
            .map_err(|e| WorkflowError::failed(format!("workflow name: {e}")))?;
        let name = format!("start_child:{wf}");
        let (n, rec) = self.take_step(&name)?;
        if let Some(r) = rec {
            return decode(&name, r);
        }
        let input = serde_json::to_value(input)?;
        if let Some(t) = self.rt.registry().get(wf.as_str()) {
            if let Some(e) = t.validate(&input).first() {
                return Err(WorkflowError::failed(format!(
                    "child input {}: {}",
                    e.field, e.message
                )));
            }
        }
        let candidate = format!("{}-c{n}", self.id);
        let child = RunId::parse(candidate).unwrap_or_else(|_| RunId::random());
        let mut tx = steps::begin(self.store(), &self.id, self.executor()).await?;
        let new = NewChild {
            id: child.as_str(),
            workflow: wf.as_str(),
            input: &input,
            queue,
            parent: &self.id,
            tags: own.as_slice(),
        };
        run_writes::insert_child(&mut tx, &new).await?;
        let handle = ChildHandle {
            id: child.to_string(),
        };
        steps::record(
            &mut tx,
            &self.id,
            self.step_id(n, &name),
            Some(&serde_json::to_value(&handle)?),
            None,
        )
        .await?;
        tx.commit().await?;
        self.step_recorded(n);
        let notifier = &self.rt.inner.notifier;
        notifier.publish(crate::note::Note::new(
            NoteKind::Status,
            child.as_str(),
            "",
            0,
        ));
        notifier.publish(crate::note::Note::new(NoteKind::Queue, "", queue, 0));
        Ok(handle)
    }

    /// Waits for a child to finish; its output, or an error if it failed or was cancelled.
    pub async fn child_result<T: DeserializeOwned>(
        &self,
        child: &ChildHandle,
    ) -> WorkflowResult<T> {
        let name = format!("child_result:{}", child.id);
        let (n, rec) = self.take_step(&name)?;
        let outcome: Value = match rec {
            Some(r) => decode(&name, r)?,
            None => {
                let out = self.wait_child(&child.id).await?;
                steps::record_alone(
                    self.store(),
                    &self.id,
                    self.executor(),
                    self.step_id(n, &name),
                    Some(&out),
                    None,
                )
                .await?;
                self.step_recorded(n);
                out
            }
        };
        let status = outcome["status"].as_str();
        match status.and_then(RunStatus::parse) {
            Some(RunStatus::Success) => Ok(serde_json::from_value(outcome["output"].clone())?),
            _ => Err(WorkflowError::failed(format!(
                "child {} ended {}: {}",
                child.id,
                status.unwrap_or("unknown"),
                outcome["error"]
            ))),
        }
    }

    async fn wait_child(&self, child: &str) -> WorkflowResult<Value> {
        let mut sub = self.rt.inner.hub.subscribe_run(child);
        let mut own = self.rt.inner.hub.subscribe_run(&self.id);
        loop {
            let row = self.store().get_run(child).await?;
            match row {
                None => return Err(WorkflowError::failed(format!("child {child} not found"))),
                Some(r) if r.status.is_finished() => {
                    return Ok(json!({"status": r.status, "output": r.output, "error": r.error}))
                }
                Some(_) => {}
            }
            tokio::select! {
                _ = sub.recv() => {}
                e = cancelled(&mut own) => return Err(e),
                _ = self.rt.inner.shutdown.cancelled() => return Err(WorkflowError::Superseded),
            }
        }
    }
}

/// Resolves once the subscribed run is seen CANCELLED (re-reading after a lag).
async fn cancelled(sub: &mut RunSubscription) -> WorkflowError {
    loop {
        match sub.recv().await {
            Some(RunUpdate::Status(row)) if row.status == RunStatus::Cancelled => {
                return WorkflowError::Cancelled
            }
            _ => {}
        }
    }
}
