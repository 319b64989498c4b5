-- Tags on runs, and the change marker the live run list resumes from. Append-only.
--
-- `change_xid` is the id of the transaction that last created the run or changed its
-- status or tags. A live list's cursor is a snapshot (`pg_current_snapshot()`): a change
-- is new to a reader exactly when its transaction is not visible in the reader's snapshot,
-- so out-of-order commits are neither skipped nor repeated.

ALTER TABLE flowgate.workflows
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}',
    ADD COLUMN change_xid xid8;

CREATE INDEX workflows_tags_idx ON flowgate.workflows USING gin (tags);
CREATE INDEX workflows_change_idx ON flowgate.workflows (change_xid);

CREATE FUNCTION flowgate.mark_run_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT'
       OR NEW.status IS DISTINCT FROM OLD.status
       OR NEW.tags IS DISTINCT FROM OLD.tags THEN
        NEW.change_xid := pg_current_xact_id();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER workflows_mark_change
    BEFORE INSERT OR UPDATE ON flowgate.workflows
    FOR EACH ROW EXECUTE FUNCTION flowgate.mark_run_change();

-- External runs with tags (the two-argument form stays for existing callers).
CREATE FUNCTION flowgate.ensure_run(p_wf text, p_workflow text, p_tags text[])
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    existing text;
BEGIN
    INSERT INTO flowgate.workflows (id, workflow, status, external, tags)
    VALUES (p_wf, p_workflow, 'PENDING', true, COALESCE(p_tags, '{}'))
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
