"""Benchmark of the freeze moment on the platforms: presses arrive while the freeze reminder
to a million volunteers expands and is sent, on Telegram and on Discord.

A database of N volunteers who opted in to reminders on the platform under test (the bot's
own migrations; rows bulk-loaded with sqlite3: key = the bot's keyed hash, a private address
as the bot stores it, the platform's user id) holds a stored freeze window whose only rungs
are the start and the end. The start is placed so that the bot's own scheduler, which fires
a rung early by its lead (recipients / platform rate x LEAD_MARGIN), fires the start rung a
few seconds after the presses begin: the expansion of N recipients and the sending happen
during them.

- Telegram: the fake Bot API server of tests/fakes runs in this process with Telegram's
  limits enforced, the overall one raised to L (--telegram-limit, 1000 messages/s: what a
  bot gets with paid broadcasts; the bot runs with COALITION_TELEGRAM_PAID_BROADCAST=1). The
  bot is `python -m bot run` in its own process, in webhook mode (with the probes below, the
  same `bot.app.cli.main` started by this script). New volunteers press the board's
  "I pledge" button in a group; a press is answered in the webhook response.
- Discord: the fake REST server of tests/fakes runs in this process (global limit
  --discord-limit, 50 requests/s; here it also counts opening a DM channel, as Discord
  does). The bot runs in its own process (`--child discord`: what `python -m bot run` does
  for Discord, without the gateway socket); presses are INTERACTION_CREATE payloads handed
  to discord.py's own parser in that process, as in bench/discord_burst.py.

Presses are open loop at --rate for --seconds; each latency counts from its intended time
to the moment the fake server receives the answer. Printed per run: the scheduler's lead,
when the broadcast appeared and when its expansion ended (polled in the database), press
p50/p99/max during the expansion and overall, presses over 1 s and over 3 s, 429s, the
messages sent per second while the presses ran and during the expansion, and

- with N = --volunteers (10^6): sending 10^6 messages takes hours, so it is not waited for.
  The run lasts until the expansion ends; the last recipient's time is PROJECTED from the
  send rate measured under the presses, and compared with the freeze start;
- with N = --full-recipients-{telegram,discord}: the run waits for the last recipient and
  MEASURES its time against the freeze start.

Probes in the bot's process (--no-probe leaves them out) say where a press's time goes: the
event loop's lag, each dispatch, each group-commit transaction (seen from the loop, and on
the database thread by operation), each outbox message's mark_sending. Telegram runs also
sample the updates waiting at "Telegram's" side (the fake's webhook queue).
--discord-callback-headers makes the fake answer interaction callbacks with rate-limit
headers (without them discord.py sends one interaction answer at a time).

    .venv/bin/python bench/freeze_moment.py [--platforms telegram,discord]
        [--volunteers 1000000] [--full-recipients-telegram 20000]
        [--full-recipients-discord 2000] [--rate 500] [--seconds 60] [--wait 5] [--runs 3]
        [--telegram-limit 1000] [--discord-limit 50] [--no-probe] [--discord-callback-headers]

Targets (issue 12): press p99 <= 1 s on both platforms, 0 x 429, the reminder's last
recipient reached before the freeze start it was planned for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from bench.broadcast import Stalls  # noqa: E402
from bench.discord_burst import APPLICATION, CHANNEL, GUILD  # noqa: E402
from bench.discord_burst import TOKEN as DISCORD_TOKEN  # noqa: E402
from bench.discord_burst import press as discord_press  # noqa: E402
from bench.freeze import pct  # noqa: E402
from bench.telegram_burst import press_at  # noqa: E402
from bot.app.bootstrap import bootstrap  # noqa: E402
from bot.core.identity import Identities  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from bot.frontends.discord import REQUESTS_PER_DM  # noqa: E402
from bot.schedule.scheduler import LEAD_MARGIN  # noqa: E402
from tests.fakes.discord_rest import FakeDiscordREST  # noqa: E402
from tests.fakes.telegram_server import FakeTelegram, Limits  # noqa: E402

SCRIPT = str(Path(__file__).resolve())
TELEGRAM_TOKEN = "123456:FREEZE" + "abcdefghijklmnopqrstuvwxyzABCD"
GROUP = -100777  # the group whose board the volunteers press
ORGANIZER = 42
PEPPER = "bench-pepper-" + "m" * 40
SLUG = "stop-hate-for-profit"  # the default campaign slug, as the bot runs it
FIRST_VOLUNTEER = 10_000_000  # user ids of the opted-in volunteers
FIRST_PRESSER = 50_000_000  # user ids of the new volunteers who press
DISCORD_BOT_RATE = 45.0  # COALITION_DISCORD_RATE_OVERALL: the bot's default (50 allowed)
CREATED = 1_796_126_400  # 2026-12-01T12:00:00Z, Unix seconds as the tables keep it


# -- the database ------------------------------------------------------------------------


def settings_for(data: Path, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data,
        pepper=PEPPER,
        log_level="WARNING",
        **extra,
    )


async def build_template(path: Path, platform: str, volunteers: int) -> None:
    """The bot's schema (its own migrations) and campaign, then N opted-in volunteers as the
    bot stores them: key = HMAC(pepper, 'platform:user id'), dm_address = the user id (a
    Telegram private chat's id is its user's; the Discord frontend stores the user id and
    opens the DM channel when it sends), dm_platform, language."""
    async with bootstrap(settings_for(path.parent)):
        pass
    identities = Identities(PEPPER.encode())
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO volunteers (key, language, reminders, dm_address, dm_platform, created_at) "
        "VALUES (?, ?, 1, ?, ?, ?)",
        (
            (
                identities.key(platform, str(FIRST_VOLUNTEER + n)),
                ("ar", "fr", "en")[n % 3],
                str(FIRST_VOLUNTEER + n),
                platform,
                CREATED,
            )
            for n in range(volunteers)
        ),
    )
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def place_window(path: Path, start: datetime) -> None:
    """Store a freeze window from `start` (what `/campaign window` stores) with two rungs,
    the start and the end: no other rung fires during the run."""
    end = start + timedelta(hours=24)
    db = sqlite3.connect(path)
    with db:
        campaign = db.execute("SELECT id FROM campaigns WHERE slug = ?", (SLUG,)).fetchone()[0]
        db.execute(
            "UPDATE campaigns SET start_at = ?, end_at = ? WHERE id = ?",
            (start.isoformat(), end.isoformat(), campaign),
        )
        db.execute("DELETE FROM schedule_rungs WHERE campaign_id = ?", (campaign,))
        db.executemany(
            "INSERT INTO schedule_rungs VALUES (?, ?, ?)",
            [(campaign, "start", start.isoformat()), (campaign, "end", end.isoformat())],
        )
    db.close()


@dataclass
class Expansion:
    """The start rung's broadcast as seen in the database (polled every 100 ms)."""

    created: float | None = None  # monotonic time it was first seen
    expanded: float | None = None  # ... and when every volunteer had been looked at
    recipients: int = 0
    progress: list[tuple[float, int]] = field(default_factory=list)

    async def watch(self, path: Path) -> None:
        db: sqlite3.Connection | None = None
        try:
            while self.expanded is None:
                try:
                    if db is None:
                        db = sqlite3.connect(path, timeout=0.05, isolation_level=None)
                        db.execute("PRAGMA query_only = ON")
                    row = db.execute(
                        "SELECT recipients, expand_after IS NULL FROM broadcasts "
                        "WHERE kind = 'reminder' AND subject = 'start'"
                    ).fetchone()
                except sqlite3.Error:
                    row = None
                now = time.monotonic()
                if row is not None:
                    if self.created is None:
                        self.created = now
                    self.recipients = int(row[0])
                    self.progress.append((now, self.recipients))
                    if row[1]:
                        self.expanded = now
                await asyncio.sleep(0.1)
        finally:
            if db is not None:
                db.close()


