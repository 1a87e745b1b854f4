"""A database written by an earlier version opens in this one with everything it held."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from storage.sqlite import schema
from storage.sqlite.store import SQLiteStorage

ALICE, BOB = b"\x01" * 32, b"\x02" * 32


def database_of_version(path: Path, version: int) -> None:
    """The tables as the bot left them at `version`, with the migrations it shipped then."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for number, script in schema.migrations():
        if number <= version:
            db.executescript(f"BEGIN; {script}; INSERT INTO schema_version VALUES ({number}, '');")
            db.execute("COMMIT")
    db.close()


async def test_pledges_written_before_the_lean_tables_survive_the_migration(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    database_of_version(path, 7)
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        """
        INSERT INTO campaigns (id, slug, pledged, next_number, created_at)
            VALUES (1, 'c', 2, 3, '2026-11-01T08:00:00+00:00');
        INSERT INTO communities (id, platform, chat_id, created_at)
            VALUES (7, 'telegram', '-100', '2026-11-01T08:00:00+00:00');
        INSERT INTO community_tallies VALUES (1, 7, 2);
        """
    )
    db.executemany(
        "INSERT INTO volunteers (key, language, reminders, dm_address, dm_platform, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (ALICE, "ar", 1, "11", "telegram", "2026-11-02T10:30:00+00:00"),
            (BOB, None, 0, None, None, "2026-11-03T11:00:00+00:00"),
        ],
    )
    db.executemany(
        "INSERT INTO pledges (campaign_id, volunteer, choice, number, created_at) "
        "VALUES (1, ?, ?, ?, ?)",
        [
            (ALICE, "instagram", 1, "2026-11-02T10:31:00+00:00"),
            (BOB, "both", 2, "2026-11-03T11:01:00+00:00"),
        ],
    )
    db.executemany("INSERT INTO pledge_communities VALUES (1, ?, 7)", [(ALICE,), (BOB,)])
    db.close()

    storage = SQLiteStorage(path)
    await storage.open()
    try:
        alice = await storage.export(1, ALICE)
        assert alice.volunteer is not None and alice.pledge is not None
        assert alice.volunteer.language == "ar"
        assert alice.volunteer.dm_address == "11"
        assert alice.volunteer.created_at == datetime(2026, 11, 2, 10, 30, tzinfo=UTC)
        assert alice.pledge.choice == "instagram"
        assert alice.pledge.number == 1
        assert alice.pledge.created_at == datetime(2026, 11, 2, 10, 31, tzinfo=UTC)
        assert alice.pledge.communities == 1
        assert (await storage.tally(1, "telegram", "-100")).total == 2

        # The rebuilt tables still hang together: a new pledge is counted and numbered after
        # the old ones, and erasing a volunteer takes their pledge and its community count.
        new = await storage.pledge(1, b"\x03" * 32, "telegram", "-100", "both")
        assert (new.number, new.total) == (3, 3)
        assert await storage.forget(ALICE)
        assert await storage.get_pledge(1, ALICE) is None
        tally = await storage.tally(1, "telegram", "-100")
        assert (tally.total, tally.community) == (2, 2)
    finally:
        await storage.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("SELECT COUNT(*) FROM pledges").fetchone()[0] == 2
    db.close()
