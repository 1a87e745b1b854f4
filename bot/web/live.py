"""Live counts for the web: one hub per process follows the campaign's counters and hands
every open page the same snapshot.

The hub learns that counts changed the way the boards do (`Services.count_listeners`: a
pledge in this process, or news from another one through the relay), reads the counters
once (`Storage.tally`, two rows by key), and wakes the waiting clients. Reads are
coalesced: at most one every `interval` seconds, however many pledges arrive, and never one
per client.

Ten thousand open pages must not stall the bot's other work: clients wait on one of
`SLICES` events, and a new snapshot wakes them a slice at a time, yielding to the event
loop in between (a press waits for one slice, not for every page). The hub also beats
every `heartbeat` seconds, so idle streams send their keep-alive without a timer each.
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
HEARTBEAT = 15.0  # seconds between two beats (proxies close streams that stay silent)
SLICES = 16  # clients are woken a sixteenth at a time


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
        self._events = [asyncio.Event() for _ in range(SLICES)]
        self._next_slice = 0
        self._heartbeat = HEARTBEAT
        self._beating: asyncio.Task[None] | None = None
        self._waking: asyncio.Task[None] | None = None
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
    def heartbeat(self) -> float:
        """Seconds between two beats."""
        return self._heartbeat

    @heartbeat.setter
    def heartbeat(self, seconds: float) -> None:
        self._heartbeat = seconds
        if self._beating is not None and not self._beating.done():  # the new pace, now
            self._beating.cancel()
            self._beating = asyncio.create_task(self._beat())

    def slice(self) -> int:
        """The slice a new client waits in (they take turns)."""
        self._next_slice = (self._next_slice + 1) % SLICES
        return self._next_slice

    def changed(self, slice_: int) -> asyncio.Event:
        """An event of that slice, set after the next snapshot or beat (or on close)."""
        return self._events[slice_]

    async def start(self) -> None:
        """Read the counts once and follow every change from now on."""
        self._snapshot = await self._read(0)
        self._last_read = self._clock()
        self.services.count_listeners.append(self.touch)
        self._beating = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        while not self.closing:
            await asyncio.sleep(self._heartbeat)
            self._wake()

    def _wake(self) -> None:
        """Wake every client, a slice at a time (a wake already under way is caught up)."""
        woken, self._events = self._events, [asyncio.Event() for _ in range(SLICES)]
        previous = self._waking
        self._waking = asyncio.create_task(self._wake_slices(woken, previous))

    @staticmethod
    async def _wake_slices(
        events: list[asyncio.Event], previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None and not previous.done():
            await previous
        for event in events:
            event.set()
            await asyncio.sleep(0)  # the woken slice writes; then the rest of the bot runs

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
        self._wake()

    async def flush(self) -> None:
        """Wait until the snapshot follows every change told so far (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)

    async def close(self) -> None:
        """Stop following the counts and wake every client, so open streams end."""
        self.closing = True
        if self.touch in self.services.count_listeners:
            self.services.count_listeners.remove(self.touch)
        for task in (self._task, self._beating):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._waking is not None:
            await asyncio.gather(self._waking, return_exceptions=True)
        for event in self._events:
            event.set()
