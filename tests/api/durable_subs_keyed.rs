//! Durable Streams subscriptions on a server with API keys: management and `claim` take the
//! API key; `ack`, `release` and webhook `callback` take the wake's own token as the bearer
//! credential (it is the proof of holding the wake), so they work with keys on.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::durable::offset;
use crate::helpers::*;

const KEY: &str = "test-key-0123456789";

#[tokio::test]
async fn pull_wake_callbacks_work_on_a_keyed_server() {
    let app = spawn_app_with(|c| c.api_keys = vec![KEY.into()]).await;
    let with_key =
        |m: reqwest::Method, path: &str| app.http.request(m, app.url(path)).bearer_auth(KEY);
    let r = with_key(reqwest::Method::PUT, "/v1/stream/wake/pool")
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let sub = "/v1/stream/__ds/subscriptions/p1";
    let spec = json!({"type": "pull-wake", "streams": ["jobs/a"], "wake_stream": "wake/pool",
                      "lease_ttl_ms": 60000});
    let r = app.http.put(app.url(sub)).json(&spec).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "management needs the key"
    );
    let r = with_key(reqwest::Method::PUT, sub)
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    with_key(reqwest::Method::PUT, "/v1/stream/jobs/a")
        .body("job")
        .send()
        .await
        .unwrap();
    let mut c = Value::Null;
    for _ in 0..200 {
        let r = with_key(reqwest::Method::POST, &format!("{sub}/claim"))
            .json(&json!({"worker": "w1"}))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            c = r.json().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let token = c["token"].as_str().expect("a claimed wake").to_string();
    let release = json!({"wake_id": c["wake_id"], "generation": c["generation"]});
    // The API key is not the wake's token: fenced.
    let r = with_key(reqwest::Method::POST, &format!("{sub}/release"))
        .json(&release)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let ack = json!({"wake_id": c["wake_id"], "generation": c["generation"],
                     "acks": [{"stream": "jobs/a", "offset": offset(1)}], "done": true});
    let r = app
        .http
        .post(app.url(&format!("{sub}/ack")))
        .bearer_auth(&token)
        .json(&ack)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // Without any credential, a callback is refused before it reaches the subscription.
    let r = app
        .http
        .post(app.url(&format!("{sub}/callback")))
        .json(&ack)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