# -- the fakes, with what this benchmark observes -------------------------------------------


class TelegramFake(FakeTelegram):
    """The fake Bot API server; volunteers' private chats are made when first written to
    (a million users would be the fake's memory and garbage), and each private message's
    arrival is recorded, then the chat forgotten."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dm_sent: list[float] = []
        self.dm_reached: set[int] = set()
        self.rejected_where: dict[str, int] = {}  # 429s by kind of chat

    def _chat(self, params: dict[str, Any], *, write: bool = True) -> Any:
        try:
            chat_id = int(params.get("chat_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            chat_id = 0
        if chat_id >= FIRST_VOLUNTEER and chat_id not in self._chats:
            self.add_user(chat_id, "V", started=True)
        return super()._chat(params, write=write)

    def _api_send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        message = super()._api_send_message(params)
        chat_id = int(message["chat"]["id"])
        if chat_id >= FIRST_VOLUNTEER:
            self.dm_sent.append(time.monotonic())
            self.dm_reached.add(chat_id)
            self._chats.pop(chat_id, None)
            self._users.pop(chat_id, None)
        return message

    def answers(self) -> dict[str, float]:
        """Press (callback query id) -> when its answer arrived."""
        return self.callback_answered_at

    def deferred(self) -> int:
        return 0  # a Telegram press is answered once, in the webhook response

    def _check_limits(self, chat: Any) -> None:
        try:
            super()._check_limits(chat)
        except Exception:
            kind = "group" if chat.is_group else "private chat"
            self.rejected_where[kind] = self.rejected_where.get(kind, 0) + 1
            raise


class DiscordFake(FakeDiscordREST):
    """The fake REST server; opening a DM channel counts against the global limit (as on
    Discord: only interaction callbacks are exempt), and private messages are recorded."""

    def __init__(self, *args: Any, callback_headers: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dm_sent: list[float] = []
        self.dm_reached: set[int] = set()
        self._dm_ids: set[int] = set()
        self.on_created = self._record
        self.callback_headers = callback_headers

    async def _callback(self, request: web.Request) -> web.Response:
        """The fake answers interaction callbacks without rate-limit headers, and discord.py
        then keeps its initial bucket of one for the route: one answer in flight at a time.
        With callback_headers, a large shared bucket like the one Discord has been seen
        sending for interactions (limit 50,000), so answers go out concurrently."""
        response = await super()._callback(request)
        if self.callback_headers:
            response.headers.update(
                {
                    "X-RateLimit-Bucket": "interactions",
                    "X-RateLimit-Limit": "50000",
                    "X-RateLimit-Remaining": "49999",
                    "X-RateLimit-Reset-After": "1000.000",
                    "X-RateLimit-Reset": f"{time.time() + 1000:.3f}",
                }
            )
        return response

    def _record(self, channel: int, message: dict[str, Any]) -> None:
        if channel in self._dm_ids:
            self.dm_sent.append(time.monotonic())
            self.dm_reached.add(channel)
            self.created.pop(channel, None)

    def answers(self) -> dict[str, float]:
        """Press (interaction id) -> when its first response arrived (an answer, or a
        deferral: the bot defers a press whose dispatch takes over 2 s)."""
        return {str(i): at for i, (at, _payload) in self.callbacks.items()}

    def deferred(self) -> int:
        """Presses whose first response was a deferral ("thinking..."); their answer then
        comes as a follow-up, which this fake does not serve."""
        return sum(payload.get("type") == 5 for _at, payload in self.callbacks.values())

    def _global_only(self) -> web.Response | None:
        """The global limit alone (opening a DM channel counts against it, on Discord)."""
        now = time.monotonic()
        refused = self._global_full(now)
        if refused is None:
            self._global.append(now)
        return refused

    async def _open_dm(self, request: web.Request) -> web.Response:
        limited = self._global_only()
        if limited is not None:
            return limited
        response = await super()._open_dm(request)
        with contextlib.suppress(Exception):
            user = int((await request.json())["recipient_id"])
            self._dm_ids.add(self.dm_channels[user])
        return response


# -- pressing (small pieces of bench/telegram_burst.py and bench/broadcast.py) ---------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def post_board(server: TelegramFake) -> int:
    """The organizer sends /board in the group once the bot's webhook is set; the board's id."""
    await server.wait_for(lambda: server.webhook_info()["url"] != "", timeout=60)
    server.user_sends(ORGANIZER, GROUP, "/board")
    await server.wait_for(lambda: len(server.messages(GROUP)) == 1, timeout=60)
    return int(server.messages(GROUP)[0]["message_id"])


# -- one run ---------------------------------------------------------------------------------


@dataclass
class Run:
    platform: str
    volunteers: int
    full: bool
    rate_planned: float  # the rate the scheduler plans with (messages/s)
    lead: float  # seconds: the scheduler's lead for N at that rate
    start_at: float  # the freeze start, monotonic
    fire_planned: float  # monotonic: start_at - lead
    presses: dict[str, float]  # press id -> intended time (monotonic)
    answered: dict[str, float]  # press id -> time its answer reached the fake
    press_window: tuple[float, float]
    expansion: Expansion
    dm_sent: list[float]
    reached: int
    rejected_429: int
    stalls: int
    load: tuple[float, float]
    bot_cpu: float  # cores the bot's process used, from the first press to the end
    fake_cpu: float  # ... and this process (the fake server and the presses)
    probe: dict[str, Any] | None = None  # what the probes saw in the bot's process
    deferred: int = 0  # Discord: presses first answered by a deferral
    backlog: list[tuple[float, int]] = field(default_factory=list)  # Telegram's queue
    rejected_where: dict[str, int] = field(default_factory=dict)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def launch(command: list[str], data: Path, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    """The bot's process, its output in data/bot.log."""
    with (data / "bot.log").open("wb") as log:
        return subprocess.Popen(command, cwd=data, env=bot_env(data, extra), stdout=log, stderr=log)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def bot_env(data: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_")}
    env.update(
        PTB_TIMEDELTA="1",
        PYTHONPATH=str(ROOT),
        COALITION_DATA_DIR=str(data),
        COALITION_PEPPER=PEPPER,
        COALITION_LOG_LEVEL="WARNING",
        **extra,
    )
    return env


def tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-3000:]
    return ""


