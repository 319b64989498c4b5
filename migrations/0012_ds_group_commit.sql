-- Durable Streams group commit: a process gathers concurrent POSTs into one call of
-- flowgate.ds_write_batch, which runs them in one transaction, gives each its own outcome
-- instead of raising, and sends their wake-ups in that same transaction. Append-only: never
-- edit once landed.

-- Runs a batch of appends in order, in the caller's (single) transaction. Append i goes to
-- the stream at p_paths[i]; appends to one stream must be adjacent (the caller sorts by path,
-- keeping arrival order within a stream, so rows are locked in path order everywhere). Each
-- stream's row is read and locked once, updated in memory by its appends, written once.
-- Per append:
--   p_types[i]   the request's media type (lower case, no parameters), NULL if none
--   p_bodies[i]  the body is non-empty (only then must the media type match the stream's)
--   p_close[i]   Stream-Closed: true
--   p_seqs[i]    Stream-Seq (compared byte-wise), or NULL
--   p_pids[i], p_epochs[i], p_pseqs[i]   producer tuple, or NULLs
--   p_invalid[i] the body failed the caller's split into rows (reported only if every
--                other check passes, as a lone append would be)
--   p_counts[i]  rows it adds; their payloads are p_payloads, in append order, and
--                p_rec_op[j] is the append of payload j
-- Outcome i, codes[i]: 'ok' (tails[i] = new tail), 'dup' (a producer retry: nums1/nums2 =
-- epoch and highest accepted seq), 'missing', 'gone', 'closed', 'type' (media type differs),
-- 'seq' (Stream-Seq not above the last), 'stale' (nums1 = current epoch), 'epoch0' (a new
-- epoch must start at seq 0), 'gap' (nums1 = expected seq, nums2 = received), 'invalid'.
-- ids, tails and closes hold the stream's id, tail and closed flag after append i.
-- Every stream that changed is announced on channel 'flowgate' as
-- 'origin|s|~ds|id|tail' (the Durable Streams hub namespace), in this transaction.
-- subscribed: some subscription exists (the caller then runs the wake logic).
CREATE FUNCTION flowgate.ds_write_batch(
    p_origin text, p_paths text[], p_types text[], p_bodies boolean[], p_close boolean[],
    p_seqs bytea[], p_pids text[], p_epochs bigint[], p_pseqs bigint[], p_invalid boolean[],
    p_counts int[], p_payloads bytea[], p_rec_op int[],
    OUT codes text[], OUT ids bigint[], OUT tails bigint[], OUT closes boolean[],
    OUT nums1 bigint[], OUT nums2 bigint[], OUT subscribed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    n_ops     int := coalesce(cardinality(p_paths), 0);
    i         int;
    cur       text;
    have      boolean := false;
    dirty     boolean := false;
    m_id      bigint;
    m_type    text;
    m_tail    bigint;
    m_closed  boolean;
    m_last    bytea;
    m_by      text;
    m_epoch   bigint;
    m_cseq    bigint;
    m_deleted boolean;
    m_expired boolean;
    pe        bigint;
    ps        bigint;
    firsts    bigint[] := '{}';
    starts    int[] := '{}';
    seen      int := 0;
BEGIN
    codes := '{}'; ids := '{}'; tails := '{}'; closes := '{}'; nums1 := '{}'; nums2 := '{}';
    FOR i IN 1 .. n_ops + 1 LOOP
        IF i > n_ops OR p_paths[i] IS DISTINCT FROM cur THEN
            IF dirty THEN
                UPDATE flowgate.ds_streams
                SET tail = m_tail, closed = m_closed, last_seq = m_last, touched_at = now(),
                    closed_by = m_by, closed_epoch = m_epoch, closed_seq = m_cseq
                WHERE id = m_id;
                dirty := false;
            END IF;
            EXIT WHEN i > n_ops;
            cur := p_paths[i];
            SELECT s.id, s.content_type, s.tail, s.closed, s.last_seq, s.closed_by,
                   s.closed_epoch, s.closed_seq, s.deleted, flowgate.ds_expired(s)
            INTO m_id, m_type, m_tail, m_closed, m_last, m_by, m_epoch, m_cseq, m_deleted,
                 m_expired
            FROM flowgate.ds_streams s WHERE s.path = cur FOR UPDATE;
            have := FOUND;
            m_type := lower(btrim(split_part(m_type, ';', 1), E' \t'));
        END IF;
        codes[i] := NULL; ids[i] := NULL; tails[i] := NULL; closes[i] := NULL;
        nums1[i] := NULL; nums2[i] := NULL;
        starts[i] := seen;
        seen := seen + p_counts[i];
        firsts[i] := NULL;
        IF have AND m_deleted THEN
            codes[i] := 'gone';
            CONTINUE;
        ELSIF NOT have OR m_expired THEN
            codes[i] := 'missing';
            CONTINUE;
        END IF;
        ids[i] := m_id;
        tails[i] := m_tail;
        closes[i] := m_closed;
        IF m_closed THEN
            IF p_pids[i] IS NOT NULL AND m_by = p_pids[i] AND m_epoch = p_epochs[i]
               AND m_cseq = p_pseqs[i] THEN
                codes[i] := 'dup';
                nums1[i] := p_epochs[i];
                nums2[i] := p_pseqs[i];
            ELSIF p_close[i] AND NOT p_bodies[i] THEN
                codes[i] := 'ok';
            ELSE
                codes[i] := 'closed';
            END IF;
            CONTINUE;
        END IF;
        IF p_bodies[i] AND p_types[i] IS DISTINCT FROM m_type THEN
            codes[i] := 'type';
            CONTINUE;
        END IF;
        IF p_pids[i] IS NOT NULL THEN
            SELECT epoch, seq INTO pe, ps FROM flowgate.ds_producers
            WHERE stream_id = m_id AND producer = p_pids[i];
            IF NOT FOUND THEN
                IF p_pseqs[i] <> 0 THEN
                    codes[i] := 'gap'; nums1[i] := 0; nums2[i] := p_pseqs[i];
                END IF;
            ELSIF p_epochs[i] < pe THEN
                codes[i] := 'stale'; nums1[i] := pe;
            ELSIF p_epochs[i] > pe THEN
                IF p_pseqs[i] <> 0 THEN
                    codes[i] := 'epoch0';
                END IF;
            ELSIF p_pseqs[i] <= ps THEN
                codes[i] := 'dup'; nums1[i] := pe; nums2[i] := ps;
            ELSIF p_pseqs[i] <> ps + 1 THEN
                codes[i] := 'gap'; nums1[i] := ps + 1; nums2[i] := p_pseqs[i];
            END IF;
            CONTINUE WHEN codes[i] IS NOT NULL;
        END IF;
        IF p_seqs[i] IS NOT NULL AND m_last IS NOT NULL AND p_seqs[i] <= m_last THEN
            codes[i] := 'seq';
            CONTINUE;
        END IF;
        IF p_invalid[i] THEN
            codes[i] := 'invalid';
            CONTINUE;
        END IF;
        firsts[i] := m_tail;
        m_tail := m_tail + p_counts[i];
        m_closed := p_close[i];
        m_last := coalesce(p_seqs[i], m_last);
        IF p_close[i] AND p_pids[i] IS NOT NULL THEN
            m_by := p_pids[i]; m_epoch := p_epochs[i]; m_cseq := p_pseqs[i];
        ELSE
            m_by := NULL; m_epoch := NULL; m_cseq := NULL;
        END IF;
        dirty := true;
        IF p_pids[i] IS NOT NULL THEN
            INSERT INTO flowgate.ds_producers (stream_id, producer, epoch, seq)
            VALUES (m_id, p_pids[i], p_epochs[i], p_pseqs[i])
            ON CONFLICT (stream_id, producer)
            DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq;
        END IF;
        codes[i] := 'ok';
        tails[i] := m_tail;
        closes[i] := m_closed;
    END LOOP;
    INSERT INTO flowgate.ds_records (stream_id, seq, payload)
    SELECT ids[t.op], firsts[t.op] + (t.j - starts[t.op]), t.p
    FROM unnest(p_payloads, p_rec_op) WITH ORDINALITY AS t(p, op, j)
    WHERE firsts[t.op] IS NOT NULL;
    PERFORM pg_notify('flowgate', p_origin || '|s|~ds|' || t.id || '|' || max(t.tail))
    FROM unnest(ids, tails, firsts) AS t(id, tail, f)
    WHERE t.f IS NOT NULL
    GROUP BY t.id;
    subscribed := EXISTS (SELECT 1 FROM flowgate.ds_subscriptions);
END $$;
