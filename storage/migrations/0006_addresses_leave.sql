-- A private address is kept only while its volunteer wants reminders (issue 10). A delivery
-- row keeps its address while it may still be sent, or while the volunteer still has it;
-- on opting out, becoming unreachable, /forget or the campaign's end, it goes from every
-- row too: `address` becomes NULL (a SQLite column cannot drop NOT NULL in place, so the
-- table is rebuilt). A row waiting to be sent always has one.
CREATE TABLE deliveries_new (
    id           INTEGER PRIMARY KEY,
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id),
    platform     TEXT NOT NULL,
    address      TEXT,                        -- NULL once its volunteer's address is gone
    language     TEXT NOT NULL,
    volunteer    BLOB REFERENCES volunteers (key) ON DELETE CASCADE,
    state        TEXT NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'inflight', 'sent', 'failed', 'unreachable', 'unknown')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT NOT NULL,
    not_before   TEXT,
    sending_at   TEXT,
    UNIQUE (broadcast_id, platform, address),
    CHECK (address IS NOT NULL OR state <> 'pending')
);

-- Rows of volunteers who opted out before this version: queued ones go, the others keep no
-- address (nor one the volunteer no longer uses).
DELETE FROM deliveries WHERE volunteer IS NOT NULL AND state IN ('pending', 'failed')
    AND NOT EXISTS (SELECT 1 FROM volunteers v
                    WHERE v.key = deliveries.volunteer AND v.dm_address = deliveries.address);

INSERT INTO deliveries_new (id, broadcast_id, platform, address, language, volunteer, state,
                            attempts, updated_at, not_before, sending_at)
SELECT id, broadcast_id, platform,
       CASE WHEN volunteer IS NULL OR EXISTS (SELECT 1 FROM volunteers v
                 WHERE v.key = deliveries.volunteer AND v.dm_address = deliveries.address)
            THEN address END,
       language, volunteer, state, attempts, updated_at, not_before, sending_at
FROM deliveries;

DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_by_state ON deliveries (platform, state, id);
CREATE INDEX deliveries_by_volunteer ON deliveries (volunteer) WHERE volunteer IS NOT NULL;
CREATE INDEX deliveries_by_broadcast ON deliveries (broadcast_id, state);
