//! [`RunStatus`]: where a run is in its life, as the `status` column and the API spell it.

use serde::{Deserialize, Serialize};

/// A run's status. Flowgate's own runs go ENQUEUED → PENDING → SUCCESS, ERROR or
/// CANCELLED (the `workflows.status` CHECK constraint); DBOS runs may also be DELAYED or
/// MAX_RECOVERY_ATTEMPTS_EXCEEDED.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Waiting on a queue for a slot.
    Enqueued,
    /// Running (or waiting inside the workflow), or an external run not yet finished.
    Pending,
    /// Finished with an output.
    Success,
    /// Finished with an error.
    Error,
    /// Cancelled before it finished.
    Cancelled,
    /// DBOS only: scheduled to start later.
    Delayed,
    /// DBOS only: given up after too many recovery attempts.
    MaxRecoveryAttemptsExceeded,
}

impl RunStatus {
    /// The statuses of flowgate's own runs, in lifecycle order.
    pub const OWN: [RunStatus; 5] = [
        RunStatus::Enqueued,
        RunStatus::Pending,
        RunStatus::Success,
        RunStatus::Error,
        RunStatus::Cancelled,
    ];

    /// Every status, flowgate's and DBOS's.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Enqueued,
        RunStatus::Pending,
        RunStatus::Success,
        RunStatus::Error,
        RunStatus::Cancelled,
        RunStatus::Delayed,
        RunStatus::MaxRecoveryAttemptsExceeded,
    ];

    /// The name, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Enqueued => "ENQUEUED",
            RunStatus::Pending => "PENDING",
            RunStatus::Success => "SUCCESS",
            RunStatus::Error => "ERROR",
            RunStatus::Cancelled => "CANCELLED",
            RunStatus::Delayed => "DELAYED",
            RunStatus::MaxRecoveryAttemptsExceeded => "MAX_RECOVERY_ATTEMPTS_EXCEEDED",
        }
    }

    /// The status named `s`, if any.
    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// True for the statuses a flowgate run ends in: SUCCESS, ERROR and CANCELLED.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Success | RunStatus::Error | RunStatus::Cancelled
        )
    }

    /// True while a flowgate run may still be cancelled: ENQUEUED or PENDING.
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Enqueued | RunStatus::Pending)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde_and_parse() {
        for s in RunStatus::ALL {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(RunStatus::parse("pending"), None);
        assert_eq!(
            RunStatus::OWN.map(RunStatus::as_str),
            ["ENQUEUED", "PENDING", "SUCCESS", "ERROR", "CANCELLED"]
        );
    }
}
