"""Freeze reminders and tally posts on time: APScheduler only triggers, the database decides.

The ladder lives in the database (schedule_rungs). At start-up the scheduler is rebuilt from
it: one date job per rung, with a misfire grace, so a reminder that came due while the bot
was down is still sent after a restart within the grace. Firing a rung creates its
broadcast under a key derived from the rung and its moment, so a second firing (a restart,
a second process) creates nothing new. When an organizer changes the window or a rung, the
handler stores the change and tells Services' schedule listeners: the running scheduler
then rebuilds its jobs from the database at once.

Tally posts: every COALITION_TALLY_POST_HOURS, in slots aligned to the Unix epoch (00:00
UTC for 24 hours), one broadcast per slot to the communities that turned them on, keyed by
the slot's start, with the count snapshotted in its subject. A community whose admins chose
an hour (/tallypost on 18:00, the campaign's time zone) gets its posts at that hour and
every COALITION_TALLY_POST_HOURS after it instead: one broadcast per local hour, to the
communities whose hour falls then. The job looks every quarter of an hour (time zones with
half and quarter hours have their hours then).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.services.campaign import LADDER, load_ladder, reminder_key, reminder_subject
from bot.services.container import Services
from bot.services.reminders import tally_subject
from storage.base import Broadcast

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=1)
# Room for retries, the other traffic (presses' answers, boards) and a loaded machine: the
# fan-out may run at two thirds of the planned rate and still end before the moment.
LEAD_MARGIN = 1.5
REMINDER_JOB = "reminder-"
TALLY_JOB = "tally"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ReminderScheduler:
    """Turns the stored ladder into broadcasts at their moments, and posts tallies."""

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
        return await load_ladder(self.services.storage, self.services.campaign)

    def key(self, rung: str, due: datetime) -> str:
        """The idempotency key of one rung at one moment."""
        return reminder_key(self.services.campaign.slug, rung, due)

    async def fire(self, rung: str, due: datetime) -> Broadcast | None:
        """Create the rung's broadcast (once, whoever fires it) and wake the sender."""
        services = self.services
        made = await services.storage.create_broadcast(
            services.campaign.id,
            self.key(rung, due),
            "reminder",
            reminder_subject(rung, due, services.campaign),
            services.settings.default_language,
            platforms=services.platforms,
            started=self.on_broadcast,  # sending starts while the rest is being added
        )
        if made is not None:
            log.info("reminder %s: sending, %d recipients so far", rung, made.recipients)
            self.on_broadcast()
        return made

    async def fire_due(self, now: datetime) -> list[str]:
        """Fire every rung due by now and not older than the grace (what a restart does)."""
        fired = []
        lead = await self.lead()
        for rung, due in (await self.ladder()).items():
            early = self.early(rung, lead)
            if due - early <= now <= due + self.grace and await self.fire(rung, due) is not None:
                fired.append(rung)
        return fired

    @staticmethod
    def early(rung: str, lead: timedelta) -> timedelta:
        """How early a rung's fan-out starts: the lead for the rungs before and at the start
        (the last volunteer must have "freeze now" by then), none for the end and the
        check-in ("the freeze is over" must not arrive before it is)."""
        anchor, _offset = LADDER.get(rung, ("end", timedelta(0)))
        return lead if anchor == "start" else timedelta(0)

    # -- tally posts ---------------------------------------------------------------------

    @property
    def period(self) -> timedelta:
        """The time between two tally posts."""
        return timedelta(hours=self.services.settings.tally_post_hours)

    def slot(self, now: datetime) -> datetime:
        """The start of the tally slot now falls in (slots are aligned to the epoch)."""
        return EPOCH + self.period * ((now - EPOCH) // self.period)

    def hours_due(self, local_hour: datetime) -> list[int]:
        """The chosen hours whose posts fall at this local hour (wall clock, any zone)."""
        period = int(self.period.total_seconds() // 3600)
        wall = local_hour.replace(tzinfo=None) - datetime(1970, 1, 1)
        hours = int(wall.total_seconds() // 3600)
        return [hour for hour in range(24) if (hours - hour) % period == 0]

    async def fire_tally_hours(self, now: datetime | None = None) -> Broadcast | None:
        """The tally post of the local hour now falls in, to the communities whose chosen
        hour it is: made once per hour (None: made already, or the hour began longer ago
        than the grace)."""
        now = now if now is not None else self.services.clock()
        local = now.astimezone(self.services.campaign.zone)
        start = local.replace(minute=0, second=0, microsecond=0)
        if now - start > self.grace:
            return None
        return await self._post_tally(f"at:{int(start.timestamp())}", self.hours_due(start))

    async def fire_tally(self, now: datetime | None = None) -> Broadcast | None:
        """The tally post of now's slot, to communities that turned tally posts on: made
        once per slot (a restart or a second firing in the slot makes nothing)."""
        now = now if now is not None else self.services.clock()
        return await self._post_tally(str(int(self.slot(now).timestamp())), None)

    async def _post_tally(self, moment: str, hours: list[int] | None) -> Broadcast | None:
        """One tally broadcast, keyed by its moment, to the communities at these chosen
        hours (None: those without one), the count snapshotted in its subject."""
        services = self.services
        counts = await services.storage.tally(services.campaign.id, "", None)
        made = await services.storage.create_broadcast(
            services.campaign.id,
            f"tally:{services.campaign.slug}:{moment}",
            "tally",
            tally_subject(counts),
            services.settings.default_language,
            volunteers=False,
            tally_posts_only=True,
            tally_hours=hours,
            platforms=services.platforms,
        )
        if made is not None and made.recipients:
            log.info("tally post: %d communities", made.recipients)
            self.on_broadcast()
        return made

    # -- APScheduler -----------------------------------------------------------------------

    async def start(self) -> None:
        """Build the jobs from the database, start, and follow organizers' changes."""
        self._scheduler = AsyncIOScheduler(timezone=self.services.campaign.zone)
        await self._add_reminder_jobs()
        self._scheduler.add_job(
            self._tally_job,
            IntervalTrigger(minutes=15, start_date=EPOCH),
            id=TALLY_JOB,
            misfire_grace_time=int(self.grace.total_seconds()),
            coalesce=True,
            replace_existing=True,
        )
        self._scheduler.start()
        self.services.schedule_listeners.append(self.rebuild)
        await self._tally_job()  # the bot may have been down when a slot or an hour began

    async def _tally_job(self) -> None:
        now = self.services.clock()
        if now - self.slot(now) <= self.grace:
            await self.fire_tally(now)
        await self.fire_tally_hours(now)

    async def _add_reminder_jobs(self) -> None:
        assert self._scheduler is not None
        lead = await self.lead()
        for rung, due in (await self.ladder()).items():
            early = self.early(rung, lead)
            self._scheduler.add_job(
                self.fire,
                DateTrigger(run_date=due - early),
                args=(rung, due),
                id=f"{REMINDER_JOB}{rung}",
                # still sent after a restart up to the grace past its moment, as fire_due says
                misfire_grace_time=int((self.grace + early).total_seconds()),
                coalesce=True,
                replace_existing=True,
            )

    async def rebuild(self) -> None:
        """Replace every reminder job with the stored ladder's (after an organizer's change)."""
        if self._scheduler is None or not self._scheduler.running:
            return
        for job in self._scheduler.get_jobs():
            if job.id.startswith(REMINDER_JOB):
                job.remove()
        await self._add_reminder_jobs()
        log.info("reminders rescheduled from the stored ladder")

    async def stop(self) -> None:
        """Stop triggering."""
        if self.rebuild in self.services.schedule_listeners:
            self.services.schedule_listeners.remove(self.rebuild)
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
