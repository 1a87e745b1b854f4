-- A pledge costs less to write and to keep (issue 12). A volunteer's rows are found by their
-- key (/forget, /mydata, the pledge itself), so the key leads the primary keys of `pledges`
-- and `pledge_communities`, and the second index on pledges (0007) goes: one B-tree fewer to
-- touch per pledge. When a volunteer and a pledge were made is kept as integer Unix seconds
-- (4 bytes) instead of 25 bytes of text. The tables are rebuilt (SQLite cannot change a
-- primary key or a column's type in place), with foreign keys off, as SQLite documents.
CREATE TABLE volunteers_new (
    key         BLOB PRIMARY KEY,             -- HMAC(pepper, platform:user id)
    language    TEXT,
    timezone    TEXT,
    reminders   INTEGER NOT NULL DEFAULT 0,
    dm_address  TEXT,                         -- kept only while reminders are on
    dm_platform TEXT,
    created_at  INTEGER NOT NULL,             -- Unix seconds
    CHECK (reminders = 1 OR dm_address IS NULL)
) WITHOUT ROWID;

INSERT INTO volunteers_new
SELECT key, language, timezone, reminders, dm_address, dm_platform,
       COALESCE(CAST(strftime('%s', created_at) AS INTEGER), CAST(strftime('%s') AS INTEGER))
FROM volunteers;

CREATE TABLE pledges_new (
    volunteer   BLOB NOT NULL REFERENCES volunteers (key) ON DELETE CASCADE,
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    choice      TEXT NOT NULL CHECK (choice IN ('instagram', 'facebook', 'both')),
    number      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,             -- Unix seconds
    done_at     TEXT,
    PRIMARY KEY (volunteer, campaign_id)
) WITHOUT ROWID;

INSERT INTO pledges_new
SELECT volunteer, campaign_id, choice, number,
       COALESCE(CAST(strftime('%s', created_at) AS INTEGER), CAST(strftime('%s') AS INTEGER)),
       done_at
FROM pledges;

-- Which communities a pledge counts in (a volunteer counts once overall).
CREATE TABLE pledge_communities_new (
    volunteer    BLOB NOT NULL,
    campaign_id  INTEGER NOT NULL,
    community_id INTEGER NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    PRIMARY KEY (volunteer, campaign_id, community_id),
    FOREIGN KEY (volunteer, campaign_id) REFERENCES pledges (volunteer, campaign_id)
        ON DELETE CASCADE
) WITHOUT ROWID;

INSERT INTO pledge_communities_new SELECT volunteer, campaign_id, community_id
FROM pledge_communities;

DROP TABLE pledge_communities;
DROP TABLE pledges;
DROP TABLE volunteers;
ALTER TABLE volunteers_new RENAME TO volunteers;
ALTER TABLE pledges_new RENAME TO pledges;
ALTER TABLE pledge_communities_new RENAME TO pledge_communities;
