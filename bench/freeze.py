"""Benchmark of the freeze moment inside one process: presses while a reminder to a million
volunteers is expanded into deliveries.

A database of N volunteers who opted in to reminders (the real schema; rows bulk-loaded with
sqlite3) is opened by the real bot (`bootstrap`: dispatcher, flood guard, handlers, i18n,
SQLiteStorage). New volunteers press /pledge open-loop at R per second for D seconds (each
press is due at its own intended time, and its latency counts from then, so a queue shows);
after W seconds the freeze reminder is created, expanding into N deliveries. Printed: the
press latency p50/p99/max during the expansion and outside it, how many presses took over
1 s and over 3 s (Discord's limit), and how long the expansion took.

    .venv/bin/python bench/freeze.py [--volunteers 1000000] [--rate 500] [--seconds 60]
        [--chunks 1000,0] [--runs 3]

`--chunk 0` expands in one transaction (what the bot did before issue 12), in the same run.
Target (issue 12): press p99 <= 1 s during the expansion.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import storage.sqlite.store as sqlite_store  # noqa: E402
from bot.app.bootstrap import bootstrap  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from bot.core.types import ChatKind, Invocation, Platform  # noqa: E402

PEPPER = "bench-pepper-" + "f" * 40
CREATED = 1_796_126_400  # 2026-12-01T12:00:00Z, Unix seconds as the tables keep it


def settings_for(data_dir: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        pepper=PEPPER,
        campaign_timezone="Europe/Paris",
        campaign_start="2026-12-16T09:00",  # type: ignore[arg-type]
        campaign_end="2026-12-17T09:00",  # type: ignore[arg-type]
        log_level="WARNING",
        rate_limit_commands=1000,
        rate_limit_seconds=1,
    )


def press(user: int) -> Invocation:
    return Invocation(
        platform=Platform.TELEGRAM,
        user_id=str(user),
        chat_id=str(user),
        chat_kind=ChatKind.PRIVATE,
        command="pledge",
        text="",
        language_hint=("ar", "fr", "en")[user % 3],
        dm_address=str(user),
    )


def load(path: Path, volunteers: int) -> None:
    """N volunteers who opted in to reminders by Telegram private message."""
    db = sqlite3.connect(path)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO volunteers (key, language, reminders, dm_address, dm_platform, created_at) "
        "VALUES (?, ?, 1, ?, 'telegram', ?)",
        (
            (
                hashlib.sha256(f"v{n}".encode()).digest(),
                ("ar", "fr", "en")[n % 3],
                str(10_000_000 + n),
                CREATED,
            )
            for n in range(volunteers)
        ),
    )
    db.commit()
    db.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def one_run(template: Path, rate: int, seconds: float, wait: float, chunk: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        shutil.copyfile(template, data / "coalition.sqlite3")
        sqlite_store.EXPAND_CHUNK = chunk if chunk > 0 else 10**12
        async with bootstrap(settings_for(data)) as (services, dispatcher):
            loop = asyncio.get_running_loop()
            latencies: list[tuple[float, float]] = []  # (intended offset, latency)
            window: list[float] = []
            tasks: set[asyncio.Task[None]] = set()

            async def one(user: int, intended: float) -> None:
                await dispatcher.handle(press(user))
                latencies.append((intended - start, loop.time() - intended))

            async def expand() -> None:
                await asyncio.sleep(wait)
                began = loop.time()
                made = await services.storage.create_broadcast(
                    services.campaign.id, "reminder:bench:start", "reminder", "start", "en"
                )
                await services.storage.expansions_done()  # the rest is added in the background
                window.extend([began - start, loop.time() - start])
                assert made is not None

            start = loop.time()
            expansion = asyncio.ensure_future(expand())
            total = int(rate * seconds)
            for i in range(total):
                intended = start + i / rate
                delay = intended - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.ensure_future(one(5_000_000 + i, intended))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await expansion
            while tasks:
                await asyncio.wait(set(tasks))
    began, ended = window
    during = [lat for at, lat in latencies if began <= at <= ended]
    outside = [lat for at, lat in latencies if not began <= at <= ended]
    return {
        "expansion_s": ended - began,
        "during_p50": pct(during, 0.5) * 1000,
        "during_p99": pct(during, 0.99) * 1000,
        "during_max": max(during, default=float("nan")) * 1000,
        "during_n": len(during),
        "outside_p99": pct(outside, 0.99) * 1000,
        "over_1s": sum(lat > 1 for _, lat in latencies),
        "over_3s": sum(lat > 3 for _, lat in latencies),
        "presses": len(latencies),
    }


async def build(path: Path, volunteers: int) -> None:
    async with bootstrap(settings_for(path.parent)):
        pass  # the schema, by the bot's own migrations
    load(path, volunteers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volunteers", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--wait", type=float, default=5, help="seconds before the reminder")
    parser.add_argument(
        "--chunks", default=f"{sqlite_store.EXPAND_CHUNK},0", help="chunk sizes; 0: one"
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    chunks = [int(c) for c in args.chunks.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "coalition.sqlite3"
        started = time.perf_counter()
        asyncio.run(build(template, args.volunteers))
        took = time.perf_counter() - started
        print(f"built {args.volunteers:,} opted-in volunteers in {took:.0f} s")
        results: dict[int, list[dict]] = {c: [] for c in chunks}
        for run in range(args.runs):
            for chunk in chunks:  # interleaved: the machine's noise hits both alike
                r = asyncio.run(one_run(template, args.rate, args.seconds, args.wait, chunk))
                results[chunk].append(r)
                name = f"chunk {chunk}" if chunk else "one transaction"
                print(
                    f"run {run + 1} {name:>15}: expansion {r['expansion_s']:.1f} s; presses "
                    f"during it p50 {r['during_p50']:.0f} ms p99 {r['during_p99']:.0f} ms "
                    f"max {r['during_max']:.0f} ms (n={r['during_n']}); outside p99 "
                    f"{r['outside_p99']:.0f} ms; >1 s: {r['over_1s']}, >3 s: {r['over_3s']} "
                    f"of {r['presses']}",
                    flush=True,
                )
    for chunk, runs in results.items():
        name = f"chunk {chunk}" if chunk else "one transaction"
        p99s = [r["during_p99"] for r in runs]
        exp = [r["expansion_s"] for r in runs]
        print(
            f"{name:>15}: press p99 during expansion min {min(p99s):.0f} ms median "
            f"{statistics.median(p99s):.0f} ms; expansion min {min(exp):.1f} s median "
            f"{statistics.median(exp):.1f} s"
        )


if __name__ == "__main__":
    main()
