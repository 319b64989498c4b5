//! Values in = values out, as a property: generated JSON texts (huge and tiny numbers, lone
//! surrogates, NUL, deep nesting, characters from every Unicode plane, nested mixes) are
//! written through every producer (HTTP append, set and send; the SQL functions
//! `set_event` and `write_stream`; Durable Streams JSON mode) and read through every reader
//! (SSE follow, long-poll, `/live`, all events, the event long-poll, Durable Streams reads).
//!
//! Every write is accepted or refused with a 4xx; every accepted value reads back from every
//! reader with a 200 and a complete body, byte for byte: stream records as written over
//! HTTP, values stored as jsonb (events, SQL-written records) as Postgres' own text of them.

use std::time::Duration;

use futures::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::helpers::*;

fn string_literal(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A character from any of the 17 Unicode planes.
fn any_plane_char() -> impl Strategy<Value = char> {
    (0u32..17, any::<u16>()).prop_filter_map("a scalar value", |(plane, low)| {
        char::from_u32((plane << 16) | low as u32)
    })
}

fn leaf() -> impl Strategy<Value = String> {
    let odd_numbers = prop::sample::select(vec![
        "1e400",
        "-1e400",
        "1e-400",
        "4.9e-324",
        "1.7976931348623157e308",
        "-0",
        "1E+2",
        "123456789012345678901234567890",
        "0.1",
        "-9223372036854775809",
    ]);
    let odd_strings = prop::sample::select(vec![
        r#""\ud800""#,
        r#""\udfff x""#,
        r#""\u0000""#,
        r#""a\u0000b""#,
        r#""\ud83d\ude00""#,
        r#""\u2028\r\n""#,
    ]);
    prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        odd_numbers.prop_map(str::to_string),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::to_string(&f).unwrap()),
        prop::collection::vec(any_plane_char(), 0..12)
            .prop_map(|c| string_literal(&c.into_iter().collect::<String>())),
        odd_strings.prop_map(str::to_string),
        (1usize..200).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
    ]
}

fn json_text() -> impl Strategy<Value = String> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z\u{e9}\u{1f600}]{0,3}", inner), 0..4).prop_map(|kv| {
                let parts: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", string_literal(k)))
                    .collect();
                format!("{{{}}}", parts.join(","))
            }),
        ]
    })
}

/// Postgres' text of `text` as jsonb, or `None` if Postgres refuses it.
async fn canonical(app: &TestApp, text: &str) -> Option<String> {
    sqlx::query_scalar("SELECT $1::jsonb::text")
        .bind(text)
        .fetch_one(&app.pool)
        .await
        .ok()
}

async fn status_of(r: reqwest::RequestBuilder, what: &str) -> u16 {
    let r = r.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let s = r.status().as_u16();
    let body = r
        .text()
        .await
        .unwrap_or_else(|e| panic!("{what}: aborted body: {e}"));
    assert!(s < 500, "{what}: {s} {body}");
    s
}

/// GETs `path`: must be a 200 with a complete body.
async fn read(app: &TestApp, path: &str) -> String {
    let r = app.http.get(app.url(path)).send().await.unwrap();
    let s = r.status();
    let body = r
        .text()
        .await
        .unwrap_or_else(|e| panic!("{path}: aborted body: {e}"));
    assert_eq!(s, 200, "{path}: {body}");
    body
}

#[derive(Deserialize)]
struct Polled {
    records: Vec<Record>,
}
#[derive(Deserialize)]
struct Record {
    value: Box<RawValue>,
}
#[derive(Deserialize)]
struct Event {
    value: Box<RawValue>,
}

/// The first SSE frame of `event` on `path` whose data contains `marker`.
async fn sse_data(app: &TestApp, path: &str, event: &str, marker: &str) -> String {
    let mut s = app.sse(path, None).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(deadline, s.next())
            .await
            .unwrap_or_else(|_| panic!("{path}: no {event} frame in time"))
            .unwrap_or_else(|| panic!("{path}: the response ended early"));
        if ev.event == event && ev.data.contains(marker) {
            return ev.data;
        }
    }
}

