-- Many pledges in one round trip: what group commit sends for the pledges queued together
-- (storage/postgres/queries.py, PledgeOp). Each is record_pledge, in the order given, in
-- the caller's transaction; out_index says which pledge a row answers. The first pledge
-- locks the campaign's counter row until the commit: with one round trip per pledge, that
-- lock was held across every trip of the batch, and the other processes' batches waited
-- behind the network; now it is held for the server's own work.
CREATE FUNCTION record_pledges(
    p_campaigns bigint[], p_keys bytea[], p_platforms text[], p_chats text[],
    p_choices text[], p_now timestamptz
) RETURNS TABLE (
    out_index integer, out_status text, out_number bigint, out_choice text, out_total bigint
)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        RETURN QUERY
        SELECT i, r.out_status, r.out_number, r.out_choice, r.out_total
        FROM record_pledge(
            p_campaigns[i], p_keys[i], p_platforms[i], p_chats[i], p_choices[i], p_now
        ) AS r;
    END LOOP;
END
$$;
