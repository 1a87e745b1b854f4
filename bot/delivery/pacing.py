"""Pacing under a platform's published limits: token buckets (aiolimiter) overall, per chat
and per group, plus a per-chat pause after a 429 that leaves every other chat running.

Every bucket holds one token: messages leave evenly spaced (1/rate apart) instead of in a
burst, so no sliding one-second (or one-minute) window ever sees more than the limit, which
a bucket of N tokens refilled at N per second would allow to double."""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from aiolimiter import AsyncLimiter

T = TypeVar("T")
# Spacing margins: after its chat's turn a message may still wait (for the overall budget,
# for the event loop, for a board's count to be read) and arrive closer to the next one than
# the spacing says. A chat's one-second window needs more room for that than a group's
# minute: bench/freeze_moment.py saw one 429 on the board's group with 10 % (the bot at
# 0.94 of a core while sending 830 messages/s).
CHAT_MARGIN = 1.25
GROUP_MARGIN = 1.1
HEADROOM = 0.02  # of the overall rate, left for arrival jitter (see _budget)
FAST = 200.0  # messages/s from which the headroom is FAST_HEADROOM (a paid broadcast)
FAST_HEADROOM = 0.05
# What a turn that goes first takes from a chat's bucket: aiolimiter wakes its waiters
# smallest amount first (then in order), so a hair less than a whole token puts it ahead of
# the messages already waiting, and spaces it a millionth closer (bench/telegram_burst.py:
# a milestone post had taken the group's turn, and the board showed its count 6 s late).
FIRST = 1.0 - 1e-6


def _spaced(count: float, period: float, margin: float = 1.0) -> AsyncLimiter:
    """A one-token bucket letting `count` messages per `period` through, evenly spaced."""
    return AsyncLimiter(1, period / count * margin)


def _budget(per_second: float) -> AsyncLimiter:
    """The overall budget: a few tokens of burst (so a late timer wastes nothing), refilled
    slower by as much, so that no one-second window ever sees more than `per_second`.

    As sent, a one-second window holds at most burst + refill = (1 - headroom) L messages;
    the headroom is room for arrival jitter at the platform. At the free tiers' rates it is
    2 %: 20 ms, less than one message's spacing at 30/s (L = 170: 3 + 163.6 × 1.02 < 170).
    A single token refilled at 0.965 L would leave 30 ms but lost 9 % of the rate to late
    timers in bench/broadcast.py (efficiency 0.875 instead of 0.960). At a paid broadcast's
    1,000/s, 20 ms is 20 messages, and a stall that long anywhere on the way bunches them:
    bench/freeze_moment.py saw 6 × 429 at the overall limit among 151,002 sends with 2 %
    (the fake server's loop stalled over 20 ms 44 times), so from FAST messages/s on the
    headroom is 5 % (50 ms)."""
    headroom = FAST_HEADROOM if per_second >= FAST else HEADROOM
    burst = max(1, int(per_second * 0.02))
    refill = max(per_second * (1 - headroom) - burst, per_second * 0.5)
    return AsyncLimiter(burst, burst / refill)


