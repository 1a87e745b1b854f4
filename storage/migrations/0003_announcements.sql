-- Organizers' announcements: the texts per language, kept until sent, then the broadcast
-- "announcement:<id>" delivers them.
CREATE TABLE announcements (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id),
    texts        TEXT NOT NULL,               -- JSON: {"ar": "...", "fr": "...", "en": "..."}
    source       TEXT NOT NULL,               -- the language missing variants fall back to
    created_at   TEXT NOT NULL
);
