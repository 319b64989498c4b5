-- Durable Streams protocol (/v1/stream/*): streams addressed by URL path, with bytea
-- payloads, forks, sliding TTLs and idempotent producers. Append-only once landed.

-- One row per stream incarnation. `id` (not the path) keys rows and ETags, so a stream
-- deleted and re-created at the same path shares nothing with its predecessor. Appends lock
-- this row: offsets are gapless and commit in offset order.
CREATE TABLE flowgate.ds_streams (
    id           bigserial PRIMARY KEY,
    -- NULL once the stream left the namespace but its rows are still read by forks.
    path         text UNIQUE,
    content_type text    NOT NULL,
    -- Rows visible in this stream, inherited ones included: the next offset.
    tail         bigint  NOT NULL DEFAULT 0,
    closed       boolean NOT NULL DEFAULT false,
    ttl_seconds  bigint,
    expires_at   timestamptz,
    -- Last write; reads of TTL streams are recorded in ds_reads instead.
    touched_at   timestamptz NOT NULL DEFAULT now(),
    -- Last Stream-Seq (compared byte-wise in the server, never by collation).
    last_seq     bytea,
    -- The producer tuple whose append closed the stream (a retry of it is a duplicate).
    closed_by    text,
    closed_epoch bigint,
    closed_seq   bigint,
    -- Forks: rows 1..=fork_offset are read from the source chain.
    source_id    bigint REFERENCES flowgate.ds_streams (id),
    fork_offset  bigint,
    -- The fork request as given, for idempotent re-creation.
    fork_from    text,
    fork_at      bigint,
    fork_sub     bigint,
    -- Live forks reading this stream's rows.
    forks        integer NOT NULL DEFAULT 0,
    -- Deleted while forks exist: answers 410 and keeps its rows for them.
    deleted      boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ds_streams_expiry_idx ON flowgate.ds_streams (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE INDEX ds_streams_ttl_idx ON flowgate.ds_streams (id) WHERE ttl_seconds IS NOT NULL;

-- Row per append (per message in JSON mode); `seq` n is the row ending at offset n.
CREATE TABLE flowgate.ds_records (
    stream_id bigint NOT NULL REFERENCES flowgate.ds_streams (id) ON DELETE CASCADE,
    seq       bigint NOT NULL,
    payload   bytea  NOT NULL,
    PRIMARY KEY (stream_id, seq)
);

-- Last read of a stream with a sliding TTL. Kept apart from ds_streams so that a read never
-- waits behind an append's row lock, and never written for streams without a TTL.
CREATE TABLE flowgate.ds_reads (
    stream_id bigint PRIMARY KEY REFERENCES flowgate.ds_streams (id) ON DELETE CASCADE,
    read_at   timestamptz NOT NULL
);

-- Idempotent producer state, updated in the append's transaction.
CREATE TABLE flowgate.ds_producers (
    stream_id bigint NOT NULL REFERENCES flowgate.ds_streams (id) ON DELETE CASCADE,
    producer  text   NOT NULL,
    epoch     bigint NOT NULL,
    seq       bigint NOT NULL,
    PRIMARY KEY (stream_id, producer)
);

-- True if the stream has expired at the transaction's clock.
CREATE FUNCTION flowgate.ds_expired(s flowgate.ds_streams)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT (s.expires_at IS NOT NULL AND s.expires_at <= now())
        OR (s.ttl_seconds IS NOT NULL AND
            greatest(s.touched_at,
                     coalesce((SELECT read_at FROM flowgate.ds_reads WHERE stream_id = s.id),
                              s.touched_at))
            + make_interval(secs => s.ttl_seconds) <= now());
$$;

-- Removes a stream from the namespace. With live forks its rows stay (soft delete, path kept
-- when p_keep_path so the path answers 410); otherwise it is dropped, and every source left
-- deleted with no forks is dropped after it.
CREATE FUNCTION flowgate.ds_drop(p_id bigint, p_keep_path boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    cur bigint := p_id;
    src bigint;
    n   integer;
BEGIN
    SELECT forks INTO n FROM flowgate.ds_streams WHERE id = cur FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF n > 0 THEN
        UPDATE flowgate.ds_streams
        SET deleted = true, path = CASE WHEN p_keep_path THEN path END
        WHERE id = cur;
        RETURN;
    END IF;
    LOOP
        DELETE FROM flowgate.ds_streams WHERE id = cur RETURNING source_id INTO src;
        EXIT WHEN src IS NULL;
        UPDATE flowgate.ds_streams SET forks = forks - 1 WHERE id = src
        RETURNING forks INTO n;
        EXIT WHEN n > 0 OR NOT (SELECT deleted FROM flowgate.ds_streams WHERE id = src);
        cur := src;
    END LOOP;
END $$;

-- Subscriptions (reserved `__ds/subscriptions/{id}` API): a webhook or pull-wake consumer of
-- every stream matching `pattern` or linked explicitly. A wake is one round of work: its
-- generation and token fence callbacks from older rounds.
CREATE TABLE flowgate.ds_subscriptions (
    id           text PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('webhook', 'pull-wake')),
    pattern      text,
    webhook_url  text,
    wake_stream  text,
    lease_ttl_ms bigint NOT NULL,
    description  text,
    -- Base URL the subscription was created through (for callback and JWKS links).
    base_url     text NOT NULL,
    generation   bigint NOT NULL DEFAULT 0,
    wake_id      text,
    token        text,
    holder       text,
    lease_until  timestamptz,
    -- Activity arrived while a wake was open: another wake follows.
    pending      boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Streams a subscription follows and how far its consumer acknowledged each.
CREATE TABLE flowgate.ds_sub_streams (
    sub_id    text   NOT NULL REFERENCES flowgate.ds_subscriptions (id) ON DELETE CASCADE,
    path      text   NOT NULL,
    link_type text   NOT NULL CHECK (link_type IN ('pattern', 'explicit')),
    acked     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (sub_id, path)
);

-- The Ed25519 key that signs webhook requests (one per database, shared by all processes).
CREATE TABLE flowgate.ds_signing_keys (
    kid        text PRIMARY KEY,
    secret     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
