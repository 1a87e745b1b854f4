"""The campaign as volunteers see it: its freeze window, goal and the message to post.

Also the reminder ladder's arithmetic: each rung is tied to one end of the freeze window
(LADDER), so moving the window moves its rungs, and an organizer moves a rung by saying how
long before the start (or after the end) it goes. This module imports no handler, so both
the handlers and the scheduler can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.core.i18n import N_, Raw, _, ngettext
from storage.base import Storage

# The built-in message volunteers post after the freeze, translated in the catalogs;
# a campaign replaces it per language with COALITION_CAMPAIGN_MESSAGE_<LANG>.
DEFAULT_MESSAGE = N_(
    "I froze my Instagram and Facebook accounts for {length} because Facebook keeps profiting "
    "from hate and disinformation. #StopHateForProfit"
)
# How long the freeze lasts when no window is set yet: the seeds' campaign, 24 hours. Every
# text says the campaign's own length (`Campaign.length`), from its window once there is one.
DEFAULT_LENGTH = timedelta(hours=24)


def duration(length: timedelta) -> str:
    """A freeze's length in words of the current language: 24 hours, 3 days, 90 minutes."""
    minutes = int(length.total_seconds() // 60)
    if minutes % (24 * 60) == 0 and minutes >= 48 * 60:
        days = minutes // (24 * 60)
        return ngettext("{count} day", "{count} days", days)
    if minutes % 60 == 0:
        return ngettext("{count} hour", "{count} hours", minutes // 60)
    return ngettext("{count} minute", "{count} minutes", minutes)


# Rung name -> (which end of the freeze window, offset from it).
LADDER: dict[str, tuple[str, timedelta]] = {
    "before_24h": ("start", timedelta(hours=-24)),
    "before_1h": ("start", timedelta(hours=-1)),
    "start": ("start", timedelta(0)),
    "end": ("end", timedelta(0)),
    "checkin": ("end", timedelta(hours=1)),
}


# How long after the check-in reminder's moment volunteers may still say they froze their
# accounts (/done, or the reminder's button). The check-in opens at the freeze start.
CHECKIN_OPEN_FOR = timedelta(days=3)


class Phase(StrEnum):
    """Where the campaign stands."""

    UNSCHEDULED = "unscheduled"
    UPCOMING = "upcoming"
    FREEZING = "freezing"
    OVER = "over"


@dataclass(frozen=True, slots=True)
class Campaign:
    """One campaign: its stored id plus what the organizers configured."""

    id: int
    slug: str
    zone: ZoneInfo
    start: datetime | None
    end: datetime | None
    goal: int
    messages: dict[str, str]

    def phase(self, now: datetime) -> Phase:
        """Before, during or after the freeze window."""
        if self.start is None or self.end is None:
            return Phase.UNSCHEDULED
        if now < self.start:
            return Phase.UPCOMING
        if now < self.end:
            return Phase.FREEZING
        return Phase.OVER

    @property
    def length(self) -> timedelta:
        """How long the freeze lasts: its window's length (24 hours until there is one)."""
        if self.start is None or self.end is None:
            return DEFAULT_LENGTH
        return self.end - self.start

    def message(self, language: str) -> str:
        """The one message to post, in the reader's language (configured, else built in)."""
        configured = self.messages.get(language)
        if configured:
            return configured
        return _(DEFAULT_MESSAGE, length=Raw(duration(self.length)))


def default_ladder(campaign: Campaign) -> dict[str, datetime]:
    """The default reminder moments for a campaign's freeze window (none without one)."""
    if campaign.start is None or campaign.end is None:
        return {}
    start, end = campaign.start, campaign.end
    return {rung: place(rung, default_distance(rung), start, end) for rung in LADDER}


def default_distance(rung: str) -> timedelta:
    """How far a rung is from its end of the window by default (before the start, after
    the end)."""
    anchor, offset = LADDER[rung]
    return -offset if anchor == "start" else offset


def place(rung: str, distance: timedelta, start: datetime, end: datetime) -> datetime:
    """A rung's moment: `distance` before the start, or after the end, as LADDER ties it.
    (In UTC: a day is 24 real hours, even across a change to or from summer time.)"""
    if LADDER[rung][0] == "start":
        return start.astimezone(UTC) - distance
    return end.astimezone(UTC) + distance


def distance(rung: str, moment: datetime, start: datetime, end: datetime) -> timedelta:
    """How far a rung's moment is from its end of the window (the inverse of place)."""
    moment = moment.astimezone(UTC)
    if LADDER[rung][0] == "start":
        return start.astimezone(UTC) - moment
    return moment - end.astimezone(UTC)


def moved_ladder(
    ladder: dict[str, datetime], old: Campaign, start: datetime, end: datetime
) -> dict[str, datetime]:
    """The ladder for a new window: each rung keeps its distance to its end of the window,
    a rung that is off stays off; without an old window, the default ladder."""
    if old.start is None or old.end is None:
        return {rung: place(rung, default_distance(rung), start, end) for rung in LADDER}
    moved = {}
    for rung, moment in ladder.items():
        if rung in LADDER:
            moved[rung] = place(rung, distance(rung, moment, old.start, old.end), start, end)
        else:  # a rung this version does not know: left where it is
            moved[rung] = moment
    return moved


async def load_ladder(storage: Storage, campaign: Campaign) -> dict[str, datetime]:
    """The stored ladder, seeded from the window the first time. Once organizers have set
    the window (stored), an empty ladder means every rung is off and is not seeded again."""
    rungs = await storage.schedule(campaign.id)
    if rungs or await storage.window(campaign.id) is not None:
        return rungs
    rungs = default_ladder(campaign)
    if rungs:
        await storage.set_schedule(campaign.id, rungs)
    return rungs


def checkin_window(campaign: Campaign, ladder: dict[str, datetime]) -> tuple[datetime, datetime]:
    """When volunteers may check in: from the freeze start until CHECKIN_OPEN_FOR after the
    check-in reminder (after its default moment when it is off). Needs a window."""
    assert campaign.start is not None and campaign.end is not None
    reminder = ladder.get("checkin") or place(
        "checkin", default_distance("checkin"), campaign.start, campaign.end
    )
    return campaign.start, max(reminder, campaign.end.astimezone(UTC)) + CHECKIN_OPEN_FOR


def reminder_key(slug: str, rung: str, due: datetime) -> str:
    """The idempotency key of one rung at one moment: sent once per moment."""
    return f"reminder:{slug}:{rung}:{int(due.timestamp())}"


def reminder_subject(rung: str, due: datetime, campaign: Campaign) -> str:
    """What a reminder's broadcast renders: the rung's name, plus, for a rung an organizer
    moved before the start, how many minutes before ("before_1h:120"), so its text says
    when the freeze starts."""
    if rung not in {"before_24h", "before_1h"} or campaign.start is None or campaign.end is None:
        return rung
    ahead = distance(rung, due, campaign.start, campaign.end)
    if ahead == default_distance(rung):
        return rung
    return f"{rung}:{max(0, int(ahead.total_seconds()) // 60)}"
