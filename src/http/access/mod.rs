//! Permissions as extractors: a handler states what it needs in its arguments, and the
//! decision is made from the same parsed, percent-decoded path values the handler uses.
//!
//! The guard ([`super::guard`]) only works out *who* is calling (the [`Caller`], from the
//! credential) and puts it in the request's extensions; it never looks at the path. What the
//! caller may do is decided here:
//!
//! | extractor | allows |
//! |---|---|
//! | [`AdminKey`] | an API key (or any loopback client of a keyless server) |
//! | [`AdminWrite`](super::extract::AdminWrite) | that, with the path's names and a JSON body (admin writes) |
//! | [`RunAccess<Read>`] | that, or a run token with the `read` scope for the `{id}` path parameter |
//! | [`RunAccess<Approve>`] | that, or a run token with the `approve` scope for `{id}` |
//! | [`RunAccess<Cancel>`] | that, or a run token with the `cancel` scope for `{id}` |
//! | [`Caller`] | anyone; call [`Caller::require_admin`] / [`Caller::require_run`] yourself once you have parsed the run (e.g. from a wildcard path) |
//!
//! [`RunAccess`] reads the run from the path parameter named `id` (so name it `{id}` in the
//! route), decoded exactly as `Path` decodes it for the handler. A route without one of
//! these is public. Any handler that holds a response open (SSE or a
//! long-poll) takes a [`StreamPermit`] from [`Caller::stream_permit`] and keeps it alive as
//! long as it streams, so the per-client cap counts exactly the responses that stream.
//!
//! Runs whose tokens are signed as another kind (DBOS runs) write their own extractor on
//! [`Caller`] and [`Caller::require_run_of_kind`], the same way [`RunAccess`] is written.
//!
//! Adding a route under a run, e.g. `GET /v1/workflows/{id}/summary`:
//!
//! ```ignore
//! async fn events(State(app): State<AppState>, access: RunAccess<Read>) -> Result<Response, ApiError> {
//!     let _permit = access.caller.stream_permit(&app.auth)?; // only if it waits or streams
//!     let run = access.run; // validated RunId from `{id}`
//!     …
//! }
//! ```

pub mod browser;
pub mod grant;
pub mod guard;

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::StatusCode;

use crate::auth::token::{RunClaims, Scope, TagClaims, TokenError};
use crate::auth::Auth;
use crate::error::ApiError;
use crate::ids::RunId;

/// What the presented credential turned out to be.
#[derive(Debug, Clone)]
pub enum Who {
    /// A keyless server's (loopback) client, or the private admin listener: may do anything.
    Local,
    /// API key number `n`.
    Key(usize),
    /// A valid run token.
    Run(RunClaims),
    /// A valid tag token: the runs carrying one of its tags ([`RunAccess`] checks the run's
    /// tags; [`Caller::require_run`] alone refuses it).
    Tags(TagClaims),
    /// No credential.
    Nobody,
    /// A run token past its expiry.
    Expired,
    /// A credential that is neither a key nor a token we signed.
    Invalid,
}

/// Who sent the request (resolved once by the guard) and the client it counts against.
#[derive(Clone)]
pub struct Caller {
    /// The credential's meaning.
    pub who: Who,
    /// The client identity for per-client limits (`key:N`, `run:ID:IP` or `ip:IP`).
    pub client: String,
    /// The credential as presented (never logged: `Debug` leaves it out), for run
    /// namespaces whose tokens are of another kind ([`Caller::require_run_of_kind`]).
    pub(crate) credential: Option<String>,
    /// Set by [`RunAccess`] when a `?token=` was accepted: the guard answers with the cookie.
    pub(crate) cookie: Arc<Mutex<Option<String>>>,
    /// True if the token came in the query string.
    pub(crate) token_in_query: bool,
}

fn unauthorized(msg: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg)
        .with_header("www-authenticate", "Bearer")
}

/// 403 with `code: forbidden`.
pub fn forbidden(msg: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", msg)
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("who", &self.who)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// A caller trusted with everything (the private admin listener).
    pub fn local(client: impl Into<String>) -> Caller {
        Caller {
            who: Who::Local,
            client: client.into(),
            credential: None,
            cookie: Arc::default(),
            token_in_query: false,
        }
    }

    /// True for an API key holder or a loopback client of a keyless server.
    pub fn is_admin(&self) -> bool {
        matches!(self.who, Who::Local | Who::Key(_))
    }

    /// Ok for an API key (or a keyless server's client); else 401 or 403.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match &self.who {
            Who::Local | Who::Key(_) => Ok(()),
            Who::Nobody => Err(unauthorized(
                "an API key is required (Authorization: Bearer <key>)",
            )),
            Who::Run(_) | Who::Tags(_) => Err(forbidden(
                "a run or tag token cannot do this; use an API key",
            )),
            Who::Expired | Who::Invalid => Err(unauthorized("invalid API key")),
        }
    }

    /// Ok for an API key, or a run token for `run` with `scope`; else 401 or 403.
    pub fn require_run(&self, run: &str, scope: Scope) -> Result<(), ApiError> {
        match &self.who {
            Who::Local | Who::Key(_) => Ok(()),
            Who::Run(c) if c.run == run && c.rights.scopes.contains(&scope) => Ok(()),
            Who::Run(_) => Err(forbidden("this token is for another run or action")),
            Who::Tags(_) => Err(forbidden("a tag token does not open this")),
            Who::Nobody => Err(unauthorized(
                "a run token (?token=, cookie flowgate_token) or an API key is required",
            )),
            Who::Expired => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "the run token has expired",
            )),
            Who::Invalid => Err(unauthorized("invalid token")),
        }
    }

    /// For runs outside flowgate's own table whose tokens are signed as another `kind` (a
    /// DBOS run's token never opens a flowgate run, nor the other way round): Ok for an API
    /// key (or a keyless server's client), or a valid token of `kind` for `run` with `scope`.
    pub fn require_run_of_kind(
        &self,
        auth: &Auth,
        kind: &str,
        run: &str,
        scope: Scope,
    ) -> Result<(), ApiError> {
        if self.is_admin() {
            return Ok(());
        }
        let Some(c) = self.credential.as_deref() else {
            return Err(unauthorized(
                "a run token (?token=) or an API key is required",
            ));
        };
        match auth.signer.verify(kind, c, |c: &RunClaims| c.rights.exp) {
            Ok(claims) if claims.run == run && claims.rights.scopes.contains(&scope) => Ok(()),
            Ok(_) => Err(forbidden("this token is for another run or action")),
            Err(TokenError::Expired) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "the run token has expired",
            )),
            Err(TokenError::Invalid) => Err(unauthorized("invalid token")),
        }
    }

    /// Counts one open stream or long-poll against this client; 429 over the cap. The
    /// count drops when the permit does.
    pub fn stream_permit(&self, auth: &Arc<Auth>) -> Result<StreamPermit, ApiError> {
        StreamPermit::take(auth, &self.client).ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                "too many open streams and long-polls for this client",
            )
            .with_header("retry-after", "5")
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // Every router layer that serves these routes inserts the caller; without it, deny.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::internal("request reached a handler without the guard"))
    }
}

