"""The command core: locale resolution, rights, limits, and failures answered kindly."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app.bootstrap import bootstrap
from bot.core.i18n import FSI, LRI, PDI
from bot.core.ratelimit import FloodGuard, Verdict
from bot.core.types import ChatKind, Invocation, Platform, Reply, Source, Visibility
from bot.services.container import Services
from bot.services.dispatch import resolve_locale
from bot.services.registry import Command
from storage.base import Community, Volunteer
from tests.conftest import App, make_settings


def inv(
    command: str,
    text: str = "",
    *,
    user: str = "u1",
    hint: str | None = None,
    group: bool = True,
    organizer: bool = False,
    admin: bool = False,
    source: Source = Source.COMMAND,
) -> Invocation:
    return Invocation(
        platform=Platform.DISCORD,
        user_id=user,
        chat_id="guild-1" if group else f"dm-{user}",
        chat_kind=ChatKind.GROUP if group else ChatKind.PRIVATE,
        command=command,
        text=text,
        source=source,
        language_hint=hint,
        is_organizer=organizer,
        is_admin=admin,
        dm_address=user,
    )


LANGS = ("ar", "en", "fr")


def test_locale_order() -> None:
    now = datetime.now(UTC)
    chosen = Volunteer(b"k", "ar", None, False, None, now)
    silent = Volunteer(b"k", None, None, False, None, now)
    community = Community(1, "discord", "g", "fr", True, None)
    assert resolve_locale(chosen, "fr-FR", community, "en", LANGS) == "ar"
    assert resolve_locale(silent, "fr-CA", community, "en", LANGS) == "fr"
    assert resolve_locale(None, "de-DE", community, "en", LANGS) == "fr"
    assert resolve_locale(None, None, None, "ar", LANGS) == "ar"
    assert resolve_locale(None, "pt_BR", None, "", LANGS) == "en"


async def test_community_language_applies_to_readers_without_a_choice(app: App) -> None:
    handle = app.dispatcher.handle
    refused = await handle(inv("language", "fr group", user="member"))
    assert "only this community's admins" in refused[0].text
    coalition = await handle(inv("language", "fr group", user="org", organizer=True))
    assert "only this community's admins" in coalition[0].text  # not theirs to choose
    done = await handle(inv("language", "fr group", user="boss", admin=True))
    assert done[0].visibility is Visibility.PUBLIC
    assert "français" in done[0].text
    replies = await handle(inv("tally", user="newcomer"))
    assert "personne" in replies[0].text
    # a volunteer's app language still comes first
    replies = await handle(inv("tally", user="newcomer", hint="en-GB"))
    assert "in this community" in replies[0].text


async def test_flood_is_answered_once_then_quiet(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limit_commands=3, rate_limit_seconds=60)
    async with bootstrap(settings) as (_services, dispatcher):
        answers = [await dispatcher.handle(inv("tally", hint="fr")) for _ in range(6)]
        assert all(a and "bénévole" not in a[0].text for a in answers[:3])
        assert "trop vite" in answers[3][0].text or "rapidement" in answers[3][0].text
        assert answers[4] == [] and answers[5] == []
        # somebody else is not affected
        other = await dispatcher.handle(inv("tally", user="u2"))
        assert "volunteer" in other[0].text


async def test_a_flood_bucket_refills_after_its_period() -> None:
    guard = FloodGuard(2, 1.0)
    key = b"k" * 32
    assert await guard.check(key) is Verdict.ALLOW
    await asyncio.sleep(1.05)  # a period later, the first command no longer counts
    assert [await guard.check(key) for _ in range(4)] == [
        Verdict.ALLOW,
        Verdict.ALLOW,
        Verdict.WARN,
        Verdict.QUIET,
    ]
    await asyncio.sleep(1.05)  # the bucket leaked: room again, and a new warning if needed
    assert [await guard.check(key) for _ in range(4)] == [
        Verdict.ALLOW,
        Verdict.ALLOW,
        Verdict.WARN,
        Verdict.QUIET,
    ]


async def test_a_crashing_handler_is_answered_and_logged(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(invocation: Invocation, services: Services) -> list[Reply]:
        """Fail on purpose."""
        raise ZeroDivisionError("boom")

    app.services.registry.add(Command("explode", "Fail on purpose", explode))
    with caplog.at_level(logging.ERROR):
        for hint, words in (("en", "Nothing you sent was lost"), ("fr", "perdu"), ("ar", "لم")):
            replies = await app.dispatcher.handle(inv("explode", hint=hint))
            assert len(replies) == 1 and words in replies[0].text
            assert "Traceback" not in replies[0].text and "boom" not in replies[0].text
    assert "command /explode failed" in caplog.text
    # and the bot keeps running
    replies = await app.dispatcher.handle(inv("tally"))
    assert "in all" in replies[0].text


async def test_plain_text_in_a_group_is_not_for_the_bot(app: App) -> None:
    assert await app.dispatcher.handle(inv("", "hello all", source=Source.TEXT)) == []
    private = await app.dispatcher.handle(inv("", "hello", source=Source.TEXT, group=False))
    assert "/help" in private[0].text


async def test_arabic_numbers_are_isolated_but_commands_are_not(app: App) -> None:
    for n in range(3):
        await app.dispatcher.handle(inv("pledge", user=f"p{n}"))
    replies = await app.dispatcher.handle(inv("tally", hint="ar"))
    assert f"{FSI}3{PDI}" in replies[0].text
    replies = await app.dispatcher.handle(inv("unpledge", hint="ar", user="nobody"))
    help_reply = await app.dispatcher.handle(inv("help", hint="ar"))
    assert f"{LRI}/language{PDI}" in help_reply[0].text
    assert f"{LRI}/language [ar|en|fr|auto] [me|group]{PDI}" in help_reply[0].text
    assert replies[0].text


async def test_help_shows_each_role_the_commands_it_may_run(app: App) -> None:
    volunteer = (await app.dispatcher.handle(inv("help")))[0].text
    admin = (await app.dispatcher.handle(inv("help", admin=True)))[0].text
    organizer = (await app.dispatcher.handle(inv("help", organizer=True)))[0].text
    assert "/pledge" in volunteer and "/board" not in volunteer and "/announce" not in volunteer
    assert "/board" in admin and "/subscribe" in admin and "/announce" not in admin
    assert "For this community's admins:" in admin
    assert "/announce" in organizer and "/board" not in organizer
    assert "For the coalition's organizers:" in organizer


async def test_group_only_command_in_private_chat(app: App) -> None:
    replies = await app.dispatcher.handle(inv("board", group=False, admin=True, hint="fr"))
    assert "/board" in replies[0].text and "groupe" in replies[0].text


async def test_deep_link_start_pledges(app: App) -> None:
    replies = await app.dispatcher.handle(inv("start", "pledge", group=False))
    assert "volunteer number 1" in replies[0].text
    welcome = await app.dispatcher.handle(inv("start", group=False, user="u9"))
    assert welcome[0].buttons and welcome[0].buttons[0].action == "pledge"


def test_evolve_changes_only_what_it_is_told() -> None:
    from bot.core.types import Reply, evolve

    invocation = inv("pledge", hint="fr")
    changed = evolve(invocation, locale="fr", args={"platform": "both"})
    assert changed.locale == "fr" and changed.args == {"platform": "both"}
    assert changed.command == "pledge" and changed.language_hint == "fr"
    assert invocation.locale == "en" and invocation.args == {}  # the original is untouched
    assert evolve(Reply(text="hi"), locale="ar") == Reply(text="hi", locale="ar")
    with pytest.raises(TypeError):
        evolve(invocation, nonsense=1)
