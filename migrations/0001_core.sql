-- Core schema: runs, steps, events, messages and streams, plus the SQL functions that let
-- any language with a Postgres connection publish. Append-only: never edit once landed.

CREATE SCHEMA IF NOT EXISTS flowgate;

-- One row per workflow run. `event_version` is the run's event clock: every event write
-- bumps it under this row's lock, so versions commit in the order they were handed out.
CREATE TABLE flowgate.workflows (
    id            text PRIMARY KEY,
    workflow      text NOT NULL,
    status        text NOT NULL DEFAULT 'PENDING'
                  CHECK (status IN ('ENQUEUED', 'PENDING', 'SUCCESS', 'ERROR', 'CANCELLED')),
    input         jsonb,
    output        jsonb,
    error         jsonb,
    queue         text,
    executor_id   text,
    parent_id     text,
    attempts      integer NOT NULL DEFAULT 0,
    external      boolean NOT NULL DEFAULT false,
    event_version bigint  NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflows_status_idx ON flowgate.workflows (status, created_at);
CREATE INDEX workflows_created_idx ON flowgate.workflows (created_at DESC, id DESC);

-- Recorded outcome of each completed step (and of recorded operations such as recv).
CREATE TABLE flowgate.steps (
    workflow_id text    NOT NULL REFERENCES flowgate.workflows (id) ON DELETE CASCADE,
    step        integer NOT NULL,
    name        text    NOT NULL,
    output      jsonb,
    error       jsonb,
    started_at  timestamptz,
    finished_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, step)
);

-- Latest value per (run, key).
CREATE TABLE flowgate.events (
    workflow_id text   NOT NULL REFERENCES flowgate.workflows (id) ON DELETE CASCADE,
    key         text   NOT NULL,
    value       jsonb  NOT NULL,
    version     bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, key)
);
CREATE INDEX events_version_idx ON flowgate.events (workflow_id, version);

-- Messages wait here until a workflow consumes them (consumed_at is set exactly once).
CREATE TABLE flowgate.messages (
    id              bigserial PRIMARY KEY,
    workflow_id     text  NOT NULL REFERENCES flowgate.workflows (id) ON DELETE CASCADE,
    topic           text  NOT NULL,
    body            jsonb NOT NULL,
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    consumed_at     timestamptz,
    UNIQUE (workflow_id, idempotency_key)
);
CREATE INDEX messages_pending_idx ON flowgate.messages (workflow_id, topic, id)
    WHERE consumed_at IS NULL;

-- One row per stream: the next offset to hand out and the closed flag. Appends lock this
-- row, so offsets are gapless and commit in offset order.
CREATE TABLE flowgate.streams (
    workflow_id  text    NOT NULL REFERENCES flowgate.workflows (id) ON DELETE CASCADE,
    key          text    NOT NULL,
    next_offset  bigint  NOT NULL DEFAULT 0,
    closed       boolean NOT NULL DEFAULT false,
    content_type text    NOT NULL DEFAULT 'application/json',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, key)
);

-- The records, as the exact bytes that were appended.
CREATE TABLE flowgate.stream_records (
    workflow_id text   NOT NULL,
    key         text   NOT NULL,
    "offset"    bigint NOT NULL,
    payload     bytea  NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, key, "offset"),
    FOREIGN KEY (workflow_id, key) REFERENCES flowgate.streams (workflow_id, key) ON DELETE CASCADE
);

-- Wake-up hint: `origin|kind|run|key|position`. Never a value; ids and keys are at most
-- 128 characters, so a payload stays far below NOTIFY's 8000-byte limit.
CREATE FUNCTION flowgate.notify(p_kind text, p_wf text, p_key text, p_pos bigint)
RETURNS void LANGUAGE sql AS $$
    SELECT pg_notify('flowgate', 'sql|' || p_kind || '|' || p_wf || '|' || p_key || '|' || p_pos);
$$;

