-- Linked accounts (issue 15): one person on several platforms is one volunteer. Each linked
-- account's key (the keyed hash of platform + user id) points at the key whose volunteer row
-- holds the person's pledge and settings; that key points at itself. Hashes only: a link is
-- stored between two HMACs, never between raw ids. Erasing the volunteer erases the links.
CREATE TABLE links (
    alias      BLOB PRIMARY KEY,
    person     BLOB NOT NULL REFERENCES volunteers (key) ON DELETE CASCADE,
    platform   TEXT NOT NULL,
    created_at INTEGER NOT NULL                 -- Unix seconds
) WITHOUT ROWID;
CREATE INDEX links_person ON links (person);

-- The one-time codes of /link: the code's keyed hash, the account that asked for it (one
-- live code per account), until when it works, and when it was used.
CREATE TABLE link_codes (
    code       BLOB PRIMARY KEY,
    key        BLOB NOT NULL UNIQUE,
    platform   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,                -- Unix seconds
    used_at    INTEGER
) WITHOUT ROWID;

-- Wrong codes sent by an account lately, so codes cannot be guessed by trying them all.
CREATE TABLE link_attempts (
    key      BLOB PRIMARY KEY,
    failures INTEGER NOT NULL,
    since    INTEGER NOT NULL                   -- Unix seconds: the first of them
) WITHOUT ROWID;
