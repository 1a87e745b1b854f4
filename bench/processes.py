"""Benchmark of issue 13: several bot processes on one PostgreSQL database against one
process on SQLite, measured side by side in one run, on the same machine.

1. **Core pledges/s.** Distinct new volunteers pledge through the real core (bootstrap and
   Dispatcher, as bench/core.py: its settings and invocations, imported), 100 in flight per
   process, for `--core-seconds` after a `--warmup`; each process counts the pledges that
   completed inside the measured window. Three configurations, interleaved in `--rounds`
   rounds (the order rotates), each on a fresh database: SQLite with 1 process (the bot's
   own settings: WAL, synchronous=NORMAL); PostgreSQL with 1 process and with 3 (3 OS
   processes, each its own core, on the same database; the figure is their sum). The
   PostgreSQL server is a ThrowawayPostgres started here, but with fsync, synchronous_commit
   and full_page_writes ON: the careful production setting, each commit flushed to disk
   (the tests' server has them off). No process is pinned to a CPU: every configuration
   has the machine's cores, and PostgreSQL's own CPU is printed beside the figure. The
   rounds run once per `--prefill` level: 0 is a fresh database (migrated by the bot), N
   a campaign under way (N pledges bulk-loaded with their counters, then on PostgreSQL
   VACUUM ANALYZE, as autovacuum would have done by then). `--pg-waits` also samples what
   PostgreSQL's sessions wait for (a diagnostic: it adds a query every 10 ms).
2. **Telegram presses/s sustained.** The fake Bot API server (tests/fakes, Telegram's
   limits on) plays the volunteers with bench/telegram_burst.py's open-loop `press_at`
   (latency from each press's intended time) at rising rates, `--seconds` per step; a rate
   is sustained as there (every press answered, p99 <= 1 s, the last 5 s no slower than the
   first). Two configurations, `--runs` times, interleaved: 1 bot process on SQLite by
   webhook (the fake posts to it), and 3 bot processes on PostgreSQL behind a round-robin
   load balancer: `--balancer nginx` (the default when Debian's nginx is installed:
   `apt-get install nginx`), one worker process with keep-alive connections to the bots, as
   docs/deploy.md configures it; or `--balancer python`, the `RoundRobin` of
   tests/test_several_processes.py in a process of its own (aiohttp: it costs about twice
   nginx's CPU per press, CPU the SQLite configuration does not pay). Each step prints the
   CPU of the benchmark's process (the fake), the bots, the balancer (nginx: master and
   worker), PostgreSQL and the rest of the machine.
3. **Leader takeover.** 3 processes on PostgreSQL (presses at `--takeover-rate` meanwhile);
   the leader is killed with SIGKILL `--kills` times and restarted each time. Measured from
   the kill: the advisory lock free (pg_locks), held by another process (its lock
   connection is named `coalition-lead-<pid>`), and that process logging "this process
   leads".

Targets: 3 processes on PostgreSQL at least the 1-process SQLite figure, for pledges/s and
for sustained presses/s; takeover <= 5 s.

    .venv/bin/python bench/processes.py [--quick] [--parts core,telegram,takeover]
        [--rounds 3] [--core-seconds 20] [--prefill 0,100000] [--pg-waits] [--runs 3]
        [--rates 300,450,600,750,900,1200,1500,1800] [--seconds 30] [--telegram-prefill 0]
        [--kills 10] [--takeover-rate 100] [--balancer nginx|python]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from bench.core import GROUP as CORE_GROUP  # noqa: E402
from bench.core import PEPPER, bulk_load, invocation, settings_for  # noqa: E402
from bench.telegram_burst import (  # noqa: E402
    CLK_TCK,
    GROUP,
    ORGANIZER,
    TOKEN,
    Stalls,
    Step,
    ack_figures,
    board_count,
    cpu_seconds,
    format_step,
    load,
    machine_busy_seconds,
    post_board,
    press_at,
)
from bot.app.bootstrap import bootstrap  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from tests.fakes.telegram_server import FakeTelegram, Limits  # noqa: E402
from tests.postgres_server import ThrowawayPostgres, free_port  # noqa: E402
from tests.test_several_processes import RoundRobin  # noqa: E402

CORES = os.cpu_count() or 1
SECRET = "bench-processes-secret"
# The careful production setting: every commit flushed to disk before it is acknowledged.
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
CORE_CONFIGS = (("sqlite-1", 1), ("pg-1", 1), ("pg-3", 3))
TELEGRAM_CONFIGS = (("sqlite-1", 1), ("pg-3", 3))
LABELS = {
    "sqlite-1": "SQLite, 1 process",
    "pg-1": "PostgreSQL, 1 process",
    "pg-3": "PostgreSQL, 3 processes",
}
LEADER_SQL = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
LEADS = b"this process leads"
TAG = "@@"  # a worker's protocol lines on stdout


# -- measurement helpers ----------------------------------------------------------------


class LoadLog:
    """The machine's 1-minute load average, sampled every 5 s while a part runs."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self.part = "start"

    async def watch(self) -> None:
        while True:
            self.samples.setdefault(self.part, []).append(os.getloadavg()[0])
            await asyncio.sleep(5.0)

    def describe(self, part: str) -> str:
        values = sorted(self.samples.get(part, []))
        if not values:
            return "load average: no sample"
        return (
            f"1-min load average min {values[0]:.2f} median {statistics.median(values):.2f} "
            f"max {values[-1]:.2f} ({len(values)} samples)"
        )


