-- Data lifecycle: per-run retention, the indexes the sweeper walks, idempotency keys that
-- outlive the consumed messages they named, and finishing an externally-run workflow.
-- Append-only: never edit once landed.

-- Seconds a finished run is kept (NULL: the server's FLOWGATE_RETENTION; 0: forever).
ALTER TABLE flowgate.workflows
    ADD COLUMN retention_secs bigint CHECK (retention_secs IS NULL OR retention_secs >= 0);

-- Finished runs that may expire, oldest change first: the sweeper's range scan.
CREATE INDEX workflows_expiry_idx ON flowgate.workflows (updated_at)
    WHERE status IN ('SUCCESS', 'ERROR', 'CANCELLED') AND retention_secs IS DISTINCT FROM 0;
-- The shortest per-run retention (bounds that scan).
CREATE INDEX workflows_retention_idx ON flowgate.workflows (retention_secs)
    WHERE retention_secs > 0;
-- External runs nobody finished (ended after FLOWGATE_RETENTION_IDLE without a write).
CREATE INDEX workflows_external_idx ON flowgate.workflows (updated_at)
    WHERE external AND status = 'PENDING';
-- Consumed messages by age: removed after the retention even from live runs.
CREATE INDEX messages_consumed_idx ON flowgate.messages (consumed_at)
    WHERE consumed_at IS NOT NULL;
-- Deleting a run looks up its approval uses.
CREATE INDEX approval_uses_workflow_idx ON flowgate.approval_uses (workflow_id);

-- The idempotency key of a message removed after it was consumed: a resend with that key
-- stays a no-op for as long as the run lives (the body is kept only as a hash, to tell a
-- true repeat from a conflicting reuse).
CREATE TABLE flowgate.message_keys (
    workflow_id     text   NOT NULL REFERENCES flowgate.workflows (id) ON DELETE CASCADE,
    idempotency_key text   NOT NULL,
    msg_id          bigint NOT NULL,
    topic           text   NOT NULL,
    body_md5        text   NOT NULL,
    PRIMARY KEY (workflow_id, idempotency_key)
);

-- As in 0001, and a key whose message was removed still answers as a duplicate. The insert
-- comes first: it waits for a concurrent sweep of that key to commit, and the key table is
-- read after it, so a resend racing the sweep is never stored twice.
CREATE OR REPLACE FUNCTION flowgate.send_quiet(p_wf text, p_topic text, p_body jsonb, p_key text,
                                               OUT message_id bigint, OUT duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
    old_topic text;
    old_body  jsonb;
    old_id    bigint;
    old_md5   text;
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
        IF p_key IS NOT NULL THEN
            SELECT k.msg_id, k.topic, k.body_md5 INTO old_id, old_topic, old_md5
            FROM flowgate.message_keys k WHERE k.workflow_id = p_wf AND k.idempotency_key = p_key;
            IF FOUND THEN
                DELETE FROM flowgate.messages WHERE id = message_id;
                IF old_topic IS DISTINCT FROM p_topic OR old_md5 IS DISTINCT FROM md5(p_body::text) THEN
                    RAISE EXCEPTION 'idempotency key % was used for another message', p_key
                        USING ERRCODE = 'FG409';
                END IF;
                message_id := old_id;
                duplicate := true;
                RETURN;
            END IF;
        END IF;
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

-- Creates the record of an externally-run workflow with its own retention (see 0001).
CREATE FUNCTION flowgate.ensure_run(p_wf text, p_workflow text, p_retention_secs bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO flowgate.workflows (id, workflow, status, external, retention_secs)
    VALUES (p_wf, p_workflow, 'PENDING', true, p_retention_secs)
    ON CONFLICT (id) DO NOTHING;
    IF FOUND THEN
        RETURN true;
    END IF;
    RETURN flowgate.ensure_run(p_wf, p_workflow);
END $$;

-- Marks an externally-run workflow finished; returns its status. Finishing again with the
-- same status is a no-op; FG404 for an unknown run, FG409 for a run the runtime manages or
-- one already finished with another status.
CREATE FUNCTION flowgate.finish_run_quiet(p_wf text, p_status text, p_output jsonb DEFAULT NULL,
                                          p_error jsonb DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF p_status IS NULL OR p_status NOT IN ('SUCCESS', 'ERROR', 'CANCELLED') THEN
        RAISE EXCEPTION 'status must be SUCCESS, ERROR or CANCELLED' USING ERRCODE = '22023';
    END IF;
    SELECT external, status INTO r FROM flowgate.workflows WHERE id = p_wf FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % not found', p_wf USING ERRCODE = 'FG404';
    END IF;
    IF NOT r.external THEN
        RAISE EXCEPTION 'run % is run by the workflow runtime; only external runs are finished here', p_wf
            USING ERRCODE = 'FG409';
    END IF;
    IF r.status = p_status THEN
        RETURN p_status;
    END IF;
    IF r.status <> 'PENDING' THEN
        RAISE EXCEPTION 'run % already finished with status %', p_wf, r.status USING ERRCODE = 'FG409';
    END IF;
    UPDATE flowgate.workflows
    SET status = p_status, output = p_output, error = p_error, updated_at = now()
    WHERE id = p_wf;
    RETURN p_status;
END $$;

CREATE FUNCTION flowgate.finish_run(p_wf text, p_status text, p_output jsonb DEFAULT NULL,
                                    p_error jsonb DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    s text := flowgate.finish_run_quiet(p_wf, p_status, p_output, p_error);
BEGIN
    PERFORM flowgate.notify('w', p_wf, '', 0);
    RETURN s;
END $$;

-- The last write to a run: its row, events, messages and the newest record of each stream.
CREATE FUNCTION flowgate.last_write(p_wf text)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT greatest(
        (SELECT updated_at FROM flowgate.workflows WHERE id = p_wf),
        (SELECT max(updated_at) FROM flowgate.events WHERE workflow_id = p_wf),
        (SELECT max(created_at) FROM flowgate.messages WHERE workflow_id = p_wf),
        (SELECT max(greatest(s.created_at, r.created_at))
         FROM flowgate.streams s
         LEFT JOIN flowgate.stream_records r
           ON r.workflow_id = s.workflow_id AND r.key = s.key AND r."offset" = s.next_offset - 1
         WHERE s.workflow_id = p_wf));
$$;
