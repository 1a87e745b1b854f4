"""Live counts for the web: one hub per process follows the campaign's counters and hands
every open page the same snapshot.

The hub learns that counts changed the way the boards do (`Services.count_listeners`: a
pledge in this process, or news from another one through the relay), reads the counters
once (`Storage.tally`, two rows by key), and wakes every waiting client at once. Reads are
coalesced: at most one every `interval` seconds, however many pledges arrive, and never one
per client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.services.container import Services

log = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds: at most one snapshot a second, however many pledges


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The campaign's counts at one moment, as every page shows them."""

    version: int
    pledged: int
    froze: int
    goal: int
    start: datetime | None
    end: datetime | None
    updated_at: datetime

    def same_counts(self, other: Snapshot) -> bool:
        """Whether two snapshots show the same thing (only the time differs)."""
        return (self.pledged, self.froze, self.goal, self.start, self.end) == (
            other.pledged,
            other.froze,
            other.goal,
            other.start,
            other.end,
        )


class LiveCounts:
    """The process's one hub: a current snapshot, and an event set when it changes."""

    def __init__(
        self,
        services: Services,
        interval: float = INTERVAL,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.services = services
        self.interval = interval
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._snapshot: Snapshot | None = None
        self._changed = asyncio.Event()
        self._dirty = False
        self._last_read = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self.closing = False

    @property
    def snapshot(self) -> Snapshot:
        """The latest snapshot (the hub must be started)."""
        if self._snapshot is None:
            raise RuntimeError("LiveCounts.start() was not awaited")
        return self._snapshot

    @property
    def changed(self) -> asyncio.Event:
        """An event set once the snapshot after the current one is taken (or on close)."""
        return self._changed

    async def start(self) -> None:
        """Read the counts once and follow every change from now on."""
        self._snapshot = await self._read(0)
        self._last_read = self._clock()
        self.services.count_listeners.append(self.touch)

    def touch(self) -> None:
        """Counts may have changed: read them again, at most once per interval."""
        if self.closing:
            return
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while self._dirty and not self.closing:
            wait = self._last_read + self.interval - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            self._dirty = False  # what changes from here on, the next read sees
            self._last_read = self._clock()
            try:
                fresh = await self._read(self.snapshot.version + 1)
            except Exception:
                log.warning("live counts: could not read the counters", exc_info=True)
                continue
            if fresh.same_counts(self.snapshot):
                continue
            self._publish(fresh)

    async def _read(self, version: int) -> Snapshot:
        services = self.services
        campaign = services.campaign
        tally = await services.storage.tally(campaign.id, "", None)
        return Snapshot(
            version=version,
            pledged=tally.total,
            froze=tally.done,
            goal=campaign.goal,
            start=campaign.start,
            end=campaign.end,
            updated_at=services.clock(),
        )

    def _publish(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        waiting, self._changed = self._changed, asyncio.Event()
        waiting.set()

    async def flush(self) -> None:
        """Wait until the snapshot follows every change told so far (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)

    async def close(self) -> None:
        """Stop following the counts and wake every client, so open streams end."""
        self.closing = True
        if self.touch in self.services.count_listeners:
            self.services.count_listeners.remove(self.touch)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._changed.set()
