"""Live boards: each community's board message follows the count, edited at most every few
seconds and never with unchanged text, however many pledges arrive.

The count is read as late as possible: the front-end's edit first waits for the platform to
take it (a group's pace, the bot's overall budget), then asks for the board's text. Read
before that wait, a board would show a count a whole spacing old (issue 12: 6.4 s after the
last press on Telegram, where a group takes a message every 3.3 s)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.core.types import Reply

log = logging.getLogger(__name__)

MAX_RETRIES = 3  # consecutive failed edits of one board before waiting for the next change
Render = Callable[[str], Awaitable[Reply]]
# The board's text now, or None when it shows that already (then nothing is edited).
Latest = Callable[[str], Awaitable[Reply | None]]
# Edits one board (chat id, message ref): waits for the platform's turn, then asks `Latest`
# for the text; returns what the board now shows (None: nothing new to show).
Edit = Callable[[str, str, Latest], Awaitable[Reply | None]]


class BoardUpdater:
    """Coalesces count changes per community into paced edits of its board message."""

    def __init__(
        self,
        render: Render,
        edit: Edit,
        interval: float = 3.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._render = render
        self._edit = edit
        self.interval = interval
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._refs: dict[str, str] = {}
        self._shown: dict[str, str] = {}
        self._last_edit: dict[str, float] = {}
        self._dirty: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[str, int] = {}
        # Only the leading process edits boards (one pace per board, however many
        # processes); another one tells the leader instead (`untracked`).
        self.leading = True
        self.untracked: Callable[[], None] = lambda: None

    def track(self, chat_id: str, ref: str, reply: Reply) -> None:
        """Remember a board just posted (or found at start-up) and the text it shows."""
        if not self.leading:
            self.untracked()  # it is stored: the leader picks it up
            return
        self._refs[chat_id] = ref
        self._shown[chat_id] = reply.text
        self._last_edit[chat_id] = self._clock()

    def tracks(self, chat_id: str, ref: str) -> bool:
        """Whether this board (this message) is followed here."""
        return self._refs.get(chat_id) == ref

    def moved(self, old_chat_id: str, new_chat_id: str) -> None:
        """Follow a community to its new chat id."""
        for table in (self._refs, self._shown, self._last_edit):
            if old_chat_id in table:
                table[new_chat_id] = table.pop(old_chat_id)  # type: ignore[assignment]

    def drop(self, chat_id: str) -> None:
        """Stop updating a board (the bot was removed, or the message is gone)."""
        self._refs.pop(chat_id, None)
        self._shown.pop(chat_id, None)
        self._dirty.discard(chat_id)

    def touch(self, chat_id: str | None = None) -> None:
        """A count changed: in one community, or (None) possibly in any of them."""
        targets = list(self._refs) if chat_id is None else [chat_id]
        for target in targets:
            if target not in self._refs:
                continue
            self._dirty.add(target)
            task = self._tasks.get(target)
            if task is None or task.done():
                self._tasks[target] = asyncio.create_task(self._follow(target))

    async def _follow(self, chat_id: str) -> None:
        while chat_id in self._dirty and chat_id in self._refs:
            wait = self._last_edit.get(chat_id, 0.0) + self.interval - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                self._last_edit[chat_id] = self._clock()
                shown = await self._edit(chat_id, self._refs[chat_id], self._latest)
                if shown is not None and chat_id in self._refs:
                    self._shown[chat_id] = shown.text
            except Exception:
                failures = self._failures.get(chat_id, 0) + 1
                self._failures[chat_id] = failures
                if failures <= MAX_RETRIES:
                    self._dirty.add(chat_id)  # the board is not showing it yet: try again
                log.exception("board update failed in one community (attempt %d)", failures)
            else:
                self._failures.pop(chat_id, None)

    async def _latest(self, chat_id: str) -> Reply | None:
        """The board's text as of now; None if it shows that already, or is gone."""
        self._dirty.discard(chat_id)  # what changes from here on, the next edit shows
        reply = await self._render(chat_id)
        if reply.text == self._shown.get(chat_id) or chat_id not in self._refs:
            return None
        return reply

    async def flush(self) -> None:
        """Wait until every pending board edit is done (tests, shutdown)."""
        while any(not t.done() for t in self._tasks.values()):
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        """Cancel pending edits."""
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def release(self) -> None:
        """Stop editing every board (this process no longer leads)."""
        self.leading = False
        await self.close()
        for table in (self._refs, self._shown, self._last_edit, self._failures):
            table.clear()
        self._dirty.clear()
        self._tasks.clear()