async def until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


async def finish(
    expansion: Expansion,
    server: TelegramFake | DiscordFake,
    volunteers: int,
    full: bool,
    presses_end: float,
    rate: float,
    start_at: float,
) -> None:
    """Wait for the expansion to end and, in a full run, for the last recipient (or until
    well past the time the sending should have taken)."""
    deadline = presses_end + 900
    while time.monotonic() < deadline:
        reached = len(server.dm_reached) >= volunteers
        if expansion.expanded is not None and (not full or reached):
            return
        if full and expansion.created is not None:
            late = max(start_at, expansion.created + 3 * volunteers / rate) + 30
            if time.monotonic() > late:
                return
        await asyncio.sleep(0.2)


def bot_rate(args: argparse.Namespace, platform: str) -> tuple[float, dict[str, str]]:
    """The rate the bot sends at and plans its lead with, and the settings that give it."""
    if platform == "discord":
        return DISCORD_BOT_RATE / REQUESTS_PER_DM, {}  # a message and the DM channel's opening
    if args.telegram_limit >= 1000:  # paid broadcasts: the bot sends (and plans) 1000/s
        return 1000.0, {"COALITION_TELEGRAM_PAID_BROADCAST": "1"}
    return float(args.telegram_limit), {"COALITION_TELEGRAM_RATE_OVERALL": str(args.telegram_limit)}


async def wait_answers(presses: dict[str, float], answers: dict[str, float]) -> None:
    for _ in range(150):  # the last answers, 15 s at most
        if all(q in answers for q in presses):
            return
        await asyncio.sleep(0.1)


