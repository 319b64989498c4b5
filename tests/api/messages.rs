//! Messages: stored until consumed, deduplicated by idempotency key.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn idempotency_key_dedupes_and_message_waits_for_a_receiver() {
    let app = spawn_app().await;
    app.create_run("r").await;
    let send = |body: Value| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/v1/workflows/r/messages"))
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let m = json!({"topic": "approval", "body": {"approved": true}, "idempotency_key": "click-1"});
    let r1 = send(m.clone()).await;
    assert_eq!(r1.status(), 202);
    let b1: Value = r1.json().await.unwrap();
    assert_eq!(b1["duplicate"], json!(false));
    let b2: Value = send(m.clone()).await.json().await.unwrap();
    assert_eq!(
        b2,
        json!({"message_id": b1["message_id"], "duplicate": true})
    );
    // The same key with another body is a conflict, not a silent no-op.
    let r3 = send(
        json!({"topic": "approval", "body": {"approved": false}, "idempotency_key": "click-1"}),
    )
    .await;
    assert_eq!(r3.status(), 409);
    // Without a key every send is a new message.
    send(json!({"topic": "approval", "body": 1})).await;
    send(json!({"topic": "approval", "body": 1})).await;
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT topic, idempotency_key FROM flowgate.messages WHERE consumed_at IS NULL ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3, "sent before anyone waits: kept, unconsumed");
    // The SQL function dedupes the same way.
    let id: i64 = sqlx::query_scalar(
        "SELECT flowgate.send('r', 'approval', '{\"approved\": true}'::jsonb, 'click-1')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(json!(id), b1["message_id"]);
}
