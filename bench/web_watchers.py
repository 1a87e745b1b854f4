"""Benchmark: 10,000 browsers watch the live counts while volunteers pledge (issue 14).

The bot runs in its own process, as in production (`python -m bot run`, started by
bench/telegram_burst.py's `start_bot`): Telegram by webhook against the fake Bot API server
of tests/fakes, which runs in this process with Telegram's limits and plays the volunteers
(distinct volunteers press a group's "I pledge" button, open loop, each press stamped with
its intended time), and the campaign site on the same aiohttp server (`/events`,
`/api/counts`). A temporary SQLite database. All watchers connect from 127.0.0.1, so the
bot runs with COALITION_WEB_STREAMS_PER_ADDRESS = the number of watchers (its `.env`, in the
bot's working directory); every other setting is the default.

The watchers are `GET /events`, `/en/events`, `/ar/events`, `/fr/events` in turn (aiohttp
client, no connection limit), spread over `--workers` processes (2 by default) so that the
instrument keeps up; each records when it receives each `data:` event and the count it shows
(the number of its "pledged" sentence, in the page's digits). Each run, with a new bot:

1. idle: `/api/counts` with `--counts-conns` connections, closed loop, `--counts-seconds`
   plain, then as many with `If-None-Match` (304s): requests/s and latency p50/p99; then
   pledges at `--rate` for `--seconds` with no watcher: ack p50/p99 (press's intended time
   to the answer at the fake), sustained or not (as bench/telegram_burst.py: all answered,
   p99 <= 1 s, the last 5 s not clearly slower than the first);
2. `--watchers` streams opened (at most `--ramp` connecting at once per worker), then the
   same pledges while they watch: the same ack figures, and for every `--sample`-th second
   of intended pledge time, the delay until each watcher shows a count >= that pledge's
   count: from the pledge's intended time, from the pledge to the moment the bot published
   (the first watcher to receive it), and from that moment to each watcher; the events a
   watcher received and the shortest gap between two of them (coalescing: at most one a
   second); then `/api/counts` again while they are connected;
3. the bot's RSS (VmRSS of /proc/PID/status): idle, after the idle pledges, with the
   watchers connected, peak (VmHWM) and after they left.

Each phase prints the CPU used meanwhile (% of one core): this process (the fake server and
the volunteers), the watcher workers, the bot, the rest of the machine. At the end, the
min / median of the runs and each target of the issue.

    .venv/bin/python bench/web_watchers.py [--watchers 10000] [--runs 3] [--rate 300]
        [--seconds 30] [--workers 2] [--counts-conns 50] [--counts-seconds 15]
        [--ramp 100] [--sample 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import multiprocessing
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.telegram_burst import (  # noqa: E402
    CLK_TCK,
    GROUP,
    ORGANIZER,
    TOKEN,
    Step,
    ack_figures,
    cpu_seconds,
    load,
    machine_busy_seconds,
    post_board,
    press_at,
    start_bot,
)
from tests.fakes.telegram_server import FakeTelegram, Limits  # noqa: E402

PATHS = ("/events", "/en/events", "/ar/events", "/fr/events")
# Coalescing: two events at one watcher less than this apart would be two in one second (a
# little under 1 s: the bot publishes at most once a second, and its writes to 10,000
# streams take time, so one watcher's gap may be a few ms shorter than the bot's).
WINDOW = 0.9


def raise_nofile() -> int:
    """Open files: the soft limit up to the hard one (this process and its children)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def shown_count(line: bytes) -> int:
    """The count an SSE `data:` line shows: the number of its "pledged" sentence."""
    number = json.loads(line[6:])["pledged"][1]
    return int("".join(ch for ch in number if ch.isdecimal()))  # any script's digits


def pct(values: list[float], p: float) -> float:
    """The p-th percentile of sorted values (as bench/telegram_burst.py takes the p99)."""
    if not values:
        return float("inf")
    return values[min(len(values) - 1, max(0, int(len(values) * p) - 1))]


# -- the watcher workers (child processes) -------------------------------------------------


