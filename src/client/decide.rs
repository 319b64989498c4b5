//! Deciding and finishing: [`Client::decide`] approves or rejects through a single-use
//! approval link, as the page does; [`Client::finish`] ends an external run.

use serde_json::{json, Value};

use super::{Client, ClientError};

/// What [`Client::decide`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Decided {
    /// The decision was sent to the run.
    Recorded,
    /// This approver had already decided (`approve` or `reject`), with that comment; nothing
    /// was sent.
    AlreadyDecided {
        /// The first decision.
        decision: String,
        /// Its comment.
        comment: Option<String>,
    },
}

impl Client {
    /// Approves (`approve`) or rejects run `id` as `approver` on `topic`: mints that
    /// approver's link pair (`POST /v1/workflows/{id}/approval-links`) and uses the chosen
    /// link once with `comment`. A second decision of the same approver sends nothing.
    pub async fn decide(
        &self,
        id: &str,
        approve: bool,
        approver: &str,
        topic: &str,
        comment: &str,
    ) -> Result<Decided, ClientError> {
        let path = format!("/v1/workflows/{id}/approval-links");
        let minted = self
            .send_req(
                self.req(reqwest::Method::POST, &path)
                    .json(&json!({"topic": topic, "approvers": [approver]})),
            )
            .await?;
        let minted = Self::json(minted).await?;
        let link = &minted["links"][0];
        let url = link[if approve { "approve_url" } else { "reject_url" }]
            .as_str()
            .ok_or_else(|| ClientError::Api {
                status: 200,
                code: "unexpected_body".into(),
                message: "the server minted no approval link".into(),
                body: minted.clone(),
            })?;
        // The link itself is the credential: no API key on it.
        let used = self
            .send_req(
                self.http
                    .post(self.url(url))
                    .json(&json!({"comment": comment})),
            )
            .await?;
        let used = Self::json(used).await?;
        if used["status"] == "already_decided" {
            return Ok(Decided::AlreadyDecided {
                decision: used["decision"].as_str().unwrap_or_default().to_string(),
                comment: used["comment"].as_str().map(str::to_string),
            });
        }
        Ok(Decided::Recorded)
    }

    /// Marks external run `id` finished with `status` (`SUCCESS`, `ERROR` or `CANCELLED`)
    /// and an optional output or error (`POST /v1/workflows/{id}/finish`); the run as it is
    /// now.
    pub async fn finish(
        &self,
        id: &str,
        status: &str,
        output: Option<&Value>,
        error: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let mut body = json!({ "status": status });
        if let Some(o) = output {
            body["output"] = o.clone();
        }
        if let Some(e) = error {
            body["error"] = e.clone();
        }
        let path = format!("/v1/workflows/{id}/finish");
        let r = self
            .send_req(self.req(reqwest::Method::POST, &path).json(&body))
            .await?;
        Self::json(r).await
    }
}
