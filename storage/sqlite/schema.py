"""How the SQLite file is set up and kept: its pragmas, the numbered migrations that build its
tables, cutting its WAL to zero bytes, and how times are written in its TEXT columns.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import UTC, datetime
from importlib import resources

import aiosqlite

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000  # how long a write waits for another process's lock
# How long cutting the WAL waits for a reader (a backup, say) to let go: not the writers'
# five seconds, since the whole queue waits behind it; if the reader stays, the cut is owed.
WIPE_BUSY_TIMEOUT_MS = 200
# The WAL is copied into the database every this many pages (SQLite's default is 1,000). A
# pledge dirties a few random pages (its keys are hashes); between larger checkpoints a page
# is more often written by several pledges and copied once: COMMIT costs about a third less
# CPU at 100 pledges per transaction, for a WAL of up to 40 MB. Erasures still cut it to zero.
CHECKPOINT_PAGES = 10_000


def timestamp() -> str:
    """Now, as the TEXT the tables keep: UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def seconds() -> int:
    """Now, as the integer Unix seconds a volunteer's and a pledge's creation are kept in."""
    return int(time.time())


def moment(at: datetime) -> str:
    """A moment to compare with others in SQL: UTC, to the millisecond."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


# Page caches, in KiB, filled only as pages are read: the writer touches three random-key
# B-trees per pledge, the reader on the event loop two (bench/core.py: about 2 µs a pledge).
WRITER_CACHE_KIB = 32 * 1024
INLINE_CACHE_KIB = 16 * 1024


async def configure(conn: aiosqlite.Connection) -> None:
    """Set the connection's pragmas: WAL, foreign keys, secure_delete, the busy timeout, and
    a page cache that holds a busy campaign's hot B-tree pages (SQLite's default is 2 MB)."""
    await conn.executescript(
        f"""
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            PRAGMA foreign_keys = ON;
            PRAGMA secure_delete = ON;
            PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};
            PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES};
            PRAGMA cache_size = -{WRITER_CACHE_KIB};
            """
    )


async def configure_reader(conn: aiosqlite.Connection) -> None:
    """Set up the connection that only reads: it can never write, and waits for no lock
    (under WAL a reader needs none)."""
    await conn.executescript(
        f"""
            PRAGMA query_only = ON;
            PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};
            """
    )


def configure_inline(conn: sqlite3.Connection) -> None:
    """Set up the connection that reads on the event loop: it can never write, and never
    waits (busy is an answer, and the read goes to the reader's thread)."""
    conn.execute("PRAGMA query_only = ON")
    conn.execute("PRAGMA busy_timeout = 0")
    conn.execute(f"PRAGMA cache_size = -{INLINE_CACHE_KIB}")


def migrations() -> list[tuple[int, str]]:
    """The numbered SQL migrations shipped in storage/migrations, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(conn: aiosqlite.Connection) -> int:
    """Apply every migration newer than the stored schema version, each atomically."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
        "applied_at TEXT NOT NULL)"
    )
    async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version") as cursor:
        row = await cursor.fetchone()
    current = int(row[0]) if row else 0
    for version, script in migrations():
        if version <= current:
            continue
        await _apply(conn, version, script)
        log.info("applied storage migration %04d", version)
        current = version
    return current


async def _apply(conn: aiosqlite.Connection, version: int, script: str) -> None:
    """One migration in one transaction, with foreign keys off while it runs (a rebuilt
    parent table would otherwise take its children with it when dropped) and checked before
    it commits, as SQLite documents for changing a table's schema."""
    await conn.execute("PRAGMA foreign_keys = OFF")
    try:
        await conn.executescript(
            f"BEGIN IMMEDIATE;\n{script}\n;"
            f"INSERT INTO schema_version VALUES ({version}, '{timestamp()}');"
        )
        async with conn.execute("PRAGMA foreign_key_check") as cursor:
            broken = await cursor.fetchall()
        if broken:
            raise sqlite3.IntegrityError(
                f"migration {version:04d} would leave {len(broken)} rows without their parent"
            )
        await conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise
    finally:
        await conn.execute("PRAGMA foreign_keys = ON")


def truncate_wal(db: sqlite3.Connection) -> bool:
    """Runs on the database thread: wal_checkpoint(TRUNCATE), waiting a little for
    readers; True if the WAL is now empty."""
    db.execute(f"PRAGMA busy_timeout = {WIPE_BUSY_TIMEOUT_MS}")
    try:
        busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    finally:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return not busy