class Watchers:
    """One worker's streams, and the `/api/counts` load it makes when asked."""

    def __init__(self, base: str, paths: list[str], ramp: int) -> None:
        self.base = base.rstrip("/")
        self.paths = paths
        self.ramp = ramp
        self.session: aiohttp.ClientSession | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.times: list[array[float]] = []
        self.counts: list[array[int]] = []
        self.status: Counter[str] = Counter()
        self.ok: list[bool] = []
        self.ended = 0

    async def open(self) -> dict[str, Any]:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=True),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=60, sock_read=None),
        )
        self.times = [array("d") for _ in self.paths]
        self.counts = [array("q") for _ in self.paths]
        self.status = Counter()
        self.ok = [False] * len(self.paths)
        self.ended = 0
        gate = asyncio.Semaphore(self.ramp)
        started = time.monotonic()
        self.tasks = [
            asyncio.create_task(self._watch(i, path, gate)) for i, path in enumerate(self.paths)
        ]
        deadline = started + 120
        while time.monotonic() < deadline:
            settled = sum(self.status.values())
            if settled == len(self.paths) and all(
                self.times[i] for i, ok in enumerate(self.ok) if ok
            ):
                break
            await asyncio.sleep(0.05)
        return {
            "seconds": time.monotonic() - started,
            "status": dict(self.status),
            "with_event": sum(1 for t in self.times if t),
        }

    async def _watch(self, i: int, path: str, gate: asyncio.Semaphore) -> None:
        assert self.session is not None
        times, counts = self.times[i], self.counts[i]
        try:
            async with gate:
                response = await self.session.get(
                    self.base + path, headers={"Accept": "text/event-stream"}
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            self.status[type(error).__name__] += 1
            return
        self.status[str(response.status)] += 1
        if response.status != 200:
            response.release()
            return
        self.ok[i] = True
        clock = time.monotonic
        try:
            async for line in response.content:
                if line.startswith(b"data: "):
                    times.append(clock())
                    counts.append(shown_count(line))
        except (aiohttp.ClientError, OSError):
            pass
        finally:
            response.release()
        self.ended += 1

    def reset(self) -> None:
        """Forget the events received so far (a step starts)."""
        for times, counts in zip(self.times, self.counts, strict=True):
            del times[:]  # in place: each stream's task holds its own
            del counts[:]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def counts_load(self, conns: int, seconds: float, etag: str | None) -> dict[str, Any]:
        """`/api/counts` by `conns` connections, each one request after another."""
        url = self.base + "/api/counts"
        headers = {"If-None-Match": etag} if etag else {}
        latencies: list[float] = []
        status: Counter[int] = Counter()
        connector = aiohttp.TCPConnector(limit=conns)
        async with aiohttp.ClientSession(connector=connector) as session:
            end = time.monotonic() + seconds

            async def client() -> None:
                while time.monotonic() < end:
                    start = time.perf_counter()
                    async with session.get(url, headers=headers) as response:
                        await response.read()
                    latencies.append(time.perf_counter() - start)
                    status[response.status] += 1

            started = time.monotonic()
            await asyncio.gather(*(client() for _ in range(conns)))
            wall = time.monotonic() - started
        return {"latencies": array("d", latencies).tobytes(), "status": status, "wall": wall}


async def worker_loop(conn: Connection, base: str, paths: list[str], ramp: int) -> None:
    watchers = Watchers(base, paths, ramp)
    loop = asyncio.get_running_loop()
    while True:
        command, *params = await loop.run_in_executor(None, conn.recv)
        if command == "open":
            gc.disable()  # arrays of floats only: nothing to collect while watching
            reply: Any = await watchers.open()
        elif command == "reset":
            watchers.reset()
            reply = True
        elif command == "collect":
            reply = {
                "times": [t.tobytes() for t in watchers.times],
                "counts": [c.tobytes() for c in watchers.counts],
                "ended": watchers.ended,
            }
        elif command == "close":
            await watchers.close()
            gc.enable()
            gc.collect()
            reply = True
        elif command == "counts":
            reply = await watchers.counts_load(*params)
        else:
            await watchers.close()
            conn.send(True)
            return
        conn.send(reply)


def worker_main(conn: Connection, base: str, paths: list[str], ramp: int) -> None:
    raise_nofile()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent ends the run
    asyncio.run(worker_loop(conn, base, paths, ramp))


class Workers:
    """The watcher processes, driven from this one's event loop."""

    def __init__(self, base: str, watchers: int, workers: int, ramp: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.processes = []
        for w in range(workers):
            paths = [PATHS[i % len(PATHS)] for i in range(w, watchers, workers)]
            parent, child = context.Pipe()
            process = context.Process(
                target=worker_main, args=(child, base, paths, ramp), daemon=True
            )
            process.start()
            self.conns.append(parent)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    async def ask(self, command: str, *params: Any) -> list[Any]:
        for conn in self.conns:
            conn.send((command, *params))
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(None, c.recv) for c in self.conns)))

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError, OSError, EOFError):
            await asyncio.wait_for(self.ask("quit"), 30)
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()


