"""Discord polish, end to end through the real discord.py client against simcord (a simulated
Discord): an announcement may ping one role the organizer chooses in the home server, a
server's community speaks its preferred locale's language unless its admins chose one, and
slash-command choices are named in the reader's language. Nothing here is mocked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord

from bot.app.bootstrap import bootstrap
from bot.delivery.outbox import Outbox
from bot.frontends.discord import DiscordFrontend
from bot.schedule.scheduler import ReminderScheduler
from bot.services.container import Services
from tests.conftest import NOW, eventually, make_settings
from tests.test_discord_e2e import HOME, SETTLE, TOKEN


@dataclass
class World:
    env: simcord.Env
    services: Services
    frontend: DiscordFrontend
    home: Any  # the coalition's own server
    channel: Any  # its channel
    mod: Any  # a member with Manage Server there: a coalition organizer
    other: Any  # another server using the bot
    other_channel: Any
    other_mod: Any  # that server's admin

    def member(self, name: str, guild: Any = None) -> Any:
        return (guild or self.home).add_member(self.env.create_user(name))

    def synced(self) -> dict[str, dict[str, Any]]:
        puts = [
            r for r in self.env.http_requests if r.method == "PUT" and r.path.endswith("/commands")
        ]
        return {c["name"]: c for c in puts[-1].json}

    async def community_language(self, guild: Any) -> str | None:
        _volunteer, community = await self.services.storage.load_context(
            b"", "discord", str(guild.id)
        )
        return None if community is None else community.language

    async def board_says(self, channel: Any, text: str) -> None:
        """Wait until the board (the channel's last message) shows `text`."""

        async def shows() -> bool:
            await self.env.settle()
            boards = [m for m in channel.history() if m.embeds]
            return bool(boards) and text in (boards[-1].embeds[0].description or "")

        await eventually(shows, what=f"the board showing {text!r}")

    async def outbox(self) -> Outbox:
        outbox = Outbox(self.services)
        outbox.register(self.frontend)
        return outbox

    async def restart(self) -> None:
        """A new client (and front-end) on the same storage: what a redeploy does."""
        await self.frontend.boards.close()
        await self.frontend.progress.close()
        self.frontend = DiscordFrontend(self.services, self.frontend.dispatcher)
        await self.env.restart_bot(self.frontend.client)


def start_world(locales: tuple[str, str]) -> Any:
    """A fixture: the home server and another one, with these preferred locales."""

    @pytest.fixture
    async def fixture(tmp_path: Path) -> AsyncIterator[World]:
        settings = make_settings(
            tmp_path,
            discord_token=TOKEN,
            discord_shard_count=1,
            board_interval=0.2,
            discord_home_guild_id=HOME,
        )
        async with bootstrap(settings, clock=lambda: NOW) as (services, dispatcher):
            frontend = DiscordFrontend(services, dispatcher)
            env = simcord.Env(frontend.client, shard_count=1, settle_timeout=SETTLE)
            manage = discord.Permissions(manage_guild=True)
            home = env.create_guild("Coalition", id=HOME, preferred_locale=locales[0])
            channel = home.create_text_channel("general")
            mod = home.add_member(
                env.create_user("mod"), roles=[home.create_role("Mods", permissions=manage)]
            )
            other = env.create_guild("Elsewhere", preferred_locale=locales[1])
            other_channel = other.create_text_channel("general")
            other_mod = other.add_member(
                env.create_user("other-mod"),
                roles=[other.create_role("Admins", permissions=manage)],
            )
            await env.start()
            await frontend.lead()
            try:
                yield World(
                    env, services, frontend, home, channel, mod, other, other_channel, other_mod
                )
            finally:
                await env.shutdown()
                await frontend.boards.close()
                await frontend.progress.close()
                env.raise_errors()

    return fixture


world = start_world(("en-US", "en-US"))
french_world = start_world(("en-US", "fr"))  # the other server prefers French
german_world = start_world(("en-US", "de"))  # a locale the bot does not speak


# -- 1. an announcement may ping one role of the home server ------------------------------


def role_pings(world: World, channel: Any) -> tuple[str, list[int], bool]:
    """The content of a channel's last message, the roles it pinged, and whether it pinged
    everyone, as Discord recorded them."""
    last = channel.last_message
    stored = world.env.backend.get_message(channel.id, last.id)
    return stored.content, list(stored.ping_role_ids), bool(stored.mention_everyone)


async def test_the_preview_names_the_role_and_the_announcement_keeps_it(world: World) -> None:
    volunteers = world.home.create_role("Volunteers", mentionable=True)
    preview = await world.mod.slash(world.channel, "announce", ping=volunteers, text="Freeze!")
    assert preview.ephemeral
    content = preview.response.content
    assert (
        f"In this server, it will ping <@&{volunteers.id}>; everywhere else it pings nobody."
        in content
    )
    assert "English: Freeze!" in content
    callbacks = [r for r in world.env.http_requests if r.path.endswith("/callback")]
    assert callbacks[-1].json["data"]["allowed_mentions"] == {"parse": []}  # the preview: none
    # kept with the announcement's texts, for the outbox: that server's copy, that role
    found = await world.services.storage.announcement(1)
    assert found is not None
    texts, _source = found
    assert texts == {"en": "Freeze!", "@ping": f"discord:{HOME}:{volunteers.id}"}


async def test_an_announcement_without_a_role_pings_nobody(world: World) -> None:
    role = world.home.create_role("Volunteers", mentionable=True)
    await world.mod.slash(world.channel, "board")
    preview = await world.mod.slash(world.channel, "announce", text=f"Hello <@&{role.id}>")
    assert "it will ping" not in preview.response.content
    await world.mod.click(preview.response, label="Send to everyone")
    assert await (await world.outbox()).drain() == 1
    await world.env.settle()
    content, roles, everyone = role_pings(world, world.channel)
    assert content == f"Hello <@&{role.id}>" and roles == [] and not everyone


async def test_the_transport_pings_a_role_only_in_the_home_server(world: World) -> None:
    """The front-end's half on its own: what the outbox hands it for the home server's
    copy of an announcement that names a role."""
    role = world.home.create_role("Volunteers", mentionable=True)
    await world.mod.slash(world.channel, "board")
    await world.other_mod.slash(world.other_channel, "board")
    frontend = world.frontend
    mention = str(role.id)
    assert await frontend.deliver(str(HOME), "Freeze!", "t1", mention=mention) == "sent"
    assert await frontend.deliver(str(world.other.id), "Freeze!", "t2", mention=mention) == "sent"
    # @everyone's role (the server's own id) is never pinged, whatever the outbox says
    assert await frontend.deliver(str(HOME), "Again", "t3", mention=str(HOME)) == "sent"
    await world.env.settle()
    home = world.channel.history(viewer=world.mod)
    pinged = [world.env.backend.get_message(world.channel.id, m.id) for m in home]
    assert [(m.content, m.ping_role_ids, m.mention_everyone) for m in pinged[-2:]] in (
        [(f"<@&{role.id}>\nFreeze!", [role.id], False), ("Again", [], False)],
        [("Again", [], False), (f"<@&{role.id}>\nFreeze!", [role.id], False)],
    )
    content, roles, _everyone = role_pings(world, world.other_channel)
    assert content == "Freeze!" and roles == []


async def test_everyone_is_never_a_role_to_ping(world: World) -> None:
    refused = await world.mod.slash(
        world.channel, "announce", ping=world.home.default_role, text="Freeze!"
    )
    assert refused.ephemeral
    assert "An announcement never pings everyone" in refused.response.content
    assert "Send to everyone" not in str(refused.response.components)


async def test_a_role_of_another_server_is_refused(world: World) -> None:
    organizer = world.other_mod  # that server's admin, and a coalition organizer by their id
    world.services.settings = world.services.settings.model_copy(
        update={"discord_organizer_ids": frozenset({str(organizer.id)})}
    )
    role = world.other.create_role("Locals", mentionable=True)
    refused = await organizer.slash(world.other_channel, "announce", ping=role, text="Freeze!")
    assert "a role of the coalition's own Discord server only" in refused.response.content
    # the same organizer may still announce from there without a role
    allowed = await organizer.slash(world.other_channel, "announce", text="Freeze!")
    assert "Preview of your announcement:" in allowed.response.content


async def test_the_role_option_is_in_the_synced_command(world: World) -> None:
    options = {o["name"]: o for o in world.synced()["announce"]["options"]}
    assert options["ping"]["type"] == discord.AppCommandOptionType.role.value
    assert not options["ping"].get("required", False)
    assert options["text"]["type"] == discord.AppCommandOptionType.string.value


# -- 2. a server's community speaks its preferred locale's language -------------------------


async def test_a_french_server_gets_its_board_in_french(french_world: World) -> None:
    world = french_world
    posted = await world.other_mod.slash(world.other_channel, "board")
    assert posted.acknowledged
    board = world.other_channel.last_message.embeds[0]
    assert "cette communauté" in (board.description or "")
    assert await world.community_language(world.other) == "fr"
    # the home server prefers en-US: its board is in English
    await world.mod.slash(world.channel, "board")
    assert "in this community" in (world.channel.last_message.embeds[0].description or "")
    assert await world.community_language(world.home) == "en"


async def test_a_pledge_makes_a_french_server_a_french_community(french_world: World) -> None:
    world = french_world
    karim = world.member("karim", world.other)
    await karim.slash(world.other_channel, "pledge")
    assert await world.community_language(world.other) == "fr"
    # /help makes no community: nothing is stored for a server nobody pledged in
    await world.member("lea").slash(world.channel, "help")
    assert await world.community_language(world.home) is None


async def test_posts_to_a_french_server_are_in_french(french_world: World) -> None:
    world = french_world
    await world.other_mod.slash(world.other_channel, "board")
    await world.mod.slash(world.channel, "board")
    outbox = await world.outbox()
    scheduler = ReminderScheduler(world.services, outbox.wake)
    made = await scheduler.fire("start", (await scheduler.ladder())["start"])
    assert made is not None and made.recipients == 2
    assert await outbox.drain() == 2
    await world.env.settle()
    assert "Gelez vos comptes maintenant" in world.other_channel.last_message.content
    assert "Freeze your accounts now" in world.channel.last_message.content


async def test_an_admins_choice_wins_over_the_servers_locale(french_world: World) -> None:
    world = french_world
    await world.other_mod.slash(world.other_channel, "board")
    chosen = await world.other_mod.slash(
        world.other_channel, "language", language="en", scope="group"
    )
    assert "This community's language is now English." in chosen.response.content
    await world.board_says(world.other_channel, "in this community")  # the board follows
    await world.restart()  # seeing the server again does not undo the admins' choice
    await world.env.settle()
    assert await world.community_language(world.other) == "en"


async def test_a_member_may_not_set_the_servers_language(french_world: World) -> None:
    world = french_world
    plain = world.member("plain", world.other)
    refused = await plain.slash(world.other_channel, "language", language="en", scope="group")
    assert refused.ephemeral and "only this community's admins" in refused.response.content


async def test_the_community_follows_a_change_of_the_servers_locale(french_world: World) -> None:
    world = french_world
    await world.other_mod.slash(world.other_channel, "board")
    assert await world.community_language(world.other) == "fr"
    world.env.backend.edit_guild(world.other.id, {"preferred_locale": "en-GB"})
    await world.env.settle()
    assert await world.community_language(world.other) == "en"
    await world.board_says(world.other_channel, "in this community")
    # an admin's choice other than the locale's is kept when the locale changes again
    await world.other_mod.slash(world.other_channel, "language", language="fr", scope="group")
    world.env.backend.edit_guild(world.other.id, {"preferred_locale": "en-US"})
    await world.env.settle()
    assert await world.community_language(world.other) == "fr"


async def test_a_locale_the_bot_does_not_speak_leaves_the_default(german_world: World) -> None:
    world = german_world
    await world.other_mod.slash(world.other_channel, "board")
    assert await world.community_language(world.other) is None
    assert "in this community" in (world.other_channel.last_message.embeds[0].description or "")
    # the server switches to French: its community follows, as it had no language
    world.env.backend.edit_guild(world.other.id, {"preferred_locale": "fr"})
    await world.env.settle()
    assert await world.community_language(world.other) == "fr"
    await world.board_says(world.other_channel, "cette communauté")


async def test_a_community_from_before_takes_its_servers_language_at_start(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, discord_token=TOKEN, discord_shard_count=1)
    async with bootstrap(settings, clock=lambda: NOW) as (services, dispatcher):
        frontend = DiscordFrontend(services, dispatcher)
        env = simcord.Env(frontend.client, shard_count=1, settle_timeout=SETTLE)
        guild = env.create_guild("Old", preferred_locale="fr")
        await services.storage.set_community_subscribed("discord", str(guild.id), True)
        await env.start()
        try:
            await env.settle()
            _volunteer, community = await services.storage.load_context(
                b"", "discord", str(guild.id)
            )
            assert community is not None and community.language == "fr"
        finally:
            await env.shutdown()
            await frontend.boards.close()
            env.raise_errors()


# -- 3. choices are named in the reader's language ------------------------------------------


def choices(world: World, command: str, option: str) -> list[dict[str, Any]]:
    options = {o["name"]: o for o in world.synced()[command]["options"]}
    return list(options[option]["choices"])


async def test_choices_have_names_and_keep_their_values(world: World) -> None:
    pledge = choices(world, "pledge", "platform")
    assert [(c["name"], c["value"]) for c in pledge] == [
        ("both", "both"),
        ("Instagram", "instagram"),
        ("Facebook", "facebook"),
    ]
    reminders = choices(world, "reminders", "state")
    assert [(c["name"], c["value"]) for c in reminders] == [("on", "on"), ("off", "off")]
    languages = choices(world, "language", "language")
    assert [(c["name"], c["value"]) for c in languages] == [
        ("العربية", "ar"),
        ("English", "en"),
        ("Français", "fr"),
        ("automatic", "auto"),
    ]
    for language in languages[:3]:  # a language is named in itself, for every reader
        assert "name_localizations" not in language or not language["name_localizations"]
    for command in world.synced().values():
        for option in command.get("options", []):
            for choice in option.get("choices", []):
                assert 1 <= len(choice["name"]) <= 100
                for name in choice.get("name_localizations", {}).values():
                    assert 1 <= len(name) <= 100


async def test_choices_are_named_in_french_for_french_clients(world: World) -> None:
    """Needs the French catalog's "argument value" entries (/tmp/polish/translations.py)."""
    french = {
        c["value"]: c.get("name_localizations", {}) for c in choices(world, "pledge", "platform")
    }
    assert french["both"]["fr"] == "les deux"
    state = {
        c["value"]: c.get("name_localizations", {}) for c in choices(world, "reminders", "state")
    }
    assert (state["on"]["fr"], state["off"]["fr"]) == ("activer", "désactiver")
    auto = {
        c["value"]: c.get("name_localizations", {}) for c in choices(world, "language", "language")
    }
    assert auto["auto"]["fr"] == "automatique"
    scope = {
        c["value"]: c.get("name_localizations", {}) for c in choices(world, "language", "scope")
    }
    assert (scope["me"]["fr"], scope["group"]["fr"]) == ("moi seulement", "toute la communauté")


async def test_a_named_choice_still_sends_its_value(world: World) -> None:
    member = world.member("zoe")
    done = await member.slash(world.channel, "pledge", platform="instagram")
    assert done.ephemeral and "Thank you!" in done.response.content
    key = world.services.identities.key("discord", str(member.id))
    pledge = await world.services.storage.get_pledge(world.services.campaign.id, key)
    assert pledge is not None and pledge.choice == "instagram"
