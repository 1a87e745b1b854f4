"""Benchmark: one broadcast to 20,000 volunteers through the outbox, against the fake Bot API
server enforcing an overall limit L, and the same through python-telegram-bot's
AIORateLimiter two ways; then the memory of expanding 1,000,000 recipients.

The senders:

- `outbox`: coalition-bot's outbox and Telegram transport;
- `plain`: a plain loop of send_message through `AIORateLimiter(overall_max_rate=L,
  overall_time_period=1, max_retries=5)` that launches every send at once (gather);
- `plain-pool`: what a careful PTB user writes: the same AIORateLimiter (429s retried by
  it, as PTB documents, `max_retries=5`) with a bounded pool of senders, an asyncio.Queue of
  recipients drained by `--workers` tasks (default L/5, enough to keep L/s going with
  200 ms round trips).

The fake server runs in this process; each sender runs in its own process, so its peak
RSS is its own. Prints, for each: seconds, achieved rate, efficiency = rate / L, 429s
answered, peak RSS, and the machine's load average.

    .venv/bin/python bench/broadcast.py [--recipients 20000] [--limit 170]
        [--only outbox,plain,plain-pool,expand] [--workers N] [--runs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "123456:BROADCAST" + "abcdefghijklmnopqrstuvwxyzABCD"
FIRST_USER = 5_000_000


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started (VmHWM). ru_maxrss would also
    count the pages of the benchmark process it was forked from, before exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def child_outbox(count: int, limit: float) -> dict[str, float]:
    """coalition-bot: opted-in volunteers, one broadcast, the outbox drains it."""
    from bot.app.bootstrap import bootstrap
    from bot.core.settings import Settings
    from bot.delivery.outbox import Outbox
    from bot.frontends.telegram import TelegramFrontend

    data = Path(os.environ["DATA"])
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data,
        pepper="bench-pepper-" + "o" * 40,
        telegram_token=TOKEN,  # type: ignore[arg-type]
        telegram_base_url=os.environ["BASE_URL"],
        telegram_base_file_url=os.environ["BASE_FILE_URL"],
        telegram_rate_overall=limit,
        log_level="WARNING",
    )
    async with bootstrap(settings) as (services, dispatcher):
        for user in range(FIRST_USER, FIRST_USER + count):
            key = services.identities.key("telegram", str(user))
            await services.storage.set_reminders(key, True, str(user), "telegram")
        frontend = TelegramFrontend(services, dispatcher)
        frontend.application = frontend.build()
        await frontend.application.initialize()
        outbox = Outbox(services)
        outbox.register(frontend)
        made = await services.storage.create_broadcast(
            services.campaign.id, "bench", "reminder", "start", "en"
        )
        assert made is not None
        await services.storage.expansions_done()
        assert sum((await services.storage.delivery_counts(made.id)).values()) == count
        start = time.perf_counter()
        while True:  # what Outbox.run does, until nothing waits (429s put rows back)
            await outbox.drain()
            due = await services.storage.next_due("telegram")
            if due is None:
                break
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
        elapsed = time.perf_counter() - start
        counts = await services.storage.delivery_counts(made.id)
        await frontend.application.shutdown()
    return {"seconds": elapsed, "sent": counts.get("sent", 0), "rss": peak_rss_mb()}


async def child_plain(count: int, limit: float, workers: int = 0) -> dict[str, float]:
    """The baseline: send_message through PTB's AIORateLimiter, every send launched at once
    (`workers` 0), or drained from a queue by `workers` tasks (the careful variant)."""
    from telegram.error import TelegramError
    from telegram.ext import AIORateLimiter, ExtBot

    limiter = AIORateLimiter(overall_max_rate=limit, overall_time_period=1, max_retries=5)
    bot = ExtBot(
        TOKEN,
        base_url=os.environ["BASE_URL"],
        base_file_url=os.environ["BASE_FILE_URL"],
        rate_limiter=limiter,
    )
    sent = 0

    async def one(user: int) -> None:
        nonlocal sent
        try:
            await bot.send_message(user, "Freeze your accounts now.")
            sent += 1
        except TelegramError:
            pass

    async def worker(queue: asyncio.Queue[int]) -> None:
        while True:
            user = await queue.get()
            try:
                await one(user)
            finally:
                queue.task_done()

    async with bot:
        start = time.perf_counter()
        if workers <= 0:
            await asyncio.gather(*(one(u) for u in range(FIRST_USER, FIRST_USER + count)))
        else:
            queue: asyncio.Queue[int] = asyncio.Queue()
            for user in range(FIRST_USER, FIRST_USER + count):
                queue.put_nowait(user)
            tasks = [asyncio.create_task(worker(queue)) for _ in range(workers)]
            await queue.join()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "sent": sent, "rss": peak_rss_mb()}


async def child_expand(count: int) -> dict[str, float]:
    """RSS while one broadcast expands to `count` recipients (inserted in bulk first)."""
    from bot.app.bootstrap import bootstrap
    from bot.core.settings import Settings

    data = Path(os.environ["DATA"])
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data,
        pepper="bench-pepper-" + "e" * 40,
        log_level="WARNING",
    )
    async with bootstrap(settings) as (services, _dispatcher):
        campaign_id = services.campaign.id
    db = sqlite3.connect(settings.db_path)
    db.execute("PRAGMA synchronous=OFF")
    rows = ((os.urandom(32), str(FIRST_USER + i)) for i in range(count))
    db.executemany(
        "INSERT INTO volunteers (key, reminders, dm_address, dm_platform, created_at) "
        "VALUES (?, 1, ?, 'telegram', '2026-12-01')",
        rows,
    )
    db.commit()
    db.close()
    async with bootstrap(settings) as (services, _dispatcher):
        before = peak_rss_mb()
        start = time.perf_counter()
        made = await services.storage.create_broadcast(
            campaign_id, "bench-1m", "reminder", "start", "en"
        )
        assert made is not None
        await services.storage.expansions_done()
        elapsed = time.perf_counter() - start
        assert sum((await services.storage.delivery_counts(made.id)).values()) == count
    return {"seconds": elapsed, "rss_before": before, "rss": peak_rss_mb()}


def run_child(
    kind: str, env: dict[str, str], count: int, limit: float, workers: int = 0
) -> dict[str, float]:
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--recipients",
            str(count),
            "--limit",
            str(limit),
            "--workers",
            str(workers),
        ],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT), "PTB_TIMEDELTA": "1"},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


class Stalls:
    """The fake server's own pauses (event-loop lag, garbage collection) during a run: a
    pause of d seconds compresses d seconds of arrivals into one instant, which a sliding
    one-second window counts as a burst no sender can see coming."""

    def __init__(self) -> None:
        self.lags: list[tuple[float, float]] = []  # (when, seconds late)
        self.gc: list[tuple[float, float, int]] = []  # (when, seconds, generation)
        self._gc_started = 0.0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._gc_started = now
        elif now - self._gc_started > 0.01:
            self.gc.append((now, now - self._gc_started, info["generation"]))

    async def watch(self) -> None:
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.005)
                late = time.monotonic() - before - 0.005
                if late > 0.02:
                    self.lags.append((time.monotonic(), late))
        finally:
            gc.callbacks.remove(self._on_gc)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


async def parent(count: int, limit: float, kinds: tuple[str, ...], workers: int) -> None:
    from tests.fakes.telegram_server import FakeTelegram, Limits

    print(
        f"python {sys.version.split()[0]}; {count:,} recipients; server limit L = "
        f"{limit:.0f} messages/s overall, 1/s per chat; {load()}"
        + (f"; the pool has {workers} sender tasks" if "plain-pool" in kinds else ""),
        flush=True,
    )
    for kind in (k for k in kinds if k != "expand"):
        limits = Limits(enabled=True, per_second_overall=int(limit))
        async with FakeTelegram(TOKEN, limits=limits) as server:
            for user in range(FIRST_USER, FIRST_USER + count):
                server.add_user(user, "V", "en", started=True)
            # The fake server is the instrument: its own pauses must not count against a
            # sender. A full garbage collection of its users and stored messages paused it
            # 44-61 ms, and the arrivals it then stamped at once filled its one-second
            # window: 1-7 429s exactly one second later, whoever sends. Its garbage is
            # acyclic, so the collector stays off while a sender runs; the stall report
            # below still shows any pause of the event loop.
            gc.collect()
            gc.disable()
            with tempfile.TemporaryDirectory() as tmp:
                env = {
                    "BASE_URL": server.base_url,
                    "BASE_FILE_URL": server.base_file_url,
                    "DATA": tmp,
                }
                loop = asyncio.get_running_loop()
                launched = time.monotonic()
                stalls = Stalls()
                watcher = asyncio.create_task(stalls.watch())
                figures = await loop.run_in_executor(
                    None, run_child, kind, env, count, limit, workers
                )
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                gc.enable()
            rate = figures["sent"] / figures["seconds"]
            name = {
                "outbox": "coalition-bot outbox",
                "plain": "PTB AIORateLimiter loop",
                "plain-pool": "PTB AIORateLimiter pool",
            }[kind]
            print(
                f"{name:24} sent {int(figures['sent']):,} in {figures['seconds']:.1f} s: "
                f"{rate:.1f}/s, efficiency {rate / limit:.3f}, 429s {server.rejected_429}, "
                f"peak RSS {figures['rss']:.0f} MB; {load()}",
                flush=True,
            )
            if 0 < len(server.rejected_at) <= 20:  # where they fall, from the child's launch
                moments = ", ".join(f"{t - launched:.2f}" for t in server.rejected_at)
                print(f"{'':24} 429s at {moments} s", flush=True)
            worst = sorted(stalls.lags, key=lambda lag: -lag[1])[:5]
            lags = ", ".join(f"{late * 1000:.0f} ms at {t - launched:.2f} s" for t, late in worst)
            pauses = ", ".join(
                f"gen{g} {d * 1000:.0f} ms at {t - launched:.2f} s" for t, d, g in stalls.gc[:5]
            )
            print(
                f"{'':24} fake server stalls over 20 ms: {len(stalls.lags)}"
                + (f" (worst {lags})" if lags else "")
                + f"; its GC pauses over 10 ms: {pauses or 'none'}",
                flush=True,
            )
    if "expand" not in kinds:
        return
    with tempfile.TemporaryDirectory() as tmp:
        figures = await asyncio.get_running_loop().run_in_executor(
            None, run_child, "expand", {"DATA": tmp}, 1_000_000, limit
        )
    print(
        f"expanding 1,000,000 recipients: {figures['seconds']:.1f} s, peak RSS "
        f"{figures['rss']:.0f} MB (before: {figures['rss_before']:.0f} MB)",
        flush=True,
    )


KINDS = ("outbox", "plain", "plain-pool", "expand")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--limit", type=float, default=170.0)
    parser.add_argument("--child", choices=KINDS)
    parser.add_argument("--only", help=f"comma-separated, among {', '.join(KINDS)}")
    parser.add_argument(
        "--workers", type=int, default=0, help="plain-pool's sender tasks (default L/5)"
    )
    parser.add_argument("--runs", type=int, default=1, help="repeat the senders (not expand)")
    args = parser.parse_args()
    workers = args.workers or math.ceil(args.limit / 5)
    if args.child == "outbox":
        print(json.dumps(asyncio.run(child_outbox(args.recipients, args.limit))))
    elif args.child in ("plain", "plain-pool"):
        pool = workers if args.child == "plain-pool" else 0
        print(json.dumps(asyncio.run(child_plain(args.recipients, args.limit, pool))))
    elif args.child == "expand":
        print(json.dumps(asyncio.run(child_expand(args.recipients))))
    else:
        kinds = tuple(k for k in KINDS if not args.only or k in args.only.split(","))
        if not kinds:
            raise SystemExit(f"--only: none of {args.only!r} is a sender ({', '.join(KINDS)})")
        senders = tuple(k for k in kinds if k != "expand")
        for run in range(args.runs):
            if args.runs > 1:
                print(f"run {run + 1} of {args.runs}:", flush=True)
            last = run == args.runs - 1
            chosen = senders + (("expand",) if last and "expand" in kinds else ())
            asyncio.run(parent(args.recipients, args.limit, chosen, workers))


if __name__ == "__main__":
    main()
