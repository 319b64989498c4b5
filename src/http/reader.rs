//! Where a read of one run is served: the hub it subscribes through (this server's own,
//! or a DBOS source's) and the stream permit that counts it against its client. The
//! native and DBOS routes build one and hand it to the same `…_on` functions.

use super::access::{Caller, Read, RunAccess, StreamPermit};
use super::AppState;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::ids::RunId;

/// A read of run `run` through `hub`, counted by `permit` while it lasts.
pub struct RunReader<'a> {
    /// The server.
    pub app: &'a AppState,
    /// The hub the read subscribes through.
    pub hub: &'a Hub,
    /// Counts the read against its client.
    pub permit: StreamPermit,
    /// The run read.
    pub run: &'a str,
}

impl<'a> RunReader<'a> {
    /// A read of `run` through `hub` by `caller` (already allowed to read it): 429 when the
    /// caller has its cap of open reads.
    pub fn new(
        app: &'a AppState,
        hub: &'a Hub,
        caller: &Caller,
        run: &'a str,
    ) -> Result<Self, ApiError> {
        Ok(RunReader {
            app,
            hub,
            permit: caller.stream_permit(&app.auth)?,
            run,
        })
    }

    /// A read of `run` through this server's own hub, by a caller `access` admitted.
    pub fn native(
        app: &'a AppState,
        access: &RunAccess<Read>,
        run: &'a RunId,
    ) -> Result<Self, ApiError> {
        Self::new(app, &app.hub, &access.caller, run.as_str())
    }

    /// How long a long-poll waits: `timeout` seconds (30 unless given), capped by
    /// `FLOWGATE_MAX_WAIT`.
    pub fn wait(&self, timeout: Option<&str>) -> Result<std::time::Duration, ApiError> {
        super::extract::timeout(timeout, 30.0, self.app.config.max_wait_period())
    }
}