/// An API key holder (or a keyless server's loopback client).
pub struct AdminKey(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for AdminKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, s).await?;
        caller.require_admin()?;
        Ok(AdminKey(caller))
    }
}

/// Marks what a [`RunAccess`] needs.
pub trait RunScope {
    /// The token scope that grants it.
    const SCOPE: Scope;
}

/// Reading a run: status, events, streams, `/live`.
pub struct Read;
/// Minting approval links for a run (within the token's grant).
pub struct Approve;

impl RunScope for Read {
    const SCOPE: Scope = Scope::Read;
}
impl RunScope for Approve {
    const SCOPE: Scope = Scope::Approve;
}
/// Cancelling a run.
pub struct Cancel;
impl RunScope for Cancel {
    const SCOPE: Scope = Scope::Cancel;
}

/// Permission to act on the run named by the `{id}` path parameter.
pub struct RunAccess<S> {
    /// The run, validated.
    pub run: RunId,
    /// Who is asking (the token's claims carry an approval grant, if any).
    pub caller: Caller,
    _scope: PhantomData<S>,
}

impl<S: RunScope, St: Send + Sync> FromRequestParts<St> for RunAccess<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &St) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, st).await?;
        let params = RawPathParams::from_request_parts(parts, st)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
        let id = params
            .iter()
            .find(|(name, _)| *name == "id")
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| ApiError::internal("RunAccess on a route without {id}"))?;
        match &caller.who {
            Who::Tags(claims) => {
                let store = parts.extensions.get::<crate::store::Store>().cloned();
                covers(claims, store, &id, S::SCOPE).await?;
            }
            _ => caller.require_run(&id, S::SCOPE)?,
        }
        let run = RunId::parse(id).map_err(|e| ApiError::invalid("id", e))?;
        if caller.token_in_query && matches!(caller.who, Who::Run(_)) {
            let mut slot = caller.cookie.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(run.to_string());
        }
        Ok(RunAccess {
            run,
            caller,
            _scope: PhantomData,
        })
    }
}

/// Ok if the tag token has `scope` and run `id` carries one of its tags (one indexed read).
async fn covers(
    claims: &TagClaims,
    store: Option<crate::store::Store>,
    id: &str,
    scope: Scope,
) -> Result<(), ApiError> {
    if !claims.rights.scopes.contains(&scope) {
        return Err(forbidden("this tag token does not allow this action"));
    }
    let store = store.ok_or_else(|| ApiError::internal("tag token checked without the store"))?;
    let tags = store.run_tags(id).await?.unwrap_or_default();
    if tags.iter().any(|t| claims.tags.contains(t)) {
        Ok(())
    } else {
        Err(forbidden("this run carries none of the token's tags"))
    }
}

/// Resolves a presented credential.
pub fn identify(auth: &Auth, credential: Option<&str>) -> Who {
    if auth.open() {
        return Who::Local;
    }
    let Some(c) = credential else {
        return Who::Nobody;
    };
    if let Some(i) = auth.key_index(c) {
        return Who::Key(i);
    }
    match auth.signer.verify_run(c) {
        Ok(claims) => Who::Run(claims),
        Err(TokenError::Expired) => Who::Expired,
        Err(TokenError::Invalid) => match auth.signer.verify_tags(c) {
            Ok(claims) => Who::Tags(claims),
            Err(TokenError::Expired) => Who::Expired,
            Err(TokenError::Invalid) => Who::Invalid,
        },
    }
}

/// One open stream or long-poll counted against its client; released on drop.
pub struct StreamPermit {
    auth: Arc<Auth>,
    client: String,
}

impl StreamPermit {
    fn take(auth: &Arc<Auth>, client: &str) -> Option<StreamPermit> {
        let mut m = auth.sse_clients.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(client.to_string()).or_insert(0);
        if *n >= auth.max_sse_per_client {
            return None;
        }
        *n += 1;
        Some(StreamPermit {
            auth: auth.clone(),
            client: client.to_string(),
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut m = self
            .auth
            .sse_clients
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests;
