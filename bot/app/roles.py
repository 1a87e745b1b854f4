"""Leader and followers: which process schedules, sends and edits.

Every process takes updates (Telegram webhooks, Discord shards) and answers them. The
platforms' limits are per bot, so exactly one process at a time — the leader — runs the
scheduler, drains the outbox and edits boards and progress messages (with SQLite there is
one process, and it leads at once). A follower tries to take the lead every TRY_SECONDS; a
leader that may have lost it (`Storage.lead_lost`) stops all of that at once and goes back
to trying, so two processes never send side by side for longer than a check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from bot.delivery.outbox import Outbox
from bot.schedule.scheduler import ReminderScheduler
from bot.services.container import Services
from storage.base import Storage

log = logging.getLogger(__name__)

TRY_SECONDS = 1.0


class Leads(Protocol):
    """A front-end's part in leading: boards, progress messages (and Telegram polling)."""

    async def lead(self) -> None:
        """Start what only the leader does."""

    async def follow(self) -> None:
        """Stop it."""


async def lead_when_possible(
    services: Services,
    outbox: Outbox,
    scheduler: ReminderScheduler,
    frontends: Sequence[Leads],
    stopping: asyncio.Event,
) -> None:
    """Until `stopping` is set: lead whenever this process can take the lead."""
    storage = services.storage
    while not stopping.is_set():
        try:
            led = await _lead_once(storage, outbox, scheduler, frontends, stopping)
        except Exception:
            # The database failing while taking the lead or starting to lead: nothing sends
            # from here; try again (the others may take the lead meanwhile).
            log.exception("leading failed; trying again")
            led = False
        if not led:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), TRY_SECONDS)


async def _lead_once(
    storage: Storage,
    outbox: Outbox,
    scheduler: ReminderScheduler,
    frontends: Sequence[Leads],
    stopping: asyncio.Event,
) -> bool:
    """Take the lead if possible and hold it until it is lost or the process stops;
    whether this process led."""
    if not await storage.try_lead():
        return False
    log.info("this process leads: it schedules, sends and edits boards")
    lost = asyncio.ensure_future(storage.lead_lost())
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await outbox.recover()
        await scheduler.start()
        outbox.start()
        for frontend in frontends:
            await frontend.lead()
        await asyncio.wait({lost, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (lost, stop):
            waiter.cancel()
        await scheduler.stop()
        await outbox.stop()
        for frontend in frontends:
            await frontend.follow()
    if lost.done() and not lost.cancelled():
        log.warning("this process no longer leads; it goes on answering, and tries again")
    return True
