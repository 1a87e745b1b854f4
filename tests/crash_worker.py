"""The process tests/test_crash.py kills: the real bot's sending path, on its own.

One run: bootstrap the bot on a data directory, seed the recipients (volunteers who opted
in to reminders, subscribed communities; once: later runs find them), build the real
Telegram front-end (python-telegram-bot, pointed at the fake Bot API server) and the real
Discord front-end (discord.py's own HTTP client, logged in over REST to the fake Discord
server), register both with an Outbox, settle what a previous run left in flight
(`recover`), create the broadcast under the same key every time (a second creation does
nothing), then drain until nothing of it waits, and exit 0. The test SIGKILLs it at random
points and starts it again.

    python -m tests.crash_worker --data DIR --telegram URL --telegram-files URL --discord URL

Not a test module: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path

import discord.http

from bot.app.bootstrap import bootstrap
from bot.app.logs import setup_logging
from bot.core.settings import Settings
from bot.delivery.outbox import Outbox
from bot.frontends.discord import DiscordFrontend
from bot.frontends.telegram import TelegramFrontend
from bot.services.container import Services

TELEGRAM_TOKEN = "123456:CRASH" + "abcdefghijklmnopqrstuvwxyzABCDEF"
DISCORD_TOKEN = "M" + "a" * 23 + "." + "b" * 6 + "." + "c" * 27
PEPPER = "crash-pepper-" + "k" * 40
# 2,000 recipients. Telegram: volunteers (user id = private chat id) and groups. Discord:
# volunteers (by private message) and communities (a guild, posted to in its board channel).
# Discord has the fewer: a private message there costs two requests (open the DM, post) of
# the 50 per second Discord allows a bot.
TELEGRAM_VOLUNTEERS = range(7_000_000, 7_001_450)
TELEGRAM_GROUPS = range(-1_002_000_000_050, -1_002_000_000_000)
DISCORD_VOLUNTEERS = range(900_000_000_000_000_000, 900_000_000_000_000_450)
DISCORD_GUILDS = range(800_000_000_000_000_000, 800_000_000_000_000_050)
BOARD_CHANNEL = 1_000_000  # a guild's board channel id is the guild id plus this
RECIPIENTS = {
    "telegram": len(TELEGRAM_VOLUNTEERS) + len(TELEGRAM_GROUPS),
    "discord": len(DISCORD_VOLUNTEERS) + len(DISCORD_GUILDS),
}
BROADCAST_KEY = "crash-test:reminder:start"
RUNG = "start"
# Discord as fast as the settings allow (50 requests/s at most); Telegram well above its
# real 30/s, but low enough that its in-flight window stays a fraction of its recipients.
TELEGRAM_RATE = 100.0
DISCORD_RATE = 50.0
WINDOWS_FILE = "windows.json"  # each run writes its transports' in-flight windows here


def board_channel(guild: int) -> int:
    """The channel where a Discord community's board (and the outbox's posts) live."""
    return guild + BOARD_CHANNEL


def settings_for(data: Path, telegram: str, telegram_files: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data,
        pepper=PEPPER,  # type: ignore[arg-type]
        campaign_timezone="Europe/Paris",
        campaign_start="2026-12-16T09:00",  # type: ignore[arg-type]
        campaign_end="2026-12-17T09:00",  # type: ignore[arg-type]
        telegram_token=TELEGRAM_TOKEN,  # type: ignore[arg-type]
        telegram_base_url=telegram,
        telegram_base_file_url=telegram_files,
        telegram_rate_overall=TELEGRAM_RATE,
        discord_token=DISCORD_TOKEN,  # type: ignore[arg-type]
        discord_sync="off",
        discord_rate_overall=DISCORD_RATE,
        log_level="WARNING",
    )


async def seed(services: Services) -> None:
    """The recipients, once: volunteers who opted in to reminders (with the address to write
    to), subscribed communities, and each Discord community's board channel."""
    storage = services.storage
    if await storage.recipient_counts() == RECIPIENTS:
        return
    work: list[Awaitable[None]] = [
        storage.set_reminders(
            services.identities.key(platform, str(user)), True, str(user), platform
        )
        for platform, users in (("telegram", TELEGRAM_VOLUNTEERS), ("discord", DISCORD_VOLUNTEERS))
        for user in users
    ]
    work += [storage.set_community_subscribed("telegram", str(g), True) for g in TELEGRAM_GROUPS]
    work += [storage.set_community_subscribed("discord", str(g), True) for g in DISCORD_GUILDS]
    work += [
        storage.set_board("discord", str(g), f"{board_channel(g)}:{g}") for g in DISCORD_GUILDS
    ]
    await asyncio.gather(*work)


async def run(data: Path, telegram: str, telegram_files: str, discord_base: str) -> None:
    settings = settings_for(data, telegram, telegram_files)
    setup_logging(settings.log_level, [TELEGRAM_TOKEN, DISCORD_TOKEN])
    # The platform, not the code under test: discord.py's REST calls go to the fake server.
    discord.http.Route.BASE = discord_base

    async with bootstrap(settings) as (services, dispatcher):
        await seed(services)
        telegram_frontend = TelegramFrontend(services, dispatcher)
        telegram_frontend.application = telegram_frontend.build()
        await telegram_frontend.application.initialize()
        discord_frontend = DiscordFrontend(services, dispatcher)
        await discord_frontend.client.login(DISCORD_TOKEN)  # REST only: no gateway needed
        try:
            outbox = Outbox(services)
            outbox.register(telegram_frontend)
            outbox.register(discord_frontend)
            windows = {
                name: getattr(transport, "window", None)
                for name, transport in outbox.transports.items()
            }
            scratch = data / (WINDOWS_FILE + ".tmp")
            scratch.write_text(json.dumps(windows))
            scratch.replace(data / WINDOWS_FILE)

            await outbox.recover()
            await services.storage.create_broadcast(
                services.campaign.id, BROADCAST_KEY, "reminder", RUNG, settings.default_language
            )
            while True:
                await outbox.drain()
                waiting = [
                    due
                    for platform in outbox.transports
                    if (due := await services.storage.next_due(platform)) is not None
                ]
                if not waiting:
                    break  # nothing pending: every row of the broadcast is settled
                seconds = (min(waiting) - datetime.now(UTC)).total_seconds()
                await asyncio.sleep(min(1.0, max(0.05, seconds)))
        finally:
            await discord_frontend.client.close()
            await telegram_frontend.application.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--telegram", required=True, help="the fake Bot API's base URL")
    parser.add_argument("--telegram-files", required=True, help="its base file URL")
    parser.add_argument("--discord", required=True, help="the fake Discord REST base URL")
    args = parser.parse_args()
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    asyncio.run(run(args.data, args.telegram, args.telegram_files, args.discord))


if __name__ == "__main__":
    main()
