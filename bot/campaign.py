"""The campaign as volunteers see it: its freeze window, goal and the message to post."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.i18n import N_, _

# The built-in message volunteers post after the freeze, translated in the catalogs;
# a campaign replaces it per language with COALITION_CAMPAIGN_MESSAGE_<LANG>.
DEFAULT_MESSAGE = N_(
    "I froze my Instagram and Facebook accounts for 24 hours because Facebook keeps profiting "
    "from hate and disinformation. #StopHateForProfit"
)


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

    def message(self, language: str) -> str:
        """The one message to post, in the reader's language (configured, else built in)."""
        return self.messages.get(language) or _(DEFAULT_MESSAGE)
