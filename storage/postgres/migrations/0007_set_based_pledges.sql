-- A batch's pledges as a few statements for the whole batch instead of record_pledge's nine
-- for each (bench/processes.py: the server spent ~330 µs of CPU per pledge, more than half
-- of it planning: the sessions' plan_cache_mode = force_custom_plan plans every statement
-- of record_pledge, and every foreign-key check, at every execution).
--
-- Plans: the hot functions run with generic plans, made once per session and kept, and
-- without sequential scans (enable_seqscan off: the planner takes an index wherever one
-- serves). A generic plan made while a table was tiny cannot then scan it whole as it
-- grows (the reason for force_custom_plan, storage/postgres/store.py). The foreign-key
-- checks the inserts fire run under the same settings. Every join below is a correlated
-- (LATERAL) lookup by key, so no plan can hash or merge a whole table either.
--
-- The same guarantees as record_pledge's loop, which stays for what this does not cover
-- (one pledge; pledges of several campaigns; one volunteer twice in a batch): the
-- campaign's row is locked first, then the volunteers' rows (made if new), then their
-- pledges are read; the new ones get the next numbers, in the order given, from one update
-- of the counter row (exact, and gap-free: a rollback takes them back), and the answer for
-- each is what record_pledge would have said had they run one after another.
ALTER FUNCTION record_pledge(bigint, bytea, text, text, text, timestamptz)
    SET plan_cache_mode = force_generic_plan SET enable_seqscan = off;

CREATE OR REPLACE FUNCTION record_pledges(
    p_campaigns bigint[], p_keys bytea[], p_platforms text[], p_chats text[],
    p_choices text[], p_now timestamptz
) RETURNS TABLE (
    out_index integer, out_status text, out_number bigint, out_choice text, out_total bigint
)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
AS $$
DECLARE
    v_n        integer := coalesce(array_length(p_keys, 1), 0);
    v_campaign bigint := p_campaigns[1];
    v_found    text[];    -- per pledge: the choice stored before, NULL if none
    v_numbers  bigint[];  -- per pledge: its number stored before, NULL if none
    v_new      integer;
    v_first    bigint;    -- the first new pledge's number
    v_base     bigint;    -- the campaign's count before the first new pledge
BEGIN
    IF v_n < 2
       OR EXISTS (SELECT 1 FROM unnest(p_campaigns) c WHERE c IS DISTINCT FROM v_campaign)
       OR (SELECT count(DISTINCT k) FROM unnest(p_keys) k) <> v_n THEN
        FOR i IN 1 .. v_n LOOP
            RETURN QUERY
            SELECT i, r.out_status, r.out_number, r.out_choice, r.out_total
            FROM record_pledge(
                p_campaigns[i], p_keys[i], p_platforms[i], p_chats[i], p_choices[i], p_now
            ) AS r;
        END LOOP;
        RETURN;
    END IF;

    PERFORM 1 FROM campaigns c WHERE c.id = v_campaign FOR NO KEY UPDATE;
    -- The volunteers' rows, made if new, and locked either way (the conflict's update is
    -- never done): another transaction's pledge of one of them waits for this one.
    INSERT INTO volunteers AS v (key, created_at)
    SELECT t.k, date_trunc('second', p_now) FROM unnest(p_keys) AS t(k)
    ON CONFLICT (key) DO UPDATE SET language = v.language WHERE false;

    SELECT array_agg(p.choice ORDER BY t.i), array_agg(p.number ORDER BY t.i),
           count(*) FILTER (WHERE p.number IS NULL)
    INTO v_found, v_numbers, v_new
    FROM unnest(p_keys) WITH ORDINALITY AS t(k, i)
    LEFT JOIN LATERAL (
        SELECT s.choice, s.number FROM pledges s
        WHERE s.volunteer = t.k AND s.campaign_id = v_campaign
        LIMIT 1  -- kept a lookup per key (never flattened into a join)
    ) AS p ON true;

    IF v_new > 0 THEN
        UPDATE campaigns c
        SET pledged = c.pledged + v_new, next_number = c.next_number + v_new
        WHERE c.id = v_campaign
        RETURNING c.next_number - v_new, c.pledged - v_new INTO v_first, v_base;
        INSERT INTO pledges (volunteer, campaign_id, choice, number, created_at)
        SELECT t.k, v_campaign, coalesce(t.c, 'both'),
               v_first - 1 + row_number() OVER (ORDER BY t.i), date_trunc('second', p_now)
        FROM unnest(p_keys, p_choices, v_numbers) WITH ORDINALITY AS t(k, c, old, i)
        WHERE t.old IS NULL;
    END IF;

    -- A pledge made before with another choice: the new one (rare: one row at a time).
    FOR i IN 1 .. v_n LOOP
        IF v_numbers[i] IS NOT NULL AND p_choices[i] IS NOT NULL
           AND v_found[i] <> p_choices[i] THEN
            UPDATE pledges p SET choice = p_choices[i]
            WHERE p.volunteer = p_keys[i] AND p.campaign_id = v_campaign;
        END IF;
    END LOOP;

    IF EXISTS (SELECT 1 FROM unnest(p_chats) ch WHERE ch IS NOT NULL) THEN
        -- The communities not seen before (ON CONFLICT: made meanwhile by another).
        INSERT INTO communities (platform, chat_id, created_at)
        SELECT DISTINCT t.p, t.ch, p_now FROM unnest(p_platforms, p_chats) AS t(p, ch)
        WHERE t.ch IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM communities m WHERE m.platform = t.p AND m.chat_id = t.ch
        )
        ON CONFLICT (platform, chat_id) DO NOTHING;
        -- Each community kept from moving or going away until this commits; each pledge
        -- linked to it (once), and its tally counts the links just made.
        WITH linked AS (
            INSERT INTO pledge_communities (volunteer, campaign_id, community_id)
            SELECT t.k, v_campaign, m.id
            FROM unnest(p_keys, p_platforms, p_chats) AS t(k, p, ch)
            JOIN LATERAL (
                SELECT c.id FROM communities c
                WHERE c.platform = t.p AND c.chat_id = t.ch LIMIT 1 FOR KEY SHARE
            ) AS m ON true
            WHERE t.ch IS NOT NULL
            ON CONFLICT DO NOTHING
            RETURNING community_id
        )
        INSERT INTO community_tallies AS ct (campaign_id, community_id, pledged)
        SELECT v_campaign, l.community_id, count(*) FROM linked l GROUP BY l.community_id
        ON CONFLICT (campaign_id, community_id) DO UPDATE SET pledged = ct.pledged + EXCLUDED.pledged;
    END IF;

    RETURN QUERY
    SELECT t.i::integer,
           CASE WHEN t.old IS NULL THEN 'new'
                WHEN t.c IS NOT NULL AND t.c <> t.found THEN 'updated'
                ELSE 'already' END,
           CASE WHEN t.old IS NULL THEN v_first - 1 + t.rank ELSE t.old END,
           CASE WHEN t.old IS NULL THEN coalesce(t.c, 'both') ELSE coalesce(t.c, t.found) END,
           CASE WHEN t.old IS NULL THEN v_base + t.rank END
    FROM (
        SELECT u.*, count(*) FILTER (WHERE u.old IS NULL) OVER (ORDER BY u.i) AS rank
        FROM unnest(p_choices, v_found, v_numbers) WITH ORDINALITY AS u(c, found, old, i)
    ) AS t
    ORDER BY t.i;
END
$$;
