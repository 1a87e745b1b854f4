"""Issue 10: a storage that fails (a full disk, a read-only file, a reader in the way) gets an
honest answer in the volunteer's language, never "nothing you sent was lost"; one failing
operation never takes the others of its group commit down, nor is reported as saved; and
shutdown still closes cleanly.

A full disk is SQLite's own limit on the live connection (`PRAGMA max_page_count`), which
fails a write with SQLITE_FULL exactly as a full disk does; the tests run as root, so a
read-only file is the same file opened read-only (`mode=ro`), as a read-only mount would."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite

from storage.base import PledgeResult, StorageError
from storage.sqlite import SQLiteStorage
from tests.conftest import App

FULL_EN = "I could not save that: the bot's storage is failing. Please try again later."
FULL_FR = (
    "Je n’ai pas pu enregistrer cela\u00a0: le stockage du bot est en panne. "
    "Veuillez réessayer plus tard."
)
LOST = "Nothing you sent was lost"


async def fill_the_disk(storage: SQLiteStorage) -> None:
    """From now on, a write that needs one more page fails as on a full disk."""
    await storage._call(
        lambda db: db.execute(
            f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}"
        ).fetchall()
    )


async def free_the_disk(storage: SQLiteStorage) -> None:
    await storage._call(lambda db: db.execute("PRAGMA max_page_count = 1073741823").fetchall())


class ReadOnlyFile(SQLiteStorage):
    """The same storage on a database file the system only lets it read."""

    async def open(self) -> None:
        self._conn = await aiosqlite.connect(
            f"file:{self.path}?mode=ro", uri=True, isolation_level=None
        )
        await self._conn.execute("PRAGMA foreign_keys = ON")


async def test_a_full_disk_gets_an_honest_answer_in_the_readers_language(app: App) -> None:
    storage = app.services.storage
    assert isinstance(storage, SQLiteStorage)
    await app.run("/pledge")
    await fill_the_disk(storage)
    refused, saved = "", 1
    for n in range(1000):  # volunteers keep pledging until the disk has no room left
        out = await app.run(f":as v{n}\n/pledge")
        if "Thank you!" not in out:
            refused = out
            break
        saved += 1
    assert FULL_EN in refused
    assert LOST not in refused
    assert f"{saved} volunteers have pledged in all." in await app.run("/tally")  # reads work
    assert "You have not pledged yet." in await app.run("/mypledge")  # nothing half-saved
    out = await app.run(":hint fr\n/pledge")
    assert FULL_FR in out
    await free_the_disk(storage)  # room again: "try again later" was true
    out = await app.run(":hint en\n/pledge")
    assert "Thank you!" in out and f"volunteer number {saved + 1}." in out


async def test_a_read_only_database_refuses_writes_honestly_and_still_reads(app: App) -> None:
    await app.run(":private\n/pledge")
    read_only = ReadOnlyFile(app.services.storage.path)
    await read_only.open()
    app.services.storage = read_only
    try:
        out = await app.run(":as karim\n/pledge")
        assert FULL_EN in out and LOST not in out
        out = await app.run(":hint fr\n/language fr")
        assert FULL_FR in out
        assert "1 volunteer has pledged in all." in await app.run(":as amina\n:hint en\n/tally")
        out = await app.run("/forget confirm")
        assert "I could not erase your data: the bot's storage is failing." in out
        assert "Nothing was erased" in out and "is erased" not in out
        out = await app.run(":hint fr\n/forget confirm")
        assert "Je n’ai pas pu effacer vos données" in out
    finally:
        await asyncio.wait_for(read_only.close(), timeout=30)  # closes, never raises


async def test_a_forget_whose_copies_could_not_be_wiped_says_so(app: App) -> None:
    await app.run(":private\n/pledge")
    key = app.services.identities.key("console", "amina")
    storage = app.services.storage
    assert isinstance(storage, SQLiteStorage)
    # Someone reads the database (a backup, say) and holds the WAL: it cannot be cut now.
    reader = sqlite3.connect(storage.path)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM volunteers").fetchall()
        out = await app.run("/forget confirm")
        assert "Your data is deleted and your pledge no longer counts, but old copies" in out
        assert "Done: everything about you is erased" not in out
        assert "0 volunteers have pledged in all." in await app.run("/tally")
    finally:
        reader.close()
    # The next erasure (anyone's) cuts the WAL for both.
    out = await app.run(":as karim\n/pledge\n/forget confirm")
    assert "Done: everything about you is erased" in out
    data_dir = app.services.settings.data_dir
    blobs = b"".join(p.read_bytes() for p in data_dir.iterdir() if p.name != "pepper")
    assert key not in blobs


async def test_a_write_too_big_for_the_disk_fails_alone(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "full.sqlite3")
    await storage.open()
    c = await storage.ensure_campaign("c")
    await storage.pledge(c, b"\x01" * 32, "console", "g", "both")
    await fill_the_disk(storage)
    outcomes = await asyncio.gather(
        storage.set_language(b"\x01" * 32, "fr"),
        storage.save_announcement(c, {"en": "x" * 200_000}, "en"),
        storage.set_timezone(b"\x01" * 32, "Africa/Cairo"),
        return_exceptions=True,
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], StorageError)
    volunteer, _community = await storage.load_context(b"\x01" * 32, "console", None)
    assert volunteer is not None
    assert (volunteer.language, volunteer.timezone) == ("fr", "Africa/Cairo")
    await asyncio.wait_for(storage.close(), timeout=30)


async def test_a_failed_commit_never_reports_a_write_as_saved(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "commit.sqlite3")
    await storage.open()
    c = await storage.ensure_campaign("c")

    def fails_at_commit(db: sqlite3.Connection) -> None:
        # A foreign key checked only at COMMIT: this operation makes the COMMIT itself fail.
        db.execute("PRAGMA defer_foreign_keys = ON")
        db.execute(
            "INSERT INTO pledges (campaign_id, volunteer, choice, number, created_at) "
            "VALUES (?, ?, 'both', 99, 0)",
            (c, b"\x09" * 32),
        )

    outcomes = await asyncio.gather(
        storage.pledge(c, b"\x01" * 32, "console", None, "both"),
        storage._call(fails_at_commit),
        storage.pledge(c, b"\x02" * 32, "console", None, "both"),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], sqlite3.Error)
    # the others were saved (each retried alone), and say so; the failing one is not saved
    assert isinstance(outcomes[0], PledgeResult) and isinstance(outcomes[2], PledgeResult)
    assert (await storage.tally(c, "console", None)).total == 2
    assert await storage.get_pledge(c, b"\x09" * 32) is None
    await storage.close()
