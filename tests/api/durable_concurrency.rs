//! Durable Streams appends under concurrency: eight producers on one stream share
//! transactions, yet every append gets its own offset, the stream reads back byte-exact as
//! the appends in offset order, each producer's appends land in its sequence order, and an
//! append refused inside a batch (stale epoch, `Stream-Seq` regression, wrong content type,
//! closed stream) fails alone.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;

use crate::durable::header;
use crate::helpers::*;

const PRODUCERS: usize = 8;
const EACH: usize = 25;

/// The position a `Stream-Next-Offset` names.
fn position(r: &reqwest::Response) -> i64 {
    let o = header(r, "stream-next-offset").expect("stream-next-offset");
    o.split_once('_').unwrap().1.parse().unwrap()
}

/// Creates a stream of `ct` and opens an SSE reader on it from the start.
async fn stream_with_reader(
    app: &TestApp,
    path: &str,
    ct: &str,
) -> impl futures::Stream<Item = eventsource_stream::Event> + Unpin {
    let url = app.url(path);
    let r = app
        .http
        .put(&url)
        .header("content-type", ct)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let live = app
        .http
        .get(format!("{url}?offset=-1&live=sse"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    Box::pin(eventsource_stream::Eventsource::eventsource(live.bytes_stream()).map(|e| e.unwrap()))
}

/// The whole stream by catch-up reads, chunk after chunk (bounded).
async fn read_all(app: &TestApp, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = "-1".to_string();
    for _ in 0..100 {
        let r = app
            .http
            .get(app.url(&format!("{path}?offset={at}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let done = header(&r, "stream-up-to-date").is_some();
        at = header(&r, "stream-next-offset").unwrap();
        out.extend_from_slice(&r.bytes().await.unwrap());
        if done {
            return out;
        }
    }
    panic!("the stream never read up to date");
}

/// Reads SSE data events until `want` bytes of data arrived (bounded).
async fn sse_bytes(
    events: &mut (impl futures::Stream<Item = eventsource_stream::Event> + Unpin),
    want: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while out.len() < want {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(ev)) if ev.event == "data" => out.extend_from_slice(ev.data.as_bytes()),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    out
}

/// Transactions that wrote the stream's rows.
async fn writing_transactions(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM flowgate.ds_records")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Runs `PRODUCERS` sequential writers at once; each returns its (position, body) in order.
async fn run_producers(app: &TestApp, path: &str, with_id: bool) -> Vec<Vec<(i64, String)>> {
    let mut tasks = Vec::new();
    for w in 0..PRODUCERS {
        // One client per producer: separate connections, truly concurrent requests.
        let http = reqwest::Client::new();
        let url = app.url(path);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..EACH {
                // Varied lengths, so a misplaced or merged append cannot go unnoticed.
                let body = format!("<p{w}:{i}:{}>", "x".repeat((w * 7 + i) % 13));
                let mut req = http
                    .post(&url)
                    .header("content-type", "text/plain")
                    .body(body.clone());
                if with_id {
                    req = req
                        .header("producer-id", format!("p{w}"))
                        .header("producer-epoch", "0")
                        .header("producer-seq", i.to_string());
                }
                let r = req.send().await.unwrap();
                if with_id {
                    assert_eq!(r.status(), StatusCode::OK);
                    assert_eq!(header(&r, "producer-seq").unwrap(), i.to_string());
                } else {
                    assert_eq!(r.status(), StatusCode::NO_CONTENT);
                }
                mine.push((position(&r), body));
            }
            mine
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Checks offsets unique and contiguous, each producer's in its own order, and the stream
/// (catch-up and live) byte-exact as the appends in offset order.
async fn check_stream(
    app: &TestApp,
    path: &str,
    per_producer: Vec<Vec<(i64, String)>>,
    live: &mut (impl futures::Stream<Item = eventsource_stream::Event> + Unpin),
) {
    let mut by_offset = BTreeMap::new();
    for mine in per_producer {
        assert!(
            mine.windows(2).all(|p| p[0].0 < p[1].0),
            "a producer's appends land in its sequence order"
        );
        for (pos, body) in mine {
            assert!(by_offset.insert(pos, body).is_none(), "offset {pos} twice");
        }
    }
    let n = (PRODUCERS * EACH) as i64;
    assert_eq!(
        by_offset.keys().copied().collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "offsets are unique and contiguous"
    );
    let expected: String = by_offset.into_values().collect();
    assert_eq!(
        String::from_utf8(read_all(app, path).await).unwrap(),
        expected
    );
    let seen = sse_bytes(live, expected.len()).await;
    assert_eq!(String::from_utf8(seen).unwrap(), expected, "live reader");
}

#[tokio::test]
async fn eight_producers_on_one_stream_get_their_own_contiguous_offsets() {
    let app = spawn_app().await;
    for (path, with_id) in [("/v1/stream/plain", false), ("/v1/stream/idem", true)] {
        let mut live = stream_with_reader(&app, path, "text/plain").await;
        let per_producer = run_producers(&app, path, with_id).await;
        check_stream(&app, path, per_producer, &mut live).await;
    }
    // The appends shared transactions (one commit for many).
    let txns = writing_transactions(&app).await;
    assert!(
        txns < 2 * (PRODUCERS * EACH) as i64,
        "{txns} transactions for {} appends",
        2 * PRODUCERS * EACH
    );
    // Retries of every producer's last append are duplicates, answered without a write.
    for w in 0..PRODUCERS {
        let r = app
            .http
            .post(app.url("/v1/stream/idem"))
            .header("content-type", "text/plain")
            .header("producer-id", format!("p{w}"))
            .header("producer-epoch", "0")
            .header("producer-seq", (EACH - 1).to_string())
            .body("again")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(position(&r), (PRODUCERS * EACH) as i64);
    }
}

/// A POST of `body` as `ct` to `path` with extra headers.
async fn post(
    http: &reqwest::Client,
    url: String,
    ct: &'static str,
    body: String,
    headers: Vec<(&'static str, String)>,
) -> reqwest::Response {
    let mut req = http.post(url).header("content-type", ct).body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.send().await.unwrap()
}

/// Bad appends sent together with good ones: each gets its own error, and the good ones
/// around it commit (together) as if it had not been there.
#[tokio::test]
async fn a_refused_append_in_a_batch_fails_alone() {
    let app = spawn_app().await;
    let mut live = stream_with_reader(&app, "/v1/stream/mix", "text/plain").await;
    let _ = stream_with_reader(&app, "/v1/stream/j", "application/json").await;
    let r = app
        .http
        .put(app.url("/v1/stream/shut"))
        .header("stream-closed", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let mix = app.url("/v1/stream/mix");
    let fence = vec![
        ("producer-id", "f".to_string()),
        ("producer-epoch", "1".to_string()),
        ("producer-seq", "0".to_string()),
    ];
    let r = post(&app.http, mix.clone(), "text/plain", "<f>".into(), fence).await;
    assert_eq!(r.status(), StatusCode::OK);
    let seq = vec![("stream-seq", "m".to_string())];
    let r = post(&app.http, mix.clone(), "text/plain", "<m>".into(), seq).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let mut good = vec![(1, "<f>".to_string()), (2, "<m>".to_string())];

    const ROUNDS: usize = 12;
    for round in 0..ROUNDS {
        let http = reqwest::Client::new();
        let mut goods = Vec::new();
        for w in 0..PRODUCERS {
            let body = format!("<{w}:{round}>");
            let mut h = vec![
                ("producer-id", format!("p{w}")),
                ("producer-epoch", "0".to_string()),
                ("producer-seq", round.to_string()),
            ];
            if w == 0 {
                // One good writer also carries a rising Stream-Seq.
                h = vec![("stream-seq", format!("s{round:04}"))];
            }
            let req = post(&http, mix.clone(), "text/plain", body.clone(), h);
            goods.push(async move { (req.await, body) });
        }
        let p = |id: &str, e: &str, s: &str| {
            vec![
                ("producer-id", id.to_string()),
                ("producer-epoch", e.to_string()),
                ("producer-seq", s.to_string()),
            ]
        };
        let text = "text/plain";
        let bad = vec![
            // A fenced-off epoch, a Stream-Seq below the last, a producer gap.
            (
                post(&http, mix.clone(), text, "<stale>".into(), p("f", "0", "1")),
                403,
            ),
            (
                post(
                    &http,
                    mix.clone(),
                    text,
                    "<seq>".into(),
                    vec![("stream-seq", "a".into())],
                ),
                409,
            ),
            (
                post(&http, mix.clone(), text, "<gap>".into(), p("g", "0", "5")),
                409,
            ),
            // The wrong content type, a closed stream, invalid JSON, no such stream.
            (
                post(&http, mix.clone(), "application/json", "[1]".into(), vec![]),
                409,
            ),
            (
                post(&http, app.url("/v1/stream/shut"), text, "x".into(), vec![]),
                409,
            ),
            (
                post(
                    &http,
                    app.url("/v1/stream/j"),
                    "application/json",
                    "{nope".into(),
                    vec![],
                ),
                400,
            ),
            (
                post(&http, app.url("/v1/stream/none"), text, "x".into(), vec![]),
                404,
            ),
        ];
        let (statuses, goods) = tokio::join!(
            futures::future::join_all(bad.into_iter().map(|(f, want)| async move {
                let r = f.await;
                let status = r.status().as_u16();
                let body: serde_json::Value = r.json().await.unwrap();
                assert!(body["error"]["code"].is_string(), "a JSON error: {body}");
                (status, want)
            })),
            futures::future::join_all(goods)
        );
        for (got, want) in statuses {
            assert_eq!(got, want, "round {round}");
        }
        for (r, body) in goods {
            assert!(r.status().is_success(), "round {round}: {}", r.status());
            good.push((position(&r), body));
        }
    }
    good.sort();
    let n = good.len() as i64;
    assert_eq!(
        good.iter().map(|g| g.0).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "the good appends tile the stream"
    );
    let expected: String = good.into_iter().map(|g| g.1).collect();
    let back = read_all(&app, "/v1/stream/mix").await;
    assert_eq!(String::from_utf8(back).unwrap(), expected);
    let seen = sse_bytes(&mut live, expected.len()).await;
    assert_eq!(String::from_utf8(seen).unwrap(), expected, "live reader");
    let txns = writing_transactions(&app).await;
    assert!(txns < n, "{txns} transactions for {n} appends");
}
