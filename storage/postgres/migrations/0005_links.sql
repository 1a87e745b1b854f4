-- Linked accounts (issue 15): one person on several platforms is one volunteer. Each linked
-- account's key (the keyed hash of platform + user id) points at the key whose volunteer row
-- holds the person's pledge and settings; that key points at itself. Hashes only: a link is
-- stored between two HMACs, never between raw ids. Erasing the volunteer erases the links.
CREATE TABLE links (
    alias      bytea PRIMARY KEY,
    person     bytea NOT NULL REFERENCES volunteers (key) ON DELETE CASCADE,
    platform   text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX links_person ON links (person);

-- The one-time codes of /link: the code's keyed hash, the account that asked for it (one
-- live code per account), until when it works, and when it was used.
CREATE TABLE link_codes (
    code       bytea PRIMARY KEY,
    key        bytea NOT NULL UNIQUE,
    platform   text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

-- Wrong codes sent by an account lately, so codes cannot be guessed by trying them all.
CREATE TABLE link_attempts (
    key      bytea PRIMARY KEY,
    failures integer NOT NULL,
    since    timestamptz NOT NULL                -- the first of them
);
