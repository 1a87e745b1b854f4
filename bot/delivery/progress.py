"""An announcement's progress message: edited as its broadcast goes, then the final report.

A front-end that shows a reply with `progress` set hands this module a way to edit that
message; the message then follows the broadcast's delivery rows (delivered, failed,
remaining) at most every `interval` seconds, and becomes the final report when nothing is
left to send. The rows in the database are the truth; this only reads them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.core import i18n
from bot.services.container import PROGRESS, Services
from bot.services.render import progress_text, remaining, report_text

log = logging.getLogger(__name__)

Edit = Callable[[str, bool], Awaitable[None]]  # (text, final) -> None
MIN_INTERVAL = 0.05  # seconds: never a busy loop on the database


@dataclass(slots=True)
class _Followed:
    """One progress message being followed."""

    locale: str
    edit: Edit
    shown: str = ""
    editable: bool = True  # until an edit fails (an expired interaction): then the report only
    last_edit: float = float("-inf")
    dirty: bool = True
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class ProgressReports:
    """Keeps progress messages up to date. Nothing polls: when the outbox records how
    deliveries went (`Services.deliveries_changed`), each followed message reads its counts
    again, at most every `interval` seconds, in a task that ends once it is up to date.

    Where each message is (`where`, the front-end's reference) is stored with its broadcast
    until the final report is shown, so a restart picks the message up again (`resume`).
    """

    def __init__(self, services: Services, interval: float) -> None:
        self.services = services
        self.interval = max(interval, MIN_INTERVAL)
        self._followed: dict[int, _Followed] = {}
        self._stores: set[asyncio.Task[None]] = set()
        services.delivery_listeners.append(self.changed)
        # Only the leading process (the one sending) edits progress messages; another one
        # stores where its message is and tells the leader.
        self.leading = True

    def follow(
        self,
        broadcast_id: int,
        locale: str,
        edit: Edit,
        where: dict[str, Any] | None = None,
    ) -> None:
        """Edit a progress message as the broadcast goes, then into its final report;
        `where` (with a "platform" key) lets a restarted process find it again."""
        if where is not None:
            stored = json.dumps({**where, "locale": locale}, sort_keys=True)
            task = asyncio.create_task(self._store(broadcast_id, stored))
            self._stores.add(task)
            task.add_done_callback(self._stores.discard)
        if not self.leading:
            return  # stored: the leader follows it (told once it is stored)
        followed = _Followed(locale, edit, last_edit=asyncio.get_running_loop().time())
        self._followed[broadcast_id] = followed
        self._schedule(broadcast_id)

    async def _store(self, broadcast_id: int, stored: str) -> None:
        await self.services.storage.set_progress(broadcast_id, stored)
        if not self.leading and self.services.relay is not None:
            self.services.relay(PROGRESS)

    async def resume(self, platform: str, editor: Callable[[dict[str, Any]], Edit]) -> None:
        """Follow again the platform's progress messages a previous process left unfinished;
        `editor` turns a stored `where` into a way to edit (or replace) that message."""
        if not self.leading:
            return
        for broadcast_id, stored in await self.services.storage.open_progress(platform):
            if broadcast_id in self._followed:
                continue  # followed already
            where = json.loads(stored)
            self.follow(broadcast_id, str(where.get("locale", "")), editor(where))

    def changed(self) -> None:
        """Deliveries were recorded: every followed message reads its counts again."""
        for broadcast_id in list(self._followed):
            self._schedule(broadcast_id)

    def _schedule(self, broadcast_id: int) -> None:
        followed = self._followed[broadcast_id]
        followed.dirty = True
        if followed.task is None or followed.task.done():
            followed.task = asyncio.create_task(self._update(broadcast_id, followed))

    async def _update(self, broadcast_id: int, followed: _Followed) -> None:
        loop = asyncio.get_running_loop()
        while followed.dirty:
            wait = followed.last_edit + self.interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            followed.dirty = False
            followed.last_edit = loop.time()
            try:
                counts = await self.services.storage.delivery_counts(broadcast_id)
            except Exception:
                log.exception("progress: could not read a broadcast's counts")
                return  # the next recorded delivery tries again
            final = remaining(counts) == 0
            with i18n.use(self.services.catalogs.get(followed.locale)):
                text = report_text(counts) if final else progress_text(counts)
            if text != followed.shown and (followed.editable or final):
                try:
                    await followed.edit(text, final)
                    followed.shown = text
                except Exception:
                    log.warning("progress: could not edit a progress message", exc_info=True)
                    followed.editable = False
                    if final:  # kept in storage: the next start tries the report again
                        self._finish(broadcast_id, followed)
                        return
            if final:
                await asyncio.gather(*self._stores)  # where it is was stored: now cleared
                await self.services.storage.set_progress(broadcast_id, None)
                self._finish(broadcast_id, followed)
                return

    def _finish(self, broadcast_id: int, followed: _Followed) -> None:
        if self._followed.get(broadcast_id) is followed:
            del self._followed[broadcast_id]
        followed.done.set()

    async def settle(self) -> None:
        """Wait until the reports being followed are final (bound it with asyncio.timeout)."""
        await asyncio.gather(*(f.done.wait() for f in list(self._followed.values())))

    async def release(self) -> None:
        """Stop editing progress messages (this process no longer leads); they stay stored
        for the next leader."""
        self.leading = False
        tasks = [f.task for f in self._followed.values() if f.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._followed.clear()

    async def close(self) -> None:
        """Stop following (at shutdown)."""
        if self.changed in self.services.delivery_listeners:
            self.services.delivery_listeners.remove(self.changed)
        tasks = [f.task for f in self._followed.values() if f.task is not None]
        tasks += list(self._stores)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._followed.clear()