# -- the bot and what it uses ----------------------------------------------------------------


def memory(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM (peak) of a process, in MB."""
    found = {"VmRSS": 0.0, "VmHWM": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in found:
                found[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return found["VmRSS"], found["VmHWM"]


def softirq_seconds() -> float:
    """CPU seconds the machine spent in soft interrupts (loopback TCP, mostly), counted in
    `others`: no process is charged for them."""
    try:
        ticks = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(ticks[7]) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class Cpu:
    """CPU used over a phase, in % of one core: this process, the workers, the bot, others."""

    def __init__(self, bot: int, workers: list[int]) -> None:
        self.bot, self.workers = bot, workers
        self.before = self._now()

    def _now(self) -> tuple[float, float, float, float, float, float]:
        return (
            time.monotonic(),
            time.process_time(),
            sum(cpu_seconds(p) for p in self.workers),
            cpu_seconds(self.bot),
            machine_busy_seconds(),
            softirq_seconds(),
        )

    def done(self) -> dict[str, float]:
        after = self._now()
        wall, bench, workers, bot, machine, softirq = (
            a - b for a, b in zip(after, self.before, strict=True)
        )
        return {
            "bench": 100 * bench / wall,
            "workers": 100 * workers / wall,
            "bot": 100 * bot / wall,
            "others": max(0.0, 100 * (machine - bench - workers - bot) / wall),
            "softirq": 100 * softirq / wall,
        }


def format_cpu(cpu: dict[str, float]) -> str:
    return (
        "cpu bench/watchers/bot/others {bench:.0f}/{workers:.0f}/{bot:.0f}/{others:.0f} % "
        "(softirq {softirq:.0f} %)"
    ).format(**cpu)


# -- the phases ------------------------------------------------------------------------------


@dataclass
class Run:
    """One run's figures (seconds, MB, requests/s)."""

    idle: Step | None = None
    watching: Step | None = None
    connect_seconds: float = 0.0
    connected: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    pledge_to_watcher: list[float] = field(default_factory=list)  # sorted
    pledge_to_publish: list[float] = field(default_factory=list)  # sorted, one per sample
    publish_to_watcher: list[float] = field(default_factory=list)  # sorted
    missed: int = 0  # (watcher, sample) pairs never shown
    publishes: int = 0
    publish_gap: float = 0.0  # shortest gap between two publishes (first receipts)
    publish_mean_gap: float = 0.0  # (last - first publish) / (publishes - 1)
    fanout: list[float] = field(default_factory=list)  # per snapshot: last - first receipt
    events_max: int = 0  # the most events one watcher received in the step
    event_gap: float = 0.0  # shortest gap between two events at one watcher
    events_in_1s: int = 0  # the most events one watcher received within WINDOW
    ended: int = 0  # streams the bot closed during the step
    rss: dict[str, float] = field(default_factory=dict)
    fds: int = 0
    counts: dict[str, dict[str, float]] = field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)


def ack_step(server: FakeTelegram, created: dict[str, float], last: float, rate: int) -> Step:
    """A pledge step's figures, as bench/telegram_burst.py judges them."""
    return Step(rate=rate, **ack_figures(server, created, last), board_exact=None, rejected_429=0)


def format_ack(step: Step) -> str:
    return (
        f"{step.rate}/s x {step.presses} presses  unanswered {step.unanswered}  "
        f"ack p50 {step.p50 * 1000:.1f} ms  p99 {step.p99 * 1000:.1f} ms  "
        f"p50 first/last 5 s {step.first_p50 * 1000:.0f}/{step.last_p50 * 1000:.0f} ms  "
        f"{'sustained' if step.sustained else 'NOT sustained'}"
    )


async def api_counts(http: aiohttp.ClientSession, base: str) -> tuple[int, str]:
    async with http.get(base + "api/counts") as response:
        body = await response.json()
        return int(body["pledged"]), response.headers["ETag"]


