//! [`Client`]: drives a flowgate server over HTTP — start or enqueue workflows, await
//! results, send messages, read events, follow streams with resume, follow a run's `/live`
//! view, approve or reject, finish external runs — without touching the database. The
//! command-line client commands (`run`, `tail`, `approve`, `reject`, `finish`) are built on it.

mod decide;
mod follow;
mod runs;

pub use decide::Decided;
pub use follow::{LiveEvent, Record};
pub use runs::{RunInfo, StartOptions};

use serde_json::Value;

/// Where the client commands look for the server unless told (`--url`, `FLOWGATE_URL`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached at all (nothing listening, unknown host, …).
    #[error("cannot reach the flowgate server at {base} ({cause}); is `flowgate serve` running there? (set --url or FLOWGATE_URL)")]
    Unreachable {
        /// The server address.
        base: String,
        /// The innermost cause, e.g. "Connection refused (os error 111)".
        cause: String,
    },
    /// The request did not complete (reset, timeout, a body that is not JSON, …).
    #[error("request failed: {}", chain(.0))]
    Http(reqwest::Error),
    /// The server answered with an error.
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Error code from the body.
        code: String,
        /// Message from the body.
        message: String,
        /// The whole body.
        body: Value,
    },
    /// The run did not finish in time.
    #[error("run {0} did not finish in time")]
    Timeout(String),
    /// The run finished without success.
    #[error("run {id} ended {status}: {error}")]
    Failed {
        /// Run id.
        id: String,
        /// ERROR or CANCELLED.
        status: String,
        /// Its error value.
        error: Value,
    },
}

/// `e` and every source below it, joined with ": " (levels that only repeat the one above
/// are left out).
fn chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        let text = next.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        cur = next;
    }
    out
}

/// An HTTP client of one flowgate server. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    key: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: impl Into<String>) -> Self {
        Client {
            base: base.into().trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            key: None,
        }
    }

    /// The same client, sending `Authorization: Bearer <key>` (a server with
    /// `FLOWGATE_API_KEYS`); `None` or an empty key sends none.
    pub fn with_api_key(mut self, key: Option<String>) -> Self {
        self.key = key.filter(|k| !k.is_empty());
        self
    }

    /// True if requests carry an API key.
    pub fn has_api_key(&self) -> bool {
        self.key.is_some()
    }

    /// The server address this client talks to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The address of run `id`'s page; with `token`, one a browser without the key can open.
    pub fn page_url(&self, id: &str, token: Option<&str>) -> String {
        const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~')
            .remove(b':')
            .remove(b'@');
        let id = percent_encoding::utf8_percent_encode(id, SEGMENT);
        match token {
            Some(t) => format!("{}/runs/{id}?token={t}", self.base),
            None => format!("{}/runs/{id}", self.base),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the API key, if any.
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, self.url(path));
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    /// Sends `req`, turning a failure to connect into [`ClientError::Unreachable`].
    async fn send_req(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        req.send().await.map_err(|e| self.transport(e))
    }

    fn transport(&self, e: reqwest::Error) -> ClientError {
        if e.is_connect() {
            let mut cur: &(dyn std::error::Error + 'static) = &e;
            while let Some(next) = cur.source() {
                cur = next;
            }
            ClientError::Unreachable {
                base: self.base.clone(),
                cause: cur.to_string(),
            }
        } else {
            ClientError::Http(e)
        }
    }

    async fn json(resp: reqwest::Response) -> Result<Value, ClientError> {
        let status = resp.status();
        let body: Value = if status == reqwest::StatusCode::NO_CONTENT {
            Value::Null
        } else {
            resp.json().await.map_err(ClientError::Http)?
        };
        if status.is_client_error() || status.is_server_error() {
            let e = &body["error"];
            return Err(ClientError::Api {
                status: status.as_u16(),
                code: e["code"].as_str().unwrap_or("unknown").to_string(),
                message: e["message"].as_str().unwrap_or_default().to_string(),
                body,
            });
        }
        Ok(body)
    }

    fn info(v: Value) -> Result<RunInfo, ClientError> {
        serde_json::from_value(v.clone()).map_err(|e| ClientError::Api {
            status: 200,
            code: "unexpected_body".into(),
            message: e.to_string(),
            body: v,
        })
    }
}
