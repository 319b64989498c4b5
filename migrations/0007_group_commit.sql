-- Group commit: a process gathers concurrent writes (stream appends, event sets, message
-- sends, workflow stream steps) into one call of flowgate.write_batch, which runs them in
-- one transaction, gives each its own outcome instead of raising, and sends the wake-ups
-- for all of them in that same transaction. Append-only: never edit once landed.

-- Reserves p_n offsets of stream (p_wf, p_key) under its row's lock, creating the stream if
-- needed. Instead of raising it returns err 'FG404' (no such run) or 'FG409' (closed), so
-- one failing write does not abort the others in its batch.
CREATE FUNCTION flowgate.reserve_offsets(p_wf text, p_key text, p_n bigint,
                                         OUT first bigint, OUT err text)
LANGUAGE plpgsql AS $$
DECLARE
    is_closed boolean;
BEGIN
    LOOP
        UPDATE flowgate.streams SET next_offset = next_offset + p_n
        WHERE workflow_id = p_wf AND key = p_key AND NOT closed
        RETURNING next_offset - p_n INTO first;
        IF FOUND THEN
            RETURN;
        END IF;
        SELECT closed INTO is_closed FROM flowgate.streams
        WHERE workflow_id = p_wf AND key = p_key;
        IF is_closed THEN
            err := 'FG409';
            RETURN;
        END IF;
        PERFORM 1 FROM flowgate.workflows WHERE id = p_wf;
        IF NOT FOUND THEN
            err := 'FG404';
            RETURN;
        END IF;
        INSERT INTO flowgate.streams (workflow_id, key, next_offset) VALUES (p_wf, p_key, p_n)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            first := 0;
            RETURN;
        END IF;
    END LOOP;
END $$;

-- Stores a message like send_quiet, returning err 'FG404' or 'FG409' instead of raising.
CREATE FUNCTION flowgate.try_send(p_wf text, p_topic text, p_body jsonb, p_key text,
                                  OUT message_id bigint, OUT duplicate boolean, OUT err text)
LANGUAGE plpgsql AS $$
DECLARE
    old_topic text;
    old_body  jsonb;
BEGIN
    duplicate := false;
    PERFORM 1 FROM flowgate.workflows WHERE id = p_wf;
    IF NOT FOUND THEN
        err := 'FG404';
        RETURN;
    END IF;
    INSERT INTO flowgate.messages (workflow_id, topic, body, idempotency_key)
    VALUES (p_wf, p_topic, p_body, p_key)
    ON CONFLICT (workflow_id, idempotency_key) DO NOTHING
    RETURNING id INTO message_id;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT id, topic, body INTO message_id, old_topic, old_body
    FROM flowgate.messages WHERE workflow_id = p_wf AND idempotency_key = p_key;
    IF old_topic IS DISTINCT FROM p_topic OR old_body IS DISTINCT FROM p_body THEN
        message_id := NULL;
        err := 'FG409';
        RETURN;
    END IF;
    duplicate := true;
END $$;

-- Runs a batch of writes in order, in the caller's (single) transaction. Op i is
-- p_kinds[i]:
--   's' append p_counts[i] records to stream (p_runs[i], p_keys[i]); position = first offset
--   'e' set event p_keys[i] of run p_runs[i] to p_values[i]; position = version
--   'm' send p_values[i] to topic p_keys[i] of run p_runs[i] with idempotency key
--       p_extra[i]; position = message id, flag = duplicate
--   'w' like 's', as workflow step p_steps[i] named p_names[i] of run p_runs[i], fenced on
--       the run being PENDING and owned by executor p_extra[i] (err 'CANCELLED' or
--       'SUPERSEDED' otherwise); the step records the first offset
-- Record payloads are p_payloads, in op order; p_rec_op[j] is the op of payload j.
-- Every successful write is announced on channel 'flowgate' as
-- 'origin|kind|run|key|position' (one note per kind, run and key: the highest position),
-- in this transaction, so the wake-up commits exactly when the data does.
CREATE FUNCTION flowgate.write_batch(
    p_origin text, p_kinds text[], p_runs text[], p_keys text[], p_counts int[],
    p_values jsonb[], p_extra text[], p_steps int[], p_names text[],
    p_payloads bytea[], p_rec_op int[],
    OUT positions bigint[], OUT flags boolean[], OUT errors text[])
