//! The lease of a subscription's open wake (`flowgate.ds_subscriptions`) and its
//! acknowledged offsets (`flowgate.ds_sub_streams`). Every function runs in the caller's
//! transaction, which has locked the subscription ([`super::subscriptions::lock`]) and
//! checked the wake is the caller's.

use sqlx::PgConnection;

use crate::error::StoreError;

/// Moves subscription `id`'s acknowledged offset of stream `path` forward to `offset`.
pub async fn ack(
    conn: &mut PgConnection,
    id: &str,
    path: &str,
    offset: i64,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE flowgate.ds_sub_streams SET acked = greatest(acked, $3) WHERE sub_id = $1 AND path = $2",
        id,
        path,
        offset
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Extends the lease of subscription `id`'s open wake by its lease length from now.
pub async fn extend(conn: &mut PgConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE flowgate.ds_subscriptions
         SET lease_until = now() + make_interval(secs => lease_ttl_ms / 1000.0) WHERE id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends subscription `id`'s open wake.
pub async fn end_wake(conn: &mut PgConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE flowgate.ds_subscriptions
         SET wake_id = NULL, token = NULL, holder = NULL, lease_until = NULL WHERE id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives subscription `id`'s open wake to `worker` under `token`, leased from now.
pub async fn claim(
    conn: &mut PgConnection,
    id: &str,
    worker: &str,
    token: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE flowgate.ds_subscriptions
         SET holder = $2, token = $3, lease_until = now() + make_interval(secs => lease_ttl_ms / 1000.0)
         WHERE id = $1",
        id,
        worker,
        token
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes subscription `id`'s open wake back from its worker (the wake stays open).
pub async fn release(conn: &mut PgConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE flowgate.ds_subscriptions SET holder = NULL, token = NULL, lease_until = NULL WHERE id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}
