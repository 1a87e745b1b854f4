"""Counts read correctly in every language, through the whole core."""

from __future__ import annotations

import asyncio

from bot.core.i18n import FSI, PDI
from bot.core.types import ChatKind, Invocation, Platform
from tests.conftest import App


def invocation(user: str, command: str, hint: str = "ar") -> Invocation:
    return Invocation(
        platform=Platform.TELEGRAM,
        user_id=user,
        chat_id="-1002",
        chat_kind=ChatKind.GROUP,
        command=command,
        language_hint=hint,
    )


def n(value: int) -> str:
    return f"{FSI}{value}{PDI}"


ARABIC = {
    0: "لم يتعهّد أي متطوع في هذه المجموعة بعد.",
    1: "تعهّد متطوع واحد في هذه المجموعة.",
    2: "تعهّد متطوعان في هذه المجموعة.",
    3: f"تعهّد {n(3)} متطوعين في هذه المجموعة.",
    11: f"تعهّد {n(11)} متطوعًا في هذه المجموعة.",
    100: f"تعهّد {n(100)} متطوع في هذه المجموعة.",
}
FRENCH = {
    0: "0 personne s’est engagée dans cette communauté.",
    1: "1 personne s’est engagée dans cette communauté.",
    2: "2 personnes se sont engagées dans cette communauté.",
    1000: "1\u202f000 personnes se sont engagées dans cette communauté.",
}
ENGLISH = {
    0: "0 volunteers have pledged in this community.",
    1: "1 volunteer has pledged in this community.",
    2: "2 volunteers have pledged in this community.",
    1000: "1,000 volunteers have pledged in this community.",
}


async def tally_at(app: App, counts: dict[int, str], hint: str) -> dict[int, str]:
    seen: dict[int, str] = {}
    pledged = 0
    for target in sorted(counts):
        await asyncio.gather(
            *(app.dispatcher.handle(invocation(f"v{i}", "pledge")) for i in range(pledged, target))
        )
        pledged = target
        replies = await app.dispatcher.handle(invocation("reader", "tally", hint))
        seen[target] = replies[0].text.splitlines()[0]
    return seen


async def test_arabic_tally_uses_all_six_plural_forms(app: App) -> None:
    seen = await tally_at(app, ARABIC, "ar")
    assert seen == ARABIC
    assert len(set(seen.values())) == 6


async def test_french_zero_and_one_are_singular(app: App) -> None:
    seen = await tally_at(app, FRENCH, "fr")
    # Babel writes French thousands with a narrow no-break space
    assert seen[0] == FRENCH[0] and seen[1] == FRENCH[1] and seen[2] == FRENCH[2]
    assert seen[1000].replace("\u00a0", "\u202f") == FRENCH[1000]


async def test_english_counts(app: App) -> None:
    assert await tally_at(app, ENGLISH, "en") == ENGLISH
