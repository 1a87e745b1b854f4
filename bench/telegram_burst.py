"""Benchmark: distinct volunteers press a group's board button at a rising rate.

The fake Bot API server of tests/fakes (aiohttp, on 127.0.0.1) runs in this process with
Telegram's limits enforced (30 messages/s overall, 1/s per chat, 20/min per group, edits
included) and plays the volunteers. The bot runs in its own process, as in production:

- `coalition`: coalition-bot (`python -m bot run`), in webhook mode on its own aiohttp
  server, so a press is answered inside the webhook response;
- `coalition-polling`: coalition-bot by long polling, answering by request;
- `plain`: the baseline, bench/plain_ptb_bot.py: one python-telegram-bot handler that writes
  the pledge (a commit per press) and answers the press by request, by long polling;
- `plain-webhook`: the same handler by webhook, on PTB's own webhook server
  (`Application.run_webhook`, tornado) or, with `--plain-webhook-server aiohttp` (or when
  tornado is not installed), PTB's documented custom-webhook pattern on aiohttp. The fake
  server posts to it exactly as it posts to coalition-bot's webhook (up to max_connections
  = 100 requests at once, each holding its connection until the bot's HTTP answer: PTB's
  server answers once the update is queued, coalition-bot once the press is handled).

For each offered rate it prints the ack latency p50/p99 (from the press's intended time,
open loop, to the answer received by the server), the presses left unanswered, the seconds
from the last press until the board shows the exact count (coalition-bot only: the plain bot
has no board), the 429s the bot received, and the p50 of the step's first and last 5 s. A
rate is sustained when every press is answered, p99 <= 1 s, and the last 5 s are not
clearly slower than the first (a queue that grows fails even if it has not reached 1 s).
Steps last 30 s by default: long enough to see a queue grow. Each step also prints the CPU
the benchmark's own process (the fake server and the volunteers) and the bot used while
the presses were made, in % of one core, with what the rest of the machine used meanwhile
(other work on a shared machine), how late the press generator ended, and this process's
own event-loop stalls and GC pauses: on 2 cores the instrument shares the machine with the
bot, and a saturated or paused instrument is not a slow bot. The collector of this process
is off while a step runs (`--fake-gc on` keeps it, as before 2026-12-02).

All four kinds run by default, one after another; at the end the highest sustained rate of
each and the ratios coalition / plain, by long polling and by webhook. Rates may be given
per kind (`--rates plain=100,150,200 --rates coalition=300,500,800`; a bare list applies to
the kinds not named).

    .venv/bin/python bench/telegram_burst.py [--rates 100,200,...] [--seconds 30]
        [--only plain,plain-webhook] [--plain-pool 16] [--plain-webhook-server ptb|aiohttp]
        [--fake-gc off|on]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.telegram_server import FakeTelegram, Limits  # noqa: E402

TOKEN = "123456:BENCH" + "abcdefghijklmnopqrstuvwxyzABCD"
GROUP = -100777
ORGANIZER = 42
KINDS = ("coalition", "coalition-polling", "plain", "plain-webhook")
DEFAULT_RATES = "100,200,300,400,500,600,800,1000,1200,1500"
PLAIN_POOL = 0  # --plain-pool: the plain bot's httpx pool size (0: PTB's default, 256)
PLAIN_WEBHOOK_MODE = "webhook"  # plain_ptb_bot.py's MODE for plain-webhook (or custom-webhook)
SECRET = "bench-secret-token"
# This process's collector (the fake server's and the volunteers') is off while a step runs
# (--fake-gc off, the default since 2026-12-02), as bench/broadcast.py does: the fake keeps
# every press, update and answer, and full collections of that heap paused it 0.3-2.8 s
# per step on a loaded machine, failing steps whose bot answered in time (p50 unchanged).
FAKE_GC = "off"
CLK_TCK = os.sysconf("SC_CLK_TCK")
COUNT = re.compile(r"^([\d,]+) volunteers? ha(?:s|ve) pledged in this community\.", re.M)


@dataclass
class Step:
    rate: int
    presses: int
    unanswered: int
    p50: float
    p99: float
    board_exact: float | None
    rejected_429: int
    first_p50: float = 0.0  # presses intended in the step's first 5 s
    last_p50: float = 0.0  # ... and in its last 5 s
    cpu_bench: float = 0.0  # % of one core used by this process (fake server, volunteers)
    cpu_bot: float = 0.0  # ... and by the bot's process, over the same time
    cpu_others: float = 0.0  # ... and by every other process of the machine (other work)
    generator_late: float = 0.0  # how late the last press was created (s)
    stalls: int = 0  # this process's event loop late by more than 20 ms, during the step
    worst_stall: float = 0.0
    gc_pauses: int = 0  # this process's garbage collections over 10 ms, during the step
    worst_gc: float = 0.0

    @property
    def growing(self) -> bool:
        """A queue grows when the last 5 s answer clearly slower than the first 5 s (more
        than twice and more than 50 ms slower: the rest is noise on a shared machine)."""
        return self.last_p50 > 2 * self.first_p50 and self.last_p50 - self.first_p50 > 0.05

    @property
    def sustained(self) -> bool:
        return self.unanswered == 0 and self.p99 <= 1.0 and not self.growing


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Stalls:
    """This process's own pauses (the fake server and the volunteers share its event loop):
    the loop waking more than 20 ms late, and garbage collections over 10 ms. A pause here
    delays every press and answer in flight, whichever bot is measured."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.gc: list[float] = []
        self._gc_started = 0.0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
        elif now - self._gc_started > 0.01:
            self.gc.append(now - self._gc_started)

    async def watch(self) -> None:
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.005)
                late = time.monotonic() - before - 0.005
                if late > 0.02:
                    self.lags.append(late)
        finally:
            gc.callbacks.remove(self._on_gc)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (all cores), from /proc/stat."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def ack_figures(server: FakeTelegram, created: dict[str, float], last: float) -> dict[str, Any]:
    """A step's press figures from the fake's answer times: presses, unanswered, p50 and p99
    from each press's intended time, and the p50 of the step's first and last 5 s."""
    latencies = sorted(
        server.callback_answered_at[q] - t
        for q, t in created.items()
        if q in server.callback_answered_at
    )
    first_at = min(created.values())
    edges = [
        [
            server.callback_answered_at.get(q, float("inf")) - t
            for q, t in created.items()
            if (t - first_at < 5) == early and (last - t < 5) != early
        ]
        for early in (True, False)
    ]
    return {
        "presses": len(created),
        "unanswered": len(created) - len(latencies),
        "p50": statistics.median(latencies) if latencies else float("inf"),
        "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else float("inf"),
        "first_p50": statistics.median(edges[0]) if edges[0] else 0.0,
        "last_p50": statistics.median(edges[1]) if edges[1] else 0.0,
    }


