"""The bot with its campaign page, booted through its own composition root the way
`coalition-bot console` boots it (bootstrap, the console front-end, the web server and the
campaign site), on 127.0.0.1 and a port the system picks. Shared by tests/test_web_*.py."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
from multidict import CIMultiDict

from bot.app.bootstrap import bootstrap
from bot.core.settings import Settings
from bot.frontends.console import Console
from bot.services.container import Services
from bot.services.dispatch import Dispatcher
from bot.web.metrics import Metrics
from bot.web.server import WebServer
from bot.web.site import CampaignSite
from tests.conftest import NOW

ROOT = Path(__file__).resolve().parent.parent


def artifacts() -> Path:
    """Where tests leave screenshots to look at (COALITION_TEST_ARTIFACTS, else
    tests/artifacts/, which git ignores)."""
    folder = Path(os.environ.get("COALITION_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Served:
    """A running bot: its services, its console and the address of its web server."""

    services: Services
    dispatcher: Dispatcher
    console: Console
    out: io.StringIO
    site: CampaignSite
    web: WebServer
    metrics: Metrics
    # /metrics on a bind of its own (COALITION_METRICS_HOST / _PORT), else None.
    scraped: WebServer | None = None

    @property
    def url(self) -> str:
        """The server's root address, ending with a slash."""
        return self.web.url

    async def pledge(self, *names: str, hint: str | None = None) -> None:
        """Each named volunteer pledges in the console, as a person would type it."""
        for name in names:
            await self.console.feed(f":as {name}")
            await self.console.feed(f":hint {hint or 'none'}")
            await self.console.feed("/pledge")

    async def seed_pledges(self, count: int) -> None:
        """`count` pledges written straight to the storage (a crowd no test would type), then
        the news of them, as a front-end gives it after a pledge."""
        storage = self.services.storage
        campaign = self.services.campaign.id
        await asyncio.gather(
            *(
                storage.pledge(campaign, n.to_bytes(32, "big"), "console", None, "both")
                for n in range(10_000, 10_000 + count)
            )
        )
        self.services.counts_changed()
        await self.site.hub.flush()


@asynccontextmanager
async def serve(
    settings: Settings, clock: Callable[[], datetime] = lambda: NOW
) -> AsyncIterator[Served]:
    """Boot the bot and its campaign page (and /metrics, as configured); stop them on exit."""
    metrics = Metrics()
    scraped = metrics.own_server(settings)
    async with bootstrap(settings, clock=clock, telemetry=metrics) as (services, dispatcher):
        out = io.StringIO()
        console = Console(dispatcher, out=out)
        web = WebServer("127.0.0.1", 0)
        site = CampaignSite(services, web, metrics)
        await site.start()
        await web.start()
        services.web_address = web.url  # as the console does: community pages live here
        if scraped is not None:
            await scraped.start()
        try:
            yield Served(services, dispatcher, console, out, site, web, metrics, scraped)
        finally:
            await site.close()
            await web.stop()
            if scraped is not None:
                await scraped.stop()


async def get(
    http: aiohttp.ClientSession, url: str, **headers: str
) -> tuple[int, CIMultiDict[str], str]:
    """GET url (redirects not followed): the status, the headers and the body."""
    async with http.get(url, headers=headers, allow_redirects=False) as response:
        return response.status, response.headers.copy(), await response.text()


def console_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a `python -m bot console` in tmp_path: none of the caller's
    COALITION_ settings, the checkout importable, `extra` on top."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_")}
    return {
        **clean,
        "PYTHONPATH": str(ROOT),
        "COALITION_DATA_DIR": str(tmp_path / "state"),
        **extra,
    }


async def console_refusal(tmp_path: Path, **extra: str) -> list[str]:
    """Start `python -m bot console` with `extra` settings, expect it to stop with exit code
    2, and return what it wrote to stderr, line by line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        env=console_environment(tmp_path, **extra),
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    return err.decode().strip().splitlines()
