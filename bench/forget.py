"""Benchmark of /forget and of the database's size as pledges grow.

Builds a database of N volunteers who pledged (the real schema, through SQLiteStorage's own
migrations; rows bulk-loaded with sqlite3 for speed), then times `Storage.forget` for
volunteers picked at random, each a full erasure (rows, counters, the WAL cut) as /forget
does it, and prints the file's size per 1,000,000 pledges.

    .venv/bin/python bench/forget.py [--pledges 1000000] [--samples 50] [--runs 3]

Target (issue 12): /forget at 1,000,000 pledges <= 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.sqlite import SQLiteStorage  # noqa: E402

CREATED = 1_796_126_400  # 2026-12-01T12:00:00Z, Unix seconds as the tables keep it


def key(n: int) -> bytes:
    return hashlib.sha256(f"volunteer:{n}".encode()).digest()


def load(path: Path, pledges: int) -> None:
    """N volunteers, each with a pledge in campaign 1, in one transaction."""
    db = sqlite3.connect(path)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO volunteers (key, language, reminders, created_at) VALUES (?, 'en', 0, ?)",
        ((key(n), CREATED) for n in range(pledges)),
    )
    db.executemany(
        "INSERT INTO pledges (campaign_id, volunteer, choice, number, created_at) "
        "VALUES (1, ?, 'both', ?, ?)",
        ((key(n), n + 1, CREATED) for n in range(pledges)),
    )
    db.execute("UPDATE campaigns SET pledged = ?, next_number = ? WHERE id = 1", (pledges, pledges))
    db.commit()
    db.execute("VACUUM")
    db.close()


async def run(pledges: int, samples: int) -> tuple[list[float], int]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "forget.sqlite3"
        storage = SQLiteStorage(path)
        await storage.open()
        campaign = await storage.ensure_campaign("bench")
        assert campaign == 1
        await storage.close()
        load(path, pledges)
        size = path.stat().st_size
        storage = SQLiteStorage(path)
        await storage.open()
        try:
            timings = []
            for n in random.Random(7).sample(range(pledges), samples):
                start = time.perf_counter()
                erased = await storage.forget(key(n))
                timings.append(time.perf_counter() - start)
                assert erased
        finally:
            await storage.close()
        return timings, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pledges", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    medians = []
    for index in range(args.runs):
        timings, size = asyncio.run(run(args.pledges, args.samples))
        median = statistics.median(timings) * 1000
        medians.append(median)
        print(
            f"run {index + 1}: /forget at {args.pledges:,} pledges: "
            f"min {min(timings) * 1000:.2f} ms  median {median:.2f} ms  "
            f"max {max(timings) * 1000:.2f} ms  ({args.samples} volunteers)"
        )
        print(f"run {index + 1}: database {size / 1e6:.1f} MB = {size / args.pledges:.0f} B/pledge")
    print(
        f"/forget median over runs: min {min(medians):.2f} ms  "
        f"median {statistics.median(medians):.2f} ms"
    )


if __name__ == "__main__":
    main()
