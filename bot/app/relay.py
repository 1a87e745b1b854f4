"""News between the processes that share one PostgreSQL database.

A pledge taken by one process must move the boards the leader edits; a broadcast made by a
follower must wake the leader's outbox; an organizer's new window must reach every process's
texts and the leader's scheduler; a board or a progress message posted by a follower must be
edited by the leader. Each is a topic published through the storage (PostgreSQL NOTIFY);
what arrives runs the same local listeners a change in this process runs. Count news is
coalesced: at most one notice every COALESCE_SECONDS, however many pledges a second brings.
With SQLite (one process) nothing is published and nothing arrives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from bot.services.container import BOARDS, BROADCASTS, COUNTS, PROGRESS, SCHEDULE, Services

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.25
COALESCED = frozenset({COUNTS})


class Relay:
    """Publishes this process's changes by topic and replays the other processes'."""

    def __init__(self, services: Services) -> None:
        self.services = services
        # The leader's front-ends: look again at the stored boards / progress messages.
        self.board_listeners: list[Callable[[], Awaitable[None]]] = []
        self.progress_listeners: list[Callable[[], Awaitable[None]]] = []
        self._waiting: set[str] = set()
        self._tasks: set[asyncio.Future[Any]] = set()

    async def start(self) -> None:
        """Listen to the other processes, and publish this one's changes."""
        await self.services.storage.subscribe(self.received)
        self.services.relay = self.send

    def send(self, topic: str) -> None:
        """Publish a change (counts coalesced)."""
        if topic in COALESCED:
            if topic in self._waiting:
                return
            self._waiting.add(topic)
            asyncio.get_running_loop().call_later(COALESCE_SECONDS, self._flush, topic)
            return
        self._spawn(self._publish(topic))

    def _flush(self, topic: str) -> None:
        self._waiting.discard(topic)
        self._spawn(self._publish(topic))

    async def _publish(self, topic: str) -> None:
        try:
            await self.services.storage.publish(topic)
        except Exception:
            log.warning("relay: could not tell the other processes about %s", topic)

    def received(self, topic: str) -> None:
        """Another process published `topic`: run this process's listeners for it."""
        services = self.services
        if topic == COUNTS:
            services.counts_changed(relayed=True)
        elif topic == BROADCASTS:
            services.broadcast_created(relayed=True)
        elif topic == SCHEDULE:
            self._spawn(self._reload_window())
        elif topic in (BOARDS, PROGRESS):
            listeners = self.board_listeners if topic == BOARDS else self.progress_listeners
            for listener in listeners:
                self._spawn(listener())
        else:
            log.debug("relay: unknown topic %r", topic)

    async def _reload_window(self) -> None:
        """An organizer changed the window in another process: use the stored one here."""
        services = self.services
        campaign = services.campaign
        stored = await services.storage.window(campaign.id)
        if stored is not None:
            start, end = (moment.astimezone(campaign.zone) for moment in stored)
            services.campaign = replace(campaign, start=start, end=end)
        await services.schedule_changed(relayed=True)
        services.counts_changed(relayed=True)  # boards show the window too

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop publishing; wait for notices on their way out."""
        self.services.relay = None
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
