"""A broadcast's recipients are added a chunk per transaction: a process stopped in the
middle leaves a broadcast half expanded, and the next one finishes it, each recipient once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from storage.base import PledgeStatus
from storage.sqlite import SQLiteStorage, queries
from storage.sqlite.store import EXPAND_CHUNK


def key(n: int) -> bytes:
    return n.to_bytes(32, "big")


async def test_a_restart_finishes_an_interrupted_expansion_once(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    storage = SQLiteStorage(path)
    await storage.open()
    c = await storage.ensure_campaign("c")
    await asyncio.gather(
        *(storage.set_reminders(key(n), True, str(n), "discord") for n in range(1, 5_001))
    )
    # What a process killed after its first chunk left: the broadcast and 2,000 rows.
    made, _ended = await storage._call(
        lambda db: queries.create_broadcast(
            db, c, "r1", "reminder", "start", "fr", True, False, None, None
        )
    )
    assert made is not None
    so_far, finished, _ = await storage._call(lambda db: queries.expand_step(db, made.id, 2_000))
    assert (so_far, finished) == (2_000, False)
    await storage.close()

    restarted = SQLiteStorage(path)
    await restarted.open()
    try:
        # Creating it again (the scheduler firing the same rung) finishes it and makes nothing.
        assert await restarted.create_broadcast(c, "r1", "reminder", "start", "fr") is None
        assert await restarted.finish_expansions() == 0
        assert await restarted.delivery_counts(made.id) == {"pending": 5_000}
        rows = await restarted.claim_deliveries("discord", 10_000)
        assert sorted(int(row.address) for row in rows) == list(range(1, 5_001))
        assert {row.language for row in rows} == {"fr"}
        pledged = await restarted.pledge(c, key(1), "discord", None, None)
        assert pledged.status is PledgeStatus.NEW
    finally:
        await restarted.close()


async def test_the_outbox_recovery_finishes_it_too(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "bot.sqlite3")
    await storage.open()
    try:
        c = await storage.ensure_campaign("c")
        await asyncio.gather(
            *(storage.set_reminders(key(n), True, str(n), "telegram") for n in range(1, 2_501))
        )
        made, _ended = await storage._call(
            lambda db: queries.create_broadcast(
                db, c, "r1", "reminder", "start", "en", True, False, None, None
            )
        )
        assert made is not None
        assert await storage.finish_expansions() == 1
        assert await storage.delivery_counts(made.id) == {"pending": 2_500}
        assert await storage.finish_expansions() == 0
    finally:
        await storage.close()


async def test_a_large_broadcast_returns_after_its_first_chunk(tmp_path: Path) -> None:
    """The organizer's answer and the first sends do not wait for every recipient; a stop
    in the middle leaves the rest to the next start, each recipient once."""
    path = tmp_path / "bot.sqlite3"
    storage = SQLiteStorage(path)
    await storage.open()
    c = await storage.ensure_campaign("c")
    await asyncio.gather(
        *(storage.set_reminders(key(n), True, str(n), "telegram") for n in range(1, 2_501))
    )
    made = await storage.create_broadcast(c, "r1", "reminder", "start", "en")
    assert made is not None and made.recipients == EXPAND_CHUNK
    await storage.expansions_done()
    assert await storage.delivery_counts(made.id) == {"pending": 2_500}

    second = await storage.create_broadcast(c, "r2", "reminder", "end", "en")
    assert second is not None and second.recipients == EXPAND_CHUNK
    await storage.close()  # stopped while the rest was being added

    restarted = SQLiteStorage(path)
    await restarted.open()
    try:
        assert await restarted.finish_expansions() == 1
        assert await restarted.delivery_counts(second.id) == {"pending": 2_500}
        rows = await restarted.claim_deliveries("telegram", 10_000)
        addresses = [int(row.address) for row in rows if row.broadcast_id == second.id]
        assert sorted(addresses) == list(range(1, 2_501))
    finally:
        await restarted.close()
