-- The outbox: everything sent that is not a direct answer. The database is the source of
-- truth; the scheduler only triggers, and a broadcast's key makes each one happen once.
ALTER TABLE volunteers ADD COLUMN dm_platform TEXT;

CREATE TABLE schedule_rungs (
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    rung        TEXT NOT NULL,
    due_at      TEXT NOT NULL,                -- UTC, ISO 8601
    PRIMARY KEY (campaign_id, rung)
) WITHOUT ROWID;

CREATE TABLE broadcasts (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    key         TEXT NOT NULL UNIQUE,         -- idempotency: "reminder:<campaign>:<rung>" ...
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,                -- what to render (a rung, an announcement id)
    recipients  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

-- One row per message per recipient. A volunteer's row goes with them on /forget.
CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id),
    platform     TEXT NOT NULL,
    address      TEXT NOT NULL,
    language     TEXT NOT NULL,
    volunteer    BLOB REFERENCES volunteers (key) ON DELETE CASCADE,
    state        TEXT NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'inflight', 'sent', 'failed', 'unreachable', 'unknown')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT NOT NULL,
    UNIQUE (broadcast_id, platform, address)
);
CREATE INDEX deliveries_by_state ON deliveries (platform, state, id);
CREATE INDEX deliveries_by_volunteer ON deliveries (volunteer) WHERE volunteer IS NOT NULL;
