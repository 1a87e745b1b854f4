-- Volunteers are known only by a keyed hash of platform + user id. No names, no text.
CREATE TABLE campaigns (
    id          INTEGER PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    pledged     INTEGER NOT NULL DEFAULT 0,   -- live counter: current pledges
    next_number INTEGER NOT NULL DEFAULT 1,   -- the number the next new pledge gets
    created_at  TEXT NOT NULL
);

CREATE TABLE volunteers (
    key         BLOB PRIMARY KEY,             -- HMAC(pepper, platform:user id)
    language    TEXT,
    timezone    TEXT,
    reminders   INTEGER NOT NULL DEFAULT 0,
    dm_address  TEXT,                         -- kept only while reminders are on
    created_at  TEXT NOT NULL,
    CHECK (reminders = 1 OR dm_address IS NULL)
) WITHOUT ROWID;

CREATE TABLE communities (
    id          INTEGER PRIMARY KEY,
    platform    TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    language    TEXT,
    subscribed  INTEGER NOT NULL DEFAULT 1,
    board_ref   TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (platform, chat_id)
);

CREATE TABLE pledges (
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    volunteer   BLOB NOT NULL REFERENCES volunteers (key) ON DELETE CASCADE,
    choice      TEXT NOT NULL CHECK (choice IN ('instagram', 'facebook', 'both')),
    number      INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (campaign_id, volunteer)
) WITHOUT ROWID;

-- Which communities a pledge counts in (a volunteer counts once overall).
CREATE TABLE pledge_communities (
    campaign_id  INTEGER NOT NULL,
    volunteer    BLOB NOT NULL,
    community_id INTEGER NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    PRIMARY KEY (campaign_id, volunteer, community_id),
    FOREIGN KEY (campaign_id, volunteer) REFERENCES pledges (campaign_id, volunteer)
        ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE community_tallies (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id),
    community_id INTEGER NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    pledged      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, community_id)
) WITHOUT ROWID;
