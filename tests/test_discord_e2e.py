"""The Discord front-end end to end: the real discord.py client against simcord, a simulated
Discord (pinned in pyproject). discord.py itself is never mocked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord
import simcord.interactions as simcord_interactions

from bot.app.bootstrap import bootstrap
from bot.frontends.discord import PLEDGE_BUTTON_ID, DiscordFrontend
from bot.services.container import Services
from bot.services.registry import Command
from tests.conftest import NOW, WAIT, eventually, make_settings

HOME = 900_000_000_000_000_042
TOKEN = "M" + "a" * 23 + "." + "b" * 6 + "." + "c" * 27
# How long simcord may take to settle the bot after an interaction (its default is 5 s):
# on a loaded machine a progress message's polling alone can keep it busy longer.
SETTLE = 3 * WAIT


@dataclass
class World:
    env: simcord.Env
    services: Services
    frontend: DiscordFrontend
    guild: Any
    channel: Any
    mod: Any
    locale: dict[str, str]

    def member(self, name: str) -> Any:
        return self.guild.add_member(self.env.create_user(name))

    async def settled(self, check: Callable[[], bool]) -> bool:
        """check(), once the bot's pending work (board and progress edits) has settled."""
        await self.env.settle()
        return check()

    def synced(self) -> dict[str, dict[str, Any]]:
        puts = [
            r for r in self.env.http_requests if r.method == "PUT" and r.path.endswith("/commands")
        ]
        return {c["name"]: c for c in puts[-1].json}

    async def restart(self) -> None:
        """A new client (and front-end) on the same storage: what a redeploy does."""
        await self.frontend.boards.close()  # the old process's timers end with it
        await self.frontend.progress.close()
        self.frontend = DiscordFrontend(self.services, self.frontend.dispatcher)
        await self.env.restart_bot(self.frontend.client)


