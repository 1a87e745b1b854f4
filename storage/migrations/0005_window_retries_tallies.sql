-- An organizer's freeze window (set with /campaign) overrides the configured one.
ALTER TABLE campaigns ADD COLUMN start_at TEXT;   -- UTC, ISO 8601
ALTER TABLE campaigns ADD COLUMN end_at TEXT;

-- A delivery waiting out a 429 or a backoff is not claimed before this moment.
ALTER TABLE deliveries ADD COLUMN not_before TEXT;  -- UTC, ISO 8601; NULL: at once

-- When the request of a claimed delivery went out. A row claimed but not yet sent (still
-- waiting for its turn in the pacer) has none: after a crash it is simply sent, never
-- marked unknown; a row sent long ago is not resent on Discord (nonces are remembered
-- only a few minutes).
ALTER TABLE deliveries ADD COLUMN sending_at TEXT;  -- UTC, ISO 8601

-- Progress of one broadcast (the /announce progress message) without a scan.
CREATE INDEX deliveries_by_broadcast ON deliveries (broadcast_id, state);

-- Communities whose organizers turned on the periodic tally post.
ALTER TABLE communities ADD COLUMN tally_posts INTEGER NOT NULL DEFAULT 0;

-- Where an announcement's progress message is (the front-end's reference, JSON), until its
-- final report is shown: a restart picks it up again.
ALTER TABLE broadcasts ADD COLUMN progress TEXT;
