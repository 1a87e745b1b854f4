"""Arbitrary text never breaks a command: every command × platform × locale × role, with
right-to-left overrides, zero-width characters, whitespace of every kind, huge numbers,
mentions and HTML among the inputs."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.types import ChatKind, Invocation, Platform, Source
from handlers import build_registry
from tests.conftest import App

COMMANDS = [c.name for c in build_registry()] + ["unknown", "PLEDGE", "تعهد", ""]
TRICKY = st.sampled_from(
    [
        "\u202e",
        "\u2066",
        "\u200f",
        "\x00",
        "\x1b[31m",
        "\n",
        "\t",
        "<b>",
        "{count}",
        "{0}",
        "%s",
        "٣",
        "ﷺ",
        "🙂",
        "../../etc/passwd",
        "Europe/Paris",
        "both",
        "confirm",
        "ar",
        "group",
        "window",
        "reminder",
        "9999999999999999999999999",
        "-1",
        "²",
        "٣٤٥",
        "1e309",
        "99999-01-01 25:61",
        "\u00a0",
        "\u2003",
        "\u3000",
        "\r\n",
        "\u2028",
        "\u200b",
        "\u200d",
        "\ufeff",
        "@everyone",
        "<@&123456789012345678>",
        "<a href='javascript:x'>",
        "&amp;",
        "localtime",
        "Factory",
    ]
)
TEXT = st.lists(st.one_of(st.text(max_size=30), TRICKY), max_size=6).map(" ".join)
FAILED = ("Something went wrong", "Une erreur", "حدث خطأ")


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    command=st.sampled_from(COMMANDS),
    text=TEXT,
    hint=st.sampled_from([None, "ar", "fr", "en", "xx", "", "fr-CA", "\u202e"]),
    group=st.booleans(),
    organizer=st.booleans(),
    admin=st.booleans(),
    as_chat=st.booleans(),
    platform=st.sampled_from(list(Platform)),
    source=st.sampled_from(list(Source)),
    user=st.text(min_size=1, max_size=12),
)
async def test_any_text_to_any_command_gets_an_answer_not_a_traceback(
    app: App,
    caplog: pytest.LogCaptureFixture,
    command: str,
    text: str,
    hint: str | None,
    group: bool,
    organizer: bool,
    admin: bool,
    as_chat: bool,
    platform: Platform,
    source: Source,
    user: str,
) -> None:
    invocation = Invocation(
        platform=platform,
        user_id=user,
        chat_id="-1001" if group else user,
        chat_kind=ChatKind.GROUP if group else ChatKind.PRIVATE,
        command=command,
        text=text,
        source=source,
        language_hint=hint,
        is_organizer=organizer,
        is_admin=admin and group,
        as_chat=as_chat and group,
        dm_address=user,
    )
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        replies = await app.dispatcher.handle(invocation)
    assert not caplog.records, caplog.text
    if source is Source.TEXT and group:
        assert replies == []
    else:
        assert replies, "every command gets an answer"
    for reply in replies:
        assert reply.text.strip()
        assert not any(marker in reply.text for marker in FAILED)
        assert "Traceback" not in reply.text
        assert "\x00" not in reply.text and "\u202e" not in reply.text


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    command=st.sampled_from(COMMANDS),
    text=TEXT.map(lambda t: t.replace("\n", " ").replace("\r", " ").replace("\u2028", " ")),
    hint=st.sampled_from(["none", "ar", "fr", "en"]),
    role=st.sampled_from(["", ":organizer on", ":admin on"]),
    where=st.sampled_from([":group", ":private"]),
)
async def test_the_console_front_end_answers_any_line(
    app: App,
    caplog: pytest.LogCaptureFixture,
    command: str,
    text: str,
    hint: str,
    role: str,
    where: str,
) -> None:
    """The same through a real front-end: the console reads the line and prints answers."""
    await app.run(f":organizer off\n:admin off\n:hint {hint}\n{where}\n{role or ':who'}")
    caplog.clear()
    start = app.out.tell()
    with caplog.at_level(logging.ERROR):
        await app.console.feed(f"/{command} {text}".rstrip())  # one line, whatever it holds
    tail = app.out.getvalue()[start:]
    assert not caplog.records, caplog.text
    assert "\n  (no answer)\n" not in tail  # the console's line for an empty answer
    assert not any(marker in tail for marker in FAILED)
    assert "Traceback" not in tail