/// Reads stream `key` of run `run` through every reader; each must give back `want`.
async fn read_record(app: &TestApp, run: &str, key: &str, want: &str) {
    let polled: Polled = serde_json::from_str(
        &read(
            app,
            &format!("/v1/workflows/{run}/streams/{key}/poll?timeout=1"),
        )
        .await,
    )
    .unwrap();
    assert_eq!(polled.records[0].value.get(), want, "poll");
    let sse = sse_data(
        app,
        &format!("/v1/workflows/{run}/streams/{key}"),
        "message",
        "",
    )
    .await;
    assert_eq!(sse, want, "SSE follow");
    let live = sse_data(app, &format!("/v1/workflows/{run}/live"), "record", key).await;
    let rec: Record = serde_json::from_str(&live).unwrap();
    assert_eq!(rec.value.get(), want, "/live");
    let ds: Vec<Box<RawValue>> = serde_json::from_str(
        &read(app, &format!("/v1/stream/workflows/{run}/{key}?offset=-1")).await,
    )
    .unwrap();
    assert_eq!(ds[0].get(), want, "Durable Streams read");
}

/// Reads event `key` of run `run` through every reader; each must give back `want`.
async fn read_event(app: &TestApp, run: &str, key: &str, want: &str) {
    let all: std::collections::HashMap<String, Event> =
        serde_json::from_str(&read(app, &format!("/v1/workflows/{run}/events")).await).unwrap();
    assert_eq!(all[key].value.get(), want, "events");
    let one: Event = serde_json::from_str(
        &read(app, &format!("/v1/workflows/{run}/events/{key}?timeout=1")).await,
    )
    .unwrap();
    assert_eq!(one.value.get(), want, "event long-poll");
    let live = sse_data(app, &format!("/v1/workflows/{run}/live"), "event", key).await;
    let ev: Event = serde_json::from_str(&live).unwrap();
    assert_eq!(ev.value.get(), want, "/live");
}

async fn check(app: &TestApp, n: usize, text: &str) {
    let run = format!("p{n}");
    app.create_run(&run).await;
    let json = |r: reqwest::RequestBuilder| r.header("content-type", "application/json");
    let canon = canonical(app, text).await;
    // HTTP append: stored as sent.
    let url = app.url(&format!("/v1/workflows/{run}/streams/http"));
    if status_of(json(app.http.post(url)).body(format!("[{text}]")), "append").await == 200 {
        read_record(app, &run, "http", text).await;
    }
    // HTTP set: stored as jsonb.
    let url = app.url(&format!("/v1/workflows/{run}/events/http"));
    if status_of(json(app.http.put(url)).body(text.to_string()), "set").await == 200 {
        read_event(
            app,
            &run,
            "http",
            canon.as_deref().expect("accepted by Postgres"),
        )
        .await;
    }
    // HTTP send: accepted or refused, never a 5xx.
    let url = app.url(&format!("/v1/workflows/{run}/messages"));
    let body = format!(r#"{{"topic":"t","body":{text}}}"#);
    status_of(json(app.http.post(url)).body(body), "send").await;
    // SQL producers: whatever Postgres accepts, every reader serves.
    if let Some(canon) = &canon {
        sqlx::query("SELECT flowgate.set_event($1, 'sql', $2::jsonb)")
            .bind(&run)
            .bind(text)
            .execute(&app.pool)
            .await
            .unwrap();
        read_event(app, &run, "sql", canon).await;
        sqlx::query("SELECT flowgate.write_stream($1, 'sql', $2::jsonb)")
            .bind(&run)
            .bind(text)
            .execute(&app.pool)
            .await
            .unwrap();
        read_record(app, &run, "sql", canon).await;
    }
    // Durable Streams JSON mode: stored as sent.
    let path = format!("/v1/stream/ds/{run}");
    let created = json(app.http.put(app.url(&path))).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let s = status_of(
        json(app.http.post(app.url(&path))).body(format!("[{text}]")),
        "DS append",
    )
    .await;
    if s < 300 {
        let back: Vec<Box<RawValue>> =
            serde_json::from_str(&read(app, &format!("{path}?offset=-1")).await).unwrap();
        assert_eq!(back[0].get(), text, "Durable Streams JSON read");
    }
}

#[test]
fn every_accepted_value_reads_back_from_every_reader() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_app());
    let cases = std::env::var("VALUE_PROPS_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(40);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let n = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&json_text(), |text| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            rt.block_on(check(&app, i, &text));
            Ok(())
        })
        .unwrap();
}
