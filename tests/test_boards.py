"""Live boards show the count as of the moment the platform takes their edit."""

from __future__ import annotations

import asyncio

from bot.core.types import Reply
from bot.delivery.boards import BoardUpdater, Latest


class Group:
    """A chat whose board edits wait for a turn (a group's pace), as on Telegram."""

    def __init__(self) -> None:
        self.count = 0
        self.turn = asyncio.Event()
        self.shown: list[str] = []

    async def render(self, chat_id: str) -> Reply:
        return Reply(text=f"{self.count} pledged")

    async def edit(self, chat_id: str, ref: str, latest: Latest) -> Reply | None:
        await self.turn.wait()  # the group's turn
        self.turn.clear()
        reply = await latest(chat_id)
        if reply is not None:
            self.shown.append(reply.text)
        return reply


async def test_pledges_made_while_an_edit_waits_for_its_turn_are_in_that_edit() -> None:
    group = Group()
    boards = BoardUpdater(group.render, group.edit, interval=0.0)
    boards.track("g", "1", Reply(text="0 pledged"))
    group.count = 1
    boards.touch("g")
    await asyncio.sleep(0.01)  # the edit waits for the group's turn ...
    group.count = 5  # ... while four more pledge
    boards.touch("g")
    group.turn.set()
    await asyncio.sleep(0.01)
    assert group.shown == ["5 pledged"]  # the edit shows the count as of its turn
    group.turn.set()  # a further turn: nothing changed since, so nothing is edited
    await boards.flush()
    assert group.shown == ["5 pledged"]
    await boards.close()


async def test_an_unchanged_count_is_never_edited_again() -> None:
    group = Group()
    boards = BoardUpdater(group.render, group.edit, interval=0.0)
    boards.track("g", "1", Reply(text="3 pledged"))
    group.count = 3  # a withdrawal and a pledge: the same count
    boards.touch("g")
    group.turn.set()
    await boards.flush()
    assert group.shown == []
    await boards.close()
