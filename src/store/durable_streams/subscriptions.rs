//! Subscriptions (`flowgate.ds_subscriptions`) and the streams they follow
//! (`flowgate.ds_sub_streams`): registration, links, lookups, and opening a wake. The
//! lease of an open wake is in [`super::leases`].

use sqlx::PgConnection;

use crate::error::StoreError;
use crate::store::Store;

/// A subscription row as the wake logic needs it.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Id.
    pub id: String,
    /// `webhook` or `pull-wake`.
    pub kind: String,
    /// Glob pattern.
    pub pattern: Option<String>,
    /// Webhook URL.
    pub webhook_url: Option<String>,
    /// Wake stream path.
    pub wake_stream: Option<String>,
    /// Lease length.
    pub lease_ttl_ms: i64,
    /// Base URL for links.
    pub base_url: String,
    /// Current wake generation.
    pub generation: i64,
    /// Open wake.
    pub wake_id: Option<String>,
    /// Token of the open wake (or claim).
    pub token: Option<String>,
    /// Worker holding a pull-wake claim.
    pub holder: Option<String>,
    /// Lease still valid.
    pub leased: bool,
    /// Activity during the open wake.
    pub pending: bool,
}

/// A [`Subscription`] statement: `$head` (ending in `SELECT` or `RETURNING`), the row's
/// columns, then `$tail`.
macro_rules! subscription_query {
    ($head:literal, $tail:literal; $($arg:expr),*) => {
        sqlx::query_as!(
            Subscription,
            $head + r#"id, kind, pattern, webhook_url, wake_stream, lease_ttl_ms, base_url,
                       generation, wake_id, token, holder,
                       coalesce(lease_until > now(), false) AS "leased!", pending"# + $tail,
            $($arg),*
        )
    };
}

/// A subscription's configuration, as registered.
#[derive(Debug, Clone)]
pub struct SubConfig<'a> {
    /// `webhook` or `pull-wake`.
    pub kind: &'a str,
    /// Glob pattern.
    pub pattern: Option<&'a str>,
    /// Webhook URL.
    pub webhook_url: Option<&'a str>,
    /// Wake stream path.
    pub wake_stream: Option<&'a str>,
    /// Lease length.
    pub lease_ttl_ms: i64,
    /// Description.
    pub description: Option<&'a str>,
}

/// A stream a subscription follows, with the stream's tail.
#[derive(Debug, Clone)]
pub struct SubStream {
    /// Stream path.
    pub path: String,
    /// `pattern` or `explicit`.
    pub link_type: String,
    /// Acknowledged offset.
    pub acked: i64,
    /// The stream's tail (`None`: no live stream at the path).
    pub tail: Option<i64>,
}

/// A subscription that may follow a stream: its pattern, and whether the stream is linked.
#[derive(Debug, Clone)]
pub struct SubMatch {
    /// Subscription id.
    pub id: String,
    /// Glob pattern.
    pub pattern: Option<String>,
    /// The stream is linked to it.
    pub linked: bool,
}

