-- True outcomes and run times. Append-only.
--
-- `outcome` says how a finished run ended, beside its status: a workflow may report one
-- (`approved`, `rejected`, `timed_out`, …); otherwise it is `succeeded`, `failed` or
-- `cancelled` from the status. NULL while the run has not finished.
-- `started_at` is when the run first became PENDING (for a queued run: when it was taken
-- off its queue); `finished_at` when it reached SUCCESS, ERROR or CANCELLED. A trigger
-- keeps both (and the default outcome), so every path that changes a status — the
-- runtime, cancel, `flowgate.finish_run`, plain SQL — records them.

ALTER TABLE flowgate.workflows
    ADD COLUMN outcome     text CHECK (outcome ~ '^[a-z][a-z0-9_]{0,63}$'),
    ADD COLUMN started_at  timestamptz,
    ADD COLUMN finished_at timestamptz;

UPDATE flowgate.workflows SET started_at = created_at WHERE status <> 'ENQUEUED';
UPDATE flowgate.workflows
SET finished_at = updated_at,
    outcome = CASE status WHEN 'SUCCESS' THEN 'succeeded' WHEN 'ERROR' THEN 'failed'
                          ELSE 'cancelled' END
WHERE status IN ('SUCCESS', 'ERROR', 'CANCELLED');

CREATE FUNCTION flowgate.mark_run_times() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'PENDING' AND NEW.started_at IS NULL THEN
        NEW.started_at := now();
    END IF;
    IF NEW.status IN ('SUCCESS', 'ERROR', 'CANCELLED') THEN
        IF TG_OP = 'INSERT' OR OLD.status NOT IN ('SUCCESS', 'ERROR', 'CANCELLED') THEN
            NEW.finished_at := now();
            NEW.outcome := COALESCE(NEW.outcome,
                CASE NEW.status WHEN 'SUCCESS' THEN 'succeeded' WHEN 'ERROR' THEN 'failed'
                                ELSE 'cancelled' END);
        END IF;
    ELSE
        NEW.finished_at := NULL;
        NEW.outcome := NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER workflows_mark_times
    BEFORE INSERT OR UPDATE OF status, outcome ON flowgate.workflows
    FOR EACH ROW EXECUTE FUNCTION flowgate.mark_run_times();

-- Finishing an external run with an outcome of its own (the four-argument forms stay and
-- record the default outcome of the status). Finishing again with the same status and
-- outcome is a no-op; FG404 for an unknown run, FG409 for a run the runtime manages or one
-- already finished otherwise.
CREATE FUNCTION flowgate.finish_run_quiet(p_wf text, p_status text, p_output jsonb,
                                          p_error jsonb, p_outcome text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF p_status IS NULL OR p_status NOT IN ('SUCCESS', 'ERROR', 'CANCELLED') THEN
        RAISE EXCEPTION 'status must be SUCCESS, ERROR or CANCELLED' USING ERRCODE = '22023';
    END IF;
    IF p_outcome IS NOT NULL AND p_outcome !~ '^[a-z][a-z0-9_]{0,63}$' THEN
        RAISE EXCEPTION 'outcome must be 1 to 64 of a-z, 0-9 and _, starting with a letter'
            USING ERRCODE = '22023';
    END IF;
    SELECT external, status, outcome INTO r FROM flowgate.workflows WHERE id = p_wf FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % not found', p_wf USING ERRCODE = 'FG404';
    END IF;
    IF NOT r.external THEN
        RAISE EXCEPTION 'run % is run by the workflow runtime; only external runs are finished here', p_wf
            USING ERRCODE = 'FG409';
    END IF;
    IF r.status = p_status AND (p_outcome IS NULL OR r.outcome = p_outcome) THEN
        RETURN p_status;
    END IF;
    IF r.status <> 'PENDING' THEN
        RAISE EXCEPTION 'run % already finished with status % (outcome %)', p_wf, r.status, r.outcome
            USING ERRCODE = 'FG409';
    END IF;
    UPDATE flowgate.workflows
    SET status = p_status, output = p_output, error = p_error, outcome = p_outcome,
        updated_at = now()
    WHERE id = p_wf;
    RETURN p_status;
END $$;

CREATE FUNCTION flowgate.finish_run(p_wf text, p_status text, p_output jsonb, p_error jsonb,
                                    p_outcome text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    s text := flowgate.finish_run_quiet(p_wf, p_status, p_output, p_error, p_outcome);
BEGIN
    PERFORM flowgate.notify('w', p_wf, '', 0);
    RETURN s;
END $$;
