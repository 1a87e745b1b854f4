-- The per-volunteer command bucket every process shares (the flood limit). UNLOGGED: never
-- written to the WAL (so never in a replica or a WAL archive) and emptied after a crash,
-- which only resets the allowance. A row lives until its bucket is full again.
CREATE UNLOGGED TABLE command_tokens (
    key     bytea PRIMARY KEY,
    tokens  double precision NOT NULL,
    at      double precision NOT NULL  -- Unix seconds of the last command
);
