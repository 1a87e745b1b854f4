"""Who may do what, generated from the registry: every command (and every choice that needs
more than the command) × every role × every front-end, by typed command, slash command and
button press, forged button data included.

Three roles: a volunteer; a community admin (of the group or server the command is sent in,
a stranger to the coalition); a coalition organizer (a configured id, or on Discord a
manager of the coalition's home server), who is no admin of the community they speak in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord

from bot.app.bootstrap import bootstrap
from bot.core.types import Scope
from bot.frontends.console import Console
from bot.frontends.discord import DiscordFrontend
from bot.frontends.telegram import TelegramFrontend
from bot.services.registry import Command, Registry, parse_args
from handlers import build_registry
from tests.conftest import NOW, App, make_settings
from tests.fakes.telegram_server import FakeTelegram

COALITION_REFUSAL = "only the coalition's organizers"
COMMUNITY_REFUSAL = "only this community's admins"
GROUP_ONLY = "works only in a community group"
AS_YOURSELF = "Send /"
REFUSALS = (COALITION_REFUSAL, COMMUNITY_REFUSAL, GROUP_ONLY)
ROLES = ("volunteer", "admin", "organizer")
# Free-text arguments that a command cannot run without get a harmless sample.
SAMPLE = "1"


@dataclass(frozen=True)
class Form:
    """One way to call a command: its name, the text after it, the scope that needs."""

    name: str
    text: str
    scope: Scope

    def __str__(self) -> str:
        return f"/{self.name} {self.text}".strip()


def forms(registry: Registry) -> Iterator[Form]:
    """Each command with its required arguments filled, and once more for each choice that
    needs a scope of its own (`/campaign window`, `/language ar group`)."""
    for command in registry:
        words = filled(command, len(command.args))
        yield Form(command.name, " ".join(words), required(command, words))
        for position, arg in enumerate(command.args):
            for choice in arg.choices:
                if choice.scope is not None:
                    words = [*filled(command, position, optional=True), choice.value]
                    yield Form(command.name, " ".join(words), required(command, words))


def filled(command: Command, upto: int, optional: bool = False) -> list[str]:
    """Values for the first `upto` arguments: required ones always, optional ones too when
    a later argument is given (a choice's first value, or the sample)."""
    words = []
    for arg in command.args[:upto]:
        if arg.required or optional:
            words.append(arg.choices[0].value if arg.choices else SAMPLE)
    return words


def required(command: Command, words: list[str]) -> Scope:
    """The scope the registry declares for the command called with these words."""
    return command.required(parse_args(command, " ".join(words)))


FORMS = list(forms(build_registry()))


def allowed(role: str, scope: Scope, in_group: bool) -> bool:
    """The rule every front-end must follow ("home manager": a coalition organizer who is
    also an admin where they speak, the home server's managers on Discord)."""
    if scope is Scope.COALITION:
        return role in ("organizer", "home manager")
    if scope is Scope.COMMUNITY:
        return in_group and role in ("admin", "home manager")
    return True


def expect(answer: str, role: str, form: Form, in_group: bool) -> None:
    """The answer is a refusal exactly when the rule says so, and says who may."""
    refused = [marker for marker in REFUSALS if marker in answer]
    where = f"{form} by a {role} in a {'group' if in_group else 'private chat'}: {answer!r}"
    if allowed(role, form.scope, in_group):
        assert not refused, "refused, but allowed: " + where
        return
    wanted = {
        Scope.COALITION: COALITION_REFUSAL,
        Scope.COMMUNITY: COMMUNITY_REFUSAL if in_group else GROUP_ONLY,
    }[form.scope]
    assert refused == [wanted], "not refused as declared: " + where


def test_the_matrix_covers_what_the_issue_names() -> None:
    """The declarations themselves, as the README's table states them."""
    scopes = {str(form): form.scope for form in FORMS}
    assert scopes["/announce"] is Scope.COALITION
    assert scopes[f"/announce_send {SAMPLE}"] is Scope.COALITION
    assert scopes["/campaign window"] is Scope.COALITION
    assert scopes["/campaign reminder"] is Scope.COALITION
    assert scopes["/campaign"] is Scope.VOLUNTEER
    for community in ("/board", "/subscribe", "/tallypost", "/language ar group"):
        assert scopes[community] is Scope.COMMUNITY
    for mine in ("/pledge", "/unpledge", "/forget", "/mydata", "/language", "/done"):
        assert scopes[mine] is Scope.VOLUNTEER
    assert len(FORMS) == len(build_registry()) + 3


# -- console ------------------------------------------------------------------------------


@pytest.mark.parametrize("in_group", [True, False], ids=["group", "private"])
@pytest.mark.parametrize("role", ROLES)
async def test_console(app: App, role: str, in_group: bool) -> None:
    flags = {
        "volunteer": ":organizer off\n:admin off",
        "admin": ":organizer off\n:admin on",
        "organizer": ":organizer on\n:admin off",
    }[role]
    where = ":group" if in_group else ":private"
    # The app's language says English: the refusals are read in English whatever language
    # the community is given along the way (/language ar group).
    await app.run(f":as {role}\n:hint en\n{flags}\n{where}")
    for form in FORMS:
        expect(await app.run(str(form)), role, form, in_group)


async def test_console_buttons_are_checked_like_commands(app: App) -> None:
    """A button runs its command through the same check: the organizer's "Send" button of
    an announcement preview, pressed by someone else in the same chat, is refused."""
    await app.run(":as org\n:organizer on\n/announce Freeze tomorrow!")
    out = await app.run(":as stranger\n:organizer off\n:admin on\n:press 1")
    assert "(no button" in out  # the preview was the organizer's alone
    preview = await app.run(":as org\n:organizer on\n/announce Freeze tomorrow!")
    send = next(line for line in preview.splitlines() if "[1]" in line)
    assert "Send to everyone" in send
    console: Console = app.console
    buttons = console._buttons  # what the organizer's screen shows, pressed by another
    (key,) = [k for k in buttons if k[1] == "org"]
    buttons[(key[0], "stranger")] = (buttons[key][0] + 1, buttons[key][1])
    out = await app.run(":as stranger\n:organizer off\n:press 1")
    assert COALITION_REFUSAL in out
    assert "Sending your announcement" not in out


# -- Telegram -----------------------------------------------------------------------------

TOKEN = "123456:TEST" + "abcdefghijklmnopqrstuvwxyzABCD"
GROUP = -100777
USERS = {"volunteer": 7001, "admin": 7002, "organizer": 7003}


@dataclass
class TelegramWorld:
    server: FakeTelegram
    frontend: TelegramFrontend


@pytest.fixture
async def telegram(tmp_path: Path) -> AsyncIterator[TelegramWorld]:
    async with FakeTelegram(TOKEN) as server:
        settings = make_settings(
            tmp_path,
            telegram_token=TOKEN,
            telegram_base_url=server.base_url,
            telegram_base_file_url=server.base_file_url,
            telegram_organizer_ids=str(USERS["organizer"]),
            telegram_rate_per_chat=100,
            telegram_rate_per_group_minute=6000,
            telegram_rate_overall=1000,
        )
        for user in USERS.values():
            server.add_user(user, "U", "en", started=True)
        # A group whose admin is a stranger to the coalition; the organizer is a member.
        server.add_group(GROUP, "Stranger's group", admins=[USERS["admin"]])
        async with bootstrap(settings, clock=lambda: NOW) as (services, dispatcher):
            frontend = TelegramFrontend(services, dispatcher)
            await frontend.start()
            await frontend.lead()
            try:
                yield TelegramWorld(server, frontend)
            finally:
                await frontend.stop()


def seen(server: FakeTelegram, *chats: int) -> int:
    return sum(len(server.messages(chat)) for chat in chats)


@pytest.mark.parametrize("role", ROLES)
async def test_telegram_commands(telegram: TelegramWorld, role: str) -> None:
    server, user = telegram.server, USERS[role]
    for in_group in (True, False):
        chat = GROUP if in_group else user
        for form in FORMS:
            mine, group = len(server.messages(user)), len(server.messages(GROUP))

            def since(mine: int = mine, group: int = group) -> str:
                new = server.messages(user)[mine:] + server.messages(GROUP)[group:]
                return " ".join(m["text"] for m in new)

            server.user_sends(user, chat, str(form))
            if allowed(role, form.scope, in_group):
                await server.wait_for(lambda since=since: since() != "")
            else:  # a refusal comes alone; wait for it rather than for the first message
                await server.wait_for(lambda since=since: any(r in since() for r in REFUSALS))
            expect(since(), role, form, in_group)


@pytest.mark.parametrize("role", ROLES)
async def test_telegram_forged_button_data(telegram: TelegramWorld, role: str) -> None:
    """A modified client can put any callback data under a press: the check is the core's,
    not the keyboard's."""
    server, user = telegram.server, USERS[role]
    server.user_sends(USERS["admin"], GROUP, "/board")
    await server.wait_for(lambda: len(server.messages(GROUP)) >= 1)
    board = server.messages(GROUP)[0]["message_id"]
    for form in FORMS:
        query = server.user_presses(user, GROUP, board, str(form)[1:], forge=True)
        await server.wait_for(lambda query=query: query in server.callback_answers)
        toast = server.callback_answers[query].get("text", "")
        expect(toast, role, form, in_group=True)


async def test_telegram_menus_follow_the_scopes(telegram: TelegramWorld) -> None:
    commands = telegram.server.commands
    everyone = {c["command"] for c in commands[("default", "en")]}
    admins = {c["command"] for c in commands[("all_chat_administrators", "en")]}
    organizer = {c["command"] for c in commands[(f"chat:{USERS['organizer']}", "en")]}
    assert "board" in admins and "announce" not in admins
    assert "announce" in organizer and "board" not in organizer
    assert not ({"board", "announce", "subscribe", "tallypost"} & everyone)
    assert "pledge" in everyone and "pledge" in admins and "pledge" in organizer


async def test_telegram_messages_on_behalf_of_a_chat_are_nobodys(
    telegram: TelegramWorld,
) -> None:
    """An anonymous admin (or a linked channel) writes as a chat: no shared volunteer can be
    made of it, while the admin's rights in their own group still work."""
    server = telegram.server
    admin = USERS["admin"]
    for text, sender in (("/pledge", GROUP), ("/forget", GROUP), ("/reminders on", -1009999)):
        count = len(server.messages(GROUP))
        server.user_sends(admin, GROUP, text, sender_chat_id=sender)  # -1009999: a channel
        await server.wait_for(lambda count=count: len(server.messages(GROUP)) > count)
        answer = server.messages(GROUP)[-1]["text"]
        assert "as yourself" in answer and text.split()[0] in answer
    tally = await telegram.frontend.services.storage.tally(
        telegram.frontend.services.campaign.id, "telegram", str(GROUP)
    )
    assert tally.total == 0
    server.user_sends(admin, GROUP, "/subscribe off", sender_chat_id=GROUP)
    await server.wait_for(lambda: "no longer receive" in server.messages(GROUP)[-1]["text"])


# -- Discord --------------------------------------------------------------------------------

DISCORD_TOKEN = "M" + "a" * 23 + "." + "b" * 6 + "." + "c" * 27


@dataclass
class DiscordWorld:
    env: simcord.Env
    home_channel: Any
    stranger_channel: Any
    at_home: dict[str, Any]  # role -> member handle in the home server
    at_stranger: dict[str, Any]  # role -> member handle in the stranger's server


@pytest.fixture
async def discord_world(tmp_path: Path) -> AsyncIterator[DiscordWorld]:
    home_id = 900_000_000_000_000_001
    settings = make_settings(
        tmp_path,
        discord_token=DISCORD_TOKEN,
        discord_shard_count=1,
        discord_home_guild_id=home_id,
    )
    async with bootstrap(settings, clock=lambda: NOW) as (services, dispatcher):
        frontend = DiscordFrontend(services, dispatcher)
        env = simcord.Env(frontend.client, shard_count=1)
        home = env.create_guild("Coalition", id=home_id)
        stranger = env.create_guild("Stranger's server")
        manage = discord.Permissions(manage_guild=True)
        users = {role: env.create_user(role) for role in ("home manager", *ROLES)}
        # The "organizer" is a coalition organizer by configured id: a plain member anywhere.
        settings.discord_organizer_ids = frozenset({str(users["organizer"].id)})
        mods = home.create_role("Mods", permissions=manage)
        owners = stranger.create_role("Owners", permissions=manage)
        at_home = {
            "home manager": home.add_member(users["home manager"], roles=[mods]),
            "organizer": home.add_member(users["organizer"]),
            "volunteer": home.add_member(users["volunteer"]),
        }
        at_stranger = {
            "admin": stranger.add_member(users["admin"], roles=[owners]),
            "organizer": stranger.add_member(users["organizer"]),
            "volunteer": stranger.add_member(users["volunteer"]),
            # A manager of the home server is nobody special in another server.
            "home manager": stranger.add_member(users["home manager"]),
        }
        channels = (home.create_text_channel("general"), stranger.create_text_channel("chat"))
        await env.start()
        await frontend.lead()  # the only process: it leads
        try:
            # Discord hides managers' commands from others; a server may open them to all,
            # and then only the bot's own check stands.
            for guild in (home, stranger):
                for command in env.backend.commands[None].values():
                    guild.set_command_permissions(int(command["id"]), {guild.default_role: True})
            yield DiscordWorld(env, channels[0], channels[1], at_home, at_stranger)
        finally:
            await env.shutdown()
            await frontend.boards.close()
            env.raise_errors()


def slash_options(form: Form) -> dict[str, str]:
    command = build_registry().get(form.name)
    assert command is not None
    values = parse_args(command, form.text)
    return {arg.name: values[arg.name] for arg in command.args if arg.name in values}


def content(result: Any) -> str:
    messages = [result.response, *result.followups]
    return " ".join((m.content or "") for m in messages if m is not None)


@pytest.mark.parametrize(
    ("where", "role", "as_role"),
    [
        ("stranger", "volunteer", "volunteer"),
        ("stranger", "admin", "admin"),
        ("stranger", "organizer", "organizer"),
        ("stranger", "home manager", "volunteer"),
        ("home", "volunteer", "volunteer"),
        ("home", "organizer", "home manager"),  # the coalition's own server is theirs
        ("home", "home manager", "home manager"),
    ],
)
async def test_discord_slash_commands(
    discord_world: DiscordWorld, where: str, role: str, as_role: str
) -> None:
    """`as_role`: what the person is where they speak. The stranger who owns a server is a
    community admin there; a manager of the home server is an organizer (and an admin) at
    home only; an organizer by configured id is one everywhere, and an admin at home."""
    world = discord_world
    member = (world.at_home if where == "home" else world.at_stranger)[role]
    channel = world.home_channel if where == "home" else world.stranger_channel
    for form in FORMS:
        if form.name in ("start", "announce_send"):
            continue  # not slash commands (hidden): reached by a deep link and a button
        result = await member.slash(channel, form.name, **slash_options(form))
        expect(content(result), as_role, form, in_group=True)


async def test_a_strangers_server_cannot_steer_the_campaign(discord_world: DiscordWorld) -> None:
    """The scenario the issue reported: the owner of a brand-new server moves the window and
    announces from it. Both are refused; the same owner still gets a board in their server."""
    owner = discord_world.at_stranger["admin"]
    channel = discord_world.stranger_channel
    moved = await owner.slash(channel, "campaign", action="window", value="2026-12-02 09:00")
    assert COALITION_REFUSAL in content(moved) and moved.ephemeral
    announced = await owner.slash(channel, "announce", text="The freeze is CANCELLED")
    assert COALITION_REFUSAL in content(announced)
    board = await owner.slash(channel, "board")
    assert board.acknowledged and not board.ephemeral
    assert "pledged in this community" in (channel.last_message.embeds[0].description or "")
    organizer = discord_world.at_home["organizer"]
    preview = await organizer.slash(discord_world.home_channel, "announce", text="Hello")
    assert "Preview of your announcement" in content(preview)


async def test_discord_menus_hint_the_scopes(discord_world: DiscordWorld) -> None:
    synced = {
        c["name"]: c
        for r in discord_world.env.http_requests
        if r.method == "PUT" and r.path.endswith("/commands")
        for c in r.json
    }
    for form in FORMS:
        if form.name in synced and form.text == "":
            permissions = synced[form.name].get("default_member_permissions")
            expected = None if form.scope is Scope.VOLUNTEER else 32  # Manage Server
            assert permissions == expected, form
