"""How the PostgreSQL database is set up and kept: the numbered migrations that build its
tables, applied once however many processes start at the same moment, and the VACUUM that
clears what an erasure left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

# The transaction-level advisory lock every process takes before looking at the schema's
# version: the first one migrates, the others wait and then find nothing left to do. (Any
# other advisory lock of the bot, such as the scheduler's leadership, uses another key.)
MIGRATION_LOCK = 0x636F_616C_6D69_6772  # "coalmigr"

# The tables an erasure takes rows (or addresses) from, in the order they are vacuumed.
PERSONAL_TABLES = ("volunteers", "pledges", "pledge_communities", "deliveries")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of the migrations shipped in storage/postgres/migrations, in
    order."""
    found = []
    for entry in resources.files("storage.postgres.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name[5:-4], entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(conn: asyncpg.Connection) -> int:
    """Apply every migration newer than the stored version, all in one transaction that
    holds the migration lock; the schema's version afterwards."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = int(
            await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        )
        known = migrations()
        for version, name, script in known:
            if version <= current:
                continue
            await conn.execute(script)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
            )
            log.info("applied storage migration %04d (%s)", version, name)
            current = version
        if known and current > known[-1][0]:
            log.warning(
                "storage: the database's schema (%04d) is newer than this code's (%04d)",
                current,
                known[-1][0],
            )
    return current


async def vacuum(conn: asyncpg.Connection, tables: Iterable[str]) -> None:
    """VACUUM the tables (outside any transaction, as it must be), their indexes too: the
    dead row versions an erasure left, and the index entries pointing at them, are removed
    and their space marked free."""
    names = [table for table in PERSONAL_TABLES if table in set(tables)]
    if names:
        await conn.execute(f"VACUUM (INDEX_CLEANUP ON) {', '.join(names)}")
