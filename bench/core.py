"""Benchmark of the command core: pledges per second, and /tally latency as pledges grow.

Runs the full core (dispatcher, flood guard, locale resolution, handler, i18n, SQLite through
aiosqlite) pinned to ONE CPU core, as the bot would run on a small server.

    .venv/bin/python bench/core.py [--volunteers 100000] [--tally-sizes 1000,1000000]

Prints one line per figure. Targets: >= 5,000 pledges/s; /tally under 1 ms at 1,000,000
pledges and not growing with the number of pledges (compare the ratio printed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiosqlite

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app.bootstrap import bootstrap  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from bot.core.types import ChatKind, Invocation, Platform  # noqa: E402
from bot.services.dispatch import Dispatcher  # noqa: E402

PEPPER = "bench-pepper-" + "b" * 40
GROUP = "-1001234567890"


def settings_for(data_dir: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        pepper=PEPPER,
        campaign_timezone="Europe/Paris",
        campaign_start="2026-12-16T09:00",  # type: ignore[arg-type]
        campaign_end="2026-12-17T09:00",  # type: ignore[arg-type]
        log_level="WARNING",
    )


def invocation(user: int, command: str, text: str = "") -> Invocation:
    return Invocation(
        platform=Platform.TELEGRAM,
        user_id=str(user),
        chat_id=GROUP,
        chat_kind=ChatKind.GROUP,
        command=command,
        text=text,
        language_hint=("ar", "fr", "en")[user % 3],
        dm_address=str(user),
    )


async def pledge_rate(dispatcher: Dispatcher, first: int, count: int, in_flight: int) -> float:
    """Pledges per second for `count` distinct volunteers, `in_flight` at a time."""
    users = iter(range(first, first + count))
    handled = 0

    async def worker() -> None:
        nonlocal handled
        for user in users:
            replies = await dispatcher.handle(invocation(user, "pledge", "both"))
            assert replies and "1" in replies[0].text
            handled += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - start
    assert handled == count
    return count / elapsed


async def aiosqlite_rate(
    db_path: Path, rows: int, batched: bool, per_transaction: int = 100
) -> float:
    """aiosqlite's own insert rate, as a careful user writes it: WAL, synchronous=NORMAL,
    `per_transaction` rows of a pledge's size per transaction, one transaction after
    another; each row its own `execute` (an insert per request, as a bot makes them: the
    issue's 27k/s) or, `batched`, one `executemany` per transaction (the ceiling)."""
    async with aiosqlite.connect(db_path) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute(
            "CREATE TABLE pledges (campaign_id INTEGER, volunteer BLOB, choice TEXT, "
            "number INTEGER, created_at TEXT, PRIMARY KEY (campaign_id, volunteer)) WITHOUT ROWID"
        )
        insert = "INSERT INTO pledges VALUES (1, ?, 'both', ?, ?)"
        now = "2026-12-01T12:00:00+00:00"
        start = time.perf_counter()
        for base in range(0, rows, per_transaction):
            values = [(os.urandom(32), base + i, now) for i in range(per_transaction)]
            if batched:
                await db.executemany(insert, values)
            else:
                for row in values:
                    await db.execute(insert, row)
            await db.commit()
        return rows / (time.perf_counter() - start)


def bulk_load(db_path: Path, campaign_id: int, total: int) -> None:
    """Insert `total` pledges straight into SQLite, counters included, as the core would."""
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = "2026-12-01T12:00:00+00:00"
    since = 1_796_126_400  # the same moment, in the Unix seconds volunteers and pledges keep
    community = db.execute(
        "INSERT INTO communities (platform, chat_id, created_at) VALUES ('telegram', ?, ?) "
        "ON CONFLICT DO UPDATE SET chat_id = chat_id RETURNING id",
        (GROUP, now),
    ).fetchall()[0][0]
    batch = 50_000
    for base in range(0, total, batch):
        keys = [os.urandom(32) for _ in range(min(batch, total - base))]
        db.executemany(
            "INSERT INTO volunteers (key, created_at) VALUES (?, ?)", [(k, since) for k in keys]
        )
        db.executemany(
            "INSERT INTO pledges (campaign_id, volunteer, choice, number, created_at) "
            "VALUES (?, ?, 'both', ?, ?)",
            [(campaign_id, k, base + i + 1, since) for i, k in enumerate(keys)],
        )
        db.executemany(
            "INSERT INTO pledge_communities (campaign_id, volunteer, community_id) "
            "VALUES (?, ?, ?)",
            [(campaign_id, k, community) for k in keys],
        )
    db.execute(
        "UPDATE campaigns SET pledged = pledged + ?, next_number = next_number + ? WHERE id = ?",
        (total, total, campaign_id),
    )
    db.execute(
        "INSERT INTO community_tallies VALUES (?, ?, ?) "
        "ON CONFLICT DO UPDATE SET pledged = pledged + excluded.pledged",
        (campaign_id, community, total),
    )
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


async def tally_latency(data_dir: Path, pledges: int, samples: int) -> tuple[float, float, str]:
    """p50 and p99 of /tally through the core, in ms, with `pledges` pledges stored."""
    settings = settings_for(data_dir)
    async with bootstrap(settings) as (services, _dispatcher):
        campaign_id = services.campaign.id
    bulk_load(settings.db_path, campaign_id, pledges)
    async with bootstrap(settings) as (_services, dispatcher):
        timings = []
        text = ""
        for i in range(samples):
            start = time.perf_counter()
            replies = await dispatcher.handle(invocation(10_000_000 + i % 1000, "tally"))
            timings.append(time.perf_counter() - start)
            text = replies[0].text
    timings.sort()
    p50 = statistics.median(timings) * 1000
    p99 = timings[int(len(timings) * 0.99) - 1] * 1000
    return p50, p99, text


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volunteers", type=int, default=100_000)
    parser.add_argument("--tally-sizes", default="1000,1000000")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="core vs aiosqlite, alternated")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, cores used: {cores}")

    with tempfile.TemporaryDirectory() as tmp:
        async with bootstrap(settings_for(Path(tmp))) as (services, dispatcher):
            sequential = await pledge_rate(dispatcher, 0, min(10_000, args.volunteers), 1)
    print(f"pledges/s, one at a time (10,000 volunteers): {sequential:,.0f}")

    # The core and its baselines alternate, each round on fresh files, so that a load that
    # comes and goes on a shared machine falls on both sides of each ratio.
    ratios: list[tuple[float, float]] = []
    for round_ in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            async with bootstrap(settings_for(Path(tmp))) as (services, dispatcher):
                concurrent = await pledge_rate(dispatcher, 10**7, args.volunteers, 100)
                tally = await services.storage.tally(services.campaign.id, "telegram", GROUP)
            assert tally.total == args.volunteers, tally
            each = await aiosqlite_rate(Path(tmp) / "each.sqlite3", args.volunteers, False)
            many = await aiosqlite_rate(Path(tmp) / "many.sqlite3", args.volunteers, True)
        ratios.append((concurrent / each, concurrent / many))
        print(
            f"round {round_}: pledges/s, 100 in flight ({args.volunteers:,} distinct "
            f"volunteers): {concurrent:,.0f}; aiosqlite, 100 inserts per transaction: "
            f"{each:,.0f} rows/s one execute each, {many:,.0f} rows/s one executemany"
        )
    by_each = sorted(r[0] for r in ratios)
    by_many = sorted(r[1] for r in ratios)
    print(
        f"core / aiosqlite, min / median of {len(ratios)} rounds: {by_each[0]:.2f} / "
        f"{statistics.median(by_each):.2f} of one execute per insert (issue 12 target: "
        f">= 0.35); {by_many[0]:.2f} / {statistics.median(by_many):.2f} of executemany"
    )

    results = []
    for size in (int(s) for s in args.tally_sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            p50, p99, text = await tally_latency(Path(tmp), size, args.samples)
        first_line = text.splitlines()[0]
        results.append((size, p50, p99))
        print(f"/tally at {size:,} pledges: p50 {p50:.3f} ms, p99 {p99:.3f} ms  [{first_line}]")
    if len(results) > 1:
        ratio = results[-1][1] / results[0][1]
        print(
            f"/tally p50 ratio {results[-1][0]:,} vs {results[0][0]:,} pledges: {ratio:.2f}x "
            "(1.0 = flat)"
        )


if __name__ == "__main__":
    asyncio.run(main())