async def measure(
    args: argparse.Namespace, platform: str, template: Path, volunteers: int, full: bool
) -> Run:
    """One run: the bot in its own process against the platform's fake, the start rung
    placed so that the scheduler fires it --wait seconds after the presses begin."""
    planned, rate_env = bot_rate(args, platform)
    lead = volunteers / planned * LEAD_MARGIN  # what ReminderScheduler.lead computes for N
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        db_path = data / "coalition.sqlite3"
        shutil.copyfile(template, db_path)
        offset = time.time() - time.monotonic()
        start_wall = datetime.fromtimestamp(
            round(time.monotonic() + args.startup + lead + offset), UTC
        )
        start_at = start_wall.timestamp() - offset
        fire = start_at - lead
        press_start = fire - args.wait
        place_window(db_path, start_wall)
        server: TelegramFake | DiscordFake
        out = data / "presses.json"
        if platform == "telegram":
            limits = Limits(enabled=True, per_second_overall=args.telegram_limit)
            server = TelegramFake(TELEGRAM_TOKEN, limits=limits)
        else:
            server = DiscordFake(
                global_per_second=args.discord_limit,
                callback_headers=args.discord_callback_headers,
            )
        async with server:
            if isinstance(server, TelegramFake):
                server.add_user(ORGANIZER, "Org", "en", started=True)
                server.add_group(GROUP, "Coalition", creator=ORGANIZER)
                port = free_port()
                command = [sys.executable, "-m", "bot", "run"]
                if args.probe:  # the same main, with the probes
                    command = [sys.executable, SCRIPT, "--child", "telegram"]
                extra = {
                    "COALITION_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
                    "COALITION_TELEGRAM_BASE_URL": server.base_url,
                    "COALITION_TELEGRAM_BASE_FILE_URL": server.base_file_url,
                    "COALITION_TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
                    "COALITION_WEB_PORT": str(port),
                    "COALITION_TELEGRAM_ORGANIZER_IDS": str(ORGANIZER),
                }
            else:
                command = [sys.executable, SCRIPT, "--child", "discord"]
                extra = {
                    "BENCH_BASE": server.base,
                    "BENCH_OUT": str(out),
                    "BENCH_PRESS_START": repr(press_start),
                    "BENCH_RATE": str(args.rate),
                    "BENCH_SECONDS": str(args.seconds),
                }
            probe_path = data / "probes.json"
            if args.probe:
                extra["BENCH_PROBE"] = str(probe_path)
            process = launch(command, data, {**extra, **rate_env})
            expansion = Expansion()
            watcher = asyncio.create_task(expansion.watch(db_path))
            stalls = Stalls()
            stall_task: asyncio.Task[None] | None = None
            backlog: list[tuple[float, int]] = []  # Telegram: updates waiting at its side

            async def sample_backlog() -> None:
                while isinstance(server, TelegramFake):
                    backlog.append((time.monotonic(), len(server._pending)))
                    await asyncio.sleep(0.5)

            sampler = asyncio.create_task(sample_backlog())
            try:
                board_id = 0
                if isinstance(server, TelegramFake):
                    board_id = await post_board(server)
                await until(press_start)
                late = time.monotonic() - press_start
                cpu_began = (time.monotonic(), cpu_seconds(process.pid), own_cpu())
                # The fake is the instrument: no collection of its objects during the run
                # (see bench/broadcast.py); its own stalls are reported.
                gc.collect()
                gc.freeze()
                gc.disable()
                stall_task = asyncio.create_task(stalls.watch())
                if isinstance(server, TelegramFake):
                    created: dict[str, float] = {}
                    last = await press_at(
                        server, board_id, args.rate, args.seconds, FIRST_PRESSER, created
                    )
                    first, presses_end = min(created.values()), last + 1 / args.rate
                else:
                    while not out.exists():  # the bot's process presses, then writes this
                        if process.poll() is not None:
                            raise SystemExit(f"the Discord bot stopped:\n{tail(data / 'bot.log')}")
                        await asyncio.sleep(0.2)
                    written = json.loads(out.read_text())
                    created = {str(k): float(v) for k, v in written["presses"].items()}
                    first, presses_end = float(written["first"]), float(written["end"])
                    late = float(written["late"])
                if late > 0.5:
                    print(
                        f"  (the presses began {late:.1f} s late: the bot was not ready; "
                        "raise --startup)",
                        flush=True,
                    )
                await finish(expansion, server, volunteers, full, presses_end, planned, start_at)
                await wait_answers(created, server.answers())
                spent = time.monotonic() - cpu_began[0]
                bot_cpu = (cpu_seconds(process.pid) - cpu_began[1]) / spent
                fake_cpu = (own_cpu() - cpu_began[2]) / spent
            finally:
                sampler.cancel()
                if stall_task is not None:
                    stall_task.cancel()
                    await asyncio.gather(stall_task, return_exceptions=True)
                gc.enable()
                gc.unfreeze()
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                stop(process)
            log = "".join(
                line
                for line in tail(data / "bot.log").splitlines(keepends=True)
                if "voice will NOT be supported" not in line  # discord.py, at import
            )
            if log.strip():
                print(f"  bot log (exit {process.returncode}), its end:\n{log}", flush=True)
            answers = server.answers()
            probe = json.loads(probe_path.read_text()) if probe_path.exists() else None
            return Run(
                platform=platform,
                volunteers=volunteers,
                full=full,
                rate_planned=planned,
                lead=lead,
                start_at=start_at,
                fire_planned=fire,
                presses=created,
                answered={q: answers[q] for q in created if q in answers},
                press_window=(first, presses_end),
                expansion=expansion,
                dm_sent=list(server.dm_sent),
                reached=len(server.dm_reached),
                rejected_429=server.rejected_429,
                stalls=len(stalls.lags),
                load=(load_before, os.getloadavg()[0]),
                bot_cpu=bot_cpu,
                fake_cpu=fake_cpu,
                probe=probe,
                deferred=server.deferred(),
                backlog=backlog,
                rejected_where=getattr(server, "rejected_where", {}),
            )


# -- probes in the bot's process ---------------------------------------------------------------


