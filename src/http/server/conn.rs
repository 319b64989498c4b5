//! One connection: hyper's HTTP/1.1 state machine with the head timeout and size limits,
//! the peer address handed to handlers, and an idle watch that closes a keep-alive
//! connection once no request has been in progress for the idle timeout.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::ConnConfig;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Per-connection settings, shared by every connection.
pub struct Settings {
    header_timeout: Duration,
    idle_timeout: Duration,
    max_buf: usize,
    max_uri: usize,
    max_headers: usize,
}

impl From<&ConnConfig> for Settings {
    fn from(c: &ConnConfig) -> Self {
        Settings {
            header_timeout: c.header_period(),
            idle_timeout: c.idle_period(),
            // hyper's read buffer never goes below 8 KiB.
            max_buf: c.max_header_bytes.max(8192),
            max_uri: c.max_uri_bytes.max(64),
            max_headers: c.max_headers.clamp(8, 1024),
        }
    }
}

/// Serves one connection until the client leaves, it idles out, or shutdown.
pub async fn serve(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    settings: Arc<Settings>,
    shutdown: CancellationToken,
    metrics: Metrics,
) {
    let (active, mut watch) = watch::channel(0usize);
    let active = Arc::new(active);
    let max_uri = settings.max_uri;
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let router = router.clone();
        let guard = Active::begin(&active);
        async move {
            if req.uri().to_string().len() > max_uri {
                let e = ApiError::new(
                    StatusCode::URI_TOO_LONG,
                    "uri_too_long",
                    "request URI too long",
                );
                return Ok::<_, std::convert::Infallible>(with_guard(e.into_response(), guard));
            }
            req.extensions_mut().insert(ConnectInfo(peer));
            let resp = router.oneshot(req.map(Body::new)).await;
            let resp = resp.unwrap_or_else(|never| match never {});
            Ok(with_guard(resp, guard))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .max_buf_size(settings.max_buf)
        .max_headers(settings.max_headers)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    if e.is_timeout() {
                        metrics.connections_refused.with_label_values(&["header_timeout"]).inc();
                    }
                    tracing::debug!(error = %e, %peer, "connection ended");
                }
                return;
            }
            _ = shutdown.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = idle(&mut watch, settings.idle_timeout), if !closing => {
                closing = true;
                metrics.connections_refused.with_label_values(&["idle_timeout"]).inc();
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Returns once no request has been in progress for `limit`.
async fn idle(watch: &mut watch::Receiver<usize>, limit: Duration) {
    loop {
        if *watch.borrow_and_update() > 0 {
            if watch.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(limit) => return,
            r = watch.changed() => if r.is_err() { std::future::pending::<()>().await },
        }
    }
}

/// A request in progress: counted from the call until its response body is done.
struct Active(Arc<watch::Sender<usize>>);

impl Active {
    fn begin(tx: &Arc<watch::Sender<usize>>) -> Active {
        tx.send_modify(|n| *n += 1);
        Active(tx.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Hands hyper the body itself (not re-boxed): every frame of a long SSE response passes
/// through each wrapper.
fn with_guard(resp: Response<Body>, guard: Active) -> Response<Tracked> {
    resp.map(|b| Tracked {
        inner: b,
        _guard: guard,
    })
}

/// A response body that keeps its request counted as in progress until it is dropped.
struct Tracked {
    inner: Body,
    _guard: Active,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
