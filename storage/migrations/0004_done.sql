-- The check-in after the freeze: who says they froze their accounts, counted like pledges.
ALTER TABLE pledges ADD COLUMN done_at TEXT;
ALTER TABLE campaigns ADD COLUMN done INTEGER NOT NULL DEFAULT 0;