def postgres_cpu(server: ThrowawayPostgres | None) -> float:
    """CPU seconds PostgreSQL used so far: the postmaster, its reaped children (cutime,
    cstime: backends that ended) and its live children (every backend), from /proc."""
    if server is None or server.directory is None:
        return 0.0
    try:
        master = int((server.directory / "data" / "postmaster.pid").read_text().split()[0])
        fields = Path(f"/proc/{master}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return 0.0
    total = sum(int(v) for v in fields[11:15]) / CLK_TCK
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(child[1]) == master:
            total += (int(child[11]) + int(child[12])) / CLK_TCK
    return total


def database_url(server: ThrowawayPostgres, name: str) -> str:
    return server.url.rsplit("/", 1)[0] + "/" + name


async def fresh_database(server: ThrowawayPostgres, name: str) -> str:
    """A new, empty database on the server (each configuration starts from nothing)."""
    conn = await asyncpg.connect(server.url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url(server, name)


async def drop_database(server: ThrowawayPostgres, name: str) -> None:
    conn = await asyncpg.connect(server.url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def prefill(settings: Settings, count: int) -> None:
    """A campaign under way: the bot's migrations, then `count` pledges of distinct
    volunteers (in bench/core.py's group) bulk-loaded with their counters, then (PostgreSQL)
    VACUUM ANALYZE, as autovacuum would have done by then. SQLite: bench/core.py's
    bulk_load. Nothing at all when count is 0 (a fresh database, migrated by the bot)."""
    if count == 0:
        return
    async with bootstrap(settings) as (services, _dispatcher):
        campaign = services.campaign.id
    if settings.database_url is None:
        await asyncio.to_thread(bulk_load, settings.db_path, campaign, count)
        return
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        async with conn.transaction():
            community = await conn.fetchval(
                "INSERT INTO communities (platform, chat_id, created_at) "
                "VALUES ('telegram', $1, now()) ON CONFLICT (platform, chat_id) "
                "DO UPDATE SET chat_id = excluded.chat_id RETURNING id",
                CORE_GROUP,
            )
            key = "sha256(('prefill-' || i)::bytea)"
            rows = "FROM generate_series(1, $1::bigint) i"
            await conn.execute(
                f"INSERT INTO volunteers (key, created_at) SELECT {key}, now() {rows}", count
            )
            await conn.execute(
                "INSERT INTO pledges (volunteer, campaign_id, choice, number, created_at) "
                f"SELECT {key}, $2, 'both', i, now() {rows}",
                count,
                campaign,
            )
            await conn.execute(
                "INSERT INTO pledge_communities (volunteer, campaign_id, community_id) "
                f"SELECT {key}, $2, $3 {rows}",
                count,
                campaign,
                community,
            )
            await conn.execute(
                "UPDATE campaigns SET pledged = pledged + $1, next_number = next_number + $1 "
                "WHERE id = $2",
                count,
                campaign,
            )
            await conn.execute(
                "INSERT INTO community_tallies AS t (campaign_id, community_id, pledged) "
                "VALUES ($1, $2, $3) ON CONFLICT (campaign_id, community_id) "
                "DO UPDATE SET pledged = t.pledged + excluded.pledged",
                campaign,
                community,
                count,
            )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def median_and_min(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


# -- 1. core pledges/s ------------------------------------------------------------------


async def core_worker(
    database: str, data: Path, first: int, seconds: float, warmup: float, in_flight: int
) -> None:
    """One process of the core benchmark: bootstrap, say ready, wait for "go" on stdin,
    pledge for warmup + seconds with `in_flight` distinct new volunteers at a time, and
    print what completed inside the measured window."""
    settings = settings_for(data)
    if database != "sqlite":
        settings = settings.model_copy(update={"database_url": SecretStr(database)})
    users = itertools.count(first)
    async with bootstrap(settings) as (services, dispatcher):
        print(f"{TAG}ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        start = time.perf_counter()
        begin, end = start + warmup, start + warmup + seconds
        handled = counted = 0
        cpu: list[float] = []

        async def pledger() -> None:
            nonlocal handled, counted
            while time.perf_counter() < end:
                replies = await dispatcher.handle(invocation(next(users), "pledge", "both"))
                assert replies, "a pledge without an answer"
                handled += 1
                if begin <= time.perf_counter() <= end:
                    counted += 1

        async def cpu_at_edges() -> None:
            await asyncio.sleep(warmup)
            cpu.append(time.process_time())
            await asyncio.sleep(seconds)
            cpu.append(time.process_time())

        await asyncio.gather(cpu_at_edges(), *(pledger() for _ in range(in_flight)))
        tally = await services.storage.tally(services.campaign.id, "telegram", CORE_GROUP)
    result = {
        "rate": counted / seconds,
        "handled": handled,
        "cpu": (cpu[1] - cpu[0]) / seconds,
        "tally": tally.total,
    }
    print(f"{TAG}{json.dumps(result)}", flush=True)


@dataclass
class CoreRun:
    config: str
    rate: float  # pledges/s, summed over the processes
    per_process: list[float]
    cpu_workers: float  # % of one core, summed
    cpu_postgres: float
    cpu_machine: float  # % of one core, the whole machine (of CORES * 100)
    waits: str = ""  # --pg-waits: what the bot's PostgreSQL sessions were doing


async def wait_events(url: str, seconds: float) -> str:
    """Sample the bot's sessions in pg_stat_activity every 10 ms for `seconds` (--pg-waits):
    how many were, on average, running, waiting for a lock, for the WAL's flush, or idle in
    a transaction (holding its locks while the client prepares its next statement)."""
    conn = await asyncpg.connect(url)
    counts: dict[str, int] = {}
    samples = 0
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rows = await conn.fetch(
                "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND application_name = 'coalition-bot' AND state <> 'idle'"
            )
            samples += 1
            for state, kind, event in rows:
                what = "running" if state == "active" and kind is None else f"{kind}:{event}"
                if state == "idle in transaction":
                    what = "idle in transaction" + (f" ({kind}:{event})" if kind else "")
                counts[what] = counts.get(what, 0) + 1
            await asyncio.sleep(0.01)
    finally:
        await conn.close()
    top = sorted(counts.items(), key=lambda item: -item[1])[:6]
    return ", ".join(f"{what} {n / samples:.2f}" for what, n in top)


async def _tagged(stream: asyncio.StreamReader) -> str:
    while True:
        line = await stream.readline()
        if not line:
            raise RuntimeError("a core worker ended early (see its log)")
        text = line.decode().strip()
        if text.startswith(TAG):
            return text[len(TAG) :]


async def core_run(
    config: str,
    processes: int,
    server: ThrowawayPostgres | None,
    tmp: Path,
    round_: int,
    args: argparse.Namespace,
    filled: int,
) -> CoreRun:
    name = f"core_{config.replace('-', '_')}_{round_}_{filled}"
    url = await fresh_database(server, name) if server is not None else "sqlite"
    first = tmp / f"{name}-0"
    first.mkdir()
    settings = settings_for(first)
    if server is not None:
        settings = settings.model_copy(update={"database_url": SecretStr(url)})
    await prefill(settings, filled)
    workers: list[asyncio.subprocess.Process] = []
    logs: list[Path] = []
    try:
        for index in range(processes):
            data = tmp / f"{name}-{index}"
            data.mkdir(exist_ok=True)
            logs.append(data / "worker.log")
            workers.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "_core-worker",
                    url,
                    str(data),
                    str(10**9 * (round_ * 10 + index + 1)),
                    str(args.core_seconds),
                    str(args.warmup),
                    str(args.in_flight),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=logs[-1].open("wb"),
                    cwd=data,
                )
            )
        try:
            for worker in workers:
                assert worker.stdout is not None
                ready = await asyncio.wait_for(_tagged(worker.stdout), 120)
                assert ready == "ready", ready
        except (RuntimeError, TimeoutError):
            for log in logs:
                print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
        await asyncio.sleep(args.warmup)
        before = (postgres_cpu(server), machine_busy_seconds())
        if server is not None and args.pg_waits:
            waits = await wait_events(url, args.core_seconds)
        else:
            waits = ""
            await asyncio.sleep(args.core_seconds)
        after = (postgres_cpu(server), machine_busy_seconds())
        results = []
        for worker in workers:
            assert worker.stdout is not None
            results.append(json.loads(await asyncio.wait_for(_tagged(worker.stdout), 120)))
            await worker.wait()
        handled = sum(r["handled"] for r in results)
        if server is not None:
            conn = await asyncpg.connect(url)
            try:
                stored = await conn.fetchval("SELECT sum(pledged) FROM campaigns")
            finally:
                await conn.close()
        else:
            stored = results[0]["tally"]
        if stored != handled + filled:
            raise RuntimeError(
                f"{config}: {handled} pledges answered after {filled}, {stored} stored"
            )
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
        if server is not None:
            await drop_database(server, name)
    return CoreRun(
        config=config,
        rate=sum(r["rate"] for r in results),
        per_process=[r["rate"] for r in results],
        cpu_workers=100 * sum(r["cpu"] for r in results),
        cpu_postgres=100 * (after[0] - before[0]) / args.core_seconds,
        cpu_machine=100 * (after[1] - before[1]) / args.core_seconds,
        waits=waits,
    )


def filled_label(filled: int) -> str:
    return "a fresh database" if filled == 0 else f"{filled:,} pledges already in (analyzed)"


async def core_part(
    server: ThrowawayPostgres, args: argparse.Namespace
) -> dict[int, dict[str, list[float]]]:
    print(
        f"\n1. core pledges/s: distinct new volunteers, {args.in_flight} in flight per process, "
        f"{args.core_seconds:g} s measured after {args.warmup:g} s of warm-up, {args.rounds} "
        f"rounds, configurations interleaved (order rotating), each on its own database: "
        f"{'; then '.join(filled_label(f) for f in args.prefill)}; {load()}",
        flush=True,
    )
    found: dict[int, dict[str, list[float]]] = {}
    for filled in args.prefill:
        rates = found[filled] = {config: [] for config, _ in CORE_CONFIGS}
        print(f"  on {filled_label(filled)}:", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-processes-core-") as tmp:
            for round_ in range(1, args.rounds + 1):
                shift = (round_ - 1) % len(CORE_CONFIGS)
                for config, processes in CORE_CONFIGS[shift:] + CORE_CONFIGS[:shift]:
                    pg = server if config.startswith("pg") else None
                    run = await core_run(config, processes, pg, Path(tmp), round_, args, filled)
                    rates[config].append(run.rate)
                    per = " + ".join(f"{r:,.0f}" for r in run.per_process)
                    print(
                        f"  round {round_}  {LABELS[config]:24} {run.rate:7,.0f} pledges/s"
                        + (f" ({per})" if len(run.per_process) > 1 else "")
                        + f"  cpu: bot processes {run.cpu_workers:.0f} %, postgres "
                        f"{run.cpu_postgres:.0f} %, machine {run.cpu_machine:.0f} % of "
                        f"{CORES * 100} %; {load()}",
                        flush=True,
                    )
                    if run.waits:
                        print(f"    postgres sessions on average: {run.waits}", flush=True)
    return found


# -- 2. Telegram presses/s sustained -------------------------------------------------------


async def serve_balancer(ports: list[int]) -> None:
    """The balancer's own process: tests/test_several_processes.py's RoundRobin."""
    balancer = RoundRobin(ports)
    await balancer.start()
    print(f"{TAG}{balancer.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await balancer.stop()


NGINX = "/usr/sbin/nginx"


def default_balancer() -> str:
    """nginx when Debian's package is installed, else the Python round robin."""
    return "nginx" if Path(NGINX).exists() else "python"


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and of its children (nginx's workers) so far."""
    total = cpu_seconds(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                total += cpu_seconds(int(stat.parent.name))
    return total


async def wait_for_port(port: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} after {timeout} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return


@dataclass
class Bots:
    """`count` coalition-bot processes (`python -m bot run`, webhook mode) for one fake
    Telegram; on PostgreSQL when `url` is set, behind a RoundRobin process when count > 1."""

    server: FakeTelegram
    directory: Path
    url: str | None
    count: int
    log_level: str = "WARNING"
    postgres: ThrowawayPostgres | None = None
    ports: list[int] = field(default_factory=list)
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    balancer: subprocess.Popen[bytes] | None = None
    webhook: str = ""
    balancer_kind: str = "python"  # or "nginx"

    async def start_all(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ports = [free_port() for _ in range(self.count)]
        if self.count > 1 and self.balancer_kind == "nginx":
            port = free_port()
            self.balancer = self._start_nginx(port)
            await wait_for_port(port)
            self.webhook = f"http://127.0.0.1:{port}/telegram"
        elif self.count > 1:
            self.balancer = self._start_balancer()
            assert self.balancer.stdout is not None
            line = await asyncio.to_thread(self.balancer.stdout.readline)
            self.webhook = f"http://127.0.0.1:{int(line.decode().strip()[len(TAG) :])}/telegram"
        else:
            self.webhook = f"http://127.0.0.1:{self.ports[0]}/telegram"
        for index in range(self.count):
            self.start(index)
        for index in range(self.count):
            await self.listening(index)
        await self.server.wait_for(lambda: self.server.webhook_info()["url"] != "", timeout=60)
        if self.url is not None:
            deadline = time.monotonic() + 60
            while await leader_pid(self.url) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("no process leads after 60 s")
                await asyncio.sleep(0.1)

    def _start_nginx(self, port: int) -> subprocess.Popen[bytes]:
        """Debian's nginx in front of the bots: round robin, keep-alive to the upstreams."""
        home = self.directory / "nginx"
        home.mkdir(parents=True, exist_ok=True)
        upstreams = "".join(f"server 127.0.0.1:{p};" for p in self.ports)
        (home / "nginx.conf").write_text(
            f"worker_processes 1; pid {home}/nginx.pid; error_log {home}/error.log warn;"
            f"user root;"
            f"events {{ worker_connections 4096; }}"
            f"http {{ access_log off; client_body_temp_path {home}/body;"
            f" proxy_temp_path {home}/proxy; fastcgi_temp_path {home}/fcgi;"
            f" uwsgi_temp_path {home}/uwsgi; scgi_temp_path {home}/scgi;"
            f" upstream bots {{ {upstreams} keepalive 128; }}"
            f" server {{ listen 127.0.0.1:{port};"
            f" location / {{ proxy_pass http://bots; proxy_http_version 1.1;"
            f' proxy_set_header Connection ""; proxy_set_header Host $host; }} }} }}\n'
        )
        return subprocess.Popen(
            [NGINX, "-c", str(home / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "balancer.log").open("wb"),
        )

    def _start_balancer(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, __file__, "_balancer", ",".join(map(str, self.ports))],
            stdout=subprocess.PIPE,
            stderr=(self.directory / "balancer.log").open("wb"),
        )

    def start(self, index: int) -> None:
        """Start (or restart) bot process `index`, with the settings bench/telegram_burst.py
        gives its `coalition` kind, and a shared pepper and webhook secret."""
        data = self.directory / f"process-{index}"
        data.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_")}
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env.update(
            PYTHONPATH=path,
            PTB_TIMEDELTA="1",
            COALITION_TELEGRAM_TOKEN=TOKEN,
            COALITION_TELEGRAM_BASE_URL=self.server.base_url,
            COALITION_TELEGRAM_BASE_FILE_URL=self.server.base_file_url,
            COALITION_TELEGRAM_WEBHOOK_URL=self.webhook,
            COALITION_TELEGRAM_WEBHOOK_SECRET=SECRET,
            COALITION_WEB_PORT=str(self.ports[index]),
            COALITION_DATA_DIR=str(data),
            COALITION_PEPPER=PEPPER,
            COALITION_TELEGRAM_ORGANIZER_IDS=str(ORGANIZER),
            COALITION_LOG_LEVEL=self.log_level,
        )
        if self.url is not None:
            env["COALITION_DATABASE_URL"] = self.url
        log = (data / "bot.log").open("ab")
        self.processes[index] = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"], cwd=data, env=env, stdout=log, stderr=log
        )

    async def listening(self, index: int, within: float = 60.0) -> None:
        """Wait until process `index` accepts connections on its port."""
        deadline = time.monotonic() + within
        while True:
            if self.processes[index].poll() is not None:
                raise RuntimeError(f"bot process {index} ended: {self.log(index)[-2000:]}")
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", self.ports[index])
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bot process {index} does not listen") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    def log_path(self, index: int) -> Path:
        return self.directory / f"process-{index}" / "bot.log"

    def log(self, index: int) -> str:
        return self.log_path(index).read_text(errors="replace")

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes.values() if p.poll() is None]

    def cpu(self) -> tuple[float, float, float]:
        """CPU seconds so far of the bots, the balancer and PostgreSQL."""
        bots = sum(cpu_seconds(pid) for pid in self.pids())
        balancer = tree_cpu_seconds(self.balancer.pid) if self.balancer is not None else 0.0
        return bots, balancer, postgres_cpu(self.postgres)

    def tracebacks(self) -> int:
        return sum(self.log(index).count("Traceback") for index in self.processes)

    def ended(self) -> list[str]:
        """Bot processes (or the balancer) that ended on their own: code and log tail."""
        found = [
            f"bot process {index} (pid {p.pid}) ended with code {p.returncode}; its log "
            f"ends:\n{self.log(index)[-3000:]}"
            for index, p in self.processes.items()
            if p.poll() is not None
        ]
        if self.balancer is not None and self.balancer.poll() is not None:
            log = (self.directory / "balancer.log").read_text(errors="replace")[-3000:]
            found.append(f"the balancer ended with code {self.balancer.returncode}:\n{log}")
        return found

    def stop(self) -> None:
        for problem in self.ended():
            print(f"  !! {problem}", flush=True)
        everyone = [*self.processes.values(), *([self.balancer] if self.balancer else [])]
        for process in everyone:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in everyone:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def leader_pid(url: str, conn: asyncpg.Connection | None = None) -> int | None:
    """The OS pid of the process holding the lead, from its lock connection's name."""
    own = conn is None
    if conn is None:
        conn = await asyncpg.connect(url)
    try:
        name = await conn.fetchval(LEADER_SQL)
    finally:
        if own:
            await conn.close()
    if name and name.startswith("coalition-lead-"):
        return int(name.removeprefix("coalition-lead-"))
    return None


@dataclass
class Extra:
    """CPU a Step has no column for, in % of one core while pressing."""

    balancer: float
    postgres: float

    def __str__(self) -> str:
        return f"cpu balancer/postgres {self.balancer:.0f}/{self.postgres:.0f} %"


async def telegram_step(
    bots: Bots, board_id: int, rate: int, seconds: float, first_user: int, expected: int
) -> tuple[Step, Extra]:
    """One step of presses at `rate`, measured as bench/telegram_burst.py's measure() does;
    `expected` is the board's count once every press of this step is in."""
    server = bots.server
    created: dict[str, float] = {}
    before_429 = server.rejected_429
    gc.collect()  # the fake's collector off while pressing, as bench/telegram_burst.py
    gc.disable()
    stalls = Stalls()
    watcher = asyncio.create_task(stalls.watch())
    try:
        bench_before, machine_before = time.process_time(), machine_busy_seconds()
        bots_before, balancer_before, postgres_before = bots.cpu()
        wall_before = time.monotonic()
        last = await press_at(server, board_id, rate, seconds, first_user, created)
        generator_late = max(0.0, time.monotonic() - last)
        wall = time.monotonic() - wall_before
        cpu_bench = time.process_time() - bench_before
        bots_after, balancer_after, postgres_after = bots.cpu()
        cpu_bots = bots_after - bots_before
        cpu_balancer = balancer_after - balancer_before
        cpu_postgres = postgres_after - postgres_before
        cpu_others = (
            machine_busy_seconds() - machine_before - cpu_bench - cpu_bots - cpu_balancer
        ) - cpu_postgres
        deadline = time.monotonic() + seconds + 15
        while time.monotonic() < deadline:
            answered = sum(q in server.callback_answered_at for q in created)
            if answered == len(created) and board_count(server, board_id) == expected:
                break
            await asyncio.sleep(0.02)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        gc.enable()
    shown = [
        at for at, text in server.edited_at[(GROUP, board_id)] if f"{expected:,} volun" in text
    ]
    step = Step(
        rate=rate,
        **ack_figures(server, created, last),
        board_exact=(shown[0] - last) if shown else float("inf"),
        rejected_429=server.rejected_429 - before_429,
        cpu_bench=100 * cpu_bench / wall,
        cpu_bot=100 * cpu_bots / wall,
        cpu_others=max(0.0, 100 * cpu_others / wall),
        generator_late=generator_late,
        stalls=len(stalls.lags),
        worst_stall=max(stalls.lags, default=0.0),
        gc_pauses=len(stalls.gc),
        worst_gc=max(stalls.gc, default=0.0),
    )
    return step, Extra(100 * cpu_balancer / wall, 100 * cpu_postgres / wall)


async def telegram_run(
    config: str,
    count: int,
    server_pg: ThrowawayPostgres,
    tmp: Path,
    run: int,
    args: argparse.Namespace,
) -> int:
    """One configuration's ladder of rates; the highest sustained rate (0: none)."""
    name = f"telegram_{run}"
    best = 0
    async with FakeTelegram(TOKEN, limits=Limits(enabled=True)) as server:
        server.add_user(ORGANIZER, "Org", "en", started=True)
        server.add_group(GROUP, "Coalition", creator=ORGANIZER)
        url = await fresh_database(server_pg, name) if config.startswith("pg") else None
        pg = server_pg if url is not None else None
        bots = Bots(
            server, tmp / f"{config}-{run}", url, count, postgres=pg, balancer_kind=args.balancer
        )
        try:
            (bots.directory / "process-0").mkdir(parents=True)
            settings = settings_for(bots.directory / "process-0")
            if url is not None:
                settings = settings.model_copy(update={"database_url": SecretStr(url)})
            await prefill(settings, args.telegram_prefill)
            await bots.start_all()
            board_id = await post_board("coalition", server)
            user, expected = 1_000_000, 0
            for rate in args.rates:
                expected += int(rate * args.seconds)
                step, extra = await telegram_step(
                    bots, board_id, rate, args.seconds, user, expected
                )
                user += step.presses
                print(
                    f"  run {run}  {config:8} {format_step(step)}  {extra}  {load()}",
                    flush=True,
                )
                if not step.sustained:
                    break
                best = step.rate
                await asyncio.sleep(1.0)
        finally:
            bots.stop()
            if bots.tracebacks():
                print(f"  run {run}  {config}: {bots.tracebacks()} tracebacks in the bot logs")
            if url is not None:
                await drop_database(server_pg, name)
    return best


async def telegram_part(
    server: ThrowawayPostgres, args: argparse.Namespace
) -> dict[str, list[int]]:
    print(
        f"\n2. Telegram presses/s sustained: open loop, {args.seconds:g} s per rate, rates "
        f"{','.join(map(str, args.rates))}, {args.runs} runs (order alternating); 1 process "
        f"on SQLite by webhook vs 3 on PostgreSQL behind "
        f"{'nginx' if args.balancer == 'nginx' else 'RoundRobin (its own process)'}, on "
        f"{filled_label(args.telegram_prefill)}; {load()}",
        flush=True,
    )
    best: dict[str, list[int]] = {config: [] for config, _ in TELEGRAM_CONFIGS}
    with tempfile.TemporaryDirectory(prefix="bench-processes-telegram-") as tmp:
        for run in range(1, args.runs + 1):
            order = TELEGRAM_CONFIGS if run % 2 else TELEGRAM_CONFIGS[::-1]
            for config, count in order:
                best[config].append(await telegram_run(config, count, server, Path(tmp), run, args))
                print(
                    f"  run {run}  {config:8} highest sustained: {best[config][-1]}/s", flush=True
                )
    return best


# -- 3. leader takeover -----------------------------------------------------------------


class LogWatch:
    """New occurrences of "this process leads" in one process's log since the last look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.tail = b""

    def leads(self) -> bool:
        try:
            with self.path.open("rb") as file:
                file.seek(self.offset)
                new = file.read()
        except OSError:
            return False
        self.offset += len(new)
        text, self.tail = self.tail + new, (self.tail + new)[-len(LEADS) :]
        return LEADS in text


@dataclass
class Takeover:
    freed: float  # the lock no longer held by the killed process
    taken: float  # ... held by another
    logged: float  # ... which logged "this process leads"
    killed_at: float = 0.0  # monotonic times: the kill
    restarted_at: float = 0.0  # ... the killed process started again
    listening_at: float = 0.0  # ... and accepting connections


@dataclass
class Pressing:
    """Presses at a steady rate in the background, 5 s at a time, until stopped."""

    server: FakeTelegram
    board_id: int
    rate: int
    created: dict[str, float] = field(default_factory=dict)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        user = 5_000_000
        while not self.stopping.is_set() and self.rate > 0:
            before = len(self.created)
            await press_at(self.server, self.board_id, self.rate, 5.0, user, self.created)
            user += len(self.created) - before

    def latencies(self) -> Iterator[float]:
        answered = self.server.callback_answered_at
        return (answered[q] - t for q, t in self.created.items() if q in answered)


async def takeover_part(server_pg: ThrowawayPostgres, args: argparse.Namespace) -> list[Takeover]:
    print(
        f"\n3. leader takeover: 3 processes on PostgreSQL, the leader killed with SIGKILL "
        f"{args.kills} times (restarted each time), presses at {args.takeover_rate}/s "
        f"meanwhile; {load()}",
        flush=True,
    )
    found: list[Takeover] = []
    name = "takeover"
    with tempfile.TemporaryDirectory(prefix="bench-processes-takeover-") as tmp:
        async with FakeTelegram(TOKEN, limits=Limits(enabled=True)) as server:
            server.add_user(ORGANIZER, "Org", "en", started=True)
            server.add_group(GROUP, "Coalition", creator=ORGANIZER)
            url = await fresh_database(server_pg, name)
            bots = Bots(server, Path(tmp), url, 3, log_level="INFO", postgres=server_pg)
            conn: asyncpg.Connection | None = None
            pressing: Pressing | None = None
            presser: asyncio.Task[None] | None = None
            try:
                await bots.start_all()
                board_id = await post_board("coalition", server)
                conn = await asyncpg.connect(url)
                pressing = Pressing(server, board_id, args.takeover_rate)
                presser = asyncio.create_task(pressing.run())
                for kill in range(1, args.kills + 1):
                    await asyncio.sleep(random.uniform(2.0, 4.0))  # any phase of the tries
                    found.append(await kill_leader(bots, conn, kill))
                pressing.stopping.set()
                await presser
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    if all(q in server.callback_answered_at for q in pressing.created):
                        break
                    await asyncio.sleep(0.1)
            finally:
                if presser is not None and not presser.done():
                    presser.cancel()
                    await asyncio.gather(presser, return_exceptions=True)
                if conn is not None:
                    await conn.close()
                bots.stop()
                tracebacks = bots.tracebacks()
                await drop_database(server_pg, name)
    if pressing is not None and pressing.created:
        latencies = sorted(pressing.latencies())
        missing = len(pressing.created) - len(latencies)
        p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else float("inf")
        print(
            f"  presses during the kills: {len(pressing.created)}, unanswered {missing}, "
            f"p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
            f"max {latencies[-1] * 1000:.0f} ms; tracebacks in the logs: {tracebacks}",
            flush=True,
        )
        print(f"  {slow_presses(pressing, found)}", flush=True)
    return found


async def kill_leader(bots: Bots, conn: asyncpg.Connection, kill: int) -> Takeover:
    old = await leader_pid("", conn)
    if old is None:
        raise RuntimeError("no process leads before a kill")
    index = next(i for i, p in bots.processes.items() if p.pid == old)
    watches = {i: LogWatch(bots.log_path(i)) for i in bots.processes if i != index}
    killed = time.monotonic()
    os.kill(old, signal.SIGKILL)
    freed = taken = logged = None
    new: int | None = None
    while time.monotonic() - killed < 60:
        holder = await leader_pid("", conn)
        now = time.monotonic()
        if freed is None and holder != old:
            freed = now
        if holder is not None and holder != old:
            taken, new = now, holder
            break
        await asyncio.sleep(0.005)
    if taken is None or freed is None:
        raise RuntimeError("no process took over within 60 s")
    new_index = next(i for i, p in bots.processes.items() if p.pid == new)
    while time.monotonic() - killed < 60:
        if watches[new_index].leads():
            logged = time.monotonic()
            break
        await asyncio.sleep(0.005)
    if logged is None:
        raise RuntimeError(f"process {new} took the lock but never logged that it leads")
    bots.processes[index].wait()
    result = Takeover(freed - killed, taken - killed, logged - killed)
    print(
        f"  kill {kill:2}: pid {old} killed; lock free after {result.freed:.3f} s, held by "
        f"pid {new} after {result.taken:.3f} s, logged 'this process leads' after "
        f"{result.logged:.3f} s; {load()}",
        flush=True,
    )
    result.killed_at = killed
    result.restarted_at = time.monotonic()
    bots.start(index)  # back to three
    await bots.listening(index)
    result.listening_at = time.monotonic()
    return result


def slow_presses(pressing: Pressing, takeovers: list[Takeover]) -> str:
    """Where the presses answered in more than 1 s were sent: how long after the last kill,
    and whether before the killed process was restarted, while it started, or after it
    accepted connections again."""
    answered = pressing.server.callback_answered_at
    slow = [(t, answered.get(q, float("inf")) - t) for q, t in pressing.created.items()]
    slow = [(t, lag) for t, lag in slow if lag > 1.0]
    if not slow:
        return "no press over 1 s"
    phases: dict[str, list[float]] = {}
    for sent, _lag in slow:
        before = [k for k in takeovers if k.killed_at <= sent]
        if not before:
            phases.setdefault("before the first kill", []).append(0.0)
            continue
        last = before[-1]
        if sent < last.restarted_at:
            phase = "before the restart"
        elif sent < last.listening_at:
            phase = "while the killed process started again"
        else:
            phase = "after the restarted process listened"
        phases.setdefault(phase, []).append(sent - last.killed_at)
    worst = max(lag for _sent, lag in slow)
    listed = "; ".join(
        f"{len(after)} sent {phase} ({min(after):.1f}-{max(after):.1f} s after a kill)"
        for phase, after in phases.items()
    )
    return f"{len(slow)} presses over 1 s (up to {worst:.2f} s): {listed}"


# -- main --------------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def summary(
    levels: dict[int, dict[str, list[float]]] | None,
    telegram: dict[str, list[int]] | None,
    takeovers: list[Takeover] | None,
    loads: LoadLog,
) -> None:
    print(f"\nsummary ({load()})")
    for filled, core in (levels or {}).items():
        print(
            f"1. core pledges/s on {filled_label(filled)}, min / median of "
            f"{len(core['sqlite-1'])} rounds ({loads.describe('core')}):"
        )
        for config, values in core.items():
            low, mid = median_and_min(values)
            print(f"  {LABELS[config]:24} {low:7,.0f} / {mid:7,.0f}")
        base = statistics.median(core["sqlite-1"])
        pg1, pg3 = statistics.median(core["pg-1"]), statistics.median(core["pg-3"])
        print(
            f"  PG-1 / SQLite-1 = {pg1 / base:.2f}; PG-3 / SQLite-1 = {pg3 / base:.2f} (medians)"
            f"  target PG-3 >= SQLite-1: {verdict(pg3 >= base)}"
            + ("" if pg3 >= base else f" by {100 * (1 - pg3 / base):.0f} %")
        )
    if telegram:
        runs = len(telegram["sqlite-1"])
        print(
            f"2. Telegram presses/s sustained, per run and min / median of {runs} "
            f"({loads.describe('telegram')}):"
        )
        for config, values in telegram.items():
            low, mid = median_and_min([float(v) for v in values])
            print(f"  {LABELS[config]:24} {', '.join(map(str, values)):24} {low:5.0f} / {mid:5.0f}")
        base = statistics.median(telegram["sqlite-1"])
        pg3 = statistics.median(telegram["pg-3"])
        print(
            f"  PG-3 / SQLite-1 = {pg3 / base if base else float('inf'):.2f} (medians)  "
            f"target PG-3 >= SQLite-1: {verdict(pg3 >= base)}"
        )
    if takeovers:
        print(
            f"3. leader takeover after SIGKILL, {len(takeovers)} kills "
            f"({loads.describe('takeover')}):"
        )
        for label, values in (
            ("lock free", [t.freed for t in takeovers]),
            ("lock held by another", [t.taken for t in takeovers]),
            ("'this process leads' logged", [t.logged for t in takeovers]),
        ):
            print(f"  {label:28} median {statistics.median(values):.3f} s, max {max(values):.3f} s")
        worst = max(t.logged for t in takeovers)
        print(f"  target <= 5 s (lock and log, max): {verdict(worst <= 5.0)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run of every part")
    parser.add_argument("--parts", default="core,telegram,takeover")
    parser.add_argument("--rounds", type=int, default=3, help="core: rounds")
    parser.add_argument("--core-seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--in-flight", type=int, default=100, help="core: per process")
    parser.add_argument(
        "--prefill",
        default="0,100000",
        help="core: pledges already in the database, one set of rounds per level (0: fresh)",
    )
    parser.add_argument(
        "--telegram-prefill", type=int, default=0, help="telegram: pledges already in"
    )
    parser.add_argument(
        "--pg-waits",
        action="store_true",
        help="core: sample what PostgreSQL's sessions wait for (a diagnostic: adds a query "
        "every 10 ms)",
    )
    parser.add_argument("--runs", type=int, default=3, help="telegram: runs")
    parser.add_argument(
        "--balancer",
        choices=("nginx", "python"),
        default=default_balancer(),
        help="telegram: what spreads the webhook over the 3 processes",
    )
    parser.add_argument("--rates", default="300,450,600,750,900,1200,1500,1800")
    parser.add_argument("--seconds", type=float, default=30.0, help="telegram: per rate")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--takeover-rate", type=int, default=100, help="presses/s meanwhile")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.core_seconds, args.warmup = 1, 3.0, 1.0
        args.runs, args.rates, args.seconds, args.kills = 1, "300,600", 6.0, 3
        args.prefill = "0,10000"
    args.rates = [int(r) for r in args.rates.split(",") if r]
    args.prefill = [int(n) for n in args.prefill.split(",") if n]
    parts = set(args.parts.split(","))
    loads = LoadLog()
    watcher = asyncio.create_task(loads.watch())
    print(f"python {sys.version.split()[0]}, {CORES} cores; {load()}", flush=True)
    with ThrowawayPostgres(DURABLE) as server:
        conn = await asyncpg.connect(server.url)
        try:
            shown = [
                f"{name}={await conn.fetchval(f'SHOW {name}')}"
                for name in ("server_version", *DURABLE, "wal_sync_method", "shared_buffers")
            ]
        finally:
            await conn.close()
        print(
            f"PostgreSQL: a throwaway server on this machine's disk ({server.directory}), "
            f"settings for production, not the tests': {', '.join(shown)}. SQLite: the bot's "
            "own settings (WAL, synchronous=NORMAL), on the same disk.",
            flush=True,
        )
        core = telegram = takeovers = None
        if "core" in parts:
            loads.part = "core"
            core = await core_part(server, args)
        if "telegram" in parts:
            loads.part = "telegram"
            telegram = await telegram_part(server, args)
        if "takeover" in parts:
            loads.part = "takeover"
            takeovers = await takeover_part(server, args)
    watcher.cancel()
    summary(core, telegram, takeovers, loads)


if __name__ == "__main__":
    if sys.argv[1:2] == ["_core-worker"]:
        database, data, first, seconds, warmup, in_flight = sys.argv[2:8]
        asyncio.run(
            core_worker(
                database, Path(data), int(first), float(seconds), float(warmup), int(in_flight)
            )
        )
    elif sys.argv[1:2] == ["_balancer"]:
        asyncio.run(serve_balancer([int(p) for p in sys.argv[2].split(",")]))
    else:
        asyncio.run(main())