async def counts_phase(
    workers: Workers, http: aiohttp.ClientSession, base: str, conns: int, seconds: float
) -> dict[str, dict[str, float]]:
    """`/api/counts`, plain then with If-None-Match, the connections spread over the workers."""
    _pledged, etag = await api_counts(http, base)
    found = {}
    count = len(workers.conns)
    per = [conns // count + (i < conns % count) for i in range(count)]
    for name, tag in (("plain", None), ("304", etag)):
        replies = []
        for i, conn in enumerate(workers.conns):
            conn.send(("counts", per[i], seconds, tag))
        loop = asyncio.get_running_loop()
        replies = await asyncio.gather(*(loop.run_in_executor(None, c.recv) for c in workers.conns))
        latencies = sorted(x for r in replies for x in array("d", r["latencies"]))
        status: Counter[int] = sum((r["status"] for r in replies), Counter())
        wall = max(r["wall"] for r in replies)
        found[name] = {
            "rps": len(latencies) / wall,
            "p50": statistics.median(latencies) if latencies else float("inf"),
            "p99": pct(latencies, 0.99),
            "ok": status[200 if tag is None else 304] / max(1, sum(status.values())),
        }
    return found


def format_counts(found: dict[str, dict[str, float]]) -> str:
    return "  ".join(
        f"{name} {c['rps']:,.0f} req/s p50 {c['p50'] * 1000:.1f} ms p99 {c['p99'] * 1000:.1f} ms"
        + ("" if c["ok"] == 1 else f" ({c['ok']:.1%} as expected)")
        for name, c in found.items()
    )


async def pledges(
    server: FakeTelegram,
    board: int,
    rate: int,
    seconds: float,
    first_user: int,
    http: aiohttp.ClientSession,
    base: str,
    expected: int,
) -> tuple[dict[str, float], float]:
    """Presses at `rate` for `seconds`; wait until each is answered and the site shows them."""
    created: dict[str, float] = {}
    gc.collect()
    gc.disable()  # the fake keeps every press: its collections would pause the instrument
    try:
        last = await press_at(server, board, rate, seconds, first_user, created)
        deadline = time.monotonic() + seconds + 30
        while time.monotonic() < deadline:
            if all(q in server.callback_answered_at for q in created):
                pledged, _etag = await api_counts(http, base)
                if pledged >= expected:
                    break
            await asyncio.sleep(0.1)
    finally:
        gc.enable()
    return created, last


async def sample_rss(pid: int, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak.append(memory(pid)[0])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


def deliveries(
    run: Run, replies: list[dict[str, Any]], created: dict[str, float], base: int, sample: float
) -> None:
    """Delays of the events the watchers received during the pledges."""
    intended = list(created.values())  # in the order of the presses: pledge i shows base+i+1
    samples: list[tuple[int, float]] = []
    next_at = intended[0]
    for i, at in enumerate(intended):
        if at >= next_at or i == len(intended) - 1:
            samples.append((base + i + 1, at))
            next_at = at + sample
    watchers: list[tuple[array[float], array[int]]] = []
    for reply in replies:
        for t, c in zip(reply["times"], reply["counts"], strict=True):
            times, counts = array("d"), array("q")
            times.frombytes(t)
            counts.frombytes(c)
            watchers.append((times, counts))
        run.ended += reply["ended"]
    published: dict[int, float] = {}
    for times, counts in watchers:
        for at, count in zip(times, counts, strict=True):
            if at < published.get(count, float("inf")):
                published[count] = at
    shown = sorted(published)
    first_times = [published[c] for c in shown]
    run.publishes = len(shown)
    gaps = [b - a for a, b in itertools.pairwise(first_times)]
    run.publish_gap = min(gaps, default=float("inf"))
    run.publish_mean_gap = statistics.mean(gaps) if gaps else float("inf")
    last_seen: dict[int, float] = {}
    for times, counts in watchers:
        for at, count in zip(times, counts, strict=True):
            if at > last_seen.get(count, 0.0):
                last_seen[count] = at
    run.fanout = sorted(last_seen[c] - published[c] for c in shown)
    run.pledge_to_publish = sorted(
        first_times[j] - at if (j := bisect_left(shown, count)) < len(shown) else float("inf")
        for count, at in samples
    )
    to_watcher: list[float] = []
    from_publish: list[float] = []
    missed = 0
    for times, counts in watchers:
        run.events_max = max(run.events_max, len(times))
        for k in range(1, len(times)):
            gap = times[k] - times[k - 1]
            run.event_gap = min(run.event_gap or gap, gap)
        within = 0
        for k in range(len(times)):
            while times[k] - times[within] >= WINDOW:
                within += 1
            run.events_in_1s = max(run.events_in_1s, k - within + 1)
        for at, count in zip(times, counts, strict=True):
            from_publish.append(at - published[count])
        for count, at in samples:
            j = bisect_left(counts, count)
            if j < len(counts):
                to_watcher.append(times[j] - at)
            else:
                missed += 1
    to_watcher.sort()
    from_publish.sort()
    run.pledge_to_watcher = to_watcher
    run.publish_to_watcher = from_publish
    run.missed = missed


def spread(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values) * 1000:.0f} ms  p99 {pct(values, 0.99) * 1000:.0f} ms  "
        f"max {values[-1] * 1000:.0f} ms"
        if values
        else "none"
    )


