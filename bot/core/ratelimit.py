"""Per-volunteer flood control: a token bucket per person (aiolimiter), kept in a bounded LRU;
with several processes on one database, a second bucket that every process shares."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from enum import Enum

from aiolimiter import AsyncLimiter


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
        self._buckets: OrderedDict[bytes, tuple[AsyncLimiter, list[bool]]] = OrderedDict()

    async def check(self, key: bytes) -> Verdict:
        """Take one token for this volunteer, or tell how to answer the excess."""
        entry = self._buckets.get(key)
        if entry is None:
            entry = (AsyncLimiter(self.rate, self.period), [False])
            self._buckets[key] = entry
            if len(self._buckets) > self.max_tracked:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        limiter, warned = entry
        if limiter.has_capacity():
            await limiter.acquire()  # returns at once: there is capacity
            shared = None
            if self._shared is not None:
                shared = await self._shared(key, self.rate, self.period)
            if shared is None:
                self._shared = None  # one process: no bucket to share, never asked again
            if shared is not False:
                warned[0] = False
                return Verdict.ALLOW
        if warned[0]:
            return Verdict.QUIET
        warned[0] = True
        return Verdict.WARN
