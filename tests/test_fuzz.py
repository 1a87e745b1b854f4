"""Arbitrary text, right-to-left and control characters included, never breaks a command."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core import ChatKind, Invocation, Platform, Source
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
    source: Source,
    user: str,
) -> None:
    invocation = Invocation(
        platform=Platform.TELEGRAM,
        user_id=user,
        chat_id="-1001" if group else user,
        chat_kind=ChatKind.GROUP if group else ChatKind.PRIVATE,
        command=command,
        text=text,
        source=source,
        language_hint=hint,
        is_organizer=organizer,
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
