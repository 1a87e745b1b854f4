-- A community's tally post at the hour its admins chose (/tallypost on 18:00), in the
-- campaign's time zone; NULL: the default slots, aligned to 00:00 UTC.
ALTER TABLE communities ADD COLUMN tally_hour INTEGER CHECK (tally_hour BETWEEN 0 AND 23);