def board_count(server: FakeTelegram, message_id: int) -> int | None:
    for message in server.messages(GROUP):
        if message["message_id"] == message_id:
            found = COUNT.search(message["text"])
            return int(found.group(1).replace(",", "")) if found else None
    return None


async def press_at(
    server: FakeTelegram,
    board_id: int,
    rate: int,
    seconds: float,
    first_user: int,
    created: dict[str, float],
) -> float:
    """Create rate*seconds presses, evenly spread (open loop); each is stamped with its
    *intended* time, so a generator running late counts against the bot, not for it.
    Return the intended time of the last one."""
    total = int(rate * seconds)
    loop = asyncio.get_running_loop()
    start, start_mono = loop.time(), time.monotonic()
    done = 0
    while done < total:
        due = min(total, int((loop.time() - start) * rate) + 1)
        while done < due:
            user = first_user + done
            query = server.user_presses(user, GROUP, board_id, "pledge")
            created[query] = start_mono + done / rate
            done += 1
        await asyncio.sleep(0.005)
    return start_mono + (total - 1) / rate


async def measure(kind: str, rates: list[int], seconds: float) -> list[Step]:
    steps: list[Step] = []
    plain = kind.startswith("plain")
    async with FakeTelegram(TOKEN, limits=Limits(enabled=True)) as server:
        server.add_user(ORGANIZER, "Org", "en", started=True)
        server.add_group(GROUP, "Coalition", creator=ORGANIZER)
        with tempfile.TemporaryDirectory() as tmp:
            process = start_bot(kind, server, Path(tmp))
            try:
                board_id = await post_board(kind, server)
                user = 1_000_000
                for rate in rates:
                    created: dict[str, float] = {}
                    before_429 = server.rejected_429
                    if FAKE_GC == "off":
                        gc.collect()  # between steps, outside any measurement
                        gc.disable()
                    stalls = Stalls()
                    watcher = asyncio.create_task(stalls.watch())
                    cpu_before = (
                        time.process_time(),
                        cpu_seconds(process.pid),
                        machine_busy_seconds(),
                    )
                    wall_before = time.monotonic()
                    last = await press_at(server, board_id, rate, seconds, user, created)
                    generator_late = max(0.0, time.monotonic() - last)
                    wall = time.monotonic() - wall_before  # CPU over the pressing itself
                    cpu_bench = time.process_time() - cpu_before[0]
                    cpu_bot = cpu_seconds(process.pid) - cpu_before[1]
                    cpu_others = machine_busy_seconds() - cpu_before[2] - cpu_bench - cpu_bot
                    user += len(created)
                    expected = user - 1_000_000
                    deadline = time.monotonic() + seconds + 15
                    while time.monotonic() < deadline:
                        answered = sum(q in server.callback_answered_at for q in created)
                        exact = plain or board_count(server, board_id) == expected
                        if answered == len(created) and exact:
                            break
                        await asyncio.sleep(0.02)
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
                    gc.enable()
                    board_exact = None
                    if not plain:
                        shown = [
                            at
                            for at, text in server.edited_at[(GROUP, board_id)]
                            if f"{expected:,} volunteer" in text
                        ]
                        board_exact = (shown[0] - last) if shown else float("inf")
                    steps.append(
                        Step(
                            rate=rate,
                            **ack_figures(server, created, last),
                            board_exact=board_exact,
                            rejected_429=server.rejected_429 - before_429,
                            cpu_bench=100 * cpu_bench / wall,
                            cpu_bot=100 * cpu_bot / wall,
                            cpu_others=max(0.0, 100 * cpu_others / wall),
                            generator_late=generator_late,
                            stalls=len(stalls.lags),
                            worst_stall=max(stalls.lags, default=0.0),
                            gc_pauses=len(stalls.gc),
                            worst_gc=max(stalls.gc, default=0.0),
                        )
                    )
                    print(f"  {kind:17} {format_step(steps[-1])}", flush=True)
                    if not steps[-1].sustained:
                        break
                    await asyncio.sleep(1.0)
            finally:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
    return steps


