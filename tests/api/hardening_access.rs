//! One decision per request: the per-client stream cap holds whatever the path or query
//! spelling (a stream named `poll`, a percent-encoded `live=sse`), long-polls count too, run
//! tokens and anonymous clients are rate limited, and a keyless (loopback) server is safe to
//! run next to a browser (Host and Origin checks, JSON content type, no `*` CORS).

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

const KEY: &str = "test-key-0123456789";

async fn keyed(tweak: impl FnOnce(&mut flowgate::Config)) -> TestApp {
    spawn_app_with(|c| {
        c.api_keys = vec![KEY.into()];
        c.secret = Some("test-secret-0123456789abcdef".into());
        tweak(c);
    })
    .await
}

/// Creates run `id` with the key and returns its read token.
async fn create(app: &TestApp, id: &str) -> String {
    let r = app
        .http
        .put(app.url(&format!("/v1/workflows/{id}")))
        .bearer_auth(KEY)
        .json(&json!({"workflow": "external"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Status and error code; the body read is bounded (a wrongly admitted stream never ends).
async fn code(r: reqwest::Response) -> (u16, String) {
    let s = r.status().as_u16();
    let v: Value = match tokio::time::timeout(Duration::from_secs(5), r.json()).await {
        Ok(v) => v.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    (s, v["error"]["code"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn a_stream_named_poll_counts_against_the_stream_cap() {
    let app = keyed(|c| c.max_sse_per_client = 1).await;
    let token = create(&app, "r").await;
    let open = || {
        app.http
            .get(app.url(&format!("/v1/workflows/r/streams/poll?token={token}")))
            .send()
    };
    let first = open().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "text/event-stream");
    assert_eq!(
        code(open().await.unwrap()).await,
        (429, "too_many_streams".into())
    );
    drop(first);
}

#[tokio::test]
async fn an_encoded_live_sse_counts_against_the_stream_cap() {
    let app = keyed(|c| c.max_sse_per_client = 1).await;
    let token = create(&app, "r").await;
    app.http
        .post(app.url("/v1/workflows/r/streams/s"))
        .bearer_auth(KEY)
        .json(&[1])
        .send()
        .await
        .unwrap();
    let open = || {
        app.http
            .get(app.url(&format!(
                "/v1/stream/workflows/r/s?offset=-1&live=ss%65&token={token}"
            )))
            .send()
    };
    let first = open().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "text/event-stream");
    assert_eq!(
        code(open().await.unwrap()).await,
        (429, "too_many_streams".into())
    );
    drop(first);
}

#[tokio::test]
async fn long_polls_count_against_the_per_client_cap() {
    let app = keyed(|c| c.max_sse_per_client = 1).await;
    let token = create(&app, "r").await;
    let held = app
        .http
        .get(app.url(&format!("/v1/workflows/r/events/k?timeout=5&token={token}")));
    let held = tokio::spawn(held.send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = app
        .http
        .get(app.url(&format!(
            "/v1/workflows/r/streams/s/poll?timeout=5&token={token}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (429, "too_many_streams".into()));
    held.abort();
}

#[tokio::test]
async fn run_tokens_and_anonymous_clients_are_rate_limited() {
    let app = keyed(|c| c.security.client_rate_limit = Some(2)).await;
    let token = create(&app, "r").await;
    let mut limited = false;
    for _ in 0..30 {
        let r = app
            .http
            .get(app.url("/v1/workflows/r/events"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            assert!(r.headers().get("retry-after").is_some());
            limited = true;
            break;
        }
    }
    assert!(limited, "a run token is rate limited");
    let open = spawn_app_with(|c| c.security.client_rate_limit = Some(2)).await;
    let mut limited = false;
    for _ in 0..30 {
        let r = open
            .http
            .get(open.url("/v1/workflow-types"))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "an anonymous client is rate limited per IP");
}

#[tokio::test]
async fn loopback_mode_refuses_cross_origin_writes_and_foreign_hosts() {
    let app = spawn_app().await;
    let put = |origin: Option<String>| {
        let mut req = app
            .http
            .put(app.url("/v1/workflows/r"))
            .json(&json!({"workflow": "external"}));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    assert_eq!(
        code(put(Some("https://evil.example".into())).await.unwrap()).await,
        (403, "cross_origin".into())
    );
    assert_eq!(code(put(Some("null".into())).await.unwrap()).await.0, 403);
    assert_eq!(put(Some(app.base.clone())).await.unwrap().status(), 201);
    assert_eq!(put(None).await.unwrap().status(), 200);
    // DNS rebinding: a foreign Host is refused, even for reads.
    let port = app.base.rsplit(':').next().unwrap().to_string();
    for (host, ok) in [
        ("attacker.example".to_string(), false),
        (format!("attacker.example:{port}"), false),
        (format!("localhost:{port}"), true),
        (format!("127.0.0.1:{port}"), true),
        (format!("[::1]:{port}"), true),
        ("localhost".to_string(), true),
    ] {
        let r = app
            .http
            .get(app.url("/v1/workflows/r"))
            .header("host", host.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status() == 200, ok, "{host}: {}", r.status());
    }
}

#[tokio::test]
async fn json_endpoints_require_a_json_content_type() {
    let app = spawn_app().await;
    let r = app
        .http
        .put(app.url("/v1/workflows/r"))
        .header("content-type", "text/plain")
        .body(r#"{"workflow":"external"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (415, "unsupported_media_type".into()));
    let r = app
        .http
        .put(app.url("/v1/workflows/r"))
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"workflow":"external"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn durable_streams_send_no_wildcard_cors_unless_configured() {
    let app = spawn_app().await;
    let r = app
        .http
        .put(app.url("/v1/stream/s"))
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = app
        .http
        .get(app.url("/v1/stream/s?offset=-1"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let any = spawn_app_with(|c| c.cors_origins = vec!["*".into()]).await;
    any.http.put(any.url("/v1/stream/s")).send().await.unwrap();
    let r = any
        .http
        .get(any.url("/v1/stream/s?offset=-1"))
        .header("origin", "https://x.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn cors_lets_a_browser_speak_durable_streams() {
    let app = keyed(|c| c.cors_origins = vec!["http://app.example".into()]).await;
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/v1/stream/s"))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "producer-id, producer-epoch, producer-seq, stream-seq, content-type",
        )
        .send()
        .await
        .unwrap();
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "producer-id",
        "producer-epoch",
        "producer-seq",
        "stream-seq",
    ] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    app.http
        .put(app.url("/v1/stream/s"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let r = app
        .http
        .get(app.url("/v1/stream/s?offset=-1"))
        .bearer_auth(KEY)
        .header("origin", "http://app.example")
        .send()
        .await
        .unwrap();
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("stream-next-offset"), "{exposed}");
}

#[tokio::test]
async fn the_token_cookie_is_secure_behind_tls() {
    let app = keyed(|_| {}).await;
    let token = create(&app, "r").await;
    let get = |proto: Option<&str>| {
        let mut req = app
            .http
            .get(app.url(&format!("/v1/workflows/r?token={token}")));
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        req.send()
    };
    let plain = get(None).await.unwrap();
    let c = plain.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(!c.contains("Secure"), "{c}");
    let tls = get(Some("https")).await.unwrap();
    let c = tls.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(c.contains("; Secure"), "{c}");
    let always = keyed(|c| c.security.secure_cookies = true).await;
    let token = create(&always, "r").await;
    let r = always
        .http
        .get(always.url(&format!("/v1/workflows/r?token={token}")))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));
}