async def one_run(args: argparse.Namespace, number: int) -> Run:
    run = Run()
    async with FakeTelegram(TOKEN, limits=Limits(enabled=True)) as server:
        server.add_user(ORGANIZER, "Org", "en", started=True)
        server.add_group(GROUP, "Coalition", creator=ORGANIZER)
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp)
            # The one setting of this benchmark: every watcher comes from 127.0.0.1.
            (data / ".env").write_text(
                f"COALITION_WEB_STREAMS_PER_ADDRESS={max(1, args.watchers)}\n"
            )
            process = start_bot("coalition", server, data)
            workers: Workers | None = None
            try:
                board = await post_board("coalition", server)
                port = urlsplit(server.webhook_info()["url"]).port
                base = f"http://127.0.0.1:{port}/"
                async with aiohttp.ClientSession() as http:
                    for _ in range(300):
                        try:
                            async with http.get(base + "healthz") as response:
                                if response.status == 200:
                                    break
                        except aiohttp.ClientError:
                            pass
                        await asyncio.sleep(0.1)
                    workers = Workers(base, args.watchers, args.workers, args.ramp)
                    pid = process.pid
                    await asyncio.sleep(2.0)  # let the workers start
                    run.rss["idle"] = memory(pid)[0]
                    print(
                        f"run {number}: bot pid {pid} on port {port}, RSS idle "
                        f"{run.rss['idle']:.1f} MB, open files {open_files(pid)}; {load()}",
                        flush=True,
                    )

                    cpu = Cpu(pid, workers.pids)
                    run.counts["idle"] = await counts_phase(
                        workers, http, base, args.counts_conns, args.counts_seconds
                    )
                    run.cpu["counts idle"] = cpu.done()
                    print(
                        f"  /api/counts, idle, {args.counts_conns} connections: "
                        f"{format_counts(run.counts['idle'])}  "
                        f"{format_cpu(run.cpu['counts idle'])}",
                        flush=True,
                    )

                    user = 1_000_000
                    before, _etag = await api_counts(http, base)
                    expected = before + int(args.rate * args.seconds)
                    cpu = Cpu(pid, workers.pids)
                    created, last = await pledges(
                        server, board, args.rate, args.seconds, user, http, base, expected
                    )
                    run.cpu["pledges idle"] = cpu.done()
                    user += len(created)
                    run.idle = ack_step(server, created, last, args.rate)
                    run.rss["after idle pledges"] = memory(pid)[0]
                    print(
                        f"  pledges, no watcher:  {format_ack(run.idle)}  "
                        f"{format_cpu(run.cpu['pledges idle'])}  RSS "
                        f"{run.rss['after idle pledges']:.1f} MB",
                        flush=True,
                    )

                    cpu = Cpu(pid, workers.pids)
                    opened = await workers.ask("open")
                    run.cpu["connect"] = cpu.done()
                    run.connect_seconds = max(o["seconds"] for o in opened)
                    status: Counter[str] = sum((Counter(o["status"]) for o in opened), Counter())
                    run.connected = status.pop("200", 0)
                    run.refused = dict(status)
                    with_event = sum(o["with_event"] for o in opened)
                    await asyncio.sleep(3.0)
                    run.rss["watchers connected"] = memory(pid)[0]
                    run.fds = open_files(pid)
                    print(
                        f"  {run.connected:,} watchers connected in {run.connect_seconds:.1f} s "
                        f"({with_event:,} had their first event; others: {run.refused or 'none'})"
                        f"  RSS {run.rss['watchers connected']:.1f} MB  open files {run.fds}  "
                        f"{format_cpu(run.cpu['connect'])}",
                        flush=True,
                    )

                    before, _etag = await api_counts(http, base)
                    expected = before + int(args.rate * args.seconds)
                    await workers.ask("reset")
                    peak: list[float] = []
                    stop = asyncio.Event()
                    sampler = asyncio.create_task(sample_rss(pid, peak, stop))
                    cpu = Cpu(pid, workers.pids)
                    created, last = await pledges(
                        server, board, args.rate, args.seconds, user, http, base, expected
                    )
                    run.cpu["pledges watched"] = cpu.done()
                    await asyncio.sleep(3.0)  # the last snapshot reaches every watcher
                    stop.set()
                    await sampler
                    user += len(created)
                    run.watching = ack_step(server, created, last, args.rate)
                    replies = await workers.ask("collect")
                    deliveries(run, replies, created, before, args.sample)
                    run.rss["peak while watching (sampled)"] = max(peak, default=0.0)
                    print(
                        f"  pledges, watched:     {format_ack(run.watching)}  "
                        f"{format_cpu(run.cpu['pledges watched'])}  RSS max "
                        f"{run.rss['peak while watching (sampled)']:.1f} MB",
                        flush=True,
                    )
                    print(
                        f"    pledge -> every watcher:  {spread(run.pledge_to_watcher)}  "
                        f"(never shown: {run.missed})\n"
                        f"    pledge -> published:      {spread(run.pledge_to_publish)}\n"
                        f"    published -> watcher:     {spread(run.publish_to_watcher)}\n"
                        f"    {run.publishes} snapshots published, shortest gap "
                        f"{run.publish_gap:.3f} s, mean {run.publish_mean_gap:.3f} s; "
                        f"each reached every watcher within p50 "
                        f"{statistics.median(run.fanout or [0.0]) * 1000:.0f} ms, max "
                        f"{max(run.fanout, default=0.0) * 1000:.0f} ms; "
                        f"per watcher at most {run.events_max} events, "
                        f"{run.events_in_1s} within {WINDOW} s, "
                        f"shortest gap {run.event_gap:.3f} s; "
                        f"streams ended by the bot {run.ended}",
                        flush=True,
                    )
                    del replies

                    cpu = Cpu(pid, workers.pids)
                    run.counts["watched"] = await counts_phase(
                        workers, http, base, args.counts_conns, args.counts_seconds
                    )
                    run.cpu["counts watched"] = cpu.done()
                    print(
                        f"  /api/counts, {run.connected:,} watchers connected: "
                        f"{format_counts(run.counts['watched'])}  "
                        f"{format_cpu(run.cpu['counts watched'])}",
                        flush=True,
                    )
                    run.rss["peak (VmHWM)"] = memory(pid)[1]
                    await workers.ask("close")
                    await asyncio.sleep(3.0)
                    run.rss["after they left"] = memory(pid)[0]
                    print(
                        "  RSS "
                        + ", ".join(f"{k} {v:.1f} MB" for k, v in run.rss.items())
                        + f"; {load()}",
                        flush=True,
                    )
            finally:
                if workers is not None:
                    await workers.stop()
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                if process.returncode not in (0, None, -signal.SIGTERM):
                    log = (data / "bot.log").read_text(errors="replace")
                    print(f"  bot exited {process.returncode}:\n{log[-3000:]}", flush=True)
    return run


