"""Adding a broadcast's volunteers a chunk per transaction, paced, shared by both backends
(each brings its own SQL for one chunk: `Step`).

The first full chunk is added while the caller waits, so the organizer's answer and the
first sends come at once; the rest is added in a background task that rests EXPAND_REST
times as long as each chunk took, leaving the database to the presses most of the time
(issue 12's freeze moment: running free, a million recipients held SQLite's writer for most
of 96 s while presses queued for 10 to 20 s), and still adding volunteers several times
faster than any platform sends to them. A stop cancels the task; the next start finishes
what is left (`finish`), each recipient once, since a chunk's cursor is stored with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger(__name__)

# After each full chunk, the expansion rests this many times as long as the chunk took.
EXPAND_REST = 3.0

# One chunk of a broadcast's volunteers in its own transaction: (its recipients so far,
# whether every volunteer has been looked at).
Step = Callable[[int], Awaitable[tuple[int, bool]]]


class Expansions:
    """The broadcasts this process is adding volunteers to, in the background."""

    def __init__(self, step: Step, chunk: Callable[[], int]) -> None:
        self._step = step
        self._chunk = chunk  # volunteers per step (read when used: tests and benches set it)
        self._running: dict[int, asyncio.Task[int]] = {}

    async def start(self, broadcast_id: int, started: Callable[[], object] | None) -> int:
        """Add the first full chunk (or all, when fewer), calling `started` once the first
        rows can be sent, and the rest in the background; the recipients so far."""
        loop = asyncio.get_running_loop()
        recipients = 0
        while True:
            began, before = loop.time(), recipients
            recipients, finished = await self._step(broadcast_id)
            if started is not None:
                started()
                started = None
            if finished:
                return recipients
            if recipients - before >= self._chunk():  # a full chunk: more are coming
                break
        rest = (loop.time() - began) * EXPAND_REST
        task = asyncio.create_task(self._rest(broadcast_id, rest))
        self._running[broadcast_id] = task
        task.add_done_callback(lambda done: self._ended(broadcast_id, done))
        return recipients

    def _ended(self, broadcast_id: int, task: asyncio.Task[int]) -> None:
        """A background expansion ended: forget it; a failure is logged (the next start
        finishes it, see `finish`)."""
        self._running.pop(broadcast_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "storage: adding a broadcast's recipients stopped; the next start resumes it",
                exc_info=task.exception(),
            )

    async def _rest(self, broadcast_id: int, rest: float = 0.0) -> int:
        """Add a broadcast's remaining volunteers, resting after each chunk; its recipients."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(rest)
            began = loop.time()
            recipients, finished = await self._step(broadcast_id)
            if finished:
                return recipients
            rest = (loop.time() - began) * EXPAND_REST

    async def finish(self, unfinished: Iterable[int]) -> int:
        """Finish the broadcasts a stop interrupted, except those this process is adding
        already; how many."""
        left = [b for b in unfinished if b not in self._running]
        for broadcast_id in left:
            await self._rest(broadcast_id)
        return len(left)

    async def done(self) -> None:
        """Wait until every broadcast being added has all its recipients."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def close(self) -> None:
        """Stop adding (the next start finishes it)."""
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