class Probes:
    """Where a press's time goes, recorded in the bot's process (--probe, the default): the
    event loop's lag, each dispatch (the core: hashing, reads, the pledge's group commit,
    the answer), each write transaction of the group-commit writer (on its thread), and
    each outbox message's `mark_sending` (over 20 ms its pacing turn is stale and it takes
    another place in the overall budget). Written as JSON when the bot stops."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lags: list[tuple[float, float]] = []  # (when, seconds late) over 5 ms
        self.dispatch: list[tuple[float, float]] = []  # (began, seconds)
        self.batches: list[tuple[float, float, int]] = []  # (began, seconds, operations)
        self.records: list[tuple[float, float]] = []  # (began, seconds) of mark_sending
        # on the database thread: (began, seconds, {operation: seconds}); the rest of a
        # transaction's time is BEGIN, savepoints and COMMIT (with any WAL checkpoint)
        self.thread: list[tuple[float, float, dict[str, float]]] = []

    def install(self) -> None:
        from bot.delivery.pacing import Pacer
        from bot.services.dispatch import Dispatcher
        from storage.sqlite import store
        from storage.sqlite.store import SQLiteStorage

        probes = self
        run_batch = store.run_batch
        handle = Dispatcher.handle
        batch = SQLiteStorage._in_one_transaction
        before_send = Pacer.before_send

        async def timed_handle(self: Any, invocation: Any) -> Any:
            began = time.monotonic()
            try:
                return await handle(self, invocation)
            finally:
                probes.dispatch.append((began, time.monotonic() - began))

        async def timed_batch(self: Any, ops: list[Any]) -> Any:
            began = time.monotonic()
            try:
                return await batch(self, ops)
            finally:
                probes.batches.append((began, time.monotonic() - began, len(ops)))

        async def timed_before_send(self: Any, record: Any) -> None:
            async def timed() -> None:
                began = time.monotonic()
                await record()
                probes.records.append((began, time.monotonic() - began))

            await before_send(self, timed)

        def timed_run_batch(db: Any, ops: list[Any]) -> Any:
            spent: dict[str, float] = {}

            def timed(op: Any) -> Any:
                name = getattr(op, "__qualname__", "?").split(".<locals>")[0].split(".")[-1]

                def run(db: Any) -> Any:
                    began = time.perf_counter()
                    try:
                        return op(db)
                    finally:
                        took = time.perf_counter() - began
                        spent[name] = spent.get(name, 0.0) + took

                return run

            began = time.monotonic()
            try:
                return run_batch(db, [timed(op) for op in ops])
            finally:
                probes.thread.append((began, time.monotonic() - began, spent))

        store.run_batch = timed_run_batch  # type: ignore[assignment]
        Dispatcher.handle = timed_handle  # type: ignore[method-assign]
        SQLiteStorage._in_one_transaction = timed_batch  # type: ignore[method-assign]
        Pacer.before_send = timed_before_send  # type: ignore[method-assign]

    async def watch(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            late = time.monotonic() - before - 0.01
            if late > 0.005:
                self.lags.append((time.monotonic(), late))

    def write(self) -> None:
        partial = self.path.with_suffix(".part")
        partial.write_text(
            json.dumps(
                {
                    "lags": self.lags,
                    "dispatch": self.dispatch,
                    "batches": self.batches,
                    "records": self.records,
                    "thread": self.thread,
                }
            )
        )
        partial.rename(self.path)


def telegram_child() -> None:
    """`python -m bot run` (bot.app.cli.main), with the probes."""
    from bot.app import cli

    probes = Probes(Path(os.environ["BENCH_PROBE"]))
    probes.install()
    until_stopped = cli._until_stopped

    async def probed_until_stopped() -> None:
        watcher = asyncio.create_task(probes.watch())
        try:
            await until_stopped()
        finally:
            watcher.cancel()
            probes.write()

    cli._until_stopped = probed_until_stopped
    sys.exit(cli.main(["run"]))


# -- the Discord bot's process -----------------------------------------------------------------


async def discord_child() -> None:
    """What `python -m bot run` does for Discord (frontend, outbox, scheduler with the
    platform's rate), without the gateway socket: presses come in as gateway payloads."""
    import logging

    from discord.http import Route

    from bot.delivery.outbox import Outbox
    from bot.frontends.discord import PLEDGE_BUTTON_ID, DiscordFrontend
    from bot.schedule.scheduler import ReminderScheduler

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    Route.BASE = os.environ["BENCH_BASE"]
    data = Path(os.environ["COALITION_DATA_DIR"])
    settings = settings_for(
        data,
        discord_token=DISCORD_TOKEN,
        discord_sync="off",
        discord_shard_count=1,
        discord_rate_overall=DISCORD_BOT_RATE,
    )
    press_start = float(os.environ["BENCH_PRESS_START"])
    rate = int(os.environ["BENCH_RATE"])
    total = int(rate * float(os.environ["BENCH_SECONDS"]))
    probes = Probes(Path(os.environ["BENCH_PROBE"])) if "BENCH_PROBE" in os.environ else None
    if probes is not None:
        probes.install()
        watcher = asyncio.create_task(probes.watch())
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    async with bootstrap(settings) as (services, dispatcher):
        frontend = DiscordFrontend(services, dispatcher)
        outbox = Outbox(services)
        rates = {"discord": settings.discord_rate_overall / REQUESTS_PER_DM}  # as `run` plans
        scheduler = ReminderScheduler(services, outbox.wake, rates=rates)
        client = frontend.client
        await client.login(DISCORD_TOKEN)  # GET /users/@me, then setup_hook
        client._connection.application_id = APPLICATION
        await frontend.lead()  # the only process: it edits the boards
        outbox.register(frontend)
        await outbox.recover()
        await scheduler.start()
        outbox.start()
        try:
            ref = await frontend.publish_board(str(GUILD), CHANNEL)
            board_id = int(ref.split(":")[1])
            board = FakeDiscordREST()._message(CHANNEL, board_id, {})
            board["components"] = [
                {
                    "type": 1,
                    "components": [
                        {"type": 2, "style": 3, "label": "I pledge", "custom_id": PLEDGE_BUTTON_ID}
                    ],
                }
            ]
            state = client._connection
            late = time.monotonic() - press_start
            start = max(press_start, time.monotonic())
            await until(start)
            intended: dict[int, float] = {}
            sent = 0
            while sent < total:
                due = min(total, int((time.monotonic() - start) * rate) + 1)
                while sent < due:
                    payload = discord_press(
                        FIRST_PRESSER + sent, board, ("en-US", "fr", "en-GB")[sent % 3]
                    )
                    intended[int(payload["id"])] = start + sent / rate
                    state.parse_interaction_create(payload)  # type: ignore[arg-type]
                    sent += 1
                await asyncio.sleep(0.002)
            end = start + total / rate
            out = Path(os.environ["BENCH_OUT"])
            partial = out.with_suffix(".part")
            partial.write_text(
                json.dumps({"presses": intended, "first": start, "end": end, "late": late})
            )
            partial.rename(out)
            await stopping.wait()
        finally:
            if probes is not None:
                watcher.cancel()
                probes.write()
            await scheduler.stop()
            await outbox.stop()
            await frontend.stop()


# -- figures -------------------------------------------------------------------------------


def rate_between(times: list[float], begin: float, end: float) -> float:
    if end - begin < 1.0:
        return float("nan")
    return sum(begin < t <= end for t in times) / (end - begin)


def figures(run: Run) -> dict[str, Any]:
    e = run.expansion
    began = e.created if e.created is not None else float("inf")
    ended = e.expanded if e.expanded is not None else float("inf")
    latencies = {q: run.answered[q] - t for q, t in run.presses.items() if q in run.answered}
    during = [lat for q, lat in latencies.items() if began <= run.presses[q] <= ended]
    overall = list(latencies.values())
    sends = sorted(run.dm_sent)
    first_send = sends[0] if sends else float("nan")
    p0, p1 = run.press_window
    # the send rate under the presses: from the first message (or the first press) to the
    # last press
    load_rate = rate_between(sends, max(first_send, p0), min(p1, sends[-1])) if sends else 0.0
    exp_rate = rate_between(sends, max(first_send, began), min(ended, sends[-1])) if sends else 0.0
    sending = [
        lat for q, lat in latencies.items() if sends and sends[0] <= run.presses[q] <= sends[-1]
    ]
    before = [lat for q, lat in latencies.items() if run.presses[q] < began]
    f: dict[str, Any] = {
        "sending_p99": pct(sending, 0.99) * 1000,
        "sending_n": len(sending),
        "before_p99": pct(before, 0.99) * 1000,
        "before_n": len(before),
        "lead": run.lead,
        "fired_late": began - run.fire_planned,
        "expansion_s": ended - began,
        "recipients": e.recipients,
        "during_n": len(during),
        "during_p50": pct(during, 0.5) * 1000,
        "during_p99": pct(during, 0.99) * 1000,
        "during_max": max(during, default=float("nan")) * 1000,
        "p50": pct(overall, 0.5) * 1000,
        "p99": pct(overall, 0.99) * 1000,
        "max": max(overall, default=float("nan")) * 1000,
        "presses": len(run.presses),
        "unanswered": len(run.presses) - len(latencies),
        "over_1s": sum(lat > 1 for lat in overall) + len(run.presses) - len(latencies),
        "over_3s": sum(lat > 3 for lat in overall) + len(run.presses) - len(latencies),
        "429": run.rejected_429,
        "429_where": run.rejected_where,
        "deferred": run.deferred,
        "backlog_max": max((n for at, n in run.backlog if p0 <= at <= p1 + 1), default=0),
        "backlog_end": next((n for at, n in run.backlog if at >= p1), 0),
        "first_send_after_fire": first_send - began,
        "rate_load": load_rate,
        "rate_expansion": exp_rate,
        "sent": len(sends),
        "reached": run.reached,
        "stalls": run.stalls,
        "load": run.load,
        "bot_cpu": run.bot_cpu,
        "fake_cpu": run.fake_cpu,
        "overlap_s": max(0.0, min(ended, p1) - max(began, p0)),
        "probe": probe_figures(run.probe, (p0, began), (max(p0, began), p1)),
    }
    if run.full:
        done = run.reached >= run.volunteers
        last = sends[-1] if done else float("nan")
        f["last_before_start"] = run.start_at - last if done else float("-inf")
        f["measured_rate"] = (len(sends) - 1) / (last - first_send) if done else load_rate
    else:
        # projected: what is not sent yet, at the rate measured under the presses
        left = run.volunteers - sum(t <= p1 for t in sends)
        f["projected_last"] = p1 + left / load_rate if load_rate > 0 else float("inf")
        f["last_before_start"] = run.start_at - f["projected_last"]
    return f


def probe_figures(
    probe: dict[str, Any] | None, before: tuple[float, float], during: tuple[float, float]
) -> dict[str, Any] | None:
    """The probes' figures before the rung fired and while presses and the reminder ran."""
    if probe is None:
        return None

    def inside(rows: list[list[float]], window: tuple[float, float]) -> list[list[float]]:
        return [row for row in rows if window[0] <= row[0] < window[1]]

    out: dict[str, Any] = {}
    for name, window in (("before", before), ("during", during)):
        seconds = max(1e-9, window[1] - window[0])
        lags = [row[1] for row in inside(probe["lags"], window)]
        dispatch = [row[1] for row in inside(probe["dispatch"], window)]
        batches = inside(probe["batches"], window)
        records = [row[1] for row in inside(probe["records"], window)]
        thread = inside(probe["thread"], window)
        kinds: dict[str, float] = {}
        for _began, _took, spent in thread:
            for kind, took in spent.items():
                kinds[kind] = kinds.get(kind, 0.0) + took
        in_ops = sum(kinds.values())
        out[name] = {
            "seconds": seconds,
            "lag_max": max(lags, default=0.0) * 1000,
            "lag_over_50": sum(lag > 0.05 for lag in lags),
            "lag_share": sum(lags) / seconds,  # of the wall time, the loop was late by
            "dispatch_p50": pct(dispatch, 0.5) * 1000,
            "dispatch_p99": pct(dispatch, 0.99) * 1000,
            "batch_p50": pct([b[1] for b in batches], 0.5) * 1000,
            "batch_p99": pct([b[1] for b in batches], 0.99) * 1000,
            "batch_max": max((b[1] for b in batches), default=float("nan")) * 1000,
            "batch_ops": statistics.median(b[2] for b in batches) if batches else 0,
            "writer_busy": sum(b[1] for b in batches) / seconds,
            "thread_busy": sum(row[1] for row in thread) / seconds,
            "thread_max": max((row[1] for row in thread), default=float("nan")) * 1000,
            "commit_share": (sum(row[1] for row in thread) - in_ops) / seconds,
            "kinds": sorted(((t / seconds, k) for k, t in kinds.items()), reverse=True)[:4],
            "records": len(records),
            "stale": sum(r > 0.02 for r in records) / len(records) if records else 0.0,
        }
    return out


def hms(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds == float("inf"):
        return sign + "never"
    if seconds < 120:
        return f"{sign}{seconds:.1f} s"
    h, rest = divmod(int(seconds), 3600)
    return f"{sign}{h} h {rest // 60:02d} min" if h else f"{sign}{rest // 60} min {rest % 60:02d} s"


def ms(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}"  # nan: no press in that window


def describe(run: Run, f: dict[str, Any]) -> str:
    kind = "full run" if run.full else "projected run"
    lines = [
        f"  {run.platform} {kind}, N={run.volunteers:,} (load {f['load'][0]:.2f} -> "
        f"{f['load'][1]:.2f}; cores used: bot {f['bot_cpu']:.2f}, fake+presses "
        f"{f['fake_cpu']:.2f})",
        f"    scheduler: lead {hms(f['lead'])} for N at {run.rate_planned:g}/s x{LEAD_MARGIN}, "
        f"fired {f['fired_late']:+.1f} s from that plan; expansion {f['expansion_s']:.1f} s "
        f"({f['recipients']:,} recipients), {f['overlap_s']:.0f} s of it under the presses",
        f"    presses: during the expansion p50 {ms(f['during_p50'])} ms p99 "
        f"{ms(f['during_p99'])} ms max {ms(f['during_max'])} ms (n={f['during_n']:,}); while "
        f"sending p99 {ms(f['sending_p99'])} ms (n={f['sending_n']:,}); before the rung p99 "
        f"{ms(f['before_p99'])} ms (n={f['before_n']:,}); all p50 {ms(f['p50'])} ms p99 "
        f"{ms(f['p99'])} ms max {ms(f['max'])} ms; >1 s {f['over_1s']:,}, >3 s "
        f"{f['over_3s']:,}, unanswered {f['unanswered']:,} of {f['presses']:,}"
        + (f"; deferred {f['deferred']:,}" if run.platform == "discord" else "")
        + (
            f"; updates waiting at Telegram's side: max {f['backlog_max']:,}, "
            f"{f['backlog_end']:,} at the last press"
            if run.platform == "telegram"
            else ""
        ),
        f"    sending: 429s {f['429']}"
        + (f" ({', '.join(f'{k} {n}' for k, n in f['429_where'].items())})" if f["429"] else "")
        + f"; first message {f['first_send_after_fire']:.2f} s after "
        f"the broadcast appeared; {f['rate_load']:.1f}/s under the presses, "
        f"{f['rate_expansion']:.1f}/s during the expansion; {f['sent']:,} sent to "
        f"{f['reached']:,} volunteers; fake server stalls > 20 ms: {f['stalls']}",
    ]
    if run.full:
        when = f["last_before_start"]
        verdict = (
            f"MEASURED: last recipient reached {hms(when)} before the freeze start"
            if when >= 0
            else f"MEASURED: last recipient reached {hms(-when)} AFTER the freeze start"
            if when != float("-inf")
            else f"NOT all reached: {run.reached:,} of {run.volunteers:,}"
        )
        lines.append(f"    {verdict} (the whole broadcast at {f['measured_rate']:.1f}/s)")
    else:
        when = f["last_before_start"]
        side = "before" if when >= 0 else "AFTER"
        lines.append(
            f"    PROJECTED: last recipient {hms(abs(when))} {side} the freeze start (the rest "
            f"at {f['rate_load']:.1f}/s, the rate under the presses; planned {run.rate_planned:g}"
            f"/s)"
        )
    probe = f["probe"]
    if probe is not None:
        for name, label in (("before", "before the rung"), ("during", "presses + reminder")):
            p = probe[name]
            lines.append(
                f"    bot probes, {label} ({p['seconds']:.0f} s): loop lag max "
                f"{p['lag_max']:.0f} ms, {p['lag_over_50']} over 50 ms, late "
                f"{p['lag_share']:.0%} of the time; dispatch p50 {ms(p['dispatch_p50'])} ms "
                f"p99 {ms(p['dispatch_p99'])} ms; writer transactions p50 "
                f"{ms(p['batch_p50'])} ms p99 {ms(p['batch_p99'])} ms max "
                f"{ms(p['batch_max'])} ms ({p['batch_ops']:.0f} ops), busy "
                f"{p['writer_busy']:.0%}; mark_sending over 20 ms {p['stale']:.0%} of "
                f"{p['records']:,}"
            )
            shares = ", ".join(f"{k} {share:.0%}" for share, k in p["kinds"])
            lines.append(
                f"      database thread busy {p['thread_busy']:.0%} (longest transaction "
                f"{ms(p['thread_max'])} ms): {shares}, BEGIN/savepoints/COMMIT "
                f"{p['commit_share']:.0%}"
            )
    return "\n".join(lines)


def summary(name: str, full: bool, results: list[dict[str, Any]]) -> str:
    def mm(key: str, fmt: str = "{:,.0f}") -> str:
        values = [r[key] for r in results]
        return f"{fmt.format(min(values))} / {fmt.format(statistics.median(values))}"

    def side(seconds: float) -> str:
        if seconds == float("-inf"):
            return "not reached"
        return f"{hms(seconds)} before" if seconds >= 0 else f"{hms(-seconds)} AFTER"

    slack = sorted(r["last_before_start"] for r in results)
    presses = (
        f"press p99 while sending {mm('sending_p99')} ms"
        if full
        else f"press p50 during the expansion {mm('during_p50')} ms, p99 {mm('during_p99')} ms"
    )
    what = "MEASURED" if full else "PROJECTED"
    return (
        f"{name}: {presses}; p99 of all presses {mm('p99')} ms; presses > 1 s "
        f"{mm('over_1s')}; 429s (max) {max(r['429'] for r in results)}; sent "
        f"{mm('rate_load', '{:.1f}')}/s under the presses; expansion "
        f"{mm('expansion_s', '{:.1f}')} s; {what} last recipient "
        f"(worst / median) {side(slack[0])} / {side(statistics.median(slack))} the start"
    )


async def main_async(args: argparse.Namespace) -> None:
    platforms = args.platforms.split(",")
    full_n = {"telegram": args.full_recipients_telegram, "discord": args.full_recipients_discord}
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
        f"presses {args.rate}/s for {args.seconds:.0f} s, the start rung due {args.wait:.0f} s "
        f"in; Telegram L = {args.telegram_limit}/s overall (1/s per chat, 20/min per group); "
        f"Discord global {args.discord_limit}/s (bot paces at {DISCORD_BOT_RATE:g}/s)",
        flush=True,
    )
    results: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        templates: dict[tuple[str, int], Path] = {}
        for platform in platforms:
            for n in (args.volunteers, full_n[platform]):
                if n <= 0 or (platform, n) in templates:
                    continue
                path = Path(tmp) / f"{platform}-{n}" / "coalition.sqlite3"
                path.parent.mkdir()
                began = time.perf_counter()
                await build_template(path, platform, n)
                templates[(platform, n)] = path
                print(
                    f"built {n:,} {platform} volunteers in {time.perf_counter() - began:.0f} s",
                    flush=True,
                )
        for number in range(args.runs):
            for platform in platforms:
                for full, n in ((False, args.volunteers), (True, full_n[platform])):
                    if n <= 0:
                        continue
                    print(f"run {number + 1}:", flush=True)
                    run = await measure(args, platform, templates[(platform, n)], n, full)
                    f = figures(run)
                    results.setdefault((platform, full), []).append(f)
                    print(describe(run, f), flush=True)
    print(f"summary (min / median of {args.runs} runs; load {os.getloadavg()[0]:.2f}):")
    for (platform, full), found in results.items():
        n = full_n[platform] if full else args.volunteers
        name = f"{platform} {'full run' if full else 'projected run'} N={n:,}"
        print("  " + summary(name, full, found), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platforms", default="telegram,discord")
    parser.add_argument("--volunteers", type=int, default=1_000_000)
    parser.add_argument("--full-recipients-telegram", type=int, default=20_000)
    parser.add_argument("--full-recipients-discord", type=int, default=2_000)
    parser.add_argument("--rate", type=int, default=500, help="presses per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--wait", type=float, default=5, help="seconds of presses before the rung")
    parser.add_argument("--startup", type=float, default=30, help="seconds allowed for start-up")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--telegram-limit", type=int, default=1000, help="messages/s overall")
    parser.add_argument("--discord-limit", type=int, default=50, help="requests/s, global")
    parser.add_argument(
        "--discord-callback-headers",
        action="store_true",
        help="the fake answers interaction callbacks with a large rate-limit bucket",
    )
    parser.add_argument(
        "--no-probe",
        dest="probe",
        action="store_false",
        help="run the bot without the probes (Telegram: exactly `python -m bot run`)",
    )
    parser.add_argument("--child", choices=("discord", "telegram"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "discord":
        asyncio.run(discord_child())
        return
    if args.child == "telegram":
        telegram_child()
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
