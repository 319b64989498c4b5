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

-- External runs with tags and a retention (the shorter forms stay for existing callers).
CREATE FUNCTION flowgate.ensure_run(p_wf text, p_workflow text, p_tags text[],
                                    p_retention_secs bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO flowgate.workflows (id, workflow, status, external, tags, retention_secs)
    VALUES (p_wf, p_workflow, 'PENDING', true, COALESCE(p_tags, '{}'), p_retention_secs)
    ON CONFLICT (id) DO NOTHING;
    IF FOUND THEN
        RETURN true;
    END IF;
    RETURN flowgate.ensure_run(p_wf, p_workflow);
END $$;
