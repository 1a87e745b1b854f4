"""Freeze reminders on time: APScheduler only triggers, the database decides.

The ladder lives in the database (schedule_rungs). At start-up the scheduler is rebuilt from
it: one date job per rung, with a misfire grace, so a reminder that came due while the bot
was down is still sent after a restart within the grace. Firing a rung creates its
broadcast under a key derived from the rung and its moment, so a second firing (a restart,
a second process) creates nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bot.reminders import default_ladder
from bot.services import Services
from storage.base import Broadcast

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=1)
LEAD_MARGIN = 1.2  # room for retries and the other platforms' traffic


class ReminderScheduler:
    """Turns the stored ladder into broadcasts at their moments."""

    def __init__(
        self,
        services: Services,
        on_broadcast: Callable[[], None] = lambda: None,
        grace: timedelta = DEFAULT_GRACE,
        rates: dict[str, float] | None = None,
    ) -> None:
        self.services = services
        self.on_broadcast = on_broadcast
        self.grace = grace
        self.rates = rates or {}  # messages per second each platform's sender keeps to
        self._scheduler: AsyncIOScheduler | None = None

    async def lead(self) -> timedelta:
        """How early a fan-out must start so its last message lands before the moment."""
        counts = await self.services.storage.recipient_counts()
        seconds = max(
            (
                count / self.rates[platform]
                for platform, count in counts.items()
                if self.rates.get(platform)
            ),
            default=0.0,
        )
        return timedelta(seconds=seconds * LEAD_MARGIN)

    async def ladder(self) -> dict[str, datetime]:
        """The stored ladder, seeded from the campaign window the first time."""
        campaign = self.services.campaign
        rungs = await self.services.storage.schedule(campaign.id)
        if not rungs:
            rungs = default_ladder(campaign)
            if rungs:
                await self.services.storage.set_schedule(campaign.id, rungs)
        return rungs

    def key(self, rung: str, due: datetime) -> str:
        """The idempotency key of one rung at one moment."""
        return f"reminder:{self.services.campaign.slug}:{rung}:{int(due.timestamp())}"

    async def fire(self, rung: str, due: datetime) -> Broadcast | None:
        """Create the rung's broadcast (once, whoever fires it) and wake the sender."""
        services = self.services
        made = await services.storage.create_broadcast(
            services.campaign.id,
            self.key(rung, due),
            "reminder",
            rung,
            services.settings.default_language,
        )
        if made is not None:
            log.info("reminder %s: %d recipients", rung, made.recipients)
            self.on_broadcast()
        return made

    async def fire_due(self, now: datetime) -> list[str]:
        """Fire every rung due by now and not older than the grace (what a restart does)."""
        fired = []
        lead = await self.lead()
        for rung, due in (await self.ladder()).items():
            if due - lead <= now <= due + self.grace and await self.fire(rung, due) is not None:
                fired.append(rung)
        return fired

    async def start(self) -> None:
        """Build one APScheduler job per rung from the database, and start."""
        self._scheduler = AsyncIOScheduler(timezone=self.services.campaign.zone)
        lead = await self.lead()
        for rung, due in (await self.ladder()).items():
            self._scheduler.add_job(
                self.fire,
                DateTrigger(run_date=due - lead),
                args=(rung, due),
                id=f"reminder-{rung}",
                misfire_grace_time=int(self.grace.total_seconds()),
                coalesce=True,
                replace_existing=True,
            )
        self._scheduler.start()

    async def stop(self) -> None:
        """Stop triggering."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
