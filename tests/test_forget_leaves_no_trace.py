"""After /forget, neither the raw id nor its hash is anywhere in the database files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.core.types import ChatKind, Invocation, Platform
from tests.conftest import App


def files_contain(folder: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in folder.iterdir():
        if path.is_file() and path.name != "pepper":
            blob = path.read_bytes()
            found += [f"{path.name}: {needle!r}" for needle in needles if needle in blob]
    return found


def invocation(user: str, command: str, text: str = "", group: bool = True) -> Invocation:
    return Invocation(
        platform=Platform.TELEGRAM,
        user_id=user,
        chat_id="-100777" if group else user,
        chat_kind=ChatKind.GROUP if group else ChatKind.PRIVATE,
        command=command,
        text=text,
        dm_address=user,
    )


async def test_forget_erases_id_and_hash_from_every_file(app: App) -> None:
    data_dir = app.services.settings.data_dir
    handle = app.dispatcher.handle
    # Enough volunteers that every table has interior b-tree pages, not a single leaf.
    crowd = [f"{7_000_000_000 + i}" for i in range(4000)]
    await asyncio.gather(*(handle(invocation(user, "pledge")) for user in crowd))
    target = "8123456789"
    await handle(invocation(target, "language", "fr", group=False))
    await handle(invocation(target, "reminders", "on", group=False))
    await handle(invocation(target, "pledge", "instagram"))
    hashed = app.services.identities.key("telegram", target)
    needles = [hashed, hashed.hex().encode(), target.encode()]
    assert files_contain(data_dir, needles), "the volunteer should be stored before /forget"

    replies = await handle(invocation(target, "forget", "confirm", group=False))
    assert "erased" in replies[0].text or "effac" in replies[0].text
    assert files_contain(data_dir, needles) == []
    # the others are untouched
    other = app.services.identities.key("telegram", crowd[1234])
    assert files_contain(data_dir, [other])


async def test_forget_of_many_volunteers_in_a_row_leaves_none(app: App) -> None:
    handle = app.dispatcher.handle
    users = [f"{9_000_000_000 + i}" for i in range(3000)]
    await asyncio.gather(*(handle(invocation(u, "pledge")) for u in users))
    leaving = users[::97]
    for user in leaving:
        await handle(invocation(user, "forget", "confirm", group=False))
    hashes = [app.services.identities.key("telegram", u) for u in leaving]
    assert files_contain(app.services.settings.data_dir, hashes) == []
    tally = await app.services.storage.tally(app.services.campaign.id, "telegram", "-100777")
    assert tally.total == len(users) - len(leaving)
