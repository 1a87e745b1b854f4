from __future__ import annotations

import asyncio
import inspect
import io
import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.app.bootstrap import bootstrap
from bot.core.settings import Settings
from bot.frontends.console import Console
from bot.services.container import Services
from bot.services.dispatch import Dispatcher
from tests.postgres_server import ThrowawayPostgres

# python-telegram-bot 22: opt in to timedelta retry_after, as the production entry point does.
os.environ.setdefault("PTB_TIMEDELTA", "1")

PEPPER = "test-pepper-" + "x" * 40
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# Seconds a test waits for something the bot does in its own time (after its pacing, in a
# background task, a board edit, a database write after a message): generous, because CI
# machines are shared and noisy. Nothing waits this long when all is well.
WAIT = 10.0


async def eventually(
    check: Callable[[], object | Awaitable[object]],
    timeout: float = WAIT,  # noqa: ASYNC109
    what: str = "",
    interval: float = 0.01,
) -> object:
    """Wait until `check()` (sync or async) is true; its value. AssertionError naming what
    never became true (`what`, else the check's source) if it is still false at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            if not what:
                try:
                    what = inspect.getsource(check).strip()  # type: ignore[arg-type]
                except (OSError, TypeError):
                    what = repr(check)
            raise AssertionError(f"never true within {timeout} s: {what}")
        await asyncio.sleep(interval)


_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayPostgres]:
    """One throwaway PostgreSQL server for the whole session (fails if it cannot start:
    PostgreSQL tests never skip; `pytest -m 'not postgres'` leaves them out)."""
    with ThrowawayPostgres() as server:
        yield server


@pytest.fixture
async def postgres_url(postgres_server: ThrowawayPostgres) -> AsyncIterator[str]:
    """A new empty database on the session's server, dropped after the test."""
    import asyncpg

    name = f"test_{os.getpid()}_{next(_databases)}"
    admin = await asyncpg.connect(postgres_server.url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield postgres_server.url.rsplit("/", 1)[0] + "/" + name
    admin = await asyncpg.connect(postgres_server.url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "pepper": PEPPER,
        "campaign_timezone": "Europe/Paris",
        "campaign_start": "2026-12-16T09:00",
        "campaign_end": "2026-12-17T09:00",
        "campaign_goal": 1000,
        "rate_limit_commands": 1000,
        "rate_limit_seconds": 1,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@dataclass
class App:
    services: Services
    dispatcher: Dispatcher
    out: io.StringIO
    console: Console

    async def run(self, script: str) -> str:
        """Feed a console script; return only what it printed."""
        start = self.out.tell()
        for line in script.strip().splitlines():
            await self.console.feed(line)
        return self.out.getvalue()[start:]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    async with bootstrap(settings, clock=lambda: NOW) as (services, dispatcher):
        out = io.StringIO()
        yield App(services, dispatcher, out, Console(dispatcher, out=out))


async def subscribers(app: App) -> None:
    """A French community and three volunteers who opted in, each in their language:
    amina (ar), karim (fr) and lea (en)."""
    await app.run(":admin on\n/language fr group\n:admin off")
    await app.run(":as amina\n:private\n/language ar\n/reminders on")
    await app.run(":as karim\n:private\n/language fr\n/reminders on")
    await app.run(":as lea\n:private\n:hint en\n/reminders on")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for requests to the bot's web server (tests/web_harness.py `get`)."""
    async with aiohttp.ClientSession() as session:
        yield session
