-- A close note carries the final next offset with bit 56 set (2^56 = 72057594037927936), so
-- that a gateway reading from a standby waits until the close marker itself has been
-- replayed, not only the records before it.
CREATE OR REPLACE FUNCTION flowgate.close_stream(p_wf text, p_key text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint := flowgate.close_stream_quiet(p_wf, p_key);
BEGIN
    PERFORM flowgate.notify('s', p_wf, p_key, n | 72057594037927936);
    RETURN n;
END $$;