/// Locks subscription `id` in the caller's transaction.
pub async fn lock(conn: &mut PgConnection, id: &str) -> Result<Option<Subscription>, StoreError> {
    Ok(subscription_query!(
        "SELECT ",
        " FROM flowgate.ds_subscriptions WHERE id = $1 FOR UPDATE";
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// Opens a new wake (`wake_id`, `token`) on a locked, idle subscription; returns its row.
pub async fn open_wake(
    conn: &mut PgConnection,
    id: &str,
    wake_id: &str,
    token: &str,
) -> Result<Subscription, StoreError> {
    Ok(subscription_query!(
        "UPDATE flowgate.ds_subscriptions
           SET generation = generation + 1, wake_id = $2, token = $3, holder = NULL,
               lease_until = now() + make_interval(secs => lease_ttl_ms / 1000.0), pending = false
           WHERE id = $1
           RETURNING ",
        "";
        id,
        wake_id,
        token
    )
    .fetch_one(conn)
    .await?)
}

/// Links `path` to subscription `id` by its pattern (an existing link is kept).
pub async fn link_pattern(conn: &mut PgConnection, id: &str, path: &str) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO flowgate.ds_sub_streams (sub_id, path, link_type) VALUES ($1, $2, 'pattern')
         ON CONFLICT DO NOTHING",
        id,
        path
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks activity during subscription `id`'s open wake.
pub async fn mark_pending(conn: &mut PgConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE flowgate.ds_subscriptions SET pending = true WHERE id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Subscription `id`.
    pub async fn ds_subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        Ok(subscription_query!(
            "SELECT ",
            " FROM flowgate.ds_subscriptions WHERE id = $1";
            id
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// True if subscription `id` exists.
    pub async fn ds_subscription_exists(&self, id: &str) -> Result<bool, StoreError> {
        let found =
            sqlx::query_scalar!("SELECT id FROM flowgate.ds_subscriptions WHERE id = $1", id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// Registers subscription `id` (links for its pages start at `base_url`); false if the
    /// id is taken.
    pub async fn ds_add_subscription(
        &self,
        id: &str,
        c: &SubConfig<'_>,
        base_url: &str,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query!(
            "INSERT INTO flowgate.ds_subscriptions
               (id, kind, pattern, webhook_url, wake_stream, lease_ttl_ms, description, base_url)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
            id,
            c.kind,
            c.pattern,
            c.webhook_url,
            c.wake_stream,
            c.lease_ttl_ms,
            c.description,
            base_url,
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// True if subscription `id` exists with exactly this configuration.
    pub async fn ds_subscription_is(
        &self,
        id: &str,
        c: &SubConfig<'_>,
    ) -> Result<bool, StoreError> {
        let same = sqlx::query_scalar!(
            r#"SELECT kind = $2 AND pattern IS NOT DISTINCT FROM $3
                      AND webhook_url IS NOT DISTINCT FROM $4
                      AND wake_stream IS NOT DISTINCT FROM $5 AND lease_ttl_ms = $6
                      AND description IS NOT DISTINCT FROM $7 AS "same!"
               FROM flowgate.ds_subscriptions WHERE id = $1"#,
            id,
            c.kind,
            c.pattern,
            c.webhook_url,
            c.wake_stream,
            c.lease_ttl_ms,
            c.description,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(same == Some(true))
    }

    /// Removes subscription `id`; false if there was none.
    pub async fn ds_remove_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let n = sqlx::query!("DELETE FROM flowgate.ds_subscriptions WHERE id = $1", id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Links `streams` to subscription `id` explicitly.
    pub async fn ds_link(&self, id: &str, streams: &[String]) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO flowgate.ds_sub_streams (sub_id, path, link_type)
             SELECT $1, p, 'explicit' FROM unnest($2::text[]) AS p
             ON CONFLICT (sub_id, path) DO UPDATE SET link_type = 'explicit'",
            id,
            streams,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Unlinks stream `path` from subscription `id`; false if it was not linked.
    pub async fn ds_unlink(&self, id: &str, path: &str) -> Result<bool, StoreError> {
        let n = sqlx::query!(
            "DELETE FROM flowgate.ds_sub_streams WHERE sub_id = $1 AND path = $2",
            id,
            path
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// The streams subscription `id` follows, by path, with their tails.
    pub async fn ds_sub_streams(&self, id: &str) -> Result<Vec<SubStream>, StoreError> {
        Ok(sqlx::query_as!(
            SubStream,
            r#"SELECT l.path, l.link_type, l.acked, s.tail AS "tail?"
               FROM flowgate.ds_sub_streams l
               LEFT JOIN flowgate.ds_streams s ON s.path = l.path AND NOT s.deleted
               WHERE l.sub_id = $1 ORDER BY l.path"#,
            id
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every subscription, with whether stream `path` is linked to it.
    pub async fn ds_sub_matches(&self, path: &str) -> Result<Vec<SubMatch>, StoreError> {
        Ok(sqlx::query_as!(
            SubMatch,
            r#"SELECT s.id, s.pattern, EXISTS (SELECT 1 FROM flowgate.ds_sub_streams l
                                               WHERE l.sub_id = s.id AND l.path = $1) AS "linked!"
               FROM flowgate.ds_subscriptions s"#,
            path
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
