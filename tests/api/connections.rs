//! Connection bounds over real sockets: idle keep-alive connections are closed while SSE
//! responses in progress are not, caps answer 429/503 with Retry-After, and oversized
//! heads get 431/414 instead of a hang.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Sends `req` on a fresh connection; returns everything read until the server closes or
/// `within` passes, and whether it closed.
async fn exchange(addr: &str, req: &[u8], within: Duration) -> (String, bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req).await.unwrap();
    read_all(&mut s, within).await
}

async fn read_all(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
        }
    }
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn idle_keep_alive_is_closed_but_a_streaming_response_is_not() {
    let app = spawn_app_with(|c| {
        c.conn.idle_timeout = 1.0;
        c.heartbeat = 0.3;
    })
    .await;
    app.create_run("r").await;

    // One request, then silence on the same keep-alive connection: closed after ~1 s.
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let (text, closed) = read_all(&mut s, Duration::from_secs(4)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "idle keep-alive connection closed within 4 s");

    // An SSE response outlives the idle timeout and keeps delivering.
    let mut sse = app.sse("/v1/workflows/r/streams/s", None).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.append("r", "s", &[serde_json::json!("late")]).await;
    let got = collect_events(&mut sse, 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "the stream is still open after 2.5 s");
    assert_eq!(got[0].data, "\"late\"");
}

#[tokio::test]
async fn connection_caps_refuse_with_retry_after() {
    let app = spawn_app_with(|c| c.conn.max_connections_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr(&app)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (text, closed) = exchange(
        &addr(&app),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 5"),
        "{text}"
    );
    assert!(text.contains("too_many_connections") && closed);
    // A real HTTP client sees the refusal as an answer, not a broken connection.
    let fresh = reqwest::Client::new();
    let r = fresh
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("an HTTP answer");
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "5");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "places free again once the held connections close"
    );
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("flowgate_connections_refused_total{reason=\"address_limit\"} 2"),
        "{metrics}"
    );

    let app = spawn_app_with(|c| c.conn.max_connections = 2).await;
    let _a = TcpStream::connect(addr(&app)).await.unwrap();
    let _b = TcpStream::connect(addr(&app)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (text, _) = exchange(
        &addr(&app),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
}

#[tokio::test]
async fn oversized_heads_get_431_and_long_uris_414_never_a_hang() {
    let app = spawn_app().await;
    let a = addr(&app);
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    let (text, _) = exchange(&a, big.as_bytes(), Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 431"), "40 KB header: {text:.80}");

    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let (text, _) = exchange(&a, many.as_bytes(), Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 431"), "200 headers: {text:.80}");

    let long = format!(
        "GET /healthz?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "q".repeat(10_000)
    );
    let (text, _) = exchange(&a, long.as_bytes(), Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 414"), "10 KB URI: {text:.80}");
    assert!(text.contains("uri_too_long"), "{text}");

    let r = app
        .http
        .get(app.url("/healthz"))
        .header("x-fine", "a".repeat(4000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a 4 KB header is fine");
}