def start_bot(kind: str, server: FakeTelegram, data: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_")}
    env["PTB_TIMEDELTA"] = "1"
    if kind.startswith("plain"):
        env.update(
            TOKEN=TOKEN,
            BASE_URL=server.base_url,
            BASE_FILE_URL=server.base_file_url,
            DB=str(data / "plain.sqlite3"),
            POOL=str(PLAIN_POOL or ""),
            MODE="polling",
        )
        if kind == "plain-webhook":
            port = free_port()
            env.update(
                MODE=PLAIN_WEBHOOK_MODE,
                WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram",
                PORT=str(port),
                SECRET=SECRET,
                MAX_CONNECTIONS="100",  # as coalition-bot asks (Telegram allows 1-100)
            )
        command = [sys.executable, str(ROOT / "bench" / "plain_ptb_bot.py")]
    else:
        port = free_port()
        if kind == "coalition":
            env["COALITION_TELEGRAM_WEBHOOK_URL"] = f"http://127.0.0.1:{port}/telegram"
        env.update(
            COALITION_TELEGRAM_TOKEN=TOKEN,
            COALITION_TELEGRAM_BASE_URL=server.base_url,
            COALITION_TELEGRAM_BASE_FILE_URL=server.base_file_url,
            COALITION_WEB_PORT=str(port),
            COALITION_DATA_DIR=str(data),
            COALITION_TELEGRAM_ORGANIZER_IDS=str(ORGANIZER),
            COALITION_LOG_LEVEL="WARNING",
        )
        command = [sys.executable, "-m", "bot", "run"]
    log = (data / "bot.log").open("wb")
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(
        command, cwd=data, env={**env, "PYTHONPATH": path}, stdout=log, stderr=log
    )


async def post_board(kind: str, server: FakeTelegram) -> int:
    """The board the volunteers press: posted by coalition-bot, or by hand for the baseline."""
    if kind.startswith("coalition"):
        if kind == "coalition":
            await server.wait_for(lambda: server.webhook_info()["url"] != "", timeout=30)
        else:
            await server.wait_for(
                lambda: any(m == "getUpdates" for m, _ in server.requests[-50:]), timeout=30
            )
        server.user_sends(ORGANIZER, GROUP, "/board")
        await server.wait_for(lambda: len(server.messages(GROUP)) == 1, timeout=30)
        return int(server.messages(GROUP)[0]["message_id"])
    import aiohttp

    async with aiohttp.ClientSession() as http:
        markup = {"inline_keyboard": [[{"text": "I pledge", "callback_data": "pledge"}]]}
        async with http.post(
            f"{server.base_url}{TOKEN}/sendMessage",
            data={
                "chat_id": str(GROUP),
                "text": "Pledge board",
                "reply_markup": json.dumps(markup),
            },
        ) as response:
            body = await response.json()
    if kind == "plain-webhook":
        await server.wait_for(lambda: server.webhook_info()["url"] != "", timeout=30)
        await asyncio.sleep(0.5)  # setWebhook comes before the server listens: let it start
    else:
        await server.wait_for(
            lambda: any(m == "getUpdates" for m, _ in server.requests[-50:]), timeout=30
        )
    return int(body["result"]["message_id"])


def format_step(step: Step) -> str:
    board = "-" if step.board_exact is None else f"{step.board_exact:.2f} s"
    return (
        f"{step.rate:5d}/s  presses {step.presses:6d}  unanswered {step.unanswered:5d}  "
        f"ack p50 {step.p50 * 1000:7.1f} ms  p99 {step.p99 * 1000:7.1f} ms  "
        f"board exact {board:>8}  429s {step.rejected_429}  "
        f"p50 first/last 5 s {step.first_p50 * 1000:.0f}/{step.last_p50 * 1000:.0f} ms  "
        f"cpu bench/bot/others {step.cpu_bench:.0f}/{step.cpu_bot:.0f}/{step.cpu_others:.0f} %  "
        f"late {step.generator_late:.2f} s  "
        f"bench stalls >20 ms {step.stalls} (worst {step.worst_stall * 1000:.0f} ms), "
        f"GC >10 ms {step.gc_pauses} (worst {step.worst_gc * 1000:.0f} ms)  "
        f"{'sustained' if step.sustained else 'NOT sustained'}"
    )


def best(steps: list[Step]) -> int:
    return max((s.rate for s in steps if s.sustained), default=0)


def parse_rates(values: list[str]) -> dict[str, list[int]]:
    """`100,200` for every kind, `plain=100,150` for one; later ones win."""
    rates = {kind: [int(r) for r in DEFAULT_RATES.split(",")] for kind in KINDS}
    named: dict[str, list[int]] = {}
    for value in values:
        kind, _, listed = value.rpartition("=")
        parsed = [int(r) for r in listed.split(",") if r]
        if not kind:
            rates = {k: parsed for k in KINDS}
        elif kind in KINDS:
            named[kind] = parsed
        else:
            raise SystemExit(f"--rates: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    return {**rates, **named}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates",
        action="append",
        default=[],
        help=f"R,R,... for every kind, or KIND=R,R,... (repeatable); default {DEFAULT_RATES}",
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--only", help=f"comma-separated kinds among {', '.join(KINDS)}")
    parser.add_argument("--plain-pool", type=int, default=0, help="the plain bot's pool size")
    parser.add_argument(
        "--fake-gc",
        choices=("on", "off"),
        default="off",
        help="off (default): this process's garbage collector is off during each step, so the "
        "instrument's own pauses stay out of the measurement; on: as before 2026-12-02",
    )
    parser.add_argument(
        "--plain-webhook-server",
        choices=("auto", "ptb", "aiohttp"),
        default="auto",
        help="plain-webhook on PTB's run_webhook (tornado) or the custom pattern on aiohttp; "
        "auto: PTB's when tornado is installed",
    )
    args = parser.parse_args()
    global PLAIN_POOL, PLAIN_WEBHOOK_MODE, FAKE_GC
    PLAIN_POOL = args.plain_pool
    FAKE_GC = args.fake_gc
    tornado = importlib.util.find_spec("tornado") is not None
    server = args.plain_webhook_server
    if server == "auto":
        server = "ptb" if tornado else "aiohttp"
    if server == "ptb" and not tornado:
        raise SystemExit(
            'PTB\'s webhook server needs tornado: pip install "python-telegram-bot[webhooks]"'
        )
    PLAIN_WEBHOOK_MODE = "webhook" if server == "ptb" else "custom-webhook"
    rates = parse_rates(args.rates)
    kinds = [k for k in KINDS if not args.only or k in args.only.split(",")]
    if args.only and not kinds:
        raise SystemExit(f"--only: none of {args.only!r} is a kind ({', '.join(KINDS)})")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.seconds:.0f} s per rate; "
        f"plain pool {PLAIN_POOL or 'PTB default (256)'}; fake's GC {FAKE_GC}; plain-webhook on "
        + ("PTB's run_webhook (tornado)" if server == "ptb" else "the custom pattern (aiohttp)")
        + f"; {load()}",
        flush=True,
    )
    results = {}
    for kind in kinds:
        print(f"{kind}: rates {','.join(map(str, rates[kind]))}; {load()}", flush=True)
        results[kind] = await measure(kind, rates[kind], args.seconds)
    print(f"highest sustained rate ({load()}):")
    for kind, steps in results.items():
        print(f"  {kind:17} {best(steps)}/s")
    for ours, plain, how in (
        ("coalition-polling", "plain", "long polling"),
        ("coalition", "plain-webhook", "webhook"),
    ):
        if ours in results and plain in results:
            a, b = best(results[ours]), best(results[plain])
            print(f"  {how}: coalition / plain = {a}/{b} = {a / b if b else float('inf'):.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