def summary(runs: list[Run], args: argparse.Namespace) -> None:
    def mm(values: list[float], scale: float = 1.0, fmt: str = "{:.0f}") -> str:
        values = sorted(v * scale for v in values)
        return f"{fmt.format(values[0])} / {fmt.format(statistics.median(values))}"

    def mx(values: list[float], scale: float = 1.0, fmt: str = "{:.0f}") -> str:
        values = sorted(v * scale for v in values)
        return f"{fmt.format(statistics.median(values))} / {fmt.format(values[-1])}"

    n = len(runs)
    idle = [r.idle for r in runs if r.idle]
    watched = [r.watching for r in runs if r.watching]
    print(f"summary of {n} runs ({load()}); min / median, or median / max for delays and RSS:")
    print(
        f"  pledges at {args.rate}/s, no watcher: ack p99 {mx([s.p99 for s in idle], 1000)} ms; "
        f"sustained {sum(s.sustained for s in idle)} of {n}"
    )
    print(
        f"  pledges at {args.rate}/s, watched: ack p99 {mx([s.p99 for s in watched], 1000)} ms; "
        f"sustained {sum(s.sustained for s in watched)} of {n}"
    )
    print(f"  watchers connected: {mm([r.connected for r in runs])} of {args.watchers}")
    for name, attr in (
        ("pledge -> every watcher", "pledge_to_watcher"),
        ("pledge -> published", "pledge_to_publish"),
        ("published -> watcher", "publish_to_watcher"),
    ):
        p99 = [pct(getattr(r, attr), 0.99) for r in runs]
        p50 = [statistics.median(getattr(r, attr) or [float("inf")]) for r in runs]
        print(f"  {name}: p50 {mx(p50, 1000)} ms, p99 {mx(p99, 1000)} ms")
    gap = mm([r.publish_gap for r in runs], 1, "{:.3f}")
    mean_gap = mm([r.publish_mean_gap for r in runs], 1, "{:.3f}")
    fanout = mx([statistics.median(r.fanout or [0.0]) for r in runs], 1000)
    fanout_max = mx([max(r.fanout, default=0.0) for r in runs], 1000)
    print(
        f"  coalescing: gap between publishes (first receipts) shortest {gap} s, mean "
        f"{mean_gap} s; one snapshot's writes to every watcher took p50 {fanout} ms, max "
        f"{fanout_max} ms; most events one watcher got in the step: "
        f"{max(r.events_max for r in runs)}, of {max(r.publishes for r in runs)} snapshots"
    )
    print(f"  most events one watcher got within {WINDOW} s: {max(r.events_in_1s for r in runs)}")
    for key in runs[0].rss:
        print(f"  RSS {key}: {mx([r.rss.get(key, 0.0) for r in runs], 1, '{:.1f}')} MB")
    for where in ("idle", "watched"):
        for kind in ("plain", "304"):
            rps = [r.counts[where][kind]["rps"] for r in runs]
            p99 = [r.counts[where][kind]["p99"] for r in runs]
            print(
                f"  /api/counts {where} {kind}: {mm(rps, 1, '{:,.0f}')} req/s, "
                f"p99 {mx(p99, 1000, '{:.1f}')} ms"
            )
    print("targets (issue 14):")
    p99s = [pct(r.pledge_to_watcher, 0.99) for r in runs]
    print(
        f"  a count change reaches all watchers, p99 <= 1 s: "
        f"{'met' if max(p99s) <= 1.0 else 'NOT met'} in {sum(p <= 1.0 for p in p99s)} of {n}"
    )
    peaks = [r.rss.get("peak (VmHWM)", 0.0) for r in runs]
    print(
        f"  RSS <= 300 MB: {'met' if max(peaks) <= 300 else 'NOT met'} (peak {max(peaks):.1f} MB)"
    )
    print(
        f"  pledges keep their rate while watched: "
        f"{sum(s.sustained for s in watched)} of {n} sustained at {args.rate}/s"
    )
    coalesced = all(r.publish_mean_gap >= 0.99 and r.events_max <= r.publishes for r in runs)
    print(
        f"  at most one update a second per page: {'met' if coalesced else 'NOT met'} on "
        "average (mean gap between snapshots >= 1 s, no snapshot twice); most events within "
        f"{WINDOW} s at one watcher: {max(r.events_in_1s for r in runs)} (delivery jitter)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=300, help="pledges per second, open loop")
    parser.add_argument("--seconds", type=float, default=30.0, help="of pledges, per step")
    parser.add_argument("--workers", type=int, default=2, help="watcher processes")
    parser.add_argument("--counts-conns", type=int, default=50)
    parser.add_argument("--counts-seconds", type=float, default=15.0)
    parser.add_argument("--ramp", type=int, default=100, help="connecting at once per worker")
    parser.add_argument("--sample", type=float, default=0.1, help="seconds between samples")
    args = parser.parse_args()
    files = raise_nofile()
    print(
        f"python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, {os.cpu_count()} "
        f"cores; {args.watchers:,} watchers over {args.workers} processes, pledges at "
        f"{args.rate}/s for {args.seconds:.0f} s, /api/counts {args.counts_conns} connections "
        f"{args.counts_seconds:.0f} s; open files limit {files}; {load()}",
        flush=True,
    )
    runs = [await one_run(args, number) for number in range(1, args.runs + 1)]
    summary(runs, args)


if __name__ == "__main__":
    asyncio.run(main())
