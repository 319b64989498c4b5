//! Streams: SSE delivery, ordering, resume, long-poll, close.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn sse_delivers_records_then_end() {
    let app = spawn_app().await;
    app.create_run("r1").await;
    let mut sse = app.sse("/v1/workflows/r1/streams/out", None).await;
    // Sent as raw text: the records must come back byte-exact (key order kept).
    let r = app
        .http
        .post(app.url("/v1/workflows/r1/streams/out"))
        .body(r#"[{"b":1,"a":2}, "two\nlines"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), r#"{"first_offset":0,"next":2}"#);
    let r = app
        .http
        .post(app.url("/v1/workflows/r1/streams/out/close"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let evs = collect_events(&mut sse, 3, Duration::from_secs(10)).await;
    assert_eq!(evs.len(), 3);
    assert_eq!(
        (evs[0].id.as_str(), evs[0].data.as_str()),
        ("0", r#"{"b":1,"a":2}"#)
    );
    assert_eq!(
        (evs[1].id.as_str(), evs[1].data.as_str()),
        ("1", r#""two\nlines""#)
    );
    assert_eq!(evs[2].event, "end");
}
