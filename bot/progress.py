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
from typing import Any

from bot import i18n
from bot.i18n import _, ngettext
from bot.services import Services
from handlers.common import paragraphs

log = logging.getLogger(__name__)

Edit = Callable[[str, bool], Awaitable[None]]  # (text, final) -> None
MIN_INTERVAL = 0.05  # seconds: never a busy loop on the database


def remaining(counts: dict[str, int]) -> int:
    """Deliveries not settled yet: waiting or in flight."""
    return counts.get("pending", 0) + counts.get("inflight", 0)


def progress_text(counts: dict[str, int]) -> str:
    """Where a broadcast stands, in the current language."""
    failed = counts.get("failed", 0) + counts.get("unreachable", 0) + counts.get("unknown", 0)
    total = sum(counts.values())
    return "\n".join(
        (
            ngettext(
                "Sending your announcement to {count} recipient.",
                "Sending your announcement to {count} recipients.",
                total,
            ),
            _("Delivered: {count}", count=counts.get("sent", 0)),
            _("Failed: {count}", count=failed),
            _("Remaining: {count}", count=remaining(counts)),
        )
    )


def report_text(counts: dict[str, int]) -> str:
    """The final report of a broadcast, in the current language."""
    sent = counts.get("sent", 0)
    unreachable = counts.get("unreachable", 0)
    failed = counts.get("failed", 0)
    unknown = counts.get("unknown", 0)
    return paragraphs(
        ngettext(
            "Your announcement was delivered to {count} recipient.",
            "Your announcement was delivered to {count} recipients.",
            sent,
        ),
        ngettext(
            "{count} recipient could not be reached: they blocked the bot or left.",
            "{count} recipients could not be reached: they blocked the bot or left.",
            unreachable,
        )
        if unreachable
        else "",
        ngettext(
            "{count} message was refused by the platform.",
            "{count} messages were refused by the platform.",
            failed,
        )
        if failed
        else "",
        ngettext(
            "{count} message may not have arrived: the bot stopped while sending it.",
            "{count} messages may not have arrived: the bot stopped while sending them.",
            unknown,
        )
        if unknown
        else "",
    )


class ProgressReports:
    """Keeps progress messages up to date, one background task per broadcast followed.

    Where each message is (`where`, the front-end's reference) is stored with its broadcast
    until the final report is shown, so a restart picks the message up again (`resume`).
    """

    def __init__(self, services: Services, interval: float) -> None:
        self.services = services
        self.interval = interval
        self._tasks: set[asyncio.Task[None]] = set()

    def follow(
        self,
        broadcast_id: int,
        locale: str,
        edit: Edit,
        where: dict[str, Any] | None = None,
    ) -> None:
        """Edit a progress message as the broadcast goes, then into its final report;
        `where` (with a "platform" key) lets a restarted process find it again."""
        task = asyncio.create_task(self._follow(broadcast_id, locale, edit, where))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resume(self, platform: str, editor: Callable[[dict[str, Any]], Edit]) -> None:
        """Follow again the platform's progress messages a previous process left unfinished;
        `editor` turns a stored `where` into a way to edit (or replace) that message."""
        for broadcast_id, stored in await self.services.storage.open_progress(platform):
            where = json.loads(stored)
            self.follow(broadcast_id, str(where.get("locale", "")), editor(where))

    async def _follow(
        self, broadcast_id: int, locale: str, edit: Edit, where: dict[str, Any] | None
    ) -> None:
        storage = self.services.storage
        if where is not None:
            await storage.set_progress(
                broadcast_id, json.dumps({**where, "locale": locale}, sort_keys=True)
            )
        shown = ""
        editable = True  # until an edit fails (an expired interaction): then the report only
        catalog = self.services.catalogs.get(locale)
        while True:
            await asyncio.sleep(max(self.interval, MIN_INTERVAL))
            try:
                counts = await storage.delivery_counts(broadcast_id)
            except Exception:
                log.exception("progress: could not read a broadcast's counts")
                continue
            final = remaining(counts) == 0
            with i18n.use(catalog):
                text = report_text(counts) if final else progress_text(counts)
            if text != shown and (editable or final):
                try:
                    await edit(text, final)
                    shown = text
                except Exception:
                    log.warning("progress: could not edit a progress message", exc_info=True)
                    editable = False
                    if final:
                        return  # kept in storage: the next start tries the report again
            if final:
                await storage.set_progress(broadcast_id, None)
                return

    async def settle(self) -> None:
        """Wait until the reports being followed are final (bound it with asyncio.timeout)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        """Stop following (at shutdown)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