-- Creates the record of an externally-run workflow; true if it was created now.
CREATE FUNCTION flowgate.ensure_run(p_wf text, p_workflow text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    existing text;
BEGIN
    INSERT INTO flowgate.workflows (id, workflow, status, external)
    VALUES (p_wf, p_workflow, 'PENDING', true)
    ON CONFLICT (id) DO NOTHING;
    IF FOUND THEN
        RETURN true;
    END IF;
    SELECT workflow INTO existing FROM flowgate.workflows WHERE id = p_wf;
    IF existing IS DISTINCT FROM p_workflow THEN
        RAISE EXCEPTION 'run % exists with workflow %', p_wf, existing USING ERRCODE = 'FG409';
    END IF;
    RETURN false;
END $$;

-- Event write without NOTIFY (the gateway's own writes notify through its coalescing notifier).
CREATE FUNCTION flowgate.set_event_quiet(p_wf text, p_key text, p_value jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    UPDATE flowgate.workflows SET event_version = event_version + 1
    WHERE id = p_wf RETURNING event_version INTO v;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % not found', p_wf USING ERRCODE = 'FG404';
    END IF;
    INSERT INTO flowgate.events (workflow_id, key, value, version)
    VALUES (p_wf, p_key, p_value, v)
    ON CONFLICT (workflow_id, key)
    DO UPDATE SET value = excluded.value, version = excluded.version, updated_at = now();
    RETURN v;
END $$;

CREATE FUNCTION flowgate.set_event(p_wf text, p_key text, p_value jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v bigint := flowgate.set_event_quiet(p_wf, p_key, p_value);
BEGIN
    PERFORM flowgate.notify('e', p_wf, p_key, v);
    RETURN v;
END $$;

-- Appends payloads in order; returns the first offset. Raises FG404 for an unknown run and
-- FG409 for a closed stream.
CREATE FUNCTION flowgate.append_quiet(p_wf text, p_key text, p_payloads bytea[])
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n     bigint := coalesce(cardinality(p_payloads), 0);
    first bigint;
    is_closed boolean;
BEGIN
    LOOP
        UPDATE flowgate.streams SET next_offset = next_offset + n
        WHERE workflow_id = p_wf AND key = p_key AND NOT closed
        RETURNING next_offset - n INTO first;
        EXIT WHEN FOUND;
        SELECT closed INTO is_closed FROM flowgate.streams WHERE workflow_id = p_wf AND key = p_key;
        IF is_closed THEN
            RAISE EXCEPTION 'stream %/% is closed', p_wf, p_key USING ERRCODE = 'FG409';
        END IF;
        PERFORM 1 FROM flowgate.workflows WHERE id = p_wf;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'run % not found', p_wf USING ERRCODE = 'FG404';
        END IF;
        INSERT INTO flowgate.streams (workflow_id, key, next_offset) VALUES (p_wf, p_key, n)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            first := 0;
            EXIT;
        END IF;
    END LOOP;
    INSERT INTO flowgate.stream_records (workflow_id, key, "offset", payload)
    SELECT p_wf, p_key, first + t.i - 1, t.p FROM unnest(p_payloads) WITH ORDINALITY AS t(p, i);
    RETURN first;
END $$;

CREATE FUNCTION flowgate.write_stream(p_wf text, p_key text, p_value jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    first bigint := flowgate.append_quiet(p_wf, p_key, ARRAY[convert_to(p_value::text, 'UTF8')]);
BEGIN
    PERFORM flowgate.notify('s', p_wf, p_key, first + 1);
    RETURN first;
END $$;

CREATE FUNCTION flowgate.write_stream(p_wf text, p_key text, p_values jsonb[])
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    first bigint := flowgate.append_quiet(
        p_wf, p_key, ARRAY(SELECT convert_to(v::text, 'UTF8') FROM unnest(p_values) AS v));
BEGIN
    PERFORM flowgate.notify('s', p_wf, p_key, first + coalesce(cardinality(p_values), 0));
    RETURN first;
END $$;

-- Closes a stream (idempotent); returns its final next offset.
CREATE FUNCTION flowgate.close_stream_quiet(p_wf text, p_key text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM 1 FROM flowgate.workflows WHERE id = p_wf;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % not found', p_wf USING ERRCODE = 'FG404';
    END IF;
    INSERT INTO flowgate.streams (workflow_id, key, closed) VALUES (p_wf, p_key, true)
    ON CONFLICT (workflow_id, key) DO UPDATE SET closed = true
    RETURNING next_offset INTO n;
    RETURN n;
END $$;

CREATE FUNCTION flowgate.close_stream(p_wf text, p_key text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint := flowgate.close_stream_quiet(p_wf, p_key);
BEGIN
    PERFORM flowgate.notify('s', p_wf, p_key, n);
    RETURN n;
END $$;

-- Stores a message; a repeated idempotency key is a no-op that returns the first id
-- (FG409 if the repeat carries another topic or body).
CREATE FUNCTION flowgate.send_quiet(p_wf text, p_topic text, p_body jsonb, p_key text,
                                    OUT message_id bigint, OUT duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
    old_topic text;
    old_body  jsonb;
BEGIN
    PERFORM 1 FROM flowgate.workflows WHERE id = p_wf;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % not found', p_wf USING ERRCODE = 'FG404';
    END IF;
    INSERT INTO flowgate.messages (workflow_id, topic, body, idempotency_key)
    VALUES (p_wf, p_topic, p_body, p_key)
    ON CONFLICT (workflow_id, idempotency_key) DO NOTHING
    RETURNING id INTO message_id;
    IF FOUND THEN
        duplicate := false;
        RETURN;
    END IF;
    SELECT id, topic, body INTO message_id, old_topic, old_body
    FROM flowgate.messages WHERE workflow_id = p_wf AND idempotency_key = p_key;
    IF old_topic IS DISTINCT FROM p_topic OR old_body IS DISTINCT FROM p_body THEN
        RAISE EXCEPTION 'idempotency key % was used for another message', p_key
            USING ERRCODE = 'FG409';
    END IF;
    duplicate := true;
END $$;

CREATE FUNCTION flowgate.send(p_wf text, p_topic text, p_body jsonb, p_key text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM flowgate.send_quiet(p_wf, p_topic, p_body, p_key);
    IF NOT r.duplicate THEN
        PERFORM flowgate.notify('m', p_wf, p_topic, r.message_id);
    END IF;
    RETURN r.message_id;
END $$;