@pytest.fixture
def locale(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """simcord 3.2.1 always sends en-US; this lets a test pick the client's locale."""
    wanted: dict[str, str] = {}
    original = simcord_interactions.base_payload

    def patched(*args: Any, **kwargs: Any) -> Any:
        record, payload = original(*args, **kwargs)
        if "locale" in wanted:
            payload["locale"] = wanted["locale"]
        if "guild_locale" in wanted and "guild_locale" in payload:
            payload["guild_locale"] = wanted["guild_locale"]
        return record, payload

    monkeypatch.setattr(simcord_interactions, "base_payload", patched)
    return wanted


@pytest.fixture
async def world(tmp_path: Path, locale: dict[str, str]) -> AsyncIterator[World]:
    settings = make_settings(
        tmp_path,
        discord_token=TOKEN,
        discord_shard_count=1,
        board_interval=0.3,
        discord_home_guild_id=HOME,
    )
    async with bootstrap(settings, clock=lambda: NOW) as (services, dispatcher):
        frontend = DiscordFrontend(services, dispatcher)
        env = simcord.Env(frontend.client, shard_count=1, settle_timeout=SETTLE)
        guild = env.create_guild("Coalition", id=HOME)  # the coalition's home server
        channel = guild.create_text_channel("general")
        mods = guild.create_role("Mods", permissions=discord.Permissions(manage_guild=True))
        mod = guild.add_member(env.create_user("mod"), roles=[mods])
        await env.start()
        await frontend.lead()  # the only process: it leads
        try:
            yield World(env, services, frontend, guild, channel, mod, locale)
        finally:
            await env.shutdown()
            await world_close(frontend)
            env.raise_errors()


async def world_close(frontend: DiscordFrontend) -> None:
    await frontend.boards.close()


@pytest.mark.parametrize(
    ("client_locale", "expected"), [("en-US", "Thank you!"), ("fr", "Merci"), ("en-GB", "Thank")]
)
async def test_pledge_by_slash_command_is_ephemeral_in_the_clients_language(
    world: World, client_locale: str, expected: str
) -> None:
    world.locale["locale"] = client_locale
    alice = world.member("alice")
    result = await alice.slash(world.channel, "pledge", platform="instagram")
    assert result.ephemeral
    assert expected in result.response.content
    assert "<t:" in result.response.content  # Discord shows the window in each reader's time


async def test_arabic_is_chosen_with_language_and_kept_after_a_restart(world: World) -> None:
    alice = world.member("alice")
    chosen = await alice.slash(world.channel, "language", language="ar")
    assert "بالعربية" in chosen.response.content
    await world.restart()
    result = await alice.slash(world.channel, "tally")
    assert "تعهّد" in result.response.content or "متطوع" in result.response.content


async def test_french_command_names_are_in_what_is_synced(world: World) -> None:
    synced = world.synced()
    assert synced["pledge"]["name_localizations"]["fr"] == "je-m-engage"
    assert synced["tally"]["name_localizations"]["fr"] == "compteur"
    french = world.services.catalogs.get("fr")
    pledge = world.services.registry.get("pledge")
    assert pledge is not None
    assert synced["pledge"]["description_localizations"]["fr"] == french.gettext(pledge.summary)
    assert pledge.summary != french.gettext(pledge.summary)  # it is translated
    assert synced["pledge"]["options"][0]["description_localizations"]["fr"] == (
        "Les comptes que vous allez geler"
    )
    for command in synced.values():
        assert len(command["description"]) <= 100
        for text in command.get("description_localizations", {}).values():
            assert 1 <= len(text) <= 100, (command["name"], text)
        for name in command.get("name_localizations", {}).values():
            assert name == name.lower() and 1 <= len(name) <= 32
    assert synced["board"]["default_member_permissions"] == 32
    assert "start" not in synced
    choices = [c["value"] for c in synced["pledge"]["options"][0]["choices"]]
    assert choices == ["both", "instagram", "facebook"]


async def test_board_button_pledges_ephemerally_and_the_board_becomes_exact(
    world: World,
) -> None:
    posted = await world.mod.slash(world.channel, "board")
    assert posted.acknowledged and not posted.ephemeral
    board = world.channel.last_message
    assert board.components[0].children[0].custom_id == PLEDGE_BUTTON_ID
    assert "0 volunteers have pledged in this community." in board.embeds[0].description
    for name in ("ana", "ben", "chloe"):
        member = world.member(name)
        pressed = await member.click(world.channel.last_message, custom_id=PLEDGE_BUTTON_ID)
        assert pressed.ephemeral and "Thank you!" in pressed.response.content
    world.locale["locale"] = "fr"
    french = await world.member("dora").click(
        world.channel.last_message, custom_id=PLEDGE_BUTTON_ID
    )
    assert "Merci" in french.response.content
    # the board follows within the update interval (0.3 s here)
    await eventually(
        lambda: world.settled(
            lambda: "4 volunteers" in (world.channel.last_message.embeds[0].description or "")
        ),
        what="the board showing 4 volunteers",
    )
    description = world.channel.last_message.embeds[0].description
    assert "4 volunteers have pledged in this community." in description
    assert world.channel.last_message.edited_at is not None
    assert len(world.channel.history(viewer=world.mod)) == 1, "no new message per volunteer"


async def test_board_button_keeps_working_after_a_restart(world: World) -> None:
    await world.mod.slash(world.channel, "board")
    await world.restart()
    pressed = await world.member("eve").click(
        world.channel.last_message, custom_id=PLEDGE_BUTTON_ID
    )
    assert pressed.acknowledged and "Thank you!" in pressed.response.content


async def test_community_command_refused_to_a_member_and_accepted_for_manage_server(
    world: World,
) -> None:
    plain = world.member("plain")
    # Discord itself hides the command from members without Manage Server...
    with pytest.raises(simcord.SetupError, match="default-member-permissions"):
        await plain.slash(world.channel, "board")
    # ...and when a server admin opens it to everyone, the bot still checks.
    command_id = int(world.env.backend.commands[None][("board", 1)]["id"])
    world.guild.set_command_permissions(command_id, {world.guild.default_role: True})
    refused = await plain.slash(world.channel, "board")
    assert refused.ephemeral and "only this community's admins" in refused.response.content
    accepted = await world.mod.slash(world.channel, "board")
    assert accepted.acknowledged and not accepted.ephemeral


async def test_everyone_in_user_text_pings_nobody(world: World) -> None:
    alice = world.member("alice")
    result = await alice.slash(world.channel, "timezone", zone="@everyone <@&1>")
    assert "@everyone" in result.response.content
    callbacks = [r for r in world.env.http_requests if r.path.endswith("/callback")]
    assert callbacks[-1].json["data"]["allowed_mentions"] == {"parse": []}
    await world.mod.slash(world.channel, "board")
    posts = [r for r in world.env.http_requests if "allowed_mentions" in (r.json or {})]
    assert all(r.json["allowed_mentions"] == {"parse": []} for r in posts)


async def test_server_locale_counts_when_the_client_locale_is_not_ours(world: World) -> None:
    world.locale.update(locale="de", guild_locale="fr")
    result = await world.member("hans").slash(world.channel, "tally")
    assert "au total" in result.response.content


async def test_a_refused_edit_reposts_the_board(world: World) -> None:
    await world.mod.slash(world.channel, "board")
    old = world.channel.last_message
    world.env.inject_error(
        "PATCH",
        f"/channels/{world.channel.id}/messages/{old.id}",
        status=404,
        code=10008,
        message="Unknown Message",
        times=None,
    )
    await world.member("fred").click(old, custom_id=PLEDGE_BUTTON_ID)
    await eventually(
        lambda: world.settled(lambda: world.channel.last_message.id != old.id),
        what="a new board posted",
    )
    new = world.channel.last_message
    assert new.id != old.id
    assert "1 volunteer has pledged in this community." in (new.embeds[0].description or "")
    # the new board is stored after it is posted: wait for the write, not just the message
    expected = [(str(world.guild.id), f"{world.channel.id}:{new.id}")]

    async def stored() -> bool:
        return await world.services.storage.boards("discord") == expected

    await eventually(stored, what="the new board stored")
    assert await world.services.storage.boards("discord") == expected


async def test_a_slow_answer_is_deferred_first(tmp_path: Path, locale: dict[str, str]) -> None:
    settings = make_settings(tmp_path, discord_token=TOKEN, discord_shard_count=1)
    async with bootstrap(settings, clock=lambda: NOW) as (services, dispatcher):

        async def slow(invocation: Any, services: Services) -> list[Any]:
            """Take longer than Discord's three seconds."""
            await asyncio.sleep(2.5)
            return await services.registry.get("tally").handler(invocation, services)  # type: ignore[union-attr]

        services.registry.add(Command("slowtally", "Count slowly", slow, public=True))
        frontend = DiscordFrontend(services, dispatcher)
        env = simcord.Env(frontend.client, shard_count=1, settle_timeout=SETTLE)
        guild = env.create_guild("Coalition")
        channel = guild.create_text_channel("general")
        member = guild.add_member(env.create_user("patient"))
        await env.start()
        await frontend.lead()  # the only process: it leads
        try:
            result = await member.slash(channel, "slowtally")
            callbacks = [r for r in env.http_requests if r.path.endswith("/callback")]
            assert callbacks[0].json["type"] == 5  # deferred ("thinking") first
            assert "volunteers have pledged in all" in result.response.content
            assert not result.ephemeral  # a public answer stays public after the deferral
        finally:
            await env.shutdown()
            await frontend.boards.close()
            env.raise_errors()


async def test_announcement_text_with_everyone_and_a_role_pings_nobody(world: World) -> None:
    role = world.guild.create_role("Volunteers", mentionable=True)
    text = f"@everyone @here <@&{role.id}> the freeze starts now"
    message_id = await world.frontend.send_to_channel(world.channel.id, text)
    await world.env.settle()
    assert message_id is not None
    stored = world.env.backend.get_message(world.channel.id, message_id)
    assert stored.content == text
    assert not stored.mention_everyone
    assert stored.ping_role_ids == [] and stored.ping_user_ids == []
    # control: the same text with mentions allowed would ping, so the check above can fail
    world.frontend.client.allowed_mentions = discord.AllowedMentions.all()
    control = await world.frontend.send_to_channel(world.channel.id, text)
    await world.env.settle()
    assert control is not None
    pinged = world.env.backend.get_message(world.channel.id, control)
    assert pinged.mention_everyone or pinged.ping_role_ids


async def test_arabic_pledge_by_command_and_by_button(world: World) -> None:
    await world.mod.slash(world.channel, "board")
    board = world.channel.last_message
    salma = world.member("salma")
    await salma.slash(world.channel, "language", language="ar")
    by_button = await salma.click(board, custom_id=PLEDGE_BUTTON_ID)
    assert by_button.ephemeral and "سُجّل تعهّدك" in by_button.response.content
    again = await salma.slash(world.channel, "pledge")
    assert again.ephemeral and "تعهّدك مسجَّل مسبقًا" in again.response.content


async def test_a_reminder_reaches_the_board_channel_and_opted_in_members(world: World) -> None:
    from bot.delivery.outbox import Outbox
    from bot.schedule.scheduler import ReminderScheduler

    await world.mod.slash(world.channel, "board")
    ana = world.member("ana")
    world.locale["locale"] = "fr"
    opted = await ana.slash(world.channel, "reminders", state="on")
    assert "Les rappels sont activés" in opted.response.content
    outbox = Outbox(world.services)
    outbox.register(world.frontend)
    scheduler = ReminderScheduler(world.services, outbox.wake)
    made = await scheduler.fire("start", (await scheduler.ladder())["start"])
    assert made is not None and made.recipients == 2
    assert await outbox.drain() == 2
    await world.env.settle()
    assert "Gelez vos comptes maintenant" in ana.user.dm_channel.last_message.content
    assert "Freeze your accounts now" in world.channel.last_message.content
    sends = [r for r in world.env.http_requests if r.method == "POST" and "nonce" in (r.json or {})]
    assert sends and all(r.json.get("enforce_nonce") for r in sends)
    assert await world.services.storage.delivery_counts(made.id) == {"sent": 2}


async def test_an_announcement_shows_its_progress_then_a_report(world: World) -> None:
    from bot.delivery.outbox import Outbox

    await world.mod.slash(world.channel, "board")  # the community's channel for the outbox
    for name in ("ana", "ben"):
        member = world.member(name)
        await member.slash(world.channel, "reminders", state="on")
    preview = await world.mod.slash(world.channel, "announce", text="Freeze tomorrow!")
    assert "Preview of your announcement:" in preview.response.content
    sent = await world.mod.click(preview.response, label="Send to everyone")
    assert "Sending your announcement to 3 recipients." in sent.response.content
    assert "Remaining: 3" in sent.response.content and "Delivered: 0" in sent.response.content
    outbox = Outbox(world.services)
    outbox.register(world.frontend)
    assert await outbox.drain() == 3
    # the progress message is edited within board_interval (0.3 s here)
    await eventually(
        lambda: world.settled(lambda: "delivered to 3 recipients" in sent.response.content),
        what="the progress message turned into the report",
    )
    assert "Your announcement was delivered to 3 recipients." in sent.response.content
    assert "Remaining" not in sent.response.content


async def test_the_checkin_button_in_a_private_message_counts_a_volunteer_as_done(
    world: World,
) -> None:
    from bot.delivery.outbox import Outbox
    from bot.schedule.scheduler import ReminderScheduler

    ana = world.member("ana")
    world.locale["locale"] = "fr"
    await ana.slash(world.channel, "pledge")
    await ana.slash(world.channel, "reminders", state="on")
    outbox = Outbox(world.services)
    outbox.register(world.frontend)
    scheduler = ReminderScheduler(world.services, outbox.wake)
    assert await scheduler.fire("checkin", (await scheduler.ladder())["checkin"]) is not None
    assert await outbox.drain() == 2  # ana, and the server (no board channel there yet)
    await world.env.settle()
    checkin = ana.user.dm_channel.last_message
    assert "Avez-vous gelé vos comptes" in checkin.content
    await world.restart()  # the button outlives the process that sent it
    ladder = await scheduler.ladder()
    world.services.clock = lambda: ladder["checkin"]  # the check-in is open
    pressed = await ana.user.click(checkin, custom_id="coalition:done")
    assert "Merci d’avoir gelé vos comptes" in pressed.response.content
    tally = await world.services.storage.tally(world.services.campaign.id, "discord", None)
    assert (tally.total, tally.done) == (1, 1)


async def test_processes_split_the_shards(tmp_path: Path) -> None:
    """Several processes on one database each connect their share of the shards."""
    settings = make_settings(
        tmp_path, discord_token=TOKEN, discord_shard_count=4, discord_shard_ids="2, 3"
    )
    async with bootstrap(settings, clock=lambda: NOW) as (services, dispatcher):
        client = DiscordFrontend(services, dispatcher).client
        assert (client.shard_count, client.shard_ids) == (4, [2, 3])