class Pacer:
    """Waits until one more message may go to a chat without tripping the platform's limits."""

    def __init__(
        self,
        overall_per_second: float,
        per_chat_per_second: float,
        per_group_per_minute: float,
        max_tracked: int = 20_000,
    ) -> None:
        self.overall_rate = overall_per_second
        self._overall = _budget(overall_per_second)
        self._released = _budget(overall_per_second)  # see before_send
        self.per_chat = per_chat_per_second
        self.per_group = per_group_per_minute
        self.max_tracked = max_tracked
        self._chats: OrderedDict[int, tuple[AsyncLimiter, AsyncLimiter | None]] = OrderedDict()
        self._paused_until: dict[int, float] = {}
        # When each chat's last request actually left (see `depart`).
        self._departed: OrderedDict[int, float] = OrderedDict()

    def _limiters(self, chat_id: int, group: bool) -> tuple[AsyncLimiter, AsyncLimiter | None]:
        found = self._chats.get(chat_id)
        if found is None:
            found = (
                _spaced(self.per_chat, 1.0, CHAT_MARGIN),
                _spaced(self.per_group, 60.0, GROUP_MARGIN) if group else None,
            )
            self._chats[chat_id] = found
            if len(self._chats) > self.max_tracked:
                self._chats.popitem(last=False)
        else:
            self._chats.move_to_end(chat_id)
        return found

    async def slot(
        self, chat_id: int, group: bool, recording: bool = False, first: bool = False
    ) -> None:
        """Wait for this chat's turn, then for a place in the overall budget; `recording`:
        the caller records the send first (`before_send`), which passes the release;
        `first`: take the chat's next turn before the messages already waiting for it (a
        live board's edit: the count first, a post can come a turn later)."""
        # A pause can grow while we sleep (another 429), so look again after each one.
        while wait := self.paused_for(chat_id):  # noqa: ASYNC110
            await asyncio.sleep(wait)
        chat, group_limiter = self._limiters(chat_id, group)
        amount = FIRST if first else 1.0
        await chat.acquire(amount)
        if group_limiter is not None:
            await group_limiter.acquire(amount)
        await self._overall.acquire()
        if not recording:
            await self._released.acquire()

    @property
    def window(self) -> int:
        """How many messages one second of sending holds (at least 8): the outbox keeps
        that many claimed, so the budget never waits for the database."""
        return max(8, math.ceil(self.overall_rate))

    async def before_send(self, record: Callable[[], Awaitable[None]]) -> None:
        """Run `record` (storing that a message goes out) between a turn and its request.
        Records wait for the database's writer, so a busy writer would release the turns it
        held all at once. Every request therefore passes a second budget of the same rate
        right before it leaves (the release): turns are paced, and so are the requests as
        they actually go out. (Taking a second place in the one budget instead halved the
        send rate whenever the writer was busy: issue 12's freeze moment.)"""
        await record()
        await self._released.acquire()

    async def overall_slot(self) -> None:
        """Wait for a place in the overall budget only (for sends already paced per chat)."""
        await self._overall.acquire()
        await self._released.acquire()

    async def depart(self, chat_id: int, group: bool) -> None:
        """Right before a request leaves: wait until it is a chat's spacing (and a group's)
        after the chat's previous request left. Turns are spaced, but a message may leave
        late after its turn (its record waits for the database's writer, its release for
        the overall budget) and so arrive right before the next one, which left on time:
        bench/freeze_moment.py saw one 429 on the board's group that way, a milestone post
        and a board edit 1 s apart. Spacing the departures themselves makes that impossible;
        a message on time never waits here."""
        gap = CHAT_MARGIN / self.per_chat
        if group:
            gap = max(gap, 60.0 / self.per_group * GROUP_MARGIN)
        loop = asyncio.get_running_loop()
        last = self._departed.get(chat_id)
        if last is not None:
            wait = last + gap - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._departed.move_to_end(chat_id)
        self._departed[chat_id] = loop.time()
        if len(self._departed) > self.max_tracked:
            self._departed.popitem(last=False)

    def paused_for(self, chat_id: int) -> float:
        """Seconds this chat must still wait after a 429 (0 when it may write)."""
        until = self._paused_until.get(chat_id)
        if until is None:
            return 0.0
        left = until - asyncio.get_running_loop().time()
        if left <= 0:
            del self._paused_until[chat_id]
            return 0.0
        return left

    def pause(self, chat_id: int, seconds: float) -> None:
        """The platform said 'retry after': hold this chat (only) that long."""
        until = asyncio.get_running_loop().time() + seconds
        self._paused_until[chat_id] = max(until, self._paused_until.get(chat_id, 0.0))


class LatestOnly(Generic[T]):
    """Coalesces answers that wait on a slow chat: per key (a group and a command), one
    answer goes out while the newest of those asked for meanwhile waits, and replaces any
    older one. Three hundred /tally in one group become two messages, not a queue of three
    hundred that holds an update handler each."""

    def __init__(self, send: Callable[[int, T], Awaitable[None]]) -> None:
        self._send = send
        self._waiting: dict[tuple[int, str], T] = {}
        self._tasks: dict[tuple[int, str], asyncio.Task[None]] = {}

    def post(self, chat_id: int, key: str, item: T) -> None:
        """Send `item` to the chat, or let it replace the one still waiting under `key`."""
        slot = (chat_id, key)
        self._waiting[slot] = item
        if slot not in self._tasks:
            self._tasks[slot] = asyncio.create_task(self._run(slot))

    async def _run(self, slot: tuple[int, str]) -> None:
        try:
            while (item := self._waiting.pop(slot, None)) is not None:
                await self._send(slot[0], item)
        finally:
            del self._tasks[slot]

    @property
    def waiting(self) -> int:
        """Answers waiting for their chat (for tests and metrics)."""
        return len(self._waiting)

    async def close(self) -> None:
        """Stop sending; what still waits is dropped."""
        self._waiting.clear()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
