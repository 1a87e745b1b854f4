"""Discord rate limits through discord.py's real HTTP client, against our fake REST server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.app.bootstrap import bootstrap
from bot.frontends.discord import DiscordFrontend
from tests.conftest import make_settings
from tests.fakes.discord_rest import FakeDiscordREST

TOKEN = "M" + "a" * 23 + "." + "b" * 6 + "." + "c" * 27


async def post_many(tmp_path: Path, rest: FakeDiscordREST, count: int, channels: int) -> list:
    settings = make_settings(tmp_path, discord_token=TOKEN, discord_shard_count=1)
    async with bootstrap(settings) as (services, dispatcher):
        frontend = DiscordFrontend(services, dispatcher)
        rest.point(frontend.client)
        await frontend.client.http.static_login(TOKEN)
        try:
            return await asyncio.gather(
                *(
                    frontend.send_to_channel(5000 + i % channels, f"message {i}")
                    for i in range(count)
                )
            )
        finally:
            await frontend.client.http.close()


async def test_the_bot_paces_itself_under_the_global_limit(tmp_path: Path) -> None:
    async with FakeDiscordREST(global_per_second=50) as rest:
        ids = await post_many(tmp_path, rest, count=120, channels=60)
    assert all(ids)
    assert len(rest.accepted) == 120
    assert rest.rejected_429 == 0


async def test_a_429_is_waited_out_and_nothing_is_lost(tmp_path: Path) -> None:
    # A server stricter than Discord (30/s overall, 2 per channel per second) answers 429s;
    # discord.py reads their retry_after and bucket headers and sends again.
    async with FakeDiscordREST(global_per_second=30, per_channel=2, channel_window=1.0) as rest:
        ids = await post_many(tmp_path, rest, count=60, channels=60)
    assert all(ids)
    assert sorted(p["content"] for _, _, p in rest.accepted) == sorted(
        f"message {i}" for i in range(60)
    )
    assert rest.rejected_429 > 0
