"""One person, one pledge across platforms: /link on Telegram and Discord (and the console),
with both front-ends running on one bot, the real python-telegram-bot against the fake Bot
API and the real discord.py against simcord."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import simcord

from bot.app.bootstrap import bootstrap
from bot.frontends.console import Console
from bot.frontends.discord import DiscordFrontend
from bot.frontends.telegram import TelegramFrontend
from bot.services.container import Services
from bot.services.dispatch import Dispatcher
from tests.conftest import NOW, WAIT, make_settings
from tests.fakes.telegram_server import FakeTelegram
from tests.test_discord_e2e import HOME, SETTLE
from tests.test_discord_e2e import TOKEN as DISCORD_TOKEN
from tests.test_telegram_e2e import TOKEN as TELEGRAM_TOKEN

GROUP = -100_777
CODE = re.compile(r"/link (\d{6})")


class Clock:
    """The bot's clock, moved by the test (a code's 10 minutes pass in an instant)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Both:
    services: Services
    dispatcher: Dispatcher
    telegram: FakeTelegram
    env: simcord.Env
    guild: Any
    channel: Any
    clock: Clock

    async def on_telegram(self, user: int, text: str, chat: int | None = None) -> str:
        """A Telegram user sends text (privately unless `chat`); the bot's private answer."""
        before = len(self.telegram.messages(user))
        self.telegram.user_sends(user, user if chat is None else chat, text)
        await self.telegram.wait_for(lambda: len(self.telegram.messages(user)) > before, WAIT)
        return str(self.telegram.messages(user)[-1]["text"])

    async def on_discord(self, member: Any, command: str, **options: str) -> str:
        """A Discord member runs a slash command in the server; its ephemeral answer."""
        result = await member.slash(self.channel, command, **options)
        assert result.ephemeral
        return str(result.response.content)

    async def total(self) -> tuple[int, int | None, int | None]:
        """The coalition's total, the Telegram group's count and the Discord server's."""
        storage, campaign = self.services.storage, self.services.campaign.id
        telegram = await storage.tally(campaign, "telegram", str(GROUP))
        discord_here = await storage.tally(campaign, "discord", str(self.guild.id))
        return telegram.total, telegram.community, discord_here.community


@asynccontextmanager
async def both_platforms(tmp_path: Path) -> AsyncIterator[Both]:
    clock = Clock()
    async with FakeTelegram(TELEGRAM_TOKEN) as server:
        settings = make_settings(
            tmp_path,
            telegram_token=TELEGRAM_TOKEN,
            telegram_base_url=server.base_url,
            telegram_base_file_url=server.base_file_url,
            discord_token=DISCORD_TOKEN,
            discord_shard_count=1,
            discord_home_guild_id=HOME,
        )
        async with bootstrap(settings, clock=clock) as (services, dispatcher):
            telegram = TelegramFrontend(services, dispatcher)
            await telegram.start()
            await telegram.lead()
            discord_side = DiscordFrontend(services, dispatcher)
            env = simcord.Env(discord_side.client, shard_count=1, settle_timeout=SETTLE)
            guild = env.create_guild("Coalition", id=HOME)
            channel = guild.create_text_channel("general")
            await env.start()
            await discord_side.lead()
            try:
                yield Both(services, dispatcher, server, env, guild, channel, clock)
            finally:
                await env.shutdown()
                await discord_side.boards.close()
                await telegram.stop()
                env.raise_errors()


@pytest.fixture
async def both(tmp_path: Path) -> AsyncIterator[Both]:
    async with both_platforms(tmp_path) as world:
        world.telegram.add_group(GROUP, "Volunteers")
        yield world


def member(both: Both, name: str) -> Any:
    return both.guild.add_member(both.env.create_user(name))


