"""Benchmark: distinct volunteers press a group's board button at a rising rate.

The fake Bot API server of tests/fakes (aiohttp, on 127.0.0.1) runs in this process with
Telegram's limits enforced (30 messages/s overall, 1/s per chat, 20/min per group, edits
included) and plays the volunteers. The bot runs in its own process, as in production:

- coalition-bot (`python -m bot run`), in webhook mode on its own aiohttp server, so a press
  is answered inside the webhook response;
- the baseline, bench/plain_ptb_bot.py: one python-telegram-bot handler that writes the
  pledge and answers the press, by long polling;
- with `--only coalition-polling`, coalition-bot by long polling, answering by request.

For each offered rate it prints the ack latency p50/p99 (from the press's intended time,
open loop, to the answer received by the server), the presses left unanswered, the seconds
from the last press until the board shows the exact count (coalition-bot only: the plain bot
has no board), the 429s the bot received, and the p50 of the step's first and last 5 s. A
rate is sustained when every press is answered, p99 <= 1 s, and the last 5 s are not
clearly slower than the first (a queue that grows fails even if it has not reached 1 s).
Steps last 30 s by default: long enough to see a queue grow.

    .venv/bin/python bench/telegram_burst.py [--rates 100,200,...] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.telegram_server import FakeTelegram, Limits  # noqa: E402

TOKEN = "123456:BENCH" + "abcdefghijklmnopqrstuvwxyzABCD"
GROUP = -100777
ORGANIZER = 42
KINDS = ("coalition", "plain", "coalition-polling")
PLAIN_POOL = 0  # --plain-pool: the plain bot's httpx pool size (0: PTB's default, 256)
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
                    last = await press_at(server, board_id, rate, seconds, user, created)
                    user += len(created)
                    expected = user - 1_000_000
                    deadline = time.monotonic() + seconds + 15
                    while time.monotonic() < deadline:
                        answered = sum(q in server.callback_answered_at for q in created)
                        exact = kind == "plain" or board_count(server, board_id) == expected
                        if answered == len(created) and exact:
                            break
                        await asyncio.sleep(0.02)
                    board_exact = None
                    if kind != "plain":
                        shown = [
                            at
                            for at, text in server.edited_at[(GROUP, board_id)]
                            if f"{expected:,} volunteer" in text
                        ]
                        board_exact = (shown[0] - last) if shown else float("inf")
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
                    steps.append(
                        Step(
                            rate=rate,
                            presses=len(created),
                            unanswered=len(created) - len(latencies),
                            p50=statistics.median(latencies) if latencies else float("inf"),
                            p99=latencies[max(0, int(len(latencies) * 0.99) - 1)]
                            if latencies
                            else float("inf"),
                            board_exact=board_exact,
                            rejected_429=server.rejected_429 - before_429,
                            first_p50=statistics.median(edges[0]) if edges[0] else 0.0,
                            last_p50=statistics.median(edges[1]) if edges[1] else 0.0,
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
    if kind == "plain":
        env.update(
            TOKEN=TOKEN,
            BASE_URL=server.base_url,
            BASE_FILE_URL=server.base_file_url,
            DB=str(data / "plain.sqlite3"),
            POOL=str(PLAIN_POOL or ""),
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
    return subprocess.Popen(
        command, cwd=data, env={**env, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=log
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
        f"{'sustained' if step.sustained else 'NOT sustained'}"
    )


def best(steps: list[Step]) -> int:
    return max((s.rate for s in steps if s.sustained), default=0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,200,300,400,500,600,800,1000,1200,1500")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--only", choices=KINDS)
    parser.add_argument("--plain-pool", type=int, default=0, help="the plain bot's pool size")
    args = parser.parse_args()
    global PLAIN_POOL
    PLAIN_POOL = args.plain_pool
    rates = [int(r) for r in args.rates.split(",")]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.seconds:.0f} s per rate")
    results = {}
    for kind in KINDS:
        if (args.only and kind != args.only) or (not args.only and kind == "coalition-polling"):
            continue
        print(f"{kind}:", flush=True)
        results[kind] = await measure(kind, rates, args.seconds)
    if len(results) == 2:
        ours, plain = best(results["coalition"]), best(results["plain"])
        ratio = ours / plain if plain else float("inf")
        print(
            f"highest sustained rate: coalition-bot {ours}/s, plain PTB bot {plain}/s "
            f"({ratio:.2f}x)"
        )


if __name__ == "__main__":
    asyncio.run(main())
