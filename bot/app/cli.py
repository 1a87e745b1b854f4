"""The command line: `coalition-bot run` and `coalition-bot console`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sqlite3
import sys
from pathlib import Path
from urllib.parse import urlsplit

import discord
from telegram.error import TelegramError

from bot.app.bootstrap import bootstrap
from bot.app.logs import setup_logging
from bot.app.relay import Relay
from bot.app.roles import lead_when_possible
from bot.core.settings import ConfigError, Settings, load_settings
from bot.delivery.outbox import Outbox
from bot.frontends.console import Console
from bot.frontends.discord import REQUESTS_PER_DM, DiscordFrontend
from bot.frontends.telegram import TelegramFrontend
from bot.schedule.scheduler import ReminderScheduler
from bot.web.metrics import Metrics
from bot.web.server import WebServer
from bot.web.site import CampaignSite

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coalition-bot",
        description="Chat bot for the volunteers of a coalition campaign.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=("run", "console"),
        help="run: every front-end with a token, or the console when none is set (default); "
        "console: the console front-end only",
    )
    parser.add_argument("--data-dir", type=Path, help="overrides COALITION_DATA_DIR")
    return parser


def _secrets(settings: Settings) -> list[str]:
    values = [
        settings.telegram_token,
        settings.discord_token,
        settings.pepper,
        settings.telegram_webhook_secret,
        settings.database_url,
        settings.metrics_token,
    ]
    found = [v.get_secret_value() for v in values if v is not None]
    if settings.database_url is not None:  # its password alone, wherever a driver quotes it
        password = urlsplit(settings.database_url.get_secret_value()).password
        if password:
            found.append(password)
    return found


async def _until_stopped() -> None:
    """Wait for SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def _run(settings: Settings, command: str) -> int:
    metrics = Metrics()  # this process's counts, for /metrics (served only when configured)
    scraped = metrics.own_server(settings)
    async with bootstrap(settings, telemetry=metrics) as (services, dispatcher):
        if command == "console" or (settings.telegram_token is None and not settings.discord_token):
            console = Console(dispatcher)
            outbox = Outbox(services)
            outbox.register(console)
            await outbox.recover()
            await console.start()
            # The campaign page, on this machine only: watch it move as you pledge.
            page = WebServer("127.0.0.1", settings.web_port)
            site = CampaignSite(services, page, metrics)
            await site.start()
            await page.start(any_port_if_taken=True)
            services.web_address = page.url  # community pages (/webpage), on this machine
            print(f"The campaign page, live: {page.url}", flush=True)
            if scraped is not None:
                await scraped.start()
                log.info("metrics at %smetrics", scraped.url)
            scheduler = ReminderScheduler(services, outbox.wake)
            await scheduler.start()
            outbox.start()
            try:
                await console.run(sys.stdin)
                # A script ended: deliver what it queued and show the reports it started.
                await outbox.drain()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10.0):
                        await console.progress.settle()
            finally:
                await scheduler.stop()
                await outbox.stop()
                await console.close()
                await site.close()
                await page.stop()
                if scraped is not None:
                    await scraped.stop()
            return 0
        web = WebServer(settings.web_host, settings.web_port)
        site = CampaignSite(services, web, metrics)
        services.web_address = settings.web_public_url  # where /webpage's pages are read
        frontends: list[TelegramFrontend | DiscordFrontend] = []
        if settings.telegram_token is not None:
            frontends.append(TelegramFrontend(services, dispatcher, web))
        if settings.discord_token is not None:
            frontends.append(DiscordFrontend(services, dispatcher))
        outbox = Outbox(services)
        telegram_rate = (
            1000.0 if settings.telegram_paid_broadcast else settings.telegram_rate_overall
        )
        rates = {
            "telegram": telegram_rate,
            "discord": settings.discord_rate_overall / REQUESTS_PER_DM,
        }
        scheduler = ReminderScheduler(services, outbox.wake, rates=rates)
        relay = Relay(services)
        stopping = asyncio.Event()
        leading: asyncio.Task[None] | None = None
        try:
            await relay.start()
            for frontend in frontends:
                await frontend.start()
                outbox.register(frontend)
                relay.board_listeners.append(frontend.follow_boards)
                relay.progress_listeners.append(frontend.resume_progress)
                if isinstance(frontend, TelegramFrontend) and not site.telegram_username:
                    site.telegram_username = frontend.username  # the page's pledge link
            await site.start()
            await web.start()
            log.info("campaign page at %s", web.url)
            if scraped is not None:
                await scraped.start()
                log.info("metrics at %smetrics", scraped.url)
            # What start-up built lives as long as the process: out of the collector's way,
            # so that a full collection (every few seconds with 10,000 open pages) walks
            # only what came after.
            gc.freeze()
            leading = asyncio.create_task(
                lead_when_possible(services, outbox, scheduler, frontends, stopping)
            )
            await _until_stopped()
        finally:
            stopping.set()
            if leading is not None:
                await asyncio.gather(leading, return_exceptions=True)
            await scheduler.stop()
            await outbox.stop()
            await relay.close()
            await site.close()
            await web.stop()
            if scraped is not None:
                await scraped.stop()
            for frontend in reversed(frontends):
                await frontend.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `coalition-bot` script and of `python -m bot`."""
    args = _parser().parse_args(argv)
    # python-telegram-bot 22: RetryAfter.retry_after as a timedelta (the coming default).
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    try:
        settings = load_settings(**overrides)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, _secrets(settings))
    try:
        return asyncio.run(_run(settings, args.command))
    except KeyboardInterrupt:
        return 130
    except (TelegramError, discord.DiscordException) as error:
        log.debug("start-up failed", exc_info=True)
        message = str(error)
        for secret in _secrets(settings):
            message = message.replace(secret, "***")
        platform = "Telegram" if isinstance(error, TelegramError) else "Discord"
        print(f"start-up failed: {platform}: {message}", file=sys.stderr)
        return 2
    except (OSError, ValueError, sqlite3.Error) as error:
        # e.g. an unwritable data directory or a damaged pepper file: one line, no traceback.
        log.debug("start-up failed", exc_info=True)
        print(f"start-up failed: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
