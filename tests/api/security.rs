//! Security: API keys, run tokens (query, cookie, EventSource), approval links, limits, CORS.

use std::time::Duration;

use serde_json::{json, Value};

use flowgate::auth::token::{ApprovalClaims, Rights, Signer};

use crate::helpers::*;

const KEY: &str = "test-key-0123456789";
const SECRET: &str = "test-secret-0123456789abcdef";

async fn keyed() -> TestApp {
    spawn_app_with(|c| {
        c.api_keys = vec![KEY.into()];
        c.secret = Some(SECRET.into());
    })
    .await
}

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

async fn status_and_code(r: reqwest::Response) -> (u16, String) {
    let s = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (s, body["error"]["code"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn non_loopback_bind_without_keys_refuses_to_start() {
    let db = fresh_database().await;
    let config = flowgate::Config::new(&db, "0.0.0.0:0".parse().unwrap());
    let err = flowgate::start(config).await.err().expect("refused");
    assert!(err.to_string().contains("FLOWGATE_API_KEYS"), "{err}");
}

#[tokio::test]
async fn api_keys_guard_producer_and_admin_endpoints() {
    let app = keyed().await;
    let token = create(&app, "r").await;
    let post = |auth: Option<&str>| {
        let mut req = app
            .http
            .post(app.url("/v1/workflows/r/streams/s"))
            .json(&[1]);
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        req.send()
    };
    assert_eq!(
        status_and_code(post(None).await.unwrap()).await,
        (401, "unauthorized".into())
    );
    assert_eq!(
        status_and_code(post(Some("wrong-key")).await.unwrap()).await,
        (401, "unauthorized".into())
    );
    assert_eq!(
        status_and_code(post(Some(&token)).await.unwrap()).await,
        (403, "forbidden".into())
    );
    assert_eq!(post(Some(KEY)).await.unwrap().status(), 200);
    let m = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(m.status(), 401);
    let m = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !m.contains(KEY) && !m.contains(SECRET),
        "secrets never appear in metrics"
    );
    // Health and the page stay public.
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.http.get(app.url("/")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn run_tokens_read_one_run_only() {
    let app = keyed().await;
    let token_a = create(&app, "a").await;
    let _token_b = create(&app, "b").await;
    for id in ["a", "b"] {
        let r = app
            .http
            .post(app.url(&format!("/v1/workflows/{id}/streams/s")))
            .bearer_auth(KEY)
            .json(&[id])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let poll = |run: &str, q: &str| {
        app.http
            .get(app.url(&format!(
                "/v1/workflows/{run}/streams/s/poll?from=0&timeout=1{q}"
            )))
            .send()
    };
    let ok = poll("a", &format!("&token={token_a}")).await.unwrap();
    assert_eq!(ok.status(), 200);
    let set_cookie = ok
        .headers()
        .get("set-cookie")
        .expect("cookie for EventSource")
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.contains("Path=/v1/workflows/a") && set_cookie.contains("HttpOnly"));
    assert_eq!(
        status_and_code(poll("b", &format!("&token={token_a}")).await.unwrap()).await,
        (403, "forbidden".into())
    );
    assert_eq!(
        status_and_code(poll("a", "").await.unwrap()).await,
        (401, "unauthorized".into())
    );
    let mut tampered = token_a.clone();
    tampered.replace_range(10..11, if &tampered[10..11] == "A" { "B" } else { "A" });
    let (s, code) = status_and_code(poll("a", &format!("&token={tampered}")).await.unwrap()).await;
    assert_eq!((s, code.as_str()), (401, "unauthorized"));
    let expired = Signer::new(SECRET.as_bytes()).run_token("a", Rights::read(-5));
    assert_eq!(
        status_and_code(poll("a", &format!("&token={expired}")).await.unwrap()).await,
        (401, "token_expired".into())
    );
    let other_secret = Signer::new(b"someone else").run_token("a", Rights::read(60));
    assert_eq!(
        poll("a", &format!("&token={other_secret}"))
            .await
            .unwrap()
            .status(),
        401
    );
    // The cookie works alone, as EventSource sends it.
    let r = app
        .http
        .get(app.url("/v1/workflows/a/streams/s/poll?from=0&timeout=1"))
        .header("cookie", format!("flowgate_token={token_a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // SSE with ?token= through an independent parser.
    let mut sse = app
        .sse(&format!("/v1/workflows/a/streams/s?token={token_a}"), None)
        .await;
    let evs = collect_events(&mut sse, 1, Duration::from_secs(5)).await;
    assert_eq!(evs[0].data, "\"a\"");
    // The error bodies never echo the credential.
    let body = poll("b", &format!("&token={token_a}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!body.contains(&token_a));
}

#[tokio::test]
async fn approval_links_are_single_use_and_tamper_proof() {
    let app = keyed().await;
    create(&app, "r").await;
    let minted: Value = app
        .http
        .post(app.url("/v1/workflows/r/approval-links"))
        .bearer_auth(KEY)
        .json(&json!({"topic": "approval", "approvers": ["alice", "bob"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alice = &minted["links"][0];
    let bob = &minted["links"][1];
    let approve = alice["approve_url"].as_str().unwrap();
    let reject = alice["reject_url"].as_str().unwrap();
    // Describing a link has no side effect.
    let d: Value = app
        .http
        .get(app.url(approve))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (d["decision"].as_str(), &d["used"]),
        (Some("approve"), &Value::Null)
    );
    let used = |url: String, comment: &str| {
        let http = app.http.clone();
        let body = json!({"comment": comment});
        async move { http.post(url).json(&body).send().await.unwrap() }
    };
    let first: Value = used(app.url(approve), "ship it")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (first["status"].as_str(), first["decision"].as_str()),
        (Some("recorded"), Some("approve"))
    );
    let again: Value = used(app.url(approve), "twice").await.json().await.unwrap();
    assert_eq!(
        (again["status"].as_str(), again["decision"].as_str()),
        (Some("already_decided"), Some("approve"))
    );
    let other: Value = used(app.url(reject), "changed my mind")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (other["status"].as_str(), other["decision"].as_str()),
        (Some("already_decided"), Some("approve"))
    );
    // A reject link cannot be turned into an approve link: the decision is signed.
    let tampered = tamper_decision(reject);
    assert_eq!(
        status_and_code(used(app.url(&tampered), "").await).await,
        (403, "invalid_link".into())
    );
    // Expired links are refused.
    let claims = ApprovalClaims {
        run: "r".into(),
        topic: "approval".into(),
        decision: "approve".into(),
        approver: "carol".into(),
        nonce: "n-expired".into(),
        exp: chrono::Utc::now().timestamp() - 1,
        key: None,
    };
    let expired = format!(
        "/v1/approvals/{}",
        Signer::new(SECRET.as_bytes()).sign("approval", &claims)
    );
    assert_eq!(
        status_and_code(used(app.url(&expired), "").await).await,
        (410, "link_expired".into())
    );
    // Bob's links are separate (N-of-M): his rejection is recorded too.
    let b: Value = used(app.url(bob["reject_url"].as_str().unwrap()), "no")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b["status"], json!("recorded"));
    let msgs: Vec<(Value,)> =
        sqlx::query_as("SELECT body FROM flowgate.messages WHERE topic = 'approval' ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let bodies: Vec<Value> = msgs.into_iter().map(|m| m.0).collect();
    assert_eq!(
        bodies,
        vec![
            json!({"approved": true, "comment": "ship it", "approver": "alice"}),
            json!({"approved": false, "comment": "no", "approver": "bob"})
        ],
        "exactly one decision per approver reaches the workflow"
    );
}

fn tamper_decision(url: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    let token = url.trim_start_matches("/v1/approvals/");
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let claims = String::from_utf8(B64.decode(&parts[1]).unwrap())
        .unwrap()
        .replace("\"reject\"", "\"approve\"");
    parts[1] = B64.encode(claims);
    format!("/v1/approvals/{}", parts.join("."))
}

#[tokio::test]
async fn rate_limit_per_key_and_streams_per_client() {
    let app = spawn_app_with(|c| {
        c.api_keys = vec![KEY.into()];
        c.rate_limit = 2;
        c.max_sse_per_client = 2;
    })
    .await;
    create(&app, "r").await;
    let mut limited = None;
    for _ in 0..20 {
        let r = app
            .http
            .get(app.url("/v1/workflows/r/events"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("429 after the burst");
    assert!(r.headers().get("retry-after").is_some());
    // Streams per client: two open, the third refused.
    let app2 = spawn_app_with(|c| c.max_sse_per_client = 2).await;
    app2.create_run("r").await;
    let _a = app2.sse("/v1/workflows/r/streams/s", None).await;
    let _b = app2.sse("/v1/workflows/r/streams/s", None).await;
    let r = app2
        .http
        .get(app2.url("/v1/workflows/r/streams/s"))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_code(r).await, (429, "too_many_streams".into()));
}

#[tokio::test]
async fn cors_never_combines_any_origin_with_credentials() {
    let app = spawn_app_with(|c| c.cors_origins = vec!["http://app.example".into()]).await;
    let pre = |origin: &str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/v1/workflows/r/live"))
            .header("origin", origin.to_string())
            .header("access-control-request-method", "GET")
            .send()
    };
    let r = pre("http://app.example").await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    let r = pre("http://evil.example").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let any = spawn_app_with(|c| c.cors_origins = vec!["*".into()]).await;
    let r = any
        .http
        .request(reqwest::Method::OPTIONS, any.url("/v1/workflows/r/live"))
        .header("origin", "http://x.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
}