async def test_two_platforms_one_person_counts_once(both: Both) -> None:
    both.telegram.add_user(501, "Amal", "fr", started=True)
    amal = member(both, "amal")
    other = member(both, "other")
    await both.on_discord(other, "pledge")  # someone else first: number 1
    await both.on_telegram(501, "/pledge", chat=GROUP)  # Amal on Telegram: number 2
    answer = await both.on_discord(amal, "pledge", platform="instagram")  # and on Discord
    assert "volunteer number 3" in answer
    assert await both.total() == (3, 1, 2)

    made = await both.on_telegram(501, "/link")
    assert "Votre code de liaison" in made
    code = CODE.search(made)
    assert code is not None
    linked = await both.on_discord(amal, "link", code=code.group(1))
    assert "Discord and Telegram are linked. You count once." in linked
    assert "volunteer number 2" in linked  # the earlier pledge is kept
    # The tally moved once: one person less in all, each community still counts its own.
    assert await both.total() == (2, 1, 2)
    again = await both.on_discord(amal, "pledge")
    assert "volunteer number 2" in again and "already" in again
    tally = await both.on_telegram(501, "/tally")
    assert "2" in tally
    mydata = await both.on_discord(amal, "mydata")
    assert "Linked accounts: Discord and Telegram." in mydata
    assert str(amal.id) not in mydata and "501" not in mydata  # never a raw id

    # A reused code is refused, in the reader's language.
    both.telegram.add_user(502, "Sami", "ar", started=True)
    reused = await both.on_telegram(502, f"/link {code.group(1)}")
    assert "استُخدم هذا الرمز من قبل" in reused


async def test_forget_from_either_account_erases_both(both: Both) -> None:
    both.telegram.add_user(601, "Lina", "en", started=True)
    lina = member(both, "lina")
    await both.on_telegram(601, "/pledge", chat=GROUP)
    made = await both.on_discord(lina, "link")
    code = CODE.search(made)
    assert code is not None
    assert "linked" in await both.on_telegram(601, f"/link {code.group(1)}")
    assert (await both.total())[0] == 1

    await both.on_discord(lina, "forget", confirm="confirm")
    assert await both.total() == (0, 0, 0)
    for key in (
        both.services.identities.key("telegram", "601"),
        both.services.identities.key("discord", str(lina.id)),
    ):
        volunteer, _community = await both.services.storage.load_context(key, "telegram", None)
        assert volunteer is None
    nothing = await both.on_telegram(601, "/mydata")
    assert "Nothing is stored about you." in nothing


async def test_an_expired_code_and_a_guessing_account_are_refused(both: Both) -> None:
    both.telegram.add_user(701, "Omar", "en", started=True)
    omar = member(both, "omar")
    made = await both.on_telegram(701, "/link")
    code = CODE.search(made)
    assert code is not None
    both.clock.now = NOW + timedelta(minutes=10, seconds=1)
    expired = await both.on_discord(omar, "link", code=code.group(1))
    assert "That code has expired: a code works for 10 minutes." in expired

    guesser = member(both, "guesser")
    wrong = str((int(code.group(1)) + 1) % 1_000_000).zfill(6)
    answers = [await both.on_discord(guesser, "link", code=wrong) for _ in range(6)]
    assert all("That code is not right." in a for a in answers[:5])
    assert "Too many wrong codes. Try again in 10 minutes." in answers[5]
    assert "not a linking code" not in answers[5]
    malformed = await both.on_discord(omar, "link", code="12ab")
    assert "A linking code has 6 digits" in malformed


async def test_unlink_splits_the_accounts_again(both: Both) -> None:
    both.telegram.add_user(801, "Yara", "en", started=True)
    yara = member(both, "yara")
    await both.on_discord(yara, "pledge")
    made = await both.on_discord(yara, "link")
    code = CODE.search(made)
    assert code is not None
    await both.on_telegram(801, f"/link {code.group(1)}")
    split = await both.on_telegram(801, "/unlink")
    assert "Your pledge and settings stay with your account on Discord" in split
    assert "You have not pledged" in await both.on_telegram(801, "/mypledge")
    assert "volunteer number 1" in await both.on_discord(yara, "mypledge")
    assert "not linked" in await both.on_discord(yara, "unlink")


async def test_the_console_links_too(both: Both) -> None:
    # The console speaks to the same core: a code made on Telegram joins a console account.
    both.telegram.add_user(901, "Nour", "en", started=True)
    made = await both.on_telegram(901, "/link")
    code = CODE.search(made)
    assert code is not None
    out = io.StringIO()
    console = Console(both.dispatcher, out=out)
    await console.feed(":private")
    await console.feed(f"/link {code.group(1)}")
    assert "Done: your accounts on the console and Telegram are linked." in out.getvalue()
