//! Bad input: every case is a 4xx with a JSON error naming the problem, and changes nothing.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// One bad request and the error it must get.
struct Case {
    method: Method,
    path: String,
    body: Option<String>,
    headers: Vec<(&'static str, &'static str)>,
    status: u16,
    code: &'static str,
    /// The field the error must name, where the case checks it.
    field: Option<&'static str>,
}

fn case(method: Method, path: &str, body: Option<&str>, status: u16, code: &'static str) -> Case {
    Case {
        method,
        path: path.to_string(),
        body: body.map(str::to_string),
        headers: Vec::new(),
        status,
        code,
        field: None,
    }
}

impl Case {
    fn field(mut self, field: &'static str) -> Case {
        self.field = Some(field);
        self
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Case {
        self.headers.push((name, value));
        self
    }

    /// Sends the request; asserts the status, the error code, a message and the field.
    async fn check(&self, app: &TestApp) {
        let (method, path) = (&self.method, &self.path);
        let mut req = app.http.request(method.clone(), app.url(path));
        if let Some(b) = &self.body {
            req = req
                .body(b.clone())
                .header("content-type", "application/json");
        }
        for (k, v) in &self.headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), self.status, "{method} {path}");
        let v: Value = r
            .json()
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: JSON error body"));
        assert_eq!(v["error"]["code"], json!(self.code), "{method} {path}: {v}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        if let Some(f) = self.field {
            assert_eq!(v["error"]["field"], json!(f), "{method} {path}: {v}");
        }
    }
}

async fn stored(app: &TestApp) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM flowgate.workflows), (SELECT count(*) FROM flowgate.stream_records),
                (SELECT count(*) FROM flowgate.events), (SELECT count(*) FROM flowgate.messages)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_and_changes_nothing() {
    let app = spawn_app_with(|c| {
        c.max_body = 64 * 1024;
        c.max_value = 1024;
        c.max_batch = 10;
    })
    .await;
    app.create_run("r").await;
    app.append("r", "s", &[json!(1), json!(2)]).await;
    let before = stored(&app).await;
    let long = "k".repeat(129);
    let eleven = serde_json::to_string(&vec![1; 11]).unwrap();
    let big_value = serde_json::to_string(&vec!["x".repeat(2000)]).unwrap();
    let huge = serde_json::to_string(&vec!["y".repeat(100 * 1024)]).unwrap();
    let long_idempotency_key =
        format!("{{\"topic\":\"t\",\"body\":1,\"idempotency_key\":\"{long}\"}}");
    use Method as M;
    let (ok, stream) = ("/v1/workflows/r", "/v1/workflows/r/streams/s");
    let cases = [
        // Reads: names, offsets, timeouts and resume positions.
        case(
            M::GET,
            "/v1/workflows/bad%7Cid/streams/s",
            None,
            400,
            "invalid_field",
        )
        .field("id"),
        case(
            M::GET,
            &format!("{ok}/streams/{long}"),
            None,
            400,
            "invalid_field",
        )
        .field("key"),
        case(
            M::GET,
            "/v1/workflows/nope/streams/s",
            None,
            404,
            "run_not_found",
        ),
        case(
            M::GET,
            "/v1/workflows/nope/events",
            None,
            404,
            "run_not_found",
        ),
        case(
            M::GET,
            "/v1/workflows/nope/events/k?timeout=1",
            None,
            404,
            "run_not_found",
        ),
        case(
            M::GET,
            "/v1/workflows/nope/streams/s/poll?timeout=1",
            None,
            404,
            "run_not_found",
        ),
        case(
            M::GET,
            &format!("{stream}?from=99"),
            None,
            400,
            "offset_out_of_range",
        )
        .field("from"),
        case(
            M::GET,
            &format!("{stream}?from=-1"),
            None,
            400,
            "invalid_field",
        ),
        case(
            M::GET,
            &format!("{stream}/poll?from=abc"),
            None,
            400,
            "invalid_field",
        ),
        case(
            M::GET,
            &format!("{stream}/poll?timeout=soon"),
            None,
            400,
            "invalid_field",
        ),
        case(M::GET, stream, None, 400, "invalid_field")
            .header("last-event-id", "x7")
            .field("Last-Event-ID"),
        case(M::GET, stream, None, 400, "offset_out_of_range").header("last-event-id", "50"),
        case(
            M::GET,
            &format!("{ok}/events/k?after=1.5"),
            None,
            400,
            "invalid_field",
        ),
        // Appends: bodies, batch and value sizes.
        case(M::POST, stream, Some("[1, 2"), 400, "invalid_json"),
        case(M::POST, stream, Some("{\"a\":1}"), 400, "invalid_json"),
        case(M::POST, stream, Some("[]"), 400, "invalid_field"),
        case(M::POST, stream, Some(&eleven), 413, "batch_too_large"),
        case(M::POST, stream, Some(&big_value), 413, "value_too_large"),
        case(M::POST, stream, Some(&huge), 413, "body_too_large"),
        case(
            M::POST,
            "/v1/workflows/nope/streams/s",
            Some("[1]"),
            404,
            "run_not_found",
        ),
        case(
            M::POST,
            "/v1/workflows/nope/streams/s/close",
            None,
            404,
            "run_not_found",
        ),
        // Events and messages.
        case(
            M::PUT,
            &format!("{ok}/events/k"),
            Some("nope"),
            400,
            "invalid_json",
        ),
        case(
            M::PUT,
            "/v1/workflows/nope/events/k",
            Some("1"),
            404,
            "run_not_found",
        ),
        case(
            M::PUT,
            &format!("{ok}/events/{long}"),
            Some("1"),
            400,
            "invalid_field",
        ),
        case(
            M::POST,
            &format!("{ok}/messages"),
            Some("{\"topic\":\"a b\",\"body\":1}"),
            400,
            "invalid_field",
        )
        .field("topic"),
        case(
            M::POST,
            &format!("{ok}/messages"),
            Some("{\"topic\":\"t\"}"),
            400,
            "invalid_json",
        )
        .field("body"),
        case(
            M::POST,
            "/v1/workflows/nope/messages",
            Some("{\"topic\":\"t\",\"body\":1}"),
            404,
            "run_not_found",
        ),
        case(
            M::POST,
            &format!("{ok}/messages"),
            Some(&long_idempotency_key),
            400,
            "invalid_field",
        ),
        // Runs and routing.
        case(
            M::PUT,
            ok,
            Some("{\"workflow\":\"other\"}"),
            409,
            "conflict",
        ),
        case(M::PUT, "/v1/workflows/r2", Some("{}"), 400, "invalid_json"),
        case(M::GET, "/v1/nothing-here", None, 404, "not_found"),
        case(M::DELETE, stream, None, 405, "method_not_allowed"),
    ];
    for c in &cases {
        c.check(&app).await;
    }

    assert_eq!(
        stored(&app).await,
        before,
        "rejected requests stored nothing"
    );
}
