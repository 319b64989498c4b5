//! The page and its assets are served from the binary, at `/` and at every run's address.

use crate::helpers::*;

#[tokio::test]
async fn page_and_assets_are_embedded_and_served() {
    let app = spawn_app().await;
    for (path, kind, needle) in [
        ("/", "text/html", "/static/page.js"),
        ("/runs/some-run", "text/html", "/static/page.css"),
        ("/static/page.js", "text/javascript", "./run.js"),
        ("/static/run.js", "text/javascript", "/live"),
        ("/static/ui.js", "text/javascript", "export"),
        ("/static/page.css", "text/css", ".bar"),
    ] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        assert!(r.text().await.unwrap().contains(needle), "{path}");
    }
    let r = app
        .http
        .get(app.url("/static/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
