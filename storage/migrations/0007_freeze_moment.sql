-- The freeze moment (issue 12): nothing may hold the one writer for long.

-- /forget finds a volunteer's pledges, and the foreign keys find the rows that hang on a
-- volunteer, by the volunteer alone: without this index both scan every pledge.
CREATE INDEX pledges_by_volunteer ON pledges (volunteer);

-- A broadcast's opted-in volunteers are added in chunks, a transaction each, so presses are
-- written between them. `expand_after` is the last volunteer key already looked at (X'' to
-- begin, NULL once every volunteer was): a restart continues from there. The language and
-- platforms the expansion was asked for stay with it.
ALTER TABLE broadcasts ADD COLUMN expand_after BLOB;
ALTER TABLE broadcasts ADD COLUMN expand_language TEXT;
ALTER TABLE broadcasts ADD COLUMN expand_only TEXT;  -- JSON list of platforms; NULL: all
