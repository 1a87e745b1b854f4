"""Per-volunteer flood control: a token bucket per person (aiolimiter), kept in a bounded LRU;
with several processes on one database, a second bucket that every process shares."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from enum import Enum

from aiolimiter import AsyncLimiter

log = logging.getLogger(__name__)


class Verdict(Enum):
    """What to do with one request."""

    ALLOW = "allow"
    WARN = "warn"  # over the limit: say so once
    QUIET = "quiet"  # still over the limit after the warning: already told


class FloodGuard:
    """Lets each volunteer send `rate` commands per `period` seconds. A bucket holds only the
    keyed hash, in memory; /forget does not drop it, so erasing your data never buys a fresh
    allowance (it leaves the LRU like any other)."""

    def __init__(
        self,
        rate: int,
        period: float,
        max_tracked: int = 50_000,
        shared: Callable[[bytes, int, float], Awaitable[bool | None]] | None = None,
    ) -> None:
        self.rate = rate
        self.period = period
        self.max_tracked = max_tracked
        # The bucket every process shares (Storage.take_command_token): the local one stops a
        # flood without a round trip, the shared one holds the limit however the updates
        # are spread over processes.
        self._shared = shared
        # A volunteer's first command in a period is only a moment (most pledge once and
        # are never seen again): the bucket, a handful of objects the garbage collector
        # walks, is made at their second command, with the first counted as just spent.
        self._buckets: OrderedDict[bytes, float | tuple[AsyncLimiter, list[bool]]] = OrderedDict()

    async def check(self, key: bytes) -> Verdict:
        """Take one token for this volunteer, or tell how to answer the excess."""
        buckets = self._buckets
        entry = buckets.get(key)
        if entry is None:
            if len(buckets) >= self.max_tracked:
                buckets.popitem(last=False)
        else:
            buckets.move_to_end(key)
        if entry is None or type(entry) is float:
            now = time.monotonic()
            if entry is None or now - entry >= self.period:  # a full bucket
                # Nor is the shared bucket asked, the round trip most presses would make:
                # each process lets one command of a period through on its own, so the
                # limit holds at `rate` + the number of processes (at most 2x the rate while
                # they are no more than the rate).
                buckets[key] = now
                return Verdict.ALLOW
            entry = buckets[key] = (await self._bucket(), [False])
        limiter, warned = entry
        if limiter.has_capacity():
            await limiter.acquire()  # returns at once: there is capacity
            if await self._shared_allows(key):
                warned[0] = False
                return Verdict.ALLOW
        if warned[0]:
            return Verdict.QUIET
        warned[0] = True
        return Verdict.WARN

    async def _bucket(self) -> AsyncLimiter:
        """A bucket with one token spent: the first command of the period."""
        limiter = AsyncLimiter(self.rate, self.period)
        await limiter.acquire()  # returns at once: a new bucket is full
        return limiter

    async def _shared_allows(self, key: bytes) -> bool:
        """Whether the bucket every process shares has a token (True when there is none)."""
        if self._shared is None:
            return True
        try:
            shared = await self._shared(key, self.rate, self.period)
        except Exception as error:  # the database is down: the local bucket decides, and
            # the command goes on to meet the same failure and answer it honestly
            log.debug("flood: the shared bucket could not be asked: %s", type(error).__name__)
            return True
        if shared is None:
            self._shared = None  # one process: no bucket to share, never asked again
        return shared is not False