LANGUAGE plpgsql AS $$
DECLARE
    n_ops  int := coalesce(cardinality(p_kinds), 0);
    starts int[] := '{}';
    firsts bigint[] := '{}';
    seen   int := 0;
    i      int;
    r      record;
    st     text;
    ex     text;
    v      bigint;
    nk     text[] := '{}';
    np     bigint[] := '{}';
BEGIN
    positions := '{}';
    flags := '{}';
    errors := '{}';
    FOR i IN 1 .. n_ops LOOP
        positions[i] := NULL;
        flags[i] := false;
        errors[i] := NULL;
        starts[i] := seen;
        firsts[i] := NULL;
        IF p_kinds[i] = 'w' THEN
            SELECT status, executor_id INTO st, ex FROM flowgate.workflows
            WHERE id = p_runs[i] FOR NO KEY UPDATE;
            IF st = 'CANCELLED' THEN
                errors[i] := 'CANCELLED';
            ELSIF st IS DISTINCT FROM 'PENDING' OR ex IS DISTINCT FROM p_extra[i] THEN
                errors[i] := 'SUPERSEDED';
            END IF;
        END IF;
        IF p_kinds[i] IN ('s', 'w') THEN
            seen := seen + p_counts[i];
            CONTINUE WHEN errors[i] IS NOT NULL;
            SELECT * INTO r FROM flowgate.reserve_offsets(p_runs[i], p_keys[i], p_counts[i]);
            errors[i] := r.err;
            positions[i] := r.first;
            firsts[i] := r.first;
            IF r.err IS NULL THEN
                nk[i] := 's';
                np[i] := r.first + p_counts[i];
                IF p_kinds[i] = 'w' THEN
                    INSERT INTO flowgate.steps (workflow_id, step, name, output, started_at)
                    VALUES (p_runs[i], p_steps[i], p_names[i], to_jsonb(r.first), now())
                    ON CONFLICT (workflow_id, step) DO NOTHING;
                END IF;
            END IF;
        ELSIF p_kinds[i] = 'e' THEN
            UPDATE flowgate.workflows SET event_version = event_version + 1
            WHERE id = p_runs[i] RETURNING event_version INTO v;
            IF NOT FOUND THEN
                errors[i] := 'FG404';
                CONTINUE;
            END IF;
            INSERT INTO flowgate.events (workflow_id, key, value, version)
            VALUES (p_runs[i], p_keys[i], p_values[i], v)
            ON CONFLICT (workflow_id, key)
            DO UPDATE SET value = excluded.value, version = excluded.version, updated_at = now();
            positions[i] := v;
            nk[i] := 'e';
            np[i] := v;
        ELSIF p_kinds[i] = 'm' THEN
            SELECT * INTO r FROM flowgate.try_send(p_runs[i], p_keys[i], p_values[i], p_extra[i]);
            positions[i] := r.message_id;
            flags[i] := coalesce(r.duplicate, false);
            errors[i] := r.err;
            IF r.err IS NULL AND NOT r.duplicate THEN
                nk[i] := 'm';
                np[i] := r.message_id;
            END IF;
        ELSE
            errors[i] := 'FG400';
        END IF;
    END LOOP;
    INSERT INTO flowgate.stream_records (workflow_id, key, "offset", payload)
    SELECT p_runs[t.op], p_keys[t.op], firsts[t.op] + (t.j - 1 - starts[t.op]), t.p
    FROM unnest(p_payloads, p_rec_op) WITH ORDINALITY AS t(p, op, j)
    WHERE firsts[t.op] IS NOT NULL;
    PERFORM pg_notify('flowgate', p_origin || '|' || t.k || '|' || t.w || '|' || t.y || '|' || max(t.p))
    FROM unnest(nk, p_runs, p_keys, np) AS t(k, w, y, p)
    WHERE t.k IS NOT NULL
    GROUP BY t.k, t.w, t.y;
END $$;
