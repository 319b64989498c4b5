//! A panic while handling a request is a bug, but never a dropped connection: a panicking
//! handler answers a logged 500 (our JSON error), and a panicking response stream (SSE)
//! ends cleanly after what it already sent. Both count in `flowgate_http_panics_total`.

use std::any::Any;
use std::panic::AssertUnwindSafe;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};

use crate::error::ApiError;

/// The panic payload's message, if it has one.
fn message(p: &(dyn Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// The 500 a panicking handler answers, counted in `counter`.
fn answer_panic(counter: &prometheus::IntCounter, p: Box<dyn Any + Send + 'static>) -> Response {
    counter.inc();
    tracing::error!(panic = message(p.as_ref()), "request handler panicked");
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
    .into_response()
}

/// Middleware: catches panics in handlers (and in the layers inside it). The response body
/// passes through untouched, so a streaming response pays nothing per frame for it.
pub async fn catch(
    axum::extract::State(counter): axum::extract::State<prometheus::IntCounter>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(resp) => resp,
        Err(p) => answer_panic(&counter, p),
    }
}

/// `frames`, ending cleanly (and counted) instead of aborting the response if producing a
/// frame panics.
pub fn guard_stream<S>(
    frames: S,
    counter: prometheus::IntCounter,
) -> impl Stream<Item = Bytes> + Send + 'static
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    AssertUnwindSafe(frames)
        .catch_unwind()
        .scan((), move |_, r| {
            futures::future::ready(match r {
                Ok(b) => Some(b),
                Err(p) => {
                    counter.inc();
                    tracing::error!(panic = message(p.as_ref()), "response stream panicked");
                    None
                }
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_counts() {
        let counter = prometheus::IntCounter::new("p", "p").unwrap();
        let router = axum::Router::new()
            .route(
                "/boom",
                axum::routing::get(|| async {
                    if std::hint::black_box(true) {
                        panic!("boom");
                    }
                    "unreachable"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(counter.clone(), catch));
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(tcp, router).await });
        let r = reqwest::get(format!("http://{addr}/boom")).await.unwrap();
        assert_eq!(r.status(), 500);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(counter.get(), 1);
    }

    #[tokio::test]
    async fn a_panicking_stream_ends_cleanly() {
        let counter = prometheus::IntCounter::new("p", "p").unwrap();
        let frames = futures::stream::iter(0..3).map(|i| {
            if i == 1 {
                panic!("bad frame");
            }
            Bytes::from(format!("{i}"))
        });
        let out: Vec<Bytes> = guard_stream(frames, counter.clone()).collect().await;
        assert_eq!(out, vec![Bytes::from("0")]);
        assert_eq!(counter.get(), 1);
    }
}
