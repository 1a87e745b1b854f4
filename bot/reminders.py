"""The reminder ladder: when each freeze reminder is due, and what it says in each language."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot import i18n
from bot.campaign import Campaign
from bot.core import Button
from bot.i18n import Raw, _, ngettext
from bot.services import Services
from handlers.common import paragraphs, window

# Rung name -> (which end of the freeze window, offset from it).
LADDER: dict[str, tuple[str, timedelta]] = {
    "before_24h": ("start", timedelta(hours=-24)),
    "before_1h": ("start", timedelta(hours=-1)),
    "start": ("start", timedelta(0)),
    "end": ("end", timedelta(0)),
    "checkin": ("end", timedelta(hours=1)),
}


def default_ladder(campaign: Campaign) -> dict[str, datetime]:
    """The default reminder moments for a campaign's freeze window (none without one)."""
    if campaign.start is None or campaign.end is None:
        return {}
    ends = {"start": campaign.start, "end": campaign.end}
    return {rung: ends[end] + offset for rung, (end, offset) in LADDER.items()}


def render(
    kind: str, subject: str, services: Services, platform: str, personal: bool
) -> tuple[str, tuple[Button, ...]]:
    """One outbox message in the current language, with its buttons, for a community or
    one volunteer."""
    if kind == "milestone":
        return _milestone(int(subject), services), ()
    if kind == "reminder" and subject == "checkin":
        # Answered by /done or this button, in a private chat or in the community.
        return _reminder("checkin", services, platform, personal), (
            Button(_("I froze my accounts"), "done"),
        )
    return _reminder(subject, services, platform, personal), ()


def _milestone(count: int, services: Services) -> str:
    if count == services.campaign.goal:
        return ngettext(
            "We reached our goal: {count} volunteer has pledged. Thank you!",
            "We reached our goal: {count} volunteers have pledged. Thank you!",
            count,
        )
    return ngettext(
        "Milestone: {count} volunteer has pledged to freeze their accounts!",
        "Milestone: {count} volunteers have pledged to freeze their accounts!",
        count,
    )


def _reminder(rung: str, services: Services, platform: str, personal: bool) -> str:
    campaign = services.campaign
    if rung == "before_24h":
        text = paragraphs(
            _(
                "Reminder: in 24 hours we freeze our Instagram and Facebook accounts, "
                "together, for 24 hours."
            ),
            window(services, campaign.zone, platform),
        )
    elif rung == "before_1h":
        text = _(
            "The freeze starts in one hour. Get ready to freeze your Instagram and "
            "Facebook accounts."
        )
    elif rung == "start":
        text = _(
            "Freeze your accounts now: Instagram and Facebook, for 24 hours. Thank you for "
            "taking part!"
        )
    elif rung == "end":
        text = _(
            "The freeze is over. Now post your one message:\n\n{message}",
            message=Raw(campaign.message(i18n.current().locale)),
        )
    elif rung == "checkin":
        text = _(
            "Did you freeze your accounts? If you did, send {command} so we can count you.",
            command=Raw("/done"),
        )
    else:
        text = _("A reminder from the Stop Hate For Profit campaign.")
    if personal:
        text = paragraphs(
            text, _("To stop these reminders, send {command}.", command=Raw("/reminders off"))
        )
    return text
