//! Durable Streams subscriptions (`/v1/stream/__ds/…`): signed webhook wakes with fenced
//! callbacks, the webhook address policy, explicit stream links, and pull-wake claims.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::durable::offset;
use crate::helpers::*;

type Seen = Arc<Mutex<Vec<(Option<String>, String)>>>;

/// A webhook receiver on a random loopback port answering `{}`; returns its URL and what
/// it received (signature header, raw body).
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let rec = seen.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: axum::http::HeaderMap, body: String| {
            let rec = rec.clone();
            async move {
                let sig = h
                    .get("webhook-signature")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                rec.lock().unwrap().push((sig, body));
                axum::Json(json!({}))
            }
        }),
    );
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", tcp.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(tcp, router).await });
    (url, seen)
}

/// Waits (bounded) until `f` holds.
async fn eventually<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not reached in time");
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> reqwest::Response {
    app.http
        .request(method, app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn webhook_wakes_are_signed_and_callbacks_fenced() {
    let app = spawn_app_with(|c| c.ds_webhook_loopback = true).await;
    let (url, seen) = receiver().await;
    let spec = json!({"type": "webhook", "pattern": "events/*", "webhook": {"url": url}});
    let sub = "/v1/stream/__ds/subscriptions/s1";
    let r = send(&app, reqwest::Method::PUT, sub, spec.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let jwks_url = created["webhook"]["signing"]["jwks_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        send(&app, reqwest::Method::PUT, sub, spec).await.status(),
        StatusCode::OK
    );
    let other = json!({"type": "webhook", "pattern": "other/*", "webhook": {"url": url}});
    assert_eq!(
        send(&app, reqwest::Method::PUT, sub, other).await.status(),
        StatusCode::CONFLICT
    );

    // A stream outside the pattern wakes nothing; one inside does.
    app.http
        .put(app.url("/v1/stream/quiet/x"))
        .body("a")
        .send()
        .await
        .unwrap();
    app.http
        .put(app.url("/v1/stream/events/x"))
        .body("hello")
        .send()
        .await
        .unwrap();
    eventually(|| {
        let n = seen.lock().unwrap().len();
        async move { n > 0 }
    })
    .await;
    let (sig, raw) = seen.lock().unwrap()[0].clone();
    let body: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(body["subscription_id"], "s1");
    assert_eq!(body["streams"][0]["path"], "events/x");
    assert_eq!(body["streams"][0]["tail_offset"], offset(1));

    // The signature verifies with the published key over "<t>.<body>".
    let jwks: Value = app
        .http
        .get(&jwks_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let x = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
    let sig = sig.unwrap();
    let (t, rest) = sig.strip_prefix("t=").unwrap().split_once(",kid=").unwrap();
    let sig_b64 = rest.split_once(",ed25519=").unwrap().1;
    let sig_bytes: [u8; 64] = URL_SAFE_NO_PAD.decode(sig_b64).unwrap().try_into().unwrap();
    let signed = format!("{t}.{raw}");
    key.verify_strict(
        signed.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&sig_bytes),
    )
    .expect("valid signature");

    let ack = json!({
        "wake_id": body["wake_id"], "generation": body["generation"],
        "acks": [{"stream": "events/x", "offset": offset(1)}], "done": true,
    });
    let callback = |token: &str| {
        app.http
            .post(body["callback_url"].as_str().unwrap())
            .bearer_auth(token)
            .json(&ack)
            .send()
    };
    let r = callback("wrong-token").await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = callback(body["callback_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"ok": true, "next_wake": false})
    );
    let r = callback(body["callback_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "a finished wake is fenced"
    );
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "FENCED");

    let got: Value = app
        .http
        .get(app.url(sub))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["streams"][0]["acked_offset"], offset(1));
    assert_eq!(
        send(&app, reqwest::Method::DELETE, sub, Value::Null)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn webhook_urls_must_be_public_http() {
    let app = spawn_app().await;
    for url in [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest",
        "http://127.0.0.1:9/hook",
        "http://[::1]/hook",
        // Special-purpose ranges, and IPv4 embedded in IPv6 (compatible, 6to4, NAT64).
        "http://[::127.0.0.1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",
        "http://[fec0::1]/hook",
        "http://198.18.0.1/hook",
        "http://240.0.0.1/hook",
        "http://192.0.0.1/hook",
        "ftp://example.com/hook",
        "not a url",
    ] {
        let spec = json!({"type": "webhook", "pattern": "events/*", "webhook": {"url": url}});
        let r = send(
            &app,
            reqwest::Method::PUT,
            "/v1/stream/__ds/subscriptions/bad",
            spec,
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{url}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "WEBHOOK_URL_REJECTED", "{url}");
    }
}

#[tokio::test]
async fn explicit_links_and_pull_wake_claims() {
    let app = spawn_app().await;
    app.http
        .put(app.url("/v1/stream/wake/pool"))
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .unwrap();
    let sub = "/v1/stream/__ds/subscriptions/p1";
    let spec = json!({"type": "pull-wake", "streams": ["jobs/a"], "wake_stream": "wake/pool",
                      "lease_ttl_ms": 60000});
    assert_eq!(
        send(&app, reqwest::Method::PUT, sub, spec).await.status(),
        StatusCode::CREATED
    );
    let r = send(
        &app,
        reqwest::Method::POST,
        &format!("{sub}/streams"),
        json!({"streams": ["jobs/b"]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .http
        .delete(app.url(&format!("{sub}/streams/jobs%2Fb")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let claim_url = app.url(&format!("{sub}/claim"));
    let claim = |worker: &'static str| {
        app.http
            .post(&claim_url)
            .json(&json!({"worker": worker}))
            .send()
    };
    assert_eq!(
        claim("w1").await.unwrap().status(),
        StatusCode::NO_CONTENT,
        "no work yet"
    );

    app.http
        .put(app.url("/v1/stream/jobs/a"))
        .body("job")
        .send()
        .await
        .unwrap();
    eventually(|| async {
        let events: Vec<Value> = app
            .http
            .get(app.url("/v1/stream/wake/pool"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        events.iter().any(|e| e["subscription_id"] == "p1")
    })
    .await;
    let r = claim("w1").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let c: Value = r.json().await.unwrap();
    assert_eq!(
        c["streams"].as_array().unwrap().len(),
        1,
        "jobs/b was unlinked"
    );
    assert_eq!(c["streams"][0]["link_type"], "explicit");
    let r = claim("w2").await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let busy: Value = r.json().await.unwrap();
    assert_eq!(busy["error"]["code"], "ALREADY_CLAIMED");
    assert_eq!(busy["error"]["current_holder"], "w1");

    let ack = json!({"wake_id": c["wake_id"], "generation": c["generation"],
                     "acks": [{"stream": "jobs/a", "offset": offset(1)}], "done": true});
    let post = |path: &str, token: &str, body: &Value| {
        app.http
            .post(app.url(&format!("{sub}/{path}")))
            .bearer_auth(token)
            .json(body)
            .send()
    };
    let token = c["token"].as_str().unwrap().to_string();
    let r = post("ack", &token, &ack).await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"ok": true, "next_wake": false})
    );
    assert_eq!(
        claim("w2").await.unwrap().status(),
        StatusCode::NO_CONTENT,
        "everything acknowledged"
    );

    app.http
        .post(app.url("/v1/stream/jobs/a"))
        .header("content-type", "application/octet-stream")
        .body("more")
        .send()
        .await
        .unwrap();
    // The append opens a new wake in the background; claim until it is there (bounded).
    let mut c2 = Value::Null;
    for _ in 0..200 {
        let r = claim("w2").await.unwrap();
        if r.status() == StatusCode::OK {
            c2 = r.json().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(c2["generation"].as_i64() > c["generation"].as_i64());
    let release = json!({"wake_id": c2["wake_id"], "generation": c2["generation"]});
    let token2 = c2["token"].as_str().unwrap().to_string();
    assert_eq!(
        post("release", &token2, &release).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post("release", &token2, &release).await.unwrap().status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        claim("w3").await.unwrap().status(),
        StatusCode::OK,
        "a released wake can be claimed again"
    );
}
