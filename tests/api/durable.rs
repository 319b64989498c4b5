//! Durable Streams protocol (`/v1/stream/…`): offsets, ETags and headers, producers,
//! delete-then-recreate, expiry and restarts. Live reads are in `durable_live.rs`.

use reqwest::StatusCode;

use crate::helpers::*;

/// The protocol offset after `n` appends.
pub fn offset(n: i64) -> String {
    format!("0000000000000000_{n:016}")
}

/// A response header as text.
pub fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn bytes_round_trip_with_offsets_etag_and_headers() {
    let app = spawn_app().await;
    let url = app.url("/v1/stream/a/b");
    let r = app.http.put(&url).body(&b"\0one"[..]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "stream-next-offset").unwrap(), offset(1));
    assert_eq!(
        header(&r, "content-type").unwrap(),
        "application/octet-stream"
    );
    assert!(header(&r, "location").unwrap().ends_with("/v1/stream/a/b"));
    assert_eq!(header(&r, "x-content-type-options").unwrap(), "nosniff");
    let r = app
        .http
        .post(&url)
        .header("content-type", "application/octet-stream")
        .body(&b"\xfftwo"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "stream-next-offset").unwrap(), offset(2));

    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "stream-up-to-date").as_deref(), Some("true"));
    let etag = header(&r, "etag").unwrap();
    assert!(header(&r, "cache-control").unwrap().starts_with("public"));
    assert_eq!(
        header(&r, "content-disposition").as_deref(),
        Some("attachment")
    );
    assert_eq!(&r.bytes().await.unwrap()[..], b"\0one\xfftwo");
    // At the tail of an open stream nothing may be cached: the next append would be hidden.
    let r = app
        .http
        .get(format!("{url}?offset={}", offset(2)))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "cache-control").as_deref(), Some("no-cache"));
    let r = app
        .http
        .get(format!("{url}?offset={}", offset(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(&r.bytes().await.unwrap()[..], b"\xfftwo");
    let r = app
        .http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    for bad in [
        "9999999999999999_9999999999999999",
        "1",
        "x",
        "",
        offset(3).as_str(),
    ] {
        let r = app
            .http
            .get(format!("{url}?offset={bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "offset {bad:?}");
    }
    let r = app
        .http
        .head(app.url("/v1/stream/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn producers_deduplicate_and_fence() {
    let app = spawn_app().await;
    let url = app.url("/v1/stream/p");
    app.http
        .put(&url)
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    let send = |epoch: &str, seq: &str, body: &'static str| {
        app.http
            .post(&url)
            .header("content-type", "text/plain")
            .header("producer-id", "w1")
            .header("producer-epoch", epoch)
            .header("producer-seq", seq)
            .body(body)
            .send()
    };
    assert_eq!(send("0", "0", "a").await.unwrap().status(), StatusCode::OK);
    assert_eq!(send("0", "1", "b").await.unwrap().status(), StatusCode::OK);
    let dup = send("0", "0", "a").await.unwrap();
    assert_eq!(dup.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&dup, "producer-seq").as_deref(), Some("1"));
    let gap = send("0", "5", "c").await.unwrap();
    assert_eq!(gap.status(), StatusCode::CONFLICT);
    assert_eq!(header(&gap, "producer-expected-seq").as_deref(), Some("2"));
    assert_eq!(send("1", "0", "c").await.unwrap().status(), StatusCode::OK);
    let stale = send("0", "2", "z").await.unwrap();
    assert_eq!(stale.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&stale, "producer-epoch").as_deref(), Some("1"));
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "abc");
}

#[tokio::test]
async fn delete_then_recreate_is_isolated() {
    let app = spawn_app().await;
    let url = app.url("/v1/stream/re");
    app.http.put(&url).body("old").send().await.unwrap();
    let old = app.http.get(&url).send().await.unwrap();
    let old_etag = header(&old, "etag").unwrap();
    assert_eq!(
        app.http.delete(&url).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.http.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let r = app.http.put(&url).body("new").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .http
        .get(&url)
        .header("if-none-match", &old_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "an old ETag never matches");
    assert_eq!(r.text().await.unwrap(), "new");
}

/// Streams, producer state and offsets live in Postgres: a restarted server continues them.
#[tokio::test]
async fn streams_survive_a_restart() {
    let mut app = spawn_app().await;
    let url = app.url("/v1/stream/keep");
    app.http
        .put(&url)
        .header("content-type", "text/plain")
        .body("one")
        .send()
        .await
        .unwrap();
    app.stop().await;
    let app = spawn_on(&app.db_url, |_| {}).await;
    let url = app.url("/v1/stream/keep");
    let r = app
        .http
        .post(&url)
        .header("content-type", "text/plain")
        .body("two")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "stream-next-offset").unwrap(), offset(2));
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "onetwo");
}

/// An expired stream answers 404 at once, its path can be re-created, and the sweep drops
/// expired rows.
#[tokio::test]
async fn expired_streams_vanish_and_are_swept() {
    let app = spawn_app().await;
    let url = app.url("/v1/stream/old");
    let r = app
        .http
        .put(&url)
        .header("stream-expires-at", "2000-01-01T00:00:00Z")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        app.http.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.http.head(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let r = app.http.put(&url).body("y").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "the path is free again");
    assert_eq!(
        app.http
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "y"
    );

    app.http
        .put(app.url("/v1/stream/gone"))
        .header("stream-expires-at", "2000-01-01T00:00:00+02:00")
        .send()
        .await
        .unwrap();
    let store = &app.app.as_ref().unwrap().state.store;
    assert_eq!(store.ds_sweep().await.unwrap(), 1);
    let left: Vec<(String,)> = sqlx::query_as("SELECT path FROM flowgate.ds_streams")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, vec![("old".to_string(),)]);

    let r = app
        .http
        .put(app.url("/v1/stream/both"))
        .header("stream-ttl", "60")
        .header("stream-expires-at", "2030-01-01T00:00:00Z")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
